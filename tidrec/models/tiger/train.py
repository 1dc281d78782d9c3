"""Training the generative model: data pipeline, Lightning module wiring and the summary table.

Each training example is one (user, position t >= 1) of a training sequence: the model reads the
SIDs of the items before t (and, when the config has user tokens, a hashed user token) and learns
to emit the SID of item t. Validation decodes with the trie-constrained beam search and reports
Recall/NDCG@10; the best checkpoint on NDCG@10 is kept in ``<run>/models/tiger/``.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler

from tidrec.data.dataset import Dataset, Split
from tidrec.errors import InputError
from tidrec.model import ModelConfig, TigerModule, decoder_labels, encoder_inputs
from tidrec.training import finish_fit, make_trainer, resume_checkpoint, validation_split
from tidrec.vocab import Vocab
from tokenizer.sid_table import SidTable

if TYPE_CHECKING:
    from tidrec.fit import FitConfig


def model_config(config: FitConfig) -> ModelConfig:
    """The network a resolved config describes."""
    return ModelConfig(
        d_model=config.d_model,
        num_layers=config.num_layers,
        num_decoder_layers=config.num_decoder_layers or config.num_layers,
        num_heads=config.num_heads,
        d_kv=config.d_kv,
        d_ff=config.d_ff,
        dropout=config.dropout,
        max_items=config.max_items,
        user_buckets=config.user_buckets,
    )


class PositionSampler(Sampler[int]):
    """Each epoch, up to ``per_user`` random positions of every user, in shuffled order.

    Example ``j`` predicts ``sequences[user[j]][pos[j]]`` from the items before it. With
    ``per_user == 0`` every example is used once per epoch.
    """

    def __init__(self, example_users: np.ndarray, *, per_user: int, seed: int) -> None:
        self.example_users = example_users
        self.per_user = per_user
        self.seed = seed
        self.epoch = 0
        counts = np.bincount(example_users) if len(example_users) else np.zeros(0, dtype=np.int64)
        self._length = int(np.minimum(counts, per_user).sum()) if per_user else len(example_users)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self._length

    def __iter__(self) -> Iterator[int]:
        rng = np.random.default_rng([self.seed, self.epoch])
        self.epoch += 1  # a new draw next time even when nobody calls set_epoch
        chosen = np.arange(len(self.example_users))
        if self.per_user:
            keys = rng.random(len(chosen))
            order = np.lexsort((keys, self.example_users))  # grouped by user, random within
            starts = np.searchsorted(self.example_users[order], self.example_users[order], side="left")
            chosen = order[np.arange(len(order)) - starts < self.per_user]
        return iter(rng.permutation(chosen).tolist())


@dataclass(frozen=True)
class Collator:
    """Turns example or validation rows into encoder inputs and decoder labels."""

    vocab: Vocab
    sid_tokens: np.ndarray
    """(I, L) SID token ids."""
    user_ids: np.ndarray
    """(U,) the dataset's user ids."""
    max_items: int

    def batch(self, users: np.ndarray, histories: Sequence[np.ndarray], targets: np.ndarray) -> dict:
        input_ids, attention_mask = encoder_inputs(
            self.vocab, self.sid_tokens, histories, self.user_ids[users].tolist(), self.max_items
        )
        return {
            "input_ids": input_ids,  # (B, S)
            "attention_mask": attention_mask,  # (B, S)
            "labels": decoder_labels(self.sid_tokens, targets),  # (B, L+1)
            "targets": np.asarray(targets, dtype=np.int64),  # (B,)
        }


class NextItemExamples(torch.utils.data.Dataset):
    """Every (user, position t >= 1) of the training sequences: predict item t from items < t."""

    def __init__(self, sequences: Sequence[np.ndarray], collator: Collator) -> None:
        lengths = np.array([max(0, len(s) - 1) for s in sequences], dtype=np.int64)
        self.sequences = sequences
        self.collator = collator
        self.users = np.repeat(np.arange(len(sequences), dtype=np.int64), lengths)  # (N,)
        starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
        self.positions = np.arange(len(self.users), dtype=np.int64) - starts + 1  # (N,) t in 1..len-1

    def __len__(self) -> int:
        return len(self.users)

    def __getitem__(self, index: int) -> tuple[int, int]:
        return index

    def collate(self, indices: list[int]) -> dict:
        rows = np.asarray(indices, dtype=np.int64)
        users, positions = self.users[rows], self.positions[rows]
        histories = [self.sequences[u][:t] for u, t in zip(users, positions, strict=True)]
        targets = np.array(
            [self.sequences[u][t] for u, t in zip(users, positions, strict=True)], dtype=np.int64
        )
        return self.collator.batch(users, histories, targets)


class SplitRows(torch.utils.data.Dataset):
    """The rows of a leave-one-out split, collated into encoder inputs and targets."""

    def __init__(self, split: Split, collator: Collator) -> None:
        self.split = split
        self.collator = collator

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, index: int) -> int:
        return index

    def collate(self, indices: list[int]) -> dict:
        part = self.split.subset(np.asarray(indices, dtype=np.int64))
        return self.collator.batch(part.users, part.histories, part.targets)


def data_loaders(
    config: FitConfig, dataset: Dataset, collator: Collator, per_user: int
) -> tuple[DataLoader, DataLoader]:
    """Training loader over sampled positions and validation loader over the valid split."""
    examples = NextItemExamples(dataset.train_sequences(), collator)
    if len(examples) == 0:
        raise InputError(f"dataset {dataset.name!r}: no training examples (every train sequence is one item)")
    sampler = PositionSampler(examples.users, per_user=per_user, seed=config.seed)
    train = DataLoader(
        examples,
        batch_size=config.batch_size,
        sampler=sampler,
        collate_fn=examples.collate,
        num_workers=config.num_workers,
    )
    rows = SplitRows(validation_split(dataset, config), collator)
    val = DataLoader(
        rows, batch_size=config.eval_batch_size, collate_fn=rows.collate, num_workers=config.num_workers
    )
    return train, val


def load_sids(run: Path, dataset: Dataset) -> SidTable:
    """The run's SID table, checked against its dataset.

    Raises:
        InputError: the table is missing, or was built for different data.
    """
    sids_path = run / "tokenizer" / "sids.parquet"
    sids = SidTable.load(sids_path)
    if sids.num_items != dataset.num_items:
        raise InputError(f"{sids_path}: {sids.num_items} items, but {run / 'data'} has {dataset.num_items}")
    if sids.dataset_hash and sids.dataset_hash != dataset.content_hash:
        raise InputError(
            f"{sids_path}: built for dataset {sids.dataset_hash[:12]}, but {run / 'data'} is "
            f"{dataset.content_hash[:12]}; re-run python -m tidrec.tokenize"
        )
    return sids


def fit_tiger(config: FitConfig, dataset: Dataset, sids: SidTable) -> Path:
    """Train the generative model of a resolved config on the run's data and SIDs; return best.ckpt."""
    out_dir = config.run / "models" / config.model
    L.seed_everything(config.seed, verbose=False)
    model_cfg = model_config(config)
    per_user = config.positions_per_user
    module = TigerModule(
        model_cfg,
        sids,
        lr=config.lr,
        weight_decay=config.weight_decay,
        warmup=config.warmup,
        beam_size=config.beam_size,
        dataset_hash=dataset.content_hash,
        budget_minutes=config.max_time,
    )
    collator = Collator(module.vocab, module.sid_tokens, np.asarray(dataset.user_ids), model_cfg.max_items)
    train, val = data_loaders(config, dataset, collator, per_user)
    checkpoint = resume_checkpoint(
        config,
        out_dir,
        model="tiger",
        dataset_hash=dataset.content_hash,
        data_path=config.run / "data",
        sid_hash=module.sid_hash,
        sids_path=config.run / "tokenizer" / "sids.parquet",
        model_config=dataclasses.asdict(model_cfg),
    )
    trainer = make_trainer(config, out_dir, resume_from=checkpoint)
    start = time.perf_counter()
    trainer.fit(module, train, val, ckpt_path=checkpoint)
    seconds = time.perf_counter() - start
    best = out_dir / "best.ckpt"
    finish_fit(trainer, config, out_dir, seconds, preset=config.preset)
    if trainer.is_global_zero:
        _print_summary(config, model_cfg, module, trainer, per_user, len(train.sampler), seconds, best)
    return best


def _print_summary(config, model_cfg, module, trainer, per_user, examples, seconds, best) -> None:
    callback = trainer.checkpoint_callback
    score = callback.best_model_score if callback is not None else None
    params = sum(p.numel() for p in module.model.parameters())
    rows = [
        ("preset", config.preset),
        ("parameters", f"{params / 1e6:.2f}M"),
        (
            "layers enc+dec / d_model / heads x d_kv / d_ff",
            f"{model_cfg.num_layers}+{model_cfg.num_decoder_layers} / "
            f"{model_cfg.d_model} / {model_cfg.num_heads}x{model_cfg.d_kv} / {model_cfg.d_ff}",
        ),
        ("history items", model_cfg.max_items),
        ("peak learning rate / batch", f"{module.lr:g} / {config.batch_size}"),
        ("dropout / user tokens", f"{model_cfg.dropout:g} / {model_cfg.user_buckets}"),
        ("examples per epoch", f"{examples} ({'all positions' if not per_user else f'{per_user} per user'})"),
        ("epochs run", trainer.current_epoch),
        ("best val/ndcg@10", f"{float(score):.4f}" if score is not None else "-"),
        ("training time", f"{seconds / 60:.1f} min"),
        ("best checkpoint", best),
    ]
    width = max(len(name) for name, _ in rows)
    print("\n".join(f"{name:<{width}}  {value}" for name, value in rows))
