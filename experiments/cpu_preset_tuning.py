"""One CPU-preset tuning experiment on a tokenized run folder: fit under a wall budget, then test.

Usage (after ``python -m tidrec.tokenize --dataset ml-100k --out runs/ml-100k``)::

    nice -n 10 python experiments/cpu_preset_tuning.py runs/ml-100k NAME --minutes 6 --lr 3e-3 ...

Every other flag is passed to ``python -m tidrec.fit`` (e.g. ``--user-buckets 0``). The model
trains in ``<run>/tune/NAME/`` (data/ and tokenizer/ linked to the run's), is evaluated on the test
split with and without history exclusion, next to popularity under the same rule, and one JSON line
per experiment is appended to ``<run>/tune/rows.jsonl``.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import torch

import tidrec.fit as fit_module
from tidrec.cli import parse_config
from tidrec.data.dataset import load_dataset
from tidrec.evaluate import evaluate, load_recommender
from tidrec.fit import FitConfig, fit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("name")
    parser.add_argument("--minutes", type=float, default=6.0, help="training budget (--max-time)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument(
        "--step-decay-only", action="store_true", help="decay the rate by steps alone, ignoring the budget"
    )
    args, fit_args = parser.parse_known_args()  # the rest are python -m tidrec.fit flags
    fit_args = [a for a in fit_args if a != "--"]
    torch.set_num_threads(args.threads)
    if args.step_decay_only:  # the schedule as before the budget-aware decay, for comparison
        original = fit_module.TigerModule

        class StepDecayOnly(original):
            def __init__(self, *pos, **kw) -> None:
                super().__init__(*pos, **{**kw, "budget_minutes": None})

        fit_module.TigerModule = StepDecayOnly
    folder = args.run / "tune" / args.name
    folder.mkdir(parents=True, exist_ok=True)
    for part in ("data", "tokenizer"):
        if not (folder / part).exists():
            (folder / part).symlink_to((args.run / part).resolve())
    flags = ["--run", str(folder), "--max-time", str(args.minutes), "--progress", "false", *fit_args]
    config = parse_config(FitConfig, flags, prog="fit", description="fit")
    dataset = load_dataset(args.run / "data")
    start = time.perf_counter()
    fit(config)
    train_s = time.perf_counter() - start
    with open(folder / "models/tiger/metrics.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    validated = [r for r in rows if r.get("val/ndcg@10")]
    steps = max(int(r["step"]) for r in rows)
    row = {
        "name": args.name,
        "fit_args": fit_args + (["(step decay only)"] if args.step_decay_only else []),
        "minutes": args.minutes,
        "train_s": round(train_s, 1),
        "epochs": len(validated),
        "steps": steps,
        "best_val_ndcg10": max(float(r["val/ndcg@10"]) for r in validated),
    }
    tiger = load_recommender(folder, "tiger", dataset)
    pop = load_recommender(args.run, "pop", dataset)
    for exclude in (False, True):
        suffix = "excl" if exclude else "all"
        for model_name, recommender in (("tiger", tiger), ("pop", pop)):
            begin = time.perf_counter()
            metrics = evaluate(recommender, dataset, exclude_history=exclude, model_name=model_name).metrics
            row[f"{model_name}_{suffix}"] = {
                "recall@10": round(metrics["recall@10"], 4),
                "ndcg@10": round(metrics["ndcg@10"], 4),
                "eval_s": round(time.perf_counter() - begin, 1),
            }
    with open(args.run / "tune" / "rows.jsonl", "a") as handle:
        handle.write(json.dumps(row) + "\n")
    print(json.dumps(row, indent=1))


if __name__ == "__main__":
    main()
