"""Fit a sequence baseline with the shared Lightning trainer, and load it back from its checkpoint."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch

from tidrec.artifacts import check_checkpoint, checkpoint_record, read_checkpoint
from tidrec.baselines.pca import init_item_table
from tidrec.baselines.presets import SequencePreset
from tidrec.baselines.sequential import (
    SequenceModule,
    SequenceRecommender,
    build_model,
    split_loader,
    train_loader,
)
from tidrec.data.dataset import Dataset
from tidrec.errors import InputError


def train_sequence_model(
    preset: SequencePreset,
    train_config: Any,
    dataset: Dataset,
    out_dir: Path,
    embeddings: np.ndarray | None = None,
) -> tuple[Path, dict[str, Any]]:
    """Train ``preset`` on the dataset's training sequences, early-stopping on validation NDCG@10.

    Args:
        preset: architecture and hyperparameters (already merged with the user's options).
        train_config: the resolved ``FitConfig`` the preset was built from (``make_trainer``
            reads its epochs, patience, hardware and logging).
        dataset: the prepared dataset.
        out_dir: model folder; receives best.ckpt, last.ckpt, metrics.csv, curves.png.
        embeddings: (I, E) item text embeddings, required when ``preset.text_init``.

    Returns:
        The best checkpoint and a summary (epochs run, best validation NDCG@10, PCA scale, and the
        ``--max-time`` timer's seconds for :func:`~tidrec.training.record_training`).
    """
    from tidrec.training import make_trainer, plot_curves, resume_checkpoint, timer_seconds, validation_split

    L.seed_everything(preset.seed, verbose=False)
    module = SequenceModule(
        architecture=preset.architecture,
        config=preset.model_config(dataset.num_items),
        model_name=preset.name,
        dataset_hash=dataset.content_hash,
        lr=preset.lr,
        weight_decay=train_config.weight_decay,
        lr_plateau_patience=preset.lr_plateau_patience,
        lr_plateau_factor=preset.lr_plateau_factor,
    )
    info: dict[str, Any] = {"preset": dataclasses.asdict(preset)}
    if preset.text_init:
        if embeddings is None:
            raise ValueError(f"{preset.name} needs item text embeddings for its PCA initialisation")
        info["pca_scale"] = init_item_table(module.model.item_table, embeddings)
    checkpoint = resume_checkpoint(
        train_config,
        out_dir,
        model=preset.name,
        dataset_hash=dataset.content_hash,
        data_path=f"dataset {dataset.name!r}",
        model_config=dict(module.hparams.config),
    )
    trainer = make_trainer(train_config, out_dir, resume_from=checkpoint, monitor="val/ndcg@10")
    trainer.fit(
        module,
        train_dataloaders=train_loader(
            module,
            dataset.train_sequences(),
            batch_size=preset.batch_size,
            seed=preset.seed,
            windows=preset.windows,
        ),
        val_dataloaders=split_loader(module, validation_split(dataset, train_config), dataset.num_items),
        ckpt_path=checkpoint,
    )
    best = out_dir / "best.ckpt"
    if trainer.is_global_zero and (out_dir / "metrics.csv").is_file():  # one writer under DDP
        plot_curves(out_dir / "metrics.csv", out_dir / "curves.png")
    score = trainer.checkpoint_callback.best_model_score if trainer.checkpoint_callback else None
    info.update(
        epochs=trainer.current_epoch,
        best_val_ndcg10=float(score) if score is not None else None,
        timer_seconds=timer_seconds(trainer),
    )
    return best, info


def load_sequence_recommender(path: Path, dataset: Dataset, *, device: str = "cpu") -> SequenceRecommender:
    """A :class:`SequenceRecommender` from a checkpoint written by :func:`train_sequence_model`.

    The file is read weights-only; the model is rebuilt from the plain-data record it carries.

    Raises:
        InputError: the file is not such a checkpoint, or it was trained on another dataset.
    """
    checkpoint = read_checkpoint(path)
    record = checkpoint_record(checkpoint, path)
    if record.kind != "sequence":
        raise InputError(f"{path}: a {record.model_name} checkpoint, not a sequence baseline's")
    check_checkpoint(record, dataset_hash=dataset.content_hash, data_path=f"dataset {dataset.name!r}")
    config = record.entry["config"]
    if not isinstance(config, dict) or config.get("num_items") != dataset.num_items:
        scored = config.get("num_items") if isinstance(config, dict) else None
        raise InputError(f"{path}: model scores {scored} items, dataset has {dataset.num_items}")
    try:
        model = build_model(record.entry["architecture"], config)
        state = {k.removeprefix("model."): v for k, v in checkpoint["state_dict"].items()}
        model.load_state_dict(state)
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as error:
        reason = str(error).splitlines()[0][:120] if str(error) else type(error).__name__
        raise InputError(f"{path}: the model in this checkpoint does not load ({reason})") from None
    return SequenceRecommender(model, device=torch.device(device))
