"""Trie lookups: a hand-written 5-item trie, a Python dict reference over random tries, memory."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tidrec.errors import InputError
from trie import Trie

# five items over 3 levels (token ids, not raw codes); allowed tokens are easy to list by hand
CODES = np.array(
    [
        [2, 10, 20],  # item 0
        [2, 10, 21],  # item 1
        [2, 11, 20],  # item 2
        [5, 10, 20],  # item 3
        [3, 12, 22],  # item 4
    ]
)


@pytest.mark.parametrize("dense_limit", [0, 1 << 16])
def test_golden_five_items(dense_limit):
    trie = Trie.from_codes(CODES, dense_limit=dense_limit)
    assert trie.depth == 3 and trie.num_items == 5 and trie.fixed_length
    assert trie.allowed_tokens([]).tolist() == [2, 3, 5]
    assert trie.allowed_tokens([2]).tolist() == [10, 11]
    assert trie.allowed_tokens([2, 10]).tolist() == [20, 21]
    assert trie.allowed_tokens([5, 10]).tolist() == [20]
    assert trie.allowed_tokens([4]).tolist() == []  # not a prefix
    assert trie.allowed_tokens([2, 10, 20]).tolist() == []  # complete
    assert [trie.item_of(row) for row in CODES] == [0, 1, 2, 3, 4]
    assert trie.item_of([2, 10]) == -1 and trie.item_of([2, 12, 20]) == -1
    assert [trie.num_nodes(d) for d in range(4)] == [1, 3, 4, 5]
    assert [trie.max_fanout(d) for d in range(3)] == [3, 2, 2]
    # vectorised child lookup, including misses and -1 nodes
    got = trie.child(1, np.array([0, 0, 1, 2, -1]), np.array([10, 11, 10, 10, 10]))
    assert (got[[0, 1]] >= 0).all() and got[2] == -1 and got[3] >= 0 and got[4] == -1


def test_sequences_may_be_prefixes_of_each_other():
    seqs = [[7, 8], [7], [7, 8, 9], [4, 1]]
    trie = Trie.from_sequences(seqs)
    assert [trie.item_of(s) for s in seqs] == [0, 1, 2, 3]
    assert trie.allowed_tokens([7]).tolist() == [8]
    assert trie.allowed_tokens([]).tolist() == [4, 7]
    assert trie.item_of([4]) == -1 and not trie.fixed_length


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Trie.from_codes(np.array([[1, 2], [3, 4], [1, 2]])), "rows 0 and 2"),
        (lambda: Trie.from_codes(np.array([[1, -2]])), "non-negative"),
        (lambda: Trie.from_codes(np.array([1, 2])), r"\(I, L\)"),
        (lambda: Trie.from_sequences([[1], []]), "sequence 1 is empty"),
        (lambda: Trie.from_sequences([[1, 2], [3], [1, 2]]), "0 and 2 are identical"),
        (lambda: Trie.from_sequences([[1], [2, -1]]), "sequence 1 has a negative"),
    ],
)
def test_bad_input_names_the_rows(build, message):
    with pytest.raises(InputError, match=message):
        build()


def _reference(seqs):
    """Python dict trie: prefix tuple -> set of next tokens; full sequence -> item."""
    nxt, items = {}, {}
    for i, seq in enumerate(seqs):
        for d in range(len(seq)):
            nxt.setdefault(tuple(seq[:d]), set()).add(seq[d])
        items[tuple(seq)] = i
    return nxt, items


sequences = st.lists(
    st.lists(st.integers(0, 12), min_size=1, max_size=5), min_size=1, max_size=40, unique_by=tuple
)


@settings(max_examples=60, deadline=None)
@given(seqs=sequences, dense=st.booleans(), probes=st.lists(st.lists(st.integers(0, 13), max_size=5)))
def test_lookups_match_a_dict_trie(seqs, dense, probes):
    trie = Trie.from_sequences(seqs, dense_limit=1 << 16 if dense else 0)
    nxt, items = _reference(seqs)
    for prefix in [*nxt, *map(tuple, probes)]:
        assert trie.allowed_tokens(prefix).tolist() == sorted(nxt.get(prefix, ()))
        assert trie.item_of(prefix) == items.get(prefix, -1)


@settings(max_examples=40, deadline=None)
@given(
    rows=st.lists(
        st.tuples(st.integers(0, 5), st.integers(6, 9), st.integers(10, 40)),
        min_size=1,
        max_size=60,
        unique=True,
    ),
    dense=st.booleans(),
)
def test_fixed_length_codes_match_a_dict_trie(rows, dense):
    codes = np.array(rows, dtype=np.int64)
    trie = Trie.from_codes(codes, dense_limit=1 << 16 if dense else 0)
    nxt, _ = _reference([list(r) for r in rows])
    for prefix, tokens in nxt.items():
        assert trie.allowed_tokens(prefix).tolist() == sorted(tokens)
    assert [trie.item_of(r) for r in rows] == list(range(len(rows)))
    leaves = trie.leaf_items()
    assert sorted(leaves.tolist()) == list(range(len(rows)))  # every leaf is exactly one item


def test_memory_per_item_stays_small():
    rng = np.random.default_rng(0)
    num_items = 200_000
    flat = rng.choice(256**3, size=num_items, replace=False)
    codes = np.stack([flat // 65536, flat // 256 % 256, flat % 256, np.zeros_like(flat)], 1)
    tokens = codes + np.array([2, 258, 514, 770])
    trie = Trie.from_codes(tokens)
    assert trie.bytes_per_item <= 32
    assert trie.item_of(tokens[12345].tolist()) == 12345
