"""LLMSeqSim (Harte et al., RecSys 2023; ACM TORS 2024): recommend the items whose text embedding is
closest (cosine) to an embedding of the user's history.

The session embedding combines the history's item text embeddings: ``mean``, ``last`` (the
reference implementation's default), or ``recency`` — a weighted mean with weights ``(j + 1) / n``
for the j-th of n items (oldest first), the reference code's ``scaling_linear`` decay.
The catalogue search is exact: faiss ``IndexFlatIP`` over L2-normalised vectors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import faiss
import numpy as np

from tidrec.data.dataset import Split
from tidrec.errors import ConfigError, InputError
from tidrec.io import atomic_path, write_json

Aggregation = Literal["mean", "last", "recency"]
AGGREGATIONS = ("mean", "last", "recency")


def session_embedding(item_vectors: np.ndarray, aggregation: Aggregation) -> np.ndarray:
    """Combine a history's item vectors (oldest first) into one vector.

    Args:
        item_vectors: (n, E) embeddings of the history's items, n >= 1.
        aggregation: ``mean``, ``last`` or ``recency``.

    Returns:
        (E,) the session embedding (not normalised).
    """
    if len(item_vectors) == 0:
        raise ValueError("a session embedding needs at least one item")
    if aggregation == "last":
        return item_vectors[-1]
    if aggregation == "mean":
        return item_vectors.mean(axis=0)
    if aggregation == "recency":
        n = len(item_vectors)
        weights = np.arange(1, n + 1, dtype=np.float64) / n  # (n,): oldest 1/n ... most recent 1
        return (weights[:, None] * item_vectors).sum(axis=0) / weights.sum()
    raise ConfigError(f"aggregation must be one of {', '.join(AGGREGATIONS)}, got {aggregation!r}")


def _normalise(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)


class LLMSeqSimRecommender:
    """Cosine nearest neighbours of the session embedding among all item text embeddings."""

    def __init__(self, item_embeddings: np.ndarray, *, aggregation: Aggregation = "last") -> None:
        """Args:
        item_embeddings: (I, E) text embedding of each item_idx.
        aggregation: how a history becomes one vector (see :func:`session_embedding`).
        """
        if aggregation not in AGGREGATIONS:
            raise ConfigError(f"aggregation must be one of {', '.join(AGGREGATIONS)}, got {aggregation!r}")
        if item_embeddings.ndim != 2:
            raise ValueError(f"item_embeddings must be (I, E), got {item_embeddings.shape}")
        self.item_embeddings = np.asarray(item_embeddings, dtype=np.float32)
        self.aggregation = aggregation
        self.index = faiss.IndexFlatIP(self.item_embeddings.shape[1])
        self.index.add(_normalise(self.item_embeddings))

    @property
    def num_items(self) -> int:
        return len(self.item_embeddings)

    def recommend(self, split: Split, *, k: int, exclude_history: bool) -> np.ndarray:
        """(B, k) item_idx by descending cosine similarity; -1 pad (also for empty histories)."""
        ranked = np.full((len(split), k), -1, dtype=np.int64)
        rows = [i for i, h in enumerate(split.histories) if len(h)]
        if not rows:
            return ranked
        sessions = np.stack(
            [session_embedding(self.item_embeddings[split.histories[i]], self.aggregation) for i in rows]
        )  # (B', E)
        longest = max(len(split.histories[i]) for i in rows) if exclude_history else 0
        depth = min(self.num_items, k + longest)
        _, neighbours = self.index.search(_normalise(sessions), depth)  # (B', depth)
        for row, found in zip(rows, neighbours, strict=True):
            found = found[found >= 0]
            if exclude_history:
                found = found[~np.isin(found, split.histories[row])]
            ranked[row, : min(k, len(found))] = found[:k]
        return ranked

    def save(self, path: str | Path, *, dataset_hash: str, embedding_model: str) -> None:
        """Write ``<path>`` (JSON state) and ``<path stem>.npy`` (the item embeddings), atomically."""
        path = Path(path)
        with atomic_path(path.with_suffix(".npy")) as tmp, open(tmp, "wb") as handle:
            np.save(handle, self.item_embeddings)
        write_json(
            path,
            {
                "model": "llmseqsim",
                "dataset_hash": dataset_hash,
                "aggregation": self.aggregation,
                "embedding_model": embedding_model,
                "embeddings": path.with_suffix(".npy").name,
            },
        )

    @classmethod
    def load(cls, state: dict, *, num_items: int, path: Path) -> LLMSeqSimRecommender:
        """Rebuild from the JSON state :meth:`save` wrote (``path``) and its .npy beside it.

        Raises:
            InputError: the embeddings file is missing or has the wrong number of rows.
        """
        name = str(state.get("embeddings", ""))
        npy = path.parent / name
        if Path(name).name != name or not npy.is_file():  # a bare file name: nothing outside the folder
            raise InputError(f"{path}: field 'embeddings' names {name!r}, which is not a file beside it")
        try:
            embeddings = np.load(npy, allow_pickle=False)
        except (OSError, ValueError, EOFError) as error:
            raise InputError(
                f"{npy}: not a readable .npy array ({error}); re-run fit --model llmseqsim"
            ) from None
        if embeddings.ndim != 2 or len(embeddings) != num_items:
            raise InputError(f"{npy}: embeddings have shape {embeddings.shape}, expected ({num_items}, E)")
        return cls(embeddings, aggregation=state.get("aggregation", "last"))
