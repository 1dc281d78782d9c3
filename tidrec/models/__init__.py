"""The model registry: every model tidrec trains or evaluates is one :class:`ModelSpec`.

A model is one folder (or module) under ``tidrec/models/`` that calls :func:`register` when it is
imported; every subpackage and module here is imported on first use of the registry, so adding a
model touches no other file. The CLIs (``tidrec.fit``, ``evaluate``, ``compare``, ``run``) ask the
registry for names, presets, training and loading instead of listing models themselves.

A spec's ``preset`` returns the model's complete training config as a dict of ``FitConfig`` field
values; :func:`tidrec.fit.resolve_config` lays the fields the user set over it (the one merge).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from tidrec.errors import ConfigError

if TYPE_CHECKING:
    from tidrec.data.dataset import Dataset, Split


class Recommender(Protocol):
    """Anything that ranks the catalogue for the users of a split (what a spec's ``load`` returns)."""

    def recommend(self, split: Split, *, k: int, exclude_history: bool) -> np.ndarray:
        """(B, k) int64 item_idx, best first; -1 pads rows with fewer than k items."""
        ...


@runtime_checkable
class CertifyingRecommender(Recommender, Protocol):
    """A recommender that can say which of its lists are provably its model's best (a generative
    model's constrained decoding, :attr:`tidrec.generate.BeamResult.certified`)."""

    def recommend_certified(
        self, split: Split, *, k: int, exclude_history: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """``recommend``'s (B, k) lists and a (B,) bool: True where the list is certified exact."""
        ...


@dataclass(frozen=True)
class LoadRequest:
    """What a spec's ``load`` gets: where the model lies and how it will be used."""

    run: Path
    """Run folder (data/, tokenizer/, models/<name>/)."""
    folder: Path
    """The model's folder, ``<run>/models/<name>``."""
    dataset: Dataset
    """The run's prepared dataset (its hash is checked against the artifact's)."""
    beam_size: int = 20
    """Beams for a generative model's decoding."""
    decoder: str = "beam"
    """A generative model's decoder: ``beam`` or ``exact`` (:data:`tidrec.generate.DECODERS`)."""
    max_beam: int = 1024
    """The widest beam the ``exact`` decoder may use for one user."""
    item_score: float | None = None
    """The one-pass generative model: weight of its item head in the ranking (None: as trained)."""
    device: str = "auto"
    """auto, cpu or cuda."""


@dataclass(frozen=True)
class ModelSpec:
    """One model: how it is configured, trained and served."""

    name: str
    """The name ``--model``/``--models`` take, and the folder under ``<run>/models/``."""
    summary: str
    """One line for ``--help`` and the docs."""
    preset: Callable[[Any], dict[str, Any]]
    """``(FitConfig) -> dict``: the model's complete config as ``FitConfig`` field values (it may
    look at what the user set, e.g. ``config.preset`` or ``config.run``)."""
    fit: Callable[[Any, Dataset], Path]
    """``(FitConfig, Dataset) -> Path``: train (or compute) the model from a resolved config; return
    its artifact."""
    load: Callable[[LoadRequest], Recommender]
    """Rebuild a recommender from the model folder alone."""
    artifact: str = "best.ckpt"
    """The file in the model folder whose presence means the model is trained."""
    options: frozenset[str] = field(default_factory=frozenset)
    """Model-specific ``FitConfig`` fields this model reads; setting another one is refused."""
    needs_sids: bool = False
    """Needs ``tokenizer/sids.parquet`` (compare/run tokenize first)."""
    trained: bool = True
    """Trained with the Lightning trainer (has epochs, checkpoints and resume)."""


_REGISTRY: dict[str, ModelSpec] = {}
_LOADED = False


def register(spec: ModelSpec) -> ModelSpec:
    """Add ``spec`` to the registry (a model module calls this when imported).

    Raises:
        ValueError: another model already has this name.
    """
    existing = _REGISTRY.get(spec.name)
    if existing is not None and existing is not spec:
        raise ValueError(f"model {spec.name!r} is registered twice")
    _REGISTRY[spec.name] = spec
    return spec


def unregister(name: str) -> None:
    """Remove a model (for tests that register their own)."""
    _REGISTRY.pop(name, None)


def _load_builtin() -> None:
    """Import every module and subpackage of ``tidrec.models`` once, so each registers itself."""
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")


def names() -> tuple[str, ...]:
    """Every registered model name, built-in models first in their documented order."""
    _load_builtin()
    order = {name: i for i, name in enumerate(BUILTIN_ORDER)}
    return tuple(sorted(_REGISTRY, key=lambda name: (order.get(name, len(order)), name)))


def get(name: str) -> ModelSpec:
    """The spec of ``name``.

    Raises:
        ConfigError: no model has that name (the message lists those that do).
    """
    _load_builtin()
    if name not in _REGISTRY:
        raise ConfigError(f"unknown model {name!r}; expected one of {', '.join(names())}")
    return _REGISTRY[name]


BUILTIN_ORDER = (
    "tiger",
    "pop",
    "sasrec",
    "sasrec-bce",
    "bert4rec",
    "llmseqsim",
    "llm2sasrec",
    "llm2bert4rec",
    "genrec",
    "llmseqprompt",
)
"""The order tables and ``--help`` list the built-in models in."""
