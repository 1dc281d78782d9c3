"""LLMSeqSim: session embeddings by hand, cosine neighbours, exclusion, save/load through fit_baseline."""

import numpy as np
import pytest
from baseline_fixtures import cycle_embeddings, hit_rate, seed_embedding_cache

from tidrec.baselines import fit_baseline, load_recommender
from tidrec.baselines.llmseqsim import LLMSeqSimRecommender, session_embedding
from tidrec.baselines.popularity import PopularityRecommender
from tidrec.data.dataset import Split
from tidrec.errors import ConfigError

VECTORS = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])


def test_session_embedding_golden_values():
    np.testing.assert_allclose(session_embedding(VECTORS, "last"), [1.0, 1.0])
    np.testing.assert_allclose(session_embedding(VECTORS, "mean"), [2 / 3, 2 / 3])
    # weights 1/3, 2/3, 1 (sum 2): ([1,0]/3 + [0,2/3] + [1,1]) / 2
    np.testing.assert_allclose(session_embedding(VECTORS, "recency"), [(1 / 3 + 1) / 2, (2 / 3 + 1) / 2])
    with pytest.raises(ConfigError):
        session_embedding(VECTORS, "max")


def test_cosine_neighbours_with_and_without_history():
    # items at angles 0, 10, 45, 90 degrees, and one pointing away
    angles = np.deg2rad([0, 10, 45, 90, 180])
    rec = LLMSeqSimRecommender(np.stack([np.cos(angles), np.sin(angles)], axis=1) * [[1], [3], [1], [2], [1]])
    split = Split(np.array([0, 1]), [np.array([0]), np.array([], dtype=np.int64)], np.array([1, 1]))
    kept = rec.recommend(split, k=3, exclude_history=False)
    assert kept.tolist() == [[0, 1, 2], [-1, -1, -1]]  # cosine ignores the norms; empty history -> pad
    assert rec.recommend(split, k=5, exclude_history=True).tolist()[0] == [1, 2, 3, 4, -1]


def test_fit_baseline_round_trip_and_beats_popularity(successor, tmp_path):
    seed_embedding_cache(tmp_path, successor, cycle_embeddings(successor))
    out = tmp_path / "models" / "llmseqsim"
    from tidrec.fit import FitConfig

    config = FitConfig(run=tmp_path, model="llmseqsim", device="cpu", progress=False)
    path = fit_baseline(config, successor, out)
    assert path == out / "llmseqsim.json" and (out / "llmseqsim.npy").is_file()
    rec = load_recommender(out, successor)
    test = successor.split("test")
    ranked = rec.recommend(test, k=10, exclude_history=True)
    pop = PopularityRecommender.fit(successor).recommend(test, k=10, exclude_history=True)
    # the last item's nearest unseen neighbour on the circle is its successor
    assert hit_rate(ranked, test.targets, k=1) == 1.0 > hit_rate(pop, test.targets) + 0.2
