"""Trie-constrained candidate selection for one beam-search step: mask + log-softmax + per-row top-k.

:func:`constrained_candidates` is the public entry point; ``kernel=`` picks the implementation:

* ``"torch"``: the reference. Builds a dense ``(N, V)`` allowed mask by scattering each row's
  children, fills the rest with ``-inf``, log-softmax, top-k over the whole vocabulary.
* ``"gather"``: gathers only each row's children (``(N, F)``, F = the depth's largest fan-out),
  subtracts the row's logsumexp and takes the top-k of those; no ``(N, V)`` mask is built.
* ``"compiled"``: the ``"gather"`` function through ``torch.compile`` (inductor fuses the
  logsumexp, gather and masking; 2-3x faster than eager on CPU). The first call compiles (tens
  of seconds on a small CPU); later calls, at any batch size, reuse the compiled code.
* ``"triton"``: CUDA only; a fused Triton kernel (logsumexp + gather + score) then ``torch.topk``.

Scores are the model's log-probabilities over the **full** vocabulary (log-softmax, then mask),
the same as Hugging Face ``generate`` with ``prefix_allowed_tokens_fn``: an item's score is the
model's log-likelihood of its tokens.
"""

from __future__ import annotations

import torch

from tidrec.errors import ConfigError
from trie.candidates import Candidates, finish, select_children
from trie.trie import TorchTrie

KERNELS = ("torch", "gather", "compiled", "triton")
"""Names accepted by ``kernel=``."""


def constrained_candidates(
    logits: torch.Tensor,
    beam_scores: torch.Tensor,
    nodes: torch.Tensor,
    *,
    trie: TorchTrie,
    depth: int,
    k: int,
    exclude: torch.Tensor | None = None,
    kernel: str = "torch",
) -> Candidates:
    """Top-``k`` trie-allowed continuations of each row by beam score + token log-probability.

    Args:
        logits: ``(N, V)`` next-token logits of N beam rows.
        beam_scores: ``(N,)`` summed log-probabilities so far (``-inf`` for dead beams).
        nodes: ``(N,)`` int64 trie node of each row at ``depth`` (must be valid ids).
        trie: the trie's tensors on the logits' device.
        depth: depth of ``nodes`` (0 = root).
        k: continuations to keep per row.
        exclude: optional ``(G, E)`` int64 child node ids (at ``depth + 1``) that may not be
            taken, sorted ascending per row, padded with -1; ``G`` divides ``N`` and exclude row
            ``g`` applies to the ``N // G`` consecutive rows ``g * N // G ...`` (one row per user
            for its beams, or one per row with ``G = N``).
        kernel: ``"torch"``, ``"gather"``, ``"compiled"`` or ``"triton"``.

    Returns:
        :class:`Candidates` with ``min(k, V)`` (torch) or ``min(k, F)`` (others) columns; both
        hold the same finite entries.

    Raises:
        ConfigError: unknown kernel; triton chosen without CUDA or the triton package; or
            torch.compile unable to build the compiled kernel.
        ValueError: mismatched shapes.
    """
    if logits.ndim != 2 or beam_scores.shape != logits.shape[:1] or nodes.shape != logits.shape[:1]:
        raise ValueError(
            f"logits (N, V), beam_scores (N,), nodes (N,) expected; got {tuple(logits.shape)}, "
            f"{tuple(beam_scores.shape)}, {tuple(nodes.shape)}"
        )
    if exclude is not None and (
        exclude.ndim != 2 or not 0 < exclude.shape[0] <= logits.shape[0] or logits.shape[0] % exclude.shape[0]
    ):
        raise ValueError(
            f"exclude must be (G, E) with G dividing N={logits.shape[0]}, got {tuple(exclude.shape)}"
        )
    if kernel == "torch":
        return _reference(logits, beam_scores, nodes, trie, depth, k, exclude)
    if kernel in ("gather", "compiled"):
        gather = _gather if kernel == "gather" else _compiled_gather()
        return gather(
            logits,
            beam_scores,
            nodes,
            trie.indptr[depth],
            trie.tokens[depth],
            trie.max_fanout[depth],
            k,
            exclude,
        )
    if kernel == "triton":
        from trie.mask_triton import triton_candidates  # guarded: needs CUDA and triton

        return triton_candidates(logits, beam_scores, nodes, trie=trie, depth=depth, k=k, exclude=exclude)
    raise ConfigError(f"kernel must be one of {', '.join(KERNELS)}; got {kernel!r}")


def _reference(
    logits: torch.Tensor,
    beam_scores: torch.Tensor,
    nodes: torch.Tensor,
    trie: TorchTrie,
    depth: int,
    k: int,
    exclude: torch.Tensor | None,
) -> Candidates:
    """Dense mask over the vocabulary: easy to check, O(N V) memory."""
    num_rows, vocab = logits.shape
    indptr, tokens = trie.indptr[depth], trie.tokens[depth]
    start = indptr[nodes]  # (N,)
    degree = indptr[nodes + 1] - start  # (N,)
    row_of_edge = torch.repeat_interleave(torch.arange(num_rows, device=logits.device), degree)  # (E,)
    first = torch.cumsum(degree, 0) - degree  # (N,) position of each row's first edge in the list
    edge = start[row_of_edge] + torch.arange(len(row_of_edge), device=logits.device) - first[row_of_edge]
    child_of = torch.full((num_rows, vocab), -1, dtype=torch.int64, device=logits.device)  # (N, V)
    child_of[row_of_edge, tokens[edge]] = edge
    allowed = child_of >= 0  # (N, V)
    if exclude is not None and exclude.shape[1]:
        exclude = exclude.repeat_interleave(num_rows // exclude.shape[0], dim=0)  # (N, E)
        excluded_tokens = tokens[exclude.clamp(min=0)]  # (N, E)
        hit = (child_of.gather(1, excluded_tokens) == exclude).to(torch.int8)  # (N, E) is that row's child
        banned = torch.zeros_like(allowed, dtype=torch.int8).scatter_reduce(1, excluded_tokens, hit, "amax")
        allowed &= banned == 0
    log_probs = torch.log_softmax(logits.float(), dim=-1)  # (N, V)
    scores = log_probs.masked_fill(~allowed, float("-inf")) + beam_scores.float().unsqueeze(1)
    top_scores, top_tokens = scores.topk(min(k, vocab), dim=1)  # (N, k)
    return finish(top_scores, top_tokens, child_of.gather(1, top_tokens))


def _gather(
    logits: torch.Tensor,
    beam_scores: torch.Tensor,
    nodes: torch.Tensor,
    indptr: torch.Tensor,
    tokens: torch.Tensor,
    fanout: int,
    k: int,
    exclude: torch.Tensor | None,
) -> Candidates:
    """Only each row's children: O(N F) after the row logsumexp."""
    start = indptr[nodes]  # (N,)
    degree = indptr[nodes + 1] - start  # (N,)
    offsets = torch.arange(fanout, device=logits.device)  # (F,)
    valid = offsets < degree.unsqueeze(1)  # (N, F)
    edge = torch.where(valid, start.unsqueeze(1) + offsets, 0)  # (N, F) child node ids
    cand_tokens = tokens[edge]  # (N, F)
    logits = logits.float()
    log_norm = torch.logsumexp(logits, dim=-1, keepdim=True)  # (N, 1)
    scores = logits.gather(1, cand_tokens) - log_norm + beam_scores.float().unsqueeze(1)  # (N, F)
    return select_children(scores, edge, cand_tokens, valid, k, exclude)


_COMPILED: list = []


def _compiled_gather():
    """``torch.compile(_gather)``, built once per process.

    Raises:
        ConfigError: torch.compile is unavailable (e.g. no C++ compiler for inductor on CPU).
    """
    if not _COMPILED:
        compiled = torch.compile(_gather, dynamic=True)

        def call(*args):
            try:
                return compiled(*args)
            except Exception as error:  # inductor/dynamo failures surface on the first call
                if type(error).__module__.startswith("torch._"):
                    raise ConfigError(
                        f"kernel='compiled' could not be built by torch.compile ({type(error).__name__}); "
                        "use kernel='gather'"
                    ) from error
                raise

        _COMPILED.append(call)
    return _COMPILED[0]


def children_only(
    logits: torch.Tensor,
    nodes: torch.Tensor,
    trie: TorchTrie,
    depth: int,
    *,
    hidden: torch.Tensor | None = None,
    node_vectors: torch.Tensor | None = None,
) -> torch.Tensor:
    """``logits`` with every token that is not a child of the row's node set to -inf.

    A log-softmax of the result is the model's distribution renormalised over the tokens the trie
    allows after that prefix (the "trie softmax"), so no probability is spent on codes that lead to
    no item. With ``node_vectors`` each child's logit also gains ``hidden . node_vectors[child]``:
    an output vector of its own per trie node, so the distribution over a prefix's children is not
    bound to the code tokens that every prefix shares (a hierarchical softmax).

    Args:
        logits: ``(N, V)`` next-token logits.
        nodes: ``(N,)`` int64 trie node of each row at ``depth``.
        trie: the trie's tensors on the logits' device.
        depth: the depth of ``nodes``.
        hidden: ``(N, D)`` the decoder states ``logits`` came from (with ``node_vectors``).
        node_vectors: ``(n_{depth+1}, D)`` one vector per node at ``depth + 1`` (the trie's edges
            out of ``depth``).

    Raises:
        ValueError: only one of ``hidden`` and ``node_vectors``, or either of the wrong shape.
    """
    indptr, tokens = trie.indptr[depth], trie.tokens[depth]
    start = indptr[nodes]  # (N,)
    degree = indptr[nodes + 1] - start  # (N,)
    offsets = torch.arange(max(trie.max_fanout[depth], 1), device=logits.device)  # (F,)
    valid = offsets[None, :] < degree[:, None]  # (N, F)
    edge = torch.where(valid, start[:, None] + offsets[None, :], 0)  # (N, F)
    edge = edge.clamp(max=max(len(tokens) - 1, 0))
    vocab = logits.shape[1]
    child_tokens = torch.where(valid, tokens[edge], vocab)  # (N, F)
    if (hidden is None) != (node_vectors is None):
        raise ValueError("pass both hidden and node_vectors, or neither")
    if node_vectors is None:
        allowed = torch.zeros((len(logits), vocab + 1), dtype=torch.bool, device=logits.device)
        allowed = allowed.scatter_(1, child_tokens, True)[:, :vocab]  # column V collects the padding
        return logits.masked_fill(~allowed, float("-inf"))
    if hidden.shape != (len(logits), node_vectors.shape[1]) or len(node_vectors) != len(tokens):
        raise ValueError(
            f"hidden must be ({len(logits)}, D) and node_vectors ({len(tokens)}, D) at depth {depth}, "
            f"got {tuple(hidden.shape)} and {tuple(node_vectors.shape)}"
        )
    own = torch.einsum("nd,nfd->nf", hidden.to(node_vectors.dtype), node_vectors[edge])  # (N, F)
    child = logits.gather(1, child_tokens.clamp(max=vocab - 1)) + own.to(logits.dtype)  # (N, F)
    out = torch.full((len(logits), vocab + 1), float("-inf"), dtype=logits.dtype, device=logits.device)
    return out.scatter_(1, child_tokens, child.masked_fill(~valid, float("-inf")))[:, :vocab]
