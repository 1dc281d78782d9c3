"""Beam width against quality and proof: how narrow can the one-pass model's beam be? (issue 15)

Usage (after ``python -m tidrec.run --dataset ml-100k --out runs/ml-100k``)::

    python experiments/beam_width.py runs/ml-100k --widths 10 20 40 \
        --out experiments/results/beam_width_ml100k

Decodes every test user's top-k (k = 10, seen items excluded, as the comparison table) with beam
search at each width, then with the exact decoder (beam search widened per user until the list is
certified, at most ``--max-beam`` beams). For each: Recall/NDCG@10 with standard errors, the share of
lists certified exact, how often the list differs from the exact one, and decode time (1 thread).
Writes ``beam_width.json`` and ``beam_width.md`` into ``--out``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from tidrec.io import write_json, write_text
from tidrec.metrics import ranking_metrics, standard_errors
from tidrec.models.tiger.onepass import recommend
from tidrec.models.tiger.onepass_train import load_run_onepass


def decode_all(model, split, *, k: int, width: int, decoder: str, max_beam: int, batch: int):
    """(U, k) lists, (U,) certified flags, (U,) beam widths and the decode seconds of every test user."""
    trie = model.trie()
    lists, certified, beams = [], [], []
    start = time.perf_counter()
    for lo in range(0, len(split), batch):
        histories = list(split.histories[lo : lo + batch])
        result = recommend(
            model, histories, beam_size=width, top_k=k, trie=trie, exclude=histories,
            decoder=decoder, max_beam=max_beam,
        )  # fmt: skip
        lists.append(result.item_idx.numpy())
        certified.append(result.certified.numpy())
        beams.append(result.beams.numpy())
    seconds = time.perf_counter() - start
    return np.concatenate(lists), np.concatenate(certified), np.concatenate(beams), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="run folder with a one-pass tiger model")
    parser.add_argument("--widths", type=int, nargs="+", default=[10, 20, 40])
    parser.add_argument("--k", type=int, default=10, help="list length")
    parser.add_argument("--max-beam", type=int, default=1024)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--users", type=int, default=0, help="decode only the first N test users (0: all)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    dataset, model = load_run_onepass(args.run)
    split = dataset.split("test")
    if args.users:
        split = split.subset(np.arange(min(args.users, len(split))))
    settings = [("beam", w) for w in args.widths] + [("exact", args.k)]
    decoded = {
        (decoder, width): decode_all(
            model,
            split,
            k=args.k,
            width=width,
            decoder=decoder,
            max_beam=args.max_beam,
            batch=args.batch_size,
        )
        for decoder, width in settings
    }
    exact_lists = decoded[("exact", args.k)][0]
    rows = []
    for (decoder, width), (lists, certified, beams, seconds) in decoded.items():
        metrics = {
            **ranking_metrics(lists, split.targets, ks=(10,)),
            **standard_errors(lists, split.targets, k=10),
        }
        rows.append(
            {
                "decoder": decoder if decoder == "beam" else f"exact (from {width}, at most {args.max_beam})",
                "beam": width,
                "recall@10": metrics["recall@10"],
                "recall@10_se": metrics["recall@10_se"],
                "ndcg@10": metrics["ndcg@10"],
                "ndcg@10_se": metrics["ndcg@10_se"],
                "certified": float(certified.mean()),
                "same_as_exact": float((lists == exact_lists).all(axis=1).mean()),
                "beams_p50": float(np.median(beams)),
                "beams_max": int(beams.max()),
                "ms_per_user": 1000 * seconds / len(split),
            }
        )
        print(rows[-1], flush=True)
    widths = " ".join(map(str, args.widths))
    header = (
        f"{dataset.name}, {len(split)} test users, top-{args.k} with seen items excluded, "
        f"`python experiments/beam_width.py {args.run} --widths {widths}"
        + (f" --users {args.users}" if args.users else "")
        + "`, 1 thread\n\n"
        "| decoder | beams (median) | Recall@10 | NDCG@10 | certified | as exact | widest | ms/user |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|\n"
    )
    lines = [
        f"| {r['decoder']} | {r['beams_p50']:.0f} | "
        f"{r['recall@10']:.4f} ± {r['recall@10_se']:.4f} | {r['ndcg@10']:.4f} ± {r['ndcg@10_se']:.4f} | "
        f"{100 * r['certified']:.1f} % | {100 * r['same_as_exact']:.1f} % | {r['beams_max']} | "
        f"{r['ms_per_user']:.1f} |"
        for r in rows
    ]
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / "beam_width.json", {"run": str(args.run), "k": args.k, "rows": rows})
    write_text(args.out / "beam_width.md", header + "\n".join(lines) + "\n")
    print(header + "\n".join(lines))


if __name__ == "__main__":
    main()
