"""Trie-constrained batched beam search over a T5 encoder-decoder: plain functions over tensors.

All B users x K beams advance together. The encoder runs once per user; each decoder layer's
cross-attention keys/values are projected once per user and shared by that user's K beams (the
beams are laid out as K query positions against the user's ``(B, H, S, d)`` keys, so nothing is
copied per beam); self-attention keeps a small KV cache that is reordered when beams are chosen.
The decoder step re-implements T5's decoder forward over the model's own modules (layer norms,
feed-forward blocks, projections): relative position bias from block 0, no 1/sqrt(d) scaling,
final layer norm, ``d_model ** -0.5`` output scaling when ``config.scale_decoder_outputs``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from transformers import T5ForConditionalGeneration

from trie.exclude import dead_nodes
from trie.mask import children_only, constrained_candidates
from trie.trie import Trie


@dataclass(frozen=True)
class BeamResult:
    """Each user's best items, best first."""

    item_idx: torch.Tensor
    """``(B, k)`` int64 item_idx; -1 where fewer than k items were found."""
    log_probs: torch.Tensor
    """``(B, k)`` float32 summed log-probabilities of the items' tokens (plus the search's
    ``item_prior``, if it had one); -inf where item_idx is -1."""
    certified: torch.Tensor | None = None
    """``(B,)`` bool: True where the list is provably the model's best k allowed items (ties aside).
    A token's log-probability is <= 0, so a pruned prefix's score bounds every completion of it: the
    list is exact when its k-th score is at least the best score the search dropped."""
    beams: torch.Tensor | None = None
    """``(B,)`` int64 beam width each user's list came from (:func:`exact_search` widens per user)."""


@dataclass(frozen=True)
class EncoderState:
    """What every decoder step needs from the encoder, computed once per user."""

    cross_keys: list[torch.Tensor]
    """Per decoder layer: ``(B, H, S, d)`` cross-attention keys."""
    cross_values: list[torch.Tensor]
    """Per decoder layer: ``(B, H, S, d)`` cross-attention values."""
    cross_bias: torch.Tensor
    """``(B, 1, 1, S)`` additive mask: 0 for real encoder tokens, a large negative for padding."""


@dataclass
class DecoderCache:
    """Self-attention keys/values of the tokens decoded so far, one row per (user, beam)."""

    keys: list[torch.Tensor]
    """Per layer: ``(B*K, H, t, d)``, user-major."""
    values: list[torch.Tensor]
    """Per layer: ``(B*K, H, t, d)``."""

    @property
    def length(self) -> int:
        return self.keys[0].shape[2] if self.keys else 0

    def reorder(self, parent: torch.Tensor) -> DecoderCache:
        """Keep, for each new beam ``(b, j)``, the cache of user b's old beam ``parent[b, j]``."""
        batch = parent.shape[0]
        old_beams = self.keys[0].shape[0] // batch
        users = torch.arange(batch, device=parent.device).unsqueeze(1)  # (B, 1)
        rows = (users * old_beams + parent).reshape(-1)  # (B*K,)
        return DecoderCache(
            [k.index_select(0, rows) for k in self.keys], [v.index_select(0, rows) for v in self.values]
        )


def encode(
    model: T5ForConditionalGeneration, input_ids: torch.Tensor, attention_mask: torch.Tensor
) -> EncoderState:
    """Run the encoder once and project every decoder layer's cross-attention keys/values.

    Args:
        model: a T5 encoder-decoder in eval mode.
        input_ids: ``(B, S)`` encoder tokens.
        attention_mask: ``(B, S)`` 1 for real tokens, 0 for padding.
    """
    if input_ids.ndim != 2 or attention_mask.shape != input_ids.shape:
        raise ValueError(
            f"input_ids and attention_mask must both be (B, S), got {input_ids.shape}, {attention_mask.shape}"
        )
    hidden = model.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state  # (B, S, D)
    return cross_attention_state(model, hidden, attention_mask)


def cross_attention_state(
    model: T5ForConditionalGeneration, hidden: torch.Tensor, attention_mask: torch.Tensor
) -> EncoderState:
    """Every decoder layer's cross-attention keys/values over encoder outputs computed elsewhere.

    For encoders that :func:`encode` does not run itself (e.g. one fed ``inputs_embeds`` under a
    causal mask, :mod:`tidrec.models.tiger.onepass`); pass the result to ``beam_search(encoder=...)``.

    Args:
        model: the T5 encoder-decoder whose decoder will attend to ``hidden``.
        hidden: ``(B, S, D)`` encoder outputs (after the encoder's final layer norm).
        attention_mask: ``(B, S)`` 1 where the decoder may attend, 0 for padding.

    Raises:
        ValueError: ``hidden`` is not ``(B, S, D)`` or ``attention_mask`` is not ``(B, S)``.
    """
    if hidden.ndim != 3 or attention_mask.shape != hidden.shape[:2]:
        raise ValueError(
            f"hidden must be (B, S, D) and attention_mask (B, S), got {hidden.shape}, {attention_mask.shape}"
        )
    batch, length, _ = hidden.shape
    keys, values = [], []
    for block in model.decoder.block:
        attention = block.layer[1].EncDecAttention
        shape = (batch, length, attention.n_heads, attention.key_value_proj_dim)
        keys.append(attention.k(hidden).view(shape).transpose(1, 2))  # (B, H, S, d)
        values.append(attention.v(hidden).view(shape).transpose(1, 2))  # (B, H, S, d)
    minimum = torch.finfo(hidden.dtype).min
    cross_bias = (1.0 - attention_mask.to(hidden.dtype)) * minimum  # (B, S)
    return EncoderState(keys, values, cross_bias[:, None, None, :])  # bias (B, 1, 1, S)


def self_attention_bias(model: T5ForConditionalGeneration, length: int, device: torch.device) -> torch.Tensor:
    """``(H, length, length)`` decoder relative position bias (query position, key position)."""
    attention = model.decoder.block[0].layer[0].SelfAttention
    return attention.compute_bias(length, length, device=device)[0]


def decoder_step(
    model: T5ForConditionalGeneration,
    tokens: torch.Tensor,
    encoder: EncoderState,
    cache: DecoderCache | None,
    position_bias: torch.Tensor,
) -> tuple[torch.Tensor, DecoderCache]:
    """One decoder position for every beam of every user: ``(B, K, V)`` next-token logits and the
    extended cache (:func:`decoder_hidden`, then the LM head)."""
    hidden, cache = decoder_hidden(model, tokens, encoder, cache, position_bias)
    return model.lm_head(hidden), cache  # (B, K, V)


def decoder_hidden(
    model: T5ForConditionalGeneration,
    tokens: torch.Tensor,
    encoder: EncoderState,
    cache: DecoderCache | None,
    position_bias: torch.Tensor,
) -> tuple[torch.Tensor, DecoderCache]:
    """One decoder position for every beam of every user, up to the LM head.

    Args:
        model: the T5 model (eval mode).
        tokens: ``(B, K)`` the token each beam feeds at this position.
        encoder: from :func:`encode` (shared by the K beams of a user).
        cache: self-attention cache of the earlier positions (None at position 0).
        position_bias: ``(H, T, T)`` from :func:`self_attention_bias`, T > this position.

    Returns:
        ``(B, K, D)`` final decoder states (the LM head's input) and the cache extended by this position.
    """
    batch, beams = tokens.shape
    step = cache.length if cache is not None else 0
    hidden = model.decoder.embed_tokens(tokens)  # (B, K, D)
    bias = position_bias[:, step, : step + 1]  # (H, t+1)
    new_keys, new_values = [], []
    for layer_idx, block in enumerate(model.decoder.block):
        self_attn = block.layer[0].SelfAttention
        heads, dim = self_attn.n_heads, self_attn.key_value_proj_dim
        normed = block.layer[0].layer_norm(hidden)
        query = self_attn.q(normed).view(batch * beams, heads, 1, dim)  # (BK, H, 1, d)
        key = self_attn.k(normed).view(batch * beams, heads, 1, dim)
        value = self_attn.v(normed).view(batch * beams, heads, 1, dim)
        if cache is not None:
            key = torch.cat([cache.keys[layer_idx], key], dim=2)  # (BK, H, t+1, d)
            value = torch.cat([cache.values[layer_idx], value], dim=2)
        new_keys.append(key)
        new_values.append(value)
        # one query against a handful of keys: elementwise products beat a batched matmul here
        weights = torch.softmax((query * key).sum(-1) + bias, dim=-1)  # (BK, H, t+1)
        attended = (weights.unsqueeze(-1) * value).sum(2)  # (BK, H, d)
        hidden = hidden + self_attn.o(attended.view(batch, beams, heads * dim))

        cross = block.layer[1].EncDecAttention
        normed = block.layer[1].layer_norm(hidden)
        query = (
            cross.q(normed).view(batch, beams, heads, dim).transpose(1, 2)
        )  # (B, H, K, d): beams as queries
        attended = F.scaled_dot_product_attention(
            query,
            encoder.cross_keys[layer_idx],
            encoder.cross_values[layer_idx],
            attn_mask=encoder.cross_bias,
            scale=1.0,
        )  # (B, H, K, d)
        hidden = hidden + cross.o(attended.transpose(1, 2).reshape(batch, beams, heads * dim))
        hidden = block.layer[-1](hidden)  # feed-forward with its own layer norm and residual
    hidden = model.decoder.final_layer_norm(hidden)
    if model.config.scale_decoder_outputs:
        hidden = hidden * (model.config.d_model**-0.5)
    return hidden, DecoderCache(new_keys, new_values)  # (B, K, D)


def exclusion_tables(
    trie: Trie, exclude: list[np.ndarray], batch: int, device: torch.device
) -> list[torch.Tensor | None]:
    """Per depth ``0..L``: ``(B, E_d)`` each user's dead nodes on ``device``, or None where none is dead.

    Raises:
        ValueError: wrong number of users, or an item_idx outside the catalogue.
    """
    if len(exclude) != batch:
        raise ValueError(f"exclude has {len(exclude)} entries for {batch} users")
    return [torch.from_numpy(t).to(device) if t.shape[1] else None for t in dead_nodes(trie, exclude)]


@torch.inference_mode()
def beam_search(
    model: T5ForConditionalGeneration,
    input_ids: torch.Tensor | None = None,
    attention_mask: torch.Tensor | None = None,
    *,
    encoder: EncoderState | None = None,
    trie: Trie,
    beam_size: int,
    top_k: int | None = None,
    exclude: list[np.ndarray] | None = None,
    kernel: str = "torch",
    trie_softmax: bool = False,
    node_vectors: Sequence[torch.Tensor] | None = None,
    item_prior: torch.Tensor | None = None,
) -> BeamResult:
    """Each user's ``top_k`` best catalogue items under ``model``, by summed token log-probability.

    Every step masks the tokens the trie does not allow after each beam's prefix, takes the
    full-vocabulary log-softmax, and keeps each user's ``beam_size`` best continuations. Only
    real items come out, each at most once per user.

    Args:
        model: a ``T5ForConditionalGeneration`` (switched to eval mode for the call).
        input_ids: ``(B, S)`` encoder tokens (or None with ``encoder``).
        attention_mask: ``(B, S)`` (or None with ``encoder``).
        encoder: instead of ``input_ids``/``attention_mask``, the cross-attention state of an
            encoder run elsewhere (:func:`cross_attention_state`).
        trie: the catalogue's token sequences (fixed length, e.g. ``Trie.from_codes``).
        beam_size: beams kept per user (K).
        top_k: items returned per user (default ``beam_size``; at most ``beam_size``).
        exclude: optional per-user item_idx arrays that may not be returned (e.g. history).
            Exact at every level: a prefix whose items are all excluded for that user is masked
            like a token the trie does not allow (:func:`trie.exclude.dead_nodes`), so beams go
            only where something is left and the list is full (no -1) whenever the user has at
            least ``top_k`` allowed items.
        kernel: masking kernel, see :func:`trie.mask.constrained_candidates`.
        trie_softmax: normalise each step's distribution over the tokens the trie allows after the
            beam's prefix (:func:`trie.mask.children_only`), for a model trained that way; else over
            the whole vocabulary, as HF ``generate`` does.
        node_vectors: per depth d, ``(n_{d+1}, D)`` output vectors of the trie's nodes at depth
            d + 1, for a model with node embeddings (needs ``trie_softmax``; see
            :func:`trie.mask.children_only`). They must be numbered as ``trie``'s nodes.
        item_prior: optional ``(B, I)`` log-scores <= 0 of every item (I >= the trie's items), e.g.
            another model's weighted log-probabilities: added to the score of each item the beams
            end on, and the list re-sorted by the sum. The beams are still chosen by the SID
            alone, so an item outside them is not found however high its prior. The certificate
            bounds a pruned prefix by its score plus the highest prior of any item below it (at
            most 0), so a prior that is low where the search pruned does not cost certainty.

    Returns:
        :class:`BeamResult` with ``(B, top_k)`` item_idx (-1 padded) and log-probabilities.

    Raises:
        ValueError: bad shapes, ``top_k > beam_size``, a trie whose sequences differ in length,
            not exactly one of ``input_ids`` and ``encoder``, node vectors without the trie
            softmax or not matching the trie's node counts, or an item prior of another shape
            or above 0.
    """
    top_k = beam_size if top_k is None else top_k
    if beam_size < 1 or not 1 <= top_k <= beam_size:
        raise ValueError(f"need 1 <= top_k <= beam_size, got top_k={top_k}, beam_size={beam_size}")
    if not trie.fixed_length:
        raise ValueError("beam_search needs a trie of fixed-length sequences (Trie.from_codes)")
    if (input_ids is None) == (encoder is None):
        raise ValueError("pass exactly one of input_ids (with attention_mask) and encoder")
    if input_ids is not None and attention_mask is None:
        raise ValueError("input_ids needs its attention_mask")
    if node_vectors is not None:
        check_node_vectors(node_vectors, trie, trie_softmax)
    batched = input_ids if encoder is None else encoder.cross_bias  # (B, ...) on the model's device
    device = batched.device
    torch_trie = trie.to_torch(device)
    batch = batched.shape[0]
    if item_prior is not None:
        check_item_prior(item_prior, batch, int(torch_trie.leaf_items.max()) + 1)
    dead = exclusion_tables(trie, exclude, batch, device) if exclude is not None else None
    ceiling = prior_ceilings(trie, item_prior, device) if item_prior is not None else None

    was_training = model.training
    model.eval()
    try:
        if encoder is None:
            encoder = encode(model, input_ids, attention_mask)
        position_bias = self_attention_bias(model, trie.depth, device)
        start = model.config.decoder_start_token_id or 0
        tokens = torch.full((batch, 1), start, dtype=torch.long, device=device)  # (B, 1) one beam at the root
        nodes = torch.zeros((batch, 1), dtype=torch.long, device=device)
        scores = torch.zeros((batch, 1), dtype=torch.float32, device=device)
        dropped = torch.full((batch,), float("-inf"), device=device)  # best score the search pruned
        cache = None
        for depth in range(trie.depth):
            hidden, cache = decoder_hidden(model, tokens, encoder, cache, position_bias)  # (B, Kc, D)
            beams = tokens.shape[1]
            hidden = hidden.reshape(batch * beams, -1)  # (B*Kc, D)
            logits = model.lm_head(hidden)  # (B*Kc, V)
            if trie_softmax:
                logits = children_only(
                    logits,
                    nodes.reshape(-1),
                    torch_trie,
                    depth,
                    hidden=None if node_vectors is None else hidden,
                    node_vectors=None if node_vectors is None else node_vectors[depth],
                )
            candidates = constrained_candidates(
                logits,
                scores.reshape(-1),
                nodes.reshape(-1),
                trie=torch_trie,
                depth=depth,
                k=beam_size + 1,  # one more than can be kept: the best a row drops is then known
                exclude=None if dead is None else dead[depth + 1],  # (B, E): shared by a user's beams
                kernel=kernel,
            )
            per_row = candidates.scores.shape[1]
            flat = candidates.scores.view(batch, beams * per_row)  # (B, Kc * per_row)
            scores, pick = flat.topk(min(beam_size, beams * per_row), dim=1)  # (B, K)
            # every candidate not kept bounds what lies below it; a row's children beyond the K + 1
            # returned score at most its (K + 1)-th, which is never kept: the unkept ones cover all
            unkept = flat.scatter(1, pick, float("-inf"))  # (B, Kc * per_row)
            if ceiling is None:
                dropped = torch.maximum(dropped, unkept.amax(dim=1))
            else:  # ... plus the best prior below it: below the child, or the row's node for the rest
                below = ceiling[depth + 1].gather(1, candidates.children.view(batch, -1).clamp(min=0))
                rest = candidates.scores[:, -1].view(batch, beams) + ceiling[depth].gather(1, nodes)
                dropped = torch.maximum(dropped, (unkept + below).amax(dim=1))
                dropped = torch.maximum(dropped, rest.amax(dim=1))
            tokens = candidates.tokens.view(batch, -1).gather(1, pick)
            nodes = candidates.children.view(batch, -1).gather(1, pick)
            if depth + 1 < trie.depth:  # the last step's cache is not needed
                cache = cache.reorder(pick // per_row)
            nodes = nodes.clamp(min=0)  # dead beams (score -inf) park at node 0
    finally:
        model.train(was_training)

    alive = torch.isfinite(scores)
    items = torch.where(alive, torch_trie.leaf_items[nodes], -1)  # (B, K)
    if item_prior is not None:
        prior = item_prior.to(scores.dtype).gather(1, items.clamp(min=0))  # (B, K)
        scores, order = torch.where(alive, scores + prior, float("-inf")).sort(dim=1, descending=True)
        items = items.gather(1, order)
    if items.shape[1] < top_k:  # fewer beams than asked (tiny catalogue at the root)
        pad = top_k - items.shape[1]
        items = F.pad(items, (0, pad), value=-1)
        scores = F.pad(scores, (0, pad), value=float("-inf"))
    return BeamResult(
        item_idx=items[:, :top_k].contiguous(),
        log_probs=scores[:, :top_k].contiguous(),
        certified=scores[:, top_k - 1] >= dropped,
        beams=torch.full((batch,), beam_size, dtype=torch.long, device=device),
    )


def prior_ceilings(trie: Trie, item_prior: torch.Tensor, device: torch.device) -> list[torch.Tensor]:
    """Per depth d, ``(B, n_d)``: the highest prior of any item below each node (the certificate's
    bound on what a pruned prefix can still add)."""
    leaves = trie.leaf_items()  # (n_L,) item_idx of each deepest node
    paths = torch.from_numpy(trie.item_paths(leaves)).to(device)  # (n_L, L + 1)
    prior = item_prior.to(device, torch.float32)[:, torch.from_numpy(leaves).to(device)]  # (B, n_L)
    ceilings = []
    for d in range(trie.depth + 1):
        nodes = paths[:, d].expand(len(prior), -1)  # (B, n_L)
        top = torch.full((len(prior), trie.num_nodes(d)), float("-inf"), device=device)
        ceilings.append(top.scatter_reduce(1, nodes, prior, "amax"))
    return ceilings


def check_item_prior(item_prior: torch.Tensor, batch: int, num_items: int) -> None:
    """Raise ValueError unless ``item_prior`` is ``(batch, >= num_items)`` and nowhere above 0."""
    if item_prior.ndim != 2 or item_prior.shape[0] != batch or item_prior.shape[1] < num_items:
        raise ValueError(f"item_prior must be ({batch}, >= {num_items}), got {tuple(item_prior.shape)}")
    if bool((item_prior > 0).any()):
        raise ValueError("item_prior must be <= 0 everywhere (log-probabilities; the certificate needs it)")


def check_node_vectors(node_vectors: Sequence[torch.Tensor], trie: Trie, trie_softmax: bool) -> None:
    """Raise ValueError unless ``node_vectors`` hold one row per node of ``trie`` at depths 1..L and
    the search normalises over the trie (node vectors score only a prefix's children)."""
    if not trie_softmax:
        raise ValueError("node_vectors need trie_softmax=True (they score only a prefix's children)")
    counts = [len(tokens) for tokens in trie.tokens]
    if [len(v) for v in node_vectors] != counts:
        raise ValueError(
            f"node_vectors hold {[len(v) for v in node_vectors]} nodes per depth, the trie {counts}: "
            "they belong to another catalogue's trie"
        )


def select_users(encoder: EncoderState, rows: torch.Tensor) -> EncoderState:
    """The encoder state of the users ``rows`` (an int64 index), in that order."""
    return EncoderState(
        [k.index_select(0, rows) for k in encoder.cross_keys],
        [v.index_select(0, rows) for v in encoder.cross_values],
        encoder.cross_bias.index_select(0, rows),
    )


@torch.inference_mode()
def exact_search(
    model: T5ForConditionalGeneration,
    input_ids: torch.Tensor | None = None,
    attention_mask: torch.Tensor | None = None,
    *,
    encoder: EncoderState | None = None,
    trie: Trie,
    top_k: int,
    beam_size: int | None = None,
    max_beam: int = 1024,
    exclude: list[np.ndarray] | None = None,
    kernel: str = "torch",
    trie_softmax: bool = False,
    node_vectors: Sequence[torch.Tensor] | None = None,
    item_prior: torch.Tensor | None = None,
) -> BeamResult:
    """Each user's provably best ``top_k`` items: beam search, widened for the users it cannot certify.

    The first pass uses ``beam_size`` beams (at least and by default ``top_k``) for everyone; each
    uncertified user is decoded again with twice the beams, up to ``max_beam``. A list is certified
    when its k-th score is at least every score the search pruned (:attr:`BeamResult.certified`); a
    user still uncertified at ``max_beam`` keeps that search's list and ``certified`` False.
    Arguments as :func:`beam_search`.

    Returns:
        :class:`BeamResult` whose ``beams`` says how wide each user's last search was.

    Raises:
        ValueError: ``max_beam`` below the first beam width, or as :func:`beam_search`.
    """
    width = top_k if beam_size is None else max(beam_size, top_k)
    if max_beam < width:
        raise ValueError(f"max_beam ({max_beam}) must be at least the first beam width ({width})")
    if (input_ids is None) == (encoder is None):
        raise ValueError("pass exactly one of input_ids (with attention_mask) and encoder")
    if encoder is None:
        if attention_mask is None:
            raise ValueError("input_ids needs its attention_mask")
        was_training = model.training
        model.eval()
        try:
            encoder = encode(model, input_ids, attention_mask)
        finally:
            model.train(was_training)
    result = beam_search(
        model, encoder=encoder, trie=trie, beam_size=width, top_k=top_k, exclude=exclude, kernel=kernel,
        trie_softmax=trie_softmax, node_vectors=node_vectors, item_prior=item_prior,
    )  # fmt: skip
    items, scores = result.item_idx.clone(), result.log_probs.clone()
    certified, beams = result.certified.clone(), result.beams.clone()
    while width < max_beam and not bool(certified.all()):
        width = min(2 * width, max_beam)
        rows = torch.nonzero(~certified).squeeze(1)  # (U,) users still uncertified
        wider = beam_search(
            model,
            encoder=select_users(encoder, rows),
            trie=trie,
            beam_size=width,
            top_k=top_k,
            exclude=None if exclude is None else [exclude[r] for r in rows.tolist()],
            kernel=kernel,
            trie_softmax=trie_softmax,
            node_vectors=node_vectors,
            item_prior=None if item_prior is None else item_prior[rows],
        )
        items[rows], scores[rows] = wider.item_idx, wider.log_probs
        certified[rows], beams[rows] = wider.certified, width
    return BeamResult(item_idx=items, log_probs=scores, certified=certified, beams=beams)


DECODERS = ("beam", "exact")
"""How a generative model decodes: ``beam`` (:func:`beam_search`, certificate included) or ``exact``
(:func:`exact_search`, widened until certified or ``max_beam``)."""


def decode(
    model: T5ForConditionalGeneration,
    *,
    encoder: EncoderState,
    trie: Trie,
    decoder: str,
    beam_size: int,
    top_k: int,
    max_beam: int = 1024,
    exclude: list[np.ndarray] | None = None,
    kernel: str = "torch",
    trie_softmax: bool = False,
    node_vectors: Sequence[torch.Tensor] | None = None,
    item_prior: torch.Tensor | None = None,
) -> BeamResult:
    """:func:`beam_search` or :func:`exact_search` (starting from ``beam_size`` beams) by name.

    Raises:
        ValueError: an unknown decoder, or as the chosen search.
    """
    if decoder == "beam":
        return beam_search(
            model,
            encoder=encoder,
            trie=trie,
            beam_size=beam_size,
            top_k=top_k,
            exclude=exclude,
            kernel=kernel,
            trie_softmax=trie_softmax,
            node_vectors=node_vectors,
            item_prior=item_prior,
        )
    if decoder == "exact":
        return exact_search(
            model, encoder=encoder, trie=trie, top_k=top_k, beam_size=beam_size,
            max_beam=max(max_beam, beam_size), exclude=exclude, kernel=kernel, trie_softmax=trie_softmax,
            node_vectors=node_vectors, item_prior=item_prior,
        )  # fmt: skip
    raise ValueError(f"decoder must be one of {DECODERS}, got {decoder!r}")
