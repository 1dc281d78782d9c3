"""``--item-vectors``: co-occurrence vectors, a trained SASRec's item table, and their combinations.

Tiny hand-made sequences for the co-occurrence maths; the cyclic run of ``tiger_fixtures`` with a
SASRec trained for one epoch for the model table; residual k-means keeps every tokenize run fast.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from tiger_fixtures import make_run

from tidrec import fit
from tidrec.data.dataset import Dataset
from tidrec.embed import DEFAULT_EMBEDDING_MODEL, cache_path
from tidrec.errors import ConfigError
from tidrec.fit import FitConfig
from tidrec.item_vectors import (
    cooccurrence_counts,
    cooccurrence_vectors,
    item_vectors,
    model_item_vectors,
    parse_item_vectors,
)
from tidrec.tokenize import TokenizeConfig, build_tokenizer, main, tokenize_embeddings, tokenize_run
from tokenizer.sid_table import SidTable

RKMEANS = ["--tokenizer", "rkmeans", "--levels", "2", "--codebook-size", "3", "--collision-size", "12"]
RKMEANS += ["--progress", "false", "--device", "cpu"]


def _cosine(vectors: np.ndarray) -> np.ndarray:
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    return unit @ unit.T


def _no_text() -> np.ndarray:
    raise AssertionError("text embeddings were computed but not asked for")


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("python -m tidrec.tokenize: error:")]
    assert len(errors) == 1 and "Traceback" not in err, err
    return errors[0]


def _dataset(sequences: list[list[int]], num_items: int) -> Dataset:
    lengths = np.array([len(s) for s in sequences])
    return Dataset(
        name="hand-made",
        user_ids=np.array([f"u{u}" for u in range(len(sequences))]),
        item_ids=np.array([f"i{i}" for i in range(num_items)]),
        item_texts=[f"item {i}" for i in range(num_items)],
        offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        items=np.concatenate(sequences).astype(np.int64),
        timestamps=np.arange(lengths.sum(), dtype=np.int64),
    )


# ----------------------------------------------------------------------------- co-occurrence


def test_counts_by_hand():
    counts = cooccurrence_counts([np.array([0, 1, 2]), np.array([2, 2, 1])], 4, window=1).toarray()
    expected = np.array([[0, 1, 0, 0], [1, 0, 2, 0], [0, 2, 0, 0], [0, 0, 0, 0]])  # 2-2 repeat: no pair
    np.testing.assert_array_equal(counts, expected)
    wider = cooccurrence_counts([np.array([0, 1, 2])], 4, window=2).toarray()
    assert wider[0, 2] == wider[2, 0] == 1  # two positions apart: a pair within window 2


def test_items_that_cooccur_are_closer_than_items_that_do_not():
    # two groups that never meet, {0, 1, 2} and {3, 4}; item 5 is in no pair
    sequences = [np.array(s) for s in ([0, 1, 2, 0, 1], [2, 1, 0], [3, 4, 3, 4], [4, 3], [5])]
    vectors = cooccurrence_vectors(sequences, 6, window=1, dim=4)
    assert vectors.shape == (6, 4) and vectors.dtype == np.float32
    np.testing.assert_array_equal(vectors[5], 0.0)
    similar = _cosine(vectors[:5])
    within = [similar[0, 1], similar[1, 2], similar[0, 2], similar[3, 4]]
    across = [similar[a, b] for a in (0, 1, 2) for b in (3, 4)]
    assert min(within) > 0.5 > max(across)


def test_cooccurrence_vectors_are_deterministic():
    rng = np.random.default_rng(0)
    sequences = [rng.integers(0, 60, size=rng.integers(3, 20)) for _ in range(80)]
    first = cooccurrence_vectors(sequences, 60, window=3, dim=8, seed=1)  # the sparse (ARPACK) path
    second = cooccurrence_vectors(sequences, 60, window=3, dim=8, seed=1)
    assert first.tobytes() == second.tobytes()
    assert (np.abs(first).max(axis=0) == first.max(axis=0)).all()  # signs fixed: each column's peak > 0


def test_only_training_items_count(tmp_path):
    sequences = [[0, 1, 2, 3, 4], [1, 2, 3, 0], [4, 3, 2, 1, 0], [2, 0, 4]]
    config = TokenizeConfig(out=tmp_path / "run", item_vectors="cooc", cooc_window=2, cooc_dim=3)
    before, _ = item_vectors(config, _dataset(sequences, 5), _no_text)
    sequences[0][-2:] = [0, 2]  # new validation and test targets for user 0
    after, _ = item_vectors(config, _dataset(sequences, 5), _no_text)
    assert before.tobytes() == after.tobytes()


def test_a_combination_normalises_each_part_and_weights_the_collaborative_one(tmp_path):
    sequences = [[0, 1, 2, 3, 4], [1, 2, 3, 0], [4, 3, 2, 1, 0], [2, 0, 4]]
    text = np.arange(15, dtype=np.float32).reshape(5, 3) + 1  # (I, 3), rows of different length
    config = TokenizeConfig(
        out=tmp_path / "run", item_vectors="text+cooc", cooc_dim=4, collab_weight=2.0, embedding_model="m"
    )
    vectors, provenance = item_vectors(config, _dataset(sequences, 5), lambda: text)
    assert vectors.shape == (5, 7)
    np.testing.assert_allclose(np.linalg.norm(vectors[:, :3], axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(vectors[:, 3:], axis=1), 2.0, rtol=1e-6)
    assert provenance["item_vectors"] == "text+cooc" and provenance["embedding_model"] == "m"
    assert [part["part"] for part in provenance["item_vector_parts"]] == ["text", "cooc"]
    assert provenance["embeddings_sha256"] == hashlib.sha256(vectors.tobytes()).hexdigest()


# ----------------------------------------------------------------------------- the option


def test_text_and_cooc_is_the_default_and_help_lists_the_flags(capsys):
    assert TokenizeConfig.__dataclass_fields__["item_vectors"].default == "text+cooc"
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert all(flag in text for flag in ("--item-vectors", "--cooc-window", "--cooc-dim", "--collab-weight"))


def test_parse_accepts_parts_joined_by_plus():
    assert parse_item_vectors("text") == ("text",)
    assert parse_item_vectors("text+cooc+llm2sasrec") == ("text", "cooc", "llm2sasrec")
    for bad, words in (("text+gru4rec", "unknown part 'gru4rec'"), ("text+", "unknown part ''"),
                       ("cooc+cooc", "names a part twice")):  # fmt: skip
        with pytest.raises(ConfigError, match=words):
            parse_item_vectors(bad)


def test_unknown_part_exits_2_with_one_line(tmp_path, capsys):
    assert main(["--out", str(tmp_path / "run"), "--item-vectors", "text+collab", *RKMEANS]) == 2
    line = _one_line_error(capsys)
    assert "unknown part 'collab'" in line and "cooc" in line and "sasrec" in line
    assert not (tmp_path / "run").exists()  # refused before any work


def test_text_alone_writes_what_it_wrote_before_the_option(tmp_path):
    dataset, _ = make_run(tmp_path / "run")
    embeddings = np.random.default_rng(0).standard_normal((dataset.num_items, 8)).astype(np.float32)
    path = cache_path(tmp_path / "run" / "embeddings", DEFAULT_EMBEDDING_MODEL, dataset.item_texts)
    path.parent.mkdir(parents=True)
    np.save(path, embeddings)
    config = TokenizeConfig(out=tmp_path / "run", tokenizer="rkmeans", item_vectors="text", levels=2,
                            codebook_size=3, collision_size=12, progress=False, device="cpu")  # fmt: skip
    tokenize_run(config)
    # the code path of tokenize_run before --item-vectors existed, written to another folder
    old = tmp_path / "old"
    old.mkdir()
    provenance = {
        "embedding_model": DEFAULT_EMBEDDING_MODEL,
        "embeddings_sha256": hashlib.sha256(embeddings.tobytes()).hexdigest(),
    }
    tokenize_embeddings(embeddings, build_tokenizer(config), item_ids=dataset.item_ids,
                        dataset_hash=dataset.content_hash, seed=config.seed, collision_size=12, folder=old,
                        provenance=provenance)  # fmt: skip
    new = tmp_path / "run" / "tokenizer"
    assert (new / "sids.parquet").read_bytes() == (old / "sids.parquet").read_bytes()
    assert "item_vectors" not in SidTable.metadata(new / "sids.parquet")
    assert json.loads((new / "stats.json").read_text())["item_vectors"] == "text"


# ----------------------------------------------------------------------------- a trained SASRec


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    """The cyclic run with a SASRec trained for one epoch."""
    run = tmp_path_factory.mktemp("sasrec")
    make_run(run)
    fit.fit(FitConfig(run=run, model="sasrec", max_epochs=1, max_len=8, batch_size=8, d_model=16,
                      num_heads=1, progress=False, device="cpu"))  # fmt: skip
    return run


def test_model_vectors_are_the_item_table_without_padding(trained_run):
    from tidrec.baselines.train import load_sequence_recommender
    from tidrec.data import load_dataset

    dataset = load_dataset(trained_run / "data")
    table = model_item_vectors(trained_run, "sasrec", dataset)
    model = load_sequence_recommender(trained_run / "models" / "sasrec" / "best.ckpt", dataset).model
    assert table.shape == (dataset.num_items, 16)
    np.testing.assert_array_equal(table, model.item_emb.weight[1:].detach().numpy())


def test_sasrec_sids_are_unique_deterministic_and_recorded(trained_run, capsys):
    argv = ["--out", str(trained_run), "--item-vectors", "sasrec", *RKMEANS]
    folder = trained_run / "tokenizer"
    assert main(argv) == 0
    first = (folder / "sids.parquet").read_bytes()
    assert "item vectors: sasrec (sasrec 16-d models/sasrec/best.ckpt" in capsys.readouterr().out
    assert main(argv) == 0
    assert (folder / "sids.parquet").read_bytes() == first
    table = SidTable.load(folder / "sids.parquet")
    assert len({tuple(row) for row in table.codes.tolist()}) == table.num_items == 12
    checkpoint_sha = hashlib.sha256((trained_run / "models/sasrec/best.ckpt").read_bytes()).hexdigest()
    meta = SidTable.metadata(folder / "sids.parquet")
    assert meta["item_vectors"] == "sasrec"
    part = {"part": "sasrec", "dim": 16, "checkpoint": "models/sasrec/best.ckpt"}
    assert meta["item_vector_parts"] == [{**part, "checkpoint_sha256": checkpoint_sha}]
    stats = json.loads((folder / "stats.json").read_text())
    assert stats["item_vectors"] == "sasrec" and stats["embedding_dim"] == 16
    assert stats["unique_tuple_rate"] > 0 and "levels" in stats


def test_text_plus_cooc_plus_sasrec_runs(trained_run, tmp_path):
    run = tmp_path / "copy"
    shutil.copytree(trained_run, run)
    text = np.random.default_rng(0).standard_normal((12, 8)).astype(np.float32)
    config = TokenizeConfig(out=run, item_vectors="text+cooc+sasrec", cooc_dim=4, tokenizer="rkmeans",
                            levels=2, codebook_size=3, collision_size=12, progress=False)  # fmt: skip
    from tidrec.data import load_dataset

    vectors, provenance = item_vectors(config, load_dataset(run / "data"), lambda: text)
    assert vectors.shape == (12, 8 + 4 + 16)
    assert [part["part"] for part in provenance["item_vector_parts"]] == ["text", "cooc", "sasrec"]


def test_without_a_trained_model_exits_2_naming_the_command(tmp_path, capsys):
    make_run(tmp_path / "run")
    assert main(["--out", str(tmp_path / "run"), "--item-vectors", "text+llm2sasrec", *RKMEANS]) == 2
    line = _one_line_error(capsys)
    assert "models/llm2sasrec/best.ckpt: not found" in line
    assert f"python -m tidrec.fit --run {tmp_path / 'run'} --model llm2sasrec" in line


def test_a_model_trained_on_other_data_exits_2_naming_the_command(trained_run, tmp_path, capsys):
    run = tmp_path / "other"
    make_run(run, num_users=41)  # other users: another dataset hash
    shutil.copytree(trained_run / "models", run / "models")
    assert main(["--out", str(run), "--item-vectors", "sasrec", *RKMEANS]) == 2
    line = _one_line_error(capsys)
    assert "trained on dataset" in line and f"python -m tidrec.fit --run {run} --model sasrec" in line
    assert SidTable.load(run / "tokenizer" / "sids.parquet").level_sizes == (3, 4)  # untouched
