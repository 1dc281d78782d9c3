"""The ``kernel="triton"`` path: one fused CUDA kernel per step (row logsumexp + gather + score).

Each program handles one beam row: an online logsumexp over the vocabulary, then the row's trie
children are gathered and scored as ``logit - logsumexp + beam_score``. Selection (exclusion and
top-k over the row's F children) reuses the torch code of the ``"gather"`` path.
"""

from __future__ import annotations

import torch

from tidrec.errors import ConfigError
from trie.candidates import select_children
from trie.trie import TorchTrie

try:  # optional backend: only this path needs it
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - depends on the environment
    triton = None

if triton is not None:

    @triton.jit
    def _score_children(
        logits_ptr,
        row_stride,
        vocab,
        beam_scores_ptr,
        nodes_ptr,
        indptr_ptr,
        tokens_ptr,
        out_ptr,
        fanout,
        BLOCK_V: tl.constexpr,
        BLOCK_F: tl.constexpr,
    ):
        row = tl.program_id(0)
        base = logits_ptr + row * row_stride
        running_max = tl.full([BLOCK_V], -1e30, tl.float32)
        running_sum = tl.zeros([BLOCK_V], tl.float32)
        for start in range(0, vocab, BLOCK_V):
            offs = start + tl.arange(0, BLOCK_V)
            x = tl.load(base + offs, mask=offs < vocab, other=-1e30).to(tl.float32)
            new_max = tl.maximum(running_max, x)
            running_sum = running_sum * tl.exp(running_max - new_max) + tl.where(
                offs < vocab, tl.exp(x - new_max), 0.0
            )
            running_max = new_max
        row_max = tl.max(running_max, 0)
        log_norm = row_max + tl.log(tl.sum(running_sum * tl.exp(running_max - row_max), 0))
        node = tl.load(nodes_ptr + row)
        first = tl.load(indptr_ptr + node)
        degree = tl.load(indptr_ptr + node + 1) - first
        beam_score = tl.load(beam_scores_ptr + row)
        for f0 in range(0, fanout, BLOCK_F):
            f = f0 + tl.arange(0, BLOCK_F)
            valid = f < degree
            token = tl.load(tokens_ptr + first + f, mask=valid, other=0)
            x = tl.load(base + token, mask=valid, other=0.0).to(tl.float32)
            score = tl.where(valid, x - log_norm + beam_score, float("-inf"))
            tl.store(out_ptr + row * fanout + f, score, mask=f < fanout)


def triton_candidates(
    logits: torch.Tensor,
    beam_scores: torch.Tensor,
    nodes: torch.Tensor,
    *,
    trie: TorchTrie,
    depth: int,
    k: int,
    exclude: torch.Tensor | None,
):
    """Same contract as :func:`trie.mask.constrained_candidates` with ``kernel="gather"``.

    Raises:
        ConfigError: the triton package is missing, or the tensors are not on CUDA.
    """
    if triton is None:
        raise ConfigError("kernel='triton' needs the triton package (pip install triton); use 'compiled'")
    if not logits.is_cuda:
        raise ConfigError("kernel='triton' runs on CUDA tensors only; use kernel='compiled' on CPU")
    num_rows, vocab = logits.shape
    fanout = trie.max_fanout[depth]
    logits = logits.contiguous()
    scores = torch.empty(num_rows, fanout, device=logits.device, dtype=torch.float32)
    _score_children[(num_rows,)](
        logits,
        logits.stride(0),
        vocab,
        beam_scores.float().contiguous(),
        nodes.contiguous(),
        trie.indptr[depth],
        trie.tokens[depth],
        scores,
        fanout,
        BLOCK_V=1024,
        BLOCK_F=min(triton.next_power_of_2(max(fanout, 1)), 1024),
    )
    start = trie.indptr[depth][nodes]  # (N,)
    degree = trie.indptr[depth][nodes + 1] - start
    offsets = torch.arange(fanout, device=logits.device)
    valid = offsets < degree.unsqueeze(1)  # (N, F)
    edge = torch.where(valid, start.unsqueeze(1) + offsets, 0)  # (N, F)
    return select_children(scores, edge, trie.tokens[depth][edge], valid, k, exclude)
