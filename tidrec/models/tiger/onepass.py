"""One-pass TIGER: one encoder token per history item, a causal encoder, every next item in one pass.

A training sequence ``x_0 .. x_T`` (item_idx, oldest first) becomes, right-padded::

    encoder position t  reads  x_t                         one token: the sum of x_t's L code-token
                                                           embeddings (+ a learned item_idx embedding)
    decoder block t     reads  [START, c_1 .. c_L of x_{t+1}]      L + 1 tokens
                        labels [c_1 .. c_L of x_{t+1}, EOS]
                        sees   encoder positions <= t, and the earlier tokens of its own block

The encoder is causal (position s attends to positions <= s), so the encoder states a block sees
are those of its prefix alone, and T5's decoder position bias depends only on relative distance,
so each block's loss is exactly that of the ordinary example ``(x_0 .. x_t) -> x_{t+1}``: one
forward trains on all T targets, as SASRec does. At inference the decoder attends to the whole
history, like the last training block, through :func:`tidrec.generate.beam_search`.

The backbone stays HF's ``T5ForConditionalGeneration`` (built by :func:`tidrec.model.build_model`),
fed ``inputs_embeds`` and prepared 4D masks, which ``T5Stack`` passes through unchanged. The masks
are additive floats (0 where attention is allowed, the dtype's minimum elsewhere): the sdpa
attention adds a float mask to T5's position bias, and the eager one adds any mask to the scores,
so a boolean mask would be read as +1/+0 there. Right padding makes every mask the same for all
rows: under a causal pattern a real position never reaches the padding after it, so each mask is
``(1, 1, Q, K)`` and broadcasts over the batch. Padded positions compute garbage that no real
position reads and no loss counts.

The decoder has two kernels (:func:`onepass_logits`): ``"hf"``, HF's forward on the whole
``Q = T * (L + 1)`` sequence under a block-diagonal ``(Q, Q)`` mask (the reference; its attention
grows as Q^2, 1,000^2 scores per head and row at T = 200, L = 4), and ``"blocks"``
(:func:`blockwise_hidden`, the default), the same computation on the model's own modules with
self-attention inside each block of L + 1 tokens; tests compare the two, logits and gradients.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from transformers import T5ForConditionalGeneration
from transformers.modeling_outputs import BaseModelOutput
from transformers.models.t5.modeling_t5 import T5Attention

from tidrec.dropout import DROPOUT_KERNELS, use_dropout_kernel
from tidrec.generate import BeamResult, EncoderState, cross_attention_state, decode
from tidrec.model import ModelConfig, build_model
from tidrec.vocab import EOS, PAD, Vocab
from trie import TorchTrie, Trie, children_only

IGNORE = -100
"""Label of tokens no loss is computed on (padded targets)."""
RECENCY_BUCKETS = 32
"""Distance buckets of the recency bias: 16 exact distances (0..15), then 16 log-spaced up to 128."""
RECENCY_MAX_DISTANCE = 128
"""Distances from this on share the last bucket."""
OBJECTIVES = ("next", "masked", "mixed")
"""Training objectives of :class:`OnePassConfig` (GenRec's pre-train-then-fine-tune schedule is
``masked`` followed by ``next``, run by ``tidrec.fit --objective pretrain``)."""


@dataclass(frozen=True, kw_only=True)
class OnePassConfig:
    """Size of the one-pass T5 and how histories become encoder inputs."""

    d_model: int = 128
    """Hidden size."""
    num_layers: int = 4
    """Encoder layers."""
    num_decoder_layers: int = 4
    """Decoder layers."""
    num_heads: int = 6
    """Attention heads."""
    d_kv: int = 64
    """Size of each attention head."""
    d_ff: int = 1024
    """Feed-forward inner size."""
    dropout: float = 0.1
    """Dropout rate."""
    max_items: int = 50
    """History items the encoder reads (the most recent); training windows hold ``max_items + 1``."""
    item_id_embedding: bool = False
    """Add a learned item_idx embedding to each history item's summed code embeddings ("hybrid")."""
    recency_bias: bool = False
    """Give the decoder's cross-attention a learned per-head bias by how far back an encoder position
    lies from the position it predicts from (0 = the latest item; T5-style log buckets). Without it
    cross-attention has no position information, so the decoder cannot tell the latest history state
    from older ones."""
    attention_dropout: float | None = None
    """Dropout on attention weights (None: ``dropout``, as T5 does)."""
    dropout_kernel: str = "torch"
    """How dropout masks are drawn (:data:`tidrec.dropout.DROPOUT_KERNELS`): ``torch`` is
    ``F.dropout``; ``words`` draws a 64-bit random word per four elements: masks about 2.3x cheaper
    on CPU, a cpu-preset training step 1.13x faster (``benchmarks/dropout.py``). Same rate,
    different masks for a seed."""
    trie_softmax: bool = False
    """Normalise each SID token's distribution over the codes the catalogue's trie allows after the
    true prefix, in the training loss and in decoding, instead of over the whole vocabulary. The
    model then spends no probability on code tuples that lead to no item (a full-vocabulary model
    leaked about 20 % of the third level's mass there on ML-100K,
    experiments/results/level_diagnostic_ml100k)."""
    node_embeddings: bool = False
    """Give every trie node (each SID prefix, down to the item itself) a learned output vector of its
    own, added to its code token's output embedding when the decoder scores a prefix's children: a
    hierarchical softmax whose last level is an item-id output embedding, as SASRec's is. Code tokens
    alone must serve every prefix that shares them, so the decoder has to learn each prefix's
    meaning. Needs ``trie_softmax``."""
    objective: str = "next"
    """What training predicts (:data:`OBJECTIVES`): ``next`` every position's next item through the
    causal encoder; ``masked`` GenRec's masked items (a bidirectional encoder reads the sequence with
    some items replaced by a learned mask vector, and the decoder emits every masked item's SID; at
    inference a mask is appended after the history); ``mixed`` both losses each step
    (``next + masked_weight * masked``), serving as ``next``."""
    mask_rate: float = 0.2
    """``masked``/``mixed``: the share of a sequence's items masked (at least one per sequence)."""
    masked_weight: float = 1.0
    """``mixed``: the masked loss's weight."""
    item_loss: float = 0.0
    """Weight of an auxiliary loss on next-item batches: each encoder state's cross-entropy over the
    whole catalogue against the item-id embedding table (SASRec's loss, tied to the input table),
    added to each target's SID loss. It trains the encoder with the signal SASRec learns from;
    decoding does not use it. Needs ``item_id_embedding``; 0 = off."""
    item_score: float = 0.0
    """Decoding: add this weight times the item head's log-probability (the history's latest encoder
    state against the item-id table, the distribution ``item_loss`` trains) to the SID
    log-probability of each item the beams end on, and rank by the sum. 1 ranks by the product of
    the two distributions. The beams are still chosen by the SIDs. Needs ``item_loss``; 0 = off."""

    @property
    def bidirectional(self) -> bool:
        """Whether inference reads the history with a bidirectional encoder and an appended mask."""
        return self.objective == "masked"

    def __post_init__(self) -> None:
        for name in ("d_model", "num_layers", "num_decoder_layers", "num_heads", "d_kv", "d_ff", "max_items"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("dropout", "attention_dropout"):
            value = getattr(self, name)
            if value is not None and not 0.0 <= value < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {value}")
        if self.dropout_kernel not in DROPOUT_KERNELS:
            raise ValueError(f"dropout_kernel must be one of {DROPOUT_KERNELS}, got {self.dropout_kernel!r}")
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, got {self.objective!r}")
        if not 0.0 < self.mask_rate < 1.0:
            raise ValueError(f"mask_rate must be in (0, 1), got {self.mask_rate}")
        if self.masked_weight < 0:
            raise ValueError(f"masked_weight must be >= 0, got {self.masked_weight}")
        if self.node_embeddings and not self.trie_softmax:
            raise ValueError("node_embeddings need trie_softmax (they score only a prefix's children)")
        if self.item_loss < 0 or (self.item_loss and not self.item_id_embedding):
            raise ValueError(f"item_loss must be >= 0 and needs item_id_embedding, got {self.item_loss}")
        if self.item_score < 0 or (self.item_score and (not self.item_loss or self.bidirectional)):
            raise ValueError(
                f"item_score must be >= 0 and needs item_loss (objective next/mixed), got {self.item_score}"
            )


class OnePassModel(nn.Module):
    """The T5, the catalogue's SID tokens it embeds history items with, and the optional item table."""

    def __init__(self, config: OnePassConfig, vocab: Vocab, sid_tokens: np.ndarray) -> None:
        """Args:
        config: model size.
        vocab: token layout (user tokens are not used; ``user_buckets=0`` keeps the vocabulary small).
        sid_tokens: ``(I, L)`` token ids of every item's SID (``vocab.sid_tokens(codes)``).

        Raises:
            ValueError: ``sid_tokens`` is not ``(I, vocab.num_levels)`` or holds tokens outside ``vocab``.
        """
        super().__init__()
        sid_tokens = np.asarray(sid_tokens, dtype=np.int64)
        if sid_tokens.ndim != 2 or sid_tokens.shape[1] != vocab.num_levels or len(sid_tokens) < 1:
            raise ValueError(f"sid_tokens must be (I, {vocab.num_levels}), I >= 1, got {sid_tokens.shape}")
        low, high = sid_tokens.min(), sid_tokens.max()
        if low < 0 or high >= vocab.size:
            raise ValueError(f"sid_tokens must lie in [0, {vocab.size}), got {low}..{high}")
        self.config = config
        self.vocab = vocab
        num_items, num_levels = sid_tokens.shape
        table = np.concatenate([sid_tokens, np.full((1, num_levels), PAD, dtype=np.int64)])  # (I + 1, L)
        self.register_buffer("sid_tokens", torch.from_numpy(table))
        self.t5: T5ForConditionalGeneration = build_model(
            ModelConfig(
                d_model=config.d_model,
                num_layers=config.num_layers,
                num_decoder_layers=config.num_decoder_layers,
                num_heads=config.num_heads,
                d_kv=config.d_kv,
                d_ff=config.d_ff,
                dropout=config.dropout,
                max_items=config.max_items,
                user_buckets=vocab.user_buckets,
            ),
            vocab,
        )
        self.item_embedding = (
            nn.Embedding(num_items + 1, config.d_model, padding_idx=num_items)
            if config.item_id_embedding
            else None
        )
        if config.attention_dropout is not None:
            for module in self.t5.modules():
                if isinstance(module, T5Attention):
                    module.dropout = config.attention_dropout  # read by HF's forward and blockwise_hidden
        if config.dropout_kernel != "torch":
            use_dropout_kernel(self.t5, config.dropout_kernel)
        self.recency = nn.Embedding(RECENCY_BUCKETS, config.num_heads) if config.recency_bias else None
        if self.recency is not None:
            nn.init.zeros_(self.recency.weight)  # starts as plain cross-attention
        masks = config.objective != "next"
        self.mask_embedding = nn.Parameter(torch.randn(config.d_model) * 0.02) if masks else None
        self.masked_recency = (
            nn.Embedding(RECENCY_BUCKETS, config.num_heads) if masks and config.recency_bias else None
        )  # bidirectional buckets: half before the masked position, half after
        if self.masked_recency is not None:
            nn.init.zeros_(self.masked_recency.weight)
        self.node_embeddings = None
        if config.node_embeddings:
            counts = [len(tokens) for tokens in self.trie().tokens]  # nodes at depths 1..L
            self.node_embeddings = nn.ParameterList(
                nn.Parameter(torch.zeros(count, config.d_model)) for count in counts
            )  # zeros: training starts from the code tokens' output embeddings alone

    @property
    def num_items(self) -> int:
        """Catalogue size I; item_idx I is the padding item."""
        return self.sid_tokens.shape[0] - 1

    @property
    def num_levels(self) -> int:
        """SID length L."""
        return self.sid_tokens.shape[1]

    def trie(self) -> Trie:
        """The trie over every real item's SID tokens (rows are item_idx)."""
        return Trie.from_codes(self.sid_tokens[:-1].cpu().numpy())

    @torch.no_grad()
    def extended(self, sid_tokens: np.ndarray) -> OnePassModel:
        """This model serving a grown catalogue without retraining (items appended, none changed).

        New items read their SID codes as every item does; they have no learned item-id embedding
        (zeros) and, with node embeddings, the trie nodes only they reach get zero vectors (their
        code tokens alone score them). Old items keep everything they learned, their nodes' vectors
        moved to the grown trie's numbering.

        Args:
            sid_tokens: ``(I', L)`` token ids, I' >= I, whose first I rows are this model's.

        Raises:
            ValueError: the first I rows differ from this model's SIDs, or a wrong shape.
        """
        old = self.sid_tokens[:-1].cpu().numpy()
        sid_tokens = np.asarray(sid_tokens, dtype=np.int64)
        if sid_tokens.ndim != 2 or sid_tokens.shape[1] != old.shape[1] or len(sid_tokens) < len(old):
            raise ValueError(f"sid_tokens must be (I' >= {len(old)}, {old.shape[1]}), got {sid_tokens.shape}")
        if not np.array_equal(sid_tokens[: len(old)], old):
            raise ValueError("the grown catalogue changes existing items' SIDs; extend, do not replace")
        grown = OnePassModel(self.config, self.vocab, sid_tokens).to(self.sid_tokens.device)
        state = {k: v for k, v in self.state_dict().items() if k != "sid_tokens"}
        state = {k: v for k, v in state.items() if not k.startswith(("item_embedding", "node_embeddings"))}
        missing, unexpected = grown.load_state_dict(state, strict=False)
        rebuilt = ("sid_tokens", "item_embedding", "node_embeddings")
        if unexpected or not all(k.startswith(rebuilt) for k in missing):
            raise RuntimeError(f"extending lost weights: missing {missing}, unexpected {unexpected}")
        if self.item_embedding is not None:
            grown.item_embedding.weight.zero_()
            grown.item_embedding.weight[: self.num_items] = self.item_embedding.weight[: self.num_items]
        if self.node_embeddings is not None:
            items = np.arange(self.num_items)
            before, after = self.trie().item_paths(items), grown.trie().item_paths(items)  # (I, L + 1)
            for depth, (source, target) in enumerate(
                zip(self.node_embeddings, grown.node_embeddings, strict=True)
            ):
                target.zero_()
                target[torch.from_numpy(after[:, depth + 1])] = source[torch.from_numpy(before[:, depth + 1])]
        return grown.train(self.training)

    def node_vectors(self) -> list[torch.Tensor] | None:
        """Per depth d, ``(n_{d+1}, D)`` the output vectors of :meth:`trie`'s nodes at depth d + 1
        (None without ``config.node_embeddings``)."""
        return None if self.node_embeddings is None else list(self.node_embeddings)

    def trie_paths(self) -> tuple[TorchTrie, torch.Tensor]:
        """The trie on the model's device and ``(I + 1, L + 1)`` each item's node at every depth
        (the padding item's row is the root's), built once per device."""
        device = self.sid_tokens.device
        cached = getattr(self, "_trie_paths", None)
        if cached is None or cached[1].device != device:
            trie = self.trie()
            paths = trie.item_paths(np.arange(self.num_items))  # (I, L + 1)
            paths = np.concatenate([paths, np.zeros((1, paths.shape[1]), dtype=np.int64)])  # (I + 1, L + 1)
            cached = (trie.to_torch(device), torch.from_numpy(paths).to(device))
            self._trie_paths = cached
        return cached


def build_onepass(config: OnePassConfig, vocab: Vocab, sid_tokens: np.ndarray) -> OnePassModel:
    """A randomly initialised one-pass model over the catalogue whose SID tokens are ``sid_tokens``."""
    return OnePassModel(config, vocab, sid_tokens)


def additive_mask(allowed: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """0 where ``allowed``, the dtype's minimum elsewhere (finite, so a fully masked row stays finite)."""
    return torch.zeros(allowed.shape, dtype=dtype, device=allowed.device).masked_fill(
        ~allowed, torch.finfo(dtype).min
    )


def encoder_mask(length: int, *, dtype: torch.dtype, device: torch.device | None = None) -> torch.Tensor:
    """``(1, 1, S, S)`` causal encoder self-attention: position s attends to positions <= s."""
    position = torch.arange(length, device=device)
    allowed = position[None, :] <= position[:, None]  # (S query, S key)
    return additive_mask(allowed, dtype)[None, None]  # (1, 1, S, S)


def block_causal_mask(
    num_blocks: int, block_len: int, *, dtype: torch.dtype, device: torch.device | None = None
) -> torch.Tensor:
    """``(1, 1, Q, Q)`` decoder self-attention, Q = num_blocks * block_len: a token sees only the
    earlier tokens of its own block (block-diagonal, causal within a block)."""
    position = torch.arange(num_blocks * block_len, device=device)
    block = position // block_len
    allowed = (block[None, :] == block[:, None]) & (position[None, :] <= position[:, None])  # (Q, Q)
    return additive_mask(allowed, dtype)[None, None]  # (1, 1, Q, Q)


def cross_attention_bias(
    model: OnePassModel, latest: torch.Tensor, length: int, *, dtype: torch.dtype
) -> torch.Tensor:
    """``(B, H or 1, Q, S)`` additive cross-attention bias of queries that predict from position ``latest``.

    Encoder positions after ``latest`` are masked; with ``config.recency_bias`` the others get the
    learned bias of their distance ``latest - s`` (one value per head), else 0.

    Args:
        model: the one-pass model.
        latest: ``(B, Q)`` int64, the last encoder position each query may read (block t: t; at
            inference the history's last item).
        length: S, encoder positions.
        dtype: the model's float dtype.
    """
    distance = latest[..., None] - torch.arange(length, device=latest.device)  # (B, Q, S)
    mask = additive_mask(distance >= 0, dtype)[:, None]  # (B, 1, Q, S)
    if model.recency is None:
        return mask
    buckets = T5Attention._relative_position_bucket(
        -distance.clamp(min=0),
        bidirectional=False,
        num_buckets=RECENCY_BUCKETS,
        max_distance=RECENCY_MAX_DISTANCE,
    )  # fmt: skip  (B, Q, S); relative position s - t <= 0
    return mask + model.recency(buckets).to(dtype).permute(0, 3, 1, 2)  # (B, Q, S, H) -> (B, H, Q, S)


def block_cross_bias(
    model: OnePassModel, num_blocks: int, block_len: int, length: int, *, dtype: torch.dtype
) -> torch.Tensor:
    """``(1, H or 1, Q, S)`` training cross-attention bias: every token of block t reads positions <= t."""
    device = model.sid_tokens.device
    latest = torch.arange(num_blocks, device=device).repeat_interleave(block_len)[None]  # (1, Q)
    return cross_attention_bias(model, latest, length, dtype=dtype)


def masked_cross_bias(
    model: OnePassModel,
    positions: torch.Tensor,
    key_mask: torch.Tensor,
    block_len: int,
    *,
    dtype: torch.dtype,
) -> torch.Tensor:
    """``(B, H or 1, M * block_len, S)`` cross-attention bias of the blocks decoding masked items.

    Block m reads every real encoder position (the encoder is bidirectional); with
    ``config.recency_bias`` each gets the learned bias of its offset ``s - positions[m]`` (T5's
    bidirectional buckets), which is how a block knows which masked item it decodes.

    Args:
        model: the one-pass model.
        positions: ``(B, M)`` int64 encoder position of each masked item.
        key_mask: ``(B, S)`` 1 on real encoder positions.
        block_len: decoder tokens per block.
        dtype: the model's float dtype.
    """
    mask = additive_mask(key_mask.bool(), dtype)[:, None, None, :]  # (B, 1, 1, S)
    if model.masked_recency is None:
        return mask.expand(-1, -1, positions.shape[1] * block_len, -1)  # (B, 1, Q, S)
    offset = torch.arange(key_mask.shape[1], device=positions.device) - positions[..., None]  # (B, M, S)
    buckets = T5Attention._relative_position_bucket(
        offset, bidirectional=True, num_buckets=RECENCY_BUCKETS, max_distance=RECENCY_MAX_DISTANCE
    )  # (B, M, S)
    bias = model.masked_recency(buckets).to(dtype).permute(0, 3, 1, 2)  # (B, M, S, H) -> (B, H, M, S)
    return mask + bias.repeat_interleave(block_len, dim=2)  # (B, H, M * block_len, S)


def append_mask(
    items: torch.Tensor, attention_mask: torch.Tensor, num_items: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-padded histories with a mask slot after each one's last item (the masked objective's
    query at inference): ``(items, masked, key_mask)`` of width S + 1 and ``(B,)`` the slots."""
    batch, width = items.shape
    lengths = attention_mask.sum(dim=1)  # (B,)
    pad = torch.full((batch, 1), num_items, dtype=items.dtype, device=items.device)
    items = torch.cat([items, pad], dim=1)  # (B, S + 1)
    slot = torch.arange(width + 1, device=items.device)[None, :] == lengths[:, None]  # (B, S + 1)
    key_mask = (torch.arange(width + 1, device=items.device)[None, :] <= lengths[:, None]).long()
    return items, slot, key_mask, lengths


def decoder_state(
    model: OnePassModel, items: torch.Tensor, attention_mask: torch.Tensor, hidden: torch.Tensor | None = None
) -> EncoderState:
    """What every beam-search step needs for right-padded histories: the causal encoder run once
    (or its states ``hidden``, ``(B, S, D)``, when the caller has them), cross-attention keys/values,
    and the bias of a query predicting after each history's last item.

    A model trained on masked items alone (``config.bidirectional``) reads each history with a mask
    appended, bidirectionally, and decodes the masked slot."""
    if model.config.bidirectional:
        items, masked, key_mask, slots = append_mask(items, attention_mask, model.num_items)
        hidden = encode_items(model, items, masked=masked, key_mask=key_mask)  # (B, S + 1, D)
        state = cross_attention_state(model.t5, hidden, key_mask)
        bias = masked_cross_bias(model, slots[:, None], key_mask, 1, dtype=hidden.dtype)  # (B, H, 1, S+1)
        return dataclasses.replace(state, cross_bias=bias)
    if hidden is None:
        hidden = encode_items(model, items)  # (B, S, D)
    state = cross_attention_state(model.t5, hidden, attention_mask)
    latest = attention_mask.sum(dim=1, keepdim=True) - 1  # (B, 1)
    return dataclasses.replace(
        state, cross_bias=cross_attention_bias(model, latest, items.shape[1], dtype=hidden.dtype)
    )  # bias (B, H or 1, 1, S)


def encoder_embeddings(
    model: OnePassModel, items: torch.Tensor, masked: torch.Tensor | None = None
) -> torch.Tensor:
    """``(B, S, D)`` one encoder token per item: its L code embeddings summed (+ its item embedding).

    Args:
        model: the one-pass model.
        items: ``(B, S)`` item_idx; ``model.num_items`` is padding.
        masked: optional ``(B, S)`` bool; those positions read the learned mask vector instead.

    Raises:
        ValueError: ``items`` is not 2D, or ``masked`` for a model without a mask vector.
    """
    if items.ndim != 2:
        raise ValueError(f"items must be (B, S), got {tuple(items.shape)}")
    tokens = model.sid_tokens[items]  # (B, S, L)
    embeds = model.t5.get_input_embeddings()(tokens).sum(dim=2)  # (B, S, L, D) -> (B, S, D)
    if model.item_embedding is not None:
        embeds = embeds + model.item_embedding(items)  # (B, S, D)
    if masked is not None:
        if model.mask_embedding is None:
            raise ValueError("this model has no mask vector (objective 'next')")
        embeds = torch.where(masked[..., None], model.mask_embedding.to(embeds.dtype), embeds)
    return embeds


def encode_items(
    model: OnePassModel,
    items: torch.Tensor,
    *,
    masked: torch.Tensor | None = None,
    key_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """``(B, S, D)`` encoder states of right-padded histories.

    Causal by default (position s has read items <= s); with ``key_mask`` (``(B, S)``, 1 on real
    positions) bidirectional over the real positions, as the masked objective reads a sequence
    whose ``masked`` positions hold the mask vector.
    """
    embeds = encoder_embeddings(model, items, masked)  # (B, S, D)
    if key_mask is None:
        mask = encoder_mask(items.shape[1], dtype=embeds.dtype, device=embeds.device)  # (1, 1, S, S)
    else:
        length = items.shape[1]
        mask = additive_mask(key_mask.bool(), embeds.dtype)[:, None, None, :].expand(-1, 1, length, -1)
    return model.t5.encoder(inputs_embeds=embeds, attention_mask=mask).last_hidden_state  # (B, S, D)


def onepass_batch(
    sequences: Sequence[np.ndarray], sid_tokens: np.ndarray, max_items: int, *, eos: bool = True
) -> dict[str, torch.Tensor]:
    """Training tensors for sequences of item_idx: every position predicts the next item.

    Each sequence keeps its last ``max_items + 1`` items ``x_0 .. x_n``; inputs are ``x_0 .. x_{n-1}``,
    targets ``x_1 .. x_n``; rows are right-padded to the longest, T = max n.

    Args:
        sequences: B arrays of item_idx in time order, each at least 2 long.
        sid_tokens: ``(I, L)`` token ids of every item's SID; item_idx I pads.
        max_items: most inputs per row.
        eos: end each block with the EOS position; without it blocks hold L tokens
            (``[PAD, c_1 .. c_{L-1}]`` predicting ``[c_1 .. c_L]``). Under the trie softmax the EOS
            position's loss and gradient are exactly 0, so it is pure cost there.

    Returns:
        ``items`` (B, T) int64 encoder inputs (I on padding); ``targets`` (B, T) int64 next item_idx
        (-1 on padding); ``attention_mask`` (B, T) int64 (1 on real positions);
        ``decoder_input_ids`` (B, T*(L+1)) block t = [PAD (decoder start), c_1 .. c_L of target t];
        ``labels`` (B, T*(L+1)) block t = [c_1 .. c_L, EOS], -100 for padded targets (T*L and no
        EOS with ``eos=False``).

    Raises:
        ValueError: no sequences, one shorter than 2 items, or ``sid_tokens`` not 2D.
    """
    sid_tokens = np.asarray(sid_tokens, dtype=np.int64)
    if sid_tokens.ndim != 2:
        raise ValueError(f"sid_tokens must be (I, L), got {sid_tokens.shape}")
    if not len(sequences) or min(len(s) for s in sequences) < 2:
        raise ValueError("need at least one sequence, each of at least 2 items (an input and a target)")
    num_items = sid_tokens.shape[0]
    windows = [np.asarray(s, dtype=np.int64)[-(max_items + 1) :] for s in sequences]
    batch, width = len(windows), max(len(w) for w in windows) - 1
    items = np.full((batch, width), num_items, dtype=np.int64)  # (B, T)
    targets = np.full((batch, width), -1, dtype=np.int64)  # (B, T)
    for row, window in enumerate(windows):
        items[row, : len(window) - 1] = window[:-1]
        targets[row, : len(window) - 1] = window[1:]
    return {
        "items": torch.from_numpy(items),
        "targets": torch.from_numpy(targets),
        "attention_mask": torch.from_numpy((targets >= 0).astype(np.int64)),
        **decoder_blocks(targets, sid_tokens, eos=eos),
    }


def decoder_blocks(targets: np.ndarray, sid_tokens: np.ndarray, *, eos: bool) -> dict[str, torch.Tensor]:
    """``decoder_input_ids`` and ``labels`` (``(B, T * block)``) of one decoder block per target.

    Block t reads ``[PAD (decoder start), c_1 .. c_L]`` of ``targets[:, t]`` and is labelled
    ``[c_1 .. c_L, EOS]`` (the last token dropped from both without ``eos``); -100 on padded
    targets (-1)."""
    batch, width = targets.shape
    real = targets >= 0  # (B, T)
    codes = np.where(real[..., None], sid_tokens[np.maximum(targets, 0)], PAD)  # (B, T, L)
    start = np.full((batch, width, 1), PAD, dtype=np.int64)
    end = np.full((batch, width, 1), EOS, dtype=np.int64)
    decoder_in = np.concatenate([start, codes], axis=2)  # (B, T, L+1)
    labels = np.where(real[..., None], np.concatenate([codes, end], axis=2), IGNORE)  # (B, T, L+1)
    if not eos:
        decoder_in, labels = decoder_in[:, :, :-1], labels[:, :, :-1]  # (B, T, L)
    block_len = decoder_in.shape[2]
    return {
        "decoder_input_ids": torch.from_numpy(
            np.ascontiguousarray(decoder_in).reshape(batch, width * block_len)
        ),
        "labels": torch.from_numpy(np.ascontiguousarray(labels).reshape(batch, width * block_len)),
    }


def masked_batch(
    sequences: Sequence[np.ndarray],
    sid_tokens: np.ndarray,
    max_items: int,
    *,
    rate: float,
    rng: np.random.Generator,
    eos: bool = True,
) -> dict[str, torch.Tensor]:
    """Training tensors of the masked objective: some items of each sequence hidden, each to be decoded.

    Each sequence keeps its last ``max_items + 1`` items (the windows :func:`onepass_batch` reads);
    each item is masked with probability ``rate``, at least one per sequence, drawn from ``rng``
    (so a seeded generator gives the same masks).

    Returns:
        ``items`` (B, S) int64 item_idx (I on padding; masked positions keep their item, which the
        mask vector replaces); ``masked`` (B, S) bool; ``key_mask`` (B, S) int64 1 on real positions;
        ``positions`` (B, M) int64 each masked item's position (0 on padding); ``targets`` (B, M) its
        item_idx (-1 on padding); ``attention_mask`` (B, M) 1 on real targets; and the decoder
        blocks of the targets (:func:`decoder_blocks`).

    Raises:
        ValueError: no sequences, an empty one, or ``sid_tokens`` not 2D.
    """
    sid_tokens = np.asarray(sid_tokens, dtype=np.int64)
    if sid_tokens.ndim != 2:
        raise ValueError(f"sid_tokens must be (I, L), got {sid_tokens.shape}")
    if not len(sequences) or min(len(s) for s in sequences) < 1:
        raise ValueError("need at least one sequence, none empty")
    windows = [np.asarray(s, dtype=np.int64)[-(max_items + 1) :] for s in sequences]
    batch, width = len(windows), max(len(w) for w in windows)
    items = np.full((batch, width), sid_tokens.shape[0], dtype=np.int64)  # (B, S)
    masked = np.zeros((batch, width), dtype=bool)
    chosen = []
    for row, window in enumerate(windows):
        items[row, : len(window)] = window
        hide = np.flatnonzero(rng.random(len(window)) < rate)
        if not len(hide):
            hide = rng.integers(len(window), size=1)
        masked[row, hide] = True
        chosen.append(hide)
    most = max(len(h) for h in chosen)
    positions = np.zeros((batch, most), dtype=np.int64)  # (B, M)
    targets = np.full((batch, most), -1, dtype=np.int64)  # (B, M)
    for row, hide in enumerate(chosen):
        positions[row, : len(hide)] = hide
        targets[row, : len(hide)] = items[row, hide]
    return {
        "items": torch.from_numpy(items),
        "masked": torch.from_numpy(masked),
        "key_mask": torch.from_numpy((items < sid_tokens.shape[0]).astype(np.int64)),
        "positions": torch.from_numpy(positions),
        "targets": torch.from_numpy(targets),
        "attention_mask": torch.from_numpy((targets >= 0).astype(np.int64)),
        **decoder_blocks(targets, sid_tokens, eos=eos),
    }


def masked_hidden(model: OnePassModel, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """``(B, M, block, D)`` final decoder states of a :func:`masked_batch`'s blocks: the bidirectional
    encoder over the sequence with its masked items hidden, then one decoder block per masked item."""
    positions = batch["positions"]
    width = positions.shape[1]
    block_len = batch["decoder_input_ids"].shape[1] // max(width, 1)
    hidden = encode_items(model, batch["items"], masked=batch["masked"], key_mask=batch["key_mask"])
    bias = masked_cross_bias(model, positions, batch["key_mask"], block_len, dtype=hidden.dtype)
    states = blockwise_hidden(
        model.t5, batch["decoder_input_ids"], hidden, block_len=block_len, cross_bias=bias
    )  # (B, Q, D)
    return states.view(positions.shape[0], width, block_len, -1)  # (B, M, block, D)


KERNELS = ("hf", "blocks")
"""Decoder implementations of :func:`onepass_logits`: HF's forward under 4D masks (the reference)
and :func:`blockwise_hidden`."""


def onepass_logits(
    model: OnePassModel,
    items: torch.Tensor,
    decoder_input_ids: torch.Tensor,
    *,
    kernel: str = "blocks",
    encoded: torch.Tensor | None = None,
) -> torch.Tensor:
    """``(B, T, L+1, V)`` teacher-forced logits of every block, in one encoder and one decoder pass
    (``(B, T, L, V)`` for blocks without the EOS position).

    Args:
        model: the one-pass model (its mode decides dropout).
        items: ``(B, T)`` right-padded encoder inputs.
        decoder_input_ids: ``(B, T*(L+1))`` from :func:`onepass_batch`.
        kernel: ``"hf"`` runs HF's decoder on the whole ``Q = T*(L+1)`` sequence under a
            block-diagonal ``(Q, Q)`` mask (attention cost and memory grow as Q^2, almost all of it
            masked); ``"blocks"`` (:func:`blockwise_hidden`) attends within each block of L+1 only.
        encoded: ``(B, T, D)`` the encoder states of ``items`` if already computed.

    Raises:
        ValueError: ``decoder_input_ids`` is not ``(B, T*(L+1))``, or an unknown kernel.
    """
    batch, width = items.shape
    block_len = decoder_input_ids.shape[1] // max(width, 1)  # L + 1, or L without the EOS position
    levels = model.num_levels
    if decoder_input_ids.shape != (batch, width * block_len) or block_len not in (levels, levels + 1):
        raise ValueError(
            f"decoder_input_ids must be (B, T*(L+1)) = ({batch}, {width * (levels + 1)}) or (B, T*L), "
            f"got {tuple(decoder_input_ids.shape)}"
        )
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {KERNELS}, got {kernel!r}")
    if kernel == "blocks":
        return model.t5.lm_head(onepass_hidden(model, items, decoder_input_ids, encoded))  # (B, T, L+1, V)
    hidden = encode_items(model, items) if encoded is None else encoded  # (B, T, D)
    dtype, device = hidden.dtype, hidden.device
    cross_bias = block_cross_bias(model, width, block_len, width, dtype=dtype)  # (1, H or 1, Q, T)
    out = model.t5(
        encoder_outputs=BaseModelOutput(last_hidden_state=hidden),
        attention_mask=cross_bias,  # (1, H or 1, Q, T): HF adds a 4D float mask to the scores as it is
        decoder_input_ids=decoder_input_ids,  # (B, Q), Q = T*(L+1)
        decoder_attention_mask=block_causal_mask(width, block_len, dtype=dtype, device=device),  # (1,1,Q,Q)
        use_cache=False,
    )
    return out.logits.view(batch, width, block_len, -1)  # (B, T*(L+1), V) -> (B, T, L+1, V)


def onepass_hidden(
    model: OnePassModel,
    items: torch.Tensor,
    decoder_input_ids: torch.Tensor,
    encoded: torch.Tensor | None = None,
) -> torch.Tensor:
    """``(B, T, L+1, D)`` the final decoder states of every block (the LM head's input), through
    :func:`blockwise_hidden`; shapes as :func:`onepass_logits` (``encoded``: the encoder states of
    ``items`` if already computed)."""
    batch, width = items.shape
    block_len = decoder_input_ids.shape[1] // max(width, 1)
    hidden = encode_items(model, items) if encoded is None else encoded  # (B, T, D)
    cross_bias = block_cross_bias(model, width, block_len, width, dtype=hidden.dtype)  # (1, H or 1, Q, T)
    states = blockwise_hidden(
        model.t5, decoder_input_ids, hidden, block_len=block_len, cross_bias=cross_bias
    )  # (B, Q, D)
    return states.view(batch, width, block_len, -1)  # (B, T*(L+1), D) -> (B, T, L+1, D)


def blockwise_hidden(
    t5: T5ForConditionalGeneration,
    decoder_input_ids: torch.Tensor,
    hidden: torch.Tensor,
    *,
    block_len: int,
    cross_bias: torch.Tensor,
) -> torch.Tensor:
    """``(B, Q, D)`` final states (the LM head's input) of T5's decoder over ``Q / block_len``
    independent blocks, self-attending within each.

    The same computation as HF's decoder under :func:`block_causal_mask` and :func:`block_cross_bias`, on
    the model's own modules (as :func:`tidrec.generate.decoder_step`): self-attention runs on
    ``(B*T, H, L+1, d)`` blocks with the position bias of L+1 positions, cross-attention projects
    the encoder's keys/values once per user and masks ``(Q, S)``; nothing grows as Q^2.

    Args:
        t5: the T5 encoder-decoder (its mode decides dropout).
        decoder_input_ids: ``(B, Q)``, Q = T * block_len.
        hidden: ``(B, S, D)`` encoder states (block t reads positions <= t).
        block_len: tokens per block, L + 1.
        cross_bias: ``(1 or B, 1 or H, Q, S)`` additive cross-attention bias
            (:func:`block_cross_bias`: block t reads positions <= t).

    Raises:
        ValueError: Q is not a multiple of ``block_len``.
    """
    batch, length = decoder_input_ids.shape
    if length % block_len:
        raise ValueError(
            f"decoder_input_ids {tuple(decoder_input_ids.shape)}: Q not a multiple of {block_len}"
        )
    blocks = length // block_len
    decoder = t5.decoder
    x = decoder.dropout(decoder.embed_tokens(decoder_input_ids))  # (B, Q, D)
    first = decoder.block[0].layer[0].SelfAttention
    within = torch.ones(block_len, block_len, dtype=torch.bool, device=x.device).tril()  # (l, l)
    self_bias = first.compute_bias(block_len, block_len, device=x.device).to(x.dtype)  # (1, H, l, l)
    self_bias = self_bias + additive_mask(within, x.dtype)  # (1, H, l, l)
    for block in decoder.block:
        attention = block.layer[0].SelfAttention
        heads, dim = attention.n_heads, attention.key_value_proj_dim
        dropout = attention.dropout if attention.training else 0.0
        normed = block.layer[0].layer_norm(x).view(batch * blocks, block_len, -1)  # (B, Q, D) -> (BT, l, D)
        query, key, value = (
            proj(normed).view(batch * blocks, block_len, heads, dim).transpose(1, 2)  # (BT, H, l, d)
            for proj in (attention.q, attention.k, attention.v)
        )
        attended = F.scaled_dot_product_attention(
            query, key, value, attn_mask=self_bias, dropout_p=dropout, scale=1.0
        )  # (BT, H, l, d)
        attended = attended.transpose(1, 2).reshape(
            batch, length, heads * dim
        )  # (BT, l, H, d) -> (B, Q, H*d)
        x = x + block.layer[0].dropout(attention.o(attended))

        cross = block.layer[1].EncDecAttention
        normed = block.layer[1].layer_norm(x)
        query = cross.q(normed).view(batch, length, heads, dim).transpose(1, 2)  # (B, H, Q, d)
        key, value = (
            proj(hidden).view(batch, -1, heads, dim).transpose(1, 2)  # (B, H, S, d)
            for proj in (cross.k, cross.v)
        )
        attended = F.scaled_dot_product_attention(
            query, key, value, attn_mask=cross_bias, dropout_p=dropout, scale=1.0
        )  # (B, H, Q, d)
        attended = attended.transpose(1, 2).reshape(batch, length, heads * dim)  # (B, Q, H*d)
        x = x + block.layer[1].dropout(cross.o(attended))
        x = block.layer[-1](x)  # feed-forward with its own layer norm and residual
    x = decoder.dropout(decoder.final_layer_norm(x))
    if t5.config.scale_decoder_outputs:
        x = x * (t5.config.d_model**-0.5)
    return x  # (B, Q, D)


def trie_softmax_logits(
    model: OnePassModel, logits: torch.Tensor, targets: torch.Tensor, hidden: torch.Tensor | None = None
) -> torch.Tensor:
    """``(B, T, L+1, V)`` teacher-forced logits with every token the trie does not allow after the
    target's true prefix set to -inf (the last position allows only EOS).

    Args:
        model: the one-pass model (its trie, and its node embeddings if it has them).
        logits: ``(B, T, L+1, V)`` from :func:`onepass_logits`.
        targets: ``(B, T)`` next item_idx, -1 on padding.
        hidden: ``(B, T, L+1, D)`` the states ``logits`` came from (:func:`onepass_hidden`);
            needed by a model with node embeddings.

    Raises:
        ValueError: a model with node embeddings and no ``hidden``.
    """
    trie, paths = model.trie_paths()
    batch, width, block_len, vocab = logits.shape
    nodes = paths[torch.where(targets >= 0, targets, model.num_items)]  # (B, T, L + 1)
    vectors = model.node_vectors()
    if vectors is not None and hidden is None:
        raise ValueError("a model with node embeddings needs the decoder states (hidden)")
    levels = [
        children_only(
            logits[:, :, depth].reshape(-1, vocab),
            nodes[:, :, depth].reshape(-1),
            trie,
            depth,
            hidden=None if vectors is None else hidden[:, :, depth].reshape(batch * width, -1),
            node_vectors=None if vectors is None else vectors[depth],
        )
        for depth in range(model.num_levels)
    ]  # L x (B*T, V)
    levels = [level.view(batch, width, vocab) for level in levels]
    if block_len > model.num_levels:  # the EOS position: EOS is the only continuation of a whole SID
        eos = torch.full_like(logits[:, :, -1], float("-inf"))
        eos[..., EOS] = logits[:, :, -1, EOS]  # (B, T, V)
        levels.append(eos)
    return torch.stack(levels, dim=2)


def target_losses(
    model: OnePassModel, batch: dict[str, torch.Tensor], *, kernel: str = "blocks"
) -> torch.Tensor:
    """``(B, T)`` each target's mean cross-entropy over its L+1 tokens; 0 on padded targets.

    Blocks without the EOS position (trie softmax only, where that position's loss is exactly 0)
    give the same value: their L losses are summed and divided by L + 1. With
    ``config.item_loss`` a next-item target also adds that weight times :func:`item_losses`."""
    hidden = encoded = None
    if "positions" in batch:  # a masked-item batch (masked_batch)
        hidden = masked_hidden(model, batch)  # (B, M, block, D)
        logits = model.t5.lm_head(hidden)
    else:
        encoded = encode_items(model, batch["items"])  # (B, T, D)
        if model.node_embeddings is not None:
            if kernel != "blocks":
                raise ValueError("a model with node embeddings trains with the 'blocks' kernel")
            hidden = onepass_hidden(model, batch["items"], batch["decoder_input_ids"], encoded)  # (B,T,L+1,D)
            logits = model.t5.lm_head(hidden)  # (B, T, L+1, V)
        else:
            logits = onepass_logits(
                model, batch["items"], batch["decoder_input_ids"], kernel=kernel, encoded=encoded
            )  # (B, T, L+1, V)
    if model.config.trie_softmax:
        logits = trie_softmax_logits(model, logits, batch["targets"], hidden)
    labels = batch["labels"].view(logits.shape[:3])  # (B, T*(L+1)) -> (B, T, L+1)
    token_losses = F.cross_entropy(
        logits.flatten(0, 2), labels.flatten(), ignore_index=IGNORE, reduction="none"
    ).view(labels.shape)  # (B*T*(L+1),) -> (B, T, L+1)
    if labels.shape[2] == model.num_levels:  # no EOS position: its loss would be exactly 0
        if not model.config.trie_softmax:
            raise ValueError(
                "blocks without the EOS position need the trie softmax (EOS is learnt otherwise)"
            )
        losses = token_losses.sum(dim=2) / (model.num_levels + 1)  # (B, T)
    else:
        losses = token_losses.mean(dim=2)  # (B, T)
    if encoded is not None and model.config.item_loss:
        losses = losses + model.config.item_loss * item_losses(model, encoded, batch["targets"])
    return losses


def item_scores(model: OnePassModel, encoded: torch.Tensor) -> torch.Tensor:
    """``(..., I)`` the item head's logits: encoder states ``(..., D)`` against the item-id table,
    scaled by D^-0.5 (the scores :func:`item_losses` trains)."""
    table = model.item_embedding.weight[: model.num_items]  # (I, D), the padding row left out
    return encoded @ table.to(encoded.dtype).T * encoded.shape[-1] ** -0.5


def item_losses(model: OnePassModel, encoded: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``(B, T)`` SASRec's loss on the encoder: each state's cross-entropy of the next item over the
    whole catalogue, scored by dot product with the item-id embedding table scaled by D^-0.5 (as
    T5 scales its tied output layer; the table starts at unit variance, so unscaled scores would
    start with a spread of sqrt(D) and a loss near 30); 0 on padded targets.

    Args:
        model: a one-pass model with an item-id embedding.
        encoded: ``(B, T, D)`` encoder states (position t has read items <= t).
        targets: ``(B, T)`` next item_idx, -1 on padding.
    """
    scores = item_scores(model, encoded)  # (B, T, I)
    losses = F.cross_entropy(
        scores.flatten(0, 1).float(), targets.clamp(min=0).flatten(), reduction="none"
    ).view(targets.shape)  # (B, T)
    return torch.where(targets >= 0, losses, torch.zeros_like(losses))


def onepass_loss(
    model: OnePassModel, batch: dict[str, torch.Tensor], *, kernel: str = "blocks"
) -> torch.Tensor:
    """Mean over every real target of the batch of its mean token cross-entropy (SID tokens + EOS)."""
    real = batch["attention_mask"].bool()  # (B, T)
    return target_losses(model, batch, kernel=kernel)[real].mean()


def history_batch(
    histories: Sequence[np.ndarray], num_items: int, max_items: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Encoder inputs for inference: each history's last ``max_items`` items, right-padded.

    An empty history reads one padding item (marked real, so the decoder has something to attend to).

    Returns:
        ``items`` (B, S) int64 (``num_items`` on padding) and ``attention_mask`` (B, S) int64.
    """
    tails = [np.asarray(h, dtype=np.int64)[max(0, len(h) - max_items) :] for h in histories]
    tails = [t if len(t) else np.array([num_items]) for t in tails]
    width = max((len(t) for t in tails), default=1)
    items = np.full((len(tails), width), num_items, dtype=np.int64)  # (B, S)
    mask = np.zeros((len(tails), width), dtype=np.int64)  # (B, S)
    for row, tail in enumerate(tails):
        items[row, : len(tail)] = tail
        mask[row, : len(tail)] = 1
    return torch.from_numpy(items), torch.from_numpy(mask)


@torch.inference_mode()
def recommend(
    model: OnePassModel,
    histories: Sequence[np.ndarray],
    *,
    beam_size: int,
    top_k: int | None = None,
    trie: Trie | None = None,
    exclude: list[np.ndarray] | None = None,
    kernel: str = "torch",
    decoder: str = "beam",
    max_beam: int = 1024,
    item_score: float | None = None,
) -> BeamResult:
    """Each user's best next items: the causal encoder over the history, then constrained beam search.

    Args:
        model: the one-pass model (switched to eval mode for the call).
        histories: B arrays of item_idx in time order (the last ``config.max_items`` are read).
        beam_size: beams kept per user.
        top_k: items returned per user (default ``beam_size``).
        trie: the catalogue's trie (default :meth:`OnePassModel.trie`; pass it to reuse it).
        exclude: optional per-user item_idx that may not be returned.
        kernel: masking kernel of :func:`tidrec.generate.beam_search`.
        decoder: ``beam``, or ``exact`` to widen the beam for each user until the list is certified
            (:func:`tidrec.generate.exact_search`, at most ``max_beam`` beams).
        max_beam: the widest beam of the exact decoder.
        item_score: weight of the item head's log-probability added to each found item's SID
            log-probability (default ``config.item_score``; see :class:`OnePassConfig`).

    Returns:
        :class:`~tidrec.generate.BeamResult`, ``(B, top_k)`` item_idx and summed log-probabilities
        (plus the weighted item log-probability with ``item_score``).

    Raises:
        ValueError: ``item_score`` < 0, or > 0 for a model without a trained item head.
    """
    weight = model.config.item_score if item_score is None else item_score
    if weight < 0:
        raise ValueError(f"item_score must be >= 0, got {weight}")
    if weight and (not model.config.item_loss or model.config.bidirectional):
        raise ValueError("item_score needs a model trained with item_loss on next items (its item head)")
    device = model.sid_tokens.device
    items, attention_mask = history_batch(histories, model.num_items, model.config.max_items)
    items, attention_mask = items.to(device), attention_mask.to(device)
    was_training = model.training
    model.eval()
    try:
        hidden = None if model.config.bidirectional else encode_items(model, items)  # (B, S, D)
        prior = None
        if weight:
            latest = hidden[torch.arange(len(items), device=device), attention_mask.sum(dim=1) - 1]  # (B, D)
            prior = weight * item_scores(model, latest).float().log_softmax(dim=-1)  # (B, I)
        encoder = decoder_state(model, items, attention_mask, hidden)
        return decode(
            model.t5,
            encoder=encoder,
            trie=trie if trie is not None else model.trie(),
            decoder=decoder,
            beam_size=beam_size,
            top_k=beam_size if top_k is None else top_k,
            max_beam=max_beam,
            exclude=exclude,
            kernel=kernel,
            trie_softmax=model.config.trie_softmax,
            node_vectors=model.node_vectors(),
            item_prior=prior,
        )
    finally:
        model.train(was_training)
