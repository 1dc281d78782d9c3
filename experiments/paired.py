"""Is model A ahead of model B? Their per-user NDCG@10 and Recall@10 differences on one run folder.

    python experiments/paired.py RUN tiger sasrec [--split test] [--out FILE.md]

Both trained models rank the split's users (full catalogue, already-seen items excluded, as
``tidrec.compare`` does; the generative model with 20 beams); the mean difference and its standard
error come from the same users' paired values (:func:`tidrec.metrics.paired_difference`), which is
the yardstick for a difference between two rows of one table.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tidrec.data.dataset import load_dataset
from tidrec.evaluate import load_recommender, rank_users
from tidrec.io import write_text
from tidrec.metrics import paired_difference


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("a")
    parser.add_argument("b")
    parser.add_argument("--split", choices=("valid", "test"), default="test")
    parser.add_argument("--out", type=Path, help="also write the line here")
    args = parser.parse_args()
    dataset = load_dataset(args.run / "data")
    split = dataset.split(args.split)
    ranked = {}
    for name in (args.a, args.b):
        recommender = load_recommender(args.run, name, dataset, beam_size=20)
        ranked[name], _ = rank_users(recommender, split, k=20, exclude_history=True)
    d = paired_difference(ranked[args.a], ranked[args.b], split.targets, k=10)
    diff, se = d["ndcg@10_diff"], d["ndcg@10_diff_se"]
    ratio = f"{diff / se:+.1f} SE" if se > 0 else "the same for every user"
    line = (
        f"{args.run} ({args.split}, {len(split)} users): {args.a} - {args.b}: "
        f"NDCG@10 {diff:+.4f} ± {se:.4f} ({ratio}), "
        f"Recall@10 {d['recall@10_diff']:+.4f} ± {d['recall@10_diff_se']:.4f}; "
        f"better for {int(d['a_better'])} users, worse for {int(d['b_better'])}\n"
    )
    print(line, end="")
    if args.out:
        write_text(args.out, line)


if __name__ == "__main__":
    main()
