"""Evaluation: metrics against values computed by hand, the shared loop, and the CLI."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from tiger_fixtures import NUM_ITEMS, cyclic_dataset, make_run

from tidrec import evaluate as ev
from tidrec.data.dataset import Split
from tidrec.errors import ConfigError


def test_ranking_metrics_match_hand_computed_values():
    ranked = np.array([[3, 1, 2], [5, 6, 7], [9, -1, -1]])
    targets = np.array([1, 4, 9])  # ranks 1 (second), absent, 0 (first)
    metrics = ev.ranking_metrics(ranked, targets, ks=(1, 2))
    assert metrics["recall@1"] == pytest.approx(1 / 3)
    assert metrics["recall@2"] == pytest.approx(2 / 3)
    assert metrics["ndcg@1"] == pytest.approx(1 / 3)
    assert metrics["ndcg@2"] == pytest.approx((1 / math.log2(3) + 0 + 1) / 3)
    assert metrics["mrr"] == pytest.approx((1 / 2 + 0 + 1) / 3)


def test_padding_never_matches_and_shape_is_checked():
    assert ev.ranking_metrics(np.array([[-1, -1]]), np.array([0]), ks=(2,))["recall@2"] == 0.0
    with pytest.raises(ValueError, match="ranked must be"):
        ev.ranking_metrics(np.zeros((2, 3), dtype=np.int64), np.zeros(3, dtype=np.int64))


def test_list_metrics_count_invalid_ids_and_coverage():
    dataset = cyclic_dataset(num_users=4)
    ranked = np.array([[0, 1, NUM_ITEMS + 5, -1], [0, 2, -7, -1]])
    metrics = ev.list_metrics(ranked, np.array([1, 3]), dataset, at=10)
    assert metrics["invalid_rate"] == pytest.approx(2 / 6)  # two of six non-pad entries
    assert metrics["pad_rate"] == pytest.approx(2 / 8)
    assert metrics["coverage@10"] == pytest.approx(3 / NUM_ITEMS)  # items 0, 1, 2


def test_evaluate_and_compare_report_the_same_beyond_accuracy_metrics():
    from tidrec.beyond_accuracy import beyond_accuracy

    dataset = cyclic_dataset(num_users=6)
    ranked = np.array([[0, 1, 2], [3, 4, -1], [5, 0, 1], [2, 3, 4], [1, -1, -1], [4, 5, 0]])
    targets = dataset.split("test").targets
    metrics = ev.list_metrics(ranked, targets, dataset, at=3)
    for name, value in beyond_accuracy(ranked, targets, dataset, k=3).items():
        assert metrics[name] == pytest.approx(value), name


class FixedList:
    """Recommends items 0, 1, 2, ... to everyone; records the calls it gets."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int, bool]] = []

    def recommend(self, split: Split, *, k: int, exclude_history: bool) -> np.ndarray:
        self.calls.append((len(split), k, exclude_history))
        ranked = np.full((len(split), k), -1, dtype=np.int64)
        ranked[:, :NUM_ITEMS] = np.arange(NUM_ITEMS)
        return ranked


def test_evaluate_batches_users_and_scores_the_test_targets():
    dataset = cyclic_dataset(num_users=10)
    recommender = FixedList()
    result = ev.evaluate(recommender, dataset, k=20, batch_size=4, exclude_history=True, progress=False)
    targets = dataset.split("test").targets
    assert [c[0] for c in recommender.calls] == [4, 4, 2]
    assert all(c[1:] == (20, True) for c in recommender.calls)
    assert result.users == 10
    assert result.metrics["recall@5"] == pytest.approx(np.mean(targets < 5))
    assert result.metrics["mrr"] == pytest.approx(np.mean(1 / (targets + 1)))
    assert result.metrics["invalid_rate"] == 0.0
    assert result.metrics["coverage@10"] == pytest.approx(10 / NUM_ITEMS)
    hits = (targets < 10).astype(float)  # the list is item_idx 0..19 for everyone
    assert result.metrics["recall@10_se"] == pytest.approx(hits.std(ddof=1) / np.sqrt(10))


def test_evaluate_rejects_short_lists():
    with pytest.raises(ConfigError, match="k must be >= 20"):
        ev.evaluate(FixedList(), cyclic_dataset(num_users=4), k=10)


def test_results_are_saved_as_json_and_markdown(tmp_path):
    result = ev.evaluate(FixedList(), cyclic_dataset(num_users=4), progress=False, model_name="fixed")
    path = ev.save_result(result, tmp_path)
    saved = json.loads(path.read_text())
    assert path.name == "results.json"
    assert saved["metrics"]["recall@10"] == result.metrics["recall@10"]
    table = (tmp_path / "results.md").read_text()
    assert table.startswith("| model |") and "| fixed | test | no | 4 |" in table


def test_cli_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        ev.main(["--help"])
    assert exit_info.value.code == 0
    assert "--exclude-history" in capsys.readouterr().out


def test_cli_evaluates_the_popularity_baseline_end_to_end(tmp_path, capsys):
    from tidrec.fit import main as fit_main

    make_run(tmp_path, num_users=12)
    assert fit_main(["--run", str(tmp_path), "--model", "pop"]) == 0
    assert ev.main(["--run", str(tmp_path), "--model", "pop", "--exclude-history", "true"]) == 0
    saved = json.loads((tmp_path / "models/pop/eval/results-test-exclude-history.json").read_text())
    assert saved["users"] == 12 and saved["exclude_history"] is True
    assert "| pop | test | yes | 12 |" in capsys.readouterr().out


def test_cli_names_a_missing_model_in_one_line(tmp_path, capsys):
    make_run(tmp_path, num_users=6)
    assert ev.main(["--run", str(tmp_path), "--model", "sasrec"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "models/sasrec" in err


def test_paired_difference_compares_two_models_user_by_user():
    from tidrec.metrics import paired_difference

    targets = np.array([1, 2, 3, 4])
    a = np.array([[1, 9], [9, 2], [9, 8], [9, 8]])  # hits at rank 0 and rank 1
    b = np.array([[9, 1], [9, 8], [3, 9], [9, 8]])  # hits at rank 1 and rank 0
    out = paired_difference(a, b, targets, k=2)
    per_user = np.array([1 - 1 / math.log2(3), 1 / math.log2(3), -1.0, 0.0])  # NDCG@2 of a minus b
    assert out["ndcg@2_diff"] == pytest.approx(per_user.mean())
    assert out["ndcg@2_diff_se"] == pytest.approx(per_user.std(ddof=1) / 2)
    assert (out["recall@2_diff"], out["a_better"], out["b_better"]) == (0.0, 2.0, 1.0)
    same = paired_difference(a, a, targets, k=2)
    assert same["ndcg@2_diff"] == same["ndcg@2_diff_se"] == 0.0
