"""Item embeddings -> semantic IDs: RQ-VAE, residual k-means, collision code, SID table.

``TOKENIZERS`` is the registry of tokenizer kinds: a checkpoint names its kind, and
:func:`load_tokenizer` rebuilds it with that class's ``from_checkpoint``.
"""

from __future__ import annotations

from pathlib import Path

from tidrec.errors import InputError, TidrecError
from tokenizer.base import SidTokenizer, read_checkpoint
from tokenizer.collision import DEFAULT_COLLISION_SIZE, add_collision_codes
from tokenizer.rkmeans import ResidualKMeansConfig, ResidualKMeansTokenizer
from tokenizer.rqvae import RqVaeConfig, RqVaeTokenizer
from tokenizer.sid_table import SidTable

TOKENIZERS = {"rqvae": RqVaeTokenizer, "rkmeans": ResidualKMeansTokenizer}
"""Tokenizer kind (as ``--tokenizer`` and checkpoints name it) -> class."""


def load_tokenizer(path: str | Path, *, device: str = "auto") -> SidTokenizer:
    """Rebuild whichever tokenizer wrote ``path``.

    Raises:
        InputError: missing or foreign file, or an unknown tokenizer kind.
    """
    payload = read_checkpoint(path)
    if payload["kind"] not in TOKENIZERS:
        raise InputError(
            f"{path}: unknown tokenizer kind {payload['kind']!r} (expected one of {sorted(TOKENIZERS)})"
        )
    try:
        return TOKENIZERS[payload["kind"]].from_checkpoint(payload, source=path, device=device)
    except TidrecError:
        raise
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError, IndexError) as error:
        reason = str(error).splitlines()[0][:160] if str(error) else type(error).__name__
        raise InputError(
            f"{path}: tokenizer checkpoint does not match its {payload['kind']} config "
            f"({type(error).__name__}: {reason}); re-run python -m tidrec.tokenize"
        ) from None


__all__ = [
    "DEFAULT_COLLISION_SIZE",
    "TOKENIZERS",
    "ResidualKMeansConfig",
    "ResidualKMeansTokenizer",
    "RqVaeConfig",
    "RqVaeTokenizer",
    "SidTable",
    "SidTokenizer",
    "add_collision_codes",
    "load_tokenizer",
]
