"""The chunked full-softmax cross-entropy against F.cross_entropy: loss and both gradients."""

import math

import pytest
import torch

from tidrec.baselines import softmax_ce
from tidrec.baselines.softmax_ce import softmax_cross_entropy


def loss_and_grads(kernel, hidden, table, targets):
    h, w = hidden.clone().requires_grad_(), table.clone().requires_grad_()
    loss = softmax_cross_entropy(h, w, targets, kernel=kernel)
    (2.5 * loss).backward()  # a non-unit upstream gradient must be carried through
    return loss.detach(), h.grad, w.grad


# 9 items: 7 logits -> 1 row per chunk; 64 -> 7 rows, a ragged last chunk; 1 << 22 -> one chunk
@pytest.mark.parametrize("logits_per_chunk", [7, 64, 1 << 22])
def test_chunked_matches_reference(monkeypatch, logits_per_chunk):
    monkeypatch.setattr(softmax_ce, "LOGITS_PER_CHUNK", logits_per_chunk)
    gen = torch.Generator().manual_seed(0)
    hidden = torch.randn(13, 5, generator=gen, dtype=torch.float64) * 3
    table = torch.randn(9, 5, generator=gen, dtype=torch.float64)
    targets = torch.tensor([0, 8, 3, 3, 1, 2, 7, 6, 5, 4, 0, 8, 2])  # repeats: table grads accumulate
    chunked = loss_and_grads("chunked", hidden, table, targets)
    reference = loss_and_grads("reference", hidden, table, targets)
    for got, want in zip(chunked, reference, strict=True):
        torch.testing.assert_close(got.double(), want.double(), rtol=1e-5, atol=1e-6)


def test_hand_computed_loss():
    # Two items, one row: logits (2, 0) -> loss of target 1 is log(1 + e^2).
    hidden = torch.tensor([[1.0, 0.0]])
    table = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    loss = softmax_cross_entropy(hidden, table, torch.tensor([1]))
    assert loss.item() == pytest.approx(math.log1p(math.exp(2.0)), rel=1e-6)


def test_bad_shapes_and_kernel_are_named():
    hidden, table = torch.zeros(3, 4), torch.zeros(5, 4)
    with pytest.raises(ValueError, match=r"table \(I, D\)"):
        softmax_cross_entropy(hidden, torch.zeros(5, 3), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="targets"):
        softmax_cross_entropy(hidden, table, torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="kernel"):
        softmax_cross_entropy(hidden, table, torch.zeros(3, dtype=torch.long), kernel="fused")
