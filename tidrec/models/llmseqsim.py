"""LLMSeqSim (Harte et al. 2023): the catalogue items nearest to a history's text embedding."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from tidrec.baselines import fit_in_run
from tidrec.models import LoadRequest, ModelSpec, register

if TYPE_CHECKING:
    from tidrec.fit import FitConfig


def run_embedding_model(run: Path) -> str:
    """The sentence model the run's SIDs were built from, else tidrec's default.

    The text baselines default to it, so one run compares models over the same item embeddings.
    """
    from tidrec.embed import DEFAULT_EMBEDDING_MODEL
    from tokenizer.sid_table import SidTable

    sids = Path(run) / "tokenizer" / "sids.parquet"
    if sids.is_file():
        recorded = SidTable.metadata(sids).get("embedding_model")
        if isinstance(recorded, str) and recorded:
            return recorded
    return DEFAULT_EMBEDDING_MODEL


def preset(config: FitConfig) -> dict[str, Any]:
    """The last history item's embedding as the query (the paper's best on ML-1M-like data), and the
    run's sentence model."""
    return {"aggregation": "last", "embedding_model": run_embedding_model(config.run)}


def load(request: LoadRequest):
    from tidrec.baselines import load_recommender

    return load_recommender(request.folder / "llmseqsim.json", request.dataset)


SPEC = register(
    ModelSpec(
        name="llmseqsim",
        summary="LLMSeqSim: nearest items to the history's sentence embedding (faiss)",
        preset=preset,
        fit=fit_in_run,
        load=load,
        artifact="llmseqsim.json",
        options=frozenset({"embedding_model", "embedding_cache", "aggregation"}),
        trained=False,
    )
)
