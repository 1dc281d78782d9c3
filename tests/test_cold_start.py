"""The cold-start protocol: the newest items held out of training, given SIDs by the fitted tokenizer,
served by a model that never saw them, and reported apart in evaluation."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from tiger_fixtures import cyclic_dataset

from tidrec import evaluate
from tidrec.data.dataset import Dataset, hold_out_cold_items, load_dataset
from tidrec.embed import DEFAULT_EMBEDDING_MODEL, cache_path
from tidrec.errors import ConfigError, InputError
from tidrec.evaluate import cold_start_metrics
from tidrec.fit import FitConfig, fit
from tidrec.tokenize import TokenizeConfig, tokenize_run
from tokenizer.sid_table import SidTable


def by_hand() -> Dataset:
    """Items 0..4; item 3 first appears at t=7 and item 4 at t=9, the last two to arrive."""
    sequences = [[0, 1, 2, 3, 4], [1, 0, 2, 4, 3], [2, 0, 1]]
    times = [[0, 1, 2, 7, 9], [3, 4, 5, 10, 11], [6, 8, 12]]
    return Dataset(
        name="by-hand",
        user_ids=np.array(["a", "b", "c"]),
        item_ids=np.array(["i0", "i1", "i2", "i3", "i4"]),
        item_texts=[f"text {i}" for i in range(5)],
        offsets=np.array([0, 5, 10, 13]),
        items=np.concatenate(sequences).astype(np.int64),
        timestamps=np.concatenate(times).astype(np.int64),
    )


def test_the_newest_items_are_held_out_of_training():
    cold = hold_out_cold_items(by_hand(), 0.4)  # 2 of 5 items
    assert cold.cold_from == 3 and list(cold.item_ids) == ["i0", "i1", "i2", "i3", "i4"]
    assert [s.tolist() for s in cold.train_sequences()] == [[0, 1, 2], [1, 0, 2], [2]]
    assert cold.split("test").targets.tolist() == [4, 3, 1]  # evaluation keeps every item
    late = Dataset(
        name="late",
        user_ids=np.array(["a", "b"]),
        item_ids=np.array(["i0", "i1", "i2", "i3"]),
        item_texts=["t0", "t1", "t2", "t3"],
        offsets=np.array([0, 3, 6]),
        items=np.array([0, 2, 3, 0, 3, 1]),
        timestamps=np.array([0, 1, 2, 3, 4, 5]),
    )
    renumbered = hold_out_cold_items(late, 0.25)  # i1 arrives last: renumbered after the others
    assert list(renumbered.item_ids) == ["i0", "i2", "i3", "i1"] and renumbered.cold_from == 3
    assert renumbered.items.tolist() == [0, 1, 2, 0, 2, 3]
    with pytest.raises(InputError, match="leaves both warm and cold"):
        hold_out_cold_items(by_hand(), 0.05)


def test_a_cold_start_dataset_round_trips_and_hashes_apart(tmp_path):
    plain, cold = by_hand(), hold_out_cold_items(by_hand(), 0.4)
    assert plain.content_hash != cold.content_hash
    cold.save(tmp_path / "data")
    loaded = load_dataset(tmp_path / "data")
    assert loaded.cold_from == 3 and loaded.content_hash == cold.content_hash
    assert json.loads((tmp_path / "data/manifest.json").read_text())["stats"]["cold_items"] == 2


def test_cold_and_warm_targets_are_reported_apart():
    dataset = hold_out_cold_items(by_hand(), 0.4)
    ranked = np.array(
        [[4, 0], [0, 1], [1, 2]]
    )  # user a: cold target 4 first; b: cold 3 missed; c: warm 1 first
    metrics = cold_start_metrics(ranked, np.array([4, 3, 1]), dataset)
    assert metrics["cold_targets"] == 2
    assert metrics["recall@10 cold"] == 0.5 and metrics["recall@10 warm"] == 1.0
    assert cold_start_metrics(ranked, np.array([4, 3, 1]), by_hand()) == {}


@pytest.fixture
def cold_run(tmp_path):
    """A cyclic run whose last 3 of 12 items are held out, tokenized by residual k-means."""
    dataset = hold_out_cold_items(cyclic_dataset(), 0.25)
    dataset.save(tmp_path / "data")
    embeddings = np.random.default_rng(0).standard_normal((dataset.num_items, 8)).astype(np.float32)
    path = cache_path(tmp_path / "embeddings", DEFAULT_EMBEDDING_MODEL, dataset.item_texts)
    path.parent.mkdir(parents=True)
    np.save(path, embeddings)
    config = TokenizeConfig(out=tmp_path, tokenizer="rkmeans", item_vectors="text+cooc", levels=2,
                            codebook_size=3, collision_size=12, progress=False, device="cpu")  # fmt: skip
    return tmp_path, dataset, config, path


def test_held_out_items_get_sids_from_the_tokenizer_fitted_on_the_others(cold_run):
    run, dataset, config, path = cold_run
    table = tokenize_run(config)
    stats = json.loads((run / "tokenizer/stats.json").read_text())
    assert table.num_items == dataset.num_items and stats["new_items"] == 3
    fitted = table.prefix(dataset.cold_from)
    assert (
        table.extends(stats["fitted_sid_table_hash"])
        and fitted.content_hash() == stats["fitted_sid_table_hash"]
    )
    assert len(stats["new_items_sharing_a_fitted_prefix"]) == 2
    # the cold items' vectors take no part in fitting: change them and the fitted rows stay
    embeddings = np.load(path)
    embeddings[dataset.cold_from :] *= -3.0
    np.save(path, embeddings)
    again = tokenize_run(config)
    np.testing.assert_array_equal(again.codes[: dataset.cold_from], table.codes[: dataset.cold_from])


def test_imputed_cold_vectors_come_from_text_neighbours(cold_run):
    run, _, config, _ = cold_run
    tokenize_run(config)
    plain = json.loads((run / "tokenizer/stats.json").read_text())
    imputed_config = TokenizeConfig(**{**config.__dict__, "cold_impute": 2})
    tokenize_run(imputed_config)
    imputed = json.loads((run / "tokenizer/stats.json").read_text())
    assert imputed["cold_impute"] == 2 and "cold_impute" not in plain
    assert imputed["fitted_sid_table_hash"] == plain["fitted_sid_table_hash"]  # warm SIDs unchanged
    with pytest.raises(ConfigError, match="needs a text part"):
        tokenize_run(TokenizeConfig(**{**config.__dict__, "item_vectors": "cooc", "cold_impute": 2}))


def test_the_generative_model_trains_on_warm_items_and_serves_the_cold_ones(cold_run):
    run, dataset, config, _ = cold_run
    tokenize_run(config)
    tiny = dict(preset="cpu", d_model=32, num_layers=1, num_heads=2, d_ff=64, dropout=0.0, max_items=4,
                batch_size=16, lr=1e-2, progress=False, device="cpu", trie_softmax=True)  # fmt: skip
    fit(FitConfig(run=run, max_epochs=3, **tiny))
    record = torch.load(run / "models/tiger/best.ckpt", weights_only=True)
    assert record["state_dict"]["model.sid_tokens"].shape[0] == dataset.cold_from + 1  # warm items + padding
    assert (
        record["tidrec"]["sid_hash"] == SidTable.load(run / "tokenizer/sids.parquet").prefix(9).content_hash()
    )
    assert evaluate.main(["--run", str(run), "--device", "cpu", "--beam-size", "20"]) == 0
    metrics = json.loads((run / "models/tiger/eval/results.json").read_text())["metrics"]
    assert metrics["invalid_rate"] == 0.0 and metrics["cold_targets"] >= 0
    assert {"recall@10 cold", "recall@10 warm", "ndcg@10 cold", "ndcg@10 warm"} <= set(metrics)
    recommender = evaluate.load_recommender(run, "tiger", dataset, beam_size=12)
    ranked = recommender.recommend(dataset.split("test"), k=12, exclude_history=False)
    assert (np.sort(ranked, axis=1) == np.arange(12)).all()  # the cold items are in every full list
    with pytest.raises(ConfigError, match="needs --recipe onepass"):
        fit(FitConfig(run=run, max_epochs=1, recipe="examples", progress=False, device="cpu"))


def test_the_comparison_table_shows_cold_and_warm_recall():
    from tidrec.pipeline import markdown

    row = {"model": "tiger", "train_seconds": 5.0, "cold_targets": 2.0}
    for name in ("recall@10", "ndcg@10", "coverage@10", "serendipity@10", "novelty@10"):
        row[name] = 0.5
    row |= {"recall@10 cold": 0.25, "recall@10 cold_se": 0.1}
    row |= {"recall@10 warm": 0.75, "recall@10 warm_se": 0.2}
    table = markdown([row], k=10, header="header")
    assert "Recall@10 cold | Recall@10 warm |" in table
    assert "0.2500 ± 0.1000 | 0.7500 ± 0.2000 |" in table
