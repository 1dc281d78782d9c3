"""``python -m tidrec.beam``: --help, a tiny synthetic run, a run from a checkpoint, bad input."""

import json

import numpy as np
import pytest
import torch

from tidrec.beam import main, synthetic_codes


def test_help_lists_the_flags(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for flag in ("--checkpoint", "--budget-ms", "--catalogue", "--batch-sizes", "--kernel", "--hf-batch"):
        assert flag in out


def test_synthetic_codes_are_unique_tuples():
    codes = synthetic_codes(5000, (8, 8), np.random.default_rng(0))
    assert codes.shape == (5000, 3)
    assert len(np.unique(codes, axis=0)) == 5000  # the collision column separates repeats
    assert codes[:, :2].max() < 8 and codes[:, 2].max() >= 1  # 5000 items over 64 prefixes collide


@pytest.mark.parametrize("recipe", ["onepass", "examples"])
def test_tiny_synthetic_run_agrees_with_hf_and_writes_artifacts(tmp_path, capsys, recipe):
    argv = [
        "--recipe",
        recipe,
        "--catalogue",
        "300",
        "--level-sizes",
        "8",
        "8",
        "--beam-size",
        "5",
        "--batch-sizes",
        "1",
        "3",
        "--repeats",
        "2",
        "--warmup",
        "0",
        "--hf-batch",
        "3",
        "--hf-repeats",
        "1",
        "--exact-users",
        "2",
        "--max-beam",
        "64",
        "--memory-items",
        "2000",
        "--budget-ms",
        "100000",
        "--threads",
        "1",
        "--out",
        str(tmp_path),
    ]
    assert main(argv) == 0
    results = json.loads((tmp_path / "beam.json").read_text())
    assert [row["batch"] for row in results["batches"]] == [1, 3]
    assert results["hf"]["identical_topk_rows"] == 1.0  # same items in the same order as HF generate
    assert results["hf"]["max_abs_score_diff"] < 1e-4
    assert results["within_budget"]["batch"] == 3
    assert results["memory"]["items"] == 2000 and results["trie"]["items"] == 300
    assert all(0.0 <= row["certified"] <= 1.0 for row in results["batches"])
    exact = results["exact"]  # 64 beams cannot always certify 300 items' top 5 on random weights
    assert exact["users"] == 2 and exact["beams_max"] <= 64 and exact["p99_ms"] > 0
    assert exact["certified"] >= exact["certified_at_beam_size"]
    assert (tmp_path / "latency.png").read_bytes()[:4] == b"\x89PNG"
    out = capsys.readouterr().out
    assert "largest batch with p99" in out and f"({recipe})" in out


def test_exclude_history_times_decodes_that_skip_each_users_history(tmp_path, monkeypatch):
    import tidrec.generate as generate

    seen = []
    original = generate.beam_search

    def spy(*args, **kwargs):
        result = original(*args, **kwargs)
        seen.append((kwargs.get("exclude"), result.item_idx))
        return result

    monkeypatch.setattr(generate, "beam_search", spy)
    argv = ["--catalogue", "200", "--level-sizes", "4", "4", "--history", "30", "--beam-size", "5"]
    argv += ["--batch-sizes", "3", "--repeats", "1", "--warmup", "0", "--hf-batch", "0"]
    argv += ["--memory-items", "0", "--exclude-history", "true", "--exact-users", "0", "--out", str(tmp_path)]
    assert main(argv) == 0
    assert json.loads((tmp_path / "beam.json").read_text())["config"]["exclude_history"] is True
    assert seen and all(exclude is not None and len(exclude) == 3 for exclude, _ in seen)
    for exclude, items in seen:  # full lists, none of them from the user's history
        for history, row in zip(exclude, items.tolist(), strict=True):
            assert min(row) >= 0 and not set(row) & set(history.tolist())


def test_run_from_a_checkpoint(tmp_path, capsys):
    from tests.tiger_fixtures import make_run
    from tidrec.model import TigerModule, cpu_model

    dataset, sids = make_run(tmp_path)
    module = TigerModule(cpu_model(), sids, dataset_hash=dataset.content_hash)
    checkpoint = {"state_dict": module.state_dict()}
    module.on_save_checkpoint(checkpoint)
    (tmp_path / "models" / "tiger").mkdir(parents=True)
    torch.save(checkpoint, tmp_path / "models" / "tiger" / "best.ckpt")
    argv = [
        "--checkpoint",
        str(tmp_path / "models" / "tiger" / "best.ckpt"),  # the layout tidrec.fit writes
        "--beam-size",
        "4",
        "--batch-sizes",
        "2",
        "--repeats",
        "1",
        "--warmup",
        "0",
        "--hf-batch",
        "2",
        "--hf-repeats",
        "1",
        "--exact-users",
        "2",
        "--max-beam",
        "64",
        "--memory-items",
        "0",
        "--threads",
        "1",
        "--out",
        str(tmp_path / "bench"),
    ]
    assert main(argv) == 0
    results = json.loads((tmp_path / "bench" / "beam.json").read_text())
    assert results["trie"]["items"] == 12 and results["hf"]["identical_topk_rows"] == 1.0
    assert "best.ckpt" in capsys.readouterr().out


def test_missing_checkpoint_is_one_line_error(tmp_path, capsys):
    assert main(["--checkpoint", str(tmp_path / "nope.ckpt"), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "nope.ckpt" in err and "Traceback" not in err


def test_run_from_a_one_pass_checkpoint_matches_hf_generate(tmp_path):
    """The one-pass model's causal encoder feeds both our search and HF generate: same top-k."""
    from tests.tiger_fixtures import make_run
    from tidrec.fit import FitConfig, fit

    make_run(tmp_path, num_users=16)
    tiny = dict(preset="cpu", d_model=32, num_layers=1, num_heads=2, d_ff=64, max_items=4, batch_size=8)
    tiny |= dict(trie_softmax=False)  # HF normalises over the whole vocabulary: so must the model
    fit(FitConfig(run=tmp_path, max_epochs=1, progress=False, device="cpu", **tiny))
    path = tmp_path / "models" / "tiger" / "best.ckpt"
    checkpoint = torch.load(path, weights_only=True)
    recency = checkpoint["state_dict"]["model.recency.weight"]  # one epoch leaves it near its zero start
    checkpoint["state_dict"]["model.recency.weight"] = torch.randn(
        recency.shape, generator=torch.Generator().manual_seed(0)
    )
    torch.save(checkpoint, path)  # so that HF must see the recency bias too to agree
    argv = ["--checkpoint", str(path), "--beam-size", "4"]
    argv += ["--batch-sizes", "2", "--repeats", "1", "--warmup", "0", "--hf-batch", "3", "--hf-repeats", "1"]
    argv += ["--memory-items", "0", "--threads", "1", "--out", str(tmp_path / "bench")]
    assert main(argv) == 0
    results = json.loads((tmp_path / "bench" / "beam.json").read_text())
    assert "one-pass" in results["source"]
    assert results["hf"]["identical_topk_rows"] == 1.0 and results["hf"]["max_abs_score_diff"] < 1e-4


@pytest.mark.parametrize(
    "variant",
    [
        {"trie_softmax": True},
        {"trie_softmax": True, "node_embeddings": True},
        {"objective": "masked"},  # reads the history with a mask appended: not HF's encoder input
    ],
)
def test_a_checkpoint_decoded_its_own_way_is_not_compared_with_hf(tmp_path, capsys, variant):
    from tests.tiger_fixtures import make_run
    from tidrec.fit import FitConfig, fit

    make_run(tmp_path, num_users=16)
    tiny = dict(preset="cpu", d_model=32, num_layers=1, num_heads=2, d_ff=64, max_items=4, batch_size=8)
    tiny |= variant
    fit(FitConfig(run=tmp_path, max_epochs=1, progress=False, device="cpu", **tiny))
    argv = [
        "--checkpoint",
        str(tmp_path / "models/tiger/best.ckpt"),
        "--beam-size",
        "4",
        "--batch-sizes",
        "2",
    ]
    argv += [
        "--repeats",
        "1",
        "--warmup",
        "0",
        "--hf-batch",
        "3",
        "--exact-users",
        "2",
        "--memory-items",
        "0",
    ]
    argv += ["--threads", "1", "--out", str(tmp_path / "bench")]
    assert main(argv) == 0
    results = json.loads((tmp_path / "bench" / "beam.json").read_text())
    assert "hf" not in results and "HF generate not compared" in capsys.readouterr().out
    assert results["exact"]["certified"] == 1.0  # 12 items: a few doublings prove every list
