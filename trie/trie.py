"""A compact prefix trie over token-id sequences: per-depth CSR arrays, terminals map to item_idx.

Layout. Nodes at depth ``d`` (the root is the only node at depth 0) are numbered ``0..n_d-1`` in
(parent, token) order. The edges leaving depth ``d`` are stored as CSR arrays:

* ``indptr[d]`` ``(n_d + 1,)``: node ``j``'s children are edges ``indptr[d][j] : indptr[d][j+1]``;
* ``tokens[d]`` ``(n_{d+1},)``: each edge's token, sorted within a node.

Because children are numbered in the same (parent, token) order, **an edge index is the child's
node id at depth d+1**: no separate child array is stored. A node at depth ``d+1`` that ends a
sequence maps to an item through ``terminal_items[d+1]`` (``-1`` where it does not end one; the
array is absent for depths where nothing ends). Where a depth is small (the root, typically),
``dense[d]`` ``(n_d, hi - lo + 1)`` maps (node, token) to the child directly.

Lookups are vectorised over many nodes at once (segmented binary search over the sorted tokens);
nothing scans the catalogue.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import torch

from tidrec.errors import InputError

DENSE_LIMIT = 1 << 16
"""A depth gets a dense (node, token) -> child table when it has at most this many cells."""


def _small_uint(max_value: int) -> np.dtype:
    """The narrowest unsigned dtype holding ``0..max_value``."""
    for dtype in (np.uint8, np.uint16, np.uint32):
        if max_value <= np.iinfo(dtype).max:
            return np.dtype(dtype)
    return np.dtype(np.int64)


@dataclass(frozen=True, eq=False)
class Trie:
    """Token-id sequences (items) as a prefix trie; each complete sequence maps to an item_idx."""

    indptr: tuple[np.ndarray, ...]
    """Per depth ``d`` (0..depth-1): ``(n_d + 1,)`` int32 CSR offsets into the edges leaving depth d."""
    tokens: tuple[np.ndarray, ...]
    """Per depth: ``(n_{d+1},)`` token id of each edge (= child node), sorted within each node."""
    terminal_items: tuple[np.ndarray | None, ...]
    """Per depth ``0..depth``: ``(n_d,)`` int32 item_idx ending at each node (-1: none), or None."""
    dense: tuple[np.ndarray | None, ...]
    """Per depth: ``(n_d, hi-lo+1)`` int32 child table for small depths (-1: no child), or None."""
    dense_lo: tuple[int, ...]
    """Per depth: the smallest token id at that depth (the dense table's column 0)."""
    item_counts: tuple[np.ndarray, ...]
    """Per depth ``0..depth``: ``(n_d,)`` items ending at or below each node (narrowest uint dtype).

    Exclusion compares it with how many of a user's excluded items lie below a node: equal means
    the node is dead for that user (see :func:`trie.exclude.dead_nodes`)."""
    num_items: int
    """Number of distinct sequences (items) stored."""
    _device_cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)
    """TorchTrie per device, built on first use so batches do not re-copy the arrays."""

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_codes(cls, tokens: np.ndarray, *, dense_limit: int = DENSE_LIMIT) -> Trie:
        """Build from fixed-length token sequences; row ``i`` is item_idx ``i``.

        Args:
            tokens: ``(I, L)`` non-negative token ids (e.g. ``Vocab.sid_tokens(codes)``).
            dense_limit: largest (nodes x token range) a depth may have to get a dense table.

        Raises:
            InputError: not a 2-D integer array, negative ids, or two rows with the same tokens.
        """
        tokens = np.asarray(tokens)
        if tokens.ndim != 2 or tokens.shape[1] == 0 or not np.issubdtype(tokens.dtype, np.integer):
            raise InputError(
                f"trie codes must be a 2-D integer array (I, L), got {tokens.dtype} {tokens.shape}"
            )
        num_items, length = tokens.shape
        if num_items and tokens.min() < 0:
            raise InputError(f"trie codes must be non-negative token ids, row {int(tokens.min(1).argmin())}")
        order = np.lexsort(tokens.T[::-1])  # rows sorted by (t_0, t_1, ...)
        rows = tokens[order].astype(np.int64)  # (I, L)
        if num_items > 1:
            same = (rows[1:] == rows[:-1]).all(1)
            if same.any():
                first = int(np.flatnonzero(same)[0])
                a, b = sorted((int(order[first]), int(order[first + 1])))
                raise InputError(f"trie codes: rows {a} and {b} have the same tokens {rows[first].tolist()}")
        return cls._from_sorted_rows(rows, np.full(num_items, length), order, dense_limit)

    @classmethod
    def from_sequences(cls, sequences: Sequence[Sequence[int]], *, dense_limit: int = DENSE_LIMIT) -> Trie:
        """Build from variable-length token sequences; sequence ``i`` is item_idx ``i``.

        A sequence may be a prefix of another (it then ends at an inner node). ``dense_limit`` as in
        :meth:`from_codes`.

        Raises:
            InputError: an empty sequence, a negative token, or a repeated sequence.
        """
        lengths = np.array([len(s) for s in sequences], dtype=np.int64)
        if len(lengths) and lengths.min() == 0:
            raise InputError(f"trie sequence {int(lengths.argmin())} is empty")
        width = int(lengths.max()) if len(lengths) else 1
        padded = np.full((len(lengths), width), -1, dtype=np.int64)  # (I, Lmax), -1 after the end
        for i, seq in enumerate(sequences):
            padded[i, : len(seq)] = seq
        negative = np.flatnonzero([min(seq) < 0 for seq in sequences])
        if len(negative):
            raise InputError(f"trie sequence {int(negative[0])} has a negative token id")
        order = np.lexsort(padded.T[::-1])  # -1 sorts first: a prefix comes before its extensions
        rows = padded[order]
        if len(rows) > 1:
            same = (rows[1:] == rows[:-1]).all(1)
            if same.any():
                first = int(np.flatnonzero(same)[0])
                a, b = sorted((int(order[first]), int(order[first + 1])))
                raise InputError(f"trie sequences {a} and {b} are identical")
        return cls._from_sorted_rows(rows, lengths[order], order, dense_limit)

    @classmethod
    def _from_sorted_rows(
        cls, rows: np.ndarray, lengths: np.ndarray, items: np.ndarray, dense_limit: int
    ) -> Trie:
        """``rows`` (I, L) lexicographically sorted, -1 padded past ``lengths``; ``items`` their item_idx."""
        num_items, depth = rows.shape
        indptr, edge_tokens, terminals, dense, dense_lo = [], [], [], [], []
        # node id of each row's prefix at the current depth; the root is node 0
        node_of_row = np.zeros(num_items, dtype=np.int64)
        num_nodes = 1
        terminals.append(None)  # nothing ends at the root: sequences are non-empty
        for d in range(depth):
            alive = lengths > d  # rows that continue past depth d
            alive_rows = np.flatnonzero(alive)
            parent = node_of_row[alive_rows]
            token = rows[alive_rows, d]
            # a new child starts wherever (parent, token) changes; rows are sorted so equal pairs are adjacent
            new = np.ones(len(alive_rows), dtype=bool)
            new[1:] = (parent[1:] != parent[:-1]) | (token[1:] != token[:-1])
            child_of_alive = np.cumsum(new) - 1  # child node id at depth d+1
            child_parent = parent[new]
            child_token = token[new]
            counts = np.bincount(child_parent, minlength=num_nodes)
            offsets = np.zeros(num_nodes + 1, dtype=np.int64)
            np.cumsum(counts, out=offsets[1:])
            indptr.append(offsets.astype(np.int32))
            max_token = int(child_token.max()) if len(child_token) else 0
            edge_tokens.append(child_token.astype(_small_uint(max_token)))
            lo = int(child_token.min()) if len(child_token) else 0
            width = max_token - lo + 1
            if num_nodes * width <= dense_limit and len(child_token):
                table = np.full((num_nodes, width), -1, dtype=np.int32)
                table[child_parent, child_token - lo] = np.arange(len(child_token), dtype=np.int32)
                dense.append(table)
            else:
                dense.append(None)
            dense_lo.append(lo)
            node_of_row = np.full(num_items, -1, dtype=np.int64)
            node_of_row[alive_rows] = child_of_alive
            num_nodes = len(child_token)
            ends = lengths == d + 1
            if ends.any():
                term = np.full(num_nodes, -1, dtype=np.int32)
                term[node_of_row[ends]] = items[ends]
                terminals.append(term)
            else:
                terminals.append(None)
        return cls(
            indptr=tuple(indptr),
            tokens=tuple(edge_tokens),
            terminal_items=tuple(terminals),
            dense=tuple(dense),
            dense_lo=tuple(dense_lo),
            item_counts=_item_counts(indptr, terminals),
            num_items=num_items,
        )

    # ------------------------------------------------------------------ sizes
    @property
    def depth(self) -> int:
        """Length of the longest sequence."""
        return len(self.indptr)

    def num_nodes(self, depth: int) -> int:
        """Number of nodes at ``depth`` (1 for the root)."""
        return len(self.indptr[depth]) - 1 if depth < self.depth else len(self.tokens[depth - 1])

    def max_fanout(self, depth: int) -> int:
        """The most children any node at ``depth`` has."""
        return int(np.diff(self.indptr[depth]).max(initial=0))

    @property
    def fixed_length(self) -> bool:
        """True when every sequence has length ``depth`` (items end only at the deepest level)."""
        return all(t is None for t in self.terminal_items[:-1])

    @property
    def nbytes(self) -> int:
        """Bytes held by the trie's arrays."""
        arrays = [*self.indptr, *self.tokens, *self.terminal_items, *self.dense, *self.item_counts]
        return sum(a.nbytes for a in arrays if a is not None)

    @property
    def bytes_per_item(self) -> float:
        return self.nbytes / max(self.num_items, 1)

    # ------------------------------------------------------------------ lookups
    def child(self, depth: int, nodes: np.ndarray, tokens: np.ndarray) -> np.ndarray:
        """Child node of each ``(node, token)`` pair at ``depth``, -1 where there is none.

        Args:
            depth: depth of ``nodes`` (0 for the root).
            nodes: ``(N,)`` node ids at ``depth`` (-1 entries give -1).
            tokens: ``(N,)`` token ids.

        Returns:
            ``(N,)`` int64 node ids at ``depth + 1``.
        """
        nodes = np.asarray(nodes, dtype=np.int64)
        tokens = np.asarray(tokens, dtype=np.int64)
        if nodes.shape != tokens.shape:
            raise ValueError(f"nodes {nodes.shape} and tokens {tokens.shape} differ")
        out = np.full(nodes.shape, -1, dtype=np.int64)
        ok = nodes >= 0
        if self.dense[depth] is not None:
            table = self.dense[depth]
            col = tokens - self.dense_lo[depth]
            ok &= (col >= 0) & (col < table.shape[1])
            out[ok] = table[nodes[ok], col[ok]]
            return out
        lo = self.indptr[depth][np.where(ok, nodes, 0)].astype(np.int64)
        hi = self.indptr[depth][np.where(ok, nodes, 0) + 1].astype(np.int64)
        found = _segmented_searchsorted(self.tokens[depth], lo, hi, tokens)
        hit = ok & (found < hi)
        hit[hit] = self.tokens[depth][found[hit]] == tokens[hit]
        out[hit] = found[hit]
        return out

    def children(self, depth: int, node: int) -> tuple[np.ndarray, np.ndarray]:
        """``(tokens, child_nodes)`` leaving one node at ``depth``, tokens ascending."""
        lo, hi = int(self.indptr[depth][node]), int(self.indptr[depth][node + 1])
        return self.tokens[depth][lo:hi].astype(np.int64), np.arange(lo, hi, dtype=np.int64)

    def walk(self, prefix: Sequence[int]) -> int:
        """Node id reached by ``prefix`` from the root (at depth ``len(prefix)``), -1 if absent."""
        node = 0
        for d, token in enumerate(prefix):
            if d >= self.depth:
                return -1
            node = int(self.child(d, np.array([node]), np.array([token]))[0])
            if node < 0:
                return -1
        return node

    def allowed_tokens(self, prefix: Sequence[int]) -> np.ndarray:
        """Tokens that may follow ``prefix`` (empty if the prefix is not in the trie)."""
        node = self.walk(prefix)
        if node < 0 or len(prefix) >= self.depth:
            return np.zeros(0, dtype=np.int64)
        return self.children(len(prefix), node)[0]

    def item_of(self, sequence: Sequence[int]) -> int:
        """item_idx of a complete sequence, -1 if it is not one."""
        node = self.walk(sequence)
        terminals = self.terminal_items[len(sequence)] if 0 < len(sequence) <= self.depth else None
        if node < 0 or terminals is None:
            return -1
        return int(terminals[node])

    def leaf_items(self) -> np.ndarray:
        """``(n_depth,)`` item_idx of each deepest node (fixed-length tries: every leaf is an item)."""
        items = self.terminal_items[self.depth]
        if items is None:
            raise ValueError("the trie has no items at its deepest level")
        return items

    def item_paths(self, items: np.ndarray) -> np.ndarray:
        """Node id of each item's prefix at every depth (the root is node 0 at depth 0).

        Args:
            items: ``(M,)`` item_idx in ``0..num_items-1``.

        Returns:
            ``(M, depth + 1)`` int64 node ids; -1 past the end of an item shorter than ``depth``.
        """
        end_depth, end_node = self._item_ends
        items = np.asarray(items, dtype=np.int64)
        paths = np.full((len(items), self.depth + 1), -1, dtype=np.int64)  # (M, L+1)
        paths[:, 0] = 0
        node = np.full(len(items), -1, dtype=np.int64)  # at depth d+1, then moved up to d
        for d in range(self.depth, 0, -1):
            if d < self.depth:
                up = node >= 0  # a child at depth d+1 -> its parent at depth d
                node[up] = np.searchsorted(self.indptr[d], node[up], side="right") - 1
            ends = end_depth[items] == d
            node[ends] = end_node[items[ends]]
            paths[:, d] = node
        return paths

    @cached_property
    def _item_ends(self) -> tuple[np.ndarray, np.ndarray]:
        """``(I,)`` depth and ``(I,)`` node at which each item_idx ends (inverse of terminal_items)."""
        end_depth = np.zeros(self.num_items, dtype=np.int64)
        end_node = np.zeros(self.num_items, dtype=np.int64)
        for d, terminals in enumerate(self.terminal_items):
            if terminals is not None:
                nodes = np.flatnonzero(terminals >= 0)
                end_depth[terminals[nodes]] = d
                end_node[terminals[nodes]] = nodes
        return end_depth, end_node

    def to_torch(self, device: torch.device | str = "cpu") -> TorchTrie:
        """Device tensors of the CSR arrays for beam search (built once per device, then reused)."""
        device = torch.device(device)
        if device not in self._device_cache:
            self._device_cache[device] = TorchTrie.from_trie(self, device)
        return self._device_cache[device]


def _item_counts(indptr: list[np.ndarray], terminals: list[np.ndarray | None]) -> tuple[np.ndarray, ...]:
    """Per depth, items ending at or below each node: the terminals' counts summed up the CSR levels."""
    depth = len(indptr)
    counts = []
    below = np.zeros(0, dtype=np.int64)  # counts at depth d+1
    for d in range(depth, -1, -1):
        here = np.zeros(len(indptr[d]) - 1 if d < depth else int(indptr[-1][-1]), dtype=np.int64)  # (n_d,)
        if d < depth:
            cumulative = np.concatenate([[0], np.cumsum(below)])  # node j's children: indptr[j]:indptr[j+1]
            here += cumulative[indptr[d][1:]] - cumulative[indptr[d][:-1]]
        if terminals[d] is not None:
            here += terminals[d] >= 0
        counts.append(here.astype(_small_uint(int(here.max(initial=0)))))
        below = here
    return tuple(counts[::-1])


def _segmented_searchsorted(values: np.ndarray, lo: np.ndarray, hi: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Per query, the first position in ``values[lo:hi]`` (sorted) whose value is >= ``x``.

    A vectorised binary search: ``log2(max segment)`` passes over the queries.
    """
    lo = lo.copy()
    hi = hi.copy()
    while True:
        active = lo < hi
        if not active.any():
            return lo
        mid = (lo + hi) // 2
        below = np.zeros_like(active)
        below[active] = values[mid[active]] < x[active]
        lo = np.where(active & below, mid + 1, lo)
        hi = np.where(active & ~below, mid, hi)


@dataclass(frozen=True, eq=False)
class TorchTrie:
    """The trie's arrays as int64 tensors on one device, for the masking kernels."""

    indptr: tuple[torch.Tensor, ...]
    """Per depth: ``(n_d + 1,)`` CSR offsets."""
    tokens: tuple[torch.Tensor, ...]
    """Per depth: ``(n_{d+1},)`` edge tokens."""
    max_fanout: tuple[int, ...]
    """Per depth: the most children of any node."""
    leaf_items: torch.Tensor | None
    """``(n_depth,)`` item_idx of each deepest node, or None when items end elsewhere."""
    leaf_of_item: torch.Tensor
    """``(num_items,)`` deepest node of each item_idx (-1 for items ending elsewhere)."""
    trie: Trie
    """The host trie these tensors came from."""

    @classmethod
    def from_trie(cls, trie: Trie, device: torch.device) -> TorchTrie:
        def tensor(a: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(a.astype(np.int64)).to(device)

        leaves = trie.terminal_items[trie.depth]
        leaf_of_item = np.full(trie.num_items, -1, dtype=np.int64)
        if leaves is not None:
            leaf_of_item[leaves[leaves >= 0]] = np.flatnonzero(leaves >= 0)
        return cls(
            indptr=tuple(tensor(a) for a in trie.indptr),
            tokens=tuple(tensor(a) for a in trie.tokens),
            max_fanout=tuple(trie.max_fanout(d) for d in range(trie.depth)),
            leaf_items=None if leaves is None else tensor(leaves),
            leaf_of_item=torch.from_numpy(leaf_of_item).to(device),
            trie=trie,
        )

    @property
    def depth(self) -> int:
        return len(self.indptr)

    @property
    def device(self) -> torch.device:
        return self.indptr[0].device
