"""The semantic-ID generative model (TIGER-style T5 encoder-decoder): presets and registration.

Two sizes, chosen by ``--preset``: ``tiger`` (the paper's model, for a GPU) and ``cpu`` (about 10x
fewer FLOPs, sampled positions and an 8-minute cap, for the 2-core default run); ``auto`` takes
``tiger`` when a GPU is there. The network is :mod:`tidrec.model`, the training pipeline
:mod:`tidrec.models.tiger.train`, decoding :mod:`tidrec.generate`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from tidrec.models import LoadRequest, ModelSpec, register

if TYPE_CHECKING:
    from tidrec.data.dataset import Dataset
    from tidrec.fit import FitConfig

TRAINING = {"weight_decay": 0.01, "warmup": 0.05, "max_epochs": 50, "patience": 5, "seed": 42}
"""Training settings both sizes share."""


def tiger_preset() -> dict[str, Any]:
    """TIGER's size: 4 + 4 layers, d_model 128, 6 heads of 64, d_ff 1024, 20 history items, every
    position each epoch, dropout 0.1, 2000 hashed user tokens, lr 1e-3, batch 256."""
    return {
        **TRAINING,
        "d_model": 128,
        "num_layers": 4,
        "num_heads": 6,
        "d_kv": 64,
        "d_ff": 1024,
        "dropout": 0.1,
        "max_items": 20,
        "user_buckets": 2000,
        "positions_per_user": 0,
        "lr": 1e-3,
        "batch_size": 256,
    }


def cpu_preset() -> dict[str, Any]:
    """A CPU-sized model: 2 + 2 layers, 4 heads of 32, d_ff 512, 10 history items, 24 sampled
    positions per user per epoch, lr 5e-3, batch 64, and an 8-minute cap.

    No dropout (a budget-capped run underfits, and dropout's masks took ~20% of a CPU step) and no
    user tokens (a private token per user is not learnt in a few epochs); lr 5e-3 beat 1e-2 and 3e-3
    on ML-100K, and batch 64 gives 4x the updates of 256 in the same time on a CPU; see
    experiments/results/cpu_preset_tuning.md.
    """
    return {
        **TRAINING,
        "d_model": 128,
        "num_layers": 2,
        "num_heads": 4,
        "d_kv": 32,
        "d_ff": 512,
        "dropout": 0.0,
        "max_items": 10,
        "user_buckets": 0,
        "positions_per_user": 24,
        "lr": 5e-3,
        "batch_size": 64,
        "max_time": 8.0,
    }


def preset(config: FitConfig) -> dict[str, Any]:
    """The preset ``config.preset`` names (``auto``: tiger on a GPU, else cpu), resolved to a size.

    When the user changes the width or the heads but not ``--d-kv``, the head size follows:
    ``d_kv = d_model // heads`` with ``--d-model``, else the preset's attention width // heads.
    """
    from tidrec.training import uses_gpu

    size = config.preset if config.preset != "auto" else ("tiger" if uses_gpu(config) else "cpu")
    values = {"preset": size, **(tiger_preset() if size == "tiger" else cpu_preset())}
    if config.d_kv is None and (config.num_heads is not None or config.d_model is not None):
        width = config.d_model if config.d_model is not None else values["num_heads"] * values["d_kv"]
        values["d_kv"] = max(1, width // (config.num_heads or values["num_heads"]))
    return values


def fit(config: FitConfig, dataset: Dataset) -> Path:
    from tidrec.models.tiger.train import fit_tiger

    return fit_tiger(config, dataset)


def load(request: LoadRequest):
    from tidrec.device import resolve_device
    from tidrec.model import TigerRecommender, load_checkpoint
    from tokenizer.sid_table import SidTable

    loaded = load_checkpoint(request.folder / "best.ckpt")
    sids_path = request.run / "tokenizer" / "sids.parquet"
    sids = SidTable.load(sids_path)
    loaded.check_dataset(request.dataset.content_hash, request.run / "data")
    loaded.check_sids(sids, sids_path)
    return TigerRecommender(
        loaded,
        sids,
        request.dataset.user_ids,
        beam_size=request.beam_size,
        device=resolve_device(request.device),
    )


SPEC = register(
    ModelSpec(
        name="tiger",
        summary="semantic-ID generative model: T5 over SID tokens, trie-constrained beam search",
        preset=preset,
        fit=fit,
        load=load,
        options=frozenset(
            {
                "preset",
                "d_model",
                "num_layers",
                "num_heads",
                "d_kv",
                "d_ff",
                "dropout",
                "max_items",
                "user_buckets",
                "positions_per_user",
                "warmup",
            }
        ),
        needs_sids=True,
    )
)
