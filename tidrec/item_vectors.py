"""The item vectors a tokenizer quantises: item text, item co-occurrence, a trained model's item table.

``--item-vectors`` names one part or several joined by ``+`` (``text+cooc``):

- ``text``: sentence embeddings of the item texts (:func:`tidrec.embed.embed_texts`);
- ``cooc``: a training-free collaborative embedding, :func:`cooccurrence_vectors` of the users'
  *training* sequences (``Dataset.train_sequences()``: validation and test targets never count);
- a sequence baseline of the run (``sasrec``, ``llm2sasrec``, ...): the item table of
  ``<run>/models/<name>/best.ckpt``, read weights-only and refused unless trained on the run's data.

``text`` alone is used exactly as embedded (the SIDs of runs before this option). Any other choice
L2-normalises each part per row (the unit scale of the default text model, which the RQ-VAE
settings are tuned for); a combination concatenates the parts, the collaborative ones scaled by
``--collab-weight`` (1: equal say per part).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import svds

from tidrec.data.dataset import Dataset
from tidrec.errors import ConfigError, InputError
from tidrec.io import sha256_file


class VectorOptions(Protocol):
    """What :func:`item_vectors` reads of the tokenize options (a ``TokenizeConfig``)."""

    item_vectors: str
    cooc_window: int
    cooc_dim: int
    collab_weight: float
    cold_impute: int
    seed: int
    out: Path
    embedding_model: str


TEXT = "text"
"""Part name of the item-text embeddings."""
COOC = "cooc"
"""Part name of the co-occurrence (PPMI-SVD) vectors."""
CONTEXT_SMOOTHING = 0.75
"""Exponent on the context counts in PPMI (Levy, Goldberg & Dagan, TACL 2015): it lowers PMI's
bias towards rare items, which otherwise get the largest PMI values from a single pair."""


def sequence_models() -> tuple[str, ...]:
    """Names of the trained sequence baselines whose item table can serve as item vectors."""
    from tidrec.baselines.presets import KINDS

    return tuple(KINDS)


def parse_item_vectors(spec: str) -> tuple[str, ...]:
    """Split ``--item-vectors`` into its parts, e.g. ``"text+cooc"`` -> ``("text", "cooc")``.

    Raises:
        ConfigError: an empty, unknown or repeated part (one line listing what is accepted).
    """
    parts = tuple(part.strip() for part in spec.split("+"))
    known = (TEXT, COOC, *sequence_models())
    for part in parts:
        if part not in known:
            raise ConfigError(
                f"--item-vectors {spec!r}: unknown part {part!r}; expected one or more of "
                f"{', '.join(known)} joined by '+' (e.g. text+cooc)"
            )
    if len(set(parts)) != len(parts):
        raise ConfigError(f"--item-vectors {spec!r} names a part twice")
    return parts


# ----------------------------------------------------------------------------- co-occurrence


def cooccurrence_counts(sequences: Sequence[np.ndarray], num_items: int, *, window: int) -> sp.csr_matrix:
    """Symmetric counts of item pairs at most ``window`` positions apart in the same sequence.

    Args:
        sequences: item_idx arrays in time order (pass ``Dataset.train_sequences()``).
        num_items: catalogue size I.
        window: largest distance between the two items of a pair (>= 1).

    Returns:
        (I, I) float64 CSR: entry (i, j) counts pairs of i and j in either order; the diagonal (an
        item repeated) is zero.

    Raises:
        ValueError: an item_idx outside [0, num_items), or ``window`` < 1.
    """
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    lengths = np.array([len(s) for s in sequences], dtype=np.int64)  # (U,)
    chunks = [np.asarray(s, dtype=np.int64) for s in sequences]
    items = np.concatenate([np.zeros(0, dtype=np.int64), *chunks])  # (N,) all sequences end to end
    if len(items) and (items.min() < 0 or items.max() >= num_items):
        raise ValueError(f"item_idx must be in [0, {num_items}), got {items.min()}..{items.max()}")
    owner = np.repeat(np.arange(len(lengths)), lengths)  # (N,) which sequence each position is in
    rows, cols = [], []
    for distance in range(1, window + 1):
        same = owner[:-distance] == owner[distance:]  # (N - distance,)
        first, second = items[:-distance][same], items[distance:][same]
        keep = first != second
        rows.append(first[keep])
        cols.append(second[keep])
    rows_all, cols_all = np.concatenate(rows), np.concatenate(cols)  # (P,)
    ones = np.ones(len(rows_all), dtype=np.float64)
    counts = sp.coo_matrix((ones, (rows_all, cols_all)), shape=(num_items, num_items)).tocsr()
    return (counts + counts.T).tocsr()  # (I, I)


def ppmi(counts: sp.csr_matrix, *, smoothing: float = CONTEXT_SMOOTHING) -> sp.csr_matrix:
    """Positive pointwise mutual information with context-distribution smoothing.

    ``PPMI(i, j) = max(0, log(C_ij / (C_i * P_s(j))))`` with ``C_i`` the row sum and
    ``P_s(j) = C_j^s / sum_k C_k^s`` (``s = 1``: plain PMI).

    Args:
        counts: (I, I) non-negative pair counts.
        smoothing: exponent ``s`` on the context counts.

    Returns:
        (I, I) float64 CSR with only positive entries.
    """
    counts = sp.csr_matrix(counts, dtype=np.float64)
    row_sums = np.asarray(counts.sum(axis=1)).ravel()  # (I,)
    context = np.asarray(counts.sum(axis=0)).ravel() ** smoothing  # (I,)
    context_probs = context / max(context.sum(), 1e-300)  # (I,)
    coo = counts.tocoo()
    pmi = np.log(coo.data / (row_sums[coo.row] * context_probs[coo.col]))  # (nnz,)
    positive = pmi > 0
    return sp.csr_matrix(
        (pmi[positive], (coo.row[positive], coo.col[positive])), shape=counts.shape
    )  # (I, I)


def cooccurrence_vectors(
    sequences: Sequence[np.ndarray], num_items: int, *, window: int = 5, dim: int = 64, seed: int = 0
) -> np.ndarray:
    """Training-free collaborative item vectors: truncated SVD of the PPMI of windowed co-occurrence.

    Pairs within ``window`` positions count symmetrically (:func:`cooccurrence_counts`); PPMI removes
    the popularity that raw counts are dominated by (:func:`ppmi`); the rank-``dim`` SVD
    ``U S V^T`` of it gives ``(U sqrt(S) + V sqrt(S)) / 2``, the word-plus-context vectors of Levy,
    Goldberg & Dagan (TACL 2015). With ``U sqrt(S)`` alone, two items are close when they share
    neighbours, so a pair that only ever follows each other would stay orthogonal; adding the
    context side makes items that co-occur close too. Each column's sign is fixed so that its
    largest-magnitude entry is positive, and the SVD starts from a vector drawn from ``seed``, so
    the result is the same on every call.

    An item in no pair (in no training sequence with another item within ``window``, e.g. one seen
    only as a validation or test target) gets an all-zero row.

    Args:
        sequences: item_idx arrays in time order (``Dataset.train_sequences()``).
        num_items: catalogue size I.
        window: largest distance between the two items of a pair.
        dim: output width; columns past the matrix's rank are zero.
        seed: seed of the SVD's start vector.

    Returns:
        (I, dim) float32, row i for item_idx i.

    Raises:
        ValueError: an item_idx outside [0, num_items), ``window`` or ``dim`` < 1.
    """
    if dim < 1:
        raise ValueError(f"dim must be >= 1, got {dim}")
    counts = cooccurrence_counts(sequences, num_items, window=window)  # (I, I)
    matrix = ppmi(counts)  # (I, I)
    rank = min(dim, num_items)
    if rank < num_items - 1 and matrix.nnz:  # ARPACK needs k < I; sparse and fast on big catalogues
        start = np.random.default_rng(seed).standard_normal(num_items)  # (I,)
        left, values, right_t = svds(matrix, k=rank, v0=start)  # (I, k), (k,) ascending, (k, I)
        order = np.argsort(-values, kind="stable")
        left, values, right_t = left[:, order], values[order], right_t[order]
    else:  # tiny catalogues: exact dense SVD
        left, values, right_t = np.linalg.svd(matrix.toarray())  # (I, I), (I,), (I, I)
        left, values, right_t = left[:, :rank], values[:rank], right_t[:rank]
    vectors = (left + right_t.T) * np.sqrt(np.clip(values, 0, None)) / 2  # (I, k)
    signs = np.sign(vectors[np.abs(vectors).argmax(axis=0), np.arange(vectors.shape[1])])  # (k,)
    vectors *= np.where(signs == 0, 1.0, signs)
    vectors[np.diff(counts.indptr) == 0] = 0.0  # items in no pair: exactly zero, not SVD round-off
    out = np.zeros((num_items, dim), dtype=np.float32)  # (I, dim)
    out[:, : vectors.shape[1]] = vectors
    return out


# ----------------------------------------------------------------------------- trained models


def model_checkpoint(run: Path, model_name: str) -> Path:
    """Where ``python -m tidrec.fit --run RUN --model NAME`` leaves the model's best checkpoint."""
    return Path(run) / "models" / model_name / "best.ckpt"


def model_item_vectors(run: Path, model_name: str, dataset: Dataset) -> np.ndarray:
    """The item table of a trained sequence baseline of the run (padding and [MASK] rows dropped).

    The checkpoint is read weights-only (:mod:`tidrec.artifacts`) and must record ``model_name``
    and the run's dataset hash.

    Args:
        run: the run folder holding ``models/<model_name>/best.ckpt``.
        model_name: a sequence baseline (``sasrec``, ``llm2sasrec``, ``bert4rec``, ...).
        dataset: the run's dataset.

    Returns:
        (I, E) float32, row i for item_idx i.

    Raises:
        InputError: no such checkpoint, or one of another model or other data, or unreadable; one
            line ending in the command that trains it.
    """
    from tidrec.artifacts import check_checkpoint, checkpoint_record, read_checkpoint
    from tidrec.baselines.train import load_sequence_recommender

    path = model_checkpoint(run, model_name)
    remedy = f"run `python -m tidrec.fit --run {run} --model {model_name}` first"
    if not path.is_file():
        raise InputError(
            f"{path}: not found; --item-vectors {model_name} reads that model's item table: {remedy}"
        )
    try:
        record = checkpoint_record(read_checkpoint(path), path)
        check_checkpoint(
            record, model=model_name, dataset_hash=dataset.content_hash, data_path=Path(run) / "data"
        )
        model = load_sequence_recommender(path, dataset).model
    except InputError as error:
        raise InputError(f"{error}; {remedy}") from None
    table = model.item_table.detach().float().cpu().numpy()  # (I, E)
    if table.shape[0] != dataset.num_items:
        raise InputError(
            f"{path}: item table has {table.shape[0]} rows for {dataset.num_items} items; {remedy}"
        )
    return np.ascontiguousarray(table, dtype=np.float32)


# ----------------------------------------------------------------------------- combination


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    """(I, E) rows scaled to unit length; all-zero rows stay zero."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)  # (I, 1)
    return (vectors / np.where(norms > 0, norms, 1.0)).astype(np.float32)


def item_vectors(
    config: VectorOptions, dataset: Dataset, text_embeddings: Callable[[], np.ndarray]
) -> tuple[np.ndarray, dict[str, Any]]:
    """The (I, E) vectors ``config.item_vectors`` asks for, and their provenance.

    Model tables are read first, so a missing checkpoint stops the run before any text is embedded.

    Args:
        config: the tokenize options (``item_vectors``, ``cooc_window``, ``cooc_dim``,
            ``collab_weight``, ``seed``, ``out``: the run folder).
        dataset: the run's dataset.
        text_embeddings: returns the (I, D) item-text embeddings; called only if ``text`` is a part.

    Returns:
        (I, E) float32 vectors, and plain data for the tokenizer checkpoint, SID table metadata and
        ``stats.json`` (no timings or absolute paths, so the same inputs give the same bytes). For
        ``text`` alone: ``embedding_model`` and ``embeddings_sha256`` exactly as before the option;
        otherwise also ``item_vectors`` (the option), ``item_vector_parts`` (per part: width and
        source: model name, checkpoint sha256, co-occurrence settings) and ``collab_weight``.

    Raises:
        InputError: a model part whose checkpoint is missing or built for other data.
        ConfigError: the text embedding model cannot be loaded.
    """
    parts = parse_item_vectors(config.item_vectors)
    if parts == (TEXT,):
        embeddings = text_embeddings()  # (I, D)
        return embeddings, {"embedding_model": config.embedding_model, "embeddings_sha256": _sha(embeddings)}
    built, records = vector_parts(config, dataset, text_embeddings)
    imputed = impute_cold_rows(built, dataset, config.cold_impute)
    weight = config.collab_weight if TEXT in parts else 1.0
    vectors = join_parts(built, parts, weight)  # (I, sum E)
    provenance: dict[str, Any] = {
        "item_vectors": "+".join(parts),
        "item_vector_parts": [
            {"part": part, "dim": int(built[part].shape[1]), **records[part]} for part in parts
        ],
        "collab_weight": weight,
        **({"cold_impute": imputed} if imputed else {}),
        "embeddings_sha256": _sha(vectors),
    }
    if TEXT in parts:
        provenance["embedding_model"] = config.embedding_model
    return vectors, provenance


def vector_parts(
    config: VectorOptions, dataset: Dataset, text_embeddings: Callable[[], np.ndarray]
) -> tuple[dict[str, np.ndarray], dict[str, dict[str, Any]]]:
    """Each part of ``config.item_vectors`` as built, before normalising and joining: ``(I, E)``
    arrays by part name, and each part's provenance record (see :func:`item_vectors`)."""
    parts = parse_item_vectors(config.item_vectors)
    built: dict[str, np.ndarray] = {}
    records: dict[str, dict[str, Any]] = {}
    order = {TEXT: 2, COOC: 1}  # model tables first (a missing one stops the run at once), text last
    for part in sorted(parts, key=lambda name: order.get(name, 0)):
        if part == TEXT:
            built[part] = text_embeddings()  # (I, D)
            records[part] = {"embedding_model": config.embedding_model}
        elif part == COOC:
            built[part] = cooccurrence_vectors(
                dataset.train_sequences(),
                dataset.num_items,
                window=config.cooc_window,
                dim=config.cooc_dim,
                seed=config.seed,
            )  # (I, cooc_dim)
            records[part] = {
                "window": config.cooc_window,
                "weighting": f"ppmi (context smoothing {CONTEXT_SMOOTHING})",
                "items_without_pairs": int((~built[part].any(axis=1)).sum()),
            }
        else:
            built[part] = model_item_vectors(config.out, part, dataset)  # (I, E)
            if dataset.cold_from is not None:  # held-out items' rows were never trained
                built[part][dataset.cold_from :] = 0.0
            path = model_checkpoint(config.out, part)
            records[part] = {
                "checkpoint": str(path.relative_to(config.out)),
                "checkpoint_sha256": sha256_file(path),
            }
        if built[part].shape[0] != dataset.num_items:
            raise ValueError(f"{part} vectors are {built[part].shape}, expected ({dataset.num_items}, E)")
    return built, records


def join_parts(built: dict[str, np.ndarray], parts: Sequence[str], weight: float) -> np.ndarray:
    """``(I, sum E)`` float32: each part L2-normalised per row, collaborative parts scaled by
    ``weight``, concatenated in ``parts`` order."""
    columns = [l2_normalise(built[part]) * np.float32(1.0 if part == TEXT else weight) for part in parts]
    return np.ascontiguousarray(np.concatenate(columns, axis=1), dtype=np.float32)


def added_item_vectors(
    config: VectorOptions,
    dataset: Dataset,
    text_embeddings: Callable[[], np.ndarray],
    new_text: np.ndarray,
    *,
    neighbours: int = 0,
) -> np.ndarray:
    """``(M, E)`` vectors of items added to ``dataset``'s catalogue after its tokenizer was fitted, in
    the space :func:`item_vectors` built for it with the same ``config``.

    New items have no interactions: their text part is ``new_text``, their collaborative parts are
    zero, or with ``neighbours`` > 0 the mean of those of their nearest fitted items by text (as
    ``--cold-impute`` does for held-out items).

    Args:
        config: the options the tokenizer was fitted with.
        dataset: the dataset it was fitted on (collaborative parts are rebuilt from it).
        text_embeddings: ``dataset``'s (I, D) item-text embeddings.
        new_text: (M, D) the new items' text embeddings, same model.
        neighbours: fitted items whose collaborative vectors a new item's are the mean of (0: zeros).

    Raises:
        ConfigError: ``neighbours`` > 0 without a text part.
    """
    parts = parse_item_vectors(config.item_vectors)
    if parts == (TEXT,):
        return np.asarray(new_text, dtype=np.float32)
    if neighbours and TEXT not in parts:
        raise ConfigError("--cold-impute needs a text part in --item-vectors (neighbours are found by text)")
    built, _ = vector_parts(config, dataset, text_embeddings)
    impute_cold_rows(built, dataset, config.cold_impute)  # held-out rows as the tokenizer saw them
    warm = dataset.num_warm_items
    count = len(new_text)
    added = {part: np.zeros((count, built[part].shape[1]), np.float32) for part in parts if part != TEXT}
    if TEXT in parts:
        added[TEXT] = np.asarray(new_text, dtype=np.float32)  # (M, D)
    if neighbours:
        nearest = nearest_by_text(built[TEXT][:warm], added[TEXT], neighbours)  # (M, k)
        for part in parts:
            if part != TEXT:
                added[part] = built[part][:warm][nearest].mean(axis=1)  # (M, k, E) -> (M, E)
    weight = config.collab_weight if TEXT in parts else 1.0
    return join_parts({part: added[part] for part in parts}, parts, weight)


def nearest_by_text(fitted: np.ndarray, new: np.ndarray, count: int) -> np.ndarray:
    """``(M, k)`` indices of each new row's ``k = min(count, F)`` nearest ``fitted`` rows by cosine."""
    similarity = l2_normalise(new) @ l2_normalise(fitted).T  # (M, F)
    count = min(count, len(fitted))
    return np.argpartition(-similarity, count - 1, axis=1)[:, :count]


def impute_cold_rows(built: dict[str, np.ndarray], dataset: Dataset, neighbours: int) -> int:
    """Fill the held-out items' collaborative rows (in place) with the mean row of their
    ``neighbours`` nearest fitted items by text cosine; return ``neighbours`` (0: nothing done).

    Held-out items have no training interactions, so their co-occurrence rows are zero and a model
    table's rows untrained: without this their vectors lie apart from every fitted item's and their
    SIDs land in codes no fitted item uses.

    Raises:
        ConfigError: ``neighbours`` > 0 without a text part to find neighbours by.
    """
    if not neighbours or dataset.cold_from is None:
        return 0
    if TEXT not in built:
        raise ConfigError("--cold-impute needs a text part in --item-vectors (neighbours are found by text)")
    warm = dataset.cold_from
    text = l2_normalise(built[TEXT])  # (I, D)
    similarity = text[warm:] @ text[:warm].T  # (M, W)
    count = min(neighbours, warm)
    nearest = np.argpartition(-similarity, count - 1, axis=1)[:, :count]  # (M, k)
    for part, vectors in built.items():
        if part != TEXT:
            vectors[warm:] = vectors[:warm][nearest].mean(axis=1)  # (M, k, E) -> (M, E)
    return neighbours


def describe(provenance: dict[str, Any]) -> str:
    """One line for the stage's summary, e.g. ``item vectors: text+cooc (text 384-d, cooc 64-d ...)``."""
    if "item_vectors" not in provenance:
        return f"item vectors: text ({provenance.get('embedding_model')})"
    details = []
    for part in provenance["item_vector_parts"]:
        name, dim = part["part"], part["dim"]
        if name == TEXT:
            details.append(f"text {dim}-d {part['embedding_model']}")
        elif name == COOC:
            details.append(
                f"cooc {dim}-d window {part['window']}, {part['items_without_pairs']} items without pairs"
            )
        else:
            details.append(f"{name} {dim}-d {part['checkpoint']} sha256 {part['checkpoint_sha256'][:12]}")
    weight = f", collaborative weight {provenance['collab_weight']:g}" if len(details) > 1 else ""
    if provenance.get("cold_impute"):
        count = provenance["cold_impute"]
        weight += f"; held-out items' collaborative parts from their {count} nearest by text"
    return f"item vectors: {provenance['item_vectors']} ({'; '.join(details)}{weight})"


def _sha(array: np.ndarray) -> str:
    return hashlib.sha256(array.tobytes()).hexdigest()
