"""Most-popular baseline: every user gets the items with the most training interactions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from tidrec.baselines.ranking import top_k_items
from tidrec.data.dataset import Dataset, Split
from tidrec.errors import InputError
from tidrec.io import write_json


class PopularityRecommender:
    """Ranks the catalogue by training-interaction count (ties: lower item_idx first)."""

    def __init__(self, counts: np.ndarray) -> None:
        """Args:
        counts: (I,) interaction count of each item in the training sequences.
        """
        self.counts = np.asarray(counts, dtype=np.int64)
        # Tie-break by item_idx so the ranking is deterministic: scores are count - idx / I.
        num_items = len(self.counts)
        self._scores = torch.from_numpy(
            self.counts.astype(np.float64) - np.arange(num_items) / max(1, num_items)
        )  # (I,)

    @classmethod
    def fit(cls, dataset: Dataset) -> PopularityRecommender:
        """Count each item's occurrences in the training sequences (``s[:-2]`` per user)."""
        from tidrec.beyond_accuracy import item_counts

        return cls(item_counts(dataset))

    def recommend(self, split: Split, *, k: int, exclude_history: bool) -> np.ndarray:
        """(B, k) item_idx, the most popular first; -1 pad when fewer items are allowed."""
        scores = self._scores.unsqueeze(0).expand(len(split), -1)  # (B, I)
        return top_k_items(scores, split.histories, k=k, exclude_history=exclude_history)

    def save(self, path: str | Path, *, dataset_hash: str) -> None:
        """Write the counts and the dataset hash they were computed on as JSON (atomically)."""
        write_json(path, {"model": "pop", "dataset_hash": dataset_hash, "counts": self.counts.tolist()})

    @classmethod
    def load(cls, state: dict, *, num_items: int, path: Path) -> PopularityRecommender:
        """Rebuild from the dict :meth:`save` wrote.

        Raises:
            InputError: the counts do not cover ``num_items`` items.
        """
        try:
            counts = np.asarray(state.get("counts", []), dtype=np.int64)
        except (TypeError, ValueError, OverflowError):
            raise InputError(f"{path}: 'counts' must be a list of integers; re-run fit --model pop") from None
        if counts.shape != (num_items,):
            raise InputError(f"{path}: 'counts' has shape {counts.shape}, expected ({num_items},) items")
        return cls(counts)
