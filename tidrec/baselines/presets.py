"""Standard configurations of the item-id sequence models, chosen by ``--model NAME``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from tidrec.errors import ConfigError


@dataclass(frozen=True, kw_only=True)
class SequencePreset:
    """One trainable baseline: architecture, objective, text initialisation and training defaults."""

    name: str
    """Model name as given to ``--model``."""
    architecture: Literal["sasrec", "bert4rec"]
    """Which network."""
    text_init: bool = False
    """Initialise the item table from PCA-reduced item text embeddings (the LLM2* variants)."""
    loss: Literal["ce", "bce"] = "ce"
    """SASRec objective (BERT4Rec always uses the cloze cross-entropy)."""
    max_len: int = 200
    """Most recent items a model sees (200 is the standard for ML-1M)."""
    d_model: int = 64
    """Hidden width."""
    num_layers: int = 2
    """Transformer blocks."""
    num_heads: int = 1
    """Attention heads."""
    dropout: float = 0.2
    """Dropout rate."""
    windows: Literal["last", "random"] = "last"
    """Training window per user and epoch: the most recent items, or a random full-length stretch."""
    lr: float = 1e-3
    """AdamW learning rate."""
    lr_plateau_patience: int | None = 2
    """Validations without NDCG@10 improvement tolerated before the rate is cut (None: constant rate)."""
    lr_plateau_factor: float = 0.3
    """What the rate is multiplied by at each cut (it never falls below lr / 100)."""
    batch_size: int = 128
    """Users per training batch."""
    max_epochs: int = 200
    """Upper bound on epochs."""
    patience: int = 10
    """Epochs without validation NDCG@10 improvement before stopping."""
    seed: int = 42
    """Random seed."""

    def model_config(self, num_items: int) -> dict[str, Any]:
        """Keyword arguments of the architecture's config class."""
        shared = {
            "num_items": num_items,
            "max_len": self.max_len,
            "d_model": self.d_model,
            "num_layers": self.num_layers,
            "num_heads": self.num_heads,
            "dropout": self.dropout,
        }
        return {**shared, "loss": self.loss} if self.architecture == "sasrec" else shared


SEQUENCE_OPTIONS = frozenset(
    {"d_model", "num_layers", "num_heads", "dropout", "max_len", "loss", "windows", "lr_plateau_patience",
     "lr_plateau_factor"}
)  # fmt: skip
"""``FitConfig`` fields the SASRec/BERT4Rec models read besides the shared training ones."""

TRAINING = {
    "lr": 1e-3,
    "weight_decay": 0.01,
    "batch_size": 128,
    "max_epochs": 200,
    "patience": 10,
    "seed": 42,
}
"""Training settings every sequence preset shares."""


def sasrec(*, loss: str = "ce") -> dict[str, Any]:
    """SASRec: 2 blocks, 1 head, width 64, dropout 0.2, 200 items, full-softmax cross-entropy (or
    ``bce`` with one sampled negative, as in the paper), and the rate cut x0.3 after 2 stalled
    validations.

    Width 64 is the SASRec paper's. On ML-1M ``--d-model 128`` is better (test NDCG@10 0.180 and
    0.182 over two seeds, against 0.158 and 0.169 at 64); on ML-100K it is not (0.085 against 0.089).
    """
    return {
        **TRAINING,
        "d_model": 64,
        "num_layers": 2,
        "num_heads": 1,
        "dropout": 0.2,
        "max_len": 200,
        "loss": loss,
        "windows": "last",
        "lr_plateau_patience": 2,
        "lr_plateau_factor": 0.3,
    }


def bert4rec() -> dict[str, Any]:
    """BERT4Rec as in Sun et al. for ML-1M: 2 blocks, 2 heads, width 64, dropout 0.1, 200 items.

    The rate stays constant (``lr_plateau_patience`` 0): the cloze objective learns little in its
    first epochs (validation NDCG@10 sat at popularity's level for 6 epochs on ML-1M), and a plateau
    cut there only slows it.
    """
    return {**sasrec(), "num_heads": 2, "dropout": 0.1, "loss": "ce", "lr_plateau_patience": 0}


@dataclass(frozen=True)
class SequenceModelKind:
    """What distinguishes one registered sequence model from another."""

    architecture: Literal["sasrec", "bert4rec"]
    text_init: bool
    preset: Any
    """A function returning the model's ``FitConfig`` values."""


KINDS = {
    "sasrec": SequenceModelKind("sasrec", False, sasrec),
    "sasrec-bce": SequenceModelKind("sasrec", False, lambda: sasrec(loss="bce")),
    "bert4rec": SequenceModelKind("bert4rec", False, bert4rec),
    "llm2sasrec": SequenceModelKind("sasrec", True, sasrec),
    "llm2bert4rec": SequenceModelKind("bert4rec", True, bert4rec),
}
"""Model name -> architecture, text initialisation and preset."""


def sequence_preset(name: str, config: Any) -> SequencePreset:
    """The :class:`SequencePreset` a resolved ``FitConfig`` describes for model ``name``.

    Raises:
        ConfigError: unknown ``name``, or ``--loss bce`` for a BERT4Rec model.
    """
    if name not in KINDS:
        raise ConfigError(f"no preset for model {name!r}; expected one of {', '.join(KINDS)}")
    kind = KINDS[name]
    if kind.architecture != "sasrec" and config.loss == "bce":
        raise ConfigError(f"--loss bce applies to SASRec only, not {name}")
    return SequencePreset(
        name=name,
        architecture=kind.architecture,
        text_init=kind.text_init,
        loss=config.loss if kind.architecture == "sasrec" else "ce",
        max_len=config.max_len,
        d_model=config.d_model,
        num_layers=config.num_layers,
        num_heads=config.num_heads,
        dropout=config.dropout,
        windows=config.windows,
        lr=config.lr,
        lr_plateau_patience=config.lr_plateau_patience or None,  # 0: a constant rate
        lr_plateau_factor=config.lr_plateau_factor,
        batch_size=config.batch_size,
        max_epochs=config.max_epochs,
        patience=config.patience,
        seed=config.seed,
    )
