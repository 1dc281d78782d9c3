"""Tokenize a synthetic catalogue of 1M random embeddings: seconds per phase and peak memory.

Phases: RQ-VAE fit on a sample (not the point here, reported for context), RQ-VAE inference on the
whole catalogue, collision codes, SID table write and read-back. Each phase is timed on its own,
then repeated under tracemalloc for its NumPy/Python allocation peak; the process's peak RSS
(everything, torch included) is reported after each phase.

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/tokenize_1m.py --threads 1
"""

from __future__ import annotations

import argparse
import platform
import resource
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tidrec.io import write_json
from tokenizer.collision import add_collision_codes
from tokenizer.rqvae import RqVaeConfig, RqVaeTokenizer
from tokenizer.sid_table import SidTable


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(name: str, fn: Callable[[], Any], rows: list[dict], *, trace: bool = True) -> Any:
    """Run ``fn`` for its time, then (``trace``) again under tracemalloc for its allocation peak.

    tracemalloc slows Python-object-heavy code several times over, so it never runs during the
    timed pass. Peak RSS (all allocators, torch included) is read after the phase.
    """
    start = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - start
    traced_peak = None
    if trace:
        tracemalloc.start()
        fn()
        traced_peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    rows.append(
        {"phase": name, "seconds": seconds, "traced_peak_mib": traced_peak, "peak_rss_mib": peak_rss_mib()}
    )
    traced = "-" if traced_peak is None else f"{traced_peak:.1f}"
    print(f"{name:<28} {seconds:8.2f} s  traced peak {traced:>8} MiB  RSS {peak_rss_mib():8.1f} MiB")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--items", type=int, default=1_000_000, help="catalogue size")
    parser.add_argument("--dim", type=int, default=384, help="embedding width (MiniLM: 384)")
    parser.add_argument("--fit-items", type=int, default=20_000, help="sample the RQ-VAE is fitted on")
    parser.add_argument("--fit-epochs", type=int, default=10, help="RQ-VAE epochs on the sample")
    parser.add_argument("--collision-size", type=int, default=256, help="codes in the collision level")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/tokenize_1m.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    rng = np.random.default_rng(0)
    embeddings = rng.standard_normal((args.items, args.dim), dtype=np.float32)  # (N, D)
    for start in range(0, args.items, 65_536):  # unit norm like MiniLM, without a (N, D) temporary
        chunk = embeddings[start : start + 65_536]
        chunk /= np.linalg.norm(chunk, axis=1, keepdims=True)
    rss_embeddings = peak_rss_mib()
    print(f"{'synthetic embeddings':<28} {'':>10}  {'':>21}  RSS {rss_embeddings:8.1f} MiB")
    item_ids = np.char.add("item", np.arange(args.items).astype(str))
    tokenizer = RqVaeTokenizer(RqVaeConfig(epochs=args.fit_epochs), device="cpu")
    rows: list[dict] = []
    sample = embeddings[rng.choice(args.items, size=min(args.fit_items, args.items), replace=False)]
    timed(f"fit RQ-VAE ({len(sample)} items)", lambda: tokenizer.fit(sample, seed=0), rows, trace=False)
    codes = timed("RQ-VAE inference", lambda: tokenizer.encode(embeddings), rows)
    sid_codes = timed("collision codes", lambda: add_collision_codes(codes, args.collision_size), rows)
    table = SidTable(item_ids, sid_codes, (*tokenizer.level_sizes, args.collision_size), "synthetic")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "sids.parquet"
        timed("SID table write", lambda: table.save(path), rows)
        size_mib = path.stat().st_size / 2**20
        timed("SID table read", lambda: SidTable.load(path), rows)
    result = {
        "items": args.items,
        "dim": args.dim,
        "threads": args.threads,
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "torch": torch.__version__,
        "sid_table_mib": size_mib,
        "rss_after_embeddings_mib": rss_embeddings,
        "largest_collision_group": int(sid_codes[:, -1].max()) + 1,
        "phases": rows,
    }
    write_json(args.out, result)
    print(
        f"SID table {size_mib:.1f} MiB; largest collision group {result['largest_collision_group']}; "
        f"wrote {args.out}"
    )


if __name__ == "__main__":
    main()
