"""Residual k-means: a training-free tokenizer (k-means on the embeddings, then on each residual)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from tidrec.errors import ConfigError
from tokenizer.base import as_float_matrix, config_from_dict, save_checkpoint
from tokenizer.quantize import kmeans, residual_quantize_chunked


@dataclass(frozen=True, kw_only=True)
class ResidualKMeansConfig:
    """Residual k-means settings."""

    levels: int = 3
    """Number of code levels (before the collision code)."""
    codebook_size: int = 256
    """Codes per level."""
    kmeans_iterations: int = 25
    """Lloyd iterations of each level's k-means."""

    def __post_init__(self) -> None:
        if self.levels < 1 or self.codebook_size < 2 or self.kmeans_iterations < 1:
            raise ConfigError(
                f"residual k-means needs levels >= 1, codebook_size >= 2 and kmeans_iterations >= 1, got "
                f"{self.levels}, {self.codebook_size}, {self.kmeans_iterations}"
            )


class ResidualKMeansTokenizer:
    """Level l's codebook is k-means on what levels 0..l-1 left unexplained."""

    kind = "rkmeans"

    def __init__(self, config: ResidualKMeansConfig, *, device: str = "auto", progress: bool = True) -> None:
        self.config = config  # faiss k-means runs on the CPU whatever the device
        self.progress = progress
        self.codebooks: list[np.ndarray] = []  # L arrays (V, D)

    @property
    def level_sizes(self) -> tuple[int, ...]:
        return (self.config.codebook_size,) * self.config.levels

    def fit(self, embeddings: np.ndarray, *, seed: int) -> dict[str, float]:
        """Fit each level's k-means in turn on the residuals of the previous levels."""
        residual = as_float_matrix(embeddings).copy()  # (N, D)
        self.codebooks = []
        for level in tqdm(
            range(self.config.levels),
            desc="residual k-means",
            unit="level",
            disable=not self.progress or None,
        ):
            centroids = kmeans(
                residual,
                self.config.codebook_size,
                seed=seed + level,
                iterations=self.config.kmeans_iterations,
            )  # (V, D)
            codes = residual_quantize_chunked(residual, [centroids])[:, 0]  # (N,)
            residual -= centroids[codes]
            self.codebooks.append(centroids)
        return {"levels_fitted": float(self.config.levels)}

    def _check_fitted(self) -> None:
        if not self.codebooks:
            raise RuntimeError("tokenizer is not fitted; call fit() or load_tokenizer() first")

    def encode(self, embeddings: np.ndarray) -> np.ndarray:
        self._check_fitted()
        return residual_quantize_chunked(
            as_float_matrix(embeddings, dim=self.codebooks[0].shape[1]), self.codebooks
        )

    def reconstruct(self, embeddings: np.ndarray) -> np.ndarray:
        codes = self.encode(embeddings)  # (N, L)
        return sum(book[codes[:, level]] for level, book in enumerate(self.codebooks))  # (N, D)

    def save(self, path: str | Path, *, extra: dict[str, Any] | None = None) -> None:
        self._check_fitted()
        state = {"codebooks": torch.from_numpy(np.stack(self.codebooks))}  # (L, V, D)
        save_checkpoint(path, kind=self.kind, config=self.config, state=state, extra=extra or {})

    @classmethod
    def from_checkpoint(
        cls, payload: dict[str, Any], *, source: str | Path, device: str = "auto"
    ) -> ResidualKMeansTokenizer:
        tokenizer = cls(config_from_dict(ResidualKMeansConfig, payload["config"], source=source))
        tokenizer.codebooks = list(payload["state"]["codebooks"].numpy())
        return tokenizer
