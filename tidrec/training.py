"""Lightning plumbing shared by every trained model: options, the Trainer, and the curves plot.

``make_trainer`` gives each model folder ``best.ckpt`` (best validation NDCG@10), ``last.ckpt``
(for ``--resume true``) and ``metrics.csv``; ``plot_curves`` turns the CSV into ``curves.png``.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import lightning as L
import numpy as np
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.fabric.plugins.precision.precision import _PRECISION_INPUT_STR, _PRECISION_INPUT_STR_ALIAS
from lightning.fabric.utilities.rank_zero import rank_zero_only
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint, Timer, TQDMProgressBar
from lightning.pytorch.loggers import CSVLogger, Logger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter

from tidrec.artifacts import check_checkpoint, checkpoint_record, read_checkpoint
from tidrec.cli import check_range
from tidrec.data.dataset import Dataset, Split
from tidrec.device import require_cuda
from tidrec.errors import ConfigError, TidrecError
from tidrec.io import atomic_path, write_json

TRAIN_INFO = "train_info.json"
"""Written beside each trained artifact: model, training seconds (summed over resumes) and details."""

PRECISIONS: tuple[str, ...] = (*get_args(_PRECISION_INPUT_STR), *get_args(_PRECISION_INPUT_STR_ALIAS))
"""The precision names Lightning's Trainer accepts (from its own type), checked before any work."""


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
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """Where to train (auto: a CUDA GPU when one exists)."""
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
    """Continue from the model folder's last.ckpt after an interruption, with the options it records
    having been trained with where no flag says otherwise."""
    num_workers: int = 0
    """Data-loader worker processes."""
    progress: bool = True
    """Show progress: a bar on a terminal, one line per epoch with its metrics otherwise."""

    def __post_init__(self) -> None:
        check_range("--max-epochs", self.max_epochs, at_least=1)
        check_range("--batch-size", self.batch_size, at_least=1)
        check_range("--lr", self.lr, above=0)
        check_range("--weight-decay", self.weight_decay, at_least=0)
        check_range("--warmup", self.warmup, at_least=0, below=1)
        check_range("--patience", self.patience, at_least=1)
        check_range("--seed", self.seed, at_least=0, below=2**32)  # numpy's and Lightning's seed range
        check_range("--gradient-clip", self.gradient_clip, at_least=0)
        check_range("--max-time", self.max_time, above=0)
        check_range("--num-workers", self.num_workers, at_least=0)
        if not (self.devices == "auto" or (self.devices.isdigit() and int(self.devices) >= 1)):
            raise ConfigError(f"--devices must be auto or a count >= 1, got {self.devices!r}")
        if self.precision is not None and self.precision not in PRECISIONS:
            raise ConfigError(f"--precision {self.precision!r} is not one of {', '.join(PRECISIONS)}")
        if self.strategy != "auto":
            from lightning.pytorch.strategies import StrategyRegistry

            if self.strategy not in StrategyRegistry.available_strategies():
                raise ConfigError(
                    f"--strategy {self.strategy!r} is not one of auto, "
                    f"{', '.join(StrategyRegistry.available_strategies())}"
                )
        if self.device == "cuda":
            require_cuda("--device cuda")
        if self.devices.isdigit() and uses_gpu(self) and int(self.devices) > torch.cuda.device_count():
            raise ConfigError(f"--devices {self.devices}: only {torch.cuda.device_count()} CUDA GPU(s) found")


def uses_gpu(config: TrainConfig) -> bool:
    """Whether the Trainer will run on a GPU."""
    return config.device == "cuda" or (config.device == "auto" and torch.cuda.is_available())


class SafeCheckpointIO(TorchCheckpointIO):
    """Checkpoint files as tidrec wants them: written atomically, read weights-only.

    Writing goes to a temporary file that is then renamed, so a kill never leaves half a file.
    Reading (Lightning's ``ckpt_path`` resume) never unpickles arbitrary objects, whatever
    ``weights_only`` Lightning passes: a shared run folder must not be able to run code.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
        with atomic_path(path) as tmp:
            torch.save(checkpoint, tmp)

    def load_checkpoint(self, path: Any, map_location: Any = None, weights_only: bool | None = None) -> dict:
        return read_checkpoint(path, map_location=map_location or "cpu")


class FolderCheckpoint(ModelCheckpoint):
    """A ModelCheckpoint whose resumed state comes from the folder it writes to, not from paths.

    Lightning restores the best score only when the checkpoint's recorded folder equals the
    current one, so a copied or moved run folder forgot its best score and the next (worse) epoch
    overwrote best.ckpt. The paths a checkpoint records are also untrusted (Lightning deletes the
    previous best by path). So: every recorded path is dropped; the best score is restored when
    it is finite and this folder still holds the best file; and a non-finite score is never saved
    as the best.
    """

    @property
    def state_key(self) -> str:
        # Lightning's own name, so checkpoints written before this class existed resume alike
        return super().state_key.replace(type(self).__qualname__, ModelCheckpoint.__qualname__, 1)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        best = Path(self.dirpath or ".") / f"{self.filename}{self.FILE_EXTENSION}"
        score = state_dict.get("best_model_score")
        if self.monitor is None or not torch.is_tensor(score) or not torch.isfinite(score).all():
            return
        if not best.is_file():
            return  # the best file is gone: the next validation writes a new one
        self.best_model_score = score
        self.best_model_path = self.kth_best_model_path = str(best)
        self.best_k_models = {str(best): score}
        self.kth_value = score

    def check_monitor_top_k(self, trainer: L.Trainer, current: torch.Tensor | None = None) -> bool:
        if current is not None and not torch.isfinite(current).all():
            return False
        return super().check_monitor_top_k(trainer, current)


def on_terminal() -> bool:
    """Whether progress goes to a terminal (bars) rather than a pipe or a log file (lines)."""
    return sys.stderr.isatty()


class EpochLines(L.Callback):
    """Progress for logs: one line per epoch with the epoch's training loss and validation metrics.

    A progress bar redrawn into a file is thousands of carriage-return updates; this is one line.
    """

    def __init__(self) -> None:
        self._start = 0.0

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = time.monotonic()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Lightning validates before this hook, so the epoch's loss and its validation are both here
        if not trainer.is_global_zero:
            return
        metrics = trainer.callback_metrics
        loss = metrics.get("train/loss_epoch", metrics.get("train/loss"))
        shown = [f"train/loss {float(loss):.4f}"] if loss is not None else []
        shown += [
            f"{name} {float(metrics[name]):.4f}"
            for name in ("val/loss", "val/recall@10", "val/ndcg@10")
            if name in metrics
        ]
        total = f"/{trainer.max_epochs}" if trainer.max_epochs and trainer.max_epochs > 0 else ""
        seconds = time.monotonic() - self._start
        print(f"epoch {trainer.current_epoch + 1}{total}: {', '.join(shown)} ({seconds:.0f} s)", flush=True)


class ConfiguredEarlyStopping(EarlyStopping):
    """Early stopping whose patience is the run's ``--patience``, also after ``--resume true``.

    Lightning's own callback restores the patience saved in the checkpoint, so continuing a run that
    stopped early with a larger ``--patience`` would stop again at once; the count of validations
    without improvement and the best score still come from the checkpoint.
    """

    @property
    def state_key(self) -> str:
        # Lightning's own name, so checkpoints written before this class existed resume alike
        return super().state_key.replace(type(self).__qualname__, EarlyStopping.__qualname__, 1)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        patience = self.patience
        super().load_state_dict(state_dict)
        self.patience = patience


class NonFiniteLossError(TidrecError):
    """Training produced a NaN or infinite loss; the checkpoints keep the last good model."""


class FiniteLossGuard(L.Callback):
    """Stops training with a one-line error at the first non-finite loss, before its backward pass.

    Nothing is saved after it fires, so best.ckpt and last.ckpt keep the last good model.
    """

    def on_before_backward(
        self, trainer: L.Trainer, pl_module: L.LightningModule, loss: torch.Tensor
    ) -> None:
        if not torch.isfinite(loss).all():
            raise NonFiniteLossError(
                f"training loss became {float(loss.detach().float().mean())} at step {trainer.global_step} "
                f"(epoch {trainer.current_epoch + 1}); stopped, and best.ckpt and last.ckpt keep the last "
                "good model (try a lower --lr or --gradient-clip)"
            )


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
    saved = read_checkpoint(checkpoint)
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
        if resume_from is not None and rank_zero_only.rank == 0:  # one writer under DDP
            drop_rows_after(out_dir / "metrics.csv", resume_from)

    @property
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None and self._resume:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _ResumableWriter(log_dir=self.log_dir)
        return super().experiment


FIT_OPTIONS_KEY = "tidrec_fit_options"
"""Where a checkpoint keeps the options of the run that wrote it (``config.yaml``'s text)."""


class OptionsRecord(L.Callback):
    """Writes the run's options into every checkpoint, so ``--resume`` continues with what this
    checkpoint was trained with, whatever later (even failed) runs wrote into config.yaml."""

    def __init__(self, config: TrainConfig) -> None:
        from tidrec.cli import config_yaml

        self.text = config_yaml(config)

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        checkpoint[FIT_OPTIONS_KEY] = self.text


def make_trainer(
    config: TrainConfig,
    out_dir: str | Path,
    *,
    resume_from: Path | None = None,
    monitor: str = "val/ndcg@10",
    mode: str = "max",
) -> L.Trainer:
    """A Trainer writing checkpoints and metrics into ``out_dir``.

    Best and last checkpoints on ``monitor``, early stopping with ``config.patience``, gradient
    clipping, bf16-mixed precision on GPU, CSV metrics (plus wandb on request), a progress bar, and
    a stop at the first non-finite loss. ``resume_from`` (from :func:`resume_checkpoint`) is the
    checkpoint the run will resume; metrics.csv is cut back to it.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    loggers: list[Logger] = [MetricsCSVLogger(out_dir, resume_from=resume_from)]
    if config.logger == "wandb":
        from lightning.pytorch.loggers import WandbLogger

        offline = not os.environ.get("WANDB_API_KEY")
        loggers.append(
            WandbLogger(project=config.wandb_project, save_dir=out_dir, name=out_dir.name, offline=offline)
        )
    callbacks: list[L.Callback] = [
        FolderCheckpoint(
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
        FolderCheckpoint(dirpath=out_dir, filename="last", enable_version_counter=False),
        ConfiguredEarlyStopping(monitor=monitor, mode=mode, patience=config.patience),
        FiniteLossGuard(),
        OptionsRecord(config),
    ]
    bar = config.progress and on_terminal()
    if not on_terminal():  # a log keeps the epoch lines, not Lightning's banners and tips
        logging.getLogger("lightning.pytorch.utilities.rank_zero").setLevel(logging.WARNING)
    # config.yaml is written into the model folder before training starts: not a stale run
    warnings.filterwarnings(
        "ignore", message=r"(Experiment logs|Checkpoint) directory .* exists and is not empty"
    )
    # Lightning's own call into torch.utils._pytree, deprecated by torch 2.13: nothing a user can act on
    warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated")
    # short epochs (SASRec on ML-100K has 8 batches) still log their epoch means
    warnings.filterwarnings("ignore", message=r"The number of training batches .* logging interval")
    if bar:
        callbacks.append(TQDMProgressBar(refresh_rate=10))
    elif config.progress:
        callbacks.append(EpochLines())
    precision = config.precision or ("bf16-mixed" if uses_gpu(config) else "32-true")
    return L.Trainer(
        default_root_dir=out_dir,
        max_epochs=config.max_epochs,
        max_time={"minutes": config.max_time} if config.max_time else None,
        accelerator={"auto": "auto", "cpu": "cpu", "cuda": "gpu"}[config.device],
        devices=int(config.devices) if config.devices.isdigit() else "auto",
        strategy=config.strategy,
        precision=precision,
        gradient_clip_val=config.gradient_clip or None,
        logger=loggers,
        callbacks=callbacks,
        plugins=[SafeCheckpointIO()],
        enable_progress_bar=bar,
        enable_model_summary=bar,
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


def resume_checkpoint(
    config: TrainConfig,
    out_dir: str | Path,
    *,
    model: str,
    dataset_hash: str,
    data_path: str | Path,
    sid_hash: str | None = None,
    sids_path: str | Path = "the run's SID table",
    model_config: dict[str, Any] | None = None,
    config_defaults: dict[str, Any] | None = None,
) -> Path | None:
    """The checkpoint to resume from (see :func:`resume_path`), checked before anything touches it.

    It is read weights-only and must record the same model, dataset, (for the generative model)
    SID table and model config as the run being resumed; nothing in the folder changes when it
    does not. A field the checkpoint's record lacks (an option added after it was written) counts
    as ``config_defaults``' value, which is how its loader rebuilds that config.

    Raises:
        ConfigError: ``--resume true`` with no last.ckpt.
        InputError: an unreadable or unsafe checkpoint, or one trained on other data or SIDs.
    """
    path = resume_path(config, out_dir)
    if path is not None:
        record = checkpoint_record(read_checkpoint(path), path)
        check_checkpoint(
            record,
            model=model,
            dataset_hash=dataset_hash,
            data_path=data_path,
            sid_hash=sid_hash,
            sids_path=sids_path,
        )
        saved = record.entry.get({"tiger": "model_config", "llm": "llm_config"}.get(record.kind, "config"))
        saved = {**(config_defaults or {}), **saved} if isinstance(saved, dict) else {}
        if model_config is not None and saved != model_config:
            differ = sorted(k for k in {*model_config, *saved} if saved.get(k) != model_config.get(k))
            shown = ", ".join(f"{k} {saved.get(k)!r} vs {model_config.get(k)!r}" for k in differ[:3])
            raise ConfigError(
                f"--resume true: {path} was trained with another model config ({shown}); "
                "resume with the options it was trained with, or train afresh without --resume"
            )
    return path


def validation_split(dataset: Dataset, config: Any) -> Split:
    """The valid split, or a fixed random sample of ``config.val_users`` of its users (seeded by
    ``config.seed``) when set: one rule for every trained model."""
    valid = dataset.split("valid")
    limit = getattr(config, "val_users", None)
    if limit is not None and limit < len(valid):
        rows = np.random.default_rng(getattr(config, "seed", 0)).choice(len(valid), limit, replace=False)
        valid = valid.subset(np.sort(rows))
    return valid


def finish_fit(trainer: L.Trainer, config: Any, out_dir: Path, seconds: float, **info: Any) -> float | None:
    """After ``trainer.fit``: draw ``curves.png`` and write ``train_info.json`` (seconds summed over
    resumes, epochs, best validation NDCG@10 and ``info``); return the best score (None if none)."""
    # one writer: under DDP every rank gets here, and a second writer of curves.png would remove
    # the first one's temporary file as a stale leftover (remove_stale_temporaries)
    if trainer.is_global_zero and (out_dir / "metrics.csv").exists():
        plot_curves(out_dir / "metrics.csv", out_dir / "curves.png")
    callback = trainer.checkpoint_callback
    score = float(callback.best_model_score) if callback and callback.best_model_score is not None else None
    if trainer.is_global_zero:
        record_training(
            out_dir,
            config.model,
            seconds,
            resumed=config.resume,
            timer_seconds=timer_seconds(trainer),
            epochs=trainer.current_epoch,
            best_val_ndcg10=score,
            **info,
        )
    return score


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
        except (json.JSONDecodeError, TypeError, ValueError, AttributeError):  # AttributeError: not an object
            earlier = 0.0
    total = max(seconds + earlier, timer_seconds or 0.0)
    write_json(path, {"model": model, "train_seconds": round(total, 2), **info})
    return path


def timer_seconds(trainer: L.Trainer) -> float | None:
    """Training seconds on the ``--max-time`` timer, earlier (resumed) segments included; None without one."""
    timers = [callback for callback in trainer.callbacks if isinstance(callback, Timer)]
    return timers[0].time_elapsed("train") if timers else None
