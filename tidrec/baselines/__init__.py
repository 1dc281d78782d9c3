"""Baselines in the same evaluation harness as TIGER: popularity, SASRec, BERT4Rec, LLMSeqSim, LLM2*.

``fit_baseline`` trains (or computes) one baseline and returns the artifact it saved;
``load_recommender`` rebuilds a :class:`~tidrec.evaluate.Recommender` from that artifact alone.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from tidrec.baselines.llmseqsim import LLMSeqSimRecommender
from tidrec.baselines.popularity import PopularityRecommender
from tidrec.baselines.presets import PRESETS, resolve_preset
from tidrec.data.dataset import Dataset
from tidrec.errors import ConfigError, InputError
from tidrec.io import read_json_object

BASELINES = ("pop", "llmseqsim", *PRESETS)
"""Model names :func:`fit_baseline` accepts."""


def fit_baseline(config: Any, dataset: Dataset, out_dir: str | Path) -> Path:
    """Fit the baseline named by ``config.model`` on ``dataset``; save it under ``out_dir``.

    Args:
        config: a ``tidrec.fit.FitConfig`` (its generic fields left None take the model's preset;
            ``run`` locates the embedding cache ``<run>/embeddings``).
        dataset: the prepared dataset (train sequences are ``s[:-2]``, validation target ``s[-2]``).
        out_dir: the model's folder, ``runs/<name>/models/<model-name>/``.

    Returns:
        The saved artifact (``best.ckpt``, ``llmseqsim.json`` or ``pop.json``), which
        :func:`load_recommender` accepts.

    Raises:
        ConfigError: ``config.model`` is not a baseline, or a field is out of range for it.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    name = config.model
    start = time.perf_counter()
    if name == "pop":
        path = out_dir / "pop.json"
        PopularityRecommender.fit(dataset).save(path, dataset_hash=dataset.content_hash)
        info: dict[str, Any] = {}
    elif name == "llmseqsim":
        path = out_dir / "llmseqsim.json"
        embedding_model = _embedding_model(config)
        recommender = LLMSeqSimRecommender(
            item_embeddings(config, dataset), aggregation=getattr(config, "aggregation", None) or "last"
        )
        recommender.save(path, dataset_hash=dataset.content_hash, embedding_model=embedding_model)
        info = {"aggregation": recommender.aggregation, "embedding_model": embedding_model}
    elif name in PRESETS:
        from tidrec.baselines.train import train_sequence_model

        preset = resolve_preset(name, config)
        embeddings = item_embeddings(config, dataset) if preset.text_init else None
        path, info = train_sequence_model(preset, config, dataset, out_dir, embeddings)
    else:
        raise ConfigError(f"--model {name!r} is not a baseline; expected one of {', '.join(BASELINES)}")
    seconds = time.perf_counter() - start
    from tidrec.training import record_training

    resumed = bool(getattr(config, "resume", False))
    timer = info.pop("timer_seconds", None)
    record_training(out_dir, name, seconds, resumed=resumed, timer_seconds=timer, **info)
    return path


def item_embeddings(config: Any, dataset: Dataset) -> np.ndarray:
    """(I, E) text embeddings of the catalogue, cached under ``<run>/embeddings``."""
    from tidrec.embed import embed_texts

    run = getattr(config, "run", None)
    cache_dir = Path(run) / "embeddings" if run is not None else None
    return embed_texts(
        dataset.item_texts,
        model=_embedding_model(config),
        cache_dir=cache_dir,
        device=getattr(config, "embed_device", None) or "auto",
    )


def _embedding_model(config: Any) -> str:
    from tidrec.embed import DEFAULT_EMBEDDING_MODEL

    return getattr(config, "embedding_model", None) or DEFAULT_EMBEDDING_MODEL


def load_recommender(path: str | Path, dataset: Dataset, *, device: str = "cpu"):
    """Rebuild the recommender saved at ``path`` (a file, or a model folder holding one).

    Raises:
        InputError: nothing loadable there, or it was built for a different dataset.
    """
    path = Path(path)
    if path.is_dir():
        path = _artifact_in(path)
    if not path.exists():
        raise InputError(f"{path}: no saved baseline here")
    if path.suffix == ".ckpt":
        from tidrec.baselines.train import load_sequence_recommender

        return load_sequence_recommender(path, dataset, device=device)
    if path.suffix == ".json":
        state = read_json_object(path, remedy=f"re-run python -m tidrec.fit --model {path.stem}")
        _check_hash(path, state.get("dataset_hash"), dataset)
        if state.get("model") == "pop":
            return PopularityRecommender.load(state, num_items=dataset.num_items, path=path)
        if state.get("model") == "llmseqsim":
            return LLMSeqSimRecommender.load(state, num_items=dataset.num_items, path=path)
        raise InputError(f"{path}: field 'model' is {state.get('model')!r}, expected pop or llmseqsim")
    raise InputError(f"{path}: expected a .json state or a .ckpt checkpoint")


def _artifact_in(folder: Path) -> Path:
    for name in ("best.ckpt", "llmseqsim.json", "pop.json"):
        if (folder / name).exists():
            return folder / name
    raise InputError(f"{folder}: no baseline artifact (best.ckpt, llmseqsim.json or pop.json)")


def _check_hash(path: Path, saved: str | None, dataset: Dataset) -> None:
    if saved != dataset.content_hash:
        raise InputError(
            f"{path}: built for dataset hash {str(saved)[:12]}, "
            f"but this dataset is {dataset.content_hash[:12]}"
        )


__all__ = [
    "BASELINES",
    "LLMSeqSimRecommender",
    "PopularityRecommender",
    "fit_baseline",
    "item_embeddings",
    "load_recommender",
]
