"""Dataset and SidTable: leave-one-out splits, hashes, round trips, refusal of tampered files."""

import numpy as np
import pyarrow.parquet as pq
import pytest

from tidrec.data import Dataset, load_dataset
from tidrec.errors import InputError
from tokenizer import SidTable


def _dataset() -> Dataset:
    return Dataset(
        name="tiny",
        user_ids=np.array(["u1", "u2"]),
        item_ids=np.array(["a", "b", "c"]),
        item_texts=["A", "B", "C"],
        offsets=np.array([0, 3, 7]),
        items=np.array([0, 1, 2, 2, 1, 0, 1]),
        timestamps=np.arange(7),
    )


def test_leave_one_out_split():
    data = _dataset()
    valid, test = data.split("valid"), data.split("test")
    np.testing.assert_array_equal(valid.targets, [1, 0])
    np.testing.assert_array_equal(test.targets, [2, 1])
    assert [h.tolist() for h in valid.histories] == [[0], [2, 1]]
    assert [h.tolist() for h in test.histories] == [[0, 1], [2, 1, 0]]
    assert [s.tolist() for s in data.train_sequences()] == [[0], [2, 1]]


def test_dataset_round_trip_and_tamper_check(tmp_path):
    data = _dataset()
    data.save(tmp_path)
    loaded = load_dataset(tmp_path)
    assert loaded.content_hash == data.content_hash
    assert loaded.item_texts == data.item_texts
    table = pq.read_table(tmp_path / "items.parquet").to_pydict()
    table["text"][0] = "changed"
    import pyarrow as pa

    pq.write_table(pa.table(table), tmp_path / "items.parquet")
    with pytest.raises(InputError, match="content hash"):
        load_dataset(tmp_path)


def test_short_sequences_are_refused():
    with pytest.raises(ValueError, match=">= 3"):
        Dataset(
            "x", np.array(["u"]), np.array(["a"]), ["A"], np.array([0, 2]), np.zeros(2, int), np.arange(2)
        )


def test_sid_table_round_trip_and_hash(tmp_path):
    sids = SidTable(np.array(["a", "b", "c"]), np.array([[0, 1, 0], [0, 1, 1], [1, 0, 0]]), (2, 2, 2), "h")
    sids.save(tmp_path / "sids.parquet")
    loaded = SidTable.load(tmp_path / "sids.parquet")
    np.testing.assert_array_equal(loaded.codes, sids.codes)
    assert loaded.content_hash() == sids.content_hash()
    assert SidTable.metadata(tmp_path / "sids.parquet")["dataset_hash"] == "h"
    other = SidTable(sids.item_ids, np.array([[0, 1, 1], [0, 1, 0], [1, 0, 0]]), (2, 2, 2), "h")
    assert other.content_hash() != sids.content_hash()
    with pytest.raises(InputError, match="not found"):
        SidTable.load(tmp_path / "missing.parquet")
