"""Decoder depth of the one-pass cpu preset on CPU: one training step with 2 decoder layers against 1.

Each case is one optimisation step (forward in bf16 autocast, backward, AdamW) of the one-pass cpu
preset (2 encoder layers, width 128, dropout 0.2, trie softmax, item-id embedding, recency bias) on
8 random 51-item windows over a catalogue of ``--items`` items with 3 x 32 codes and a collision
level, as ``benchmarks/dropout.py`` builds it; ``--decoder-layers`` gives the depths compared,
under each dropout kernel. The decoder reads four tokens per target against the encoder's one, so
it holds most of a step's work. The cases alternate repeat by repeat, so a noisy machine slows all
alike; the table gives medians and each case's time relative to the first.

    OMP_NUM_THREADS=1 python benchmarks/decoder_depth.py --threads 1
"""

from __future__ import annotations

import argparse
import platform
from pathlib import Path

import numpy as np
import torch
from dropout import catalogue, step_fn, write_rows  # benchmarks/ is on the path when run as a script
from onepass_train import time_cases

from tidrec.dropout import DROPOUT_KERNELS


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--items", type=int, default=3706, help="catalogue size (ML-1M: 3,706)")
    parser.add_argument("--decoder-layers", type=int, nargs="+", default=[2, 1], help="decoder depths")
    parser.add_argument("--repeats", type=int, default=21, help="timed repeats per case, after a warm-up")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/decoder_depth.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    vocab, sid_tokens = catalogue(args.items)
    rng = np.random.default_rng(1)
    windows = [rng.integers(0, args.items, 51) for _ in range(8)]
    cases = {
        (depth, kernel): step_fn(kernel, vocab, sid_tokens, windows, decoder_layers=depth)
        for kernel in DROPOUT_KERNELS
        for depth in args.decoder_layers
    }
    times = time_cases({f"{d}-{k}": fn for (d, k), fn in cases.items()}, args.repeats)
    first = next(iter(times.values()))
    rows = [
        {
            "decoder_layers": d,
            "dropout_kernel": k,
            "step_s": times[f"{d}-{k}"],
            "speedup": first / times[f"{d}-{k}"],
        }
        for d, k in cases
    ]

    print(f"{platform.machine()}, {args.threads} thread(s), median of {args.repeats}")
    print(f"{'decoder layers':>14} {'dropout':>8} {'step':>9} {'speedup':>8}")
    for row in rows:
        print(
            f"{row['decoder_layers']:>14} {row['dropout_kernel']:>8} {row['step_s'] * 1e3:7.1f}ms"
            f" {row['speedup']:7.2f}x"
        )
    write_rows(args, rows)


if __name__ == "__main__":
    main()
