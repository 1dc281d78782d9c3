"""What every masking kernel ends with: the valid, non-excluded children of each beam row, top-k.

Shared by the kernels of :mod:`trie.mask` and :mod:`trie.mask_triton`, so both return the same
:class:`Candidates` from the same selection.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Candidates:
    """The best continuations of each beam row, best first."""

    scores: torch.Tensor
    """``(N, k)`` float32 beam score + token log-probability; ``-inf`` where a row has fewer than k."""
    tokens: torch.Tensor
    """``(N, k)`` int64 token ids (0 where the score is -inf)."""
    children: torch.Tensor
    """``(N, k)`` int64 child node ids at ``depth + 1`` (-1 where the score is -inf)."""


def select_children(
    scores: torch.Tensor,
    edge: torch.Tensor,
    cand_tokens: torch.Tensor,
    valid: torch.Tensor,
    k: int,
    exclude: torch.Tensor | None,
) -> Candidates:
    """Drop invalid and excluded children, keep each row's top-k.

    Inputs are ``(N, F)``; ``exclude`` is ``(G, E)``, each row shared by ``N // G`` consecutive rows.
    """
    if exclude is not None and exclude.shape[1]:
        grouped = edge.reshape(exclude.shape[0], -1)  # (G, N/G * F): a user's beams side by side
        pos = torch.searchsorted(exclude, grouped).clamp(max=exclude.shape[1] - 1)  # (G, N/G * F)
        valid = valid & (exclude.gather(1, pos) != grouped).view_as(valid)
    scores = scores.masked_fill(~valid, float("-inf"))
    top_scores, pick = scores.topk(min(k, scores.shape[1]), dim=1)  # (N, k)
    return finish(top_scores, cand_tokens.gather(1, pick), edge.gather(1, pick))


def finish(scores: torch.Tensor, tokens: torch.Tensor, children: torch.Tensor) -> Candidates:
    alive = torch.isfinite(scores)
    return Candidates(
        scores=scores,
        tokens=torch.where(alive, tokens, 0),
        children=torch.where(alive, children, -1),
    )
