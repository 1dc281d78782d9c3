"""tidrec: semantic-ID generative retrieval for sequential recommendation."""

import os as _os

# libgomp (torch's OpenMP) spin-waits by default; when the cores are shared with other work that
# makes multi-threaded training 10-100x slower. Passive waiting costs little on an idle machine.
# Only effective before torch is first imported; a value the user set is kept.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
