"""Ranking metrics of leave-one-out evaluation: one target per user, lists ranked best first.

Plain functions over arrays, shared by evaluation (:mod:`tidrec.evaluate`), the comparison table
and the models' validation steps.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

KS = (5, 10, 20)
"""Cut-offs reported for Recall and NDCG."""


def target_ranks(ranked: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """(B,) 0-based position of each target in its ranked list; -1 where it is absent.

    Raises:
        ValueError: ``ranked`` is not (B, k) for the B targets.
    """
    ranked = np.asarray(ranked)
    targets = np.asarray(targets)
    if ranked.ndim != 2 or ranked.shape[0] != targets.shape[0]:
        raise ValueError(f"ranked must be (B={targets.shape[0]}, k), got {ranked.shape}")
    hits = ranked == targets[:, None]  # (B, k)
    return np.where(hits.any(axis=1), hits.argmax(axis=1), -1)


def ranking_metrics(ranked: np.ndarray, targets: np.ndarray, ks: Sequence[int] = KS) -> dict[str, float]:
    """Recall@k, NDCG@k for each k in ``ks`` and MRR over the whole list, averaged over rows.

    One target per row, so Recall@k is the hit rate and NDCG@k is ``1 / log2(rank + 2)`` for a
    0-based rank below k. Padding (-1) never matches a target.

    Args:
        ranked: (B, k) item_idx, best first.
        targets: (B,) item_idx.
        ks: cut-offs.
    """
    ranks = target_ranks(ranked, targets)  # (B,)
    metrics: dict[str, float] = {}
    if len(ranks) == 0:
        return {**{f"{m}@{k}": 0.0 for m in ("recall", "ndcg") for k in ks}, "mrr": 0.0}
    for k in ks:
        hit, ndcg = _per_user(ranks, k)
        metrics[f"recall@{k}"] = float(hit.mean())
        metrics[f"ndcg@{k}"] = float(ndcg.mean())
    safe = np.maximum(ranks, 0).astype(np.float64)  # (B,) avoids 1/0 on misses
    metrics["mrr"] = float(np.where(ranks >= 0, 1.0 / (safe + 1.0), 0.0).mean())
    return metrics


def _per_user(ranks: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(B,) float hit@k and NDCG@k of each user, from 0-based target ranks (-1: absent)."""
    hit = (ranks >= 0) & (ranks < k)
    safe = np.maximum(ranks, 0).astype(np.float64)  # avoids 1/log2(1) on misses
    return hit.astype(np.float64), np.where(hit, 1.0 / np.log2(safe + 2.0), 0.0)


def standard_errors(ranked: np.ndarray, targets: np.ndarray, *, k: int = 10) -> dict[str, float]:
    """Standard errors of the mean of Recall@k and NDCG@k over users (``recall@k_se``, ``ndcg@k_se``).

    One target per user makes each metric a mean of independent per-user values, so its standard
    error is their sample standard deviation over sqrt(users): differences between models smaller
    than about twice this are within noise.
    """
    ranks = target_ranks(ranked, targets)  # (B,)
    if len(ranks) < 2:
        return {f"recall@{k}_se": 0.0, f"ndcg@{k}_se": 0.0}
    hit, ndcg = _per_user(ranks, k)
    scale = np.sqrt(len(ranks))
    return {
        f"recall@{k}_se": float(hit.std(ddof=1) / scale),
        f"ndcg@{k}_se": float(ndcg.std(ddof=1) / scale),
    }


def paired_difference(
    ranked_a: np.ndarray, ranked_b: np.ndarray, targets: np.ndarray, *, k: int = 10
) -> dict[str, float]:
    """How much list A beats list B on the same users: mean per-user difference of NDCG@k and
    Recall@k (``ndcg@k_diff``, ``recall@k_diff``), the standard error of each (``..._diff_se``: the
    per-user differences' standard deviation over sqrt(users)), and how many users each list serves
    better by NDCG@k (``a_better``, ``b_better``).

    Pairing by user removes what both models find easy or hard, so this standard error is the right
    yardstick for "is A ahead of B", usually smaller than the two rows' errors combined.

    Raises:
        ValueError: the lists are not (B, k') for the B targets.
    """
    hit_a, ndcg_a = _per_user(target_ranks(ranked_a, targets), k)
    hit_b, ndcg_b = _per_user(target_ranks(ranked_b, targets), k)
    out: dict[str, float] = {}
    for name, diff in ((f"ndcg@{k}", ndcg_a - ndcg_b), (f"recall@{k}", hit_a - hit_b)):
        out[f"{name}_diff"] = float(diff.mean()) if len(diff) else 0.0
        out[f"{name}_diff_se"] = float(diff.std(ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else 0.0
    out["a_better"] = float((ndcg_a > ndcg_b).sum())
    out["b_better"] = float((ndcg_b > ndcg_a).sum())
    return out


__all__ = ["KS", "paired_difference", "ranking_metrics", "standard_errors", "target_ranks"]
