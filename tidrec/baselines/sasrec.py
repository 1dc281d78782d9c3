"""SASRec (Kang & McAuley, ICDM 2018): causal self-attention over item ids, next item at every position.

Two objectives: full-softmax cross-entropy over the whole catalogue (``loss="ce"``, the strong
variant of Klenitskiy & Vasilev, RecSys 2023) and the original binary cross-entropy with one sampled
negative per position (``loss="bce"``). Token layout: 0 = padding, item_idx + 1 = item.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from tidrec.baselines.softmax_ce import softmax_cross_entropy
from tidrec.errors import ConfigError

PAD = 0
"""Padding token; item_idx i is token i + 1."""


@dataclass(frozen=True, kw_only=True)
class SASRecConfig:
    """Architecture and objective of a SASRec model."""

    num_items: int
    """Catalogue size I (scores are over item_idx 0..I-1)."""
    max_len: int = 200
    """Most recent items the model sees."""
    d_model: int = 64
    """Hidden width (and item embedding size)."""
    num_layers: int = 2
    """Self-attention blocks."""
    num_heads: int = 1
    """Attention heads per block."""
    dropout: float = 0.2
    """Dropout on embeddings, attention and feed-forward outputs."""
    loss: Literal["ce", "bce"] = "ce"
    """ce: softmax over all items at each position; bce: one positive vs one sampled negative."""

    def __post_init__(self) -> None:
        if self.num_items < 2:
            raise ConfigError(f"num_items must be >= 2, got {self.num_items}")
        if self.d_model % self.num_heads:
            raise ConfigError(f"d_model {self.d_model} must be divisible by num_heads {self.num_heads}")
        if self.loss not in ("ce", "bce"):
            raise ConfigError(f"SASRec loss must be 'ce' or 'bce', got {self.loss!r}")
        if self.max_len < 1 or not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"need max_len >= 1 and 0 <= dropout < 1, got {self.max_len}, {self.dropout}")


def left_pad(sequences: list[np.ndarray], width: int, *, shift: int = 1) -> torch.Tensor:
    """(B, width) int64 tokens: each sequence's last ``width`` items + ``shift``, left-padded with 0."""
    tokens = torch.zeros(len(sequences), width, dtype=torch.long)  # (B, width)
    for row, seq in enumerate(sequences):
        tail = np.asarray(seq[-width:], dtype=np.int64) if width else np.zeros(0, dtype=np.int64)
        if len(tail):
            tokens[row, width - len(tail) :] = torch.from_numpy(tail + shift)
    return tokens


def encoder_stack(d_model: int, num_heads: int, num_layers: int, dropout: float) -> nn.TransformerEncoder:
    """Pre-norm transformer blocks with a feed-forward as wide as the model (as in SASRec)."""
    layer = nn.TransformerEncoderLayer(
        d_model, num_heads, dim_feedforward=d_model, dropout=dropout, batch_first=True, norm_first=True
    )
    return nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)


class SASRec(nn.Module):
    """Causal transformer over item tokens; the output item table is tied to the input one."""

    train_width_extra = 1
    """Training windows hold ``max_len + 1`` items: inputs ``w[:-1]``, targets ``w[1:]``."""

    def __init__(self, config: SASRecConfig) -> None:
        super().__init__()
        self.config = config
        d = config.d_model
        self.item_emb = nn.Embedding(config.num_items + 1, d, padding_idx=PAD)
        self.pos_emb = nn.Embedding(config.max_len, d)
        self.emb_dropout = nn.Dropout(config.dropout)
        self.encoder = encoder_stack(d, config.num_heads, config.num_layers, config.dropout)
        self.final_norm = nn.LayerNorm(d)
        nn.init.normal_(self.item_emb.weight, std=0.02)
        nn.init.normal_(self.pos_emb.weight, std=0.02)
        with torch.no_grad():
            self.item_emb.weight[PAD].zero_()

    @property
    def item_table(self) -> torch.Tensor:
        """(I, D) embedding of each item_idx (the rows the PCA initialisation writes)."""
        return self.item_emb.weight[1:]

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Hidden state at every position.

        Args:
            tokens: (B, L) item tokens, left-padded with 0, L <= max_len.

        Returns:
            (B, L, D) hidden states; position t has seen tokens[:, :t + 1] only.
        """
        _, length = tokens.shape
        if length > self.config.max_len:
            raise ValueError(f"tokens have length {length} > max_len {self.config.max_len}")
        positions = torch.arange(self.config.max_len - length, self.config.max_len, device=tokens.device)
        x = self.item_emb(tokens) * math.sqrt(self.config.d_model) + self.pos_emb(positions)  # (B, L, D)
        is_pad = tokens == PAD  # (B, L)
        x = self.emb_dropout(x) * (~is_pad).unsqueeze(-1)
        # Block future keys and padding keys; a position may always attend to itself (no empty rows).
        causal = torch.ones(length, length, dtype=torch.bool, device=tokens.device).triu(1)  # (L, L)
        eye = torch.eye(length, dtype=torch.bool, device=tokens.device)
        blocked = causal | (is_pad.unsqueeze(1) & ~eye)  # (B, L, L)
        blocked = blocked.repeat_interleave(self.config.num_heads, dim=0)  # (B * H, L, L)
        hidden = self.encoder(x, mask=blocked)  # (B, L, D)
        return self.final_norm(hidden)

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """(..., D) hidden -> (..., I) scores over all items."""
        return hidden @ self.item_table.T

    def inference_tokens(self, histories: list[np.ndarray]) -> torch.Tensor:
        """(B, max_len) tokens of each history's most recent items."""
        return left_pad(histories, self.config.max_len)

    def next_item_scores(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, L) tokens -> (B, I) scores for the item after the last position."""
        return self.logits(self(tokens)[:, -1])

    def loss(self, windows: torch.Tensor) -> torch.Tensor:
        """Mean next-item loss over every non-padding position.

        Args:
            windows: (B, max_len + 1) item tokens, left-padded.
        """
        inputs, targets = windows[:, :-1], windows[:, 1:]  # (B, L), (B, L)
        hidden = self(inputs)  # (B, L, D)
        keep = (inputs != PAD) & (targets != PAD)  # (B, L)
        hidden, targets = hidden[keep], targets[keep] - 1  # (N, D), (N,) item_idx
        if self.config.loss == "ce":
            return softmax_cross_entropy(hidden, self.item_table, targets)
        negatives = torch.randint(0, self.config.num_items - 1, targets.shape, device=targets.device)
        negatives = negatives + (negatives >= targets).long()  # uniform over items != target
        pos = (hidden * self.item_table[targets]).sum(-1)  # (N,)
        neg = (hidden * self.item_table[negatives]).sum(-1)  # (N,)
        return F.binary_cross_entropy_with_logits(
            torch.cat([pos, neg]), torch.cat([torch.ones_like(pos), torch.zeros_like(neg)])
        )
