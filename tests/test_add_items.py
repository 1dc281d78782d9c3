"""Items added after training (``tidrec.tokenize --add-items``): SIDs from the fitted tokenizer with
no refit, the run's data and SID table grown, the trained generative model serving the new items."""

from __future__ import annotations

import dataclasses
import json
import shutil

import numpy as np
import pytest
from tiger_fixtures import NUM_ITEMS, cyclic_dataset

from tidrec import beam, evaluate
from tidrec.data.dataset import load_dataset
from tidrec.embed import DEFAULT_EMBEDDING_MODEL, cache_path
from tidrec.errors import InputError
from tidrec.fit import FitConfig, fit
from tidrec.tokenize import main
from tokenizer.sid_table import SidTable

NEW = [("n1", "a new film"), ("n2", "another new film")]
"""The items the tests add: (id, title)."""


def cache_embeddings(run, texts, seed):
    """Put random 8-d embeddings of ``texts`` in the run's embedding cache (no model is loaded)."""
    path = cache_path(run / "embeddings", DEFAULT_EMBEDDING_MODEL, list(texts))
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, np.random.default_rng(seed).standard_normal((len(texts), 8)).astype(np.float32))


def items_file(folder, rows, name="new.csv"):
    path = folder / name
    path.write_text("item_id,title\n" + "".join(f"{item},{title}\n" for item, title in rows))
    return path


def tokenize(run, *extra):
    return main(["--out", str(run), "--progress", "false", "--device", "cpu", *extra])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A cyclic run tokenized by residual k-means over text+cooc, with a tiny one-pass model."""
    run = tmp_path_factory.mktemp("grow")
    dataset = cyclic_dataset()
    dataset.save(run / "data")
    cache_embeddings(run, dataset.item_texts, seed=0)
    cache_embeddings(run, [title for _, title in NEW], seed=1)
    flags = ("--tokenizer", "rkmeans", "--levels", "2", "--codebook-size", "3", "--collision-size", "12")
    assert tokenize(run, *flags) == 0
    tiny = dict(preset="cpu", d_model=32, num_layers=1, num_heads=2, d_ff=64, dropout=0.0, max_items=4,
                batch_size=16, lr=1e-2, progress=False, device="cpu")  # fmt: skip
    fit(FitConfig(run=run, max_epochs=2, **tiny))
    return run


@pytest.fixture
def run(trained, tmp_path):
    """A fresh copy of the trained run for each test to grow."""
    copy = tmp_path / "run"
    shutil.copytree(trained, copy)
    return copy


def test_added_items_get_sids_without_a_refit_and_the_trained_model_serves_them(run, capsys):
    before_sids = SidTable.load(run / "tokenizer/sids.parquet")
    before_data = load_dataset(run / "data")
    tokenizer_bytes = (run / "tokenizer/tokenizer.pt").read_bytes()
    assert tokenize(run, "--add-items", str(items_file(run, NEW))) == 0
    assert "added 2 items" in capsys.readouterr().out
    sids, dataset = SidTable.load(run / "tokenizer/sids.parquet"), load_dataset(run / "data")
    assert sids.num_items == dataset.num_items == NUM_ITEMS + 2
    np.testing.assert_array_equal(sids.codes[:NUM_ITEMS], before_sids.codes)  # existing SIDs kept
    assert sids.item_ids[NUM_ITEMS:].tolist() == ["n1", "n2"]
    assert len({tuple(row) for row in sids.codes.tolist()}) == sids.num_items  # every SID unique
    assert sids.extends(before_sids.content_hash()) and sids.dataset_hash == dataset.content_hash
    assert dataset.extends(before_data.content_hash) and dataset.item_texts[-1] == "another new film"
    assert (run / "tokenizer/tokenizer.pt").read_bytes() == tokenizer_bytes  # no refit
    report = json.loads((run / "tokenizer/added_items.json").read_text())
    assert report["items"] == 2 and len(report["new_items_sharing_a_fitted_prefix"]) == 2
    recommender = evaluate.load_recommender(run, "tiger", dataset, beam_size=NUM_ITEMS + 2)
    ranked = recommender.recommend(dataset.split("test"), k=NUM_ITEMS + 2, exclude_history=False)
    assert (np.sort(ranked, axis=1) == np.arange(NUM_ITEMS + 2)).all()  # the new items can be generated
    assert evaluate.main(["--run", str(run), "--device", "cpu"]) == 0
    argv = ["--checkpoint", str(run / "models/tiger/best.ckpt"), "--beam-size", "4", "--batch-sizes", "2"]
    argv += ["--repeats", "1", "--warmup", "0", "--memory-items", "0", "--threads", "1"]
    argv += ["--out", str(run / "b")]
    assert beam.main(argv) == 0  # tidrec.beam takes the grown data and SIDs as they are
    assert f"({NUM_ITEMS + 2} items)" in json.loads((run / "b/beam.json").read_text())["source"]


def test_an_interrupted_run_of_the_same_command_is_finished_by_running_it_again(run):
    old_sids = (run / "tokenizer/sids.parquet").read_bytes()
    assert tokenize(run, "--add-items", str(items_file(run, NEW))) == 0
    finished = SidTable.load(run / "tokenizer/sids.parquet").content_hash()
    (run / "tokenizer/sids.parquet").write_bytes(old_sids)  # as if stopped before the SID table
    assert tokenize(run, "--add-items", str(items_file(run, NEW))) == 0
    assert SidTable.load(run / "tokenizer/sids.parquet").content_hash() == finished
    assert load_dataset(run / "data").num_items == NUM_ITEMS + 2  # not added twice


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([("i3", "a film we had")], "line 2: item 'i3' is already in the catalogue"),
        ([("n1", "x"), ("n1", "y")], "line 3: item 'n1' is given twice"),
        ([("n1", "")], "line 2: item 'n1' has no text in title"),
    ],
)
def test_a_bad_items_file_is_one_line_naming_the_line_and_changes_nothing(run, capsys, rows, message):
    before = (run / "data/manifest.json").read_text(), (run / "tokenizer/sids.parquet").read_bytes()
    assert tokenize(run, "--add-items", str(items_file(run, rows))) == 2
    error = capsys.readouterr().err.strip()
    assert message in error and "\n" not in error
    assert ((run / "data/manifest.json").read_text(), (run / "tokenizer/sids.parquet").read_bytes()) == before


def test_a_sid_table_from_another_tokenizer_is_refused(run, capsys):
    sids = SidTable.load(run / "tokenizer/sids.parquet")
    other = SidTable(sids.item_ids, sids.codes[::-1].copy(), sids.level_sizes, sids.dataset_hash)
    other.save(run / "tokenizer/sids.parquet")
    assert tokenize(run, "--add-items", str(items_file(run, NEW))) == 2
    error = capsys.readouterr().err.strip()
    assert "not made by" in error and "tokenizer.pt" in error and "\n" not in error


def test_the_grown_data_records_what_it_extends_and_models_with_an_item_table_refuse_it(run):
    fit(FitConfig(run=run, model="pop", progress=False, device="cpu"))  # trained before the items came
    assert tokenize(run, "--add-items", str(items_file(run, NEW))) == 0
    dataset = load_dataset(run / "data")
    assert dataset.first_items(NUM_ITEMS).content_hash == dataset.lineage[-1][1]
    with pytest.raises(ValueError, match="interactions"):
        dataset.first_items(3)  # items 3.. have interactions: they were not added later
    forged = dataclasses.replace(dataset, lineage=((NUM_ITEMS, "0" * 64),))
    assert not forged.extends("0" * 64)  # the lineage is checked, not trusted
    with pytest.raises(InputError, match="built for dataset"):
        evaluate.load_recommender(run, "pop", dataset, device="cpu")
