"""The one evaluation path every model uses: leave-one-out, full-catalogue ranking, no sampled negatives.

``python -m tidrec.evaluate --run runs/ml-100k [--model NAME] [--exclude-history true]`` ranks the
whole catalogue for every user, prints a markdown table and writes
``runs/<name>/models/<model>/eval/results.json`` and ``results.md``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from tqdm.auto import tqdm

from tidrec.cli import check_range
from tidrec.cli import run as run_cli
from tidrec.data.dataset import Dataset, Split
from tidrec.errors import ConfigError, InputError
from tidrec.io import write_json, write_text
from tidrec.metrics import KS, ranking_metrics, standard_errors
from tidrec.models import CertifyingRecommender, Recommender


def list_metrics(
    ranked: np.ndarray, targets: np.ndarray, dataset: Dataset, *, at: int = 10
) -> dict[str, float]:
    """Invalid-item and pad rates of ranked lists, plus coverage, serendipity and novelty at ``at``.

    Invalid items are ids outside ``[0, num_items)`` other than the -1 pad (a constrained decoder
    must never produce one). Coverage, serendipity and novelty follow Harte et al.'s definitions
    (:mod:`tidrec.beyond_accuracy`), so ``tidrec.evaluate`` and ``tidrec.compare`` report the same
    numbers.
    """
    from tidrec.beyond_accuracy import beyond_accuracy

    real = ranked[ranked != -1]
    invalid = (real < 0) | (real >= dataset.num_items)
    return {
        "invalid_rate": float(invalid.mean()) if len(real) else 0.0,
        "pad_rate": float((ranked == -1).mean()) if ranked.size else 0.0,
        **beyond_accuracy(ranked, targets, dataset, k=at),
    }


@dataclass(frozen=True)
class EvalResult:
    """Metrics of one model on one split."""

    model: str
    """Model name (the folder under ``models/``)."""
    dataset: str
    """Dataset name."""
    split: str
    """``valid`` or ``test``."""
    exclude_history: bool
    """Whether already-seen items were removed from the lists."""
    users: int
    """Users evaluated (one target each)."""
    metrics: dict[str, float] = field(default_factory=dict)
    """Recall@k, NDCG@k, MRR, invalid_rate, pad_rate, coverage@10, serendipity@10, novelty@10."""
    seconds: float = 0.0
    """Wall time spent producing the ranked lists."""

    def to_json(self) -> dict:
        return {
            "model": self.model,
            "dataset": self.dataset,
            "split": self.split,
            "exclude_history": self.exclude_history,
            "users": self.users,
            "metrics": self.metrics,
            "seconds": round(self.seconds, 3),
        }

    def to_markdown(self) -> str:
        return markdown_table([self])


def markdown_table(results: Sequence[EvalResult]) -> str:
    """One row per result, one column per metric (those of the first result)."""
    if not results:
        return ""
    names = list(results[0].metrics)
    header = "| model | split | excl. hist. | users | " + " | ".join(names) + " |"
    rule = "|---|---|---|---:|" + "---:|" * len(names)
    rows = [
        f"| {r.model} | {r.split} | {'yes' if r.exclude_history else 'no'} | {r.users} | "
        + " | ".join(f"{r.metrics.get(n, float('nan')):.4f}" for n in names)
        + " |"
        for r in results
    ]
    return "\n".join([header, rule, *rows]) + "\n"


def evaluate(
    recommender: Recommender,
    dataset: Dataset,
    *,
    split: Literal["valid", "test"] = "test",
    k: int = 20,
    exclude_history: bool = False,
    batch_size: int = 256,
    model_name: str = "model",
    progress: bool = True,
) -> EvalResult:
    """Rank the full catalogue for every user of ``split`` and score the lists.

    Raises:
        ConfigError: ``k`` is below the largest reported cut-off, or ``batch_size`` < 1.
        ValueError: the recommender returned lists of the wrong shape.
    """
    if k < max(KS):
        raise ConfigError(f"k must be >= {max(KS)} to report Recall@{max(KS)}, got {k}")
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    data = dataset.split(split)
    start = time.perf_counter()
    ranked, certified = rank_users(
        recommender,
        data,
        k=k,
        exclude_history=exclude_history,
        batch_size=batch_size,
        desc=f"evaluate {model_name} ({split})" if progress else None,
    )
    seconds = time.perf_counter() - start
    metrics = {
        **ranking_metrics(ranked, data.targets),
        **standard_errors(ranked, data.targets),
        **list_metrics(ranked, data.targets, dataset),
        **certified_share(certified),
        **cold_start_metrics(ranked, data.targets, dataset),
        **decoding_metrics(recommender),
    }
    return EvalResult(model_name, dataset.name, split, exclude_history, len(data), metrics, seconds)


def decoding_metrics(recommender: Recommender) -> dict[str, float]:
    """What a recommender reports about its own decoding over the calls so far (e.g. LLMSeqPrompt's
    ``invalid_title_rate``), or {} for one that reports nothing."""
    report = getattr(recommender, "decoding_metrics", None)
    return dict(report()) if callable(report) else {}


COLD_METRICS = ("recall@10", "ndcg@10")
"""Metrics reported apart for cold and warm targets on a cold-start dataset."""


def cold_start_metrics(ranked: np.ndarray, targets: np.ndarray, dataset: Dataset) -> dict[str, float]:
    """On a cold-start dataset: Recall/NDCG@10 (and standard errors, ``..._se``) over the users whose
    target is a held-out (cold) item and over the others, and how many targets are cold; {} on
    other datasets."""
    if dataset.cold_from is None:
        return {}
    cold = targets >= dataset.cold_from
    out: dict[str, float] = {"cold_targets": float(cold.sum())}
    for name, rows in (("cold", cold), ("warm", ~cold)):
        scores = {}
        if rows.any():
            part, truth = ranked[rows], targets[rows]
            scores = {**ranking_metrics(part, truth), **standard_errors(part, truth)}
        for metric in COLD_METRICS:
            out[f"{metric} {name}"] = float(scores.get(metric, float("nan")))
            out[f"{metric} {name}_se"] = float(scores.get(f"{metric}_se", float("nan")))
    return out


def certified_share(certified: np.ndarray | None) -> dict[str, float]:
    """``{"certified": share of lists provably the model's best}``, or {} for a model that cannot say."""
    if certified is None:
        return {}
    return {"certified": float(certified.mean()) if len(certified) else 1.0}


def rank_users(
    recommender: Recommender,
    split: Split,
    *,
    k: int,
    exclude_history: bool,
    batch_size: int = 256,
    desc: str | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Every user's ranked list, in batches, and for a generative model whether each is certified.

    Args:
        recommender: the model; a :class:`~tidrec.models.CertifyingRecommender` also says which
            lists are provably its best.
        split: the users.
        k: list length.
        exclude_history: remove the users' seen items.
        batch_size: users per call.
        desc: a progress bar's label (None: no bar).

    Returns:
        ``(U, k)`` int64 item_idx (-1 padded) and a ``(U,)`` bool, or None for a model that cannot
        certify its lists.

    Raises:
        ValueError: the recommender returned lists of the wrong shape.
    """
    certifying = isinstance(recommender, CertifyingRecommender)
    lists, flags = [], []
    with tqdm(total=len(split), desc=desc, unit="user", disable=desc is None or None) as bar:
        for lo in range(0, len(split), batch_size):
            rows = np.arange(lo, min(lo + batch_size, len(split)))
            part = split.subset(rows)
            if certifying:
                ranked, certified = recommender.recommend_certified(
                    part, k=k, exclude_history=exclude_history
                )
                flags.append(np.asarray(certified, dtype=bool))
            else:
                ranked = recommender.recommend(part, k=k, exclude_history=exclude_history)
            ranked = np.asarray(ranked)
            if ranked.shape != (len(rows), k):
                raise ValueError(f"recommend returned {ranked.shape}, expected ({len(rows)}, {k})")
            lists.append(ranked)
            bar.update(len(rows))
    ranked = np.concatenate(lists) if lists else np.zeros((0, k), dtype=np.int64)
    if not certifying:
        return ranked, None
    return ranked, np.concatenate(flags) if flags else np.zeros(0, dtype=bool)


def save_result(result: EvalResult, folder: str | Path) -> Path:
    """Write ``results.json`` and ``results.md`` into ``folder`` (other settings get a suffix)."""
    folder = Path(folder)
    stem = "results"
    if result.split != "test" or result.exclude_history:
        stem += f"-{result.split}" + ("-exclude-history" if result.exclude_history else "")
    write_json(folder / f"{stem}.json", result.to_json())
    write_text(folder / f"{stem}.md", result.to_markdown())
    return folder / f"{stem}.json"


# ----------------------------------------------------------------------------- command line


@dataclass(frozen=True, kw_only=True)
class EvaluateConfig:
    """Options of ``python -m tidrec.evaluate``."""

    run: Path
    """Run folder (holds data/, tokenizer/ and models/)."""
    model: str = "tiger"
    """Model folder under <run>/models/ to evaluate (tiger, sasrec, pop, ...)."""
    split: Literal["valid", "test"] = "test"
    """Leave-one-out split: test predicts each user's last item, valid the one before."""
    k: int = 20
    """Length of each ranked list."""
    exclude_history: bool = False
    """Remove items the user has already interacted with from the lists."""
    batch_size: int = 256
    """Users per batch."""
    beam_size: int | None = None
    """Beams for the generative model's constrained decoding, at least k (None: k)."""
    decoder: Literal["beam", "exact"] = "beam"
    """The generative model's decoder: beam search, or ``exact``: beam search widened for each user
    until the list is provably the model's best (or --max-beam is reached). Both report the share
    of certified lists."""
    max_beam: int = 1024
    """The widest beam the exact decoder may use for one user."""
    item_score: float | None = None
    """The one-pass generative model trained with --item-loss: weight of its item head's
    log-probability added to each found item's SID log-probability, instead of the weight it was
    trained with (None: that one)."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """Where the model runs."""

    def __post_init__(self) -> None:
        if self.k < max(KS):
            raise ConfigError(f"--k must be >= {max(KS)} (Recall@{max(KS)} is reported), got {self.k}")
        check_range("--batch-size", self.batch_size, at_least=1)
        check_range("--max-beam", self.max_beam, at_least=1)
        check_range("--item-score", self.item_score, at_least=0)
        if self.beam_size is not None and self.beam_size < self.k:
            raise ConfigError(
                f"--beam-size must be >= --k ({self.k}), since decoding returns one item per beam; "
                f"got {self.beam_size}"
            )
        if self.device == "cuda":
            from tidrec.device import require_cuda

            require_cuda("--device cuda")


def load_recommender(
    run: Path,
    model: str,
    dataset: Dataset,
    *,
    beam_size: int = 20,
    decoder: str = "beam",
    max_beam: int = 1024,
    item_score: float | None = None,
    device: str = "auto",
):
    """The recommender saved under ``<run>/models/<model>/``, rebuilt by its registered spec.

    A folder whose name is not a registered model (a copy such as ``models/sasrec-w128``) is loaded
    as the model its ``train_info.json`` records.

    Raises:
        InputError: nothing trained there, or it does not match the run's data or SID table.
        ConfigError: ``item_score`` for a model that is not the generative one.
    """
    from tidrec import models
    from tidrec.io import read_json_object

    folder = Path(run) / "models" / model
    name = model
    if name not in models.names() and (folder / "train_info.json").is_file():
        name = str(
            read_json_object(folder / "train_info.json", remedy="re-run python -m tidrec.fit").get("model")
        )
    spec = models.get(name)
    if item_score is not None and spec.name != "tiger":
        raise ConfigError(f"--item-score applies to the generative model (tiger), not {name}")
    if not (folder / spec.artifact).is_file():
        raise InputError(f"{folder}: no trained model here (run python -m tidrec.fit --model {model} first)")
    request = models.LoadRequest(
        run=Path(run),
        folder=folder,
        dataset=dataset,
        beam_size=beam_size,
        decoder=decoder,
        max_beam=max_beam,
        item_score=item_score,
        device=device,
    )
    return spec.load(request)


def evaluate_run(config: EvaluateConfig) -> EvalResult:
    """Evaluate one trained model of a run folder; print and save its results."""
    from tidrec.data.dataset import load_dataset

    dataset = load_dataset(config.run / "data")
    recommender = load_recommender(
        config.run,
        config.model,
        dataset,
        beam_size=config.beam_size or config.k,
        decoder=config.decoder,
        max_beam=config.max_beam,
        item_score=config.item_score,
        device=config.device,
    )
    result = evaluate(
        recommender,
        dataset,
        split=config.split,
        k=config.k,
        exclude_history=config.exclude_history,
        batch_size=config.batch_size,
        model_name=config.model,
    )
    path = save_result(result, config.run / "models" / config.model / "eval")
    print(result.to_markdown())
    print(f"saved {path}")
    return result


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(
        EvaluateConfig,
        evaluate_run,
        argv,
        prog="python -m tidrec.evaluate",
        description="Leave-one-out, full-catalogue evaluation of a trained model.",
    )


if __name__ == "__main__":
    raise SystemExit(main())
