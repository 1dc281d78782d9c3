"""Artifacts are written atomically: an interrupted write leaves the old file (or none)."""

import json

import pytest

from tidrec.io import atomic_path, write_json


def test_interrupted_write_leaves_previous_file_and_no_temp(tmp_path):
    target = tmp_path / "stats.json"
    write_json(target, {"version": 1})
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert json.loads(target.read_text()) == {"version": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["stats.json"]


def test_write_creates_parent_folders(tmp_path):
    write_json(tmp_path / "a" / "b.json", {"x": [1, 2]})
    assert json.loads((tmp_path / "a" / "b.json").read_text()) == {"x": [1, 2]}


def test_written_files_get_ordinary_permissions(tmp_path):
    target = tmp_path / "results.json"
    write_json(target, {"a": 1})
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    assert target.stat().st_mode & 0o777 == plain.stat().st_mode & 0o777  # not mkstemp's owner-only 0600


def test_a_write_removes_what_killed_writes_of_the_same_file_left(tmp_path):
    target = tmp_path / "stats.json"
    stale = [tmp_path / ".stats.json.abc123.tmp", tmp_path / ".stats.json.x_y.tmp"]  # as kill -9 leaves them
    for path in stale:
        path.write_bytes(b"")
    others = [tmp_path / ".other.json.abc123.tmp", tmp_path / "stats.json.tmp", tmp_path / ".stats.json.keep"]
    for path in others:
        path.write_text("not ours")
    write_json(target, {"version": 2})
    assert json.loads(target.read_text()) == {"version": 2}
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["stats.json", *(p.name for p in others)])


def test_stale_temporaries_of_a_name_with_glob_characters_are_found(tmp_path):
    target = tmp_path / "results[test].json"
    (tmp_path / ".results[test].json.k3y.tmp").write_bytes(b"")
    (tmp_path / ".resultst.json.k3y.tmp").write_bytes(b"")  # what an unescaped [test] would also match
    write_json(target, {"a": 1})
    assert sorted(p.name for p in tmp_path.iterdir()) == [".resultst.json.k3y.tmp", "results[test].json"]
