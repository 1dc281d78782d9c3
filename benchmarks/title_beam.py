"""Title-trie beam search against HF ``generate`` with ``prefix_allowed_tokens_fn``, on a real causal LM.

Both decode the same users' prompts (the newest 10 history titles, then the question) over the same
trie of the catalogue's title token sequences (each ending with EOS), with the same beam width and
scores (summed full-vocabulary log-probabilities: ``length_penalty=0``). Reported: users per
second of each, the share of users whose top-k item lists are identical (HF's generated sequences
mapped back to items through the trie), and the trie's bytes per item for the dataset's titles
(and ML-1M's with ``--data-1m``).

Where the lists differ, HF's beam bookkeeping is the reason: each step it keeps the best
``2 * num_beams`` continuations of a user and admits a sequence that has just ended with EOS to its
finished list only when it ranks in the top ``num_beams`` of them; ours collects every finished
title among each beam's best ``beam_size + top_k`` continuations. The live beams are the same
(the best non-finished continuations) in both, so our list can only hold items HF discarded: it
is never worse, position by position. The script checks this and counts where HF is worse.
With ``--early-stopping true`` HF stops once ``num_beams`` sequences have finished, before the
live beams are known to be worse, and a finished sequence can come back with its score offset by
HF's internal -1e9 penalty (so out of rank); the canonical search is ``"never"`` (the default).

    OMP_NUM_THREADS=1 python benchmarks/title_beam.py --data /tmp/rA/data --users 32 --data-1m /tmp/m1/data
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np
import torch

from tidrec.data.dataset import load_dataset
from tidrec.io import write_json
from tidrec.models.genrec.decode import left_pad, title_beam_search, title_trie
from tidrec.models.genrec.llm import DEFAULT_LLM, load_causal_lm
from tidrec.models.genrec.prompts import item_titles, prompt_ids, title_sequences
from trie import Trie


def hf_constrained_beam(
    model, ids: torch.Tensor, mask: torch.Tensor, trie: Trie, *, beams: int, top_k: int, eos: int, pad: int,
    early_stopping: bool | str,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """HF beam search restricted to the trie: ``(B, top_k)`` item_idx (-1: not an item) and scores."""
    from transformers import GenerationConfig

    prompt_len = ids.shape[1]

    def allowed(_batch_id: int, sequence: torch.Tensor) -> list[int]:
        tokens = trie.allowed_tokens(sequence[prompt_len:].tolist())
        return tokens.tolist() or [eos]  # a finished sequence: any token, its score no longer counts

    config = GenerationConfig(
        do_sample=False,
        num_beams=beams,
        num_return_sequences=top_k,
        length_penalty=0.0,
        early_stopping=early_stopping,
        max_new_tokens=trie.depth,
        eos_token_id=eos,
        pad_token_id=pad,
        return_dict_in_generate=True,
        output_scores=True,
    )
    with torch.inference_mode():
        out = model.generate(
            input_ids=ids, attention_mask=mask, generation_config=config, prefix_allowed_tokens_fn=allowed
        )
    items = np.full(len(out.sequences), -1, dtype=np.int64)
    for row, sequence in enumerate(out.sequences[:, prompt_len:].tolist()):
        end = sequence.index(eos) + 1 if eos in sequence else len(sequence)
        items[row] = trie.item_of(sequence[:end])
    return items.reshape(len(ids), top_k), out.sequences_scores.float().numpy().reshape(len(ids), top_k)


def scored_items(items: np.ndarray, scores: np.ndarray) -> list[tuple[int, float]]:
    """(item_idx, log-probability rounded to 3 places) pairs of one user's list."""
    return [(int(i), round(float(s), 3)) for i, s in zip(items, scores, strict=True)]


def trie_size(tokenizer, folder: Path) -> dict:
    """The title trie of a dataset folder: items, depth, nodes, bytes (of which the dense (node, token)
    tables of small depths, the root's spanning the token ids of all first tokens) and bytes per item."""
    dataset = load_dataset(folder)
    trie = title_trie(title_sequences(tokenizer, item_titles(dataset.item_texts, dataset.item_ids)))
    nodes = sum(trie.num_nodes(d) for d in range(trie.depth + 1))
    return {
        "dataset": dataset.name,
        "data": str(folder),
        "items": trie.num_items,
        "depth": trie.depth,
        "nodes": nodes,
        "root_fanout": trie.max_fanout(0),
        "bytes": trie.nbytes,
        "dense_bytes": sum(table.nbytes for table in trie.dense if table is not None),
        "bytes_per_item": trie.bytes_per_item,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, required=True, help="prepared dataset folder (e.g. ML-100K)")
    parser.add_argument("--data-1m", type=Path, default=None, help="also size ML-1M's title trie")
    parser.add_argument("--llm", default=DEFAULT_LLM, help="causal LM (default: the bundled SmolLM2)")
    parser.add_argument("--users", type=int, default=32, help="test users decoded (the first ones)")
    parser.add_argument("--batch", type=int, default=16, help="users per batch")
    parser.add_argument("--beam", type=int, default=10, help="beams per user")
    parser.add_argument("--top-k", type=int, default=10, help="items returned per user")
    parser.add_argument("--prompt-items", type=int, default=10, help="history titles in the prompt")
    parser.add_argument("--max-prompt-tokens", type=int, default=512)
    parser.add_argument(
        "--early-stopping", default="never", choices=["never", "true", "false"], help="HF's early_stopping"
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/title_beam.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    early_stopping = {"never": "never", "true": True, "false": False}[args.early_stopping]

    start = time.perf_counter()
    model, tokenizer = load_causal_lm(args.llm)
    load_s = time.perf_counter() - start
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    dataset = load_dataset(args.data)
    sequences = title_sequences(tokenizer, item_titles(dataset.item_texts, dataset.item_ids))
    trie = title_trie(sequences)
    split = dataset.split("test")
    histories = split.histories[: args.users]
    prompts = [
        prompt_ids(tokenizer, sequences, h, prompt_items=args.prompt_items, max_tokens=args.max_prompt_tokens)
        for h in histories
    ]
    print(
        f"{args.llm} loaded in {load_s:.0f}s; {trie.num_items:,} titles, trie depth {trie.depth}; "
        f"{len(prompts)} users, prompts of {min(map(len, prompts))}-{max(map(len, prompts))} tokens"
    )

    seconds = {"ours": 0.0, "hf": 0.0}
    same_list = same_set = hf_worse = ours_worse = certified = 0
    example = None
    for first in range(0, len(prompts), args.batch):
        ids, mask = left_pad(prompts[first : first + args.batch], pad)
        tick = time.perf_counter()
        ours = title_beam_search(model, ids, mask, trie=trie, beam_size=args.beam, top_k=args.top_k)
        seconds["ours"] += time.perf_counter() - tick
        tick = time.perf_counter()
        hf_items, hf_scores = hf_constrained_beam(
            model, ids, mask, trie, beams=args.beam, top_k=args.top_k, eos=eos, pad=pad,
            early_stopping=early_stopping,
        )  # fmt: skip
        seconds["hf"] += time.perf_counter() - tick
        our_items, our_scores = ours.item_idx.numpy(), ours.log_probs.numpy()
        certified += int(ours.certified.sum())
        for row in range(len(ids)):
            same_list += bool((our_items[row] == hf_items[row]).all())
            same_set += set(our_items[row].tolist()) == set(hf_items[row].tolist())
            gap = our_scores[row] - hf_scores[row]  # position by position, both best first
            hf_worse += bool((gap > 1e-3).any())
            ours_worse += bool((gap < -1e-3).any())
            if example is None and not (our_items[row] == hf_items[row]).all():
                example = {
                    "user": first + row,
                    "ours": scored_items(our_items[row], our_scores[row]),
                    "hf": scored_items(hf_items[row], hf_scores[row]),
                }
        print(f"  users {first + len(ids):>4}: ours {seconds['ours']:7.1f}s  hf {seconds['hf']:7.1f}s")

    users = len(prompts)
    sizes = [trie_size(tokenizer, args.data)]
    if args.data_1m is not None:
        sizes.append(trie_size(tokenizer, args.data_1m))
    rows = {
        "users/s": {k: users / v for k, v in seconds.items()},
        "seconds": seconds,
    }
    print(
        f"\nbatch {args.batch}, beam {args.beam}, top-{args.top_k}, {args.threads} thread(s), "
        f"HF early_stopping={early_stopping!r}"
    )
    print(f"{'':<34} {'ours':>10} {'HF generate':>12}")
    print(f"{'users/s':<34} {rows['users/s']['ours']:10.3f} {rows['users/s']['hf']:12.3f}")
    print(f"{'seconds':<34} {seconds['ours']:10.1f} {seconds['hf']:12.1f}")
    print(f"{'speed-up':<34} {seconds['hf'] / seconds['ours']:10.2f}x")
    print(f"{'identical top-k lists':<34} {same_list / users:10.1%}")
    print(f"{'same items, any order':<34} {same_set / users:10.1%}")
    print(f"{'a score lower than the other list':<34} {ours_worse / users:10.1%} {hf_worse / users:12.1%}")
    print(f"{'certified exact (ours)':<34} {certified / users:10.1%}")
    print("\ntitle trie  items  depth   nodes root fan-out     KiB  dense KiB  B/item")
    for size in sizes:
        print(
            f"{size['dataset']:<10} {size['items']:6,} {size['depth']:6} {size['nodes']:7,} "
            f"{size['root_fanout']:12} {size['bytes'] / 1024:7.1f} {size['dense_bytes'] / 1024:10.1f} "
            f"{size['bytes_per_item']:7.1f}"
        )
    if example is not None:
        print(f"\nfirst differing user {example['user']} (item, log-prob), ours then HF:")
        print(f"  ours {example['ours']}\n  hf   {example['hf']}")
    write_json(
        args.out,
        {
            "machine": f"{platform.machine()}, {args.threads} torch thread(s), torch {torch.__version__}",
            "llm": args.llm,
            "data": str(args.data),
            "users": users,
            "batch": args.batch,
            "beam": args.beam,
            "top_k": args.top_k,
            "hf_early_stopping": early_stopping,
            "seconds": seconds,
            "users_per_s": rows["users/s"],
            "identical_lists": same_list / users,
            "same_item_sets": same_set / users,
            "ours_lower_somewhere": ours_worse / users,
            "hf_lower_somewhere": hf_worse / users,
            "certified": certified / users,
            "tries": sizes,
            "first_difference": example,
        },
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
