"""``python -m tidrec.run --dataset ml-100k --out runs/ml-100k``: the main job, end to end.

Data, semantic IDs, the generative model and the baselines, one evaluation and one table: the same
pipeline and defaults as ``python -m tidrec.compare`` (see :mod:`tidrec.pipeline`).
"""

from __future__ import annotations

from collections.abc import Sequence

from tidrec.pipeline import RunConfig, run_pipeline
from tidrec.pipeline import main as pipeline_main

__all__ = ["RunConfig", "main", "run_pipeline"]


def main(argv: Sequence[str] | None = None) -> int:
    return pipeline_main(
        argv,
        prog="python -m tidrec.run",
        description="End to end: data, semantic IDs, the generative model and baselines, evaluation.",
    )


if __name__ == "__main__":
    raise SystemExit(main())
