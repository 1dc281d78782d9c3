"""A tiny run folder for the generative model's tests: a cyclic catalogue where the next item is known.

Twelve items with SIDs ``(i // 4, i % 4)``; each user walks the cycle ``s, s+1, s+2, ...`` (mod 12),
so the true next item is always ``last + 1``, which a small model learns in a few epochs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tidrec.data.dataset import Dataset
from tokenizer.sid_table import SidTable

NUM_ITEMS = 12


def cyclic_dataset(num_users: int = 40, seed: int = 0) -> Dataset:
    """Users walking the item cycle from random starts, 5 to 9 items each."""
    rng = np.random.default_rng(seed)
    sequences = []
    for _ in range(num_users):
        start, length = rng.integers(NUM_ITEMS), rng.integers(5, 10)
        sequences.append((start + np.arange(length)) % NUM_ITEMS)
    lengths = np.array([len(s) for s in sequences])
    items = np.concatenate(sequences).astype(np.int64)
    return Dataset(
        name="cyclic",
        user_ids=np.array([f"u{u}" for u in range(num_users)]),
        item_ids=np.array([f"i{i}" for i in range(NUM_ITEMS)]),
        item_texts=[f"item {i}" for i in range(NUM_ITEMS)],
        offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        items=items,
        timestamps=np.arange(len(items), dtype=np.int64),
    )


def cyclic_sids(dataset: Dataset) -> SidTable:
    """SIDs (i // 4, i % 4): three first-level codes of four items each."""
    codes = np.stack([np.arange(NUM_ITEMS) // 4, np.arange(NUM_ITEMS) % 4], axis=1).astype(np.int64)
    return SidTable(
        item_ids=dataset.item_ids, codes=codes, level_sizes=(3, 4), dataset_hash=dataset.content_hash
    )


def make_run(folder: Path, num_users: int = 40) -> tuple[Dataset, SidTable]:
    """Write data/ and tokenizer/sids.parquet of a cyclic run into ``folder``."""
    dataset = cyclic_dataset(num_users)
    sids = cyclic_sids(dataset)
    dataset.save(folder / "data")
    sids.save(folder / "tokenizer" / "sids.parquet")
    return dataset, sids
