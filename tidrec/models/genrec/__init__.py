"""Title generation with a LoRA-tuned causal LM: GenRec and LLMSeqPrompt.

Both fine-tune the same way (:mod:`tidrec.models.genrec.train`): a prompt lists the user's last
items by title, newest last, and the LM learns to write the next item's title. They differ in
decoding:

* ``genrec`` (Ji et al. 2023, "GenRec: Large Language Model for Generative Recommendation"): beam
  search over title tokens constrained by a trie of every catalogue title
  (:func:`tidrec.models.genrec.decode.title_beam_search`), so only real items come out, with exact
  history exclusion. The paper decodes without constraints.
* ``llmseqprompt`` (Harte et al. 2023, "Leveraging Large Language Models for Sequential
  Recommendation"): unconstrained greedy generation, as the paper does, then the catalogue items
  nearest to the generated text by sentence embedding (faiss). It reports how often the generated
  text is not a catalogue title (``invalid_title_rate``).

``llmseqprompt`` reuses the run's ``genrec`` adapter when one was trained with the same settings,
so the two decodings are compared on one fine-tuned model.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from tidrec.models import LoadRequest, ModelSpec, register

if TYPE_CHECKING:
    from tidrec.data.dataset import Dataset, Split
    from tidrec.fit import FitConfig

OPTIONS = frozenset(
    {
        "llm",
        "lora_rank",
        "lora_alpha",
        "lora_dropout",
        "lora_targets",
        "max_items",
        "max_prompt_tokens",
        "positions_per_user",
        "warmup",
        "embedding_model",
        "embedding_cache",
    }
)
"""Options of both title-generation models (besides the generic training ones)."""


def preset(config: FitConfig) -> dict[str, Any]:
    """SmolLM2-135M-Instruct with alpaca-lora's adapter (GenRec's code base): rank 8, alpha 16, dropout
    0.05 on q_proj and v_proj, lr 1e-3 with 5 % warm-up and cosine decay, batch 16. Sized for 2 CPU
    cores (about an hour on ML-100K): prompts list the last 5 items (at most 256 tokens), 2 target
    positions per user and epoch (the newest and one earlier), 2 epochs, patience 1; bf16 autocast
    where the hardware has it (a GPU, or a CPU with AVX-512 BF16: 3x the float32 matmul rate)."""
    from tidrec.models.genrec.llm import DEFAULT_LLM
    from tidrec.models.llmseqsim import run_embedding_model

    return {
        "llm": DEFAULT_LLM,
        "lora_rank": 8,
        "lora_alpha": 16.0,
        "lora_dropout": 0.05,
        "lora_targets": ("q_proj", "v_proj"),
        "max_items": 5,
        "max_prompt_tokens": 256,
        "positions_per_user": 2,
        "batch_size": 16,
        "lr": 1e-3,
        "warmup": 0.05,
        "weight_decay": 0.0,
        "max_epochs": 2,
        "patience": 1,
        "seed": 42,
        "precision": "bf16-mixed" if fast_bf16(config) else "32-true",
        "embedding_model": run_embedding_model(config.run),
    }


def fast_bf16(config: FitConfig) -> bool:
    """Whether training on this machine gains from bf16 autocast (a GPU, or a CPU with native bf16)."""
    from tidrec.training import uses_gpu

    if uses_gpu(config):
        return True
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def fit(config: FitConfig, dataset: Dataset) -> Path:
    from tidrec.models.genrec.train import fit_title_lm

    if config.model == "llmseqprompt":
        reused = reuse_genrec_adapter(config)
        if reused is not None:
            return reused
    return fit_title_lm(config, dataset)


def reuse_genrec_adapter(config: FitConfig) -> Path | None:
    """Copy the run's genrec adapter into ``models/llmseqprompt/`` when it was trained with the same
    LLM, adapter and prompt settings (the two models differ only in decoding); None otherwise."""
    from tidrec.artifacts import checkpoint_record, read_checkpoint
    from tidrec.errors import InputError
    from tidrec.io import atomic_path
    from tidrec.models.genrec.train import TitleLMConfig

    source = Path(config.run) / "models" / "genrec"
    try:
        entry = checkpoint_record(read_checkpoint(source / "best.ckpt"), source / "best.ckpt").entry
    except InputError:
        return None
    if entry.get("llm_config") != TitleLMConfig.from_fit(config).as_dict():
        return None
    out = Path(config.run) / "models" / config.model
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "best.ckpt") as tmp:
        shutil.copyfile(source / "best.ckpt", tmp)
    info = source / "train_info.json"
    if info.is_file():
        from tidrec.io import read_json_object, write_json

        earlier = read_json_object(info, remedy="train genrec again")
        write_json(out / "train_info.json", {**earlier, "model": config.model, "adapter_from": "genrec"})
    print(f"{config.model}: reusing the genrec adapter of {source} (same LLM, adapter and prompts)")
    return out / "best.ckpt"


class TitleBeamRecommender:
    """GenRec: the fine-tuned LM's best catalogue titles by trie-constrained beam search."""

    def __init__(
        self, model: Any, catalogue: Any, *, beam_size: int = 20, batch_size: int = 16, bf16: bool = False
    ) -> None:
        from tidrec.models.genrec.decode import title_trie

        self.model, self.catalogue, self.bf16 = model, catalogue, bf16
        self.trie = title_trie(catalogue.sequences)
        self.beam_size, self.batch_size = beam_size, batch_size

    def recommend(self, split: Split, *, k: int, exclude_history: bool) -> np.ndarray:
        """(B, k) item_idx by the title's summed log-probability; -1 where fewer are left."""
        return self.recommend_certified(split, k=k, exclude_history=exclude_history)[0]

    def recommend_certified(
        self, split: Split, *, k: int, exclude_history: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`recommend`'s lists and whether each is provably the model's best k titles."""
        from tidrec.models.genrec.decode import title_beam_search

        lists, certified = [], []
        for lo in range(0, len(split), self.batch_size):
            histories = list(split.histories[lo : lo + self.batch_size])
            ids, mask = self.catalogue.prompts(histories)
            with autocast(self.model, self.bf16):
                result = title_beam_search(
                    self.model,
                    ids,
                    mask,
                    trie=self.trie,
                    beam_size=max(self.beam_size, k),
                    top_k=k,
                    exclude=histories if exclude_history else None,
                )
            lists.append(result.item_idx.cpu().numpy())
            certified.append(result.certified.cpu().numpy())
        if not lists:
            return np.zeros((0, k), dtype=np.int64), np.zeros(0, dtype=bool)
        return np.concatenate(lists), np.concatenate(certified)

    def decoding_metrics(self) -> dict[str, float]:
        """``invalid_title_rate``: 0 by construction (only catalogue titles can be decoded), reported
        beside LLMSeqPrompt's."""
        return {"invalid_title_rate": 0.0}


class NearestTitleRecommender:
    """LLMSeqPrompt: unconstrained generation, then the items nearest to the text by embedding."""

    def __init__(
        self,
        model: Any,
        catalogue: Any,
        *,
        embedding_model: str,
        cache: Path,
        batch_size: int = 16,
        bf16: bool = False,
    ) -> None:
        import faiss

        from tidrec.embed import embed_texts, load_model

        self.model, self.catalogue, self.batch_size, self.bf16 = model, catalogue, batch_size, bf16
        vectors = np.ascontiguousarray(
            embed_texts(catalogue.titles, model=embedding_model, cache_dir=cache, progress=False),
            dtype=np.float32,
        )  # (I, E)
        faiss.normalize_L2(vectors)  # inner product = cosine similarity
        self.index = faiss.IndexFlatIP(vectors.shape[1])
        self.index.add(vectors)
        self.encoder = load_model(embedding_model, "cpu")
        self.exact = {title: i for i, title in enumerate(catalogue.titles)}
        self.generated = 0
        self.invalid = 0
        self.max_new_tokens = max(len(s) for s in catalogue.sequences)

    def recommend(self, split: Split, *, k: int, exclude_history: bool) -> np.ndarray:
        """(B, k) item_idx: the k catalogue titles nearest the generated one (history removed)."""
        import faiss

        from tidrec.models.genrec.decode import generate_free

        lists = []
        tokenizer = self.catalogue.tokenizer
        for lo in range(0, len(split), self.batch_size):
            histories = list(split.histories[lo : lo + self.batch_size])
            ids, mask = self.catalogue.prompts(histories)
            with autocast(self.model, self.bf16):
                generated = generate_free(
                    self.model,
                    ids,
                    mask,
                    eos_token_id=tokenizer.eos_token_id,
                    max_new_tokens=self.max_new_tokens,
                )
            texts = [tokenizer.decode(tokens, skip_special_tokens=True).strip() for tokens in generated]
            self.generated += len(texts)
            self.invalid += sum(text not in self.exact for text in texts)
            queries = np.ascontiguousarray(
                self.encoder.encode(texts, convert_to_numpy=True), dtype=np.float32
            )
            faiss.normalize_L2(queries)  # (B, E)
            seen = max((len(h) for h in histories), default=0) if exclude_history else 0
            _, nearest = self.index.search(queries, min(k + seen, self.index.ntotal))
            for row, history in zip(nearest, histories, strict=True):
                keep = row[row >= 0]
                if exclude_history:
                    keep = keep[~np.isin(keep, history)]
                lists.append(np.pad(keep[:k], (0, k - len(keep[:k])), constant_values=-1))
        return np.stack(lists).astype(np.int64) if lists else np.zeros((0, k), dtype=np.int64)

    def decoding_metrics(self) -> dict[str, float]:
        """``invalid_title_rate``: share of generations that are not a catalogue title."""
        return {"invalid_title_rate": self.invalid / self.generated if self.generated else 0.0}


def load(request: LoadRequest):
    from tidrec.device import resolve_device
    from tidrec.embed import embedding_cache_dir
    from tidrec.models.genrec.train import load_title_lm
    from tidrec.models.llmseqsim import run_embedding_model

    # llmseqprompt may hold the genrec adapter (same training): any title-generation checkpoint loads
    model, catalogue, bf16 = load_title_lm(request.folder / "best.ckpt", request.dataset)
    model = model.to(resolve_device(request.device))
    if request.folder.name == "llmseqprompt":
        return NearestTitleRecommender(
            model,
            catalogue,
            embedding_model=run_embedding_model(request.run),
            cache=embedding_cache_dir(request.run),
            bf16=bf16,
        )
    return TitleBeamRecommender(model, catalogue, beam_size=request.beam_size, bf16=bf16)


def autocast(model: Any, enabled: bool):
    """bf16 autocast on the model's device (a no-op context when not ``enabled``)."""
    device = next(model.parameters()).device.type
    return torch.autocast(device, dtype=torch.bfloat16, enabled=enabled)


for _name, _summary in (
    ("genrec", "GenRec: LoRA-tuned causal LM writes the next title, decoded within a title trie"),
    ("llmseqprompt", "LLMSeqPrompt: LoRA-tuned causal LM writes a title, mapped to the nearest items"),
):
    register(ModelSpec(name=_name, summary=_summary, preset=preset, fit=fit, load=load, options=OPTIONS))
