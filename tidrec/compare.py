"""``python -m tidrec.compare --run runs/ml-100k --models pop sasrec ...``: every model, one table.

Prepares the dataset when the run folder lacks it, trains each model that has no saved artifact
(``tidrec.fit``), ranks the full catalogue for every user of the same test split with the same
history-exclusion rule, and writes ``<run>/compare/results.{json,md}`` plus ``results.png``:
Recall@10, NDCG@10, catalogue coverage, serendipity and novelty (Harte et al.'s definitions, see
:mod:`tidrec.beyond_accuracy`), training time and the machine it ran on.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from tqdm.auto import tqdm

from tidrec.cli import check_range
from tidrec.cli import run as run_cli
from tidrec.data.dataset import Dataset
from tidrec.data.prepare import DataConfig, prepare_dataset
from tidrec.errors import ConfigError
from tidrec.io import atomic_path, check_output_dir, read_json_object, write_json, write_text

MODELS = ("pop", "sasrec", "sasrec-bce", "bert4rec", "llmseqsim", "llm2sasrec", "llm2bert4rec", "tiger")
"""Models the comparison can include."""

DEFAULT_MODELS = ("pop", "sasrec", "bert4rec", "llmseqsim", "llm2sasrec", "llm2bert4rec")
"""The comparison's default line-up (add ``tiger`` once its tokenizer is wanted)."""

TRAIN_TIME = "train_time.json"
"""Written by this command into each model folder it trains: seconds and machine."""


@dataclass(frozen=True, kw_only=True)
class CompareConfig(DataConfig):
    """Options of ``python -m tidrec.compare`` (dataset options are inherited)."""

    run: Path
    """Run folder: data/ is prepared here when missing; models go to models/<name>/."""
    models: tuple[str, ...] = DEFAULT_MODELS
    """Models to compare, in table order (pop sasrec sasrec-bce bert4rec llmseqsim llm2sasrec llm2bert4rec
    tiger)."""
    k: int = 10
    """Cut-off of the reported metrics."""
    exclude_history: bool = True
    """Remove items a user has already interacted with from every model's list (same rule for all)."""
    retrain: bool = False
    """Train every model again even when it has a saved artifact."""
    max_epochs: int = 50
    """Training epochs at most, per trained model."""
    patience: int = 5
    """Validations without NDCG@10 improvement before a model stops."""
    max_time: float | None = None
    """Minutes of training allowed per model (None: no cap)."""
    batch_size: int | None = None
    """Training batch size of every trained model (None: each model's preset)."""
    max_len: int | None = None
    """History length of SASRec/BERT4Rec (None: their preset, 200)."""
    seed: int = 42
    """Seed of every trained model."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """Where models are trained and run."""
    progress: bool = True
    """Show training progress bars."""

    def __post_init__(self) -> None:
        super().__post_init__()
        unknown = [m for m in self.models if m not in MODELS]
        if unknown:
            raise ConfigError(
                f"--models: unknown {', '.join(unknown)}; expected names from {', '.join(MODELS)}"
            )
        if not self.models:
            raise ConfigError("--models needs at least one model")
        if not 1 <= self.k <= 20:
            raise ConfigError(f"--k must be in [1, 20], got {self.k}")
        # what fit would refuse only when a model is trained, refused here whatever is trained
        for flag, value in (
            ("--max-epochs", self.max_epochs),
            ("--patience", self.patience),
            ("--batch-size", self.batch_size),
            ("--max-len", self.max_len),
        ):
            check_range(flag, value, at_least=1)
        check_range("--max-time", self.max_time, above=0)
        check_range("--seed", self.seed, at_least=0, below=2**32)
        if self.device == "cuda":
            from tidrec.device import require_cuda

            require_cuda("--device cuda")
        check_output_dir(self.run, "--run")


def machine() -> str:
    """A one-line description of where this process runs (CPU, threads, GPU)."""
    import torch

    cpu = platform.processor() or platform.machine()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{cpu}, {os.cpu_count()} CPU cores, torch threads {torch.get_num_threads()}, {gpu}"


def has_artifact(run: Path, model: str) -> bool:
    """Whether ``<run>/models/<model>/`` holds something the evaluation can load."""
    folder = run / "models" / model
    return any((folder / name).is_file() for name in ("best.ckpt", "llmseqsim.json", "pop.json"))


def train_model(config: CompareConfig, model: str) -> float:
    """Train ``model`` with ``tidrec.fit`` (tokenizing first for tiger when needed); return seconds."""
    from tidrec.fit import FitConfig, fit

    if model == "tiger" and not (config.run / "tokenizer" / "sids.parquet").is_file():
        from tidrec.tokenize import TokenizeConfig, tokenize_run

        tokenize_run(TokenizeConfig(**_data_options(config), out=config.run, progress=config.progress))
    accelerator = {"auto": "auto", "cpu": "cpu", "cuda": "gpu"}[config.device]
    fit_config = FitConfig(
        run=config.run,
        model=model,  # type: ignore[arg-type]
        max_epochs=config.max_epochs,
        patience=config.patience,
        max_time=config.max_time,
        batch_size=config.batch_size,
        max_len=config.max_len if model != "tiger" else None,
        seed=config.seed,
        accelerator=accelerator,  # type: ignore[arg-type]
        progress=config.progress,
    )
    start = time.perf_counter()
    fit(fit_config)
    seconds = time.perf_counter() - start
    write_json(
        config.run / "models" / model / TRAIN_TIME, {"seconds": round(seconds, 2), "machine": machine()}
    )
    return seconds


def _data_options(config: CompareConfig) -> dict[str, Any]:
    import dataclasses

    return {f.name: getattr(config, f.name) for f in dataclasses.fields(DataConfig)}


def training_record(run: Path, model: str) -> dict[str, Any]:
    """Training seconds (and machine) of a model folder, from whichever record it has."""
    folder = run / "models" / model
    for name, key in ((TRAIN_TIME, "seconds"), ("train_info.json", "train_seconds")):
        path = folder / name
        if path.is_file():
            record = read_json_object(
                path, remedy=f"delete it, or re-run with --retrain true to train {model} again"
            )
            return {"train_seconds": record.get(key), "train_machine": record.get("machine")}
    return {"train_seconds": None, "train_machine": None}


def rank_test_split(recommender: Any, dataset: Dataset, *, k: int, exclude_history: bool) -> np.ndarray:
    """(U, k) ranked item_idx for every test user, in batches of 256."""
    split = dataset.split("test")
    lists = []
    for lo in range(0, len(split), 256):
        rows = np.arange(lo, min(lo + 256, len(split)))
        ranked = np.asarray(recommender.recommend(split.subset(rows), k=k, exclude_history=exclude_history))
        if ranked.shape != (len(rows), k):
            raise ValueError(f"recommend returned {ranked.shape}, expected ({len(rows)}, {k})")
        lists.append(ranked)
    return np.concatenate(lists)


def evaluate_model(config: CompareConfig, model: str, dataset: Dataset) -> dict[str, Any]:
    """Test-split metrics of one trained model: ranking (shared path) plus beyond-accuracy."""
    from tidrec.evaluate import list_metrics, load_recommender, ranking_metrics, standard_errors

    recommender = load_recommender(config.run, model, dataset, beam_size=20, device=config.device)
    start = time.perf_counter()
    ranked = rank_test_split(recommender, dataset, k=20, exclude_history=config.exclude_history)
    seconds = time.perf_counter() - start
    targets = dataset.split("test").targets
    return {
        "model": model,
        **ranking_metrics(ranked, targets),
        **list_metrics(ranked, targets, dataset, at=config.k),
        **standard_errors(ranked, targets, k=config.k),
        "eval_seconds": round(seconds, 2),
    }


COLUMNS = ("recall@{k}", "ndcg@{k}", "coverage@{k}", "serendipity@{k}", "novelty@{k}")


def markdown(rows: list[dict[str, Any]], *, k: int, header: str) -> str:
    """The comparison table: one row per model."""
    names = [c.format(k=k) for c in COLUMNS]
    lines = [
        header,
        "",
        "| model | " + " | ".join(_title(n) for n in names) + " | train time |",
        "|---|" + "---:|" * (len(names) + 1),
    ]
    for row in rows:
        seconds = row.get("train_seconds")
        time_text = (
            "-" if seconds is None else (f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min")
        )
        values = " | ".join(_cell(row, n) for n in names)
        lines.append(f"| {row['model']} | {values} | {time_text} |")
    return "\n".join(lines) + "\n"


def _cell(row: dict[str, Any], name: str) -> str:
    """A metric, with "± standard error" where the row has one."""
    error = row.get(f"{name}_se")
    return f"{row[name]:.4f}" + (f" ± {error:.4f}" if error is not None else "")


def _title(name: str) -> str:
    metric, k = name.split("@")
    pretty = {"ndcg": "NDCG", "recall": "Recall"}.get(metric, metric.capitalize())
    return f"{pretty}@{k}"


def plot(rows: list[dict[str, Any]], png: Path, *, k: int) -> Path:
    """Bars per model: Recall and NDCG with ± standard-error whiskers (left), coverage and serendipity
    (right); saved atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = [r["model"] for r in rows]
    x = np.arange(len(models))
    fig, axes = plt.subplots(1, 2, figsize=(max(8, 1.6 * len(models)), 4))
    for axis, metrics in zip(axes, (("recall", "ndcg"), ("coverage", "serendipity")), strict=True):
        width = 0.8 / len(metrics)
        for j, metric in enumerate(metrics):
            name = f"{metric}@{k}"
            errors = [r.get(f"{name}_se") or 0.0 for r in rows]
            axis.bar(
                x + (j - (len(metrics) - 1) / 2) * width,
                [r[name] for r in rows],
                width,
                yerr=errors if any(errors) else None,
                capsize=3,
                label=_title(name),
            )
        axis.set_xticks(x, models, rotation=30, ha="right")
        axis.grid(axis="y", alpha=0.3)
        axis.legend()
    fig.tight_layout()
    with atomic_path(png) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return png


def compare(config: CompareConfig) -> list[dict[str, Any]]:
    """Prepare, train what is missing, evaluate everything the same way, write and print the table."""
    dataset = prepare_dataset(config, config.run / "data")
    for model in config.models:
        if config.retrain or not has_artifact(config.run, model):
            print(f"training {model} ...", flush=True)
            train_model(config, model)
    rows = []
    for model in tqdm(config.models, desc="evaluate", unit="model", disable=not config.progress):
        rows.append({**evaluate_model(config, model, dataset), **training_record(config.run, model)})
    rule = "excluding" if config.exclude_history else "including"
    header = (
        f"{dataset.name}: {dataset.num_users} users, {dataset.num_items} items; leave-one-out test split, "
        f"full-catalogue ranking, {rule} already-seen items; ± is the standard error over users. "
        f"Machine: {machine()}."
    )
    out = config.run / "compare"
    write_json(
        out / "results.json",
        {
            "dataset": dataset.name,
            "dataset_hash": dataset.content_hash,
            "split": "test",
            "exclude_history": config.exclude_history,
            "k": config.k,
            "machine": machine(),
            "results": rows,
        },
    )
    table = markdown(rows, k=config.k, header=header)
    write_text(out / "results.md", table)
    plot(rows, out / "results.png", k=config.k)
    print(table)
    print(f"wrote {out / 'results.md'}, results.json, results.png")
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(
        CompareConfig,
        compare,
        argv,
        prog="python -m tidrec.compare",
        description="Train (when needed) and evaluate several models on one run folder; one results table.",
    )


if __name__ == "__main__":
    raise SystemExit(main())
