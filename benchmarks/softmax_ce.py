"""Full-softmax cross-entropy: the chunked kernel against F.cross_entropy, alone and in a SASRec step.

The batch has ML-1M's shape: 128 users, windows of 201 items, 3,706 items in the catalogue, and
history lengths drawn from ML-1M's quartiles (23 / 44 / 96 / 208 / 556 ratings, cut at 201), so
about 15k positions are scored per step. The two kernels alternate, repeat by repeat, so a noisy
machine slows both alike; the table gives medians and the ratio of medians.

"Logits held" is what each kernel keeps between the forward and the backward pass: the reference
keeps the logits and their log-softmax (two N x I float32 buffers), the chunked kernel one chunk.

    OMP_NUM_THREADS=1 python benchmarks/softmax_ce.py --threads 1
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from functools import partial
from pathlib import Path
from unittest.mock import patch

import numpy as np
import torch

from tidrec.baselines import sasrec, softmax_ce
from tidrec.baselines.sasrec import PAD, SASRec, SASRecConfig
from tidrec.baselines.softmax_ce import softmax_cross_entropy
from tidrec.io import write_json

KERNELS = ("reference", "chunked")


def ml1m_like_windows(users: int, width: int, num_items: int, seed: int = 0) -> torch.Tensor:
    """(users, width) left-padded random item tokens with ML-1M-like history lengths."""
    rng = np.random.default_rng(seed)
    lengths = np.minimum(rng.choice([23, 44, 96, 208, 556], users), width)
    windows = torch.zeros(users, width, dtype=torch.long)
    for row, length in enumerate(lengths):
        windows[row, width - length :] = torch.from_numpy(rng.integers(1, num_items + 1, length))
    return windows


def sasrec_step(model: SASRec, windows: torch.Tensor, kernel: str) -> None:
    """One training forward and backward of ``SASRec.loss`` with the given cross-entropy kernel."""
    with patch.object(sasrec, "softmax_cross_entropy", partial(softmax_cross_entropy, kernel=kernel)):
        model.loss(windows).backward()
    model.zero_grad(set_to_none=True)


def loss_only(hidden: torch.Tensor, table: torch.Tensor, targets: torch.Tensor, kernel: str) -> None:
    """The cross-entropy's forward and backward on fixed hidden states."""
    h, w = hidden.detach().requires_grad_(), table.detach().requires_grad_()
    softmax_cross_entropy(h, w, targets, kernel=kernel).backward()


def time_once(fn, kernel: str, times: dict[str, list[float]]) -> None:
    """Append the seconds one call of ``fn(kernel)`` takes to ``times[kernel]``."""
    start = time.perf_counter()
    fn(kernel)
    times[kernel].append(time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=128, help="users per batch")
    parser.add_argument("--items", type=int, default=3706, help="catalogue size (ML-1M: 3,706)")
    parser.add_argument("--d-model", type=int, default=64, help="SASRec width")
    parser.add_argument("--repeats", type=int, default=7, help="timed repeats per kernel (after one warm-up)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/softmax_ce.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    model = SASRec(SASRecConfig(num_items=args.items, d_model=args.d_model))
    windows = ml1m_like_windows(args.users, model.config.max_len + 1, args.items)
    inputs, targets = windows[:, :-1], windows[:, 1:]
    keep = (inputs != PAD) & (targets != PAD)
    with torch.no_grad():
        hidden = model(inputs)[keep]  # (N, D)
    positions = len(hidden)
    cases = {
        "cross-entropy alone": lambda k: loss_only(hidden, model.item_table, targets[keep] - 1, k),
        "SASRec training step": lambda k: sasrec_step(model, windows, k),
    }
    rows = []
    for case, fn in cases.items():
        times: dict[str, list[float]] = {k: [] for k in KERNELS}
        for kernel in KERNELS:  # warm-up
            fn(kernel)
        for _ in range(args.repeats):
            for kernel in KERNELS:
                time_once(fn, kernel, times)
        medians = {k: statistics.median(v) for k, v in times.items()}
        rows.append({"case": case, **{f"{k}_s": medians[k] for k in KERNELS}})
        rows[-1]["speedup"] = medians["reference"] / medians["chunked"]

    chunk_rows = max(1, softmax_ce.LOGITS_PER_CHUNK // args.items)
    held_mib = {
        "reference": 2 * positions * args.items * 4 / 2**20,
        "chunked": chunk_rows * args.items * 4 / 2**20,
    }
    print(
        f"{positions:,} positions x {args.items:,} items, width {args.d_model}, {args.threads} thread(s), "
        f"median of {args.repeats}"
    )
    print(f"{'':<22} {'reference':>10} {'chunked':>10} {'speedup':>8}")
    for row in rows:
        print(f"{row['case']:<22} {row['reference_s']:9.3f}s {row['chunked_s']:9.3f}s {row['speedup']:7.2f}x")
    print(f"{'logits held (MiB)':<22} {held_mib['reference']:10.0f} {held_mib['chunked']:10.0f}")
    write_json(
        args.out,
        {
            "machine": f"{platform.machine()}, {args.threads} torch thread(s), torch {torch.__version__}",
            "positions": positions,
            "items": args.items,
            "d_model": args.d_model,
            "repeats": args.repeats,
            "rows": rows,
            "logits_held_mib": held_mib,
        },
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
