"""Dropout kernels: the ``words`` masks keep 1 - p of the elements, repeat for a seed, scale and
pass gradients as ``F.dropout`` does, and swap into a model without changing its eval output."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tidrec.dropout import DROPOUT_KERNELS, Dropout, dropout, keep_mask, use_dropout_kernel


@pytest.mark.parametrize("p", [0.1, 0.2, 0.5])
def test_words_masks_keep_one_minus_p(p):
    torch.manual_seed(0)
    keep = keep_mask((400, 1000), p)
    assert keep.shape == (400, 1000) and keep.dtype == torch.bool
    assert abs(keep.float().mean().item() - (1 - p)) < 0.005  # standard error about 0.0008
    rows = keep.float().mean(dim=1)  # no structure along the flattened order: every row alike
    assert rows.std().item() < 0.05


def test_words_masks_repeat_for_a_seed_and_differ_across_seeds():
    masks = []
    for seed in (3, 3, 4):
        torch.manual_seed(seed)
        masks.append(keep_mask((7, 33), 0.2))  # 231 elements: not a multiple of four
    assert torch.equal(masks[0], masks[1]) and not torch.equal(masks[0], masks[2])


@pytest.mark.parametrize("kernel", DROPOUT_KERNELS)
def test_dropout_scales_kept_elements_and_their_gradients(kernel):
    torch.manual_seed(1)
    x = torch.randn(64, 50, requires_grad=True)
    out = dropout(x, 0.25, training=True, kernel=kernel)
    kept = out != 0
    assert 0.6 < kept.float().mean().item() < 0.9
    torch.testing.assert_close(out[kept], x[kept] / 0.75)
    out.sum().backward()
    torch.testing.assert_close(x.grad, kept.float() / 0.75)


@pytest.mark.parametrize("kernel", DROPOUT_KERNELS)
def test_dropout_is_the_identity_in_eval_and_at_rate_zero(kernel):
    x = torch.randn(5, 6)
    assert dropout(x, 0.3, training=False, kernel=kernel) is x
    assert dropout(x, 0.0, training=True, kernel=kernel) is x


def test_bad_kernels_and_rates_are_refused():
    with pytest.raises(ValueError, match="kernel must be one of"):
        dropout(torch.ones(3), 0.1, training=True, kernel="philox")
    with pytest.raises(ValueError, match="kernel must be one of"):
        Dropout(0.1, kernel="philox")
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\)"):
        keep_mask((3,), 1.0)


def test_swapping_the_kernel_replaces_every_dropout_and_keeps_eval_outputs():
    torch.manual_seed(2)
    net = nn.Sequential(nn.Linear(8, 8), nn.Dropout(0.2), nn.Sequential(nn.ReLU(), nn.Dropout(0.4)))
    x = torch.randn(4, 8)
    before = net.eval()(x)
    assert use_dropout_kernel(net, "words") == 2
    swapped = [m for m in net.modules() if isinstance(m, nn.Dropout)]
    assert [(type(m), m.p, m.kernel) for m in swapped] == [(Dropout, 0.2, "words"), (Dropout, 0.4, "words")]
    torch.testing.assert_close(net.eval()(x), before)
    net.train()
    assert (net(x) != before).any()
