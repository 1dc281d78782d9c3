"""prepare_dataset's manifest reuse and the ``python -m tidrec.data`` CLI."""

from __future__ import annotations

import json

import pytest

import tidrec.data.prepare as prepare
from tidrec.data import DataConfig, load_dataset, prepare_dataset
from tidrec.data.__main__ import main

INTERACTIONS = "user_id,item_id,timestamp\nu1,a,0\nu1,b,1\nu1,c,2\nu2,c,3\nu2,a,4\nu2,b,5\n"
ITEMS = "item_id,title\na,Alpha\nb,Beta\nc,Gamma\n"


@pytest.fixture
def files(tmp_path):
    (tmp_path / "inter.csv").write_text(INTERACTIONS)
    (tmp_path / "items.csv").write_text(ITEMS)
    return tmp_path / "inter.csv", tmp_path / "items.csv"


def _count_builds(monkeypatch) -> list[int]:
    calls: list[int] = []
    real = prepare.build_dataset

    def counting(config):
        calls.append(1)
        return real(config)

    monkeypatch.setattr(prepare, "build_dataset", counting)
    return calls


def test_manifest_reuse_and_refusal_to_replace_on_change(tmp_path, files, monkeypatch, capsys):
    calls = _count_builds(monkeypatch)
    config = DataConfig(dataset="files", interactions=files[0], items=files[1])
    out = tmp_path / "data"
    first = prepare_dataset(config, out)
    assert "users" in capsys.readouterr().out  # the statistics table
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["source"]["kind"] == "files"
    assert manifest["source"]["interactions"]["sha256"]
    assert manifest["content_hash"] == first.content_hash
    assert manifest["stats"]["interactions"] == 6

    again = prepare_dataset(config, out)
    assert len(calls) == 1  # reused, not rebuilt
    assert again.content_hash == first.content_hash
    unset = prepare_dataset(DataConfig(), out)  # no data option: the folder's data, not ml-100k
    assert len(calls) == 1 and unset.content_hash == first.content_hash

    kcore2 = DataConfig(dataset="files", interactions=files[0], items=files[1], kcore=2)
    with pytest.raises(prepare.ConfigError, match=r"with other options \(--kcore\)"):
        prepare_dataset(kcore2, out)
    moved = tmp_path / "moved.csv"
    moved.write_text(files[0].read_text())
    elsewhere = DataConfig(dataset="files", interactions=moved, items=files[1])
    with pytest.raises(prepare.ConfigError, match=r"from files .*inter.csv .*, not files .*moved.csv"):
        prepare_dataset(elsewhere, out)
    files[1].write_text(ITEMS.replace("Gamma", "Gamma II"))
    with pytest.raises(prepare.ConfigError, match="files have changed since"):
        prepare_dataset(config, out)
    assert len(calls) == 1  # nothing rebuilt, nothing replaced
    assert load_dataset(out).content_hash == first.content_hash

    fresh = prepare_dataset(kcore2, tmp_path / "other")  # a new folder takes the new data
    assert len(calls) == 2 and "Gamma II" in fresh.item_texts


def test_a_failed_build_writes_nothing(tmp_path, files):
    config = DataConfig(dataset="files", interactions=files[0], items=files[1])
    out = tmp_path / "data"
    files[0].write_text(INTERACTIONS + "u9,a,1\n")
    with pytest.raises(prepare.InputError, match="user 'u9'"):
        prepare_dataset(config, out)
    assert not (out / "manifest.json").exists()


def test_cli_help(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--dataset", "--kcore", "--drop-short-users", "--text-columns", "--amazon-dir", "--out"):
        assert flag in text


def test_cli_end_to_end_and_one_line_error(tmp_path, files, capsys):
    out = tmp_path / "data"
    argv = ["--dataset", "files", "--interactions", str(files[0]), "--items", str(files[1])]
    argv += ["--out", str(out)]
    assert main(argv) == 0
    assert load_dataset(out).num_users == 2
    assert "interactions" in capsys.readouterr().out
    files[0].write_text(INTERACTIONS.replace("u1,b,1", "u1,b,later"))
    assert main([*argv[:-1], str(tmp_path / "other")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("python -m tidrec.data: error: ")
    assert "inter.csv line 3: timestamp 'later'" in err[-1]
    assert not (tmp_path / "other").exists()
