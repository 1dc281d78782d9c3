"""Beyond-accuracy metrics as defined by Harte et al. for LLMSeqSim / LLM2Sequential.

Definitions follow "Leveraging Large Language Models for Sequential Recommendation" (Harte et al.,
RecSys 2023) and its extension "Improving Sequential Recommendations with LLMs" (Boz, Zorgdrager,
Kotti, Harte et al., ACM TORS 2024), as implemented in the papers' public code
(github.com/dh-r/LLM-Sequential-Recommendation, ``main/eval/metrics/``):

- **Catalogue coverage@k**: distinct items over all users' top-k lists / catalogue size.
- **Serendipity@k** (after Ge, Delgado-Battenfeld & Jannach, RecSys 2010): per user, the
  unexpected test items are the targets *not* among the k most popular items (the "primitive"
  popularity recommender); serendipity = |top-k ∩ unexpected| / min(|unexpected|, |top-k|), 0 when
  that is 0; averaged over users. With one target per user it is the rate of hits on targets that
  popularity would not have recommended.
- **Novelty@k** (self-information, after Zhou et al., PNAS 2010): per user, the mean over the k
  recommended items of ``-log2(count(i) / sum_j count(j))``, counts being interactions; averaged
  over users. As in the reference code, an item never seen in training adds 0 (it has no count).

Popularity counts come from the training sequences (``s[:-2]`` per user).
"""

from __future__ import annotations

import numpy as np

from tidrec.data.dataset import Dataset


def item_counts(dataset: Dataset) -> np.ndarray:
    """(I,) int64 interaction count of each item in the training sequences."""
    train = dataset.train_sequences()
    flat = np.concatenate(train) if train else np.zeros(0, dtype=np.int64)
    return np.bincount(flat, minlength=dataset.num_items).astype(np.int64)


def _top(ranked: np.ndarray, k: int) -> np.ndarray:
    ranked = np.asarray(ranked)
    if ranked.ndim != 2:
        raise ValueError(f"ranked must be (B, k), got {ranked.shape}")
    return ranked[:, :k]


def catalog_coverage(ranked: np.ndarray, num_items: int, *, k: int = 10) -> float:
    """Distinct items in all top-k lists / ``num_items`` (the -1 pad and invalid ids are not items).

    Args:
        ranked: (B, >=k) item_idx, best first, -1 pad.
        num_items: catalogue size.
        k: cut-off.
    """
    top = _top(ranked, k)
    return float(len(np.unique(top[(top >= 0) & (top < num_items)])) / max(1, num_items))


def most_popular(counts: np.ndarray, k: int) -> np.ndarray:
    """(k,) item_idx of the k largest counts; ties go to the lower item_idx (a stable sort)."""
    return np.argsort(-np.asarray(counts), kind="stable")[:k]


def serendipity(ranked: np.ndarray, targets: np.ndarray, counts: np.ndarray, *, k: int = 10) -> float:
    """Mean over users of |top-k ∩ (targets \\ popular top-k)| / min(|targets \\ popular|, |top-k|).

    Args:
        ranked: (B, >=k) item_idx, best first, -1 pad.
        targets: (B,) one target item_idx per user.
        counts: (I,) training interaction counts (defines the expected, popular items).
        k: cut-off, for both the recommendations and the popular list.
    """
    top = _top(ranked, k)
    targets = np.asarray(targets)
    if len(targets) != len(top):
        raise ValueError(f"{len(top)} ranked lists for {len(targets)} targets")
    if len(top) == 0:
        return 0.0
    unexpected = ~np.isin(targets, most_popular(counts, k))  # (B,) one target: |UNEXP| is 0 or 1
    listed = (top >= 0).sum(axis=1)  # (B,)
    hit = (top == targets[:, None]).any(axis=1)
    denominator = np.minimum(unexpected.astype(np.int64), listed)
    per_user = np.where(denominator > 0, (hit & unexpected) / np.maximum(denominator, 1), 0.0)
    return float(per_user.mean())


def novelty(ranked: np.ndarray, counts: np.ndarray, *, k: int = 10) -> float:
    """Mean over users of the mean self-information ``-log2(count(i) / total)`` of their top-k items.

    Args:
        ranked: (B, >=k) item_idx, best first, -1 pad (pads and invalid ids are not counted).
        counts: (I,) training interaction counts; items with count 0 contribute 0.
        k: cut-off.
    """
    top = _top(ranked, k)
    if len(top) == 0:
        return 0.0
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum()
    info = np.where(counts > 0, -np.log2(np.maximum(counts, 1) / max(total, 1)), 0.0)  # (I,)
    valid = (top >= 0) & (top < len(counts))
    listed = valid.sum(axis=1)  # (B,)
    summed = np.where(valid, info[np.where(valid, top, 0)], 0.0).sum(axis=1)  # (B,)
    return float(np.where(listed > 0, summed / np.maximum(listed, 1), 0.0).mean())


def beyond_accuracy(
    ranked: np.ndarray, targets: np.ndarray, dataset: Dataset, *, k: int = 10
) -> dict[str, float]:
    """``coverage@k``, ``serendipity@k`` and ``novelty@k`` of ranked lists on ``dataset``."""
    counts = item_counts(dataset)
    return {
        f"coverage@{k}": catalog_coverage(ranked, dataset.num_items, k=k),
        f"serendipity@{k}": serendipity(ranked, targets, counts, k=k),
        f"novelty@{k}": novelty(ranked, counts, k=k),
    }
