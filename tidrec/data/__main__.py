"""``python -m tidrec.data --dataset ml-100k --out runs/ml-100k/data``: prepare a dataset on its own."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tidrec.cli import run
from tidrec.data.prepare import DataConfig, prepare_dataset
from tidrec.io import check_output_dir


@dataclass(frozen=True, kw_only=True)
class PrepareConfig(DataConfig):
    """Prepare a dataset into a folder."""

    out: Path = Path("data")
    """Folder for the prepared dataset (Parquet files and manifest.json)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check_output_dir(self.out, "--out")


def main(argv: Sequence[str] | None = None) -> int:
    return run(
        PrepareConfig,
        lambda config: prepare_dataset(config, config.out),
        argv,
        prog="python -m tidrec.data",
        description="Prepare a dataset (built-in, Amazon 2014, or your files) and print its statistics.",
    )


if __name__ == "__main__":
    raise SystemExit(main())
