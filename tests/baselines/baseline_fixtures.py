"""Helpers for baseline tests: a tiny synthetic dataset where order matters, and small configs."""

import numpy as np

from tidrec.data.dataset import Dataset

NUM_ITEMS = 24
NUM_USERS = 120


def successor_dataset(num_items: int = NUM_ITEMS, num_users: int = NUM_USERS, seed: int = 0) -> Dataset:
    """Users start at a random item of one random cycle and follow it for 6-12 steps.

    The next item is a deterministic function of the current one, and every item is about equally
    popular, so a sequence model can reach near-perfect accuracy while popularity cannot.
    ``item_texts`` name each item's position on the cycle (``"item at 3"``).
    """
    rng = np.random.default_rng(seed)
    cycle = rng.permutation(num_items)  # cycle[j] -> cycle[j + 1]
    sequences = []
    for _ in range(num_users):
        start = rng.integers(num_items)
        length = rng.integers(6, 13)
        sequences.append(cycle[(start + np.arange(length)) % num_items])
    lengths = np.array([len(s) for s in sequences])
    position = np.empty(num_items, dtype=np.int64)
    position[cycle] = np.arange(num_items)
    return Dataset(
        name="successor",
        user_ids=np.array([f"u{u}" for u in range(num_users)]),
        item_ids=np.array([f"i{i}" for i in range(num_items)]),
        item_texts=[f"item at {position[i]}" for i in range(num_items)],
        offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        items=np.concatenate(sequences).astype(np.int64),
        timestamps=np.concatenate([np.arange(n) for n in lengths]).astype(np.int64),
    )


def cycle_embeddings(dataset: Dataset, dim: int = 8) -> np.ndarray:
    """(I, dim) text-like embeddings: items on a circle in cycle order, so a successor is a neighbour."""
    position = np.array([int(t.split()[-1]) for t in dataset.item_texts])
    angle = 2 * np.pi * position / dataset.num_items
    emb = np.zeros((dataset.num_items, dim), dtype=np.float32)
    emb[:, 0], emb[:, 1] = np.cos(angle), np.sin(angle)
    return emb


def hit_rate(ranked: np.ndarray, targets: np.ndarray, k: int = 10) -> float:
    """Fraction of rows whose target is in the first k columns."""
    return float((ranked[:, :k] == targets[:, None]).any(axis=1).mean())


def seed_embedding_cache(run, dataset: Dataset, embeddings: np.ndarray) -> None:
    """Put ``embeddings`` where ``embed_texts`` looks first, so tests never load a sentence model."""
    from tidrec.embed import DEFAULT_EMBEDDING_MODEL, cache_path

    path = cache_path(run / "embeddings", DEFAULT_EMBEDDING_MODEL, dataset.item_texts)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, embeddings.astype(np.float32))


def tiny_fit_config(run, model: str, **overrides):
    """A FitConfig small enough to train in about a second on the successor dataset."""
    from tidrec.fit import FitConfig

    settings = {
        "run": run,
        "model": model,
        "max_len": 12,
        "d_model": 32,
        "num_layers": 1,
        "num_heads": 2,
        "dropout": 0.1,
        "lr": 5e-3,
        "batch_size": 32,
        "max_epochs": 30,
        "patience": 30,
        "progress": False,
        "device": "cpu",
        "seed": 0,
        **overrides,
    }
    return FitConfig(**settings)
