"""Validation NDCG@10 of several trained models against training minutes, in one plot.

    python experiments/val_curves.py "next item=R1/models/tiger" "mixed=R2/models/tiger" --out curves.png

Each model folder's ``metrics.csv`` gives validation NDCG@10 per epoch and its ``train_info.json``
the training seconds; an epoch's point is drawn at (epochs done) x (mean seconds per epoch), so
the x axis is approximate where epochs differ in cost. A model trained with ``--objective pretrain``
also has ``pretrain/``: its masked stage is drawn dashed, and fine-tuning starts where it ended.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tidrec.io import atomic_path
from tidrec.training import read_metrics

METRIC = "val/ndcg@10"


def minutes_curve(model_dir: Path, start: float = 0.0) -> tuple[list[float], list[float], float]:
    """(minutes, NDCG@10) per validated epoch of one training stage, and the stage's end in minutes."""
    info = json.loads((model_dir / "train_info.json").read_text())
    seconds = float(info["train_seconds"]) - float(info.get("pretrain_seconds", 0.0))
    points = read_metrics(model_dir / "metrics.csv").get(METRIC, [])
    per_epoch = seconds / 60 / max(int(info["epochs"]), 1)
    minutes = [start + (epoch + 1) * per_epoch for epoch, _ in points]
    return minutes, [value for _, value in points], start + seconds / 60


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="LABEL=MODEL_DIR (a folder holding metrics.csv)")
    parser.add_argument("--out", type=Path, required=True, help="PNG to write")
    parser.add_argument("--title", default="validation NDCG@10")
    args = parser.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [spec.partition("=")[::2] for spec in args.models]
    for label, folder in runs:
        for name in ("metrics.csv", "train_info.json"):
            if not label or not (Path(folder) / name).is_file():
                parser.error(f"{label}={folder}: expected LABEL=MODEL_DIR, a folder holding {name}")

    fig, axis = plt.subplots(figsize=(8, 4.5))
    for label, folder in runs:
        model_dir = Path(folder)
        start = 0.0
        if (model_dir / "pretrain" / "train_info.json").exists():
            minutes, values, start = minutes_curve(model_dir / "pretrain")
            line = axis.plot(minutes, values, linestyle="--", label=f"{label}: masked stage")[0]
            color = line.get_color()
        else:
            color = None
        minutes, values, _ = minutes_curve(model_dir, start)
        axis.plot(minutes, values, marker=".", color=color, label=label)
    axis.set_xlabel("training minutes (epochs x mean epoch time)")
    axis.set_ylabel("NDCG@10")
    axis.set_title(args.title)
    axis.grid(alpha=0.3)
    axis.legend()
    fig.tight_layout()
    with atomic_path(args.out) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
