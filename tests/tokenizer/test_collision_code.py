import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tidrec.errors import ConfigError
from tokenizer.collision import add_collision_codes


def test_collision_codes_number_shared_tuples_in_item_order():
    codes = np.array([[1, 2], [0, 0], [1, 2], [3, 1], [1, 2], [0, 0]])
    out = add_collision_codes(codes, collision_size=4)
    np.testing.assert_array_equal(out[:, :2], codes)
    assert out[:, 2].tolist() == [0, 0, 1, 0, 2, 1]
    assert out.dtype == np.int64


def test_collision_level_overflow_is_an_error_naming_the_group():
    codes = np.array([[1, 2], [0, 0], [1, 2], [1, 2]])
    with pytest.raises(ConfigError, match=r"3 items share the code tuple \(1, 2\).*--collision-size 3"):
        add_collision_codes(codes, collision_size=2)
    assert add_collision_codes(codes, collision_size=3)[:, 2].tolist() == [0, 0, 1, 2]


def test_wide_codes_that_cannot_be_packed_still_group():
    big = 2**40
    codes = np.array([[big, big, 5], [big, big, 5], [0, big, 5]])
    assert add_collision_codes(codes, collision_size=2)[:, 3].tolist() == [0, 1, 0]


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 2)), min_size=1, max_size=40))
def test_rows_become_unique_and_codes_stay_in_range(rows):
    codes = np.array(rows, dtype=np.int64)
    out = add_collision_codes(codes, collision_size=len(rows))
    assert len({tuple(r) for r in out.tolist()}) == len(rows)
    assert out[:, 2].max() < len(rows)
