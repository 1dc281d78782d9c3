"""Extending a SID table with new items: existing SIDs kept, unique collision codes, a checked lineage."""

import numpy as np
import pytest

from tidrec.errors import InputError
from tokenizer.sid_table import SidTable


@pytest.fixture
def table() -> SidTable:
    """Four items on tuples (0, 1), (0, 1), (2, 0), (1, 1); collision level of 3 codes."""
    codes = np.array([[0, 1, 0], [0, 1, 1], [2, 0, 0], [1, 1, 0]])
    return SidTable(np.array(["a", "b", "c", "d"]), codes, (3, 2, 3), "data-hash")


def test_new_items_take_the_next_free_collision_code_and_old_sids_stay(table):
    grown = table.extend(np.array(["e", "f", "g"]), np.array([[0, 1], [2, 1], [1, 1]]))
    assert grown.item_ids.tolist() == ["a", "b", "c", "d", "e", "f", "g"]
    np.testing.assert_array_equal(grown.codes[:4], table.codes)  # nothing the model learnt moves
    assert grown.codes[4:].tolist() == [[0, 1, 2], [2, 1, 0], [1, 1, 1]]
    assert len(np.unique(grown.codes, axis=0)) == 7 and grown.level_sizes == table.level_sizes


def test_a_full_collision_level_is_a_one_line_error(table):
    with pytest.raises(InputError, match=r"item 'g' needs collision code 3 on the tuple \(0, 1\)"):
        table.extend(np.array(["e", "g"]), np.array([[0, 1], [0, 1]]))


def test_an_existing_or_repeated_id_is_refused(table):
    with pytest.raises(InputError, match="item id 'c' is already in the SID table"):
        table.extend(np.array(["c"]), np.array([[1, 0]]))
    with pytest.raises(InputError, match="item id 'x' appears twice"):
        table.extend(np.array(["x", "x"]), np.array([[1, 0], [2, 0]]))
    with pytest.raises(InputError, match="codes must be"):
        table.extend(np.array(["x"]), np.array([[1, 0, 0]]))
    with pytest.raises(InputError, match="out of range"):
        table.extend(np.array(["x"]), np.array([[3, 0]]))


def test_the_lineage_is_checked_and_survives_saving(table, tmp_path):
    grown = table.extend(np.array(["e"]), np.array([[1, 0]]))
    again = grown.extend(np.array(["f"]), np.array([[1, 0]]))
    assert again.extends(table.content_hash()) and again.extends(grown.content_hash())
    assert again.extends(again.content_hash())
    assert not table.extends(grown.content_hash())  # a table does not extend its own extension
    other = SidTable(table.item_ids, table.codes[::-1].copy(), table.level_sizes, "data-hash")
    assert not again.extends(other.content_hash())

    again.save(tmp_path / "sids.parquet")
    loaded = SidTable.load(tmp_path / "sids.parquet")
    assert loaded.lineage == again.lineage and loaded.extends(table.content_hash())

    # a lineage that claims another table's hash is not believed: the rows are hashed again
    forged = SidTable(other.item_ids, other.codes, other.level_sizes, "data-hash", lineage=again.lineage)
    assert not forged.extends(table.content_hash())
