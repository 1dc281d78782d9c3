import numpy as np
import pytest

from tokenizer.stats import code_stats, plot_code_usage


def test_code_stats_golden():
    codes = np.array([[0, 0], [1, 0], [2, 0], [3, 0], [0, 0], [1, 0], [2, 0], [3, 1]])
    stats = code_stats(codes, (4, 8))
    assert stats["levels"][0] == {"size": 4, "used": 4, "usage": 1.0, "perplexity": pytest.approx(4.0)}
    assert stats["levels"][1]["used"] == 2 and stats["levels"][1]["usage"] == 0.25
    p = np.array([7, 1]) / 8  # level 1: seven items on code 0, one on code 1
    assert stats["levels"][1]["perplexity"] == pytest.approx(np.exp(-(p * np.log(p)).sum()))
    # tuples (0,0),(1,0),(2,0) twice each; (3,0) and (3,1) once: 5 distinct of 8
    assert stats["unique_tuple_rate"] == 5 / 8
    assert stats["largest_group"] == 2
    assert stats["colliding_items"] == 6


def test_plot_writes_png(tmp_path):
    codes = np.array([[0, 1], [1, 1], [1, 0]])
    plot_code_usage(codes, (2, 2), tmp_path / "usage.png", title="t")
    assert (tmp_path / "usage.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["usage.png"]
