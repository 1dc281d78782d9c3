"""The item-id sequence models: SASRec (CE and BCE), BERT4Rec, and LLM2SASRec / LLM2BERT4Rec (their
item tables initialised from PCA-reduced text embeddings). Presets: :mod:`tidrec.baselines.presets`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tidrec.baselines import fit_in_run
from tidrec.baselines.presets import KINDS, SEQUENCE_OPTIONS
from tidrec.models import LoadRequest, ModelSpec, register
from tidrec.models.llmseqsim import run_embedding_model

if TYPE_CHECKING:
    from tidrec.fit import FitConfig

SUMMARIES = {
    "sasrec": "SASRec with full-softmax cross-entropy (Kang & McAuley 2018)",
    "sasrec-bce": "SASRec with the paper's binary cross-entropy and one sampled negative",
    "bert4rec": "BERT4Rec, cloze-trained bidirectional transformer (Sun et al. 2019)",
    "llm2sasrec": "SASRec whose item table starts from PCA-reduced text embeddings",
    "llm2bert4rec": "BERT4Rec whose item table starts from PCA-reduced text embeddings",
}


def _preset(name: str):
    kind = KINDS[name]

    def preset(config: FitConfig) -> dict[str, Any]:
        values = kind.preset()
        if kind.text_init:
            values["embedding_model"] = run_embedding_model(config.run)
        return values

    preset.__doc__ = kind.preset.__doc__
    return preset


def load(request: LoadRequest):
    from tidrec.baselines import load_recommender
    from tidrec.device import resolve_device

    return load_recommender(
        request.folder / "best.ckpt", request.dataset, device=resolve_device(request.device)
    )


for _name, _kind in KINDS.items():
    text = {"embedding_model", "embedding_cache"} if _kind.text_init else set()
    register(
        ModelSpec(
            name=_name,
            summary=SUMMARIES[_name],
            preset=_preset(_name),
            fit=fit_in_run,
            load=load,
            options=SEQUENCE_OPTIONS | text,
        )
    )
