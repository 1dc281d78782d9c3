"""``python -m tidrec.run`` and ``tidrec.compare``: one pipeline, its options, and a tiny end-to-end run."""

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
    for flag in ("--dataset", "--tokenizer", "--preset", "--max-epochs", "--models", "--out", "--config"):
        assert flag in text
    assert "--model " not in text  # set per model by the run itself


def test_each_model_gets_the_options_it_reads_and_its_preset_for_the_rest(tmp_path):
    config = RunConfig(out=tmp_path, preset="cpu", max_len=50, loss="bce", d_model=32)
    assert config.run == tmp_path
    assert config.fit_config("sasrec").max_len == 50  # the baselines get them ...
    assert config.fit_config("tiger").loss is None  # ... the generative model does not
    assert config.fit_config("tiger").d_model == config.fit_config("sasrec").d_model == 32
    assert config.fit_config("sasrec").preset is None and config.fit_config("pop").model == "pop"
    with pytest.raises(ConfigError, match="--models: unknown model 'nope'"):
        RunConfig(out=tmp_path, models=("nope",))


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
        "--max-epochs", "2", "--batch-size", "16", "--max-len", "8", "--progress", "false",
        "--models", "tiger", "pop", "sasrec", "--decoder", "exact", "--max-beam", "64",
    ]  # fmt: skip
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "| tiger |" in text and "| pop |" in text and "| sasrec |" in text
    saved = json.loads((out / "results.json").read_text())
    assert [r["model"] for r in saved["results"]] == ["tiger", "pop", "sasrec"]
    assert saved["exclude_history"] is True and saved["results"][0]["invalid_rate"] == 0.0
    assert saved["results"][0]["certified"] == 1.0  # the exact decoder proves every list
    assert "certified" not in saved["results"][1]  # popularity has nothing to certify
    for path in ("tokenizer/sids.parquet", "models/tiger/best.ckpt", "models/tiger/curves.png", "results.md"):
        assert (out / path).is_file(), path
    for model in ("tiger", "pop", "sasrec"):  # the numbers tidrec.evaluate gives, per model
        assert (out / f"models/{model}/eval/results-test-exclude-history.json").is_file()
    assert (out / "models/sasrec/config.yaml").is_file()


def test_the_embedding_model_reaches_every_model_that_embeds_text(tmp_path, monkeypatch):
    import numpy as np

    import tidrec.embed
    import tidrec.tokenize

    calls = []

    def embed(texts, *, model, cache_dir=None, batch_size=64, device="auto", progress=True):
        calls.append(model)
        return np.random.default_rng(len(texts)).normal(size=(len(texts), 32)).astype(np.float32)

    monkeypatch.setattr(tidrec.embed, "embed_texts", embed)
    monkeypatch.setattr(tidrec.tokenize, "embed_texts", embed)
    write_files(tmp_path)
    out = tmp_path / "run"
    argv = [
        "--dataset", "files", "--interactions", str(tmp_path / "interactions.csv"),
        "--items", str(tmp_path / "items.csv"), "--out", str(out), "--device", "cpu",
        "--embedding-model", "my-org/my-sentence-model",
        "--models", "tiger", "llmseqsim", "llm2sasrec", "llm2bert4rec",
        "--tokenizer", "rkmeans", "--levels", "2", "--codebook-size", "3", "--collision-size", "8",
        "--preset", "cpu", "--d-model", "8", "--num-layers", "1", "--num-heads", "2", "--d-ff", "32",
        "--max-epochs", "1", "--batch-size", "16", "--max-len", "8", "--progress", "false",
    ]  # fmt: skip
    assert main(argv) == 0
    assert calls and set(calls) == {"my-org/my-sentence-model"}
    assert len(calls) == 4  # the tokenizer and each of the three text baselines
    for model in ("llmseqsim", "llm2sasrec", "llm2bert4rec"):
        info = json.loads((out / "models" / model / "train_info.json").read_text())
        assert info["embedding_model"] == "my-org/my-sentence-model", model
