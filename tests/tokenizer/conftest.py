"""Small synthetic embeddings shared by the tokenizer tests."""

import numpy as np
import pytest


def clustered_embeddings(n: int = 600, dim: int = 32, clusters: int = 16, *, seed: int = 0) -> np.ndarray:
    """(n, dim) float32 unit vectors around ``clusters`` random centres, like sentence embeddings."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim))
    points = centres[rng.integers(0, clusters, size=n)] + 0.3 * rng.normal(size=(n, dim))
    return (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="session")
def embeddings() -> np.ndarray:
    return clustered_embeddings()


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """The tokenizer's small MLPs gain nothing from a second thread, and on a busy 2-core machine
    OpenMP spin-waiting makes two threads many times slower than one."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
