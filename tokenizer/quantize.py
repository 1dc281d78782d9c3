"""Residual quantisation and k-means: plain functions over arrays shared by both tokenizers."""

from __future__ import annotations

import faiss
import numpy as np
import torch

ENCODE_CHUNK = 65_536
"""Rows per distance computation, so encoding a million items never builds an (N, V) matrix at once."""


def kmeans(points: np.ndarray, k: int, *, seed: int, iterations: int = 25) -> np.ndarray:
    """k-means centroids of ``points`` with faiss, deterministic for a seed.

    With no more points than ``k`` the centroids are the distinct points, the rest copies of random
    points plus small noise: they start dead and dead-code re-seeding (RQ-VAE) or nobody uses them.

    Args:
        points: (N, D) float array.
        k: number of centroids.
        seed: faiss's sampling and initialisation seed.
        iterations: Lloyd iterations.

    Returns:
        (k, D) float32 centroids.
    """
    points = np.ascontiguousarray(points, dtype=np.float32)  # (N, D)
    if points.ndim != 2 or len(points) == 0:
        raise ValueError(f"k-means needs a non-empty (N, D) array, got {points.shape}")
    if len(points) <= k:  # faiss needs more points than centroids
        distinct = np.unique(points, axis=0)
        rng = np.random.default_rng(seed)
        extra = distinct[rng.integers(0, len(distinct), size=k - len(distinct))]
        noise = rng.normal(scale=1e-3 * (float(points.std()) + 1e-8), size=extra.shape)
        return np.concatenate([distinct, extra + noise.astype(np.float32)]).astype(np.float32)
    model = faiss.Kmeans(
        points.shape[1], k, niter=iterations, seed=seed, min_points_per_centroid=1, verbose=False
    )
    model.train(points)
    return np.asarray(model.centroids, dtype=np.float32).copy()  # (k, D)


def nearest_code(residuals: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """Index of the nearest codebook row (squared L2) for each residual; ties go to the lower index.

    Args:
        residuals: (N, D).
        codebook: (V, D).

    Returns:
        (N,) int64 codes.
    """
    if residuals.shape[-1] != codebook.shape[-1]:
        raise ValueError(
            f"residuals {tuple(residuals.shape)} and codebook {tuple(codebook.shape)} differ in D"
        )
    distances = (
        residuals.pow(2).sum(1, keepdim=True) - 2 * residuals @ codebook.T + codebook.pow(2).sum(1)[None, :]
    )  # (N, V)
    return distances.argmin(dim=1)


def residual_quantize(
    vectors: torch.Tensor, codebooks: list[torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Quantise each vector level by level: level l encodes what levels 0..l-1 left over.

    ``r_0 = x``; ``c_l = argmin_v ||r_l - E_l[v]||``; ``r_{l+1} = r_l - E_l[c_l]``.

    Args:
        vectors: (N, D).
        codebooks: L tensors of shape (V_l, D).

    Returns:
        codes (N, L) int64 and the chosen codewords (N, L, D); their sum over L approximates ``vectors``.
    """
    residual = vectors
    codes, chosen = [], []
    for codebook in codebooks:
        code = nearest_code(residual, codebook)  # (N,)
        codeword = codebook[code]  # (N, D)
        codes.append(code)
        chosen.append(codeword)
        residual = residual - codeword
    return torch.stack(codes, dim=1), torch.stack(chosen, dim=1)


def residual_quantize_chunked(vectors: np.ndarray, codebooks: list[np.ndarray]) -> np.ndarray:
    """:func:`residual_quantize` over a NumPy array in chunks; returns only the (N, L) int64 codes."""
    books = [torch.from_numpy(np.ascontiguousarray(book, dtype=np.float32)) for book in codebooks]
    out = np.empty((len(vectors), len(books)), dtype=np.int64)  # (N, L)
    with torch.no_grad():
        for start in range(0, len(vectors), ENCODE_CHUNK):
            chunk = torch.from_numpy(np.ascontiguousarray(vectors[start : start + ENCODE_CHUNK], np.float32))
            out[start : start + len(chunk)] = residual_quantize(chunk, books)[0].numpy()
    return out
