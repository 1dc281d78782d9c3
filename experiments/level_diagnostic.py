"""Where does the one-pass model lose the target? Per-level ranks of the true next item's SID codes.

Usage (after a run folder holds a one-pass tiger model)::

    python experiments/level_diagnostic.py runs/ml-1m --split valid --users 1000 \
        --out experiments/results/level_diagnostic_ml1m

For each user the model reads the history, then the target's SID is fed teacher-forced: at each
level, the true code's rank among the codes the trie allows after the true prefix (0 = the model's
favourite), its log-probability (over the allowed codes alone for a ``--trie-softmax`` model, whose
mass off the trie means nothing), and the probability on codes the trie does not allow there.
Seen items are not excluded: this looks at the model's factorised distribution itself. Writes
``level_diagnostic.json`` and ``.md`` into ``--out``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from tidrec.generate import decoder_hidden, self_attention_bias
from tidrec.io import write_json, write_text
from tidrec.models.tiger.onepass import decoder_state, history_batch
from tidrec.models.tiger.onepass_train import load_run_onepass
from trie import children_only


@torch.inference_mode()
def level_ranks(model, histories, targets, trie) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(U, L) rank of each true code among the allowed ones after the true prefix, its log-prob, and
    the probability the model puts on tokens the trie does not allow there."""
    items, mask = history_batch(histories, model.num_items, model.config.max_items)
    encoder = decoder_state(model, items, mask)
    tokens = model.sid_tokens[torch.as_tensor(targets)]  # (U, L)
    users, levels = tokens.shape
    bias = self_attention_bias(model.t5, levels, tokens.device)
    start = model.t5.config.decoder_start_token_id or 0
    feed = torch.full((users, 1), start, dtype=torch.long)
    cache = None
    ranks = np.zeros((users, levels), dtype=np.int64)
    log_probs = np.zeros((users, levels))
    leaked = np.zeros((users, levels))
    nodes = np.zeros(users, dtype=np.int64)
    torch_trie, vectors = trie.to_torch(tokens.device), model.node_vectors()
    for depth in range(levels):
        hidden, cache = decoder_hidden(model.t5, feed, encoder, cache, bias)  # (U, 1, D)
        logits = model.t5.lm_head(hidden[:, 0])  # (U, V)
        if model.config.trie_softmax:  # normalised over the allowed codes: the rest stay -inf
            logits = children_only(
                logits,
                torch.from_numpy(nodes),
                torch_trie,
                depth,
                hidden=None if vectors is None else hidden[:, 0],
                node_vectors=None if vectors is None else vectors[depth],
            )
        scores = logits.log_softmax(-1).numpy()  # (U, V)
        for user in range(users):
            allowed, children = trie.children(depth, int(nodes[user]))
            true = int(tokens[user, depth])
            ranks[user, depth] = int((scores[user, allowed] > scores[user, true]).sum())
            log_probs[user, depth] = scores[user, true] - (
                np.logaddexp.reduce(scores[user, allowed]) if model.config.trie_softmax else 0.0
            )  # a trie-softmax model's probabilities are over the allowed codes alone
            leaked[user, depth] = 1.0 - np.exp(scores[user, allowed]).sum()
            nodes[user] = int(children[np.flatnonzero(allowed == true)[0]])
        feed = tokens[:, depth : depth + 1]
    return ranks, log_probs, leaked


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--split", choices=["valid", "test"], default="valid")
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    dataset, model = load_run_onepass(args.run)
    trie = model.trie()
    split = dataset.split(args.split)
    split = split.subset(np.arange(min(args.users, len(split))))
    ranks, log_probs, leaked = [], [], []
    for lo in range(0, len(split), args.batch_size):
        part = split.subset(np.arange(lo, min(lo + args.batch_size, len(split))))
        r, p, q = level_ranks(model, list(part.histories), np.asarray(part.targets), trie)
        ranks.append(r)
        log_probs.append(p)
        leaked.append(q)
    ranks, log_probs, leaked = np.concatenate(ranks), np.concatenate(log_probs), np.concatenate(leaked)
    levels = ranks.shape[1]
    rows = [
        {
            "level": level,
            "top1": float((ranks[:, level] == 0).mean()),
            "top5": float((ranks[:, level] < 5).mean()),
            "median_rank": float(np.median(ranks[:, level])),
            "mean_nll": float(-log_probs[:, level].mean()),
            "leaked": float(leaked[:, level].mean()),
        }
        for level in range(levels)
    ]
    total_nll = float(-log_probs.sum(axis=1).mean())
    header = (
        f"{dataset.name} {args.split}, {len(split)} users, "
        f"`python experiments/level_diagnostic.py {args.run} --split {args.split} --users {args.users}`\n\n"
        "| level | true code first | in top 5 | median rank | mean NLL (nats) | mass on disallowed |\n"
        "|---:|---:|---:|---:|---:|---:|\n"
    )
    lines = [
        f"| {r['level']} | {100 * r['top1']:.1f} % | {100 * r['top5']:.1f} % | {r['median_rank']:.0f} | "
        f"{r['mean_nll']:.3f} | {100 * r['leaked']:.2f} % |"
        for r in rows
    ]
    footer = f"\nMean NLL of the whole SID: {total_nll:.3f} nats (log of {dataset.num_items} items: " + (
        f"{np.log(dataset.num_items):.3f}).\n"
    )
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / "level_diagnostic.json", {"run": str(args.run), "rows": rows, "sid_nll": total_nll})
    write_text(args.out / "level_diagnostic.md", header + "\n".join(lines) + "\n" + footer)
    print(header + "\n".join(lines) + "\n" + footer)


if __name__ == "__main__":
    main()
