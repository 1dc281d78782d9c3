"""GenRec and LLMSeqPrompt: prompts, LoRA fine-tuning through tidrec.fit, adapter-only checkpoints,
loading, and one-line errors. A tiny local LLaMA stands in for SmolLM2 (``--llm <folder>``)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from llm_fixtures import film_dataset, tiny_llm_folder

from tidrec import models
from tidrec.errors import ConfigError, InputError
from tidrec.fit import FitConfig, fit, resolve_config
from tidrec.models.genrec.prompts import item_titles, prompt_ids, title_sequences
from tidrec.models.genrec.train import load_title_lm


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A run folder with the film dataset, a tiny LLM, and a genrec model trained for one epoch."""
    run = tmp_path_factory.mktemp("genrec")
    dataset = film_dataset()
    dataset.save(run / "data")
    llm = tiny_llm_folder(run / "llm", dataset.item_texts)
    options = dict(llm=str(llm), max_epochs=1, lr=5e-3, beam_size=10, progress=False, device="cpu")
    fit(FitConfig(run=run, model="genrec", **options))
    return run, dataset, options


@pytest.fixture(scope="module")
def tokenizer(run):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(run[0] / "llm")


def test_titles_are_parsed_and_told_apart():
    texts = [
        "Title: Heat. Year: 1995. Genres: Crime.",
        "Title: Heat. Year: 1995. Genres: Crime.",
        "plain name",
    ]
    assert item_titles(texts) == ["Heat (1995) [1]", "Heat (1995) [2]", "plain name"]
    with pytest.raises(InputError, match=r"item 'x2' .* has no text"):
        item_titles(["a", "b", "  "], ["x0", "x1", "x2"])


def test_title_sequences_end_with_eos_and_long_titles_are_refused(tokenizer):
    sequences = title_sequences(tokenizer, ["Film 1 (1991)", "Film 12 (1992)"])
    assert all(
        seq[-1] == tokenizer.eos_token_id and tokenizer.eos_token_id not in seq[:-1] for seq in sequences
    )
    longer = "Film 12 (1992), the long cut"
    with pytest.raises(InputError, match=r"the long cut' is .* tokens, more than the context allows"):
        title_sequences(tokenizer, ["Film 1 (1991)", longer], max_tokens=len(sequences[0]))


def test_the_title_trie_accepts_exactly_the_catalogues_titles(run, tokenizer):
    from tidrec.models.genrec.decode import title_trie

    _, dataset, _ = run
    sequences = title_sequences(tokenizer, item_titles(dataset.item_texts, dataset.item_ids))
    trie = title_trie(sequences)
    assert [trie.item_of(seq) for seq in sequences] == list(range(len(sequences)))
    followers: dict[tuple[int, ...], set[int]] = {}  # every prefix of a title -> the tokens that follow it
    for seq in sequences:
        for end in range(len(seq)):
            followers.setdefault(tuple(seq[:end]), set()).add(seq[end])
    for prefix, tokens in followers.items():
        assert set(trie.allowed_tokens(prefix).tolist()) == tokens
        assert trie.item_of(prefix) == -1  # no title is a prefix of another: each ends with EOS
    (other,) = title_sequences(tokenizer, ["Film 999 (2099)"])
    assert trie.item_of(other) == -1 and trie.walk(other) == -1


def test_prompts_cut_to_the_token_limit_keep_the_newest_items(tokenizer):
    titles = [f"Film {i} (1990)" for i in range(10)]
    sequences = title_sequences(tokenizer, titles)
    history = np.arange(10)
    full = tokenizer.decode(prompt_ids(tokenizer, sequences, history, prompt_items=5, max_tokens=10_000))
    assert [f"Film {i} (1990)" in full for i in range(10)] == [False] * 5 + [True] * 5
    assert full.index("Film 5") < full.index("Film 9")  # oldest first, newest last
    short = prompt_ids(
        tokenizer,
        sequences,
        history,
        prompt_items=5,
        max_tokens=len(prompt_ids(tokenizer, sequences, history[-2:], prompt_items=5, max_tokens=10_000)),
    )
    text = tokenizer.decode(short)
    assert "Film 9" in text and "Film 8" in text and "Film 7" not in text
    with pytest.raises(InputError, match="no room for the newest history item"):
        prompt_ids(tokenizer, sequences, history, prompt_items=5, max_tokens=12)


def test_the_preset_is_the_papers_adapter_and_options_are_checked():
    config = resolve_config(FitConfig(run=".", model="genrec"))
    assert (config.lora_rank, config.lora_alpha, config.lora_targets) == (8, 16.0, ("q_proj", "v_proj"))
    assert config.max_epochs >= 1 and config.positions_per_user >= 1
    with pytest.raises(ConfigError, match="--trie-softmax: not an option of --model genrec"):
        resolve_config(FitConfig(run=".", model="genrec", trie_softmax=True))
    with pytest.raises(ConfigError, match="--lora-dropout must be"):
        FitConfig(run=".", model="genrec", lora_dropout=1.5)
    assert {"genrec", "llmseqprompt"} <= set(models.names())


def test_the_checkpoint_holds_the_adapter_only_and_reloads_to_the_same_scores(run):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from tidrec.artifacts import read_checkpoint
    from tidrec.models.genrec.decode import score_titles

    folder, dataset, options = run
    checkpoint = read_checkpoint(folder / "models/genrec/best.ckpt")
    assert checkpoint["state_dict"] and all("lora_" in key for key in checkpoint["state_dict"])
    assert (
        checkpoint["tidrec"]["kind"] == "llm" and checkpoint["tidrec"]["dataset_hash"] == dataset.content_hash
    )
    model, catalogue, _ = load_title_lm(folder / "models/genrec/best.ckpt", dataset)
    ids, mask = catalogue.prompts([dataset.sequence(u)[:-2] for u in range(4)])
    loaded = score_titles(model, ids, mask, catalogue.sequences)  # (4, I)
    # the same adapter put on a fresh copy of the base model by hand gives the same scores ...
    base = AutoModelForCausalLM.from_pretrained(options["llm"])
    lora = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.05, target_modules=["q_proj", "v_proj"])
    by_hand = get_peft_model(base, lora)
    by_hand.load_state_dict(
        {k.removeprefix("model."): v for k, v in checkpoint["state_dict"].items()}, strict=False
    )
    assert torch.allclose(score_titles(by_hand.eval(), ids, mask, catalogue.sequences), loaded, atol=1e-5)
    # ... and training changed them (LoRA's B starts at zero: an untrained adapter is the base model)
    untrained = score_titles(
        AutoModelForCausalLM.from_pretrained(options["llm"]).eval(), ids, mask, catalogue.sequences
    )
    assert not torch.allclose(untrained, loaded, atol=1e-3)


def test_both_decodings_rank_real_items_and_llmseqprompt_reuses_the_adapter(run, capsys):
    from tidrec.models import LoadRequest

    folder, dataset, options = run
    fit(FitConfig(run=folder, model="llmseqprompt", **options))
    assert "reusing the genrec adapter" in capsys.readouterr().out
    info = json.loads((folder / "models/llmseqprompt/train_info.json").read_text())
    assert info["adapter_from"] == "genrec"
    from tidrec.pipeline import training_record

    genrec_info = json.loads((folder / "models/genrec/train_info.json").read_text())
    assert training_record(folder, "llmseqprompt")["train_seconds"] == genrec_info["train_seconds"]
    split = dataset.split("test").subset(np.arange(6))
    for name in ("genrec", "llmseqprompt"):
        recommender = models.get(name).load(
            LoadRequest(run=folder, folder=folder / "models" / name, dataset=dataset)
        )
        lists = recommender.recommend(split, k=5, exclude_history=True)
        assert lists.shape == (6, 5) and lists.max() < dataset.num_items
        for row, history in zip(lists, split.histories, strict=True):
            real = row[row >= 0]
            assert len(set(real)) == len(real) and not np.isin(real, history).any()
        assert 0.0 <= recommender.decoding_metrics()["invalid_title_rate"] <= 1.0


def test_a_model_that_is_no_causal_lm_or_lacks_the_lora_targets_is_one_line(tmp_path, run):
    from transformers import T5Config, T5ForConditionalGeneration

    folder, _, options = run
    T5ForConditionalGeneration(
        T5Config(vocab_size=50, d_model=8, d_ff=16, num_layers=1, num_heads=1, d_kv=8)
    ).save_pretrained(tmp_path / "t5")
    with pytest.raises(ConfigError, match="t5 model is not a causal LM"):
        fit(FitConfig(run=folder, model="genrec", **{**options, "llm": str(tmp_path / "t5")}))
    with pytest.raises(ConfigError, match="--lora-targets c_attn: no such module"):
        fit(FitConfig(run=folder, model="genrec", **{**options, "lora_targets": ("c_attn",)}))


def test_training_resumes_from_the_last_checkpoint_and_evaluate_serves_it(run, capsys):
    from tidrec import evaluate

    folder, _, options = run
    before = json.loads((folder / "models/genrec/train_info.json").read_text())
    fit(FitConfig(run=folder, model="genrec", resume=True, **{**options, "max_epochs": 2}))
    after = json.loads((folder / "models/genrec/train_info.json").read_text())
    assert (before["epochs"], after["epochs"]) == (1, 2) and after["steps"] == 2 * before["steps"]
    assert evaluate.main(["--run", str(folder), "--model", "genrec", "--exclude-history", "true"]) == 0
    saved = json.loads((folder / "models/genrec/eval/results-test-exclude-history.json").read_text())
    assert saved["metrics"]["invalid_rate"] == 0.0 and saved["metrics"]["invalid_title_rate"] == 0.0
    assert "certified" in saved["metrics"]


def test_training_examples_sample_positions_by_seed_or_take_every_one(run, tokenizer):
    from tidrec.models.genrec.train import Catalogue, TitleExamples, TitleLMConfig

    _, dataset, _ = run
    config = TitleLMConfig("tiny", 8, 16.0, 0.0, ("q_proj",), prompt_items=3, max_prompt_tokens=200)
    catalogue = Catalogue(dataset, tokenizer, config, context=512)
    sequences = dataset.train_sequences()
    every = TitleExamples(sequences, catalogue, per_user=0, seed=0)
    assert len(every) == sum(len(s) - 1 for s in sequences if len(s) >= 2)
    sampled = TitleExamples(sequences, catalogue, per_user=2, seed=0)
    again = TitleExamples(sequences, catalogue, per_user=2, seed=0)
    assert [sampled.position(u, 1) for u in range(20)] == [again.position(u, 1) for u in range(20)]
    assert all(sampled.position(u, 0) == len(sampled.sequences[u]) - 1 for u in range(20))  # newest
    prompt, title = sampled[0]
    user = sampled.sequences[0]
    assert title == catalogue.sequences[int(user[-1])]  # slot 0 of user 0: the newest target
    assert tokenizer.decode(prompt).count("\n") >= 2
