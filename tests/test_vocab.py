"""Token layout: golden ids for a tiny vocabulary."""

import numpy as np
import pytest

from tidrec.errors import ConfigError
from tidrec.vocab import EOS, PAD, Vocab


def test_token_layout_golden():
    vocab = Vocab(level_sizes=(3, 2, 4), user_buckets=5)
    assert (PAD, EOS) == (0, 1)
    assert vocab.level_offsets == (2, 5, 7)
    assert vocab.first_user_token == 11
    assert vocab.size == 16
    codes = np.array([[0, 0, 0], [2, 1, 3]])
    np.testing.assert_array_equal(vocab.sid_tokens(codes), [[2, 5, 7], [4, 6, 10]])


def test_user_tokens_are_stable_and_in_range():
    vocab = Vocab(level_sizes=(4,), user_buckets=7)
    tokens = [vocab.user_token(f"user{i}") for i in range(50)]
    assert all(vocab.first_user_token <= t < vocab.size for t in tokens)
    assert vocab.user_token("user3") == tokens[3]
    assert len(set(tokens)) > 1


def test_invalid_layout_is_refused():
    with pytest.raises(ConfigError):
        Vocab(level_sizes=(4, 0))
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        Vocab(level_sizes=(4, 4)).sid_tokens(np.zeros((3, 3), dtype=int))
