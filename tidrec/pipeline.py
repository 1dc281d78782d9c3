"""The one pipeline behind ``python -m tidrec.run`` and ``python -m tidrec.compare``.

Prepares the dataset (or reuses the run folder's), tokenizes when a model needs SIDs and the run has
none, trains each model that has no saved artifact (``tidrec.fit``, each model's preset with the
options given on top), ranks the full catalogue for every user of the same test split with the same
history-exclusion rule, and writes ``<run>/results.{json,md,png}``: Recall and NDCG with standard
errors, catalogue coverage, serendipity and novelty (Harte et al.'s definitions, see
:mod:`tidrec.beyond_accuracy`), training time and the machine it ran on.

Defaults (both commands): the generative model and popularity; already-seen items excluded
from every list, as in the SASRec/BERT4Rec literature and RecBole's protocol on MovieLens (a user
rarely re-rates a movie, so a seen item in a list is a wasted slot); the table at k = 10, from lists
of 20 so that Recall/NDCG@20 are reported too.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from tqdm.auto import tqdm

from tidrec import models
from tidrec.cli import check_range
from tidrec.data.dataset import Dataset
from tidrec.data.prepare import prepare_dataset
from tidrec.errors import ConfigError
from tidrec.fit import GENERIC, PRESET_FIELDS, FitConfig, fit
from tidrec.io import atomic_path, check_output_dir, read_json_object, write_json, write_text
from tidrec.tokenize import TokenizeConfig, tokenize_run

DEFAULT_MODELS = ("tiger", "pop")
"""The default line-up: the generative model and the floor (it keeps the README's run near 10 CPU
minutes; name more with --models, e.g. ``--models tiger pop sasrec``)."""

LIST_LENGTH = 20
"""Items ranked per user (Recall/NDCG are reported at 5, 10 and 20)."""

TRAIN_TIME = "train_time.json"
"""Written by the pipeline into each model folder it trains: seconds and machine."""


@dataclass(frozen=True, kw_only=True)
class RunConfig(TokenizeConfig, FitConfig):
    """Options of ``tidrec.run`` and ``tidrec.compare``: data, tokenizer and training options (each
    model takes those it reads; unset ones take its preset), which models, and how to evaluate."""

    run: Path = field(default=Path("."), init=False)
    """Set from --out (--run)."""
    model: str = field(default="tiger", init=False)
    """Set per model from --models."""
    models: tuple[str, ...] = DEFAULT_MODELS
    """Models to train (when not trained yet) and compare, in table order."""
    k: int = 10
    """Cut-off of the table's metrics (Recall/NDCG are also reported at 5, 10 and 20)."""
    exclude_history: bool = True
    """Remove items a user has already interacted with from every model's list (same rule for all)."""
    retrain: bool = False
    """Train every model again (and tokenize again) even when it has saved artifacts."""
    eval_beam_size: int = 20
    """Beams for the generative model's test decoding (>= 20, the list length)."""
    decoder: Literal["beam", "exact"] = "beam"
    """The generative model's test decoder: beam search, or exact (widened per user until the list is
    provably the model's best, at most --max-beam beams). The table reports the certified share."""
    max_beam: int = 1024
    """The widest beam the exact decoder may use for one user."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "run", self.out)
        TokenizeConfig.__post_init__(self)
        FitConfig.__post_init__(self)
        if not self.models:
            raise ConfigError("--models needs at least one model")
        for name in self.models:
            try:
                models.get(name)
            except ConfigError as error:
                raise ConfigError(f"--models: {error}") from None
        if len(set(self.models)) != len(self.models):
            raise ConfigError(f"--models names a model twice: {' '.join(self.models)}")
        check_range("--k", self.k, at_least=1, at_most=LIST_LENGTH)
        check_range("--eval-beam-size", self.eval_beam_size, at_least=LIST_LENGTH)
        check_range("--max-beam", self.max_beam, at_least=self.eval_beam_size)

    def fit_config(self, model: str) -> FitConfig:
        """The FitConfig of one model: the options it reads that were given; the rest from its preset."""
        spec = models.get(model)
        reads = spec.options | GENERIC
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(FitConfig) if f.init}
        values.update(run=self.out, model=model)
        for name in PRESET_FIELDS:
            if name not in reads:
                values[name] = None
        return FitConfig(**values)

    def tokenize_config(self) -> TokenizeConfig:
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(TokenizeConfig) if f.init}
        return TokenizeConfig(**values)


def machine() -> str:
    """A one-line description of where this process runs (CPU, threads, GPU)."""
    import torch

    cpu = platform.processor() or platform.machine()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{cpu}, {os.cpu_count()} CPU cores, torch threads {torch.get_num_threads()}, {gpu}"


def has_artifact(run: Path, model: str) -> bool:
    """Whether ``<run>/models/<model>/`` holds the artifact its spec names."""
    return (run / "models" / model / models.get(model).artifact).is_file()


def train_model(config: RunConfig, model: str) -> float:
    """Train ``model`` with ``tidrec.fit``; return seconds (also saved as ``train_time.json``)."""
    start = time.perf_counter()
    fit(config.fit_config(model))
    seconds = time.perf_counter() - start
    write_json(
        config.run / "models" / model / TRAIN_TIME, {"seconds": round(seconds, 2), "machine": machine()}
    )
    return seconds


def training_record(run: Path, model: str) -> dict[str, Any]:
    """Training seconds (and machine) of a model folder, from whichever record it has."""
    folder = run / "models" / model
    info = folder / "train_info.json"
    if info.is_file():  # a model that took another's trained weights (llmseqprompt) shows their time
        record = read_json_object(
            info, remedy=f"delete it, or re-run with --retrain true to train {model} again"
        )
        if record.get("adapter_from"):
            return {"train_seconds": record.get("train_seconds"), "train_machine": record.get("machine")}
    for name, key in ((TRAIN_TIME, "seconds"), ("train_info.json", "train_seconds")):
        path = folder / name
        if path.is_file():
            record = read_json_object(
                path, remedy=f"delete it, or re-run with --retrain true to train {model} again"
            )
            return {"train_seconds": record.get(key), "train_machine": record.get("machine")}
    return {"train_seconds": None, "train_machine": None}


def evaluate_model(
    config: RunConfig, model: str, dataset: Dataset, lists: dict[str, np.ndarray] | None = None
) -> dict[str, Any]:
    """Test-split metrics of one trained model (lists of 20), also saved in its ``eval/`` folder.

    Recall/NDCG at 5, 10 and 20 and MRR, standard errors, invalid-item rate, and coverage,
    serendipity and novelty at ``config.k``: the numbers ``tidrec.evaluate`` gives for the same model.
    The ranked lists go into ``lists[model]`` when given (for :func:`paired_lines`).
    """
    from tidrec.evaluate import (
        EvalResult,
        certified_share,
        cold_start_metrics,
        decoding_metrics,
        list_metrics,
        load_recommender,
        rank_users,
        save_result,
    )
    from tidrec.metrics import ranking_metrics, standard_errors

    recommender = load_recommender(
        config.run,
        model,
        dataset,
        beam_size=config.eval_beam_size,
        decoder=config.decoder,
        max_beam=config.max_beam,
        device=config.device,
    )
    start = time.perf_counter()
    split = dataset.split("test")
    ranked, certified = rank_users(recommender, split, k=LIST_LENGTH, exclude_history=config.exclude_history)
    seconds = time.perf_counter() - start
    targets = split.targets
    metrics = {
        **ranking_metrics(ranked, targets),
        **list_metrics(ranked, targets, dataset, at=config.k),
        **standard_errors(ranked, targets, k=config.k),
        **certified_share(certified),
        **cold_start_metrics(ranked, targets, dataset),
        **decoding_metrics(recommender),
    }
    result = EvalResult(model, dataset.name, "test", config.exclude_history, len(targets), metrics, seconds)
    save_result(result, config.run / "models" / model / "eval")
    if lists is not None:
        lists[model] = ranked
    return {"model": model, **metrics, "eval_seconds": round(seconds, 2)}


def paired_lines(lists: dict[str, np.ndarray], targets: np.ndarray, *, k: int) -> tuple[str, dict[str, Any]]:
    """The first model against each other one on the same users: NDCG@k difference and its paired
    standard error (:func:`tidrec.metrics.paired_difference`), as text under the table and as JSON."""
    from tidrec.metrics import paired_difference

    names = list(lists)
    if len(names) < 2:
        return "", {}
    first, found = names[0], {}
    parts = []
    for other in names[1:]:
        d = paired_difference(lists[first], lists[other], targets, k=k)
        found[other] = d
        diff, se = d[f"ndcg@{k}_diff"], d[f"ndcg@{k}_diff_se"]
        ratio = f", {diff / se:+.1f} SE" if se > 0 else ""
        parts.append(f"{other} {diff:+.4f} ± {se:.4f}{ratio}")
    text = f"{first} minus each other model, NDCG@{k} on the same users (paired ± SE): {'; '.join(parts)}\n"
    return text, {"model": first, "against": found}


COLUMNS = ("recall@{k}", "ndcg@{k}", "coverage@{k}", "serendipity@{k}", "novelty@{k}")


def markdown(rows: list[dict[str, Any]], *, k: int, header: str) -> str:
    """The comparison table: one row per model (on a cold-start dataset, Recall@10 over the users
    whose target is a held-out item and over the others too; with an unconstrained title generator,
    the share of its generations that are no catalogue title, "-" for the other models)."""
    names = [c.format(k=k) for c in COLUMNS]
    if rows and "cold_targets" in rows[0]:
        names += ["recall@10 cold", "recall@10 warm"]
    if any("invalid_title_rate" in row for row in rows):
        names.append("invalid_title_rate")
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
    """A metric, with "± standard error" where the row has one ("-" where the model has none)."""
    if name not in row:
        return "-"
    error = row.get(f"{name}_se")
    return f"{row[name]:.4f}" + (f" ± {error:.4f}" if error is not None else "")


def _title(name: str) -> str:
    if "@" not in name:
        return {"invalid_title_rate": "Invalid titles"}.get(name, name)
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


def run_pipeline(config: RunConfig) -> list[dict[str, Any]]:
    """Prepare, tokenize and train what is missing, evaluate every model the same way; write and print
    the table and the stage times."""
    check_output_dir(config.run, "--out", create=True)
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    dataset = prepare_dataset(config, config.run / "data")
    sids = config.run / "tokenizer" / "sids.parquet"
    if any(models.get(m).needs_sids for m in config.models) and (config.retrain or not sids.is_file()):
        from tidrec.item_vectors import parse_item_vectors

        for model in parse_item_vectors(config.item_vectors):  # SIDs from a model's item table
            if model in models.names() and (config.retrain or not has_artifact(config.run, model)):
                print(f"training {model} (its item table makes the SIDs) ...", flush=True)
                seconds[f"fit {model}"] = train_model(config, model)
        begin = time.perf_counter()
        tokenize_run(config.tokenize_config())
        seconds["tokenize"] = time.perf_counter() - begin
    for model in config.models:
        if f"fit {model}" not in seconds and (config.retrain or not has_artifact(config.run, model)):
            print(f"training {model} ...", flush=True)
            seconds[f"fit {model}"] = train_model(config, model)
    rows, lists = [], {}
    for model in tqdm(config.models, desc="evaluate", unit="model", disable=not config.progress or None):
        begin = time.perf_counter()
        rows.append({**evaluate_model(config, model, dataset, lists), **training_record(config.run, model)})
        seconds[f"evaluate {model}"] = time.perf_counter() - begin
    seconds["total"] = time.perf_counter() - start
    paired_text, paired = paired_lines(lists, dataset.split("test").targets, k=config.k)
    rule = "excluding" if config.exclude_history else "including"
    header = (
        f"{dataset.name}: {dataset.num_users} users, {dataset.num_items} items; leave-one-out test split, "
        f"full-catalogue ranking, {rule} already-seen items; ± is the standard error over users. "
        f"Machine: {machine()}."
    )
    if dataset.cold_from is not None:
        cold_targets = int(rows[0]["cold_targets"]) if rows else 0
        header += (
            f" Cold start: the newest {dataset.num_items - dataset.cold_from} items were held out of "
            f"training; {cold_targets} test targets are among them (Recall@10 cold / warm)."
        )
    write_json(
        config.run / "results.json",
        {
            "dataset": dataset.name,
            "dataset_hash": dataset.content_hash,
            "split": "test",
            "exclude_history": config.exclude_history,
            "k": config.k,
            "machine": machine(),
            "results": rows,
            "paired": paired,
            "seconds": {stage: round(value, 1) for stage, value in seconds.items()},
        },
    )
    table = markdown(rows, k=config.k, header=header)
    if paired_text:
        table += "\n" + paired_text
    write_text(config.run / "results.md", table)
    plot(rows, config.run / "results.png", k=config.k)
    print(table)
    print("\n".join(f"{stage:<24} {value / 60:6.1f} min" for stage, value in seconds.items()))
    print(f"wrote {config.run / 'results.md'}, results.json, results.png")
    return rows


def main(argv, *, prog: str, description: str) -> int:
    """The shared command line of ``tidrec.run`` and ``tidrec.compare`` (``--out`` or ``--run``)."""
    from tidrec.cli import run as run_cli

    return run_cli(
        RunConfig, run_pipeline, argv, prog=prog, description=description, aliases={"out": ["--run"]}
    )
