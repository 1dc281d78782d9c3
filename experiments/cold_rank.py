"""Where the generative model ranks held-out (cold) items: the full catalogue ranked exactly for test
users whose target is cold and for as many whose target is warm.

    python experiments/cold_rank.py RUN [RUN ...] [--users 60]

Prints, per run, the median rank of the true target (0 = first) and the share of cold items among
everyone's top 100.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from tidrec.models.tiger.onepass import recommend
from tidrec.models.tiger.onepass_train import load_run_onepass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+")
    parser.add_argument("--users", type=int, default=60)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print("| run | targets | users | median rank of the target | cold items in the top 100 |")
    print("|---|---|---:|---:|---:|")
    for run in args.runs:
        dataset, model = load_run_onepass(run)
        if dataset.cold_from is None:
            raise SystemExit(f"{run}: not a cold-start run (prepare it with --cold-start)")
        test = dataset.split("test")
        for name, rows in (
            ("cold", np.flatnonzero(test.targets >= dataset.cold_from)[: args.users]),
            ("warm", np.flatnonzero(test.targets < dataset.cold_from)[: args.users]),
        ):
            every = recommend(model, [test.histories[i] for i in rows], beam_size=dataset.num_items)
            items = every.item_idx.numpy()  # (U, I): every item, best first
            ranks = [int(np.flatnonzero(items[j] == test.targets[i])[0]) for j, i in enumerate(rows)]
            cold_top = float((items[:, :100] >= dataset.cold_from).mean())
            print(f"| {run} | {name} | {len(rows)} | {np.median(ranks):.0f} | {cold_top:.2%} |")


if __name__ == "__main__":
    main()
