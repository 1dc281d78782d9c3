"""PCA initialisation of an item embedding table from text embeddings (LLM2SASRec, LLM2BERT4Rec).

Harte et al. (RecSys 2023; ACM TORS 2024) reduce each item's LLM text embedding to the sequence
model's width with PCA and use the result as the initial item embedding table.
"""

from __future__ import annotations

import numpy as np
import torch

from tidrec.errors import ConfigError


def pca_reduce(embeddings: np.ndarray, dim: int) -> np.ndarray:
    """Project centred embeddings onto their top ``dim`` principal directions.

    Args:
        embeddings: (I, E) item text embeddings.
        dim: output width, at most min(I, E).

    Returns:
        (I, dim) float32 coordinates; column j is the j-th principal component (descending variance),
        its sign fixed so that its largest-magnitude entry is positive.

    Raises:
        ConfigError: ``dim`` exceeds min(I, E).
    """
    matrix = np.asarray(embeddings, dtype=np.float64)
    if matrix.ndim != 2:
        raise ValueError(f"embeddings must be (I, E), got {matrix.shape}")
    if not 1 <= dim <= min(matrix.shape):
        raise ConfigError(
            f"PCA width {dim} (--d-model) must be in [1, min(items, embedding dim) = {min(matrix.shape)}]"
        )
    centred = matrix - matrix.mean(axis=0)  # (I, E)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)  # vt: (min(I, E), E)
    coords = centred @ vt[:dim].T  # (I, dim)
    signs = np.sign(coords[np.abs(coords).argmax(axis=0), np.arange(dim)])
    return (coords * np.where(signs == 0, 1.0, signs)).astype(np.float32)


def init_item_table(table: torch.Tensor, embeddings: np.ndarray, *, std: float = 0.02) -> float:
    """Overwrite ``table`` with the PCA-reduced embeddings, rescaled to the model's init scale.

    Args:
        table: (I, D) item embedding rows of a model (a view into its embedding weight).
        embeddings: (I, E) item text embeddings, row i = item_idx i.
        std: standard deviation of the written table (the models' random init uses 0.02).

    Returns:
        The scale factor applied to the PCA coordinates.

    Raises:
        ValueError: the item counts differ.
    """
    if table.shape[0] != len(embeddings):
        raise ValueError(f"item table has {table.shape[0]} rows but {len(embeddings)} embeddings were given")
    reduced = pca_reduce(embeddings, table.shape[1])  # (I, D)
    scale = std / max(float(reduced.std()), 1e-12)
    with torch.no_grad():
        table.copy_(torch.from_numpy(reduced * scale).to(table.dtype))
    return scale
