"""The tokenizer Protocol and the self-describing checkpoint every tokenizer saves and loads."""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path
from typing import Any, Protocol, TypeVar, runtime_checkable

import numpy as np
import torch

from tidrec.errors import InputError
from tidrec.io import atomic_path

CHECKPOINT_FORMAT = "tidrec.tokenizer/1"

C = TypeVar("C")


@runtime_checkable
class SidTokenizer(Protocol):
    """Turns (N, D) item embeddings into (N, L) code tuples (before the collision code)."""

    kind: str
    """Registry name written into the checkpoint (``rqvae``, ``rkmeans``)."""
    config: Any
    """The tokenizer's frozen config dataclass (saved in the checkpoint)."""

    @property
    def level_sizes(self) -> tuple[int, ...]:
        """(L,) codes per level."""
        ...

    def fit(self, embeddings: np.ndarray, *, seed: int) -> dict[str, float]:
        """Learn codebooks (and weights) from (N, D) float embeddings; returns a training summary."""
        ...

    def encode(self, embeddings: np.ndarray) -> np.ndarray:
        """(N, D) embeddings -> (N, L) int64 codes."""
        ...

    def reconstruct(self, embeddings: np.ndarray) -> np.ndarray:
        """(N, D) embeddings -> (N, D) what the codes decode back to."""
        ...

    def save(self, path: str | Path, *, extra: dict[str, Any] | None = None) -> None:
        """Write a checkpoint (config + codebooks + weights) that :func:`load_tokenizer` reads alone."""
        ...


def save_checkpoint(path: str | Path, *, kind: str, config: Any, state: dict[str, Any], extra: dict) -> None:
    """Write ``{format, kind, config, state, extra}`` with torch.save, atomically."""
    payload = {
        "format": CHECKPOINT_FORMAT,
        "kind": kind,
        "config": dataclasses.asdict(config),
        "state": state,
        "extra": extra,
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The payload written by :func:`save_checkpoint`.

    Raises:
        InputError: missing file or not a tidrec tokenizer checkpoint.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: tokenizer checkpoint not found (run python -m tidrec.tokenize first)")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for a corrupt or foreign file
        raise InputError(f"{path}: not a readable tokenizer checkpoint ({type(error).__name__})") from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise InputError(f"{path}: not a tidrec tokenizer checkpoint (expected format {CHECKPOINT_FORMAT})")
    kinds = {"kind": str, "config": dict, "state": dict, "extra": dict}
    bad = [key for key, kind in kinds.items() if not isinstance(payload.get(key), kind)]
    if bad:
        raise InputError(
            f"{path}: tokenizer checkpoint lacks {', '.join(bad)} or holds the wrong type; "
            "re-run python -m tidrec.tokenize"
        )
    return payload


def config_from_dict(cls: type[C], values: dict[str, Any], *, source: str | Path) -> C:
    """Rebuild a frozen config dataclass from ``dataclasses.asdict`` output (lists back to tuples).

    Raises:
        InputError: the dict names fields the config does not have.
    """
    hints = typing.get_type_hints(cls)
    names = {field.name for field in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - names)
    if unknown:
        raise InputError(f"{source}: config has unknown fields {unknown} for {cls.__name__}")
    converted = {
        key: tuple(value) if typing.get_origin(hints[key]) is tuple else value
        for key, value in values.items()
    }
    return cls(**converted)


def as_float_matrix(embeddings: np.ndarray, *, dim: int | None = None) -> np.ndarray:
    """Check and convert embeddings to a contiguous (N, D) float32 array.

    Raises:
        ValueError: not 2-D, wrong D, empty, or non-finite values.
    """
    array = np.ascontiguousarray(embeddings, dtype=np.float32)
    if array.ndim != 2 or len(array) == 0:
        raise ValueError(f"embeddings must be a non-empty (N, D) array, got shape {array.shape}")
    if dim is not None and array.shape[1] != dim:
        raise ValueError(f"embeddings must be (N, {dim}) for this tokenizer, got {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError("embeddings contain NaN or infinite values")
    return array
