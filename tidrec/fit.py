"""``python -m tidrec.fit --run runs/ml-100k [--model tiger]``: train a model of a run folder.

Every model is a :class:`~tidrec.models.ModelSpec` in the registry (:mod:`tidrec.models`). Its
preset gives the complete config; :func:`resolve_config` lays the options the user set over it
(the one merge of preset and flags), ``--print-config`` shows the result, and every fit saves it as
``<run>/models/<model>/config.yaml``, which ``--config`` replays. Everything lands in
``<run>/models/<model>/``: the artifact (best.ckpt, last.ckpt, or a JSON state), config.yaml,
train_info.json, metrics.csv and curves.png.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from tidrec import models
from tidrec.artifacts import read_checkpoint
from tidrec.cli import check_range, config_values, config_yaml
from tidrec.cli import run as run_cli
from tidrec.data.dataset import load_dataset
from tidrec.errors import ConfigError
from tidrec.io import write_text
from tidrec.training import FIT_OPTIONS_KEY, TrainConfig

CONFIG_FILE = "config.yaml"
"""The resolved config each fit writes beside its artifact (``--config`` replays it)."""


@dataclass(frozen=True, kw_only=True)
class FitConfig(TrainConfig):
    """Options of ``python -m tidrec.fit``: fields left unset (None) take the model's preset."""

    run: Path
    """Run folder (holds data/ and tokenizer/; the model goes to models/<model>/)."""
    model: str = "tiger"
    """Which model to train (see tidrec.models: tiger, pop, sasrec, sasrec-bce, bert4rec, llmseqsim,
    llm2sasrec, llm2bert4rec, genrec, llmseqprompt, or any registered model)."""
    preset: Literal["auto", "cpu", "tiger"] | None = None
    """Generative model size: tiger (TIGER's 4+4 layers, for GPUs), cpu (2+2 layers, ~10x fewer
    FLOPs), auto or unset (tiger on a GPU, else cpu)."""
    recipe: Literal["onepass", "examples"] | None = None
    """Generative model training: onepass (one encoder token per item, causal encoder, every position
    in one pass; the preset) or examples (TIGER's: one example per target, one token per SID code)."""
    item_id_embedding: bool | None = None
    """Generative model, onepass: add a learned item-id embedding to each item's summed code
    embeddings (preset: true)."""
    recency_bias: bool | None = None
    """Generative model, onepass: a learned per-head cross-attention bias by how far back each history
    item lies, so the decoder knows which item is the latest (preset: true)."""
    trie_softmax: bool | None = None
    """Generative model, onepass: normalise each SID token over the codes the catalogue allows after
    its prefix, in training and decoding (preset: true for the onepass recipe)."""
    node_embeddings: bool | None = None
    """Generative model, onepass, with --trie-softmax: a learned output vector per trie node (each SID
    prefix, down to the item), added to its code's output embedding: a hierarchical softmax whose
    last level is an item-id output embedding (preset: false)."""
    dropout_kernel: Literal["torch", "words"] | None = None
    """Generative model, onepass: how dropout masks are drawn: torch (F.dropout) or words (a 64-bit
    random word per four elements: masks about 2.3x cheaper on CPU, a cpu-preset step 1.13x faster;
    same rate, different masks for a seed) (preset: words for the cpu size, torch for tiger)."""
    item_loss: float | None = None
    """Generative model, onepass, with --item-id-embedding: weight of an auxiliary loss, SASRec's
    next-item cross-entropy over the whole catalogue from each encoder state, scored against the
    item-id embedding table; training only, decoding is unchanged (preset: 0, off)."""
    item_score: float | None = None
    """Generative model, onepass, with --item-loss: decoding (validation, evaluation, tidrec.beam)
    adds this weight times the item head's log-probability to each found item's SID
    log-probability and ranks by the sum; the beams are still chosen by the SIDs (preset: 0, off)."""
    objective: Literal["next", "masked", "mixed", "pretrain"] | None = None
    """Generative model, onepass: next (every position's next item, causal encoder), masked (GenRec's
    masked items: bidirectional encoder, a mask appended at inference), mixed (next + --masked-weight
    x masked each step), or pretrain (GenRec's schedule: --pretrain-epochs of masked items into
    models/tiger/pretrain, then next-item fine-tuning from its best weights) (preset: next)."""
    mask_rate: float | None = None
    """Generative model, masked/mixed/pretrain: share of each sequence's items masked, at least one
    (preset: 0.2, BERT4Rec's ML-1M rate; GenRec masks one random item per sequence, which gives one
    target per encoder pass)."""
    masked_weight: float | None = None
    """Generative model, mixed: the masked loss's weight (preset: 1)."""
    pretrain_epochs: int | None = None
    """Generative model, pretrain: epochs of masked-item pre-training before --max-epochs of
    next-item fine-tuning (preset: 10)."""
    attention_dropout: float | None = None
    """Generative model, onepass: dropout on attention weights (preset: 0; unset without a preset:
    --dropout, as T5). On CPU it costs about 3x the attention itself (a mask over every (query, key)
    score)."""
    max_epochs: int | None = None
    """Upper bound on training epochs (preset: generative 40 cpu, 30 tiger; 200 SASRec/BERT4Rec)."""
    lr: float | None = None
    """Peak AdamW learning rate (preset: 5e-3 cpu, 1e-3 tiger and the baselines)."""
    batch_size: int | None = None
    """Training examples per optimisation step (preset: 64 cpu, 256 tiger, 128 baselines)."""
    weight_decay: float | None = None
    """AdamW weight decay (preset: 0.01)."""
    warmup: float | None = None
    """Generative model: fraction of all steps spent in linear warm-up, at most one epoch (preset: 0.05)."""
    patience: int | None = None
    """Validations without NDCG@10 improvement before stopping (preset: generative 10 cpu, 5 tiger;
    10 baselines)."""
    seed: int | None = None
    """Seed for weights, sampling and data order (preset: 42)."""
    max_time: float | None = None
    """Minutes of training at most, a safety cap (preset: 8 for the cpu size, else none)."""
    d_model: int | None = None
    """Hidden size (preset: 128)."""
    num_layers: int | None = None
    """Layers (for tiger: encoder layers and decoder layers each; preset: 4 tiger, 2 cpu)."""
    num_decoder_layers: int | None = None
    """Generative model: decoder layers, when they should differ from --num-layers (preset: 1 for the
    cpu size, as many for tiger)."""
    num_heads: int | None = None
    """Attention heads (preset: 6 of 64 for tiger, 4 of 32 for cpu)."""
    d_kv: int | None = None
    """Generative model: size of each attention head (preset: 64 tiger, 32 cpu; follows --d-model and
    --num-heads when only they are given)."""
    d_ff: int | None = None
    """Feed-forward inner size (preset: 1024 tiger, 512 cpu)."""
    dropout: float | None = None
    """Dropout rate (preset: 0.2 in the one-pass recipe; in TIGER's recipe 0.1 tiger, 0 cpu)."""
    max_items: int | None = None
    """History items the generative model reads, or a title-generation prompt lists (preset: 50
    tiger, 10 genrec/llmseqprompt)."""
    max_len: int | None = None
    """Sequence length of the SASRec/BERT4Rec baselines (their preset when None)."""
    loss: Literal["ce", "bce"] | None = None
    """SASRec's loss: ce (full softmax) or bce (one sampled negative) (preset: by model name)."""
    windows: Literal["last", "random"] | None = None
    """SASRec/BERT4Rec training window per user and epoch: last (the most recent max-len items,
    the preset) or random (a full-length stretch ending anywhere, so long histories are used whole)."""
    lr_plateau_patience: int | None = None
    """SASRec/BERT4Rec: validations without NDCG@10 improvement tolerated before the rate is cut;
    0: a constant rate (preset: 2 for the SASRec types, constant for the BERT4Rec types)."""
    lr_plateau_factor: float | None = None
    """SASRec/BERT4Rec: what the rate is multiplied by at each cut (preset: 0.3)."""
    user_buckets: int | None = None
    """Hashed user tokens of the generative model, 0 for none (preset: 2000 tiger, 0 cpu)."""
    positions_per_user: int | None = None
    """Training positions sampled per user per epoch; 0: all (preset: all for tiger, 24 for cpu)."""
    embedding_model: str | None = None
    """Sentence model of the text baselines (LLMSeqSim, LLM2SASRec, LLM2BERT4Rec) (preset: the one the
    run's SIDs were built from, else all-MiniLM-L6-v2)."""
    embedding_cache: Path | None = None
    """Embedding cache folder (default: $TIDREC_HOME/embeddings if set, else <run>/embeddings)."""
    aggregation: Literal["last", "mean", "recency"] | None = None
    """LLMSeqSim: how a history becomes one query vector (preset: last)."""
    llm: str | None = None
    """GenRec / LLMSeqPrompt: the causal LM fine-tuned to write the next item's title: the bundled
    SmolLM2-135M-Instruct (offline), a Hugging Face hub id or a local folder (preset: the bundled one)."""
    lora_rank: int | None = None
    """GenRec / LLMSeqPrompt: LoRA rank (preset: 8, as alpaca-lora, which GenRec builds on)."""
    lora_alpha: float | None = None
    """GenRec / LLMSeqPrompt: LoRA alpha (preset: 16)."""
    lora_dropout: float | None = None
    """GenRec / LLMSeqPrompt: dropout on the LoRA branch (preset: 0.05)."""
    lora_targets: tuple[str, ...] | None = None
    """GenRec / LLMSeqPrompt: modules LoRA adapts (preset: q_proj v_proj)."""
    max_prompt_tokens: int | None = None
    """GenRec / LLMSeqPrompt: prompt length cap in tokens; the oldest listed items go first (preset: 256)."""
    beam_size: int = 20
    """Beams for validation decoding."""
    val_users: int | None = None
    """Validate on a fixed random sample of this many users (None: all)."""
    eval_batch_size: int = 256
    """Users per validation batch."""

    def __post_init__(self) -> None:
        super().__post_init__()
        names = (
            "d_model",
            "num_layers",
            "num_decoder_layers",
            "num_heads",
            "d_ff",
            "max_items",
            "max_len",
            "val_users",
            "batch_size",
            "lora_rank",
            "max_prompt_tokens",
        )
        for name in (*names, "eval_batch_size"):
            check_range(f"--{name.replace('_', '-')}", getattr(self, name), at_least=1)
        check_range("--lr-plateau-factor", self.lr_plateau_factor, above=0, below=1)
        check_range("--dropout", self.dropout, at_least=0, below=1)
        check_range("--attention-dropout", self.attention_dropout, at_least=0, below=1)
        check_range("--d-kv", self.d_kv, at_least=1)
        check_range("--mask-rate", self.mask_rate, above=0, below=1)
        check_range("--lora-alpha", self.lora_alpha, above=0)
        check_range("--lora-dropout", self.lora_dropout, at_least=0, below=1)
        check_range("--masked-weight", self.masked_weight, at_least=0)
        check_range("--item-loss", self.item_loss, at_least=0)
        check_range("--item-score", self.item_score, at_least=0)
        check_range("--pretrain-epochs", self.pretrain_epochs, at_least=1)
        models.get(self.model)  # an unknown model is one line listing the registered ones
        for name in ("positions_per_user", "user_buckets", "lr_plateau_patience"):
            check_range(f"--{name.replace('_', '-')}", getattr(self, name), at_least=0)
        if self.beam_size < 10:
            raise ConfigError(f"--beam-size must be >= 10 (validation reports NDCG@10), got {self.beam_size}")
        if self.node_embeddings and not self.trie_softmax:
            raise ConfigError("--node-embeddings true needs --trie-softmax true (nodes score only children)")
        if self.item_loss and self.item_id_embedding is False:
            raise ConfigError("--item-loss needs --item-id-embedding true (it scores against that table)")
        if self.item_score and (not self.item_loss or self.objective == "masked"):
            raise ConfigError(
                "--item-score needs --item-loss above 0 and --objective next, mixed or pretrain"
                " (it scores with the item head that loss trains on next items)"
            )


GENERIC = frozenset(
    {
        "max_epochs",
        "lr",
        "batch_size",
        "weight_decay",
        "patience",
        "seed",
        "max_time",
        "val_users",
        "precision",
    }
)
"""Training options every trained model takes; model-specific ones are in each spec's ``options``."""

PRESET_FIELDS = tuple(
    f.name for f in dataclasses.fields(FitConfig) if f.init and f.default is None and f.name != "run"
)
"""The fields a preset fills: every optional field, unset (None) unless the user gave it."""


def user_options(config: FitConfig) -> dict[str, Any]:
    """The preset fields the user set (``--preset auto`` counts as unset)."""
    given = {name: getattr(config, name) for name in PRESET_FIELDS if getattr(config, name) is not None}
    if given.get("preset") == "auto":
        del given["preset"]
    return given


def resolve_config(config: FitConfig) -> FitConfig:
    """The complete config of ``config.model``: its preset, with every option the user set on top
    (and between them, when resuming, the options the run was trained with: :func:`resumed_options`).

    Resolving a resolved config changes nothing, so a saved ``config.yaml`` replays the same run.

    Raises:
        ConfigError: unknown model, or an option set that this model does not read.
    """
    spec = models.get(config.model)
    given = user_options(config)
    allowed = spec.options | (GENERIC if spec.trained else frozenset())
    foreign = sorted(name for name in given if name not in allowed and name not in GENERIC)
    if foreign:
        flags = ", ".join("--" + name.replace("_", "-") for name in foreign)
        raise ConfigError(f"{flags}: not an option of --model {config.model}")
    merged = {**spec.preset(config), **resumed_options(config), **given}
    return dataclasses.replace(config, **merged)


def resumed_options(config: FitConfig) -> dict[str, Any]:
    """With ``--resume true``, the preset fields the interrupted run was trained with (recorded in
    its last.ckpt), so it continues as it started even when the preset has changed since; flags the
    user gives still win. Empty when not resuming, when there is nothing to resume, or when the
    checkpoint predates the record (then the preset applies and the model-config check guards it).

    Raises:
        InputError: last.ckpt is unreadable or unsafe.
        ConfigError: its record holds an unknown option or a bad value.
    """
    last = Path(config.run) / "models" / config.model / "last.ckpt"
    if not config.resume or not last.is_file():
        return {}
    text = read_checkpoint(last, mmap=True).get(FIT_OPTIONS_KEY)  # the weights stay on disk
    if not isinstance(text, str):
        return {}
    saved = config_values(FitConfig, text, f"{last}: the options it records")
    return {name: saved[name] for name in PRESET_FIELDS if saved.get(name) is not None}


def fit(config: FitConfig) -> Path:
    """Train the model ``config.model`` on the run folder's data; return its artifact.

    The resolved config is written to ``<run>/models/<model>/config.yaml`` first.
    """
    resolved = resolve_config(config)
    spec = models.get(resolved.model)
    dataset = load_dataset(resolved.run / "data")
    write_text(resolved.run / "models" / resolved.model / CONFIG_FILE, config_yaml(resolved))
    return spec.fit(resolved, dataset)


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(
        FitConfig,
        fit,
        argv,
        prog="python -m tidrec.fit",
        description="Train the generative model (or a baseline) on a run folder's data and SIDs.",
        resolve=resolve_config,
    )


if __name__ == "__main__":
    raise SystemExit(main())
