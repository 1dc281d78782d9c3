"""Lightning plumbing shared by every trained model: options, the Trainer, and the curves plot.

``make_trainer`` gives each model folder ``best.ckpt`` (best validation NDCG@10), ``last.ckpt``
(for ``--resume true``) and ``metrics.csv``; ``plot_curves`` turns the CSV into ``curves.png``.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import lightning as L
import numpy as np
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint, Timer, TQDMProgressBar
from lightning.pytorch.loggers import CSVLogger, Logger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter

from tidrec.errors import ConfigError
from tidrec.io import atomic_path, write_json

TRAIN_INFO = "train_info.json"
"""Written beside each trained artifact: model, training seconds (summed over resumes) and details."""


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """How a model is trained: optimisation, stopping, hardware, logging."""

    max_epochs: int = 50
    """Upper bound on training epochs (early stopping usually ends sooner)."""
    batch_size: int = 256
    """Training examples per optimisation step (per device)."""
    lr: float = 1e-3
    """Peak AdamW learning rate."""
    weight_decay: float = 0.01
    """AdamW weight decay."""
    warmup: float = 0.05
    """Fraction of all optimisation steps spent in linear warm-up, at most one epoch (cosine decay after)."""
    patience: int = 5
    """Validations without improvement of validation NDCG@10 before stopping."""
    seed: int = 42
    """Seed for weights, sampling and data order."""
    accelerator: Literal["auto", "cpu", "gpu"] = "auto"
    """Lightning accelerator (auto: a GPU when one exists)."""
    devices: str = "auto"
    """Devices to use: a count, or auto."""
    strategy: str = "auto"
    """Lightning strategy, e.g. ddp for several GPUs (no code change needed)."""
    precision: str | None = None
    """Lightning precision; None: bf16-mixed on GPU, 32-true on CPU."""
    logger: Literal["csv", "wandb"] = "csv"
    """Where metrics go besides metrics.csv (wandb runs offline when no WANDB_API_KEY is set)."""
    wandb_project: str = "tidrec"
    """Weights & Biases project for --logger wandb."""
    gradient_clip: float = 1.0
    """Clip the gradient norm to this value (0: no clipping)."""
    max_time: float | None = None
    """Stop training after this many minutes (a budget cap); None: no cap."""
    resume: bool = False
    """Continue from the model folder's last.ckpt after an interruption."""
    num_workers: int = 0
    """Data-loader worker processes."""
    progress: bool = True
    """Show Lightning's progress bar."""

    def __post_init__(self) -> None:
        checks = {
            "max_epochs": self.max_epochs >= 1,
            "batch_size": self.batch_size is None or self.batch_size >= 1,
            "lr": self.lr is None or self.lr > 0,
            "weight_decay": self.weight_decay >= 0,
            "warmup": 0 <= self.warmup < 1,
            "patience": self.patience >= 1,
            "gradient_clip": self.gradient_clip >= 0,
            "num_workers": self.num_workers >= 0,
            "devices": self.devices == "auto" or self.devices.isdigit(),
        }
        for name, ok in checks.items():
            if not ok:
                flag = "--" + name.replace("_", "-")
                raise ConfigError(f"{flag} has an invalid value {getattr(self, name)!r}")
        if self.max_time is not None and self.max_time <= 0:
            raise ConfigError(f"--max-time must be positive minutes, got {self.max_time}")


def uses_gpu(config: TrainConfig) -> bool:
    """Whether the Trainer will run on a GPU."""
    return config.accelerator == "gpu" or (config.accelerator == "auto" and torch.cuda.is_available())


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes each checkpoint to a temporary file and renames it, so a kill never leaves half a file."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
        with atomic_path(path) as tmp:
            torch.save(checkpoint, tmp)


class _ResumableWriter(ExperimentWriter):
    """CSV writer that appends to an existing metrics.csv instead of deleting it."""

    def _check_log_dir_exists(self) -> None:
        if os.path.isfile(self.metrics_file_path):
            with open(self.metrics_file_path, newline="") as handle:
                self.metrics_keys = sorted(next(csv.reader(handle), []))


def drop_rows_after(metrics_csv: Path, checkpoint: Path) -> None:
    """Rewrite ``metrics_csv`` without the rows logged after ``checkpoint`` was saved.

    A run stopped mid-epoch resumes from its last checkpoint and redoes the rest of that epoch;
    without this the redone steps would appear twice. Rows are kept up to the checkpoint's epoch
    and, within that epoch, before its global step.
    """
    if not metrics_csv.is_file():
        return
    saved = torch.load(checkpoint, map_location="cpu", weights_only=False, mmap=True)
    epoch, step = int(saved["epoch"]), int(saved["global_step"])
    with open(metrics_csv, newline="") as handle:
        reader = csv.DictReader(handle)
        header, rows = reader.fieldnames or [], list(reader)

    def before_checkpoint(row: dict[str, str]) -> bool:
        if not row.get("epoch") or not row.get("step"):
            return True
        return int(row["epoch"]) < epoch or (int(row["epoch"]) == epoch and int(row["step"]) < step)

    kept = [row for row in rows if before_checkpoint(row)]
    if len(kept) == len(rows):
        return
    with atomic_path(metrics_csv) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=header)
        writer.writeheader()
        writer.writerows(kept)


class MetricsCSVLogger(CSVLogger):
    """``<out_dir>/metrics.csv``; when resuming, kept up to the checkpoint and appended to."""

    def __init__(self, out_dir: Path, *, resume_from: Path | None = None) -> None:
        super().__init__(save_dir=out_dir, name="", version="")
        self._resume = resume_from is not None
        if resume_from is not None:
            drop_rows_after(out_dir / "metrics.csv", resume_from)

    @property
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None and self._resume:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _ResumableWriter(log_dir=self.log_dir)
        return super().experiment


def make_trainer(
    config: TrainConfig, out_dir: str | Path, *, monitor: str = "val/ndcg@10", mode: str = "max"
) -> L.Trainer:
    """A Trainer writing checkpoints and metrics into ``out_dir``.

    Best and last checkpoints on ``monitor``, early stopping with ``config.patience``, gradient
    clipping, bf16-mixed precision on GPU, CSV metrics (plus wandb on request), a progress bar.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    loggers: list[Logger] = [MetricsCSVLogger(out_dir, resume_from=resume_path(config, out_dir))]
    if config.logger == "wandb":
        from lightning.pytorch.loggers import WandbLogger

        offline = not os.environ.get("WANDB_API_KEY")
        loggers.append(
            WandbLogger(project=config.wandb_project, save_dir=out_dir, name=out_dir.name, offline=offline)
        )
    callbacks: list[L.Callback] = [
        ModelCheckpoint(
            dirpath=out_dir,
            filename="best",
            monitor=monitor,
            mode=mode,
            save_top_k=1,
            enable_version_counter=False,
            auto_insert_metric_name=False,
        ),
        # Its own callback: Lightning's save_last only refreshes last.ckpt when best.ckpt improves,
        # so --resume would go back to the best epoch instead of the latest.
        ModelCheckpoint(dirpath=out_dir, filename="last", enable_version_counter=False),
        EarlyStopping(monitor=monitor, mode=mode, patience=config.patience),
    ]
    if config.progress:
        callbacks.append(TQDMProgressBar(refresh_rate=10))
    precision = config.precision or ("bf16-mixed" if uses_gpu(config) else "32-true")
    return L.Trainer(
        default_root_dir=out_dir,
        max_epochs=config.max_epochs,
        max_time={"minutes": config.max_time} if config.max_time else None,
        accelerator=config.accelerator,
        devices=int(config.devices) if config.devices.isdigit() else "auto",
        strategy=config.strategy,
        precision=precision,
        gradient_clip_val=config.gradient_clip or None,
        logger=loggers,
        callbacks=callbacks,
        plugins=[AtomicCheckpointIO()],
        enable_progress_bar=config.progress,
        enable_model_summary=config.progress,
        log_every_n_steps=10,
        num_sanity_val_steps=0,
        deterministic=False,
    )


def resume_path(config: TrainConfig, out_dir: str | Path) -> Path | None:
    """``<out_dir>/last.ckpt`` when resuming and it exists; None otherwise.

    Raises:
        ConfigError: ``--resume true`` was given but there is no last.ckpt to resume from.
    """
    if not config.resume:
        return None
    last = Path(out_dir) / "last.ckpt"
    if not last.is_file():
        raise ConfigError(f"--resume true: {last} does not exist (nothing to resume)")
    return last


def read_metrics(metrics_csv: str | Path) -> dict[str, list[tuple[float, float]]]:
    """Per column, the (epoch, value) pairs that are filled in a Lightning metrics.csv."""
    series: dict[str, list[tuple[float, float]]] = {}
    with open(metrics_csv, newline="") as handle:
        for row in csv.DictReader(handle):
            epoch = row.get("epoch") or ""
            if not epoch:
                continue
            for name, value in row.items():
                if name in {"epoch", "step"} or not value:
                    continue
                series.setdefault(name, []).append((float(epoch), float(value)))
    return series


Series = list[tuple[float, float]]
"""(epoch, value) pairs."""


def _per_epoch(points: Series, reduce: Any) -> Series:
    """One (epoch, reduce(values)) pair per epoch, for series logged several times an epoch."""
    by_epoch: dict[float, list[float]] = {}
    for epoch, value in points:
        by_epoch.setdefault(epoch, []).append(value)
    return [(epoch, float(reduce(values))) for epoch, values in sorted(by_epoch.items())]


def curves(series: dict[str, Series]) -> tuple[dict[str, Series], dict[str, Series], Series]:
    """What ``plot_curves`` draws: per-epoch losses, validation scores, and the learning rate.

    A loss logged at every step is averaged per epoch, unless Lightning's ``<name>_epoch``
    aggregate exists (then that is used); the rate is the last one logged in each epoch.
    """
    losses = {}
    for name, points in series.items():
        if "loss" not in name or name.endswith("_step") or f"{name}_epoch" in series:
            continue
        losses[name.removesuffix("_epoch")] = _per_epoch(points, np.mean)
    scores = {n: v for n, v in series.items() if n.startswith("val/") and "loss" not in n}
    rates = _per_epoch(series.get("train/lr", []), lambda values: values[-1])
    return losses, scores, rates


def plot_curves(metrics_csv: str | Path, png: str | Path) -> Path:
    """Training and validation curves per epoch: losses on the left, validation metrics on the right."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    losses, scores, rates = curves(read_metrics(metrics_csv))
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for axis, group, title in ((left, losses, "loss"), (right, scores, "validation")):
        for name, points in sorted(group.items()):
            epochs, values = zip(*points, strict=True)
            axis.plot([e + 1 for e in epochs], values, marker="o", label=name)
        axis.set_xlabel("epoch")
        axis.set_title(title)
        axis.grid(alpha=0.3)
        if group:
            axis.legend(loc="upper left" if axis is left else "best")
    if rates:  # the learning rate at each epoch's end, on its own log axis
        epochs, values = zip(*rates, strict=True)
        rate_axis = left.twinx()
        rate_axis.plot([e + 1 for e in epochs], values, color="gray", linestyle="--", label="learning rate")
        rate_axis.set_yscale("log")
        rate_axis.legend(loc="upper right")
    fig.tight_layout()
    png = Path(png)
    with atomic_path(png) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return png


def record_training(
    out_dir: Path,
    model: str,
    seconds: float,
    *,
    resumed: bool,
    timer_seconds: float | None = None,
    **info: Any,
) -> Path:
    """Write ``<out_dir>/train_info.json`` with the model's total training seconds.

    A resumed run adds the seconds its earlier segments recorded. A run that was killed never
    recorded its segment, but Lightning's ``--max-time`` timer carries it in the checkpoint
    (``timer_seconds``, see :func:`timer_seconds`), so the larger of the two totals is kept.
    """
    path = Path(out_dir) / TRAIN_INFO
    earlier = 0.0
    if resumed and path.is_file():
        try:
            earlier = float(json.loads(path.read_text()).get("train_seconds") or 0.0)
        except (json.JSONDecodeError, TypeError, ValueError):
            earlier = 0.0
    total = max(seconds + earlier, timer_seconds or 0.0)
    write_json(path, {"model": model, "train_seconds": round(total, 2), **info})
    return path


def timer_seconds(trainer: L.Trainer) -> float | None:
    """Training seconds on the ``--max-time`` timer, earlier (resumed) segments included; None without one."""
    timers = [callback for callback in trainer.callbacks if isinstance(callback, Timer)]
    return timers[0].time_elapsed("train") if timers else None
