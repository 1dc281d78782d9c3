import json

import numpy as np
import pytest

from tidrec.baselines import fit_baseline, load_recommender
from tidrec.baselines.popularity import PopularityRecommender
from tidrec.data.dataset import Dataset, Split
from tidrec.errors import InputError


def tiny_dataset() -> Dataset:
    # train sequences (s[:-2]): u0 [0, 1, 1], u1 [2, 1], u2 [2] -> counts 0:1, 1:3, 2:2, 3:0
    seqs = [[0, 1, 1, 3, 3], [2, 1, 3, 0], [2, 0, 3]]
    lengths = [len(s) for s in seqs]
    return Dataset(
        name="tiny",
        user_ids=np.array(["a", "b", "c"]),
        item_ids=np.array(["w", "x", "y", "z"]),
        item_texts=["w", "x", "y", "z"],
        offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        items=np.concatenate(seqs).astype(np.int64),
        timestamps=np.concatenate([np.arange(n) for n in lengths]).astype(np.int64),
    )


def test_ranks_by_training_count_with_stable_ties():
    pop = PopularityRecommender.fit(tiny_dataset())
    assert pop.counts.tolist() == [1, 3, 2, 0]
    split = Split(np.array([0]), [np.array([], dtype=np.int64)], np.array([0]))
    assert pop.recommend(split, k=4, exclude_history=False).tolist() == [[1, 2, 0, 3]]
    tied = PopularityRecommender(np.array([2, 5, 2, 2]))
    assert tied.recommend(split, k=4, exclude_history=False).tolist() == [[1, 0, 2, 3]]


def test_history_exclusion_and_padding():
    pop = PopularityRecommender(np.array([1, 3, 2, 0]))
    split = Split(np.array([0, 1]), [np.array([1, 2]), np.array([0, 1, 2, 3])], np.array([0, 0]))
    assert pop.recommend(split, k=3, exclude_history=True).tolist() == [[0, 3, -1], [-1, -1, -1]]
    assert pop.recommend(split, k=5, exclude_history=False).tolist() == [[1, 2, 0, 3, -1]] * 2


def test_fit_baseline_round_trip_and_refuses_other_dataset(tmp_path):
    from tidrec.fit import FitConfig

    dataset = tiny_dataset()
    path = fit_baseline(FitConfig(run=tmp_path, model="pop"), dataset, tmp_path / "pop")
    assert json.loads(path.read_text())["counts"] == [1, 3, 2, 0]
    rec = load_recommender(tmp_path / "pop", dataset)
    test = dataset.split("test")
    assert rec.recommend(test, k=2, exclude_history=False).tolist() == [[1, 2]] * 3
    other = Dataset(**{**dataset.__dict__, "name": "other", "item_texts": ["a", "b", "c", "d"]})
    with pytest.raises(InputError, match="dataset hash"):
        load_recommender(path, other)
