"""Per-user exclusion as dead trie nodes: prune every prefix whose items are all excluded.

A node is **dead** for a user when every item ending at or below it is in that user's excluded
set. Counting is exact and vectorised over the whole batch: each excluded item's path contributes
one to every node it passes (:meth:`trie.Trie.item_paths`), the ``(user, node)`` pairs are counted
with one ``np.unique`` per depth, and a node whose count equals its item count
(:attr:`trie.Trie.item_counts`) is dead. Beam search masks dead children at every step, so no beam
is spent on a prefix with nothing left to recommend.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from trie.trie import Trie


def dead_nodes(trie: Trie, exclude: Sequence[np.ndarray]) -> tuple[np.ndarray, ...]:
    """Each user's dead nodes at every depth, as sorted rows ready for the masking kernels.

    Args:
        trie: the catalogue trie.
        exclude: B arrays of item_idx (repeats are allowed and counted once).

    Returns:
        Per depth ``0..trie.depth``: ``(B, E_d)`` int64 node ids at that depth, ascending per row
        and padded with -1 at the front (the layout ``constrained_candidates(exclude=)`` takes).
        Depth 0 lists the root when a user has excluded the whole catalogue.

    Raises:
        ValueError: an item_idx outside ``0..trie.num_items-1`` (naming the user's position).
    """
    batch, num_items = len(exclude), trie.num_items
    arrays = [np.asarray(items, dtype=np.int64).reshape(-1) for items in exclude]
    for user, items in enumerate(arrays):
        if len(items) and (items.min() < 0 or items.max() >= num_items):
            raise ValueError(f"exclude[{user}] holds an item_idx outside 0..{num_items - 1}")
    users = np.repeat(np.arange(batch, dtype=np.int64), [len(a) for a in arrays])  # (M,)
    items = np.concatenate(arrays) if arrays else np.zeros(0, dtype=np.int64)  # (M,)
    pairs, _ = _runs(users * num_items + items)  # each (user, item) once
    users, items = pairs // max(num_items, 1), pairs % max(num_items, 1)
    paths = trie.item_paths(items)  # (M, L+1)
    tables = []
    for depth in range(trie.depth + 1):
        on_path = paths[:, depth] >= 0  # shorter items stop above this depth
        width = trie.num_nodes(depth)
        keys, excluded = _runs(users[on_path] * width + paths[on_path, depth])  # excluded items per node
        nodes = keys % width
        dead = excluded == trie.item_counts[depth][nodes]
        tables.append(_rows(keys[dead] // width, nodes[dead], batch))
    return tuple(tables)


def _runs(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct ``keys`` ascending and how often each occurs (``np.unique`` by sort, faster here)."""
    keys = np.sort(keys)
    starts = np.flatnonzero(np.diff(keys, prepend=keys[:1] - 1))  # where each run of equal keys begins
    return keys[starts], np.diff(np.r_[starts, len(keys)])


def _rows(users: np.ndarray, nodes: np.ndarray, batch: int) -> np.ndarray:
    """``(B, E)`` table of each user's nodes (input sorted by user, then node), -1 padded at the front."""
    per_user = np.bincount(users, minlength=batch)  # (B,)
    width = int(per_user.max(initial=0))
    first = np.cumsum(per_user) - per_user  # (B,) where each user's run starts
    column = width - per_user[users] + np.arange(len(users)) - first[users]
    table = np.full((batch, width), -1, dtype=np.int64)
    table[users, column] = nodes
    return table
