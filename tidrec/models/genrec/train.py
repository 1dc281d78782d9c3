"""Fine-tuning a causal LM with LoRA to write the next item's title, and serving it as a recommender.

Training examples are (prompt, title) pairs from the users' training sequences: each epoch samples
``positions_per_user`` target positions per user (the newest always among them), the prompt lists
the ``prompt_items`` items before the target (:mod:`tidrec.models.genrec.prompts`), and the loss is
the cross-entropy of the title's tokens and its EOS only. The LoRA adapter (peft) is the only thing
trained and the only thing checkpointed: the base model is rebuilt from its name.

Validation decodes with the title-trie beam search (:func:`tidrec.models.genrec.decode.title_beam_search`)
and reports NDCG@10 like every model; early stopping, resume and the CSV/wandb logs come from the
shared trainer (:func:`tidrec.training.make_trainer`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader

from tidrec.artifacts import CHECKPOINT_KEY, check_checkpoint, checkpoint_record, read_checkpoint
from tidrec.data.dataset import Dataset, Split
from tidrec.errors import ConfigError, InputError
from tidrec.models.genrec.decode import left_pad, title_trie
from tidrec.models.genrec.prompts import item_titles, prompt_ids, title_sequences
from tidrec.training import finish_fit, make_trainer, resume_checkpoint, validation_split

KIND = "llm"
"""Checkpoint kind of the title-generation models (:mod:`tidrec.artifacts`)."""


@dataclass(frozen=True)
class TitleLMConfig:
    """What a title-generation model is: base LM, adapter and prompt (stored in its checkpoints)."""

    llm: str
    """Base causal LM: the bundled SmolLM2-135M-Instruct, a hub id or a folder."""
    lora_rank: int
    """LoRA rank r."""
    lora_alpha: float
    """LoRA scaling alpha (the update is scaled by alpha / r)."""
    lora_dropout: float
    """Dropout on the LoRA branch's input."""
    lora_targets: tuple[str, ...]
    """Module names LoRA adapts (e.g. q_proj v_proj)."""
    prompt_items: int
    """History items a prompt lists (the newest)."""
    max_prompt_tokens: int
    """Prompt length cap in tokens; the oldest listed items go first."""

    def __post_init__(self) -> None:
        if self.lora_rank < 1 or self.lora_alpha <= 0 or not 0 <= self.lora_dropout < 1:
            raise ConfigError(
                f"LoRA needs rank >= 1, alpha > 0 and 0 <= dropout < 1; got {self.lora_rank}, "
                f"{self.lora_alpha}, {self.lora_dropout}"
            )
        if not self.lora_targets:
            raise ConfigError("--lora-targets: name at least one module (e.g. q_proj v_proj)")

    @classmethod
    def from_fit(cls, config: Any) -> TitleLMConfig:
        return cls(
            llm=config.llm,
            lora_rank=config.lora_rank,
            lora_alpha=float(config.lora_alpha),
            lora_dropout=float(config.lora_dropout),
            lora_targets=tuple(config.lora_targets),
            prompt_items=config.max_items,
            max_prompt_tokens=config.max_prompt_tokens,
        )

    def as_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "lora_targets": list(self.lora_targets)}


def build_model(config: TitleLMConfig) -> tuple[Any, Any]:
    """The base LM with a fresh LoRA adapter (only the adapter trains), and its tokenizer.

    Raises:
        ConfigError: the LM cannot be loaded, or a LoRA target names no module of it.
    """
    from peft import LoraConfig, get_peft_model

    from tidrec.models.genrec.llm import load_causal_lm

    base, tokenizer = load_causal_lm(config.llm)
    names = {name.rsplit(".", 1)[-1] for name, _ in base.named_modules()}
    missing = [target for target in config.lora_targets if target not in names]
    if missing:
        raise ConfigError(f"--lora-targets {' '.join(missing)}: no such module in {config.llm}")
    lora = LoraConfig(
        r=config.lora_rank,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=list(config.lora_targets),
        task_type="CAUSAL_LM",
    )
    return get_peft_model(base, lora), tokenizer


class Catalogue:
    """The catalogue as the LM sees it: distinct titles, their token sequences, and prompts."""

    def __init__(self, dataset: Dataset, tokenizer: Any, config: TitleLMConfig, context: int) -> None:
        self.titles = item_titles(dataset.item_texts, dataset.item_ids)
        self.sequences = title_sequences(
            tokenizer, self.titles, max_tokens=context - config.max_prompt_tokens
        )
        self.tokenizer, self.config = tokenizer, config

    def prompt(self, history: np.ndarray) -> list[int]:
        return prompt_ids(
            self.tokenizer,
            self.sequences,
            history,
            prompt_items=self.config.prompt_items,
            max_tokens=self.config.max_prompt_tokens,
        )

    def prompts(self, histories: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, S) left-padded prompt ids and their attention mask."""
        return left_pad([self.prompt(history) for history in histories], self.tokenizer.pad_token_id)

    def content_hash(self) -> str:
        """sha256 of the title token sequences (what the trie and the prompts are made of)."""
        return hashlib.sha256(json.dumps(self.sequences).encode()).hexdigest()


class TitleExamples(torch.utils.data.Dataset):
    """(prompt + title) training rows: ``per_user`` sampled target positions per user and epoch, or
    every position of every user when ``per_user`` is 0 (as the papers train)."""

    def __init__(
        self, sequences: list[np.ndarray], catalogue: Catalogue, *, per_user: int, seed: int
    ) -> None:
        self.sequences = [s for s in sequences if len(s) >= 2]
        self.catalogue, self.per_user, self.seed = catalogue, per_user, seed
        self.epoch = 0
        lengths = np.array([len(s) - 1 for s in self.sequences], dtype=np.int64)  # targets per user
        self.every = None
        if per_user == 0:  # (user, target position) of every target
            users = np.repeat(np.arange(len(lengths)), lengths)
            starts = np.cumsum(lengths) - lengths
            self.every = np.stack([users, np.arange(len(users)) - starts[users] + 1], axis=1)

    def __len__(self) -> int:
        return len(self.every) if self.every is not None else len(self.sequences) * self.per_user

    def position(self, user: int, slot: int) -> int:
        """The target position of ``slot`` for ``user`` this epoch: slot 0 is the newest target, the
        others a seeded sample without replacement of the earlier ones (repeating for a user with
        fewer earlier targets than slots)."""
        length = len(self.sequences[user])
        if slot == 0:
            return length - 1
        rng = np.random.default_rng((self.seed, self.epoch, user))
        earlier = rng.permutation(np.arange(1, length - 1))
        return int(earlier[(slot - 1) % len(earlier)]) if len(earlier) else length - 1

    def __getitem__(self, index: int) -> tuple[list[int], list[int]]:
        if self.every is not None:
            user, target = (int(v) for v in self.every[index])
        else:
            user, slot = divmod(index, self.per_user)
            target = self.position(user, slot)
        sequence = self.sequences[user]
        return self.catalogue.prompt(sequence[:target]), self.catalogue.sequences[int(sequence[target])]

    def collate(self, rows: list[tuple[list[int], list[int]]]) -> dict[str, torch.Tensor]:
        """Right-padded ``input_ids``, ``attention_mask`` and ``labels`` (-100 except the title)."""
        width = max(len(p) + len(t) for p, t in rows)
        pad = self.catalogue.tokenizer.pad_token_id
        ids = torch.full((len(rows), width), pad, dtype=torch.long)  # (B, T)
        mask = torch.zeros_like(ids)
        labels = torch.full_like(ids, -100)
        for i, (prompt, title) in enumerate(rows):
            row = torch.tensor([*prompt, *title])
            ids[i, : len(row)], mask[i, : len(row)] = row, 1
            labels[i, len(prompt) : len(row)] = torch.tensor(title)
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}


class SplitPrompts(torch.utils.data.Dataset):
    """Rows of a split for validation: prompts, histories (for exclusion) and targets."""

    def __init__(self, split: Split, catalogue: Catalogue) -> None:
        self.split, self.catalogue = split, catalogue

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, index: int) -> int:
        return index

    def collate(self, rows: list[int]) -> dict[str, Any]:
        histories = [self.split.histories[i] for i in rows]
        ids, mask = self.catalogue.prompts(histories)
        return {
            "input_ids": ids,
            "attention_mask": mask,
            "histories": histories,
            "targets": self.split.targets[rows],
        }


class TitleLMModule(L.LightningModule):
    """LoRA fine-tuning of a causal LM on next-title prediction, validated by constrained decoding.

    Checkpoints hold the adapter's weights only, and a plain-data record (``checkpoint["tidrec"]``)
    of the LM config, the dataset hash and the title sequences' hash.
    """

    strict_loading = False  # checkpoints hold the adapter, not the frozen base model

    def __init__(
        self,
        config: TitleLMConfig,
        catalogue: Catalogue,
        model: Any,
        *,
        model_name: str,
        dataset_hash: str,
        lr: float,
        weight_decay: float,
        warmup: float,
        beam_size: int,
        precision: str = "32-true",
    ) -> None:
        super().__init__()
        self.precision = precision
        self.config, self.catalogue, self.model = config, catalogue, model
        self.model_name, self.dataset_hash = model_name, dataset_hash
        self.lr, self.weight_decay, self.warmup, self.beam_size = lr, weight_decay, warmup, beam_size
        self.trie = title_trie(catalogue.sequences)

    def adapter_state(self) -> dict[str, torch.Tensor]:
        return {k: v for k, v in self.state_dict().items() if "lora_" in k}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["state_dict"] = self.adapter_state()
        checkpoint[CHECKPOINT_KEY] = {
            **record(self.model_name, self.config, self.dataset_hash, self.catalogue),
            "bf16": self.precision.startswith("bf16"),  # what the recommender decodes with
        }

    def on_train_epoch_start(self) -> None:
        loader = self.trainer.train_dataloader
        if loader is not None and isinstance(loader.dataset, TitleExamples):
            loader.dataset.epoch = self.current_epoch

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss = title_loss(self.model, batch)
        size = len(batch["input_ids"])
        self.log("train/loss", loss, prog_bar=True, batch_size=size)
        self.log("train/lr", self.optimizers().param_groups[0]["lr"], batch_size=size)
        return loss

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        from tidrec.metrics import ranking_metrics
        from tidrec.models.genrec.decode import title_beam_search

        result = title_beam_search(
            self.model,
            batch["input_ids"],
            batch["attention_mask"],
            trie=self.trie,
            beam_size=self.beam_size,
            top_k=10,
            exclude=batch["histories"],
        )
        metrics = ranking_metrics(result.item_idx.cpu().numpy(), batch["targets"], ks=(10,))
        size = len(batch["targets"])
        self.log("val/ndcg@10", metrics["ndcg@10"], prog_bar=True, batch_size=size, sync_dist=True)
        self.log("val/recall@10", metrics["recall@10"], batch_size=size, sync_dist=True)

    def configure_optimizers(self) -> dict[str, Any]:
        """AdamW over the adapter; linear warm-up then cosine decay over the planned steps."""
        params = [p for p in self.model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=self.lr, weight_decay=self.weight_decay)
        total = max(1, int(self.trainer.estimated_stepping_batches))
        warm = max(1, int(self.warmup * total))

        def factor(step: int) -> float:
            if step < warm:
                return (step + 1) / warm
            return 0.5 * (
                1 + math.cos(math.pi * min(1.0, (step - warm) / max(1, total - warm)))
            )  # a plain float: checkpoints stay weights-only

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def title_loss(model: Any, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Mean cross-entropy of the title tokens (and EOS) given everything before them.

    Only the positions that predict a title token go through the output layer (about one in ten of
    a batch's tokens; the vocabulary projection is a fifth of a small LM's compute), which gives the
    loss of ``model(**batch).loss`` at a lower cost.
    """
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    hidden = base.get_decoder()(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    hidden = hidden.last_hidden_state[:, :-1]  # (B, T-1, D): position t predicts token t+1
    labels = batch["labels"][:, 1:]  # (B, T-1)
    keep = labels != -100
    logits = base.get_output_embeddings()(hidden[keep])  # (N, V)
    return torch.nn.functional.cross_entropy(logits.float(), labels[keep])


def record(model_name: str, config: TitleLMConfig, dataset_hash: str, catalogue: Catalogue) -> dict[str, Any]:
    """A checkpoint's plain-data record (``checkpoint["tidrec"]``)."""
    return {
        "kind": KIND,
        "model_name": model_name,
        "llm_config": config.as_dict(),
        "dataset_hash": dataset_hash,
        "titles_hash": catalogue.content_hash(),
    }


def fit_title_lm(config: Any, dataset: Dataset) -> Path:
    """Fine-tune ``config.llm`` with LoRA on the run's training sequences; return best.ckpt."""
    out_dir = Path(config.run) / "models" / config.model
    L.seed_everything(config.seed, verbose=False)
    llm_config = TitleLMConfig.from_fit(config)
    model, tokenizer = build_model(llm_config)
    model.train()  # the adapter's dropout is on while training (Lightning keeps modules' modes)
    catalogue = Catalogue(dataset, tokenizer, llm_config, context_length(model))
    module = TitleLMModule(
        llm_config,
        catalogue,
        model,
        model_name=config.model,
        dataset_hash=dataset.content_hash,
        lr=config.lr,
        weight_decay=config.weight_decay,
        warmup=config.warmup,
        beam_size=config.beam_size,
        precision=config.precision or "32-true",
    )
    examples = TitleExamples(
        dataset.train_sequences(), catalogue, per_user=config.positions_per_user, seed=config.seed
    )
    generator = torch.Generator().manual_seed(config.seed)
    train = DataLoader(
        examples, batch_size=config.batch_size, shuffle=True, generator=generator, collate_fn=examples.collate
    )
    prompts = SplitPrompts(validation_split(dataset, config), catalogue)
    val = DataLoader(prompts, batch_size=config.eval_batch_size, collate_fn=prompts.collate)
    checkpoint = resume_checkpoint(
        config,
        out_dir,
        model=config.model,
        dataset_hash=dataset.content_hash,
        data_path=Path(config.run) / "data",
        model_config=llm_config.as_dict(),
    )
    trainer = make_trainer(config, out_dir, resume_from=checkpoint)
    start = time.perf_counter()
    trainer.fit(module, train, val, ckpt_path=checkpoint)
    seconds = time.perf_counter() - start
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    prompt_tokens = [len(catalogue.prompt(s[:-1])) for s in dataset.train_sequences()[:500] if len(s) > 1]
    score = finish_fit(
        trainer,
        config,
        out_dir,
        seconds,
        steps=trainer.global_step,
        trainable_parameters=trainable,
        median_prompt_tokens=float(np.median(prompt_tokens)) if prompt_tokens else 0.0,
        llm=config.llm,
    )
    if trainer.is_global_zero:
        best = f"{score:.4f}" if score is not None else "-"
        print(
            f"{config.model} ({config.llm} + LoRA r{config.lora_rank}): {trainable / 1e6:.2f}M trainable, "
            f"{trainer.current_epoch} epochs, {trainer.global_step} steps, best val/ndcg@10 {best}, "
            f"{seconds / 60:.1f} min"
        )
    return out_dir / "best.ckpt"


def context_length(model: Any) -> int:
    config = model.config
    return int(getattr(config, "max_position_embeddings", None) or 2048)


def load_title_lm(path: Path, dataset: Dataset, *, model: str | None = None) -> tuple[Any, Catalogue, bool]:
    """The fine-tuned LM (base + the checkpoint's adapter, eval mode), its catalogue, and whether it
    was trained under bf16 autocast (its recommender then decodes so too).

    Raises:
        InputError: unreadable or unsafe file, another model's or dataset's checkpoint, titles that
            no longer tokenize as in training, or adapter weights that do not fit.
    """
    checkpoint = read_checkpoint(path)
    entry = checkpoint_record(checkpoint, path)
    if entry.kind != KIND:
        raise InputError(f"{path}: a {entry.model_name} checkpoint, not a title-generation model's")
    check_checkpoint(entry, model=model, dataset_hash=dataset.content_hash)
    try:
        config = TitleLMConfig(
            **{**entry.entry["llm_config"], "lora_targets": tuple(entry.entry["llm_config"]["lora_targets"])}
        )
    except (TypeError, KeyError, ConfigError) as error:
        raise InputError(f"{path}: its LLM config does not load ({str(error)[:120]})") from None
    lm, tokenizer = build_model(config)
    catalogue = Catalogue(dataset, tokenizer, config, context_length(lm))
    if catalogue.content_hash() != entry.entry.get("titles_hash"):
        raise InputError(f"{path}: the catalogue's titles tokenize differently than in training")
    state = {k.removeprefix("model."): v for k, v in checkpoint["state_dict"].items()}
    expected = {k for k in lm.state_dict() if "lora_" in k}
    if set(state) != expected:
        raise InputError(f"{path}: its adapter does not fit {config.llm} with {config.lora_targets}")
    lm.load_state_dict(state, strict=False)
    return lm.eval(), catalogue, bool(entry.entry.get("bf16", False))
