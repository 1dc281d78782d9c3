"""What the CPU preset costs in quality: the cpu and tiger presets trained under the same wall budget.

Usage (after ``python -m tidrec.tokenize --dataset ml-100k --out runs/ml-100k``)::

    OMP_WAIT_POLICY=PASSIVE nice -n 10 python experiments/preset_quality.py runs/ml-100k --minutes 10

Each preset trains in ``<run>/presets/<preset>/`` (data/ and tokenizer/ linked to the run's), is
evaluated on the test split (full ranking, no exclusion), and one table goes to
``<run>/presets/preset_quality.{json,md}``.
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

from tidrec.data.dataset import load_dataset
from tidrec.evaluate import evaluate, load_recommender, markdown_table
from tidrec.fit import FitConfig, fit
from tidrec.io import write_json, write_text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--minutes", type=float, default=10.0, help="training budget per preset")
    parser.add_argument("--presets", nargs="+", default=["cpu", "tiger"])
    parser.add_argument("--max-epochs", type=int, default=50, help="epoch cap per preset")
    parser.add_argument("--positions-per-user", type=int, default=None, help="same for both presets")
    args = parser.parse_args()
    dataset = load_dataset(args.run / "data")
    rows, results = [], []
    for preset in args.presets:
        folder = args.run / "presets" / preset
        folder.mkdir(parents=True, exist_ok=True)
        for part in ("data", "tokenizer"):
            if not (folder / part).exists():
                (folder / part).symlink_to((args.run / part).resolve())
        start = time.perf_counter()
        cpu_start = time.process_time()
        config = FitConfig(
            run=folder,
            preset=preset,
            max_time=args.minutes,
            max_epochs=args.max_epochs,
            positions_per_user=args.positions_per_user,
            progress=False,
        )
        fit(config)
        train_wall, train_cpu = time.perf_counter() - start, time.process_time() - cpu_start
        with open(folder / "models/tiger/metrics.csv", newline="") as handle:
            epochs = max(int(r["epoch"]) for r in csv.DictReader(handle) if r.get("val/ndcg@10")) + 1
        result = evaluate(load_recommender(folder, "tiger", dataset), dataset, model_name=f"tiger-{preset}")
        results.append(result)
        rows.append(
            {
                "preset": preset,
                "epochs_validated": epochs,
                "train_wall_s": round(train_wall, 1),
                "train_cpu_s": round(train_cpu, 1),
                "metrics": result.metrics,
            }
        )
        print(markdown_table(results))
    write_json(args.run / "presets" / "preset_quality.json", {"args": vars(args), "rows": rows})
    header = (
        f"budget {args.minutes} min / {args.max_epochs} epochs per preset (wall clock, shared 2-core CPU), "
        f"positions per user: {args.positions_per_user or 'preset'}\n"
    )
    lines = [header, markdown_table(results)]
    for r in rows:
        lines.append(
            f"- {r['preset']}: {r['epochs_validated']} epochs, train wall {r['train_wall_s']} s, "
            f"CPU {r['train_cpu_s']} s\n"
        )
    write_text(args.run / "presets" / "preset_quality.md", "".join(lines))
    print("".join(lines))


if __name__ == "__main__":
    main()
