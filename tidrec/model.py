"""The generative model: a small T5 encoder-decoder over SID tokens, and its LightningModule.

Encoder input for a user (right-padded with PAD)::

    [user_token, sid(h_{n-N}) ..., sid(h_{n-1}), EOS]      # 1 + L * min(n, N) + 1 tokens

Decoder target: ``sid(next item) + [EOS]``. T5's relative position buckets make right padding safe.
A checkpoint carries the :class:`ModelConfig`, the token layout and the SID table's content hash, so
:func:`load_checkpoint` rebuilds the model from the file alone and callers can refuse a different
SID table (:meth:`LoadedModel.check_sids`).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from transformers import T5Config, T5ForConditionalGeneration

from tidrec.artifacts import (
    CHECKPOINT_KEY,
    CheckpointRecord,
    check_checkpoint,
    checkpoint_record,
    read_checkpoint,
)
from tidrec.data.dataset import Split
from tidrec.errors import InputError
from tidrec.metrics import ranking_metrics
from tidrec.vocab import EOS, PAD, Vocab
from tokenizer.sid_table import SidTable

"""Key of the self-description a Lightning checkpoint carries."""


@dataclass(frozen=True, kw_only=True)
class ModelConfig:
    """Size of the T5 encoder-decoder and how user histories become encoder inputs."""

    d_model: int = 128
    """Hidden size."""
    num_layers: int = 4
    """Encoder layers."""
    num_decoder_layers: int = 4
    """Decoder layers."""
    num_heads: int = 6
    """Attention heads."""
    d_kv: int = 64
    """Size of each attention head."""
    d_ff: int = 1024
    """Feed-forward inner size."""
    dropout: float = 0.1
    """Dropout rate."""
    max_items: int = 20
    """History items fed to the encoder (the most recent ones)."""
    user_buckets: int = 2000
    """Hashed user tokens (0: no user token)."""

    def __post_init__(self) -> None:
        for name in ("d_model", "num_layers", "num_decoder_layers", "num_heads", "d_kv", "d_ff", "max_items"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")


def tiger_model() -> ModelConfig:
    """TIGER's size: 4 + 4 layers, d_model 128, 6 heads of 64, d_ff 1024, 20 history items."""
    return ModelConfig()


def cpu_model() -> ModelConfig:
    """A CPU-sized model: 2 + 2 layers, 4 heads of 32, d_ff 512, 10 history items (~10x fewer FLOPs).

    No dropout (a budget-capped run underfits, and dropout's masks took ~20% of a CPU step) and no
    user tokens (a private token per user is not learnt in a few epochs); see
    experiments/results/cpu_preset_tuning.md.
    """
    return ModelConfig(
        num_layers=2,
        num_decoder_layers=2,
        num_heads=4,
        d_kv=32,
        d_ff=512,
        max_items=10,
        dropout=0.0,
        user_buckets=0,
    )


def build_model(config: ModelConfig, vocab: Vocab) -> T5ForConditionalGeneration:
    """A randomly initialised T5 over ``vocab`` (PAD is the decoder start token)."""
    t5_config = T5Config(
        vocab_size=vocab.size,
        d_model=config.d_model,
        d_kv=config.d_kv,
        d_ff=config.d_ff,
        num_layers=config.num_layers,
        num_decoder_layers=config.num_decoder_layers,
        num_heads=config.num_heads,
        dropout_rate=config.dropout,
        feed_forward_proj="relu",
        pad_token_id=PAD,
        eos_token_id=EOS,
        decoder_start_token_id=PAD,
        tie_word_embeddings=True,
    )
    return T5ForConditionalGeneration(t5_config)


def encoder_inputs(
    vocab: Vocab,
    sid_tokens: np.ndarray,
    histories: Sequence[np.ndarray],
    user_ids: Sequence[str],
    max_items: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Encoder token ids for a batch of users, right-padded with PAD to the longest row.

    Args:
        vocab: the token layout.
        sid_tokens: (I, L) token ids of every item's SID (``vocab.sid_tokens(codes)``).
        histories: B arrays of item_idx in time order; only the last ``max_items`` are used.
        user_ids: B user ids (hashed to a user token; ignored when ``vocab.user_buckets == 0``).
        max_items: history items per row.

    Returns:
        ``input_ids`` (B, S) int64 and ``attention_mask`` (B, S) int64 (1 on real tokens).

    Raises:
        ValueError: ``histories`` and ``user_ids`` differ in length.
    """
    if len(histories) != len(user_ids):
        raise ValueError(f"{len(histories)} histories for {len(user_ids)} user ids")
    num_levels = sid_tokens.shape[1]
    use_user = vocab.user_buckets > 0
    rows = []
    for history, user_id in zip(histories, user_ids, strict=True):
        recent = np.asarray(history, dtype=np.int64)[max(0, len(history) - max_items) :]
        prefix = [vocab.user_token(str(user_id))] if use_user else []
        rows.append(np.concatenate([prefix, sid_tokens[recent].reshape(-1), [EOS]]))  # (1 + L*n + 1,)
    width = max((len(r) for r in rows), default=1 + num_levels)
    input_ids = np.full((len(rows), width), PAD, dtype=np.int64)  # (B, S)
    for b, row in enumerate(rows):
        input_ids[b, : len(row)] = row
    ids = torch.from_numpy(input_ids)
    return ids, (ids != PAD).long()


def decoder_labels(sid_tokens: np.ndarray, targets: np.ndarray) -> torch.Tensor:
    """(B, L+1) decoder labels: each target's SID tokens then EOS."""
    tokens = sid_tokens[np.asarray(targets, dtype=np.int64)]  # (B, L)
    eos = np.full((len(tokens), 1), EOS, dtype=np.int64)
    return torch.from_numpy(np.concatenate([tokens, eos], axis=1))


class TigerModule(L.LightningModule):
    """Trains the T5 on next-item SIDs; validates Recall/NDCG@10 through constrained beam search."""

    def __init__(
        self,
        config: ModelConfig,
        sids: SidTable,
        *,
        lr: float = 1e-3,
        weight_decay: float = 0.01,
        warmup: float = 0.05,
        beam_size: int = 20,
        dataset_hash: str = "",
        budget_minutes: float | None = None,
    ) -> None:
        """Args:
        config: model size and input format.
        sids: the SID table the model is trained against (its hash goes into checkpoints).
        lr: peak AdamW learning rate.
        weight_decay: AdamW weight decay (not applied to layer norms).
        warmup: fraction of all optimisation steps spent warming up linearly; cosine decay after.
        beam_size: beams for validation decoding (>= 10).
        dataset_hash: ``Dataset.content_hash`` of the training data, stored in checkpoints.
        budget_minutes: the run's wall-clock training cap, if any; the cosine decay then reaches
            its floor when the budget ends, even if that is long before the last epoch.
        """
        super().__init__()
        self.config = config
        self.vocab = Vocab(level_sizes=tuple(sids.level_sizes), user_buckets=config.user_buckets)
        self.sid_tokens = self.vocab.sid_tokens(sids.codes)  # (I, L)
        self.sid_hash = sids.content_hash()
        self.dataset_hash = dataset_hash
        self.lr, self.weight_decay, self.warmup = lr, weight_decay, warmup
        self.budget_minutes = budget_minutes
        self.beam_size = max(beam_size, 10)
        self.model = build_model(config, self.vocab)
        self._trie = None

    @property
    def trie(self):
        """The trie over all items' SID tokens, built on first use."""
        if self._trie is None:
            from trie import Trie

            self._trie = Trie.from_codes(self.sid_tokens)
        return self._trie

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Mean cross-entropy of the target SID tokens + EOS under teacher forcing."""
        out = self.model(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"]
        )
        return out.loss

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss = self(batch)
        size = len(batch["input_ids"])
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=size)
        return loss

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        from tidrec.generate import beam_search

        size = len(batch["input_ids"])
        self.log("val/loss", self(batch), on_epoch=True, batch_size=size, sync_dist=True)
        result = beam_search(
            self.model,
            batch["input_ids"],
            batch["attention_mask"],
            trie=self.trie,
            beam_size=self.beam_size,
            top_k=10,
        )
        ranked = np.asarray(result.item_idx.cpu() if torch.is_tensor(result.item_idx) else result.item_idx)
        metrics = ranking_metrics(ranked, batch["targets"], ks=(10,))
        for name in ("recall@10", "ndcg@10"):
            self.log(
                f"val/{name}", metrics[name], on_epoch=True, prog_bar=True, batch_size=size, sync_dist=True
            )

    def configure_optimizers(self) -> dict[str, Any]:
        budget_s = self.budget_minutes * 60 if self.budget_minutes else None
        return warmup_cosine_adamw(
            self.model,
            self.trainer,
            lr=self.lr,
            weight_decay=self.weight_decay,
            warmup=self.warmup,
            budget_s=budget_s,
        )

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[CHECKPOINT_KEY] = {
            "kind": "tiger",
            "model_config": dataclasses.asdict(self.config),
            "level_sizes": list(self.vocab.level_sizes),
            "sid_hash": self.sid_hash,
            "dataset_hash": self.dataset_hash,
        }


def warmup_cosine_adamw(
    model: torch.nn.Module,
    trainer: L.Trainer,
    *,
    lr: float,
    weight_decay: float,
    warmup: float,
    budget_s: float | None = None,
) -> dict[str, Any]:
    """AdamW (no decay on layer norms and biases) with :func:`warmup_cosine` over the planned steps.

    Warm-up takes the fraction ``warmup`` of all steps, but never more than the first epoch: a run
    stopped early would otherwise spend its whole budget warming up. Returns Lightning's
    ``configure_optimizers`` dict.
    """
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        (no_decay if "layer_norm" in name or param.ndim < 2 else decay).append(param)
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}], lr=lr
    )
    total = max(1, int(trainer.estimated_stepping_batches))
    per_epoch = max(1, total // max(1, trainer.max_epochs or 1))
    warmup_steps = min(int(warmup * total), per_epoch)
    schedule = warmup_cosine(optimizer, warmup_steps=warmup_steps, total_steps=total, budget_s=budget_s)
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


def warmup_cosine(
    optimizer: torch.optim.Optimizer,
    *,
    warmup_steps: int,
    total_steps: int,
    floor: float = 0.05,
    budget_s: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up to the peak rate, then cosine decay to ``floor`` times the peak.

    The decay's progress is the fraction of the post-warm-up steps done, or, with ``budget_s``, the
    fraction of the wall-clock budget used if that is larger (the clock starts at construction):
    a run cut short by ``--max-time`` still anneals instead of stopping at the peak rate.
    """
    start = clock()

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        if budget_s:
            progress = max(progress, (clock() - start) / budget_s)
        progress = min(1.0, progress)
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


@dataclass(frozen=True)
class LoadedModel:
    """A trained generative model rebuilt from its checkpoint alone."""

    model: T5ForConditionalGeneration
    """The T5, in eval mode, on the CPU."""
    vocab: Vocab
    """Token layout it was trained with."""
    sid_hash: str
    """``SidTable.content_hash()`` of the SID table it was trained against."""
    config: ModelConfig
    """Model size and input format (``config.max_items`` history items)."""
    dataset_hash: str = ""
    """``Dataset.content_hash`` of the data it was trained on."""
    path: Path | None = None
    """The checkpoint file."""

    def check_sids(self, sids: SidTable, sids_path: str | Path = "the SID table") -> None:
        """Refuse a SID table other than the one the model was trained against.

        Raises:
            InputError: the table's content hash differs from the checkpoint's.
        """
        check_checkpoint(self.record, sid_hash=sids.content_hash(), sids_path=sids_path)

    def check_dataset(self, dataset_hash: str, data_path: str | Path = "the dataset") -> None:
        """Refuse data other than what the model was trained on.

        Raises:
            InputError: ``dataset_hash`` differs from the checkpoint's.
        """
        check_checkpoint(self.record, dataset_hash=dataset_hash, data_path=data_path)

    @property
    def record(self) -> CheckpointRecord:
        """What the checkpoint recorded, for :func:`~tidrec.artifacts.check_checkpoint`."""
        return CheckpointRecord(
            path=self.path or Path("the checkpoint"),
            kind="tiger",
            model_name="tiger",
            dataset_hash=self.dataset_hash,
            sid_hash=self.sid_hash,
            entry={},
        )


def load_checkpoint(path: str | Path) -> LoadedModel:
    """Rebuild the generative model from a checkpoint written during ``fit``.

    Raises:
        InputError: the file is missing or is not a tidrec generative-model checkpoint.
    """
    path = Path(path)
    checkpoint = read_checkpoint(path)
    record = checkpoint_record(checkpoint, path)
    if record.kind != "tiger":
        raise InputError(f"{path}: a {record.model_name} checkpoint, not the generative model's")
    if record.entry.get("recipe", "examples") != "examples":
        raise InputError(f"{path}: a {record.entry['recipe']} model; load it with its recipe's loader")
    meta = record.entry
    try:
        config = ModelConfig(**meta["model_config"])
        vocab = Vocab(level_sizes=tuple(meta["level_sizes"]), user_buckets=config.user_buckets)
        model = build_model(config, vocab)
        state = {k.removeprefix("model."): v for k, v in checkpoint["state_dict"].items()}
        model.load_state_dict(state)
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as error:
        reason = str(error).splitlines()[0][:120] if str(error) else type(error).__name__
        raise InputError(f"{path}: the model in this checkpoint does not load ({reason})") from None
    model.eval()
    return LoadedModel(model, vocab, meta["sid_hash"], config, meta.get("dataset_hash", ""), path)


class TigerRecommender:
    """The generative model as a :class:`~tidrec.evaluate.Recommender`: trie-constrained beam search."""

    def __init__(
        self,
        loaded: LoadedModel,
        sids: SidTable,
        user_ids: np.ndarray,
        *,
        beam_size: int = 20,
        decoder: str = "beam",
        max_beam: int = 1024,
        device: torch.device | str = "cpu",
    ) -> None:
        """Args:
        loaded: the model (its SID hash must match ``sids``).
        sids: the SID table; its rows are the catalogue's item_idx.
        user_ids: (U,) the dataset's user ids, indexed by ``Split.users``.
        beam_size: beams kept per step (at least the list length k).
        decoder: ``beam`` or ``exact`` (:func:`tidrec.generate.decode`).
        max_beam: the widest beam the exact decoder may use.
        device: where to run the model.

        Raises:
            InputError: ``sids`` is not the table the model was trained against.
        """
        loaded.check_sids(sids)
        from trie import Trie

        self.loaded = loaded
        self.device = torch.device(device)
        self.model = loaded.model.to(self.device)
        self.sid_tokens = loaded.vocab.sid_tokens(sids.codes)  # (I, L)
        self.trie = Trie.from_codes(self.sid_tokens)
        self.user_ids = np.asarray(user_ids)
        self.beam_size, self.decoder, self.max_beam = beam_size, decoder, max_beam

    def recommend(self, split: Split, *, k: int, exclude_history: bool) -> np.ndarray:
        """(B, k) item_idx ranked by the SID's summed log-probability; -1 where fewer are reachable."""
        return self.recommend_certified(split, k=k, exclude_history=exclude_history)[0]

    @torch.no_grad()
    def recommend_certified(
        self, split: Split, *, k: int, exclude_history: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`recommend`'s lists and whether each is provably the model's best k."""
        from tidrec.generate import decode, encode

        input_ids, attention_mask = encoder_inputs(
            self.loaded.vocab,
            self.sid_tokens,
            split.histories,
            self.user_ids[split.users].tolist(),
            self.loaded.config.max_items,
        )
        self.model.eval()
        result = decode(
            self.model,
            encoder=encode(self.model, input_ids.to(self.device), attention_mask.to(self.device)),
            trie=self.trie,
            decoder=self.decoder,
            # exclusion is exact at every level, so lists are full with K = k; twice the beams still
            # finds better items among the allowed ones (ML-100K Recall@20 0.146 -> 0.162,
            # experiments/exclusion_ml100k.py) at twice the decode cost
            beam_size=max(self.beam_size, k) * (2 if exclude_history else 1),
            top_k=k,
            max_beam=self.max_beam,
            exclude=list(split.histories) if exclude_history else None,
        )
        return ranked_lists(result, len(split), k), np.asarray(result.certified.cpu())


def ranked_lists(result, users: int, k: int) -> np.ndarray:
    """``(users, k)`` int64 item_idx of a :class:`~tidrec.generate.BeamResult`, -1 padded."""
    ranked = np.asarray(result.item_idx.cpu(), dtype=np.int64)
    out = np.full((users, k), -1, dtype=np.int64)
    out[:, : min(k, ranked.shape[1])] = ranked[:, :k]
    return out
