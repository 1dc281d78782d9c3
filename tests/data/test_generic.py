"""Generic CSV/Parquet input through preprocessing: ordering, ties, indexing, k-core, bad input."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tidrec.data import DataConfig, build_dataset, prepare_dataset
from tidrec.data.preprocess import RawSource, Table, build, kcore_filter
from tidrec.errors import ConfigError, InputError

ITEMS = "item_id,title,genre\na,Alpha,x\nb,Beta,\nc,Gamma,z\nd,Delta,w\n"
# u2 appears first; u1's rows at t=5 tie (file order: c then a); item d is never interacted with.
INTERACTIONS = "user_id,item_id,timestamp\nu2,b,3\nu1,b,9\nu1,c,5\nu2,a,1\nu1,a,5\nu2,c,2\nu1,b,1\n"


def _files(tmp_path, interactions=INTERACTIONS, items=ITEMS):
    inter_path, items_path = tmp_path / "inter.csv", tmp_path / "items.csv"
    for path, text in ((inter_path, interactions), (items_path, items)):
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return inter_path, items_path


def _config(inter, items, **options) -> DataConfig:
    return DataConfig(dataset="files", interactions=inter, items=items, **options)


def test_time_order_ties_in_file_order_and_first_appearance_indexing(tmp_path):
    data = build_dataset(_config(*_files(tmp_path)))
    assert data.user_ids.tolist() == ["u2", "u1"]  # order of first appearance
    assert data.item_ids.tolist() == ["b", "c", "a"]  # d dropped: nobody interacted with it
    assert data.item_texts == ["Beta", "Gamma", "Alpha"]
    # u2: a@1, c@2, b@3; u1: b@1, then the t=5 tie c, a in file order, then b@9.
    assert [data.item_ids[data.sequence(u)].tolist() for u in range(2)] == [
        ["a", "c", "b"],
        ["b", "c", "a", "b"],
    ]
    assert data.timestamps.tolist() == [1, 2, 3, 1, 5, 5, 9]
    test = data.split("test")
    assert data.item_ids[test.targets].tolist() == ["b", "b"]
    assert [data.item_ids[h].tolist() for h in test.histories] == [["a", "c"], ["b", "c", "a"]]
    valid = data.split("valid")
    assert data.item_ids[valid.targets].tolist() == ["c", "a"]


def test_several_text_columns_and_renamed_columns(tmp_path):
    inter = "who,what,when\nu,a,1\nu,b,2\nu,c,3\n"
    items = "id,title,genre\na,Alpha,x\nb,Beta,\nc,Gamma,z\n"
    data = build_dataset(
        _config(
            *_files(tmp_path, inter, items),
            user_column="who",
            item_column="what",
            timestamp_column="when",
            item_id_column="id",
            text_columns=("title", "genre"),
        )
    )
    assert data.item_texts == ["title: Alpha. genre: x.", "title: Beta.", "title: Gamma. genre: z."]


def test_parquet_with_integer_ids_and_datetime_timestamps(tmp_path):
    times = [datetime(2020, 1, d, tzinfo=UTC) for d in (3, 1, 2)]
    pl.DataFrame({"user_id": [7, 7, 7], "item_id": [1, 2, 3], "timestamp": times}).write_parquet(
        tmp_path / "inter.parquet"
    )
    pl.DataFrame({"item_id": [1, 2, 3], "title": ["one", "two", "three"]}).write_parquet(
        tmp_path / "items.parquet"
    )
    data = build_dataset(_config(tmp_path / "inter.parquet", tmp_path / "items.parquet"))
    assert data.user_ids.tolist() == ["7"]
    assert data.item_ids[data.sequence(0)].tolist() == ["2", "3", "1"]
    assert data.timestamps.tolist() == [int(t.timestamp()) for t in sorted(times)]


def test_fractional_timestamps_order_exactly_and_store_whole_seconds(tmp_path):
    inter = "user_id,item_id,timestamp\nu,a,10.7\nu,b,10.2\nu,c,11\n"
    data = build_dataset(_config(*_files(tmp_path, inter)))
    assert data.item_ids[data.sequence(0)].tolist() == ["b", "a", "c"]
    assert data.timestamps.tolist() == [10, 10, 11]


def test_large_integer_timestamps_are_kept_exactly(tmp_path):
    nanoseconds = [1_700_000_000_123_456_789, 1_700_000_000_123_456_788, 1_700_000_000_123_456_790]
    pl.DataFrame({"user_id": ["u"] * 3, "item_id": ["a", "b", "c"], "timestamp": nanoseconds}).write_parquet(
        tmp_path / "inter.parquet"
    )
    (tmp_path / "items.csv").write_text(ITEMS)
    data = build_dataset(_config(tmp_path / "inter.parquet", tmp_path / "items.csv"))
    assert data.timestamps.tolist() == sorted(nanoseconds)
    assert data.item_ids[data.sequence(0)].tolist() == ["b", "a", "c"]


def test_kcore_is_iterative():
    # k=2: item z has one interaction; dropping it leaves u3 with one, which then drops item y to one.
    frame = pl.DataFrame(
        {
            "user_id": ["u1", "u1", "u2", "u2", "u3", "u3", "u4", "u4"],
            "item_id": ["x", "w", "x", "w", "y", "z", "y", "x"],
        }
    )
    kept = kcore_filter(frame, 2)
    assert kept.rows() == [("u1", "x"), ("u1", "w"), ("u2", "x"), ("u2", "w")]
    assert kcore_filter(frame, 0).height == frame.height


def test_kcore_and_drop_short_users_options(tmp_path):
    inter = "user_id,item_id,timestamp\n" + "".join(
        f"{u},{i},{t}\n" for t, (u, i) in enumerate([("u1", "a"), ("u1", "b"), ("u1", "c"), ("u2", "a")])
    )
    with pytest.raises(InputError, match="user 'u2' has 1 interaction;"):
        build_dataset(_config(*_files(tmp_path, inter)))
    data = build_dataset(_config(*_files(tmp_path, inter), drop_short_users=True))
    assert data.user_ids.tolist() == ["u1"]
    with pytest.raises(InputError, match="no interactions left"):
        build_dataset(_config(*_files(tmp_path, inter), kcore=2))


@pytest.mark.parametrize(
    ("interactions", "items", "message"),
    [
        (INTERACTIONS.replace("timestamp", "t"), ITEMS, r"missing column 'timestamp' .*--timestamp-col"),
        (INTERACTIONS, ITEMS.replace("title", "name"), r"items.csv: missing column 'title' .*--text-columns"),
        ("", ITEMS, r"inter.csv: file is empty"),
        ("user_id,item_id,timestamp\n", ITEMS, r"inter.csv: has a header but no rows"),
        (INTERACTIONS.replace("u1,c,5", "u1,c,noon"), ITEMS, r"inter.csv line 4: timestamp 'noon' .*not a"),
        (INTERACTIONS, ITEMS + "b,Beta 2,\n", r"items.csv line 6: item 'b' .* text than at line 3"),
        (INTERACTIONS + "u1,q,4\n", ITEMS, r"inter.csv line 9: item 'q' is not in .*items.csv"),
        (INTERACTIONS + "u3,a,1\n", ITEMS, r"inter.csv line 9: user 'u3' has 1 interaction; .* >= 3"),
        (INTERACTIONS.encode() + b"u1,\xe9t\xe9,4\n", ITEMS, r"inter.csv line 9: not valid UTF-8"),
        (INTERACTIONS.replace("u1,b,9", "u1,b,inf"), ITEMS, r"inter.csv line 3: timestamp 'inf'"),
        (INTERACTIONS.replace("u2,a,1", ",a,1"), ITEMS, r"inter.csv line 5: column 'user_id' is empty"),
    ],
    ids=["missing-column", "missing-text-column", "empty-file", "header-only", "non-numeric-time",
         "two-texts", "unknown-item", "single-interaction-user", "non-utf8", "infinite-time", "empty-user"],
)  # fmt: skip
def test_bad_input_is_one_line_error_and_writes_nothing(tmp_path, interactions, items, message):
    inter_path, items_path = _files(tmp_path, interactions, items)
    out = tmp_path / "out"
    with pytest.raises(InputError, match=message) as caught:
        prepare_dataset(_config(inter_path, items_path), out)
    assert "\n" not in str(caught.value)
    assert str(caught.value).startswith(str(tmp_path))  # names the file
    assert not out.exists() or not any(out.iterdir())


def test_config_validation():
    with pytest.raises(ConfigError, match="--interactions and --items"):
        DataConfig(dataset="files")
    with pytest.raises(ConfigError, match="--amazon-dir"):
        DataConfig(dataset="amazon")
    with pytest.raises(ConfigError, match="kcore"):
        DataConfig(kcore=-1)


def test_split_targets_are_each_users_last_two_items(tmp_path):
    data = build_dataset(_config(*_files(tmp_path)))
    for name, cut in (("valid", 2), ("test", 1)):
        split = data.split(name)
        for u in range(data.num_users):
            seq = data.sequence(u)
            assert split.targets[u] == seq[-cut]
            np.testing.assert_array_equal(split.histories[u], seq[:-cut])


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from("pqrs"), st.sampled_from("abcde"), st.integers(0, 3)), min_size=1),
    st.integers(0, 3),
)
def test_build_matches_a_plain_python_reference(rows, kcore):
    """Random small inputs: same result as k-core, drop-short-users and a stable sort written out by hand."""
    frame = pl.DataFrame(
        {"user_id": [r[0] for r in rows], "item_id": [r[1] for r in rows], "timestamp": [r[2] for r in rows]}
    ).with_row_index("row")
    items = pl.DataFrame({"item_id": list("abcde"), "text": list("ABCDE")}).with_row_index("row")
    source = RawSource("prop", Table(frame, Path("i.csv"), 2), Table(items, Path("t.csv"), 2))
    kept = list(enumerate(rows))
    while kcore > 1:  # the k-core, by hand
        users = Counter(r[0] for _, r in kept)
        items_count = Counter(r[1] for _, r in kept)
        smaller = [(i, r) for i, r in kept if users[r[0]] >= kcore and items_count[r[1]] >= kcore]
        if len(smaller) == len(kept):
            break
        kept = smaller
    users = Counter(r[0] for _, r in kept)
    kept = [(i, r) for i, r in kept if users[r[0]] >= 3]
    if not kept:
        with pytest.raises(InputError, match="no interactions left"):
            build(source, kcore=kcore, drop_short_users=True)
        return
    data = build(source, kcore=kcore, drop_short_users=True)
    user_order = list(dict.fromkeys(r[0] for _, r in kept))
    assert data.user_ids.tolist() == user_order
    assert data.item_ids.tolist() == list(dict.fromkeys(r[1] for _, r in kept))
    for u, user in enumerate(user_order):
        expected = sorted(((r[2], i, r[1]) for i, r in kept if r[0] == user))  # time, then file row
        assert data.item_ids[data.sequence(u)].tolist() == [item for _, _, item in expected]
