"""Training and inference shared by the item-id sequence models (SASRec, BERT4Rec and their LLM2 twins).

A model satisfies :class:`SequenceModel`; :class:`SequenceModule` trains it with Lightning and
validates by full-catalogue NDCG@10 on the validation split; :class:`SequenceRecommender` serves it.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol

import lightning as L
import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from tidrec.artifacts import CHECKPOINT_KEY
from tidrec.baselines.bert4rec import BERT4Rec, BERT4RecConfig
from tidrec.baselines.ranking import exclusion_mask, top_k_items
from tidrec.baselines.sasrec import SASRec, SASRecConfig, left_pad
from tidrec.data.dataset import Split


class SequenceModel(Protocol):
    """What training and serving need from an item-id sequence model."""

    train_width_extra: int
    """Training windows hold ``max_len + train_width_extra`` items."""

    def inference_tokens(self, histories: list[np.ndarray]) -> torch.Tensor:
        """(B, L) input tokens for scoring the item after each history."""
        ...

    def next_item_scores(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, L) tokens -> (B, I) scores."""
        ...

    def loss(self, windows: torch.Tensor) -> torch.Tensor:
        """Scalar training loss on (B, W) left-padded item tokens."""
        ...


ARCHITECTURES = {"sasrec": (SASRec, SASRecConfig), "bert4rec": (BERT4Rec, BERT4RecConfig)}
"""Architecture name -> (module class, config class)."""


def build_model(architecture: str, config: dict[str, Any]) -> nn.Module:
    """Instantiate ``architecture`` ("sasrec" or "bert4rec") from its config fields."""
    module_cls, config_cls = ARCHITECTURES[architecture]
    return module_cls(config_cls(**config))


def ndcg_recall_at(
    scores: torch.Tensor, targets: torch.Tensor, k: int = 10
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-row NDCG@k and Recall@k of one target each, ranking the whole catalogue.

    Args:
        scores: (B, I) scores; excluded items hold -inf (a target scored -inf counts as a miss).
        targets: (B,) item_idx.

    Returns:
        Two (B,) float tensors.
    """
    target_scores = scores.gather(1, targets.unsqueeze(1))  # (B, 1)
    rank = (scores > target_scores).sum(dim=1)  # (B,) 0-based; ties count in the target's favour
    hit = (rank < k) & torch.isfinite(target_scores.squeeze(1))
    ndcg = torch.where(hit, 1.0 / torch.log2(rank.float() + 2.0), torch.zeros_like(rank, dtype=torch.float))
    return ndcg, hit.float()


class WindowData(torch.utils.data.Dataset):
    """One left-padded window of tokens per user (users with fewer than ``min_items`` are skipped).

    ``windows="last"`` gives each user's most recent ``width`` training items every epoch (the
    standard). ``"random"`` gives a history longer than ``width`` a full window ending at a random
    position each time it is drawn, so items older than the last ``width`` are trained on too.
    """

    def __init__(
        self, sequences: list[np.ndarray], width: int, min_items: int, *, windows: str = "last"
    ) -> None:
        if windows not in ("last", "random"):
            raise ValueError(f"windows must be 'last' or 'random', got {windows!r}")
        self.sequences = [s for s in sequences if len(s) >= min_items]
        self.width, self.windows = width, windows
        self.last = left_pad(self.sequences, width)  # (U', W)

    def __len__(self) -> int:
        return len(self.sequences)

    def __getitem__(self, index: int) -> torch.Tensor:
        sequence = self.sequences[index]
        if self.windows == "last" or len(sequence) <= self.width:
            return self.last[index]
        end = int(torch.randint(self.width, len(sequence) + 1, ()))  # global RNG: seeded by Lightning
        return left_pad([sequence[end - self.width : end]], self.width)[0]  # (W,)


class SplitData(torch.utils.data.Dataset):
    """Rows of a leave-one-out split; batches carry model inputs, exclusion masks and targets."""

    def __init__(self, split: Split, model: SequenceModel, num_items: int) -> None:
        self.split, self.model, self.num_items = split, model, num_items

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, index: int) -> int:
        return index

    def collate(self, rows: list[int]) -> dict[str, torch.Tensor]:
        histories = [self.split.histories[i] for i in rows]
        return {
            "tokens": self.model.inference_tokens(histories),  # (B, L)
            "seen": exclusion_mask(histories, self.num_items),  # (B, I)
            "targets": torch.from_numpy(self.split.targets[rows]),  # (B,)
        }


class SequenceModule(L.LightningModule):
    """Lightning wrapper: trains by the model's own loss, validates by full-ranking NDCG@10.

    Each checkpoint records the architecture, model config, model name and dataset hash as plain
    data under ``checkpoint["tidrec"]``, so :func:`tidrec.baselines.train.load_sequence_recommender`
    rebuilds the model from a weights-only load of the file alone.
    """

    def __init__(
        self,
        *,
        architecture: str,
        config: dict[str, Any],
        model_name: str,
        dataset_hash: str,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        lr_plateau_patience: int | None = None,
        lr_plateau_factor: float = 0.3,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.model = build_model(architecture, config)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[CHECKPOINT_KEY] = {
            "kind": "sequence",
            "architecture": self.hparams.architecture,
            "config": dict(self.hparams.config),
            "model_name": self.hparams.model_name,
            "dataset_hash": self.hparams.dataset_hash,
        }

    def training_step(self, windows: torch.Tensor, batch_idx: int) -> torch.Tensor:
        loss = self.model.loss(windows)
        self.log("train/loss", loss, prog_bar=True, batch_size=len(windows))
        self.log("train/lr", self.optimizers().param_groups[0]["lr"], batch_size=len(windows))
        return loss

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        scores = self.model.next_item_scores(batch["tokens"])  # (B, I)
        scores = scores.masked_fill(batch["seen"], float("-inf"))
        ndcg, recall = ndcg_recall_at(scores, batch["targets"], k=10)
        size = len(ndcg)
        self.log("val/ndcg@10", ndcg.mean(), prog_bar=True, batch_size=size, sync_dist=True)
        self.log("val/recall@10", recall.mean(), batch_size=size, sync_dist=True)

    def configure_optimizers(self) -> torch.optim.Optimizer | dict[str, Any]:
        """AdamW; with ``lr_plateau_patience`` set, the rate shrinks when validation NDCG@10 stalls."""
        optimizer = torch.optim.AdamW(
            self.parameters(), lr=self.hparams.lr, betas=(0.9, 0.98), weight_decay=self.hparams.weight_decay
        )
        patience = self.hparams.get("lr_plateau_patience")
        if patience is None:
            return optimizer
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer,
            mode="max",
            factor=self.hparams.get("lr_plateau_factor", 0.3),
            patience=patience,
            min_lr=self.hparams.lr / 100,
        )
        # Not strict: a run stopped by its time cap mid-epoch has no validation score to step on.
        monitor = {"scheduler": scheduler, "monitor": "val/ndcg@10", "interval": "epoch", "strict": False}
        return {"optimizer": optimizer, "lr_scheduler": monitor}


def train_loader(
    module: SequenceModule,
    sequences: list[np.ndarray],
    *,
    batch_size: int,
    seed: int,
    windows: str = "last",
) -> DataLoader:
    """Shuffled windows of the users' training sequences (users with too few items are skipped)."""
    model = module.model
    width = model.config.max_len + model.train_width_extra
    data = WindowData(sequences, width, min_items=1 + model.train_width_extra, windows=windows)
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(data, batch_size=batch_size, shuffle=True, generator=generator)


def split_loader(
    module: SequenceModule, split: Split, num_items: int, *, batch_size: int = 256
) -> DataLoader:
    """Ordered batches of a split for validation."""
    data = SplitData(split, module.model, num_items)
    return DataLoader(data, batch_size=batch_size, shuffle=False, collate_fn=data.collate)


class SequenceRecommender:
    """A trained sequence model behind the :class:`~tidrec.evaluate.Recommender` protocol."""

    def __init__(
        self, model: nn.Module, *, batch_size: int = 256, device: str | torch.device = "cpu"
    ) -> None:
        self.model = model.eval().to(device)
        self.batch_size = batch_size
        self.device = torch.device(device)

    @torch.no_grad()
    def scores(self, histories: list[np.ndarray]) -> torch.Tensor:
        """(B, I) next-item scores for each history."""
        tokens = self.model.inference_tokens(histories).to(self.device)
        return self.model.next_item_scores(tokens).float().cpu()

    def recommend(self, split: Split, *, k: int, exclude_history: bool) -> np.ndarray:
        """(B, k) item_idx by descending score over the whole catalogue; -1 pad."""
        out = []
        for start in range(0, len(split), self.batch_size):
            histories = split.histories[start : start + self.batch_size]
            out.append(top_k_items(self.scores(histories), histories, k=k, exclude_history=exclude_history))
        return np.concatenate(out) if out else np.zeros((0, k), dtype=np.int64)


def config_dict(config: SASRecConfig | BERT4RecConfig) -> dict[str, Any]:
    """A model config as the plain dict stored in checkpoints."""
    return dataclasses.asdict(config)
