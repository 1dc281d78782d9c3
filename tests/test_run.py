"""``python -m tidrec.run``: the whole pipeline on a tiny file dataset, and its --help."""

from __future__ import annotations

import json

import pytest

from tidrec.errors import ConfigError
from tidrec.run import RunConfig, main

TITLES = ["Toy Story", "Heat", "Casino", "Jumanji", "Sabrina", "GoldenEye", "Balto", "Nixon"]


def write_files(folder):
    rows = ["user_id,item_id,timestamp"]
    for user in range(10):
        for step in range(5):
            rows.append(f"u{user},m{(user + step) % 8},{100 * user + step}")
    (folder / "interactions.csv").write_text("\n".join(rows) + "\n")
    items = "".join(f"m{i},{t}\n" for i, t in enumerate(TITLES))
    (folder / "items.csv").write_text("item_id,title\n" + items)


def test_help_lists_tokenize_fit_and_run_flags(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--dataset", "--tokenizer", "--preset", "--max-epochs", "--baselines", "--out"):
        assert flag in text
    assert "--run " not in text and "--model " not in text  # set by the run itself


def test_run_folder_is_out_and_cpu_preset_gets_a_budget(tmp_path):
    config = RunConfig(out=tmp_path, preset="cpu")
    assert config.run == tmp_path
    assert config.fit_config("tiger").max_time is not None
    assert config.fit_config("pop").model == "pop"
    baseline_options = RunConfig(out=tmp_path, preset="cpu", max_len=50, windows="random")
    assert baseline_options.fit_config("sasrec").max_len == 50  # the baselines get them ...
    assert baseline_options.fit_config("tiger").windows is None  # ... the generative model does not
    with pytest.raises(ConfigError, match="--baselines"):
        RunConfig(out=tmp_path, baselines=("nope",))


def test_tiny_end_to_end_run(tmp_path, capsys):
    write_files(tmp_path)
    out = tmp_path / "run"
    argv = [
        "--dataset", "files",
        "--interactions", str(tmp_path / "interactions.csv"),
        "--items", str(tmp_path / "items.csv"),
        "--out", str(out),
        "--embedding-cache", str(tmp_path / "cache"),
        "--device", "cpu",
        "--tokenizer", "rkmeans", "--levels", "2", "--codebook-size", "3", "--collision-size", "8",
        "--preset", "cpu", "--d-model", "16", "--num-layers", "1", "--num-heads", "2", "--d-ff", "32",
        "--max-epochs", "2", "--batch-size", "16", "--progress", "false",
    ]  # fmt: skip
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "| tiger | test |" in text and "| pop | test |" in text
    saved = json.loads((out / "results.json").read_text())
    assert [r["model"] for r in saved["results"]] == ["tiger", "pop"]
    assert saved["results"][0]["metrics"]["invalid_rate"] == 0.0
    for path in ("tokenizer/sids.parquet", "models/tiger/best.ckpt", "models/tiger/curves.png", "results.md"):
        assert (out / path).is_file(), path
    assert (out / "models/tiger/eval/results.json").is_file()
    assert (out / "models/pop/eval/results.json").is_file()
