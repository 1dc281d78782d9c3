"""Training and serving the one-pass generative model (:mod:`tidrec.models.tiger.onepass`).

Each training step reads a batch of users' training windows (their last ``max_items + 1`` items,
or a full-length window ending at a random position with ``--windows random``) and learns every
position's next-item SID at once. The learning rate warms up, then follows a cosine over the
planned steps (``max_epochs`` x batches per epoch), so a run's length and schedule are fixed by
its config, not by the machine's speed. Validation ranks the catalogue by trie-constrained beam
search with the user's seen items excluded (as the comparison table does) and reports NDCG@10.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader

from tidrec.artifacts import CHECKPOINT_KEY, check_checkpoint, checkpoint_record, read_checkpoint
from tidrec.baselines.sequential import WindowData
from tidrec.data.dataset import Dataset, Split
from tidrec.errors import InputError
from tidrec.metrics import ranking_metrics
from tidrec.model import warmup_cosine_adamw
from tidrec.models.tiger.onepass import (
    OnePassConfig,
    OnePassModel,
    build_onepass,
    masked_batch,
    onepass_batch,
    recommend,
)
from tidrec.training import TRAIN_INFO, finish_fit, make_trainer, resume_checkpoint, validation_split
from tidrec.vocab import Vocab
from tokenizer.sid_table import SidTable

if TYPE_CHECKING:
    from tidrec.fit import FitConfig

RECIPE = "onepass"
"""The ``recipe`` this module trains (the old one-example-per-target recipe is ``examples``)."""


def onepass_config(config: FitConfig) -> OnePassConfig:
    """The network a resolved config describes."""
    return OnePassConfig(
        d_model=config.d_model,
        num_layers=config.num_layers,
        num_decoder_layers=config.num_decoder_layers or config.num_layers,
        num_heads=config.num_heads,
        d_kv=config.d_kv,
        d_ff=config.d_ff,
        dropout=config.dropout,
        max_items=config.max_items,
        item_id_embedding=bool(config.item_id_embedding),
        recency_bias=bool(config.recency_bias),
        attention_dropout=config.attention_dropout,
        dropout_kernel=config.dropout_kernel or "torch",
        trie_softmax=bool(config.trie_softmax),
        node_embeddings=bool(config.node_embeddings),
        objective=config.objective or "next",
        mask_rate=config.mask_rate if config.mask_rate is not None else 0.2,
        masked_weight=config.masked_weight if config.masked_weight is not None else 1.0,
        item_loss=config.item_loss or 0.0,
        item_score=config.item_score or 0.0,
    )


class OnePassModule(L.LightningModule):
    """Trains every position's next-item SID in one pass; validates NDCG@10 by constrained beam search."""

    def __init__(
        self,
        config: OnePassConfig,
        sids: SidTable,
        *,
        lr: float,
        weight_decay: float,
        warmup: float,
        beam_size: int = 20,
        dataset_hash: str,
    ) -> None:
        """Args:
        config: model size and history length.
        sids: the SID table the model reads and emits (its hash goes into checkpoints).
        lr: peak AdamW learning rate.
        weight_decay: AdamW weight decay (not applied to layer norms, biases or embeddings' padding).
        warmup: fraction of all planned steps spent warming up (at most one epoch).
        beam_size: beams for validation decoding.
        dataset_hash: ``Dataset.content_hash`` of the training data.
        """
        super().__init__()
        self.config = config
        self.vocab = Vocab(level_sizes=tuple(sids.level_sizes), user_buckets=0)
        self.sid_hash = sids.content_hash()
        self.dataset_hash = dataset_hash
        self.lr, self.weight_decay, self.warmup = lr, weight_decay, warmup
        self.beam_size = max(beam_size, 10)
        self.model = build_onepass(config, self.vocab, self.vocab.sid_tokens(sids.codes))
        self._trie = None

    @property
    def trie(self):
        if self._trie is None:
            self._trie = self.model.trie()
        return self._trie

    def training_step(self, batch: dict[str, dict[str, torch.Tensor]], batch_idx: int) -> torch.Tensor:
        """``batch`` holds a ``next`` (:func:`onepass_batch`) and/or a ``masked`` (:func:`masked_batch`)
        batch of the same users, as the objective asks; their losses add (masked weighted in ``mixed``)."""
        from tidrec.models.tiger.onepass import onepass_loss

        losses = {name: onepass_loss(self.model, part) for name, part in batch.items()}
        weight = self.config.masked_weight if self.config.objective == "mixed" else 1.0
        loss = sum(value * (weight if name == "masked" else 1.0) for name, value in losses.items())
        targets = sum(int(part["attention_mask"].sum()) for part in batch.values())
        self.log(
            "train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=targets, sync_dist=True
        )
        if len(losses) > 1:
            for name, value in losses.items():
                self.log(f"train/{name}_loss", value, on_step=False, on_epoch=True, batch_size=targets)
        self.log("train/lr", self.optimizers().param_groups[0]["lr"], on_step=True, batch_size=targets)
        return loss

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        result = recommend(
            self.model,
            batch["histories"],
            beam_size=self.beam_size,
            top_k=10,
            trie=self.trie,
            exclude=batch["histories"],
        )
        ranked = np.asarray(result.item_idx.cpu())
        metrics = ranking_metrics(ranked, batch["targets"], ks=(10,))
        size = len(batch["targets"])
        for name in ("recall@10", "ndcg@10"):
            self.log(
                f"val/{name}", metrics[name], on_epoch=True, prog_bar=True, batch_size=size, sync_dist=True
            )

    def configure_optimizers(self) -> dict[str, Any]:
        return warmup_cosine_adamw(
            self.model, self.trainer, lr=self.lr, weight_decay=self.weight_decay, warmup=self.warmup
        )

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[CHECKPOINT_KEY] = {
            "kind": "tiger",
            "recipe": RECIPE,
            "model_config": dataclasses.asdict(self.config),
            "level_sizes": list(self.vocab.level_sizes),
            "sid_hash": self.sid_hash,
            "dataset_hash": self.dataset_hash,
        }


class _Windows(torch.utils.data.Dataset):
    """Each user's training window, as item_idx (WindowData holds them as item_idx + 1, 0 = padding)."""

    def __init__(self, sequences: list[np.ndarray], width: int, windows: str) -> None:
        self.data = WindowData(sequences, width, min_items=2, windows=windows)

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> np.ndarray:
        tokens = np.asarray(self.data[index])
        return tokens[tokens > 0] - 1  # left padding dropped


def _split_batch(split: Split, rows: list[int], known: int) -> dict[str, Any]:
    """Validation users; histories keep only the ``known`` items the model was built with (a
    cold-start dataset's held-out items are unknown until the SID table is extended)."""
    part = split.subset(np.asarray(rows, dtype=np.int64))
    return {"histories": [h[h < known] for h in part.histories], "targets": np.asarray(part.targets)}


def data_loaders(
    config: FitConfig, dataset: Dataset, sid_tokens: np.ndarray
) -> tuple[DataLoader, DataLoader]:
    """Shuffled training windows (seeded) and the validation split's users."""
    windows = _Windows(dataset.train_sequences(), config.max_items + 1, config.windows or "last")
    if len(windows) == 0:
        raise InputError(f"dataset {dataset.name!r}: no training sequence has two items")
    generator = torch.Generator().manual_seed(config.seed)
    masks = np.random.default_rng(config.seed)  # one stream of masks per run: a seed repeats them
    objective = config.objective or "next"
    eos = not config.trie_softmax  # under the trie softmax the EOS position's loss and gradient are 0

    def collate(rows: list[np.ndarray]) -> dict[str, dict[str, torch.Tensor]]:
        batch = {}
        if objective in ("next", "mixed"):
            batch["next"] = onepass_batch(rows, sid_tokens, config.max_items, eos=eos)
        if objective in ("masked", "mixed"):
            rate = config.mask_rate if config.mask_rate is not None else 0.2
            batch["masked"] = masked_batch(rows, sid_tokens, config.max_items, rate=rate, rng=masks, eos=eos)
        return batch

    train = DataLoader(
        windows,
        batch_size=config.batch_size,
        shuffle=True,
        generator=generator,
        collate_fn=collate,
        num_workers=config.num_workers,
    )
    valid = validation_split(dataset, config)
    val = DataLoader(
        list(range(len(valid))),
        batch_size=config.eval_batch_size,
        collate_fn=lambda rows: _split_batch(valid, rows, len(sid_tokens)),
        num_workers=config.num_workers,
    )
    return train, val


def fit_onepass(config: FitConfig, dataset: Dataset, sids: SidTable) -> Path:
    """Train the one-pass model of a resolved config; return best.ckpt.

    ``--objective pretrain`` trains in two stages, each with its own validation, early stopping and
    checkpoints: ``pretrain_epochs`` of masked items into ``models/<model>/pretrain/``, then
    ``max_epochs`` of next-item fine-tuning from that stage's best weights.
    """
    out_dir = config.run / "models" / config.model
    if config.objective != "pretrain":
        return train_stage(config, dataset, sids, out_dir)
    masked = dataclasses.replace(  # the item head is trained, and can score, from fine-tuning on
        config, objective="masked", max_epochs=config.pretrain_epochs, item_score=0.0
    )
    pretrained = train_stage(masked, dataset, sids, out_dir / "pretrain")
    info = json.loads((out_dir / "pretrain" / TRAIN_INFO).read_text())
    resume = bool(config.resume) and (out_dir / "last.ckpt").exists()
    fine_tune = dataclasses.replace(config, objective="next", resume=resume)
    return train_stage(
        fine_tune,
        dataset,
        sids,
        out_dir,
        init=None if resume else pretrained,
        pretrain_seconds=float(info["train_seconds"]),
    )


def initial_weights(model: OnePassModel, path: Path) -> None:
    """Load a pre-trained one-pass checkpoint's weights into ``model`` (the mask vector and its bias,
    which a next-item model does not have, are left out).

    Raises:
        InputError: unreadable or unsafe file, or weights that do not fit the model.
    """
    state = {k.removeprefix("model."): v for k, v in read_checkpoint(path)["state_dict"].items()}
    state = {k: v for k, v in state.items() if not k.startswith(("mask_embedding", "masked_recency"))}
    try:
        model.load_state_dict(state, strict=model.mask_embedding is None)
    except RuntimeError as error:
        reason = str(error).splitlines()[0][:120]
        raise InputError(f"{path}: pre-trained weights do not fit ({reason})") from None


def train_stage(
    config: FitConfig,
    dataset: Dataset,
    sids: SidTable,
    out_dir: Path,
    *,
    init: Path | None = None,
    pretrain_seconds: float = 0.0,
) -> Path:
    """Train one stage into ``out_dir`` (from ``init``'s weights if given); return its best.ckpt.

    ``pretrain_seconds`` (the stage before it) count in the recorded training time."""
    L.seed_everything(config.seed, verbose=False)
    net = onepass_config(config)
    module = OnePassModule(
        net,
        sids,
        lr=config.lr,
        weight_decay=config.weight_decay,
        warmup=config.warmup,
        beam_size=config.beam_size,
        dataset_hash=dataset.content_hash,
    )
    if init is not None:
        initial_weights(module.model, init)
    train, val = data_loaders(config, dataset, module.vocab.sid_tokens(sids.codes))
    checkpoint = resume_checkpoint(
        config,
        out_dir,
        model=config.model,
        dataset_hash=dataset.content_hash,
        data_path=config.run / "data",
        sid_hash=module.sid_hash,
        sids_path=config.run / "tokenizer" / "sids.parquet",
        model_config=dataclasses.asdict(net),
        config_defaults=dataclasses.asdict(OnePassConfig()),
    )
    trainer = make_trainer(config, out_dir, resume_from=checkpoint)
    start = time.perf_counter()
    trainer.fit(module, train, val, ckpt_path=checkpoint)
    seconds = time.perf_counter() - start + pretrain_seconds
    extra = {"pretrain_seconds": round(pretrain_seconds, 2)} if pretrain_seconds else {}
    score = finish_fit(
        trainer,
        config,
        out_dir,
        seconds,
        preset=config.preset,
        recipe=RECIPE,
        steps=trainer.global_step,
        **extra,
    )
    if trainer.is_global_zero:
        params = sum(p.numel() for p in module.model.parameters())
        best = f"{score:.4f}" if score is not None else "-"
        print(
            f"tiger ({RECIPE}, {config.preset}, {net.objective}): {params / 1e6:.2f}M parameters, "
            f"{trainer.current_epoch} epochs, {trainer.global_step} steps, best val/ndcg@10 {best}, "
            f"{seconds / 60:.1f} min"
        )
    return out_dir / "best.ckpt"


class OnePassRecommender:
    """The one-pass model behind the Recommender protocol: causal encoder, constrained beam search."""

    def __init__(
        self,
        model: OnePassModel,
        *,
        beam_size: int = 20,
        decoder: str = "beam",
        max_beam: int = 1024,
        device: torch.device | str = "cpu",
    ) -> None:
        self.model = model.eval().to(device)
        self.trie = model.trie()
        self.beam_size, self.decoder, self.max_beam = beam_size, decoder, max_beam

    def recommend(self, split: Split, *, k: int, exclude_history: bool) -> np.ndarray:
        """(B, k) item_idx by the SID's summed log-probability; -1 where fewer are reachable."""
        return self.recommend_certified(split, k=k, exclude_history=exclude_history)[0]

    @torch.no_grad()
    def recommend_certified(
        self, split: Split, *, k: int, exclude_history: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`recommend`'s lists and whether each is provably the model's best k."""
        from tidrec.model import ranked_lists

        result = recommend(
            self.model,
            list(split.histories),
            beam_size=max(self.beam_size, k) * (2 if exclude_history else 1),
            top_k=k,
            trie=self.trie,
            exclude=list(split.histories) if exclude_history else None,
            decoder=self.decoder,
            max_beam=self.max_beam,
        )
        return ranked_lists(result, len(split), k), np.asarray(result.certified.cpu())


def load_onepass(
    path: Path, *, dataset: Dataset, sids: SidTable, sids_path: Path, data_path: Path
) -> OnePassModel:
    """The one-pass model of a checkpoint, checked against the run's data and SID table.

    ``sids`` may extend the table the model was trained on (new items appended by the fitted
    tokenizer, its lineage naming that table), and ``dataset`` the data (items added since,
    ``tidrec.tokenize --add-items``): the model then serves the grown catalogue
    (:meth:`OnePassModel.extended`).

    Raises:
        InputError: unreadable or unsafe file, another model, or other data or SIDs.
    """
    checkpoint = read_checkpoint(path)
    record = checkpoint_record(checkpoint, path)
    trained = trained_table(sids, str(record.sid_hash))
    grown_from = dataset.extends(record.dataset_hash)  # the data it trained on, or grown from it
    check_checkpoint(
        record,
        dataset_hash=record.dataset_hash if grown_from else dataset.content_hash,
        data_path=data_path,
        sid_hash=trained.content_hash(),
        sids_path=sids_path,
    )
    try:
        config = OnePassConfig(**record.entry["model_config"])
        vocab = Vocab(level_sizes=tuple(record.entry["level_sizes"]), user_buckets=0)
        model = build_onepass(config, vocab, vocab.sid_tokens(trained.codes))
        state = {k.removeprefix("model."): v for k, v in checkpoint["state_dict"].items()}
        model.load_state_dict(state)
        if trained.num_items < sids.num_items:
            model = model.extended(vocab.sid_tokens(sids.codes))
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as error:
        reason = str(error).splitlines()[0][:120] if str(error) else type(error).__name__
        raise InputError(f"{path}: the model in this checkpoint does not load ({reason})") from None
    return model.eval()


def trained_table(sids: SidTable, sid_hash: str) -> SidTable:
    """The table a model trained on ``sid_hash`` knows: ``sids`` itself, or the first rows of it that
    its verified lineage says were that table; else ``sids`` (the hash check then refuses it)."""
    if sids.content_hash() == sid_hash:
        return sids
    for rows, digest in sids.lineage:
        if digest == sid_hash and rows <= sids.num_items and sids.prefix(rows).content_hash() == digest:
            return sids.prefix(rows)  # checked, not trusted: the rows hash to the recorded table
    return sids


def load_run_onepass(run: Path) -> tuple[Dataset, OnePassModel]:
    """A run folder's prepared data and its one-pass ``models/tiger/best.ckpt``, checked against both.

    Raises:
        InputError: no data, SID table or checkpoint there, or one that does not match the others.
    """
    from tidrec.data.dataset import load_dataset

    run = Path(run)
    dataset = load_dataset(run / "data")
    sids_path = run / "tokenizer" / "sids.parquet"
    model = load_onepass(
        run / "models" / "tiger" / "best.ckpt",
        dataset=dataset,
        sids=SidTable.load(sids_path),
        sids_path=sids_path,
        data_path=run / "data",
    )
    return dataset, model
