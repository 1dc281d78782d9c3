"""Training the generative model: a tiny model learns a cyclic catalogue; resume; refusals; the CLI."""

from __future__ import annotations

import csv
import json
import signal

import numpy as np
import pytest
import torch
from tiger_fixtures import make_run

from tidrec import evaluate as ev
from tidrec.data.dataset import load_dataset
from tidrec.errors import ConfigError, InputError
from tidrec.fit import FitConfig, fit, main, resolve_config
from tidrec.model import TigerModule, TigerRecommender, load_checkpoint
from tidrec.models.tiger.train import PositionSampler, model_config
from tokenizer.sid_table import SidTable

TINY = dict(
    preset="cpu",
    recipe="examples",
    d_model=32,
    num_layers=2,
    num_heads=2,
    d_ff=64,
    dropout=0.0,
    max_items=2,
    user_buckets=0,
    batch_size=32,
    lr=5e-3,
    warmup=0.1,
    patience=50,
    progress=False,
)
"""TIGER's recipe (one example per target) small enough to train in seconds; two history items make the
cyclic task length-free. tests/models/test_onepass_fit.py covers the one-pass recipe."""


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    run = tmp_path_factory.mktemp("run")
    make_run(run)
    best = fit(FitConfig(run=run, max_epochs=12, **TINY))
    return run, best


def _train_losses(metrics_csv):
    with open(metrics_csv, newline="") as handle:
        return [float(r["train/loss_epoch"]) for r in csv.DictReader(handle) if r.get("train/loss_epoch")]


def test_tiny_model_learns_the_next_item(trained):
    run, best = trained
    folder = run / "models" / "tiger"
    assert best == folder / "best.ckpt"
    for name in ("best.ckpt", "last.ckpt", "metrics.csv", "curves.png", "train_info.json"):
        assert (folder / name).is_file(), name
    info = json.loads((folder / "train_info.json").read_text())
    assert info["model"] == "tiger" and info["train_seconds"] > 0 and info["epochs"] == 12
    losses = _train_losses(folder / "metrics.csv")
    assert len(losses) == 12 and losses[-1] < 0.2 * losses[0]
    dataset = load_dataset(run / "data")
    sids = SidTable.load(run / "tokenizer" / "sids.parquet")
    recommender = TigerRecommender(load_checkpoint(best), sids, dataset.user_ids)
    test = dataset.split("test")
    ranked = recommender.recommend(test, k=20, exclude_history=False)
    assert np.mean(ranked[:, 0] == test.targets) >= 0.9  # the true next item comes out top
    assert ((ranked >= -1) & (ranked < dataset.num_items)).all()


def test_evaluate_cli_on_the_trained_model(trained, capsys):
    run, _ = trained
    assert ev.main(["--run", str(run), "--batch-size", "16"]) == 0
    saved = json.loads((run / "models/tiger/eval/results.json").read_text())
    assert saved["metrics"]["recall@10"] >= 0.9 and saved["metrics"]["invalid_rate"] == 0.0
    assert "| tiger | test | no |" in capsys.readouterr().out


def test_evaluate_refuses_a_different_sid_table(trained, tmp_path, capsys):
    run, _ = trained
    other = tmp_path / "run"
    (other / "models").mkdir(parents=True)
    (other / "models" / "tiger").symlink_to(run / "models" / "tiger")
    (other / "data").symlink_to(run / "data")
    sids = SidTable.load(run / "tokenizer" / "sids.parquet")
    SidTable(sids.item_ids, sids.codes[::-1].copy(), sids.level_sizes, sids.dataset_hash).save(
        other / "tokenizer" / "sids.parquet"
    )
    assert ev.main(["--run", str(other)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "trained on SID table" in err


def test_resume_after_an_interruption_matches_an_uninterrupted_run(tmp_path, monkeypatch):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    make_run(straight, num_users=16)
    make_run(resumed, num_users=16)
    fit(FitConfig(run=straight, max_epochs=4, **TINY))

    original = TigerModule.on_train_epoch_start

    def interrupt_at_epoch_two(self):
        if self.current_epoch == 2:
            raise KeyboardInterrupt
        original(self)

    handler = signal.getsignal(signal.SIGINT)
    monkeypatch.setattr(TigerModule, "on_train_epoch_start", interrupt_at_epoch_two)
    try:
        with pytest.raises(SystemExit):  # Lightning shuts down gracefully, then exits
            fit(FitConfig(run=resumed, max_epochs=4, **TINY))
    finally:
        signal.signal(signal.SIGINT, handler)
    monkeypatch.setattr(TigerModule, "on_train_epoch_start", original)
    assert torch.load(resumed / "models/tiger/last.ckpt", weights_only=True)["epoch"] == 1

    fit(FitConfig(run=resumed, max_epochs=4, resume=True, **TINY))
    a = torch.load(straight / "models/tiger/last.ckpt", weights_only=True)
    b = torch.load(resumed / "models/tiger/last.ckpt", weights_only=True)
    assert (a["epoch"], a["global_step"]) == (b["epoch"], b["global_step"])
    for name, tensor in a["state_dict"].items():
        torch.testing.assert_close(b["state_dict"][name], tensor, msg=name)
    assert len(_train_losses(resumed / "models/tiger/metrics.csv")) == 4  # history kept across the restart


def test_resume_without_a_checkpoint_is_a_one_line_error(tmp_path, capsys):
    make_run(tmp_path, num_users=6)
    assert main(["--run", str(tmp_path), "--resume", "true", "--progress", "false"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "last.ckpt does not exist" in err


def test_fit_refuses_sids_built_for_other_data(tmp_path):
    _, sids = make_run(tmp_path, num_users=6)
    SidTable(sids.item_ids, sids.codes, sids.level_sizes, "0" * 64).save(
        tmp_path / "tokenizer" / "sids.parquet"
    )
    with pytest.raises(InputError, match="built for dataset 000000000000"):
        fit(FitConfig(run=tmp_path, max_epochs=1, **TINY))


def test_position_sampler_draws_fresh_positions_capped_per_user():
    users = np.array([0, 0, 0, 0, 1, 2, 2])
    sampler = PositionSampler(users, per_user=2, seed=0)
    first, second = list(sampler), list(sampler)
    assert len(sampler) == len(first) == 5
    assert sorted(np.bincount(users[first]).tolist()) == [1, 2, 2]
    sampler.set_epoch(0)
    assert list(sampler) == first and first != second
    assert sorted(PositionSampler(users, per_user=0, seed=0)) == list(range(7))


def resolved(**given):
    return resolve_config(FitConfig(run=".", **given))


def test_presets_and_overrides():
    cpu, tiger = resolved(preset="cpu", recipe="examples"), resolved(preset="tiger", recipe="examples")
    assert (tiger.num_layers, tiger.d_model, tiger.num_heads, tiger.d_kv, tiger.max_items) == (
        4,
        128,
        6,
        64,
        20,
    )
    assert cpu.num_layers < tiger.num_layers and cpu.max_items < tiger.max_items
    assert cpu.lr > tiger.lr and resolved(preset="cpu", lr=0.5).lr == 0.5
    assert cpu.batch_size < tiger.batch_size and resolved(preset="cpu", batch_size=7).batch_size == 7
    # the CPU preset trains without dropout or user tokens; TIGER size keeps the paper's
    assert (cpu.dropout, cpu.user_buckets, tiger.dropout, tiger.user_buckets) == (0.0, 0, 0.1, 2000)
    assert model_config(resolved(preset="cpu", recipe="examples", user_buckets=50)).user_buckets == 50
    onepass = resolved(preset="cpu")  # the default recipe: every position in one pass, no time cap
    assert (onepass.recipe, onepass.item_id_embedding, onepass.max_time) == ("onepass", True, None)
    wider = resolved(preset="tiger", num_heads=8)
    assert wider.num_heads * wider.d_kv == 384
    assert resolve_config(tiger) == tiger  # resolving twice changes nothing: a saved config replays
    with pytest.raises(ConfigError, match="--beam-size"):
        FitConfig(run=".", beam_size=5)
    with pytest.raises(ConfigError, match="--user-buckets"):
        FitConfig(run=".", user_buckets=-1)
    with pytest.raises(ConfigError, match="--batch-size"):
        FitConfig(run=".", batch_size=0)


def test_a_presets_own_training_values_apply_unless_the_user_sets_them():
    sasrec = resolve_config(FitConfig(run=".", model="sasrec"))
    assert (sasrec.max_epochs, sasrec.patience, sasrec.seed, sasrec.batch_size) == (200, 10, 42, 128)
    tiger = resolve_config(FitConfig(run=".", model="tiger", preset="cpu", recipe="examples"))
    assert (tiger.max_epochs, tiger.patience, tiger.seed, tiger.batch_size) == (50, 5, 42, 64)
    mine = resolve_config(FitConfig(run=".", model="sasrec", max_epochs=3, patience=1, seed=7, d_model=32))
    assert (mine.max_epochs, mine.patience, mine.seed, mine.d_model, mine.max_len) == (3, 1, 7, 32, 200)


def test_cli_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "--preset" in out and "--resume" in out and "--positions-per-user" in out


def test_a_resumed_run_keeps_the_patience_it_is_given(tmp_path):
    """Continuing an early-stopped run with a larger --patience must not stop again at once."""
    from lightning.pytorch.callbacks import EarlyStopping

    from tidrec.training import TrainConfig, make_trainer

    stopped = EarlyStopping(monitor="val/ndcg@10", mode="max", patience=5)
    stopped.wait_count, stopped.best_score = 5, torch.tensor(0.16)
    trainer = make_trainer(TrainConfig(device="cpu", patience=20), tmp_path)
    stopping = next(c for c in trainer.callbacks if isinstance(c, EarlyStopping))
    assert stopping.state_key == stopped.state_key  # finds the state checkpoints already hold
    stopping.load_state_dict(stopped.state_dict())
    assert (stopping.patience, stopping.wait_count) == (20, 5)
    assert float(stopping.best_score) == pytest.approx(0.16)


def test_make_trainer_defaults(tmp_path):
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint

    from tidrec.training import TrainConfig, make_trainer

    trainer = make_trainer(TrainConfig(device="cpu", gradient_clip=0.5, patience=3), tmp_path)
    checkpoints = {c.filename: c for c in trainer.callbacks if isinstance(c, ModelCheckpoint)}
    stopping = next(c for c in trainer.callbacks if isinstance(c, EarlyStopping))
    assert (checkpoints["best"].monitor, checkpoints["best"].mode) == ("val/ndcg@10", "max")
    assert checkpoints["last"].monitor is None  # written after every validation, best or not
    assert trainer.checkpoint_callback is checkpoints["best"]  # where best_model_score comes from
    assert (stopping.monitor, stopping.patience) == ("val/ndcg@10", 3)
    assert trainer.gradient_clip_val == 0.5 and trainer.precision == "32-true"
    assert [type(lg).__name__ for lg in trainer.loggers] == ["MetricsCSVLogger"]
    with pytest.raises(ConfigError, match="--devices"):
        TrainConfig(devices="two")


def test_wandb_is_added_on_request(tmp_path, monkeypatch):
    from tidrec.training import TrainConfig, make_trainer

    monkeypatch.setenv("WANDB_MODE", "disabled")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    trainer = make_trainer(TrainConfig(device="cpu", logger="wandb"), tmp_path)
    assert [type(lg).__name__ for lg in trainer.loggers] == ["MetricsCSVLogger", "WandbLogger"]


def test_training_time_adds_up_over_resumes_and_survives_a_killed_segment(tmp_path):
    from tidrec.training import record_training

    info = tmp_path / "train_info.json"
    record_training(tmp_path, "sasrec", 100.0, resumed=False, epochs=3)
    record_training(tmp_path, "sasrec", 50.0, resumed=True)  # a clean resume adds its segment
    assert json.loads(info.read_text())["train_seconds"] == 150.0
    # a segment killed before it could record: the max-time timer in the checkpoint still counts it
    record_training(tmp_path, "sasrec", 20.0, resumed=True, timer_seconds=400.0)
    assert json.loads(info.read_text())["train_seconds"] == 400.0
    record_training(tmp_path, "sasrec", 30.0, resumed=False, timer_seconds=None)  # a fresh run starts over
    assert json.loads(info.read_text()) == {"model": "sasrec", "train_seconds": 30.0}


def test_curves_average_step_losses_per_epoch_and_follow_the_learning_rate(tmp_path):
    from tidrec.training import curves, plot_curves, read_metrics

    metrics = tmp_path / "metrics.csv"
    metrics.write_text(
        "epoch,step,train/loss,train/lr,val/ndcg@10\n"
        "0,9,4.0,0.001,\n0,19,2.0,0.001,\n0,19,,,0.10\n"
        "1,29,1.0,0.0003,\n1,39,1.0,0.0003,\n1,39,,,0.20\n"
    )
    losses, scores, rates = curves(read_metrics(metrics))
    assert losses == {"train/loss": [(0.0, 3.0), (1.0, 1.0)]}  # baselines log the loss per step
    assert scores == {"val/ndcg@10": [(0.0, 0.10), (1.0, 0.20)]}
    assert rates == [(0.0, 0.001), (1.0, 0.0003)]
    # the generative model logs a per-epoch aggregate beside the step values: that one is drawn
    aggregated = {
        "train/loss": [(0.0, 9.0)],
        "train/loss_epoch": [(0.0, 5.0)],
        "train/loss_step": [(0.0, 9.0)],
    }
    assert curves(aggregated)[0] == {"train/loss": [(0.0, 5.0)]}
    assert plot_curves(metrics, tmp_path / "curves.png").stat().st_size > 0


def test_baseline_only_options_are_refused_for_tiger(tmp_path, capsys):
    make_run(tmp_path)
    assert main(["--run", str(tmp_path), "--lr-plateau-factor", "0.5", "--progress", "false"]) == 2
    assert "--lr-plateau-factor: not an option of --model tiger" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="--loss, --max-len"):
        fit(FitConfig(run=tmp_path, max_len=50, loss="bce"))
    with pytest.raises(ConfigError, match="--preset: not an option of --model sasrec"):
        fit(FitConfig(run=tmp_path, model="sasrec", preset="tiger"))


def test_print_config_shows_the_merged_config_and_config_replays_a_fit(tmp_path, capsys):
    import yaml

    make_run(tmp_path, num_users=12)
    argv = ["--run", str(tmp_path), "--model", "sasrec", "--max-len", "8", "--d-model", "16"]
    assert main([*argv, "--print-config"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    shown = (printed["max_len"], printed["d_model"], printed["max_epochs"], printed["seed"])
    assert shown == (8, 16, 200, 42)
    assert not (tmp_path / "models" / "sasrec").exists()  # printing trains nothing

    assert main([*argv, "--max-epochs", "2", "--progress", "false", "--device", "cpu"]) == 0
    saved = tmp_path / "models" / "sasrec" / "config.yaml"
    first = torch.load(tmp_path / "models" / "sasrec" / "best.ckpt", weights_only=True)["state_dict"]
    assert yaml.safe_load(saved.read_text())["max_epochs"] == 2
    replay = tmp_path / "replay.yaml"
    replay.write_text(saved.read_text())
    assert main(["--config", str(replay)]) == 0  # the saved config alone retrains the same model
    again = torch.load(tmp_path / "models" / "sasrec" / "best.ckpt", weights_only=True)["state_dict"]
    for name, tensor in first.items():
        torch.testing.assert_close(again[name], tensor, msg=name)
    assert main(["--config", str(replay), "--max-epochs", "1", "--print-config"]) == 0  # flags win
    assert yaml.safe_load(capsys.readouterr().out)["max_epochs"] == 1


def test_a_bad_config_file_is_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("run: .\nmax_epoch: 3\n")
    assert main(["--config", str(bad)]) == 2
    assert "unknown option 'max_epoch'" in capsys.readouterr().err
    bad.write_text("run: .\nmax_epochs: many\n")
    assert main(["--config", str(bad)]) == 2
    assert "max_epochs" in capsys.readouterr().err
