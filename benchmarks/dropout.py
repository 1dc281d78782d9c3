"""Dropout kernels on CPU: F.dropout against 64-bit random words, alone and in a one-pass training step.

"Alone" times one dropout call on each activation shape the cpu preset's step drops (batch 8, 50
history items, 3 SID tokens per target: hidden states (8, 50, 128) in the encoder, (8, 150, 128)
in the decoder, feed-forward (8, 150, 512)). "Step" is one optimisation step (forward in bf16
autocast, backward, AdamW) of the one-pass cpu preset (2 + 2 layers, width 128, dropout 0.2, trie
softmax, item-id embedding, recency bias) on random 51-item windows over a catalogue of
``--items`` items with 3 x 32 codes and a collision level. The kernels alternate repeat by repeat,
so a noisy machine slows both alike; the table gives medians and the ratio of medians.

    OMP_NUM_THREADS=1 python benchmarks/dropout.py --threads 1
"""

from __future__ import annotations

import argparse
import platform
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from onepass_train import time_cases  # benchmarks/ is on the path when run as a script

from tidrec.dropout import DROPOUT_KERNELS, dropout
from tidrec.io import write_json
from tidrec.models.tiger.onepass import OnePassConfig, build_onepass, onepass_batch, onepass_loss
from tidrec.vocab import Vocab
from tokenizer.collision import add_collision_codes

SHAPES = {"encoder (8, 50, 128)": (8, 50, 128), "decoder (8, 150, 128)": (8, 150, 128),
          "feed-forward (8, 150, 512)": (8, 150, 512)}  # fmt: skip


def catalogue(items: int, seed: int = 0) -> tuple[Vocab, np.ndarray]:
    """A vocabulary of 3 x 32 codes + a collision level and ``items`` distinct random SIDs."""
    rng = np.random.default_rng(seed)
    codes = add_collision_codes(rng.integers(0, 32, (items, 3)))  # (I, 4), rows distinct
    vocab = Vocab(level_sizes=(32, 32, 32, int(codes[:, -1].max()) + 1), user_buckets=0)
    return vocab, vocab.sid_tokens(codes)


def step_fn(
    kernel: str, vocab: Vocab, sid_tokens: np.ndarray, windows: list[np.ndarray], decoder_layers: int = 2
) -> Callable[[], None]:
    """One cpu-preset one-pass training step with the given dropout kernel (and decoder depth)."""
    torch.manual_seed(0)
    config = OnePassConfig(
        d_model=128, num_layers=2, num_decoder_layers=decoder_layers, num_heads=4, d_kv=32, d_ff=512,
        dropout=0.2, max_items=50, item_id_embedding=True, recency_bias=True, attention_dropout=0.0,
        trie_softmax=True, dropout_kernel=kernel,
    )  # fmt: skip
    model = build_onepass(config, vocab, sid_tokens).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    batch = onepass_batch(windows, sid_tokens, 50, eos=False)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = onepass_loss(model, batch)
        loss.backward()
        optimizer.step()

    return step


def write_rows(args: argparse.Namespace, rows: list[dict]) -> None:
    """Write a step benchmark's rows, with the machine, catalogue size and repeats, to ``args.out``."""
    write_json(
        args.out,
        {
            "machine": f"{platform.machine()}, {args.threads} torch thread(s), torch {torch.__version__}",
            "items": args.items,
            "repeats": args.repeats,
            "rows": rows,
        },
    )
    print(f"wrote {args.out}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--items", type=int, default=3706, help="catalogue size (ML-1M: 3,706)")
    parser.add_argument("--repeats", type=int, default=21, help="timed repeats per kernel, after a warm-up")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/dropout.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    cases: dict[str, dict[str, Callable[[], None]]] = {}
    for case, shape in SHAPES.items():
        x = torch.randn(shape, dtype=torch.bfloat16)
        cases[f"dropout alone, {case}"] = {
            k: (lambda x=x, k=k: dropout(x, 0.2, training=True, kernel=k)) for k in DROPOUT_KERNELS
        }
    vocab, sid_tokens = catalogue(args.items)
    rng = np.random.default_rng(1)
    windows = [rng.integers(0, args.items, 51) for _ in range(8)]
    cases["one-pass cpu-preset step"] = {k: step_fn(k, vocab, sid_tokens, windows) for k in DROPOUT_KERNELS}
    rows = []
    for case, fns in cases.items():
        times = time_cases(fns, args.repeats)
        rows.append({"case": case, **{f"{k}_s": v for k, v in times.items()}})
        rows[-1]["speedup"] = times["torch"] / times["words"]

    print(f"{platform.machine()}, {args.threads} thread(s), median of {args.repeats}")
    print(f"{'':<44} {'torch':>9} {'words':>9} {'speedup':>8}")
    for row in rows:
        torch_ms, words_ms = row["torch_s"] * 1e3, row["words_s"] * 1e3
        print(f"{row['case']:<44} {torch_ms:7.2f}ms {words_ms:7.2f}ms {row['speedup']:7.2f}x")
    write_rows(args, rows)


if __name__ == "__main__":
    main()
