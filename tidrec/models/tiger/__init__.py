"""The semantic-ID generative model (TIGER-style T5 encoder-decoder): presets and registration.

Two recipes, chosen by ``--recipe``: ``onepass`` (the default: one encoder token per history item, a
causal encoder, every position's next item in one pass) and ``examples`` (TIGER's paper recipe: one
(history, next item) example at a time, one encoder token per SID code). Two sizes, chosen by
``--preset``: ``tiger`` (the paper's model) and ``cpu`` (about 10x fewer FLOPs, for the 2-core default
run); ``auto`` takes ``tiger`` when a GPU is there. Every preset's budget is in epochs, so a run's
numbers do not depend on the machine's speed (``examples`` at the cpu size keeps its 8-minute cap).
The network is :mod:`tidrec.model` and :mod:`tidrec.models.tiger.onepass`, training
:mod:`tidrec.models.tiger.onepass_train` and :mod:`tidrec.models.tiger.train`, decoding
:mod:`tidrec.generate`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tidrec.errors import ConfigError, InputError
from tidrec.models import LoadRequest, ModelSpec, register

if TYPE_CHECKING:
    from tidrec.data.dataset import Dataset
    from tidrec.fit import FitConfig

TRAINING = {"weight_decay": 0.01, "warmup": 0.05, "patience": 5, "seed": 42}
"""Training settings every preset shares."""

SIZES = {
    "cpu": {"d_model": 128, "num_layers": 2, "num_heads": 4, "d_kv": 32, "d_ff": 512},
    "tiger": {"d_model": 128, "num_layers": 4, "num_heads": 6, "d_kv": 64, "d_ff": 1024},
}
"""The two network sizes: TIGER's (4 + 4 layers, 6 heads of 64, d_ff 1024) and one with ~10x fewer FLOPs."""


CPU_ONEPASS = {
    "num_decoder_layers": 1,
    "dropout_kernel": "words",
    "max_epochs": 40,
    "patience": 10,
}
"""What the cpu size changes in the one-pass recipe: one decoder layer (a step ~1.5x cheaper) and
dropout masks from random words (~1.1x), spent on 40 epochs instead of 15 in about the same time.
Chosen on ML-100K validation NDCG@10 over two seeds among eight settings, checked on a third seed
(README, "The README's run on ML-100K"). The earlier cpu preset is
``--num-decoder-layers 2 --dropout-kernel torch --max-epochs 15 --patience 5``."""


def onepass_preset(size: str) -> dict[str, Any]:
    """The one-pass recipe: one encoder token per history item (its code embeddings summed, plus an
    item-id embedding), a causal encoder, every position's next item in one pass, 50 history items,
    dropout 0.2 (none on attention weights), each SID token normalised over the codes the trie
    allows after its prefix (the trie softmax), and a budget in epochs (no wall-time cap) with a
    cosine over the planned steps: 30 for the tiger size, 40 for the cpu size, which also has one
    decoder layer and the words dropout kernel (``CPU_ONEPASS``).

    The trie softmax and attention dropout 0 joined the preset together: the README run went from
    test NDCG@10 0.0752 to 0.0812 with them and trains faster, and on ML-1M validation NDCG@10 after
    6 epochs was 0.097 against 0.086 (README, "The README's run on ML-100K").

    Batches are small (8 users; each brings up to 50 targets): on ML-100K batch 64 gave 15 updates an
    epoch and validation NDCG@10 stalled near 0.025, batch 8 reached 0.075 in 15 epochs with SIDs
    from text and co-occurrence (experiments/results/onepass_ml100k.md).
    """
    return {
        **TRAINING,
        **SIZES[size],
        "recipe": "onepass",
        "dropout": 0.2,
        "max_items": 50,
        "item_id_embedding": True,
        "recency_bias": True,
        "trie_softmax": True,
        "attention_dropout": 0.0,
        "dropout_kernel": "torch",
        "windows": "last",
        "objective": "next",
        "item_loss": 0.0,
        "item_score": 0.0,
        "mask_rate": 0.2,
        "masked_weight": 1.0,
        "pretrain_epochs": 10,
        "lr": 1e-3,
        "batch_size": 8 if size == "cpu" else 32,
        "max_epochs": 30,
        **(CPU_ONEPASS if size == "cpu" else {}),
    }


def examples_preset(size: str) -> dict[str, Any]:
    """TIGER's recipe as the paper trains it: one (history, next item) example at a time, one encoder
    token per SID code.

    ``tiger`` size: 20 history items, every position each epoch, dropout 0.1, 2000 hashed user tokens,
    lr 1e-3, batch 256. ``cpu`` size: 10 history items, 24 sampled positions per user per epoch, no
    dropout or user tokens, lr 5e-3, batch 64 and an 8-minute cap (the budget-capped CPU preset of
    experiments/results/cpu_preset_tuning.md).
    """
    values = {**TRAINING, **SIZES[size], "recipe": "examples", "max_epochs": 50}
    if size == "tiger":
        return {**values, "dropout": 0.1, "max_items": 20, "user_buckets": 2000, "positions_per_user": 0,
                "lr": 1e-3, "batch_size": 256}  # fmt: skip
    return {**values, "dropout": 0.0, "max_items": 10, "user_buckets": 0, "positions_per_user": 24,
            "lr": 5e-3, "batch_size": 64, "max_time": 8.0}  # fmt: skip


def preset(config: FitConfig) -> dict[str, Any]:
    """The size ``config.preset`` names (``auto``: tiger on a GPU, else cpu) in the recipe
    ``config.recipe`` (default ``onepass``; ``examples`` is TIGER's original recipe).

    When the user changes the width or the heads but not ``--d-kv``, the head size follows:
    ``d_kv = d_model // heads`` with ``--d-model``, else the preset's attention width // heads.
    """
    from tidrec.training import uses_gpu

    size = config.preset if config.preset not in (None, "auto") else ("tiger" if uses_gpu(config) else "cpu")
    recipe = config.recipe or "onepass"
    values = {"preset": size, **(onepass_preset(size) if recipe == "onepass" else examples_preset(size))}
    if config.d_kv is None and (config.num_heads is not None or config.d_model is not None):
        width = config.d_model if config.d_model is not None else values["num_heads"] * values["d_kv"]
        values["d_kv"] = max(1, width // (config.num_heads or values["num_heads"]))
    return values


def fit(config: FitConfig, dataset: Dataset) -> Path:
    from tidrec.models.tiger.train import load_sids

    sids = load_sids(config.run, dataset)
    if config.recipe != "onepass" and config.objective not in (None, "next"):
        raise ConfigError(f"--objective {config.objective} needs --recipe onepass")
    if dataset.cold_from is not None:  # the cold-start protocol: train on the fitted items' SIDs
        if config.recipe != "onepass":
            raise ConfigError("a cold-start dataset (--cold-start) needs --recipe onepass")
        sids = sids.prefix(dataset.cold_from)
    if config.recipe == "onepass":
        from tidrec.models.tiger.onepass_train import fit_onepass

        return fit_onepass(config, dataset, sids)
    from tidrec.models.tiger.train import fit_tiger

    return fit_tiger(config, dataset, sids)


def load(request: LoadRequest):
    from tidrec.artifacts import checkpoint_record, read_checkpoint
    from tidrec.device import resolve_device
    from tokenizer.sid_table import SidTable

    path = request.folder / "best.ckpt"
    sids_path = request.run / "tokenizer" / "sids.parquet"
    sids = SidTable.load(sids_path)
    device = resolve_device(request.device)
    if checkpoint_record(read_checkpoint(path, mmap=True), path).entry.get("recipe") == "onepass":
        from tidrec.models.tiger.onepass_train import OnePassRecommender, load_onepass

        model = load_onepass(
            path,
            dataset=request.dataset,
            sids=sids,
            sids_path=sids_path,
            data_path=request.run / "data",
        )
        if request.item_score is not None:  # decoding only: the weights are the same
            try:
                model.config = dataclasses.replace(model.config, item_score=request.item_score)
            except ValueError:
                raise InputError(f"{path}: --item-score needs a model trained with --item-loss") from None
        return OnePassRecommender(
            model,
            beam_size=request.beam_size,
            decoder=request.decoder,
            max_beam=request.max_beam,
            device=device,
        )
    if request.item_score is not None:
        raise InputError(f"{path}: --item-score needs a one-pass model trained with --item-loss")
    from tidrec.model import TigerRecommender, load_checkpoint

    loaded = load_checkpoint(path)
    loaded.check_dataset(request.dataset.content_hash, request.run / "data")
    loaded.check_sids(sids, sids_path)
    return TigerRecommender(
        loaded,
        sids,
        request.dataset.user_ids,
        beam_size=request.beam_size,
        decoder=request.decoder,
        max_beam=request.max_beam,
        device=device,
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
                "num_decoder_layers",
                "num_heads",
                "d_kv",
                "d_ff",
                "dropout",
                "max_items",
                "user_buckets",
                "positions_per_user",
                "warmup",
                "recipe",
                "item_id_embedding",
                "recency_bias",
                "attention_dropout",
                "dropout_kernel",
                "trie_softmax",
                "node_embeddings",
                "objective",
                "item_loss",
                "item_score",
                "mask_rate",
                "masked_weight",
                "pretrain_epochs",
                "windows",
            }
        ),
        needs_sids=True,
    )
)
