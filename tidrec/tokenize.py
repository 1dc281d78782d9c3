"""``python -m tidrec.tokenize``: item texts -> embeddings -> semantic IDs (the SID table).

``--item-vectors`` swaps or joins the text embeddings with collaborative item vectors (item
co-occurrence, a trained SASRec's item table; see :mod:`tidrec.item_vectors`).

Writes ``<out>/tokenizer/``: ``sids.parquet`` (written last: its presence marks a finished run),
``tokenizer.pt``, ``stats.json`` and ``code_usage.png``. Embeddings are cached under
``<out>/embeddings/`` (or ``$TIDREC_HOME/embeddings/`` when that is set).
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from tidrec.cli import check_range, run
from tidrec.data import DataConfig, prepare_dataset
from tidrec.embed import DEFAULT_EMBEDDING_MODEL, embed_texts
from tidrec.io import check_output_dir, write_json
from tidrec.item_vectors import describe, item_vectors, parse_item_vectors
from tokenizer.base import SidTokenizer, as_float_matrix
from tokenizer.collision import DEFAULT_COLLISION_SIZE, add_collision_codes
from tokenizer.rkmeans import ResidualKMeansConfig, ResidualKMeansTokenizer
from tokenizer.rqvae import RqVaeConfig, RqVaeTokenizer
from tokenizer.sid_table import SidTable
from tokenizer.stats import code_stats, plot_code_usage, shared_prefixes, summary_table


@dataclass(frozen=True, kw_only=True)
class TokenizeConfig(DataConfig):
    """Dataset options (inherited), embedding model, and tokenizer settings."""

    out: Path
    """Run folder: the dataset goes to <out>/data, the SID table and tokenizer to <out>/tokenizer."""
    tokenizer: Literal["rqvae", "rkmeans"] = "rqvae"
    """rqvae: TIGER's RQ-VAE (trained); rkmeans: residual k-means on the embeddings (training-free)."""
    levels: int = 3
    """Code levels before the collision code."""
    codebook_size: int | None = None
    """Codes per level (default: from the catalogue size, the smallest power of two K >= 16 with
    K^levels >= 8 x items: 32 for ML-100K and ML-1M, 64 for Amazon Beauty, 256 for 1M items. On
    ML-100K, 3 levels of 32 codes gave the generative model test NDCG@10 0.078, against 0.064 with
    64 and 0.059 with 256; 16 trained slower)."""
    collision_size: int = DEFAULT_COLLISION_SIZE
    """Codes in the final collision level, which numbers items sharing a tuple; the run stops with an
    error if more items than this share one tuple."""
    embedding_model: str = DEFAULT_EMBEDDING_MODEL
    """Sentence-transformers model: the bundled offline all-MiniLM-L6-v2, a hub id, or a local folder."""
    embedding_batch_size: int = 64
    """Texts per embedding forward pass."""
    embedding_cache: Path | None = None
    """Embedding cache folder (default: $TIDREC_HOME/embeddings if TIDREC_HOME is set, else
    <out>/embeddings)."""
    item_vectors: str = "text+cooc"
    """What the tokenizer quantises (default text+cooc: on ML-100K the generative model's validation
    NDCG@10 was 0.075 with it against 0.048 with text alone): text (item-text embeddings), cooc
    (PPMI + truncated SVD of item co-occurrence in the training sequences), a sequence model trained
    in this run folder (sasrec, sasrec-bce, bert4rec, llm2sasrec, llm2bert4rec: its item table from
    <out>/models/NAME/best.ckpt),
    or several joined by '+', e.g. text+cooc (each part L2-normalised per row, then concatenated)."""
    cooc_window: int = 5
    """cooc: two items at most this many positions apart in a training sequence co-occur."""
    cooc_dim: int = 64
    """cooc: dimensions kept by the truncated SVD."""
    collab_weight: float = 1.0
    """With text in --item-vectors: scale of each collaborative part (cooc, a model's table) after
    L2 normalisation, text's being 1."""
    cold_impute: int = 0
    """Cold-start datasets (``--cold-start``) and ``--add-items``: give each held-out or added item
    the mean collaborative vector of its this many nearest fitted items by text embedding, instead
    of zeros (it has no training interactions to have its own); needs a text part in
    --item-vectors (0 = off)."""
    add_items: Path | None = None
    """Items added after training (CSV/TSV/Parquet with --item-id-column and --text-columns): the
    run's fitted tokenizer gives them SIDs without a refit and the run's data and SID table grow by
    them, so the generative model trained before serves them (``--cold-impute K`` takes their
    collaborative parts from their K nearest fitted items by text)."""
    seed: int = 42
    """Seed of k-means, RQ-VAE training and co-occurrence vectors (42, as every model's preset): the same
    seed gives the same SID table on CPU."""
    rqvae_epochs: int = RqVaeConfig.epochs
    """RQ-VAE training epochs."""
    rqvae_batch_size: int = RqVaeConfig.batch_size
    """RQ-VAE items per step."""
    rqvae_lr: float = RqVaeConfig.lr
    """RQ-VAE AdamW learning rate."""
    rqvae_hidden_dims: tuple[int, ...] = RqVaeConfig.hidden_dims
    """RQ-VAE encoder hidden widths (decoder mirrors them)."""
    rqvae_latent_dim: int = RqVaeConfig.latent_dim
    """RQ-VAE latent width."""
    rqvae_beta: float = RqVaeConfig.beta
    """RQ-VAE commitment weight."""
    kmeans_iterations: int = RqVaeConfig.kmeans_iterations
    """Lloyd iterations per k-means (RQ-VAE codebook initialisation and residual k-means)."""
    progress: bool = True
    """Show progress bars."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """Device for embedding and RQ-VAE training (CPU runs are deterministic for a seed)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        # every option, whichever tokenizer is chosen, named by its flag
        check_range("--levels", self.levels, at_least=1)
        if self.codebook_size is not None:
            check_range("--codebook-size", self.codebook_size, at_least=2)
        check_range("--collision-size", self.collision_size, at_least=1)
        check_range("--embedding-batch-size", self.embedding_batch_size, at_least=1)
        parse_item_vectors(self.item_vectors)
        check_range("--cooc-window", self.cooc_window, at_least=1)
        check_range("--cooc-dim", self.cooc_dim, at_least=1)
        check_range("--collab-weight", self.collab_weight, above=0)
        check_range("--cold-impute", self.cold_impute, at_least=0)
        check_range("--seed", self.seed, at_least=0, below=2**32)
        check_range("--rqvae-epochs", self.rqvae_epochs, at_least=1)
        check_range("--rqvae-batch-size", self.rqvae_batch_size, at_least=1)
        check_range("--rqvae-lr", self.rqvae_lr, above=0)
        for width in self.rqvae_hidden_dims:
            check_range("--rqvae-hidden-dims", width, at_least=1)
        check_range("--rqvae-latent-dim", self.rqvae_latent_dim, at_least=1)
        check_range("--rqvae-beta", self.rqvae_beta, at_least=0)
        check_range("--kmeans-iterations", self.kmeans_iterations, at_least=1)
        if self.device == "cuda":
            from tidrec.device import require_cuda

            require_cuda("--device cuda")
        check_output_dir(self.out, "--out")
        if self.embedding_cache is not None:
            check_output_dir(self.embedding_cache, "--embedding-cache")
        self.tokenizer_config()  # the tokenizer's own checks, now, before any work

    def tokenizer_config(self, num_items: int | None = None) -> RqVaeConfig | ResidualKMeansConfig:
        """The chosen tokenizer's own config, built from these flags for a catalogue of ``num_items``
        (unknown: the automatic codebook size of a small catalogue, for checking the options)."""
        codebook_size = self.codebook_size or auto_codebook_size(num_items or 1, self.levels)
        if self.tokenizer == "rkmeans":
            return ResidualKMeansConfig(
                levels=self.levels, codebook_size=codebook_size, kmeans_iterations=self.kmeans_iterations
            )
        return RqVaeConfig(
            levels=self.levels,
            codebook_size=codebook_size,
            hidden_dims=self.rqvae_hidden_dims,
            latent_dim=self.rqvae_latent_dim,
            beta=self.rqvae_beta,
            epochs=self.rqvae_epochs,
            batch_size=self.rqvae_batch_size,
            lr=self.rqvae_lr,
            kmeans_iterations=self.kmeans_iterations,
        )

    def cache_dir(self) -> Path:
        """Where item embeddings are cached."""
        if self.embedding_cache is not None:
            return self.embedding_cache
        home = os.environ.get("TIDREC_HOME")
        return Path(home) / "embeddings" if home else self.out / "embeddings"

    def embed(self, texts: list[str]) -> np.ndarray:
        """``(N, D)`` embeddings of ``texts`` by ``embedding_model``, through the cache."""
        return embed_texts(
            texts,
            model=self.embedding_model,
            cache_dir=self.cache_dir(),
            batch_size=self.embedding_batch_size,
            device=self.device,
            progress=self.progress,
        )


AUTO_TUPLES_PER_ITEM = 8
"""The automatic codebook size gives at least this many code tuples per item."""


def auto_codebook_size(num_items: int, levels: int) -> int:
    """The smallest power of two K >= 16 with ``K ** levels >= AUTO_TUPLES_PER_ITEM * num_items``.

    Small codebooks share codes among many items, so each code embedding is trained by many
    targets; too small and many items share a tuple. On ML-100K (3 levels) 32 beat 16, 64 and 256.
    """
    size = 16
    while size**levels < AUTO_TUPLES_PER_ITEM * num_items:
        size *= 2
    return size


def build_tokenizer(config: TokenizeConfig, num_items: int | None = None) -> SidTokenizer:
    """An unfitted tokenizer of the configured kind, for a catalogue of ``num_items``."""
    tokenizer_config = config.tokenizer_config(num_items)
    if isinstance(tokenizer_config, ResidualKMeansConfig):
        return ResidualKMeansTokenizer(tokenizer_config, device=config.device, progress=config.progress)
    return RqVaeTokenizer(tokenizer_config, device=config.device, progress=config.progress)


def tokenize_embeddings(
    embeddings: np.ndarray,
    tokenizer: SidTokenizer,
    *,
    item_ids: np.ndarray,
    dataset_hash: str,
    seed: int,
    collision_size: int,
    folder: Path,
    provenance: dict,
    seconds_embed: float = 0.0,
    stats_extra: dict | None = None,
    new_items: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[SidTable, dict]:
    """Fit ``tokenizer`` on (I, D) ``embeddings``, add collision codes, write the tokenizer artifacts.

    Args:
        embeddings: (I, D) float32, row i for item_idx i.
        tokenizer: an unfitted tokenizer.
        item_ids: (I,) the catalogue's item ids.
        dataset_hash: ``Dataset.content_hash`` the SIDs are built for.
        seed: training seed.
        collision_size: codes in the collision level.
        folder: ``<out>/tokenizer``.
        provenance: recorded in the checkpoint, table metadata and stats (embedding model etc.);
            keep timings out of it so the same seed writes a byte-identical table.
        seconds_embed: time spent embedding, added to the total in the stats.
        stats_extra: recorded in ``stats.json`` only.
        new_items: ``(ids (M,), embeddings (M, D))`` of items the tokenizer must not fit on (the
            cold-start protocol's held-out items): they are encoded by the fitted tokenizer and
            appended with :meth:`SidTable.extend`, so the written table extends the fitted one
            (its lineage records it) and a model trained on that one can serve both.

    Returns:
        The SID table and the statistics written to ``stats.json``.

    Raises:
        ConfigError: more than ``collision_size`` items share a code tuple (nothing is written).
    """
    start = time.perf_counter()
    fit_summary = tokenizer.fit(embeddings, seed=seed)
    fitted = time.perf_counter()
    codes = tokenizer.encode(embeddings)  # (I, L)
    sid_codes = add_collision_codes(codes, collision_size)  # (I, L + 1)
    encoded = time.perf_counter()
    errors = (tokenizer.reconstruct(embeddings) - embeddings) ** 2  # (I, D)
    table = SidTable(
        item_ids=np.asarray(item_ids).astype(str),
        codes=sid_codes,
        level_sizes=(*tokenizer.level_sizes, collision_size),
        dataset_hash=dataset_hash,
    )
    fitted_hash = table.content_hash()
    extra_stats: dict = {}
    if new_items is not None and len(new_items[0]):
        new_codes = tokenizer.encode(as_float_matrix(new_items[1], dim=embeddings.shape[1]))  # (M, L)
        table = table.extend(np.asarray(new_items[0]).astype(str), new_codes)
        extra_stats = {
            "new_items": len(new_codes),
            "new_items_sharing_a_fitted_prefix": shared_prefixes(codes, new_codes),
            "fitted_sid_table_hash": fitted_hash,
        }
    stats = {
        "tokenizer": tokenizer.kind,
        "items": len(embeddings),
        "embedding_dim": int(embeddings.shape[1]),
        **code_stats(codes, tokenizer.level_sizes),
        "reconstruction_mse": float(errors.mean()),
        "unexplained_variance": float(errors.sum() / ((embeddings - embeddings.mean(0)) ** 2).sum()),
        "seconds_embed": seconds_embed,
        "seconds_fit": fitted - start,
        "seconds_encode": encoded - fitted,
        "training": fit_summary,
        **extra_stats,
        "collision_codes_used": int(table.codes[:, -1].max()) + 1,
        "sid_table_hash": table.content_hash(),
        "dataset_hash": dataset_hash,
        "seed": seed,
        "config": asdict(tokenizer.config),
        **provenance,
        **(stats_extra or {}),
    }
    meta = {"tokenizer": tokenizer.kind, "config": stats["config"], "seed": seed, **provenance}
    (folder / "sids.parquet").unlink(missing_ok=True)  # an older table must not outlive its tokenizer.pt
    tokenizer.save(folder / "tokenizer.pt", extra={**meta, "dataset_hash": dataset_hash,
                                                    "sid_table_hash": fitted_hash})  # fmt: skip
    title = f"{tokenizer.kind}: {len(embeddings)} items, {stats['unique_tuple_rate']:.1%} unique tuples"
    plot_code_usage(codes, tokenizer.level_sizes, folder / "code_usage.png", title=title)
    stats["seconds_total"] = time.perf_counter() - start + seconds_embed
    write_json(folder / "stats.json", stats)
    table.save(folder / "sids.parquet", extra=meta)  # last: its presence marks a finished run
    return table, stats


def tokenize_run(config: TokenizeConfig) -> SidTable:
    """Prepare the dataset, build the item vectors, fit the tokenizer, write ``<out>/tokenizer/``.

    With ``--add-items`` the run's fitted tokenizer gives new items SIDs instead
    (:func:`tidrec.add_items.add_items`).

    Raises:
        InputError: bad dataset files; a model named in ``--item-vectors`` not trained on this data.
        ConfigError: bad options, an embedding model that cannot be loaded, or a collision overflow.
    """
    if config.add_items is not None:
        from tidrec.add_items import add_items

        return add_items(config)
    dataset = prepare_dataset(config, config.out / "data")
    start = time.perf_counter()
    embeddings, provenance = item_vectors(config, dataset, lambda: config.embed(dataset.item_texts))  # (I, E)
    warm = dataset.num_warm_items  # the cold-start protocol's held-out items get SIDs, not a say
    table, stats = tokenize_embeddings(
        embeddings[:warm],
        build_tokenizer(config, warm),
        item_ids=dataset.item_ids[:warm],
        dataset_hash=dataset.content_hash,
        seed=config.seed,
        collision_size=config.collision_size,
        folder=config.out / "tokenizer",
        provenance=provenance,
        seconds_embed=time.perf_counter() - start,
        stats_extra={"item_vectors": provenance.get("item_vectors", "text")},
        new_items=(dataset.item_ids[warm:], embeddings[warm:]) if warm < dataset.num_items else None,
    )
    print(summary_table(stats))
    if "new_items" in stats:
        shared = ", ".join(f"{share:.0%}" for share in stats["new_items_sharing_a_fitted_prefix"])
        print(
            f"cold start: {stats['new_items']} held-out items got SIDs from the tokenizer fitted on the "
            f"other {warm}; share of them whose first 1, 2, ... codes some fitted item also has: {shared}"
        )
    print(describe(provenance))
    print(f"wrote {config.out / 'tokenizer'} (sids.parquet, tokenizer.pt, stats.json, code_usage.png)")
    return table


def main(argv: Sequence[str] | None = None) -> int:
    return run(
        TokenizeConfig,
        tokenize_run,
        argv,
        prog="python -m tidrec.tokenize",
        description="Embed item texts and turn them into semantic IDs (RQ-VAE or residual k-means).",
    )


if __name__ == "__main__":
    raise SystemExit(main())
