"""A tiny causal LM saved as a local folder (random LLaMA weights, a byte-level BPE tokenizer trained
on the item texts), so the title-generation models train and decode in tests without SmolLM2."""

from pathlib import Path

import torch


def tiny_llm_folder(folder: Path, texts: list[str], *, seed: int = 0) -> Path:
    """Write a ~50k-parameter LLaMA and its tokenizer to ``folder``; return it (a ``--llm`` value)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    from tidrec.models.genrec.prompts import PROMPT_HEAD, PROMPT_TAIL

    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<unk>", "<pad>", "<eos>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    bpe.train_from_iterator([*texts, PROMPT_HEAD, PROMPT_TAIL], trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe, eos_token="<eos>", pad_token="<pad>", unk_token="<unk>"
    )
    tokenizer.save_pretrained(folder)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
    )
    torch.manual_seed(seed)
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder


def film_dataset(num_items: int = 16, num_users: int = 60, seed: int = 0):
    """MovieLens-style item text on a cycle: each user follows the cycle from a random film, so the
    next title is a function of the last one."""
    import numpy as np

    from tidrec.data.dataset import Dataset

    rng = np.random.default_rng(seed)
    sequences = [
        (rng.integers(num_items) + np.arange(rng.integers(5, 9))) % num_items for _ in range(num_users)
    ]
    lengths = np.array([len(s) for s in sequences])
    texts = [f"Title: Film {i}. Year: {1990 + i % 5}. Genres: Drama." for i in range(num_items)]
    return Dataset(
        name="films",
        user_ids=np.array([f"u{u}" for u in range(num_users)]),
        item_ids=np.array([f"m{i}" for i in range(num_items)]),
        item_texts=texts,
        offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        items=np.concatenate(sequences).astype(np.int64),
        timestamps=np.concatenate([np.arange(n) for n in lengths]).astype(np.int64),
    )
