"""The one-pass recipe through tidrec.fit: it learns the cyclic catalogue, evaluates, resumes, refuses."""

from __future__ import annotations

import csv
import json
import os

import numpy as np
import pytest
import torch
from tiger_fixtures import make_run

from tidrec import evaluate
from tidrec.errors import ConfigError
from tidrec.fit import FitConfig, fit, resolve_config
from tidrec.models.tiger.onepass_train import load_run_onepass

TINY = dict(
    preset="cpu",
    d_model=32,
    num_layers=1,
    num_heads=2,
    d_ff=64,
    dropout=0.0,
    max_items=4,
    batch_size=16,
    lr=1e-2,
    patience=50,
    progress=False,
    device="cpu",
)
"""A one-pass model small enough to learn the cyclic catalogue in seconds."""


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    run = tmp_path_factory.mktemp("onepass")
    make_run(run)
    fit(FitConfig(run=run, max_epochs=15, **TINY))
    return run


def test_the_default_recipe_is_one_pass_with_a_budget_of_epochs():
    config = resolve_config(FitConfig(run=".", preset="cpu"))
    assert (config.recipe, config.max_time, config.item_id_embedding) == ("onepass", None, True)
    assert (config.trie_softmax, config.attention_dropout, config.objective) == (True, 0.0, "next")
    assert config.max_epochs >= 1 and config.lr > 0


def test_it_learns_the_next_item_and_evaluates_through_the_registry(trained, capsys):
    info = json.loads((trained / "models/tiger/train_info.json").read_text())
    assert info["recipe"] == "onepass" and info["best_val_ndcg10"] > 0.8  # next = last + 1
    assert evaluate.main(["--run", str(trained), "--device", "cpu", "--exclude-history", "true"]) == 0
    saved = json.loads((trained / "models/tiger/eval/results-test-exclude-history.json").read_text())
    assert saved["metrics"]["recall@10"] > 0.9 and saved["metrics"]["invalid_rate"] == 0.0


def test_evaluation_reports_certified_lists_and_exact_decoding_agrees(trained):
    beam = ["--run", str(trained), "--device", "cpu", "--beam-size", "20"]
    path = trained / "models/tiger/eval/results.json"
    assert evaluate.main(beam) == 0
    by_beam = json.loads(path.read_text())["metrics"]
    assert evaluate.main([*beam, "--decoder", "exact", "--max-beam", "64"]) == 0
    exact = json.loads(path.read_text())["metrics"]
    # 20 beams over 12 items prune nothing: every list is provably exact, and exact decoding agrees
    assert by_beam["certified"] == exact["certified"] == 1.0
    assert by_beam == exact


@pytest.mark.parametrize("nodes", [False, True])
def test_the_trie_softmax_trains_through_fit_and_is_kept_in_the_checkpoint(tmp_path, nodes):
    make_run(tmp_path)
    fit(FitConfig(run=tmp_path, max_epochs=15, trie_softmax=True, node_embeddings=nodes, **TINY))
    info = json.loads((tmp_path / "models/tiger/train_info.json").read_text())
    assert info["best_val_ndcg10"] > 0.8
    record = torch.load(tmp_path / "models/tiger/best.ckpt", weights_only=True)["tidrec"]
    assert record["model_config"]["trie_softmax"] is True
    assert record["model_config"]["node_embeddings"] is nodes


def test_a_shallower_decoder_is_built_kept_in_the_checkpoint_and_served(tmp_path):
    make_run(tmp_path)
    fit(FitConfig(run=tmp_path, max_epochs=15, **{**TINY, "num_layers": 2}, num_decoder_layers=1))
    info = json.loads((tmp_path / "models/tiger/train_info.json").read_text())
    assert info["best_val_ndcg10"] > 0.8
    record = torch.load(tmp_path / "models/tiger/best.ckpt", weights_only=True)["tidrec"]
    assert (record["model_config"]["num_layers"], record["model_config"]["num_decoder_layers"]) == (2, 1)
    _, model = load_run_onepass(tmp_path)
    assert (len(model.t5.encoder.block), len(model.t5.decoder.block)) == (2, 1)


@pytest.mark.parametrize("objective", ["masked", "mixed"])
def test_the_masked_objectives_train_through_fit(tmp_path, objective):
    make_run(tmp_path)
    # masking a fifth of the items gives a fifth of next-item's targets per step: more epochs
    fit(FitConfig(run=tmp_path, max_epochs=40, objective=objective, trie_softmax=True, **TINY))
    info = json.loads((tmp_path / "models/tiger/train_info.json").read_text())
    assert info["best_val_ndcg10"] > 0.8  # a masked model decodes the mask appended after the history
    record = torch.load(tmp_path / "models/tiger/best.ckpt", weights_only=True)["tidrec"]
    assert record["model_config"]["objective"] == objective


def test_pretraining_then_fine_tuning_runs_both_stages(tmp_path):
    make_run(tmp_path)
    fit(FitConfig(run=tmp_path, max_epochs=3, objective="pretrain", pretrain_epochs=6, **TINY))
    pretrain = json.loads((tmp_path / "models/tiger/pretrain/train_info.json").read_text())
    info = json.loads((tmp_path / "models/tiger/train_info.json").read_text())
    assert pretrain["epochs"] == 6 and info["epochs"] == 3
    assert info["train_seconds"] >= info["pretrain_seconds"] == pretrain["train_seconds"]
    masked = torch.load(tmp_path / "models/tiger/pretrain/best.ckpt", weights_only=True)
    tuned = torch.load(tmp_path / "models/tiger/best.ckpt", weights_only=True)
    assert masked["tidrec"]["model_config"]["objective"] == "masked"
    assert tuned["tidrec"]["model_config"]["objective"] == "next"
    assert "model.mask_embedding" in masked["state_dict"]
    assert "model.mask_embedding" not in tuned["state_dict"]
    assert info["best_val_ndcg10"] > 0.8


def test_the_masked_objective_needs_the_one_pass_recipe(tmp_path):
    make_run(tmp_path)
    with pytest.raises(ConfigError, match="--objective masked needs --recipe onepass"):
        fit(FitConfig(run=tmp_path, max_epochs=1, recipe="examples", objective="masked", **TINY))


def test_node_embeddings_need_the_trie_softmax(tmp_path):
    with pytest.raises(ConfigError, match="--node-embeddings true needs --trie-softmax true"):
        FitConfig(run=tmp_path, model="tiger", node_embeddings=True)


def test_two_runs_with_one_seed_give_the_same_model(tmp_path):
    runs = [tmp_path / "a", tmp_path / "b"]
    for run in runs:
        make_run(run, num_users=12)
        fit(FitConfig(run=run, max_epochs=2, **TINY))
    first, second = (torch.load(r / "models/tiger/last.ckpt", weights_only=True)["state_dict"] for r in runs)
    for name, tensor in first.items():
        torch.testing.assert_close(second[name], tensor, rtol=0, atol=0, msg=name)


def test_resume_continues_to_the_planned_epochs(tmp_path):
    make_run(tmp_path, num_users=12)
    fit(FitConfig(run=tmp_path, max_epochs=1, **TINY))
    fit(FitConfig(run=tmp_path, max_epochs=3, resume=True, **TINY))
    assert torch.load(tmp_path / "models/tiger/last.ckpt", weights_only=True)["epoch"] == 2


def test_a_model_serves_a_table_that_extends_its_own_and_refuses_another(tmp_path):
    from tidrec.errors import InputError
    from tidrec.models.tiger.onepass_train import load_onepass
    from tokenizer.sid_table import SidTable

    dataset, sids = make_run(tmp_path)
    sids_path = tmp_path / "tokenizer/sids.parquet"
    table = SidTable(sids.item_ids, sids.codes, (3, 8), sids.dataset_hash)  # room for 4 more per tuple
    table.save(sids_path)
    fit(FitConfig(run=tmp_path, max_epochs=2, **TINY))
    grown = table.extend(np.array(["new-a", "new-b"]), table.codes[:2, :-1])  # tuples of items 0 and 1
    grown.save(tmp_path / "grown.parquet")
    kwargs = dict(dataset=dataset, data_path=tmp_path / "data", sids_path=sids_path)
    path = tmp_path / "models/tiger/best.ckpt"
    model = load_onepass(path, sids=SidTable.load(tmp_path / "grown.parquet"), **kwargs)
    assert model.num_items == table.num_items + 2
    other = SidTable(table.item_ids, table.codes[::-1].copy(), table.level_sizes, table.dataset_hash)
    with pytest.raises(InputError, match="trained on SID table"):
        load_onepass(path, sids=other, **kwargs)


def test_the_item_loss_trains_through_fit_and_needs_the_item_table(tmp_path):
    make_run(tmp_path, num_users=12)
    fit(FitConfig(run=tmp_path, max_epochs=1, item_loss=1.0, **TINY))
    record = torch.load(tmp_path / "models/tiger/best.ckpt", weights_only=True)["tidrec"]
    assert record["model_config"]["item_loss"] == 1.0
    with pytest.raises(ConfigError, match="--item-loss needs --item-id-embedding"):
        FitConfig(run=tmp_path, item_loss=1.0, item_id_embedding=False)


def test_the_item_score_trains_validates_and_can_be_changed_at_evaluation(tmp_path, trained, capsys):
    make_run(tmp_path)
    fit(FitConfig(run=tmp_path, max_epochs=15, item_loss=0.3, item_score=1.0, **TINY))
    info = json.loads((tmp_path / "models/tiger/train_info.json").read_text())
    assert info["best_val_ndcg10"] > 0.8  # validation decoded with the item head too
    record = torch.load(tmp_path / "models/tiger/best.ckpt", weights_only=True)["tidrec"]
    assert record["model_config"]["item_score"] == 1.0
    saved = tmp_path / "models/tiger/eval/results.json"
    scores = {}
    for weight in ("1", "0"):
        assert evaluate.main(["--run", str(tmp_path), "--device", "cpu", "--item-score", weight]) == 0
        scores[weight] = json.loads(saved.read_text())["metrics"]
        assert scores[weight]["recall@10"] > 0.9 and scores[weight]["certified"] == 1.0
    assert scores["1"]["mrr"] != scores["0"]["mrr"]  # the head moved the ranks
    capsys.readouterr()
    assert evaluate.main(["--run", str(trained), "--device", "cpu", "--item-score", "1"]) != 0
    assert "--item-score needs a model trained with --item-loss" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="--item-score needs --item-loss"):
        FitConfig(run=tmp_path, item_score=1.0)


def test_two_cpu_processes_train_one_model_and_validate_on_every_user(tmp_path):
    """DDP over 2 CPU processes (gloo): each validates half the users; the logged score is theirs
    together, so the best checkpoint's recorded score is the whole validation split's."""
    import subprocess
    import sys

    make_run(tmp_path, num_users=40)
    flags = ["--run", str(tmp_path), "--preset", "cpu", "--d-model", "32", "--num-layers", "1"]
    flags += [
        "--num-heads",
        "2",
        "--d-ff",
        "64",
        "--max-items",
        "4",
        "--batch-size",
        "4",
        "--max-epochs",
        "2",
    ]
    flags += ["--progress", "false", "--device", "cpu", "--devices", "2", "--strategy", "ddp"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "tidrec.fit", *flags], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("best val/ndcg@10") == 1  # one summary, from rank 0
    info = json.loads((tmp_path / "models/tiger/train_info.json").read_text())
    assert info["steps"] == 10  # 38 training windows / (4 per process x 2 processes) x 2 epochs
    assert evaluate.main(["--run", str(tmp_path), "--split", "valid", "--exclude-history", "true"]) == 0
    whole = json.loads((tmp_path / "models/tiger/eval/results-valid-exclude-history.json").read_text())
    assert whole["metrics"]["ndcg@10"] == pytest.approx(info["best_val_ndcg10"], abs=1e-6)

    # resumed on two processes: one of them trims metrics.csv back to the checkpoint, then both train on
    more = [*flags, "--max-epochs", "3", "--resume", "true"]
    done = subprocess.run(
        [sys.executable, "-m", "tidrec.fit", *more], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stderr[-2000:]
    with open(tmp_path / "models/tiger/metrics.csv", newline="") as handle:
        epochs = [row["epoch"] for row in csv.DictReader(handle) if row["val/ndcg@10"]]
    assert epochs == ["0", "1", "2"]
