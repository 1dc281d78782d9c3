"""``python -m tidrec.compare --run runs/ml-100k --models tiger pop sasrec ...``: every model, one table.

The same pipeline and defaults as ``python -m tidrec.run`` (see :mod:`tidrec.pipeline`): models
already trained in the run folder are reused, the others are trained first.
"""

from __future__ import annotations

from collections.abc import Sequence

from tidrec.pipeline import RunConfig, markdown, run_pipeline
from tidrec.pipeline import main as pipeline_main

__all__ = ["RunConfig", "main", "markdown", "run_pipeline"]


def main(argv: Sequence[str] | None = None) -> int:
    return pipeline_main(
        argv,
        prog="python -m tidrec.compare",
        description="Train what is missing and compare models on one split: one table, one plot.",
    )


if __name__ == "__main__":
    raise SystemExit(main())
