"""Full-catalogue top-k over a score matrix, with optional history exclusion by masking."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


def exclusion_mask(histories: Sequence[np.ndarray], num_items: int) -> torch.Tensor:
    """A (B, I) bool mask, True where item i is in row b's history.

    Args:
        histories: B arrays of item_idx.
        num_items: catalogue size I.
    """
    mask = torch.zeros(len(histories), num_items, dtype=torch.bool)  # (B, I)
    rows = np.repeat(np.arange(len(histories)), [len(h) for h in histories])
    cols = np.concatenate([np.asarray(h, dtype=np.int64) for h in histories]) if len(histories) else rows
    mask[torch.from_numpy(rows), torch.from_numpy(cols.astype(np.int64))] = True
    return mask


def top_k_items(
    scores: torch.Tensor, histories: Sequence[np.ndarray], *, k: int, exclude_history: bool
) -> np.ndarray:
    """The k best-scoring items per row; -1 where fewer than k items are allowed.

    Args:
        scores: (B, I) float scores over the whole catalogue (higher is better).
        histories: B arrays of item_idx, masked out when ``exclude_history``.
        k: list length.
        exclude_history: whether items a user has already seen may be recommended.

    Returns:
        (B, k) int64 item_idx, ordered by descending score.

    Raises:
        ValueError: ``scores`` is not 2-D or its row count differs from ``len(histories)``.
    """
    if scores.ndim != 2 or scores.shape[0] != len(histories):
        raise ValueError(f"scores must be (B={len(histories)}, I), got {tuple(scores.shape)}")
    scores = scores.detach().float().cpu().clone()  # (B, I)
    if exclude_history:
        scores[exclusion_mask(histories, scores.shape[1])] = float("-inf")
    width = min(k, scores.shape[1])
    values, indices = torch.topk(scores, width, dim=1)  # (B, width)
    indices[torch.isneginf(values)] = -1
    ranked = np.full((scores.shape[0], k), -1, dtype=np.int64)
    ranked[:, :width] = indices.numpy()
    return ranked
