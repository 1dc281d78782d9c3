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
