"""Coverage, serendipity and novelty (Harte et al.) against values computed by hand."""

import numpy as np
import pytest

from tidrec.beyond_accuracy import beyond_accuracy, catalog_coverage, most_popular, novelty, serendipity
from tidrec.data.dataset import Dataset

COUNTS = np.array([8, 4, 2, 1, 1, 0])  # total 16; item 5 never seen in training
RANKED = np.array([[0, 1], [2, 3], [4, -1]])


def test_catalog_coverage_counts_distinct_items_not_pads():
    assert catalog_coverage(RANKED, 6, k=2) == pytest.approx(5 / 6)
    assert catalog_coverage(RANKED, 6, k=1) == pytest.approx(3 / 6)  # items 0, 2, 4


def test_most_popular_breaks_ties_by_lower_item():
    assert most_popular(COUNTS, 4).tolist() == [0, 1, 2, 3]


def test_serendipity_hand_computed():
    # popular top-2 = {0, 1}. user 0: target 1 is expected -> 0 (empty UNEXP);
    # user 1: target 3 unexpected and recommended -> 1; user 2: target 5 unexpected, missed -> 0.
    assert serendipity(RANKED, np.array([1, 3, 5]), COUNTS, k=2) == pytest.approx(1 / 3)
    # at k=1 the popular list is {0}; user 0's target 1 becomes unexpected but sits at rank 2.
    assert serendipity(RANKED, np.array([1, 2, 4]), COUNTS, k=1) == pytest.approx(2 / 3)


def test_novelty_hand_computed():
    # self-information: item0 -log2(8/16)=1, item1 2, item2 3, item3 4, item4 4, item5 (unseen) 0
    # users: (1 + 2) / 2 = 1.5, (3 + 4) / 2 = 3.5, 4 / 1 (the pad is not counted) = 4
    assert novelty(RANKED, COUNTS, k=2) == pytest.approx((1.5 + 3.5 + 4) / 3)
    assert novelty(np.array([[5, 0]]), COUNTS, k=2) == pytest.approx(0.5)


def test_beyond_accuracy_uses_training_counts():
    # train sequences s[:-2]: [0, 0, 1], [0] -> counts 0:3, 1:1, 2:0
    data = Dataset(
        name="t",
        user_ids=np.array(["a", "b"]),
        item_ids=np.array(["x", "y", "z"]),
        item_texts=["x", "y", "z"],
        offsets=np.array([0, 5, 8]),
        items=np.array([0, 0, 1, 2, 2, 0, 1, 2]),
        timestamps=np.arange(8),
    )
    ranked = np.array([[1], [2]])
    result = beyond_accuracy(ranked, np.array([2, 2]), data, k=1)
    assert result == pytest.approx(
        {"coverage@1": 2 / 3, "serendipity@1": 0.5, "novelty@1": (-np.log2(1 / 4) + 0.0) / 2}
    )
