"""Validation and test NDCG@10 of the generative-model settings of ``experiments/ml100k_preset_sweep.sh``.

    python experiments/sweep_table.py ROOT [--out ROOT/sweep.md]

One row per setting (folders ``ROOT/SETTING-sSEED``), one column group per seed: the best
validation NDCG@10, the mean of the last five validations (less swayed by one lucky epoch, which
is what the preset was chosen on), test NDCG@10 ± its standard error, epochs run and training
minutes; then the means over the seeds every setting ran. The baselines' test NDCG@10 per seed come
from ``ROOT/sSEED/results.json``.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from tidrec.io import write_text
from tidrec.training import read_metrics

FOLDER = re.compile(r"(?P<setting>.+)-s(?P<seed>\d+)$")


def test_row(run: Path, model: str) -> dict | None:
    path = run / "results.json"
    if not path.exists():
        return None
    rows = json.loads(path.read_text())["results"]
    return next((row for row in rows if row["model"] == model), None)


def setting_runs(root: Path) -> dict[str, dict[str, dict[str, float]]]:
    """{setting: {seed: measures}} for every finished generative-model run under ``root``."""
    runs: dict[str, dict[str, dict[str, float]]] = {}
    for run in sorted(root.iterdir()):
        match = FOLDER.match(run.name)
        row = test_row(run, "tiger") if match else None
        if row is None:
            continue
        val = [value for _, value in read_metrics(run / "models/tiger/metrics.csv").get("val/ndcg@10", [])]
        runs.setdefault(match["setting"], {})[match["seed"]] = {
            "best": max(val),
            "last5": sum(val[-5:]) / len(val[-5:]),
            "test": row["ndcg@10"],
            "se": row["ndcg@10_se"],
            "epochs": len(val),
            "minutes": row["train_seconds"] / 60,
        }
    return runs


def table(root: Path) -> str:
    runs = setting_runs(root)
    seeds = sorted({seed for by_seed in runs.values() for seed in by_seed}, key=int)
    per_seed = [f"seed {s}: val best / last 5 / test (epochs, min)" for s in seeds]
    head = ["setting", *per_seed, "mean last 5", "mean test"]
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for setting, by_seed in sorted(runs.items(), key=lambda item: item[0] != "preset15"):
        cells = [setting]
        for seed in seeds:
            m = by_seed.get(seed)
            cells.append(
                "–"
                if m is None
                else f"{m['best']:.4f} / {m['last5']:.4f} / {m['test']:.4f} ± {m['se']:.4f} "
                f"({m['epochs']}, {m['minutes']:.1f})"
            )
        for key in ("last5", "test"):
            values = [m[key] for m in by_seed.values()]
            cells.append(f"{sum(values) / len(values):.4f} ({len(values)} seeds)")
        lines.append("| " + " | ".join(cells) + " |")
    for model in ("sasrec", "pop"):
        rows = {seed: test_row(root / f"s{seed}", model) for seed in seeds}
        cells = [f"{model} (test)"] + [
            f"{r['ndcg@10']:.4f} ± {r['ndcg@10_se']:.4f}" if r else "–" for r in rows.values()
        ]
        found = [r["ndcg@10"] for r in rows.values() if r]
        cells += ["", f"{sum(found) / len(found):.4f} ({len(found)} seeds)" if found else "–"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("--out", type=Path, help="also write the table here")
    args = parser.parse_args()
    text = table(args.root)
    print(text, end="")
    if args.out:
        write_text(args.out, text)


if __name__ == "__main__":
    main()
