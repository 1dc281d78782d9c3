"""Decoding a causal LM that recommends items by writing their titles: plain functions over tensors.

* :func:`title_beam_search`: beam search constrained to the trie of the catalogue's title token
  sequences (each ending with EOS, so every item ends at a leaf, at its own depth). The prompt runs
  once per user; its KV cache is then copied to the user's beams, and each step feeds one token per
  live beam. A candidate that reaches a leaf is a finished item and leaves the beam; the others
  compete for the ``beam_size`` live beams. Scores are summed full-vocabulary log-probabilities
  (as HF ``generate`` with ``prefix_allowed_tokens_fn`` and ``length_penalty=0``).
* :func:`score_titles`: every title's exact log-likelihood after every prompt, by brute force.
* :func:`generate_free`: unconstrained greedy generation (what LLMSeqPrompt maps to items).

The model is anything called like a HF causal LM (``LlamaForCausalLM``, or one wrapped by peft):
``model(input_ids=, attention_mask=, position_ids=, cache=, use_cache=True, logits_to_keep=)``
returning ``.logits`` and ``.cache`` (transformers 5 names ``past_key_values`` ``cache``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from tidrec.generate import BeamResult, exclusion_tables
from trie.mask import constrained_candidates
from trie.trie import Trie


def title_trie(sequences: Sequence[Sequence[int]]) -> Trie:
    """The trie of the catalogue's title token sequences (item_idx ``i`` = ``sequences[i]``).

    Without the dense (node, token) tables the SID trie keeps for its shallow depths: over a 49k-token
    vocabulary they would take two thirds of the bytes (ML-1M: 259 B/item with them, 96 without),
    and beam search reads only the CSR arrays.
    """
    return Trie.from_sequences(sequences, dense_limit=0)


def left_pad(prompts: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(B, S)`` input_ids and attention_mask of prompts padded on the left (what the searches take)."""
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for row, prompt in enumerate(prompts):
        ids[row, width - len(prompt) :] = torch.tensor(list(prompt), dtype=torch.long)
        mask[row, width - len(prompt) :] = 1
    return ids, mask


def prompt_positions(attention_mask: torch.Tensor) -> torch.Tensor:
    """``(B, S)`` position ids of left-padded prompts: 0 at each row's first real token (0 on padding)."""
    return (attention_mask.long().cumsum(1) - 1).clamp(min=0)


def check_items_at_leaves(trie: Trie) -> None:
    """Raise ValueError unless every item ends at a leaf (no sequence is a prefix of another).

    Title sequences satisfy this by ending with the EOS token (:func:`prompts.title_sequences`).
    """
    for depth in range(1, trie.depth):
        ends = trie.terminal_items[depth]
        if ends is None:
            continue
        nodes = np.flatnonzero(ends >= 0)
        inner = np.diff(trie.indptr[depth])[nodes] > 0  # an item ends at a node with children
        if inner.any():
            item = int(ends[nodes[inner][0]])
            raise ValueError(
                f"item {item} is a prefix of another sequence (it ends at depth {depth}, not at a leaf): "
                "end every title with the EOS token"
            )


@torch.inference_mode()
def title_beam_search(
    model: Any,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    *,
    trie: Trie,
    beam_size: int,
    top_k: int | None = None,
    exclude: list[np.ndarray] | None = None,
    kernel: str = "gather",
) -> BeamResult:
    """Each user's ``top_k`` best catalogue titles under ``model``, by summed token log-probability.

    Every step takes each live beam's top trie-allowed continuations
    (:func:`trie.mask.constrained_candidates`); those that reach a leaf join the user's finished
    items, the rest compete for the ``beam_size`` live beams. A user stops when it holds ``top_k``
    finished items and none of its live beams scores above the k-th (a log-probability is <= 0,
    so no continuation can); the search stops when no user has a live beam, or at the trie's depth.

    Args:
        model: a causal LM (e.g. ``LlamaForCausalLM``, possibly a ``PeftModel``), switched to eval
            mode for the call.
        input_ids: ``(B, S)`` left-padded prompts.
        attention_mask: ``(B, S)`` 1 for real tokens, 0 for the left padding.
        trie: the catalogue's title sequences (``Trie.from_sequences``), each ending at a leaf.
        beam_size: live beams kept per user.
        top_k: items returned per user (default ``beam_size``).
        exclude: optional per-user item_idx arrays that may not be returned (e.g. history). Exact:
            a prefix whose items are all excluded for the user is masked (:func:`trie.exclude.dead_nodes`).
        kernel: masking kernel, see :func:`trie.mask.constrained_candidates`.

    Returns:
        :class:`tidrec.generate.BeamResult`: ``(B, top_k)`` item_idx (-1 padded) and summed
        log-probabilities (-inf padded), best first; ``certified`` where the k-th score is at least
        every score the search pruned, so the list is the model's exact top ``top_k`` (ties aside).

    Raises:
        ValueError: bad shapes, ``beam_size`` or ``top_k`` below 1, an item ending above a leaf,
            or an exclusion outside the catalogue.
    """
    top_k = beam_size if top_k is None else top_k
    if beam_size < 1 or top_k < 1:
        raise ValueError(f"need beam_size >= 1 and top_k >= 1, got beam_size={beam_size}, top_k={top_k}")
    if input_ids.ndim != 2 or attention_mask.shape != input_ids.shape:
        raise ValueError(
            f"input_ids and attention_mask must both be (B, S), got {tuple(input_ids.shape)}, "
            f"{tuple(attention_mask.shape)}"
        )
    check_items_at_leaves(trie)
    batch, device = input_ids.shape[0], input_ids.device
    torch_trie = trie.to_torch(device)
    item_at = [
        None if t is None else torch.from_numpy(t.astype(np.int64)).to(device) for t in trie.terminal_items
    ]
    dead = exclusion_tables(trie, exclude, batch, device) if exclude is not None else None
    per_row = beam_size + top_k  # a beam feeds at most beam_size live beams and top_k finished items
    prompt_mask = attention_mask.long()
    prompt_len = prompt_mask.sum(1)  # (B,) real prompt tokens: the first title token's position

    was_training = model.training
    model.eval()
    try:
        out = model(
            input_ids=input_ids,
            attention_mask=prompt_mask,
            position_ids=prompt_positions(prompt_mask),
            use_cache=True,
            logits_to_keep=1,
        )
        logits, cache = out.logits[:, -1], out.cache  # (B, V); cache rows = live beams, in `live` order
        scores = torch.zeros((batch, 1), device=device)  # (B, K) live beam scores, -inf where none
        nodes = torch.zeros((batch, 1), dtype=torch.long, device=device)  # (B, K) trie node at `depth`
        live = torch.arange(batch, device=device)  # flat (user, beam) slots with a cache row
        found_items = torch.full((batch, 0), -1, dtype=torch.long, device=device)  # (B, <=k) finished
        found_scores = torch.full((batch, 0), float("-inf"), device=device)
        dropped = torch.full((batch,), float("-inf"), device=device)  # best score the search pruned
        for depth in range(trie.depth):
            slots = scores.shape[1]
            users = live // slots  # (N,) user of each live row
            candidates = constrained_candidates(
                logits,
                scores.view(-1)[live],
                nodes.view(-1)[live],
                trie=torch_trie,
                depth=depth,
                k=per_row,
                exclude=None if dead is None or dead[depth + 1] is None else dead[depth + 1][users],
                kernel=kernel,
            )  # (N, W)
            width = candidates.scores.shape[1]
            if width == per_row:  # a full row may have more children, none above its last score
                dropped = dropped.scatter_reduce(0, users, candidates.scores[:, -1], "amax")
            flat_scores = _per_user(candidates.scores, live, batch, slots, float("-inf"))  # (B, K*W)
            children = _per_user(candidates.children, live, batch, slots, -1)  # (B, K*W) nodes at depth+1
            tokens = _per_user(candidates.tokens, live, batch, slots, 0)  # (B, K*W)
            items = _items_at(item_at[depth + 1], children)  # (B, K*W) -1 where no item ends
            finished = items >= 0

            merged_scores = torch.cat([found_scores, flat_scores.masked_fill(~finished, float("-inf"))], 1)
            merged_items = torch.cat([found_items, items], 1)
            found_scores, pick = merged_scores.topk(min(top_k, merged_scores.shape[1]), dim=1)  # (B, <=k)
            found_items = torch.where(torch.isfinite(found_scores), merged_items.gather(1, pick), -1)

            open_scores = flat_scores.masked_fill(finished, float("-inf"))  # (B, K*W)
            scores, pick = open_scores.topk(min(beam_size, open_scores.shape[1]), dim=1)  # (B, K')
            dropped = torch.maximum(dropped, open_scores.scatter(1, pick, float("-inf")).amax(1))
            nodes = children.gather(1, pick).clamp(min=0)  # dead beams park at node 0
            next_tokens = tokens.gather(1, pick)  # (B, K')
            # a user is done when nothing live can beat its k-th item; what is left is pruned
            best_open = scores[:, 0]  # (B,)
            done = (found_scores[:, -1] >= best_open) if found_scores.shape[1] == top_k else best_open.isinf()
            if depth + 1 == trie.depth:
                done = torch.ones_like(done)
            dropped = torch.where(done, torch.maximum(dropped, best_open), dropped)
            scores = scores.masked_fill(done.unsqueeze(1), float("-inf"))

            new_live = torch.nonzero(torch.isfinite(scores.view(-1))).squeeze(1)  # (N',)
            if len(new_live) == 0:
                break
            row_of_slot = torch.full((batch * slots,), -1, dtype=torch.long, device=device)
            row_of_slot[live] = torch.arange(len(live), device=device)
            parent = torch.arange(batch, device=device).unsqueeze(1) * slots + pick // width  # (B, K')
            cache.reorder_cache(row_of_slot[parent.view(-1)[new_live]])  # each beam takes its parent's
            live = new_live
            users = live // scores.shape[1]
            ones = torch.ones((len(live), depth + 1), dtype=torch.long, device=device)
            out = model(
                input_ids=next_tokens.view(-1)[live].unsqueeze(1),  # (N', 1)
                attention_mask=torch.cat([prompt_mask[users], ones], 1),  # (N', S + depth + 1)
                position_ids=(prompt_len[users] + depth).unsqueeze(1),  # (N', 1)
                cache=cache,
                use_cache=True,
            )
            logits, cache = out.logits[:, -1], out.cache  # (N', V)
    finally:
        model.train(was_training)

    missing = top_k - found_scores.shape[1]  # a catalogue smaller than top_k
    found_items = F.pad(found_items, (0, missing), value=-1)
    found_scores = F.pad(found_scores, (0, missing), value=float("-inf"))
    return BeamResult(
        item_idx=found_items,
        log_probs=found_scores,
        certified=found_scores[:, -1] >= dropped,
        beams=torch.full((batch,), beam_size, dtype=torch.long, device=device),
    )


def _per_user(rows: torch.Tensor, live: torch.Tensor, batch: int, slots: int, fill: float) -> torch.Tensor:
    """``(N, W)`` values of the live rows laid out as ``(B, slots * W)``, ``fill`` for the other slots."""
    table = torch.full((batch * slots, rows.shape[1]), fill, dtype=rows.dtype, device=rows.device)
    return table.index_copy_(0, live, rows).view(batch, -1)


def _items_at(item_at: torch.Tensor | None, nodes: torch.Tensor) -> torch.Tensor:
    """item_idx ending at each node (``-1`` for none, or for node -1)."""
    if item_at is None:
        return torch.full_like(nodes, -1)
    return torch.where(nodes >= 0, item_at[nodes.clamp(min=0)], -1)


@torch.inference_mode()
def score_titles(
    model: Any,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    sequences: Sequence[Sequence[int]],
    *,
    batch_size: int = 64,
) -> torch.Tensor:
    """Summed log-probability of every sequence after every prompt, by brute force.

    Each prompt is stripped of its padding and scored with each sequence appended, in one plain
    forward per ``batch_size`` sequences (no KV cache, no padding before a real token): the
    definition that :func:`title_beam_search` must reproduce.

    Args:
        model: a causal LM (switched to eval mode for the call).
        input_ids: ``(B, S)`` left-padded prompts.
        attention_mask: ``(B, S)`` 1 for real tokens, 0 for padding.
        sequences: I token-id sequences (e.g. the title sequences, EOS included).
        batch_size: sequences per forward.

    Returns:
        ``(B, I)`` float32 log-probabilities.

    Raises:
        ValueError: bad shapes or an empty sequence.
    """
    if input_ids.ndim != 2 or attention_mask.shape != input_ids.shape:
        raise ValueError(
            f"input_ids and attention_mask must both be (B, S), got {tuple(input_ids.shape)}, "
            f"{tuple(attention_mask.shape)}"
        )
    lengths = torch.tensor([len(s) for s in sequences], dtype=torch.long)
    if len(lengths) and int(lengths.min()) == 0:
        raise ValueError(f"sequence {int(lengths.argmin())} is empty")
    device = input_ids.device
    width = int(lengths.max()) if len(lengths) else 1
    titles = torch.zeros((len(sequences), width), dtype=torch.long)  # (I, L), 0 after the end
    for i, seq in enumerate(sequences):
        titles[i, : len(seq)] = torch.as_tensor(seq, dtype=torch.long)
    titles = titles.to(device)
    real = (torch.arange(width) < lengths.unsqueeze(1)).to(device)  # (I, L)
    out = torch.zeros((len(input_ids), len(sequences)), dtype=torch.float32, device=device)
    was_training = model.training
    model.eval()
    try:
        for user in range(len(input_ids)):
            prompt = input_ids[user][attention_mask[user].bool()]  # (P,)
            for start in range(0, len(sequences), batch_size):
                chunk = titles[start : start + batch_size]  # (n, L)
                ids = torch.cat([prompt.expand(len(chunk), -1), chunk], 1)  # (n, P + L)
                logits = model(input_ids=ids, use_cache=False, logits_to_keep=width + 1).logits  # (n, L+1, V)
                log_probs = torch.log_softmax(
                    logits[:, :width].float(), dim=-1
                )  # position j predicts token j
                token = log_probs.gather(2, chunk.unsqueeze(2)).squeeze(2)  # (n, L)
                out[user, start : start + len(chunk)] = (token * real[start : start + batch_size]).sum(1)
    finally:
        model.train(was_training)
    return out


@torch.inference_mode()
def generate_free(
    model: Any,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    *,
    eos_token_id: int,
    max_new_tokens: int,
    pad_token_id: int | None = None,
) -> list[list[int]]:
    """Unconstrained greedy generation (HF ``generate``, ``do_sample=False``), cut at the first EOS.

    Only these settings apply: the model's own generation config (sampling, penalties) is ignored.

    Args:
        model: a causal LM (switched to eval mode for the call).
        input_ids: ``(B, S)`` left-padded prompts.
        attention_mask: ``(B, S)`` 1 for real tokens, 0 for padding.
        eos_token_id: the end-of-sequence token (the tokenizer's).
        max_new_tokens: most tokens generated per user.
        pad_token_id: id filling finished rows (default ``eos_token_id``).

    Returns:
        Per user, the generated token ids before the first EOS (all of them when none came).
    """
    from transformers import GenerationConfig

    config = GenerationConfig(
        do_sample=False,
        num_beams=1,
        max_new_tokens=max_new_tokens,
        eos_token_id=eos_token_id,
        pad_token_id=eos_token_id if pad_token_id is None else pad_token_id,
    )
    was_training = model.training
    model.eval()
    try:
        out = model.generate(input_ids=input_ids, attention_mask=attention_mask, generation_config=config)
    finally:
        model.train(was_training)
    generated = out[:, input_ids.shape[1] :].tolist()  # (B, T)
    return [row[: row.index(eos_token_id)] if eos_token_id in row else row for row in generated]
