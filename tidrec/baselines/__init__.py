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
from tidrec.baselines.presets import KINDS, sequence_preset
from tidrec.data.dataset import Dataset
from tidrec.errors import ConfigError, InputError
from tidrec.io import read_json_object

BASELINES = ("pop", "llmseqsim", *KINDS)
"""Model names :func:`fit_baseline` accepts."""


def fit_baseline(config: Any, dataset: Dataset, out_dir: str | Path) -> Path:
    """Fit the baseline named by ``config.model`` on ``dataset``; save it under ``out_dir``.

    Args:
        config: a ``tidrec.fit.FitConfig``; fields left None take the model's preset (the same
            merge as ``tidrec.fit``); ``run`` locates the embedding cache.
        dataset: the prepared dataset (train sequences are ``s[:-2]``, validation target ``s[-2]``).
        out_dir: the model's folder, ``runs/<name>/models/<model-name>/``.

    Returns:
        The saved artifact (``best.ckpt``, ``llmseqsim.json`` or ``pop.json``), which
        :func:`load_recommender` accepts.

    Raises:
        ConfigError: ``config.model`` is not a baseline, or a field is out of range for it.
    """
    from tidrec.fit import resolve_config

    config = resolve_config(config)
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
        recommender = LLMSeqSimRecommender(item_embeddings(config, dataset), aggregation=config.aggregation)
        recommender.save(path, dataset_hash=dataset.content_hash, embedding_model=config.embedding_model)
        info = {"aggregation": recommender.aggregation, "embedding_model": config.embedding_model}
    elif name in KINDS:
        from tidrec.baselines.train import train_sequence_model

        preset = sequence_preset(name, config)
        embeddings = item_embeddings(config, dataset) if preset.text_init else None
        path, info = train_sequence_model(preset, config, dataset, out_dir, embeddings)
        if preset.text_init:
            info["embedding_model"] = config.embedding_model
    else:
        raise ConfigError(f"--model {name!r} is not a baseline; expected one of {', '.join(BASELINES)}")
    seconds = time.perf_counter() - start
    from tidrec.training import record_training

    timer = info.pop("timer_seconds", None)
    record_training(out_dir, name, seconds, resumed=config.resume, timer_seconds=timer, **info)
    return path


def fit_in_run(config: Any, dataset: Dataset) -> Path:
    """:func:`fit_baseline` into the run folder's ``models/<model>/`` (what the registry's specs call)."""
    return fit_baseline(config, dataset, Path(config.run) / "models" / config.model)


def item_embeddings(config: Any, dataset: Dataset) -> np.ndarray:
    """(I, E) text embeddings of the catalogue by ``config.embedding_model``, in the run's cache."""
    from tidrec.embed import embed_texts, embedding_cache_dir

    return embed_texts(
        dataset.item_texts,
        model=config.embedding_model,
        cache_dir=embedding_cache_dir(Path(config.run), config.embedding_cache),
        device=config.device,
        progress=config.progress,
    )


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
    "fit_in_run",
    "item_embeddings",
    "load_recommender",
]
