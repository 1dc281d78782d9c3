"""``python -m tidrec.fit --run runs/ml-100k [--model tiger]``: train a model of a run folder.

The generative model (``--model tiger``) learns, from every position ``t >= 1`` of each user's
training sequence, to emit the SID of item ``t`` given the user token and the SIDs of the items
before it. Validation decodes with the trie-constrained beam search and reports Recall/NDCG@10;
the best checkpoint on NDCG@10 is kept. Other ``--model`` names go to ``tidrec.baselines``.
Everything lands in ``<run>/models/<model>/``: best.ckpt, last.ckpt, metrics.csv, curves.png.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler

from tidrec.cli import check_range
from tidrec.cli import run as run_cli
from tidrec.data.dataset import Dataset, Split, load_dataset
from tidrec.errors import ConfigError, InputError
from tidrec.model import ModelConfig, TigerModule, cpu_model, decoder_labels, encoder_inputs, tiger_model
from tidrec.training import (
    TrainConfig,
    make_trainer,
    plot_curves,
    record_training,
    resume_checkpoint,
    timer_seconds,
    uses_gpu,
)
from tidrec.vocab import Vocab
from tokenizer.sid_table import SidTable

MODELS = ("tiger", "sasrec", "sasrec-bce", "bert4rec", "llm2sasrec", "llm2bert4rec", "llmseqsim", "pop")
"""Names ``--model`` accepts; all but tiger are trained by ``tidrec.baselines.fit_baseline``."""

CPU_POSITIONS_PER_USER = 24
"""The CPU preset's training positions sampled per user per epoch (fresh ones each epoch)."""
CPU_LR = 5e-3
"""The CPU preset's peak learning rate (ML-100K, 5-minute budget: 5e-3 beat 1e-2 and the old 3e-3;
see experiments/results/cpu_preset_tuning.md)."""
TIGER_LR = 1e-3
"""The tiger preset's peak learning rate."""
CPU_BATCH_SIZE = 64
"""The CPU preset's training batch: 4x the updates of 256 in the same time (examples per second
barely change on a CPU), which a budget-capped run needs more than a smoother gradient."""
TIGER_BATCH_SIZE = 256
"""The tiger preset's training batch."""


BASELINE_ONLY = ("max_len", "loss", "windows", "lr_plateau_patience", "lr_plateau_factor")
"""FitConfig fields that only the SASRec/BERT4Rec baselines read."""


@dataclass(frozen=True, kw_only=True)
class FitConfig(TrainConfig):
    """Options of ``python -m tidrec.fit``; size fields left None take the preset's value."""

    run: Path
    """Run folder (holds data/ and tokenizer/; the model goes to models/<model>/)."""
    model: Literal[
        "tiger", "sasrec", "sasrec-bce", "bert4rec", "llm2sasrec", "llm2bert4rec", "llmseqsim", "pop"
    ] = "tiger"
    """Which model to train."""
    preset: Literal["auto", "cpu", "tiger"] = "auto"
    """Model size: tiger (paper size, for GPUs), cpu (smaller, sampled positions), auto (tiger on GPU)."""
    lr: float | None = None
    """Peak AdamW learning rate (preset: 5e-3 for cpu, 1e-3 for tiger; baselines: their own)."""
    batch_size: int | None = None
    """Training examples per optimisation step (preset: 64 cpu, 256 tiger; baselines: their own)."""
    d_model: int | None = None
    """Hidden size (preset: 128)."""
    num_layers: int | None = None
    """Layers (for tiger: encoder layers and decoder layers each; preset: 4 tiger, 2 cpu)."""
    num_heads: int | None = None
    """Attention heads (preset: 6 of 64 for tiger, 4 of 32 for cpu)."""
    d_ff: int | None = None
    """Feed-forward inner size (preset: 1024 tiger, 512 cpu)."""
    dropout: float | None = None
    """Dropout rate (preset: 0.1 tiger, 0 cpu)."""
    max_items: int | None = None
    """History items the generative model reads (preset: 20 tiger, 10 cpu)."""
    max_len: int | None = None
    """Sequence length of the SASRec/BERT4Rec baselines (their preset when None)."""
    loss: str | None = None
    """Loss of a baseline that offers several (its preset when None)."""
    windows: Literal["last", "random"] | None = None
    """SASRec/BERT4Rec training window per user and epoch: last (the most recent max-len items,
    the preset) or random (a full-length stretch ending anywhere, so long histories are used whole)."""
    lr_plateau_patience: int | None = None
    """SASRec/BERT4Rec: validations without NDCG@10 improvement tolerated before the rate is cut;
    0: a constant rate (preset: 2 for the SASRec types, constant for the BERT4Rec types)."""
    lr_plateau_factor: float | None = None
    """SASRec/BERT4Rec: what the rate is multiplied by at each cut (preset: 0.3)."""
    user_buckets: int | None = None
    """Hashed user tokens of the generative model, 0 for none (preset: 2000 tiger, 0 cpu)."""
    positions_per_user: int | None = None
    """Training positions sampled per user per epoch; 0: all (preset: all for tiger, 24 for cpu)."""
    beam_size: int = 20
    """Beams for validation decoding."""
    val_users: int | None = None
    """Validate on a fixed random sample of this many users (None: all)."""
    eval_batch_size: int = 256
    """Users per validation batch."""

    def __post_init__(self) -> None:
        super().__post_init__()
        names = (
            "d_model",
            "num_layers",
            "num_heads",
            "d_ff",
            "max_items",
            "max_len",
            "val_users",
            "batch_size",
        )
        for name in (*names, "eval_batch_size"):
            check_range(f"--{name.replace('_', '-')}", getattr(self, name), at_least=1)
        check_range("--lr-plateau-factor", self.lr_plateau_factor, above=0, below=1)
        check_range("--dropout", self.dropout, at_least=0, below=1)
        for name in ("positions_per_user", "user_buckets", "lr_plateau_patience"):
            check_range(f"--{name.replace('_', '-')}", getattr(self, name), at_least=0)
        if self.beam_size < 10:
            raise ConfigError(f"--beam-size must be >= 10 (validation reports NDCG@10), got {self.beam_size}")

    @property
    def resolved_preset(self) -> Literal["cpu", "tiger"]:
        if self.preset != "auto":
            return self.preset
        return "tiger" if uses_gpu(self) else "cpu"


def model_config(config: FitConfig) -> ModelConfig:
    """The preset's model, with every size field the user set applied on top."""
    base = tiger_model() if config.resolved_preset == "tiger" else cpu_model()
    overrides = {
        "d_model": config.d_model,
        "num_layers": config.num_layers,
        "num_decoder_layers": config.num_layers,
        "num_heads": config.num_heads,
        "d_ff": config.d_ff,
        "dropout": config.dropout,
        "max_items": config.max_items,
    }
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if config.num_heads is not None or config.d_model is not None:
        # heads x d_kv = d_model when --d-model is given, else the preset's attention width
        width = base.num_heads * base.d_kv if config.d_model is None else overrides["d_model"]
        overrides["d_kv"] = max(1, width // overrides.get("num_heads", base.num_heads))
    if config.user_buckets is not None:
        overrides["user_buckets"] = config.user_buckets
    return dataclasses.replace(base, **overrides)


def learning_rate(config: FitConfig) -> float:
    """The peak learning rate: the user's, else the preset's (the small CPU model takes a larger one)."""
    if config.lr is not None:
        return config.lr
    return TIGER_LR if config.resolved_preset == "tiger" else CPU_LR


def batch_size(config: FitConfig) -> int:
    """Training examples per step: the user's, else the preset's (smaller steps for the CPU preset)."""
    if config.batch_size is not None:
        return config.batch_size
    return TIGER_BATCH_SIZE if config.resolved_preset == "tiger" else CPU_BATCH_SIZE


def positions_per_user(config: FitConfig) -> int:
    """Positions sampled per user per epoch; 0 means every position."""
    if config.positions_per_user is not None:
        return config.positions_per_user
    return 0 if config.resolved_preset == "tiger" else CPU_POSITIONS_PER_USER


# ----------------------------------------------------------------------------- training data


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
        batch_size=batch_size(config),
        sampler=sampler,
        collate_fn=examples.collate,
        num_workers=config.num_workers,
    )
    valid = dataset.split("valid")
    if config.val_users is not None and config.val_users < len(valid):
        rows = np.sort(np.random.default_rng(config.seed).choice(len(valid), config.val_users, replace=False))
        valid = valid.subset(rows)
    rows = SplitRows(valid, collator)
    val = DataLoader(
        rows, batch_size=config.eval_batch_size, collate_fn=rows.collate, num_workers=config.num_workers
    )
    return train, val


# ----------------------------------------------------------------------------- the stage


def load_run_inputs(run: Path) -> tuple[Dataset, SidTable]:
    """The run's dataset and SID table, checked against each other.

    Raises:
        InputError: either is missing, or the SIDs were built for different data.
    """
    dataset = load_dataset(run / "data")
    sids_path = run / "tokenizer" / "sids.parquet"
    sids = SidTable.load(sids_path)
    if sids.num_items != dataset.num_items:
        raise InputError(f"{sids_path}: {sids.num_items} items, but {run / 'data'} has {dataset.num_items}")
    if sids.dataset_hash and sids.dataset_hash != dataset.content_hash:
        raise InputError(
            f"{sids_path}: built for dataset {sids.dataset_hash[:12]}, but {run / 'data'} is "
            f"{dataset.content_hash[:12]}; re-run python -m tidrec.tokenize"
        )
    return dataset, sids


def fit(config: FitConfig) -> Path:
    """Train the model ``config.model`` on the run folder's data; return its best checkpoint/artifact."""
    out_dir = config.run / "models" / config.model
    if config.model != "tiger":
        from tidrec.baselines import fit_baseline

        return fit_baseline(config, load_dataset(config.run / "data"), out_dir)
    given = [f"--{name.replace('_', '-')}" for name in BASELINE_ONLY if getattr(config, name) is not None]
    if given:
        raise ConfigError(f"{', '.join(given)}: options of the SASRec/BERT4Rec baselines, not of tiger")
    dataset, sids = load_run_inputs(config.run)
    L.seed_everything(config.seed, verbose=False)
    model_cfg = model_config(config)
    per_user = positions_per_user(config)
    module = TigerModule(
        model_cfg,
        sids,
        lr=learning_rate(config),
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
    if (out_dir / "metrics.csv").exists():
        plot_curves(out_dir / "metrics.csv", out_dir / "curves.png")
    if trainer.is_global_zero:
        score = trainer.checkpoint_callback.best_model_score if trainer.checkpoint_callback else None
        record_training(
            out_dir,
            config.model,
            seconds,
            resumed=config.resume,
            timer_seconds=timer_seconds(trainer),
            preset=config.resolved_preset,
            epochs=trainer.current_epoch,
            best_val_ndcg10=float(score) if score is not None else None,
        )
        _print_summary(config, model_cfg, module, trainer, per_user, len(train.sampler), seconds, best)
    return best


def _print_summary(config, model_cfg, module, trainer, per_user, examples, seconds, best) -> None:
    callback = trainer.checkpoint_callback
    score = callback.best_model_score if callback is not None else None
    params = sum(p.numel() for p in module.model.parameters())
    rows = [
        ("preset", config.resolved_preset),
        ("parameters", f"{params / 1e6:.2f}M"),
        (
            "layers enc+dec / d_model / heads x d_kv / d_ff",
            f"{model_cfg.num_layers}+{model_cfg.num_decoder_layers} / "
            f"{model_cfg.d_model} / {model_cfg.num_heads}x{model_cfg.d_kv} / {model_cfg.d_ff}",
        ),
        ("history items", model_cfg.max_items),
        ("peak learning rate / batch", f"{module.lr:g} / {batch_size(config)}"),
        ("dropout / user tokens", f"{model_cfg.dropout:g} / {model_cfg.user_buckets}"),
        ("examples per epoch", f"{examples} ({'all positions' if not per_user else f'{per_user} per user'})"),
        ("epochs run", trainer.current_epoch),
        ("best val/ndcg@10", f"{float(score):.4f}" if score is not None else "-"),
        ("training time", f"{seconds / 60:.1f} min"),
        ("best checkpoint", best),
    ]
    width = max(len(name) for name, _ in rows)
    print("\n".join(f"{name:<{width}}  {value}" for name, value in rows))


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(
        FitConfig,
        fit,
        argv,
        prog="python -m tidrec.fit",
        description="Train the generative model (or a baseline) on a run folder's data and SIDs.",
    )


if __name__ == "__main__":
    raise SystemExit(main())
