import json

import numpy as np
import pytest

from tidrec.tokenize import TokenizeConfig, main, tokenize_run
from tokenizer import SidTable, load_tokenizer

TITLES = ["Toy Story", "Heat", "Casino", "Jumanji", "Sabrina", "GoldenEye", "Balto", "Nixon"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("files")
    rows = ["user_id,item_id,timestamp"]
    for user in range(6):
        for step in range(4):
            rows.append(f"u{user},m{(user + 3 * step) % 8},{100 * user + step}")
    (folder / "interactions.csv").write_text("\n".join(rows) + "\n")
    (folder / "items.csv").write_text(
        "item_id,title\n" + "".join(f"m{i},{t}\n" for i, t in enumerate(TITLES))
    )
    return folder


def flags(files, out, *extra):
    return [
        "--dataset", "files",
        "--interactions", str(files / "interactions.csv"),
        "--items", str(files / "items.csv"),
        "--out", str(out),
        "--embedding-cache", str(files / "cache"),
        "--device", "cpu",
        *extra,
    ]  # fmt: skip


def test_help_lists_data_and_tokenizer_flags(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for flag in (
        "--dataset",
        "--kcore",
        "--tokenizer",
        "--codebook-size",
        "--collision-size",
        "--rqvae-epochs",
    ):
        assert flag in text


def test_tiny_end_to_end_run_writes_all_artifacts(files, tmp_path, capsys):
    argv = flags(files, tmp_path / "run", "--levels", "2", "--codebook-size", "4", "--collision-size", "8",
                 "--rqvae-epochs", "3", "--rqvae-hidden-dims", "16", "--rqvae-latent-dim", "4",
                 "--item-vectors", "text")  # fmt: skip
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert "unique tuples before collision code" in out
    assert "RQ-VAE" not in err  # output is not a terminal here: no bar redrawn into a log
    assert main([*argv, "--progress", "false"]) == 0
    assert "RQ-VAE" not in capsys.readouterr().err  # logs stay clean with --progress false
    folder = tmp_path / "run" / "tokenizer"
    assert sorted(p.name for p in folder.iterdir()) == [
        "code_usage.png",
        "sids.parquet",
        "stats.json",
        "tokenizer.pt",
    ]
    table = SidTable.load(folder / "sids.parquet")
    assert table.codes.shape == (8, 3) and table.level_sizes == (4, 4, 8)
    assert len({tuple(row) for row in table.codes.tolist()}) == 8
    manifest = json.loads((tmp_path / "run" / "data" / "manifest.json").read_text())
    assert table.dataset_hash == manifest["content_hash"]
    stats = json.loads((folder / "stats.json").read_text())
    assert stats["embedding_dim"] == 384 and stats["items"] == 8 and len(stats["levels"]) == 2
    assert stats["sid_table_hash"] == table.content_hash()
    # the checkpoint alone reproduces the table's codes from the cached embeddings
    embeddings = np.load(next((files / "cache").iterdir()))
    loaded = load_tokenizer(folder / "tokenizer.pt", device="cpu")
    item_order = [f"m{i}" for i in range(8)]
    assert sorted(table.item_ids.tolist()) == item_order
    np.testing.assert_array_equal(loaded.encode(embeddings), table.codes[:, :2])


def test_same_seed_twice_gives_identical_table_file(files, tmp_path):
    config = dict(
        dataset="files", interactions=files / "interactions.csv", items=files / "items.csv",
        embedding_cache=files / "cache", tokenizer="rkmeans", levels=2, codebook_size=3, collision_size=8,
    )  # fmt: skip
    tokenize_run(TokenizeConfig(out=tmp_path / "a", **config))
    tokenize_run(TokenizeConfig(out=tmp_path / "b", **config))
    a, b = (tmp_path / name / "tokenizer" / "sids.parquet" for name in "ab")
    assert a.read_bytes() == b.read_bytes()


def test_collision_overflow_exits_2_with_one_line(files, tmp_path, capsys):
    argv = flags(files, tmp_path / "run", "--tokenizer", "rkmeans", "--levels", "1", "--codebook-size", "2",
                 "--collision-size", "2")  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("python -m tidrec.tokenize: error:")]
    assert len(errors) == 1 and "Traceback" not in err
    assert "share the code tuple" in errors[0] and "or more" in errors[0]
    assert not (tmp_path / "run" / "tokenizer" / "sids.parquet").exists()


def test_bad_option_exits_2(files, tmp_path, capsys):
    assert main(flags(files, tmp_path / "run", "--codebook-size", "1")) == 2
    assert "--codebook-size must be an integer >= 2, got 1" in capsys.readouterr().err


def test_embedding_cache_goes_to_tidrec_home_when_set(monkeypatch, tmp_path):
    monkeypatch.delenv("TIDREC_HOME", raising=False)
    assert TokenizeConfig(out=tmp_path / "run").cache_dir() == tmp_path / "run" / "embeddings"
    monkeypatch.setenv("TIDREC_HOME", str(tmp_path / "home"))
    assert TokenizeConfig(out=tmp_path / "run").cache_dir() == tmp_path / "home" / "embeddings"


def test_the_default_codebook_size_follows_the_catalogue(files, tmp_path):
    from tidrec.tokenize import auto_codebook_size

    # 3 levels: ML-100K's 1,682 items and ML-1M's 3,706 get 32 codes, Amazon Beauty's 12,101 get 64
    assert [auto_codebook_size(n, 3) for n in (8, 1682, 3706, 12101, 1_000_000)] == [16, 32, 32, 64, 256]
    assert auto_codebook_size(1682, 2) == 128  # fewer levels, larger codebooks
    config = dict(
        dataset="files", interactions=files / "interactions.csv", items=files / "items.csv",
        embedding_cache=files / "cache", tokenizer="rkmeans", levels=2, collision_size=8,
    )  # fmt: skip
    table = tokenize_run(TokenizeConfig(out=tmp_path / "auto", **config))
    assert table.level_sizes == (16, 16, 8)  # 8 items: the smallest automatic size
    explicit = tokenize_run(TokenizeConfig(out=tmp_path / "three", codebook_size=3, **config))
    assert explicit.level_sizes == (3, 3, 8)
