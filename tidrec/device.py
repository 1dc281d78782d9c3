"""The one place that asks which accelerator exists (never at import time)."""

from __future__ import annotations

from typing import Literal

import torch

from tidrec.errors import ConfigError

DeviceName = Literal["auto", "cpu", "cuda"]


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA when available, else CPU.

    Raises:
        ConfigError: ``cuda`` was asked for and no CUDA device is present.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda was given but no CUDA device is available")
    if name not in ("cpu", "cuda"):
        raise ConfigError(f"device must be auto, cpu or cuda, got {name!r}")
    return torch.device(name)


def require_cuda(flag: str) -> None:
    """Refuse an option that asks for a CUDA GPU on a machine without one (call it in validation).

    Raises:
        ConfigError: no CUDA device is available.
    """
    if not torch.cuda.is_available():
        raise ConfigError(f"{flag}: no CUDA GPU found; use cpu, or auto (a GPU when there is one)")
