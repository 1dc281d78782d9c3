"""The collision code: an extra final level that makes every item's code tuple unique.

Items sharing a tuple ``(c_0, ..., c_{L-1})`` get collision codes 0, 1, 2, ... in item_idx order;
an item alone on its tuple gets 0. The result is deterministic given the tuples.
"""

from __future__ import annotations

import numpy as np

from tidrec.errors import ConfigError

DEFAULT_COLLISION_SIZE = 256
"""Codes in the collision level. 256 matches the code levels, adds only 256 tokens to the vocabulary,
and is far above the groups a working tokenizer produces (ML-1M: a handful of items at most), so
overflowing it means the tokenizer collapsed and should be retrained, not silently patched."""


def tuple_groups(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Group rows with equal code tuples.

    Args:
        codes: (N, L) non-negative int codes.

    Returns:
        group (N,) int64 id of each row's tuple (ids follow the tuples' sorted order) and
        counts (G,) rows per group.
    """
    codes = np.asarray(codes, dtype=np.int64)
    if codes.ndim != 2:
        raise ValueError(f"codes must be (N, L), got {codes.shape}")
    radices = codes.max(axis=0) + 1 if len(codes) else np.ones(codes.shape[1], dtype=np.int64)
    if np.prod(radices.astype(np.float64)) < 2.0**62:  # pack each tuple into one int64: fast unique
        key = np.zeros(len(codes), dtype=np.int64)
        for level in range(codes.shape[1]):
            key = key * radices[level] + codes[:, level]
        _, group, counts = np.unique(key, return_inverse=True, return_counts=True)
    else:
        _, group, counts = np.unique(codes, axis=0, return_inverse=True, return_counts=True)
    return group.reshape(-1).astype(np.int64), counts.astype(np.int64)


def add_collision_codes(codes: np.ndarray, collision_size: int = DEFAULT_COLLISION_SIZE) -> np.ndarray:
    """Append the collision level.

    Args:
        codes: (N, L) code tuples from a tokenizer.
        collision_size: codes available in the collision level.

    Returns:
        (N, L + 1) int64 codes whose rows are all distinct.

    Raises:
        ConfigError: more than ``collision_size`` items share one tuple.
    """
    codes = np.asarray(codes, dtype=np.int64)
    group, counts = tuple_groups(codes)  # (N,), (G,)
    if len(counts) and counts.max() > collision_size:
        worst = int(counts.argmax())
        example = tuple(int(c) for c in codes[np.flatnonzero(group == worst)[0]])
        raise ConfigError(
            f"{int(counts.max())} items share the code tuple {example} but the collision level has only "
            f"{collision_size} codes: pass --collision-size {int(counts.max())} or more, or train a "
            f"tokenizer with better code usage (more levels, codes or epochs)"
        )
    order = np.argsort(group, kind="stable")  # rows grouped, item_idx ascending inside each group
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])  # (G,) first position of each group
    rank = np.empty(len(codes), dtype=np.int64)
    rank[order] = np.arange(len(codes)) - starts[group[order]]
    return np.concatenate([codes, rank[:, None]], axis=1)
