"""Where items added after training land, and whether the trained generative model recommends them.

For a run grown with ``python -m tidrec.tokenize --out RUN --add-items FILE`` (the model trained
before): each added item's SID, the fitted items that share its first two codes, and how many test
users get it in their top 10 (beam search, seen items excluded) from the model as it was trained.

    python experiments/added_items.py RUN [RUN ...] [--beam-size 20]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from tidrec.data.dataset import load_dataset
from tidrec.evaluate import load_recommender
from tokenizer.sid_table import SidTable


def report(run: Path, beam_size: int) -> None:
    dataset = load_dataset(run / "data")
    sids = SidTable.load(run / "tokenizer" / "sids.parquet")
    if not dataset.lineage:
        raise SystemExit(f"{run}: no items were added to this run (python -m tidrec.tokenize --add-items)")
    first_added = dataset.lineage[-1][0]
    recommender = load_recommender(run, "tiger", dataset, beam_size=beam_size, device="cpu")
    split = dataset.split("test")
    ranked = recommender.recommend(split, k=10, exclude_history=True)  # (U, 10)
    added = dataset.num_items - first_added
    print(f"\n{run}: {added} added items, {len(split)} test users, beam {beam_size}")
    print("| added item | SID | fitted items sharing the first two codes | users with it in their top 10 |")
    print("|---|---|---|---:|")
    for item in range(first_added, dataset.num_items):
        code = sids.codes[item]
        siblings = np.flatnonzero((sids.codes[:first_added, :2] == code[:2]).all(axis=1))
        names = "; ".join(dataset.item_texts[s].split(".")[0].removeprefix("Title: ") for s in siblings[:3])
        more = f" (+{len(siblings) - 3})" if len(siblings) > 3 else ""
        title = dataset.item_texts[item].split(".")[0].removeprefix("Title: ")
        count = int((ranked == item).any(axis=1).sum())
        print(f"| {title} | {tuple(code.tolist())} | {names or '(none)'}{more} | {count} |")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("runs", type=Path, nargs="+", help="run folders grown with --add-items")
    parser.add_argument("--beam-size", type=int, default=20, help="beams of the search")
    args = parser.parse_args()
    for run in args.runs:
        report(run, args.beam_size)


if __name__ == "__main__":
    main()
