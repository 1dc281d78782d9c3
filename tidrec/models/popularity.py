"""Most-popular items (training interactions counted once per user): the floor every model must beat."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tidrec.baselines import fit_in_run
from tidrec.models import LoadRequest, ModelSpec, register

if TYPE_CHECKING:
    from tidrec.fit import FitConfig


def preset(config: FitConfig) -> dict[str, Any]:
    """Nothing to choose: popularity is counted, not trained."""
    return {}


def load(request: LoadRequest):
    from tidrec.baselines import load_recommender

    return load_recommender(request.folder / "pop.json", request.dataset)


SPEC = register(
    ModelSpec(
        name="pop",
        summary="popularity: the most-interacted items of the training sequences",
        preset=preset,
        fit=fit_in_run,
        load=load,
        artifact="pop.json",
        trained=False,
    )
)
