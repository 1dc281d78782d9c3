"""Run folders are untrusted input: no code runs on load, mismatches are refused, nothing is lost.

Each test plays an attacker or a careless user on a copy of a tiny trained run folder (the cyclic
catalogue of ``tiger_fixtures``, with the generative model and SASRec trained on it).
"""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from tiger_fixtures import make_run

from tidrec import beam, compare, evaluate, fit
from tidrec.artifacts import CHECKPOINT_KEY
from tidrec.fit import FitConfig
from tidrec.models.tiger.onepass_train import OnePassModule
from tidrec.training import FIT_OPTIONS_KEY, FolderCheckpoint
from tokenizer.sid_table import SidTable

TIGER = ["--preset", "cpu", "--d-model", "32", "--num-layers", "1", "--num-heads", "2", "--d-ff", "32"]
TIGER += ["--max-items", "2", "--user-buckets", "0", "--batch-size", "32", "--patience", "50"]
TIGER += ["--progress", "false", "--seed", "0"]
SASREC = ["--model", "sasrec", "--max-len", "8", "--batch-size", "8", "--d-model", "16"]
SASREC += ["--num-heads", "1", "--progress", "false", "--patience", "50"]


def _config(argv: list[str]) -> FitConfig:
    from tidrec.cli import parse_config

    return parse_config(FitConfig, argv, prog="test", description="")


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    """A run folder with the generative model and SASRec trained for two epochs each."""
    run = tmp_path_factory.mktemp("trained")
    make_run(run, num_users=40)
    fit.fit(_config(["--run", str(run), "--max-epochs", "2", *TIGER]))
    fit.fit(_config(["--run", str(run), "--max-epochs", "2", *SASREC]))
    return run


@pytest.fixture
def run(trained_run, tmp_path) -> Path:
    """A private copy of the trained run (a copied folder, as a colleague would receive it)."""
    copy = tmp_path / "copy"
    shutil.copytree(trained_run, copy)
    return copy


class _Payload:
    """Unpickling this creates ``marker``: proof that loading ran code from the file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def _plant(path: Path, marker: Path) -> None:
    """Replace ``path`` with a checkpoint that looks like tidrec's but carries a payload."""
    checkpoint = torch.load(path, weights_only=True)
    checkpoint["callbacks"] = _Payload(marker)
    torch.save(checkpoint, path)


def _one_line_error(capsys) -> str:
    """The stage's error line; it must be the only one, and no traceback may precede it."""
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if ": error: " in line]
    assert len(errors) == 1 and "Traceback" not in err, err
    return errors[0]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


STAGES = [(stage, model) for stage in ("fit-resume", "evaluate", "compare") for model in ("tiger", "sasrec")]
STAGES.append(("beam", "tiger"))  # tidrec.beam decodes the generative model only


@pytest.mark.parametrize(("stage", "model"), STAGES)
def test_a_malicious_checkpoint_runs_no_code_in_any_stage(run, tmp_path, capsys, stage, model):
    marker = tmp_path / "pwned"
    folder = run / "models" / model
    _plant(folder / ("last.ckpt" if stage == "fit-resume" else "best.ckpt"), marker)
    if stage == "fit-resume":
        assert (folder / "metrics.csv").is_file()  # the file whose clean-up used to unpickle
        argv = ["--run", str(run), "--max-epochs", "3", "--resume", "true"]
        code = fit.main(argv + (TIGER if model == "tiger" else SASREC))
    elif stage == "evaluate":
        code = evaluate.main(["--run", str(run), "--model", model, "--device", "cpu"])
    elif stage == "compare":
        code = compare.main(["--run", str(run), "--models", model, "--device", "cpu", "--progress", "false"])
    else:
        code = beam.main(["--checkpoint", str(folder / "best.ckpt"), "--out", str(tmp_path / "bench")])
    assert code == 2
    assert "refused" in _one_line_error(capsys)
    assert not marker.exists()


def test_resume_refuses_a_different_sid_table_and_leaves_the_folder_alone(run, capsys):
    sids_path = run / "tokenizer" / "sids.parquet"
    sids = SidTable.load(sids_path)
    swapped = np.roll(sids.codes, 1, axis=0)  # the same codes given to other items
    SidTable(sids.item_ids, swapped, sids.level_sizes, sids.dataset_hash).save(sids_path)
    folder = run / "models" / "tiger"
    before = {name: _sha(folder / name) for name in ("best.ckpt", "last.ckpt", "metrics.csv")}
    argv = ["--run", str(run), "--max-epochs", "3", "--resume", "true", *TIGER]
    assert fit.main(argv) == 2
    assert "trained on SID table" in _one_line_error(capsys)
    assert {name: _sha(folder / name) for name in before} == before


def test_resume_refuses_another_model_config(run, capsys):
    argv = ["--run", str(run), "--max-epochs", "3", "--resume", "true", *TIGER, "--d-model", "48"]
    assert fit.main(argv) == 2
    err = _one_line_error(capsys)
    assert "another model config" in err and "d_model 32 vs 48" in err


def _rewrite_tiger_run(run: Path, **model_config) -> None:
    """Make the run's last checkpoint look trained with other options (None: an option added since)."""
    last = run / "models" / "tiger" / "last.ckpt"
    checkpoint = torch.load(last, weights_only=True)
    options = yaml.safe_load(checkpoint[FIT_OPTIONS_KEY])
    for name, value in model_config.items():
        for record in (checkpoint[CHECKPOINT_KEY]["model_config"], options):
            record.pop(name) if value is None else record.__setitem__(name, value)
    checkpoint[FIT_OPTIONS_KEY] = yaml.safe_dump(options, sort_keys=False)
    torch.save(checkpoint, last)


def test_resume_accepts_a_checkpoint_older_than_a_new_option(run):
    _rewrite_tiger_run(run, dropout_kernel=None)  # written before the option existed: torch's dropout
    argv = ["--run", str(run), "--max-epochs", "3", "--resume", "true", *TIGER]
    assert fit.main([*argv, "--dropout-kernel", "torch"]) == 0


def test_resume_continues_with_the_options_the_run_was_trained_with(run):
    """A run started under an earlier preset resumes as it started, not with today's preset, even
    after a failed attempt with other options rewrote config.yaml."""
    _rewrite_tiger_run(run, dropout_kernel="torch")  # today's cpu preset draws masks from words
    (run / "models" / "tiger" / "config.yaml").write_text("dropout_kernel: words\n")
    assert fit.main(["--run", str(run), "--max-epochs", "3", "--resume", "true", *TIGER]) == 0
    saved = yaml.safe_load((run / "models" / "tiger" / "config.yaml").read_text())
    assert (saved["dropout_kernel"], saved["max_epochs"]) == ("torch", 3)
    last = torch.load(run / "models" / "tiger" / "last.ckpt", weights_only=True)
    resumed = yaml.safe_load(last[FIT_OPTIONS_KEY])
    assert resumed["dropout_kernel"] == "torch"


def test_options_recorded_in_a_checkpoint_are_checked_like_a_config_file(run, capsys):
    last = run / "models" / "tiger" / "last.ckpt"
    checkpoint = torch.load(last, weights_only=True)
    checkpoint[FIT_OPTIONS_KEY] += "warp_drive: 9\n"
    torch.save(checkpoint, last)
    assert fit.main(["--run", str(run), "--max-epochs", "3", "--resume", "true", *TIGER]) == 2
    assert "the options it records: unknown option 'warp_drive'" in _one_line_error(capsys)


def test_resume_of_a_truncated_checkpoint_is_one_line(run, capsys):
    last = run / "models" / "sasrec" / "last.ckpt"
    last.write_bytes(last.read_bytes()[:1000])
    assert fit.main(["--run", str(run), "--max-epochs", "3", "--resume", "true", *SASREC]) == 2
    assert "truncated or corrupt" in _one_line_error(capsys)


def _best_score(path: Path) -> float:
    callbacks = torch.load(path, weights_only=True)["callbacks"]
    (state,) = [v for k, v in callbacks.items() if k.startswith("ModelCheckpoint{'monitor': 'val/ndcg@10'")]
    return float(state["best_model_score"])


def test_a_moved_run_folder_resumes_and_keeps_its_best_checkpoint(run, tmp_path, monkeypatch):
    moved = tmp_path / "moved"
    shutil.move(run, moved)  # the folder the checkpoints record no longer exists
    folder = moved / "models" / "tiger"
    best_before, score_before = _sha(folder / "best.ckpt"), _best_score(folder / "last.ckpt")
    assert score_before > 0

    def worse(self, batch, batch_idx):  # every later epoch validates worse than the best so far
        self.log("val/ndcg@10", 0.0, batch_size=len(batch["targets"]))

    monkeypatch.setattr(OnePassModule, "validation_step", worse)
    fit.fit(_config(["--run", str(moved), "--max-epochs", "4", "--resume", "true", *TIGER]))
    assert torch.load(folder / "last.ckpt", weights_only=True)["epoch"] == 3  # it did train on
    assert _sha(folder / "best.ckpt") == best_before
    assert json.loads((folder / "train_info.json").read_text())["best_val_ndcg10"] == pytest.approx(
        score_before
    )


def test_a_diverging_run_stops_with_one_line_and_keeps_best(run, capsys):
    folder = run / "models" / "tiger"
    before = {name: _sha(folder / name) for name in ("best.ckpt", "last.ckpt")}
    argv = ["--run", str(run), "--max-epochs", "2", *TIGER, "--lr", "1e30", "--gradient-clip", "0"]
    argv += ["--recipe", "examples"]  # T5 on one example per target diverges at once at this rate
    assert fit.main(argv) == 2
    assert "training loss became" in _one_line_error(capsys)
    assert {name: _sha(folder / name) for name in before} == before


def test_a_non_finite_score_never_becomes_the_best(tmp_path):
    callback = FolderCheckpoint(dirpath=tmp_path, filename="best", monitor="val/ndcg@10", mode="max")
    assert not callback.check_monitor_top_k(None, torch.tensor(float("nan")))  # type: ignore[arg-type]


def test_recorded_paths_are_never_trusted(tmp_path):
    """A checkpoint's callback state names files Lightning would later delete; none is kept."""
    (tmp_path / "best.ckpt").write_bytes(b"x")
    callback = FolderCheckpoint(dirpath=tmp_path, filename="best", monitor="val/ndcg@10", mode="max")
    score = torch.tensor(0.5)
    callback.load_state_dict(
        {"best_model_score": score, "best_model_path": "/etc/passwd", "best_k_models": {"/etc/passwd": score}}
    )
    assert callback.best_k_models == {str(tmp_path / "best.ckpt"): score}
    assert callback.best_model_path == str(tmp_path / "best.ckpt")


def test_beam_refuses_a_checkpoint_trained_on_other_data(run, tmp_path, capsys):
    other = tmp_path / "other"
    make_run(other, num_users=30)
    argv = ["--checkpoint", str(run / "models/tiger/best.ckpt"), "--data", str(other / "data")]
    assert beam.main([*argv, "--out", str(tmp_path / "bench")]) == 2
    assert "trained on dataset" in _one_line_error(capsys)


def test_baseline_checkpoints_load_weights_only_from_a_plain_data_record(run):
    checkpoint = torch.load(run / "models/sasrec/best.ckpt", weights_only=True)
    record = checkpoint[CHECKPOINT_KEY]
    assert record["kind"] == "sequence" and record["model_name"] == "sasrec"
    assert json.loads(json.dumps(record)) == record  # plain data only


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_compare_on_a_files_run_keeps_its_data(tmp_path, capsys):
    from test_compare import _write_files

    from tidrec.data.prepare import DataConfig, prepare_dataset

    inter, items = _write_files(tmp_path)
    run = tmp_path / "run"
    prepared = prepare_dataset(DataConfig(dataset="files", interactions=inter, items=items), run / "data")
    manifest = (run / "data" / "manifest.json").read_text()
    assert compare.main(["--run", str(run), "--models", "pop", "--progress", "false"]) == 0
    assert (run / "data" / "manifest.json").read_text() == manifest
    result = json.loads((run / "results.json").read_text())
    assert result["results"][0]["model"] == "pop" and prepared.name in json.dumps(result)

    other = tmp_path / "other.csv"
    other.write_text(inter.read_text())
    argv = ["--run", str(run), "--models", "pop", "--dataset", "files", "--interactions", str(other)]
    assert compare.main([*argv, "--items", str(items)]) == 2
    assert "holds data prepared from files" in _one_line_error(capsys)
    assert (run / "data" / "manifest.json").read_text() == manifest
