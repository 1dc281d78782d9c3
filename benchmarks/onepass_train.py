"""Training cost per target: one-pass TIGER against SASRec and today's per-example TIGER recipe.

Each case is one optimisation step (forward, backward, AdamW) on a batch of full random windows;
the table gives the median step time divided by the targets it trains on. At window length T a
step trains on B * T targets for SASRec and one-pass TIGER (every position predicts the next item),
on B for today's recipe (one (history, next item) example per row, 4 encoder tokens per item).
Batches are sized so each step holds about ``--targets`` targets for the window models. The
cases alternate repeat by repeat, so a noisy machine slows all alike.

Sizes are comparable, not equal: SASRec (width W, 2 blocks, 1 head, feed-forward W, an output
table of I items) against a T5 of width W, 2 + 2 layers, W / 32 heads of 32, feed-forward 4W over
three ``--codebook-size`` code levels and a collision level. ``--width 128 --codebook-size 32
--dropout 0.2`` is the cpu preset on ML-1M beside SASRec's width there; the defaults (64, 256, 0)
are the first measurement's. ``decoder scores`` is the (B, H, Q, Q) self-attention score matrix
the one-pass decoder's ``hf`` kernel computes per layer, Q = T * (L + 1), almost all of it masked;
the ``blocks`` kernel attends within each block of L + 1 and to the encoder only.

    OMP_NUM_THREADS=1 python benchmarks/onepass_train.py --threads 1
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from tidrec.baselines.sasrec import SASRec, SASRecConfig
from tidrec.io import write_json
from tidrec.model import ModelConfig, build_model, decoder_labels, encoder_inputs
from tidrec.models.tiger.onepass import OnePassConfig, build_onepass, onepass_batch, onepass_loss
from tidrec.vocab import Vocab

COLLISION_CODES = 8
"""Size of the collision level."""


def sasrec_step_fn(num_items: int, windows: np.ndarray, width: int, dropout: float) -> Callable[[], None]:
    """One SASRec-CE step on ``(B, T + 1)`` windows of item_idx."""
    model = SASRec(
        SASRecConfig(num_items=num_items, max_len=windows.shape[1] - 1, d_model=width, dropout=dropout)
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    tokens = torch.from_numpy(windows + 1)  # (B, T + 1) item tokens, nothing padded

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        model.loss(tokens).backward()
        optimizer.step()

    return step


def onepass_step_fn(
    vocab: Vocab, sid_tokens: np.ndarray, windows: np.ndarray, kernel: str, width: int, dropout: float
) -> Callable[[], None]:
    """One one-pass TIGER step on ``(B, T + 1)`` windows with the given decoder kernel."""
    length = windows.shape[1] - 1
    config = OnePassConfig(
        d_model=width,
        num_layers=2,
        num_decoder_layers=2,
        num_heads=max(1, width // 32),
        d_kv=32,
        d_ff=4 * width,
        dropout=dropout,
        max_items=length,
        item_id_embedding=True,
        recency_bias=True,
    )
    model = build_onepass(config, vocab, sid_tokens).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    batch = onepass_batch(list(windows), sid_tokens, length)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        onepass_loss(model, batch, kernel=kernel).backward()
        optimizer.step()

    return step


def tiger_step_fn(
    vocab: Vocab, sid_tokens: np.ndarray, histories: Sequence[np.ndarray], width: int, dropout: float
) -> Callable[[], None]:
    """One step of today's recipe: each row one (history, next item) example, 4 tokens per item."""
    config = ModelConfig(
        d_model=width, num_layers=2, num_decoder_layers=2, num_heads=max(1, width // 32), d_kv=32,
        d_ff=4 * width, dropout=dropout, max_items=max(len(h) for h in histories) - 1, user_buckets=0,
    )  # fmt: skip
    model = build_model(config, vocab).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    input_ids, mask = encoder_inputs(
        vocab, sid_tokens, [h[:-1] for h in histories], [""] * len(histories), 10**6
    )
    labels = decoder_labels(sid_tokens, np.array([h[-1] for h in histories]))  # (B, L + 1)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        model(input_ids=input_ids, attention_mask=mask, labels=labels).loss.backward()
        optimizer.step()

    return step


def time_cases(cases: dict[str, Callable[[], None]], repeats: int) -> dict[str, float]:
    """Median seconds per call of each case, after one warm-up, cases alternating repeat by repeat."""
    times: dict[str, list[float]] = {name: [] for name in cases}
    for fn in cases.values():
        fn()
    for _ in range(repeats):
        for name, fn in cases.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def run(
    *,
    lengths: Sequence[int],
    targets: int,
    items: int,
    tiger_items: int,
    tiger_batch: int,
    repeats: int,
    width: int,
    codebook_size: int,
    dropout: float,
) -> list[dict]:
    """One row per window length T: seconds per step and per target of each model."""
    rng = np.random.default_rng(0)
    level_sizes = (codebook_size,) * 3 + (COLLISION_CODES,)
    vocab = Vocab(level_sizes, user_buckets=0)
    codes = np.stack([rng.integers(0, size, items) for size in level_sizes], axis=1)  # (I, L)
    sid_tokens = vocab.sid_tokens(codes)  # (I, L)
    num_levels = len(level_sizes)
    rows = []
    for length in lengths:
        batch = max(1, targets // length)
        windows = rng.integers(0, items, (batch, length + 1))  # (B, T + 1)
        tiger_rows = list(rng.integers(0, items, (tiger_batch, tiger_items + 1)))  # (B', N + 1) examples
        torch.manual_seed(0)
        cases = {
            "sasrec": sasrec_step_fn(items, windows, width, dropout),
            "onepass_hf": onepass_step_fn(vocab, sid_tokens, windows, "hf", width, dropout),
            "onepass_blocks": onepass_step_fn(vocab, sid_tokens, windows, "blocks", width, dropout),
            "tiger": tiger_step_fn(vocab, sid_tokens, tiger_rows, width, dropout),
        }
        step_s = time_cases(cases, repeats)
        per_step = {"sasrec": batch * length, "tiger": tiger_batch}
        per_step["onepass_hf"] = per_step["onepass_blocks"] = batch * length
        queries = length * (num_levels + 1)
        rows.append(
            {
                "T": length,
                "B": batch,
                **{f"{name}_step_s": s for name, s in step_s.items()},
                **{f"{name}_ms_per_target": 1e3 * s / per_step[name] for name, s in step_s.items()},
                "onepass_hf_decoder_scores_mib": batch * 2 * queries**2 * 4 / 2**20,
            }
        )
        print(
            f"T={length:>4} B={batch:>4}  "
            + "  ".join(f"{n} {rows[-1][f'{n}_ms_per_target']:.3f}" for n in cases),
            flush=True,
        )
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lengths", type=int, nargs="+", default=[20, 50, 200], help="window lengths T")
    parser.add_argument("--targets", type=int, default=2000, help="targets per step of the window models")
    parser.add_argument("--items", type=int, default=3706, help="catalogue size (ML-1M: 3,706)")
    parser.add_argument("--tiger-items", type=int, default=20, help="history items of today's recipe")
    parser.add_argument("--tiger-batch", type=int, default=256, help="examples per step of today's recipe")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats per case (after one warm-up)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--width", type=int, default=64, help="model width of every case")
    parser.add_argument("--codebook-size", type=int, default=256, help="codes per SID level (3 levels)")
    parser.add_argument("--dropout", type=float, default=0.0, help="dropout of every case")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/onepass_train.json"))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = run(
        lengths=args.lengths,
        targets=args.targets,
        items=args.items,
        tiger_items=args.tiger_items,
        tiger_batch=args.tiger_batch,
        repeats=args.repeats,
        width=args.width,
        codebook_size=args.codebook_size,
        dropout=args.dropout,
    )
    print(f"\nms per target, median of {args.repeats}, {args.threads} thread(s), {args.items:,} items")
    names = ("sasrec", "onepass_blocks", "onepass_hf", "tiger")
    print(
        f"{'T':>5} {'B':>5} {'SASRec':>8} {'1p-blocks':>9} {'1p-hf':>8} {'today':>8} {'hf scores/layer':>16}"
    )
    for row in rows:
        per_target = (row[f"{n}_ms_per_target"] for n in names)
        print(
            f"{row['T']:>5} {row['B']:>5} " + "{:8.3f} {:9.3f} {:8.3f} {:8.3f}".format(*per_target),
            f"{row['onepass_hf_decoder_scores_mib']:12.0f} MiB",
        )
    write_json(
        args.out,
        {
            "machine": f"{platform.machine()}, {args.threads} torch thread(s), torch {torch.__version__}",
            "items": args.items,
            "level_sizes": [args.codebook_size] * 3 + [COLLISION_CODES],
            "width": args.width,
            "dropout": args.dropout,
            "targets_per_step": args.targets,
            "tiger_items": args.tiger_items,
            "tiger_batch": args.tiger_batch,
            "repeats": args.repeats,
            "rows": rows,
        },
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
