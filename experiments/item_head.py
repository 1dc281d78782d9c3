"""SID decoder against item head: how a one-pass model trained with ``--item-loss`` ranks best.

    python experiments/item_head.py R --split valid --users 1000 --beam 40

For each user (seen items excluded): the beam's items ranked by their SID log-probability alone
(weight 0), by the SID log-probability plus each ``--weights`` times the item head's
log-probability (what ``--item-score W`` decodes), and the whole catalogue ranked by the item head
alone (the history's latest encoder state against the item-id table, SASRec's scoring). Prints
Recall/NDCG@10 with standard errors.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from tidrec.metrics import ranking_metrics, standard_errors
from tidrec.models.tiger.onepass import encode_items, history_batch, item_scores, recommend
from tidrec.models.tiger.onepass_train import load_run_onepass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--split", choices=["valid", "test"], default="valid")
    parser.add_argument("--users", type=int, default=1000, help="the split's first N users")
    parser.add_argument("--beam", type=int, default=40)
    parser.add_argument("--weights", type=float, nargs="+", default=[0.0, 0.25, 0.5, 1.0, 2.0])
    args = parser.parse_args()
    torch.set_num_threads(1)
    dataset, model = load_run_onepass(args.run)
    split = dataset.split(args.split)
    split = split.subset(np.arange(min(args.users, len(split))))
    ranked: dict[str, list[np.ndarray]] = {f"beam, item weight {w}": [] for w in args.weights}
    ranked["item head alone, whole catalogue"] = []
    for lo in range(0, len(split), 100):
        part = split.subset(np.arange(lo, min(lo + 100, len(split))))
        histories = [np.asarray(h) for h in part.histories]
        found = recommend(model, histories, beam_size=args.beam, exclude=histories, item_score=0.0)
        with torch.inference_mode():
            items, mask = history_batch(histories, model.num_items, model.config.max_items)
            latest = encode_items(model, items)[torch.arange(len(histories)), mask.sum(1) - 1]  # (B, D)
            head = item_scores(model, latest).float().log_softmax(-1)  # (B, I)
        for b, history in enumerate(histories):
            alone = head[b].clone()
            alone[torch.as_tensor(history, dtype=torch.long)] = float("-inf")
            ranked["item head alone, whole catalogue"].append(alone.topk(10).indices.numpy())
            keep = found.item_idx[b] >= 0
            candidates, sid = found.item_idx[b][keep], found.log_probs[b][keep]
            for weight in args.weights:
                order = (sid + weight * head[b, candidates]).argsort(descending=True)[:10]
                row = np.full(10, -1)
                row[: len(order)] = candidates[order].numpy()
                ranked[f"beam, item weight {weight}"].append(row)
    targets = np.asarray(split.targets)
    print(f"{dataset.name} {args.split}, first {len(split)} users, {args.beam} beams, seen items excluded")
    print("| ranking | Recall@10 | NDCG@10 |\n|---|---:|---:|")
    for name, rows in ranked.items():
        lists = np.stack(rows)
        m, se = ranking_metrics(lists, targets, ks=[10]), standard_errors(lists, targets)
        recall = f"{m['recall@10']:.4f} ± {se['recall@10_se']:.4f}"
        print(f"| {name} | {recall} | {m['ndcg@10']:.4f} ± {se['ndcg@10_se']:.4f} |")


if __name__ == "__main__":
    main()
