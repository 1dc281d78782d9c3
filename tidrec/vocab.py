"""Token layout shared by the generative model, the trie and beam search.

Token ids, in order::

    0                  PAD (also T5's decoder start token)
    1                  EOS
    2 ...              code tokens: level 0 codes, then level 1 codes, ... (collision level last)
    ... size - 1       user tokens: ``user_buckets`` hashed buckets

A semantic ID (SID) ``(c_0, ..., c_{L-1})`` becomes tokens ``code_token(l, c_l)`` for each level.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from tidrec.errors import ConfigError

PAD = 0
EOS = 1
FIRST_CODE_TOKEN = 2


@dataclass(frozen=True)
class Vocab:
    """Maps SID codes and user ids to token ids."""

    level_sizes: tuple[int, ...]
    """Number of codes at each SID level, the collision level last."""
    user_buckets: int = 2000
    """Number of hashed user tokens (0 disables user tokens)."""

    def __post_init__(self) -> None:
        if not self.level_sizes or any(v < 1 for v in self.level_sizes):
            raise ConfigError(f"level_sizes must be positive, got {self.level_sizes}")
        if self.user_buckets < 0:
            raise ConfigError(f"user_buckets must be >= 0, got {self.user_buckets}")

    @property
    def num_levels(self) -> int:
        return len(self.level_sizes)

    @property
    def level_offsets(self) -> tuple[int, ...]:
        """Token id of code 0 at each level."""
        offsets, start = [], FIRST_CODE_TOKEN
        for size in self.level_sizes:
            offsets.append(start)
            start += size
        return tuple(offsets)

    @property
    def first_user_token(self) -> int:
        return FIRST_CODE_TOKEN + sum(self.level_sizes)

    @property
    def size(self) -> int:
        """Total vocabulary size."""
        return self.first_user_token + self.user_buckets

    def code_token(self, level: int, code: int) -> int:
        return self.level_offsets[level] + code

    def sid_tokens(self, codes: np.ndarray) -> np.ndarray:
        """Code tuples ``(N, L)`` to token ids ``(N, L)``."""
        codes = np.asarray(codes)
        if codes.ndim != 2 or codes.shape[1] != self.num_levels:
            raise ValueError(f"codes must be (N, {self.num_levels}), got {codes.shape}")
        return codes + np.asarray(self.level_offsets, dtype=codes.dtype)

    def user_token(self, user_id: str) -> int:
        """A stable hashed token for ``user_id`` (same across runs and machines)."""
        if self.user_buckets == 0:
            raise ConfigError("user tokens are disabled (user_buckets=0)")
        digest = hashlib.blake2b(user_id.encode("utf-8"), digest_size=8).digest()
        return self.first_user_token + int.from_bytes(digest, "little") % self.user_buckets
