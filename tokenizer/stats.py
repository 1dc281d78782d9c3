"""Code-usage statistics, the summary table and the usage plot of a tokenizer run."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tidrec.io import atomic_path
from tokenizer.collision import tuple_groups


def code_stats(codes: np.ndarray, level_sizes: tuple[int, ...]) -> dict:
    """Per-level usage and perplexity, and how unique the tuples are (before the collision code).

    Args:
        codes: (N, L) code tuples without the collision level.
        level_sizes: (L,) codes per level.

    Returns:
        ``levels``: per level ``{size, used, usage, perplexity}`` (usage = used / size; perplexity =
        exp(entropy) of the code distribution, at most ``size``); ``unique_tuple_rate`` = distinct
        tuples / items; ``largest_group`` = most items sharing one tuple; ``colliding_items``.
    """
    if codes.ndim != 2 or codes.shape[1] != len(level_sizes):
        raise ValueError(f"codes must be (N, {len(level_sizes)}), got {codes.shape}")
    levels = []
    for level, size in enumerate(level_sizes):
        counts = np.bincount(codes[:, level], minlength=size)  # (V,)
        probs = counts[counts > 0] / counts.sum()
        levels.append(
            {
                "size": int(size),
                "used": int((counts > 0).sum()),
                "usage": float((counts > 0).mean()),
                "perplexity": float(np.exp(-(probs * np.log(probs)).sum())),
            }
        )
    _, group_sizes = tuple_groups(codes)
    return {
        "levels": levels,
        "unique_tuple_rate": float(len(group_sizes) / len(codes)),
        "largest_group": int(group_sizes.max()),
        "colliding_items": int(group_sizes[group_sizes > 1].sum()),
    }


def summary_table(stats: dict) -> str:
    """A plain-text table of a run's ``stats.json`` for the terminal."""
    lines = [f"{'level':>6} {'size':>6} {'used':>6} {'usage':>7} {'perplexity':>11}"]
    for level, row in enumerate(stats["levels"]):
        lines.append(
            f"{level:>6} {row['size']:>6} {row['used']:>6} {row['usage']:>7.1%} {row['perplexity']:>11.1f}"
        )
    lines.append(
        f"items {stats['items']}, unique tuples before collision code {stats['unique_tuple_rate']:.1%}, "
        f"largest group {stats['largest_group']}, reconstruction MSE {stats['reconstruction_mse']:.3g} "
        f"({stats['unexplained_variance']:.1%} of variance), {stats['seconds_total']:.1f} s"
    )
    return "\n".join(lines)


def plot_code_usage(codes: np.ndarray, level_sizes: tuple[int, ...], path: str | Path, *, title: str) -> None:
    """Save a PNG with one panel per level: items per code, codes sorted by count."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(level_sizes), figsize=(4 * len(level_sizes), 3), squeeze=False)
    for level, (size, ax) in enumerate(zip(level_sizes, axes[0], strict=True)):
        counts = np.sort(np.bincount(codes[:, level], minlength=size))[::-1]
        ax.bar(np.arange(size), counts, width=1.0)
        ax.set_title(f"level {level}: {(counts > 0).sum()}/{size} codes used")
        ax.set_xlabel("code (sorted by count)")
        ax.set_ylabel("items")
    fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def shared_prefixes(fitted: np.ndarray, new: np.ndarray) -> list[float]:
    """Per depth d = 1..L, the share of ``new`` code tuples whose first d codes some ``fitted`` tuple
    also starts with: how far new items' SIDs land among the ones a model was trained on."""
    shares = []
    for depth in range(1, fitted.shape[1] + 1):
        known = {tuple(row) for row in fitted[:, :depth].tolist()}
        shares.append(float(np.mean([tuple(row) in known for row in new[:, :depth].tolist()])))
    return shares
