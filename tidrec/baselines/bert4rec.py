"""BERT4Rec (Sun et al., CIKM 2019): bidirectional self-attention trained with the cloze task.

Training masks random positions of a user's window and predicts them over the whole catalogue
(softmax cross-entropy); inference appends a [MASK] after the history and scores that position.
Token layout: 0 = padding, item_idx + 1 = item, I + 1 = [MASK].
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from tidrec.baselines.sasrec import PAD, encoder_stack, left_pad
from tidrec.baselines.softmax_ce import softmax_cross_entropy
from tidrec.errors import ConfigError


@dataclass(frozen=True, kw_only=True)
class BERT4RecConfig:
    """Architecture and masking of a BERT4Rec model."""

    num_items: int
    """Catalogue size I."""
    max_len: int = 200
    """Window length, the [MASK] slot included at inference."""
    d_model: int = 64
    """Hidden width (and item embedding size)."""
    num_layers: int = 2
    """Self-attention blocks."""
    num_heads: int = 2
    """Attention heads per block."""
    dropout: float = 0.1
    """Dropout on embeddings, attention and feed-forward outputs."""
    mask_prob: float = 0.2
    """Probability that a training position is replaced by [MASK] and predicted."""

    def __post_init__(self) -> None:
        if self.num_items < 2:
            raise ConfigError(f"num_items must be >= 2, got {self.num_items}")
        if self.d_model % self.num_heads:
            raise ConfigError(f"d_model {self.d_model} must be divisible by num_heads {self.num_heads}")
        if not 0.0 < self.mask_prob < 1.0:
            raise ConfigError(f"mask_prob must be in (0, 1), got {self.mask_prob}")
        if self.max_len < 2 or not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"need max_len >= 2 and 0 <= dropout < 1, got {self.max_len}, {self.dropout}")


class BERT4Rec(nn.Module):
    """Bidirectional transformer with a tied output table and a per-item output bias."""

    train_width_extra = 0
    """Training windows hold ``max_len`` items."""

    def __init__(self, config: BERT4RecConfig) -> None:
        super().__init__()
        self.config = config
        d = config.d_model
        self.mask_token = config.num_items + 1
        self.item_emb = nn.Embedding(config.num_items + 2, d, padding_idx=PAD)
        self.pos_emb = nn.Embedding(config.max_len, d)
        self.emb_norm = nn.LayerNorm(d)
        self.emb_dropout = nn.Dropout(config.dropout)
        self.encoder = encoder_stack(d, config.num_heads, config.num_layers, config.dropout)
        self.head = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, d), nn.GELU(), nn.LayerNorm(d))
        self.out_bias = nn.Parameter(torch.zeros(config.num_items))
        nn.init.normal_(self.item_emb.weight, std=0.02)
        nn.init.normal_(self.pos_emb.weight, std=0.02)
        with torch.no_grad():
            self.item_emb.weight[PAD].zero_()

    @property
    def item_table(self) -> torch.Tensor:
        """(I, D) embedding of each item_idx (padding and [MASK] rows excluded)."""
        return self.item_emb.weight[1 : self.config.num_items + 1]

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Hidden state at every position, each seeing the whole (unpadded) window.

        Args:
            tokens: (B, L) tokens, left-padded with 0, L <= max_len.

        Returns:
            (B, L, D) hidden states.
        """
        _, length = tokens.shape
        if length > self.config.max_len:
            raise ValueError(f"tokens have length {length} > max_len {self.config.max_len}")
        positions = torch.arange(self.config.max_len - length, self.config.max_len, device=tokens.device)
        x = self.item_emb(tokens) * math.sqrt(self.config.d_model) + self.pos_emb(positions)  # (B, L, D)
        x = self.emb_dropout(self.emb_norm(x))
        is_pad = tokens == PAD  # (B, L); every row has a non-pad token, so no row is fully masked
        return self.encoder(x, src_key_padding_mask=is_pad)  # (B, L, D)

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """(..., D) hidden -> (..., I) scores over all items."""
        return self.head(hidden) @ self.item_table.T + self.out_bias

    def inference_tokens(self, histories: list[np.ndarray]) -> torch.Tensor:
        """(B, max_len) tokens: the last max_len - 1 history items, then [MASK]."""
        tokens = left_pad(histories, self.config.max_len - 1)  # (B, L - 1)
        mask = torch.full((len(histories), 1), self.mask_token, dtype=torch.long)
        return torch.cat([tokens, mask], dim=1)  # (B, L)

    def next_item_scores(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, L) tokens ending in [MASK] -> (B, I) scores for the masked (next) item."""
        return self.logits(self(tokens)[:, -1])

    def loss(self, windows: torch.Tensor) -> torch.Tensor:
        """Cloze loss: mask random positions (at least one per row) and predict them.

        Args:
            windows: (B, max_len) item tokens, left-padded.
        """
        is_item = windows != PAD  # (B, L)
        masked = (torch.rand(windows.shape, device=windows.device) < self.config.mask_prob) & is_item
        # Rows with nothing masked get their last item masked (teaches the inference-time task too).
        empty = ~masked.any(dim=1)
        masked[empty, -1] = is_item[empty, -1]
        inputs = windows.masked_fill(masked, self.mask_token)  # (B, L)
        hidden = self.head(self(inputs)[masked])  # (N, D)
        # The output bias rides along as one more dimension: [h, 1] . [e, b] = h . e + b.
        hidden = torch.cat([hidden, torch.ones_like(hidden[:, :1])], dim=1)  # (N, D + 1)
        table = torch.cat([self.item_table, self.out_bias.unsqueeze(1)], dim=1)  # (I, D + 1)
        return softmax_cross_entropy(hidden, table, windows[masked] - 1)
