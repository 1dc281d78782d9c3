"""Dropout with a choice of random-number kernel, for CPU training where drawing the mask is hot.

On CPU, ``torch.nn.functional.dropout`` draws one Bernoulli sample per element from the Mersenne
Twister; in the one-pass cpu preset's training step on one core that is about a fifth of the step
(``benchmarks/dropout.py``: the words kernel draws masks 2.2-2.5x faster and makes the step 1.13x
faster). The ``words`` kernel draws one 64-bit random word per four elements and
compares each 16-bit quarter against the drop threshold, so the keep probability is ``1 - p``
rounded to 1/65536. Both kernels use torch's default generator, so a seed repeats the masks; they
draw different masks from the same seed.
"""

from __future__ import annotations

import math

import torch
from torch import nn

DROPOUT_KERNELS = ("torch", "words")
"""``torch``: ``F.dropout`` (the reference); ``words``: 16-bit comparisons of 64-bit random words."""


def check_kernel(kernel: str) -> None:
    """Raises:
    ValueError: ``kernel`` is not one of :data:`DROPOUT_KERNELS`.
    """
    if kernel not in DROPOUT_KERNELS:
        raise ValueError(f"dropout kernel must be one of {DROPOUT_KERNELS}, got {kernel!r}")


def keep_mask(
    shape: torch.Size | tuple[int, ...], p: float, *, device: torch.device | None = None
) -> torch.Tensor:
    """A bool tensor of ``shape``, each element True with probability ``1 - round(p * 65536) / 65536``.

    Raises:
        ValueError: ``p`` outside [0, 1).
    """
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout p must be in [0, 1), got {p}")
    count = math.prod(shape)
    words = torch.empty((count + 3) // 4, dtype=torch.int64, device=device)
    words.random_(-(2**63), 2**63 - 1)  # (ceil(N / 4),) uniform 64-bit words
    quarters = words.view(torch.int16)[:count].view(shape)  # four uniform int16 per word
    return quarters >= round(p * 65536) - 32768


def dropout(x: torch.Tensor, p: float, *, training: bool, kernel: str = "torch") -> torch.Tensor:
    """Inverted dropout: zero each element with probability ``p`` and scale the rest by ``1 / (1 - p)``
    while ``training``; ``x`` unchanged otherwise.

    Raises:
        ValueError: an unknown ``kernel``.
    """
    check_kernel(kernel)
    if not training or p == 0.0:
        return x
    if kernel == "torch":
        return nn.functional.dropout(x, p, training=True)
    keep = keep_mask(x.shape, p, device=x.device)
    return x * keep * (1.0 / (1.0 - p))


class Dropout(nn.Dropout):
    """``nn.Dropout`` whose mask comes from :func:`dropout`'s ``kernel``."""

    def __init__(self, p: float = 0.5, *, kernel: str = "torch") -> None:
        super().__init__(p)
        check_kernel(kernel)
        self.kernel = kernel

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dropout(x, self.p, training=self.training, kernel=self.kernel)


def use_dropout_kernel(module: nn.Module, kernel: str) -> int:
    """Replace every ``nn.Dropout`` inside ``module`` by a :class:`Dropout` of the same rate and
    ``kernel``, in place (modules that call ``self.dropout(x)``, as HF's T5 does, keep working);
    return how many were replaced.

    Raises:
        ValueError: an unknown ``kernel``.
    """
    check_kernel(kernel)
    replaced = 0
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.Dropout):
                setattr(parent, name, Dropout(child.p, kernel=kernel))
                replaced += 1
    return replaced
