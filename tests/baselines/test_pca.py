"""PCA initialisation: golden principal components, and the values really land in the item table."""

import numpy as np
import pytest
import torch

from tidrec.baselines.bert4rec import BERT4Rec, BERT4RecConfig
from tidrec.baselines.pca import init_item_table, pca_reduce
from tidrec.baselines.sasrec import SASRec, SASRecConfig
from tidrec.errors import ConfigError

# Four points spread 4 along axis 2, 1 along axis 0, nothing along axis 1 (mean is 0).
POINTS = np.array([[1.0, 0.0, 4.0], [-1.0, 0.0, 4.0], [1.0, 0.0, -4.0], [-1.0, 0.0, -4.0]])


def test_pca_golden_components():
    reduced = pca_reduce(POINTS, 2)
    # first component: axis 2 (variance 16), second: axis 0 (variance 1); signs: largest entry > 0
    expected = np.array([[4.0, 1.0], [4.0, -1.0], [-4.0, 1.0], [-4.0, -1.0]])
    flips = np.sign(expected[np.abs(expected).argmax(0), [0, 1]])
    np.testing.assert_allclose(reduced, expected * flips, atol=1e-6)
    assert abs(reduced[np.abs(reduced[:, 0]).argmax(), 0]) == pytest.approx(4.0)


def test_pca_width_is_bounded():
    with pytest.raises(ConfigError, match="--d-model"):
        pca_reduce(POINTS, 4)


@pytest.mark.parametrize(
    "model",
    [
        SASRec(SASRecConfig(num_items=4, max_len=5, d_model=2, num_heads=1)),
        BERT4Rec(BERT4RecConfig(num_items=4, max_len=5, d_model=2, num_heads=1)),
    ],
)
def test_init_copies_reduced_embeddings_into_the_item_table(model):
    before_pad = model.item_emb.weight[0].detach().clone()
    scale = init_item_table(model.item_table, POINTS, std=0.02)
    table = model.item_emb.weight.detach()
    np.testing.assert_allclose(table[1:5].numpy(), pca_reduce(POINTS, 2) * scale, rtol=1e-5)
    assert float(table[1:5].std(correction=0)) == pytest.approx(0.02, rel=1e-4)
    assert torch.equal(table[0], before_pad)  # padding row untouched
    # the model scores with those rows: item i's output logit uses row i + 1
    hidden = torch.randn(3, 2)
    torch.testing.assert_close(model.item_table @ hidden.T, table[1:5] @ hidden.T)
