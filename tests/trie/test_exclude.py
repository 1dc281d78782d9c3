"""Dead nodes per user: a hand-written 5-item trie, and a set-based reference over random tries."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from trie import Trie, constrained_candidates, dead_nodes

# the 5-item trie of test_trie.py; node ids per depth are in (parent, token) order:
#   depth 1: (2,)=0 (3,)=1 (5,)=2
#   depth 2: (2,10)=0 (2,11)=1 (3,12)=2 (5,10)=3
#   depth 3: (2,10,20)=0 item 0, (2,10,21)=1 item 1, (2,11,20)=2 item 2, (3,12,22)=3 item 4,
#            (5,10,20)=4 item 3
CODES = np.array([[2, 10, 20], [2, 10, 21], [2, 11, 20], [5, 10, 20], [3, 12, 22]])


def listed(table: np.ndarray) -> list[list[int]]:
    return [[int(n) for n in row if n >= 0] for row in table]


def test_golden_dead_nodes_on_five_items():
    trie = Trie.from_codes(CODES)
    assert [c.tolist() for c in trie.item_counts] == [[5], [3, 1, 1], [2, 1, 1, 1], [1, 1, 1, 1, 1]]
    exclude = [
        np.array([0, 1]),  # both items under (2,10): that prefix dies, (2,) lives on through item 2
        np.array([2, 0, 1, 1]),  # everything under (2,), with a repeat
        np.array([4]),  # the only item under (3,)
        np.array([], dtype=np.int64),
        np.array([3, 4, 2, 1, 0]),  # the whole catalogue: even the root is dead
        np.array([0, 3]),  # (2,10,20) and (5,10,20): only (5,) and (5,10) die with item 3
    ]
    root, first, second, leaves = dead_nodes(trie, exclude)
    assert listed(root) == [[], [], [], [], [0], []]
    assert listed(first) == [[], [0], [1], [], [0, 1, 2], [2]]
    assert listed(second) == [[0], [0, 1], [2], [], [0, 1, 2, 3], [3]]
    assert listed(leaves) == [[0, 1], [0, 1, 2], [3], [], [0, 1, 2, 3, 4], [0, 4]]
    for table in (root, first, second, leaves):  # kernel layout: -1 padding first, then ascending
        assert table.shape[0] == 6 and (np.diff(table, axis=1) > 0).all(where=table[:, 1:] >= 0)
    # the third user's first step may only start with tokens 2 and 5
    logits = torch.zeros(1, 30)
    got = constrained_candidates(
        logits,
        torch.zeros(1),
        torch.zeros(1, dtype=torch.long),
        trie=trie.to_torch(),
        depth=0,
        k=3,
        exclude=torch.from_numpy(first[2:3]),
        kernel="gather",
    )
    assert sorted(got.tokens[0][torch.isfinite(got.scores[0])].tolist()) == [2, 5]


def test_items_may_end_at_inner_nodes():
    trie = Trie.from_sequences([[7, 8], [7], [7, 8, 9], [4, 1]])
    assert trie.item_paths(np.array([1, 2])).tolist() == [[0, 1, -1, -1], [0, 1, 1, 0]]
    # excluding [7, 8, 9] and [7, 8] kills (7, 8) but not (7,), where item 1 ends
    _, first, second, third = dead_nodes(trie, [np.array([2, 0])])
    assert listed(first) == [[]] and listed(second) == [[trie.walk([7, 8])]] and listed(third) == [[0]]


def test_bad_item_names_the_user():
    trie = Trie.from_codes(CODES)
    with pytest.raises(ValueError, match=r"exclude\[1\].*0\.\.4"):
        dead_nodes(trie, [np.array([0]), np.array([5])])


sequences = st.lists(
    st.lists(st.integers(0, 4), min_size=1, max_size=4), min_size=1, max_size=40, unique_by=tuple
)


@settings(max_examples=60, deadline=None)
@given(seqs=sequences, data=st.data())
def test_dead_nodes_match_a_set_reference(seqs, data):
    trie = Trie.from_sequences(seqs)
    exclude = data.draw(
        st.lists(st.lists(st.integers(0, len(seqs) - 1), max_size=2 * len(seqs)), min_size=1, max_size=4)
    )
    tables = dead_nodes(trie, [np.array(e, dtype=np.int64) for e in exclude])
    # reference: the items below each (depth, node), found by walking every prefix of every item
    below: dict[tuple[int, int], set[int]] = {}
    for item, seq in enumerate(seqs):
        for depth in range(len(seq) + 1):
            below.setdefault((depth, trie.walk(seq[:depth])), set()).add(item)
    for user, banned in enumerate(exclude):
        expected = sorted(key for key, items in below.items() if items <= set(banned))
        got = sorted((depth, node) for depth, table in enumerate(tables) for node in listed(table)[user])
        assert got == expected
    for depth, counts in enumerate(trie.item_counts):
        assert counts.tolist() == [len(below[depth, node]) for node in range(trie.num_nodes(depth))]
