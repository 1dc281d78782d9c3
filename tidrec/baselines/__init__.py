"""Baselines in the same evaluation harness as TIGER: popularity, SASRec, BERT4Rec, LLMSeqSim, LLM2*.

``fit_baseline`` trains (or computes) one baseline and returns the artifact it saved;
``load_recommender`` rebuilds a :class:`~tidrec.evaluate.Recommender` from that artifact alone.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tidrec.baselines.popularity import PopularityRecommender
from tidrec.data.dataset import Dataset
from tidrec.errors import ConfigError, InputError

BASELINES = ("pop",)
"""Model names :func:`fit_baseline` accepts."""


def fit_baseline(config: Any, dataset: Dataset, out_dir: str | Path) -> Path:
    """Fit the baseline named by ``config.model`` on ``dataset``; save it under ``out_dir``.

    Args:
        config: a ``tidrec.fit.FitConfig`` (fields left None take the model's preset).
        dataset: the prepared dataset (train sequences are ``s[:-2]``, validation target ``s[-2]``).
        out_dir: the model's folder, ``runs/<name>/models/<model-name>/``.

    Returns:
        The saved artifact (a checkpoint or a JSON state), which :func:`load_recommender` accepts.

    Raises:
        ConfigError: ``config.model`` is not a baseline.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    name = config.model
    if name == "pop":
        path = out_dir / "pop.json"
        PopularityRecommender.fit(dataset).save(path, dataset_hash=dataset.content_hash)
        return path
    raise ConfigError(f"--model {name!r} is not a baseline; expected one of {', '.join(BASELINES)}")


def load_recommender(path: str | Path, dataset: Dataset):
    """Rebuild the recommender saved at ``path`` (a file, or a model folder holding one).

    Raises:
        InputError: nothing loadable there, or it was built for a different dataset.
    """
    path = Path(path)
    if path.is_dir():
        path = _artifact_in(path)
    if not path.exists():
        raise InputError(f"{path}: no saved baseline here")
    if path.suffix == ".json":
        state = json.loads(path.read_text())
        _check_hash(path, state.get("dataset_hash"), dataset)
        if state.get("model") == "pop":
            return PopularityRecommender.load(state, num_items=dataset.num_items, path=path)
        raise InputError(f"{path}: field 'model' is {state.get('model')!r}, expected a baseline name")
    raise InputError(f"{path}: expected a .json state or a .ckpt checkpoint")


def _artifact_in(folder: Path) -> Path:
    for name in ("best.ckpt", "last.ckpt", "llmseqsim.json", "pop.json"):
        if (folder / name).exists():
            return folder / name
    raise InputError(f"{folder}: no baseline artifact (best.ckpt, llmseqsim.json or pop.json)")


def _check_hash(path: Path, saved: str | None, dataset: Dataset) -> None:
    if saved != dataset.content_hash:
        raise InputError(
            f"{path}: built for dataset hash {str(saved)[:12]}, "
            f"but this dataset is {dataset.content_hash[:12]}"
        )


__all__ = ["BASELINES", "PopularityRecommender", "fit_baseline", "load_recommender"]
