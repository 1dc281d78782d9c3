"""History exclusion inside beam search: pad rate and accuracy of the top-20 lists at several beam widths.

Usage (after ``python -m tidrec.run --dataset ml-100k --out runs/ml-100k-e2e``)::

    nice -n 10 python experiments/exclusion_ml100k.py runs/ml-100k-e2e --beam-sizes 20 40

Decodes every test user with ``tidrec.generate.beam_search(exclude=history)`` (exact dead-node
exclusion at every trie level) and writes one table to
``experiments/results/exclusion_ml100k.{json,md}``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from tidrec.data.dataset import load_dataset
from tidrec.evaluate import ranking_metrics
from tidrec.generate import beam_search
from tidrec.io import write_json, write_text
from tidrec.model import encoder_inputs, load_checkpoint
from tokenizer.sid_table import SidTable
from trie import Trie


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--beam-sizes", type=int, nargs="+", default=[20, 40])
    parser.add_argument("--k", type=int, default=20, help="list length")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--out", type=Path, default=Path("experiments/results/exclusion_ml100k"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    loaded = load_checkpoint(args.run / "models/tiger/best.ckpt")
    dataset = load_dataset(args.run / "data")
    sids = SidTable.load(args.run / "tokenizer/sids.parquet")
    loaded.check_sids(sids, args.run / "tokenizer/sids.parquet")
    sid_tokens = loaded.vocab.sid_tokens(sids.codes)  # (I, L)
    trie = Trie.from_codes(sid_tokens)
    split = dataset.split("test")
    rows = []
    for beam_size in args.beam_sizes:
        ranked, start = [], time.perf_counter()
        for lo in range(0, len(split), args.batch_size):
            histories = split.histories[lo : lo + args.batch_size]
            users = [str(u) for u in dataset.user_ids[split.users[lo : lo + args.batch_size]]]
            ids, mask = encoder_inputs(loaded.vocab, sid_tokens, histories, users, loaded.config.max_items)
            result = beam_search(
                loaded.model, ids, mask, trie=trie, beam_size=beam_size, top_k=args.k, exclude=list(histories)
            )
            ranked.append(result.item_idx.numpy())
        seconds = time.perf_counter() - start
        lists = np.concatenate(ranked)  # (B, k)
        pairs = zip(lists.tolist(), split.histories, strict=True)
        leaked = sum(len(set(r) & set(h.tolist())) for r, h in pairs)
        metrics = ranking_metrics(lists, split.targets)
        rows.append(
            {
                "beam_size": beam_size,
                "pad_rate": float(np.mean(lists == -1)),
                "history_items_returned": leaked,
                "recall@10": metrics["recall@10"],
                "ndcg@10": metrics["ndcg@10"],
                "recall@20": metrics["recall@20"],
                "decode_s": seconds,
            }
        )
        print(rows[-1])
    header = "| beams | pad rate | history items returned | Recall@10 | NDCG@10 | Recall@20 | decode s |"
    lines = [header, "|---:|---:|---:|---:|---:|---:|---:|"]
    lines += [
        f"| {r['beam_size']} | {r['pad_rate']:.4f} | {r['history_items_returned']} | {r['recall@10']:.4f} | "
        f"{r['ndcg@10']:.4f} | {r['recall@20']:.4f} | {r['decode_s']:.1f} |"
        for r in rows
    ]
    table = "\n".join(lines)
    print(table)
    source = {"run": str(args.run), "users": len(split), "items": dataset.num_items, "k": args.k}
    write_json(args.out.with_suffix(".json"), {**source, "rows": rows})
    write_text(args.out.with_suffix(".md"), table + "\n")


if __name__ == "__main__":
    main()
