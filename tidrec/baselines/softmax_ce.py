"""Full-softmax cross-entropy of hidden states against an item table, without the (N, I) logits.

``F.cross_entropy(hidden @ table.T, targets)`` keeps the N x I logits and their log-softmax for the
backward pass. On ML-1M (N ~ 15k positions per batch, I = 3,706 items) that is two 220 MB buffers
per step, and on a CPU most of the step goes to the page faults of allocating them afresh.

The chunked kernel never holds more than ``LOGITS_PER_CHUNK`` logits at once: the forward pass keeps
only each row's log-sum-exp, and the backward pass recomputes one chunk of logits at a time and
turns it straight into the gradient (softmax minus one-hot). The loss and both gradients are the
reference's up to float rounding; the price is one extra pair of matrix products.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

LOGITS_PER_CHUNK = 1 << 22
"""Logits computed at once by the chunked kernel (16 MB in float32)."""


def softmax_cross_entropy(
    hidden: torch.Tensor,
    table: torch.Tensor,
    targets: torch.Tensor,
    *,
    kernel: Literal["chunked", "reference"] = "chunked",
) -> torch.Tensor:
    """Mean cross-entropy of ``softmax(hidden @ table.T)`` against ``targets``.

    Args:
        hidden: (N, D) hidden states.
        table: (I, D) output item embeddings.
        targets: (N,) int64 row indices into ``table``.
        kernel: ``"chunked"`` (bounded memory) or ``"reference"`` (``F.cross_entropy``).

    Returns:
        Scalar float32 loss.

    Raises:
        ValueError: mismatched shapes, no rows, or an unknown kernel.
    """
    if hidden.dim() != 2 or table.dim() != 2 or hidden.shape[1] != table.shape[1]:
        shapes = f"{tuple(hidden.shape)}, {tuple(table.shape)}"
        raise ValueError(f"need hidden (N, D) and table (I, D), got {shapes}")
    if targets.shape != hidden.shape[:1] or not len(targets):
        raise ValueError(f"need targets (N,) with N = {hidden.shape[0]} > 0, got {tuple(targets.shape)}")
    if kernel == "reference":
        return F.cross_entropy((hidden @ table.T).float(), targets)
    if kernel != "chunked":
        raise ValueError(f"kernel must be 'chunked' or 'reference', got {kernel!r}")
    return _ChunkedSoftmaxCE.apply(hidden, table, targets)


def _chunks(rows: int, classes: int) -> list[slice]:
    """Row slices of at most LOGITS_PER_CHUNK logits each (at least one row)."""
    step = max(1, LOGITS_PER_CHUNK // max(1, classes))
    return [slice(start, min(start + step, rows)) for start in range(0, rows, step)]


class _ChunkedSoftmaxCE(torch.autograd.Function):
    """Cross-entropy whose backward recomputes logits chunk by chunk (float32 throughout)."""

    @staticmethod
    def forward(ctx, hidden: torch.Tensor, table: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        with torch.autocast(hidden.device.type, enabled=False):
            h, w = hidden.float(), table.float()  # (N, D), (I, D)
            log_norm = torch.empty(len(h), device=h.device)  # (N,) log-sum-exp of each row's logits
            for rows in _chunks(len(h), len(w)):
                log_norm[rows] = torch.logsumexp(h[rows] @ w.T, dim=1)
            target_logits = (h * w[targets]).sum(dim=1)  # (N,)
            loss = (log_norm - target_logits).mean()
        ctx.save_for_backward(hidden, table, targets, log_norm)
        return loss

    @staticmethod
    def backward(ctx, grad_loss: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, None]:
        hidden, table, targets, log_norm = ctx.saved_tensors
        with torch.autocast(hidden.device.type, enabled=False):
            h, w = hidden.float(), table.float()
            scale = grad_loss.float() / len(h)
            grad_hidden = torch.empty_like(h)  # (N, D)
            grad_table = torch.zeros_like(w)  # (I, D)
            for rows in _chunks(len(h), len(w)):
                probs = (h[rows] @ w.T).sub_(log_norm[rows, None]).exp_()  # (C, I) softmax
                probs[torch.arange(len(probs), device=h.device), targets[rows]] -= 1.0
                probs *= scale  # d loss / d logits
                grad_hidden[rows] = probs @ w
                grad_table.addmm_(probs.T, h[rows])
        return grad_hidden.to(hidden.dtype), grad_table.to(table.dtype), None
