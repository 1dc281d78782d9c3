"""Checkpoints are untrusted input: weights-only reads, and one check of what they were built from.

A run folder travels: colleagues share it, papers ship it, a user copies it between machines. So
every checkpoint tidrec reads, its own included, is read with ``torch.load(weights_only=True)``:
tensors and plain data only, never a pickled object that could run code. What a checkpoint was
trained on is recorded in plain data under ``checkpoint["tidrec"]`` (``CHECKPOINT_KEY``), and
:func:`check_checkpoint` is the one place that compares it with the run folder's data and SID
table, for ``fit --resume``, ``evaluate``, ``compare`` and ``beam`` alike.
"""

from __future__ import annotations

import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from tidrec.errors import InputError

CHECKPOINT_KEY = "tidrec"
"""Entry of a checkpoint dict holding tidrec's own plain-data record (kind, config, hashes)."""


def read_checkpoint(path: str | Path, *, map_location: Any = "cpu", mmap: bool = False) -> dict[str, Any]:
    """Load a checkpoint file weights-only: tensors and plain data, never arbitrary objects.

    Raises:
        InputError: the file is missing, holds objects a weights-only load refuses (a pickle that
            could run code), is truncated or corrupt, or is not a checkpoint dict.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: checkpoint not found (run python -m tidrec.fit first)")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except pickle.UnpicklingError:
        raise InputError(
            f"{path}: refused: it holds Python objects beyond tensors and plain data, which could run "
            "code when loaded (tidrec only loads weights-only checkpoints)"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile, KeyError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise InputError(
            f"{path}: not a readable checkpoint, truncated or corrupt ({reason[:120]})"
        ) from None
    if not isinstance(checkpoint, dict):
        raise InputError(f"{path}: not a tidrec checkpoint (holds a {type(checkpoint).__name__}, not a dict)")
    return checkpoint


@dataclass(frozen=True)
class CheckpointRecord:
    """What a checkpoint says about itself: which model, and what data it was trained on."""

    path: Path
    kind: str
    """``tiger`` (the generative model), ``sequence`` (SASRec/BERT4Rec types) or ``llm`` (title
    generation with a LoRA-tuned causal LM)."""
    model_name: str
    """The model's registry name (``tiger``, ``sasrec``, ``llm2bert4rec``, ...)."""
    dataset_hash: str
    """``Dataset.content_hash`` of the training data."""
    sid_hash: str | None
    """``SidTable.content_hash()`` of the SIDs the model reads (the generative model only)."""
    entry: dict[str, Any]
    """The whole plain-data record (model config, level sizes, ...)."""


def checkpoint_record(checkpoint: dict[str, Any], path: str | Path) -> CheckpointRecord:
    """The tidrec record of a loaded checkpoint.

    Sequence-baseline checkpoints written before the record existed keep the same facts in
    Lightning's ``hyper_parameters`` (plain data), which is read instead.

    Raises:
        InputError: the checkpoint has neither, or its record lacks a field.
    """
    path = Path(path)
    entry = checkpoint.get(CHECKPOINT_KEY)
    if not isinstance(entry, dict):
        legacy = checkpoint.get("hyper_parameters")
        if isinstance(legacy, dict) and {"architecture", "config", "model_name"} <= set(legacy):
            entry = {"kind": "sequence", **legacy}
        else:
            raise InputError(f"{path}: not a tidrec checkpoint (no '{CHECKPOINT_KEY}' record)")
    kind = entry.get("kind")
    if kind == "tiger":
        needed = ("model_config", "level_sizes", "sid_hash", "dataset_hash")
    elif kind == "sequence":
        needed = ("architecture", "config", "model_name", "dataset_hash")
    elif kind == "llm":
        needed = ("llm_config", "model_name", "dataset_hash", "titles_hash")
    else:
        raise InputError(f"{path}: unknown checkpoint kind {kind!r}; expected tiger, sequence or llm")
    missing = [name for name in needed if name not in entry]
    if missing:
        raise InputError(f"{path}: the checkpoint's '{CHECKPOINT_KEY}' record lacks {', '.join(missing)}")
    return CheckpointRecord(
        path=path,
        kind=kind,
        model_name=str(entry.get("model_name", "tiger")),
        dataset_hash=str(entry["dataset_hash"] or ""),
        sid_hash=str(entry["sid_hash"]) if kind == "tiger" else None,
        entry=entry,
    )


def check_checkpoint(
    record: CheckpointRecord,
    *,
    model: str | None = None,
    dataset_hash: str | None = None,
    data_path: str | Path = "the run's data",
    sid_hash: str | None = None,
    sids_path: str | Path = "the run's SID table",
) -> None:
    """Refuse a checkpoint that was trained as another model, on other data, or on other SIDs.

    Every stage that consumes a checkpoint calls this with what it is about to pair it with.

    Raises:
        InputError: one line naming the checkpoint, what it records and what it was paired with.
    """
    if model is not None and record.model_name != model:
        raise InputError(f"{record.path}: a {record.model_name} checkpoint, not {model}")
    if dataset_hash is not None and record.dataset_hash != dataset_hash:
        raise InputError(
            f"{record.path}: trained on dataset {record.dataset_hash[:12] or '(unrecorded)'}, but "
            f"{data_path} is {dataset_hash[:12]}; train a new model for this data"
        )
    if sid_hash is not None and record.kind == "tiger" and record.sid_hash != sid_hash:
        raise InputError(
            f"{record.path}: trained on SID table {str(record.sid_hash)[:12]}, but {sids_path} is "
            f"{sid_hash[:12]}; re-run fit with these SIDs or use the tokenizer it was trained with"
        )
