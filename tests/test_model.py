"""The generative model: encoder inputs by hand, presets, checkpoint round trip and SID-hash refusal."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tiger_fixtures import cyclic_dataset, cyclic_sids

from tidrec.errors import InputError
from tidrec.model import (
    ModelConfig,
    TigerModule,
    build_model,
    cpu_model,
    decoder_labels,
    encoder_inputs,
    load_checkpoint,
    tiger_model,
    warmup_cosine,
)
from tidrec.vocab import EOS, PAD, Vocab
from tokenizer.sid_table import SidTable

VOCAB = Vocab(level_sizes=(3, 4), user_buckets=5)
# level 0 codes are tokens 2..4, level 1 codes tokens 5..8, users 9..13
SID_TOKENS = VOCAB.sid_tokens(np.array([[0, 0], [0, 1], [2, 3]]))  # items 0, 1, 2


def test_sid_tokens_follow_the_vocab_layout():
    assert SID_TOKENS.tolist() == [[2, 5], [2, 6], [4, 8]]


def test_encoder_inputs_keep_the_last_items_and_right_pad():
    histories = [np.array([0, 1, 2]), np.array([], dtype=np.int64)]
    input_ids, mask = encoder_inputs(VOCAB, SID_TOKENS, histories, ["alice", "bob"], max_items=2)
    alice, bob = VOCAB.user_token("alice"), VOCAB.user_token("bob")
    assert input_ids.tolist() == [
        [alice, 2, 6, 4, 8, EOS],  # items 1 and 2, oldest first
        [bob, EOS, PAD, PAD, PAD, PAD],
    ]
    assert mask.tolist() == [[1, 1, 1, 1, 1, 1], [1, 1, 0, 0, 0, 0]]


def test_encoder_inputs_without_user_tokens():
    vocab = Vocab(level_sizes=(3, 4), user_buckets=0)
    input_ids, _ = encoder_inputs(vocab, SID_TOKENS, [np.array([2])], ["x"], max_items=5)
    assert input_ids.tolist() == [[4, 8, EOS]]


def test_decoder_labels_are_sid_then_eos():
    assert decoder_labels(SID_TOKENS, np.array([2, 0])).tolist() == [[4, 8, EOS], [2, 5, EOS]]


def test_presets_and_validation():
    assert (tiger_model().num_layers, tiger_model().num_heads * tiger_model().d_kv) == (4, 384)
    assert cpu_model().max_items < tiger_model().max_items
    with pytest.raises(ValueError, match="dropout"):
        ModelConfig(dropout=1.5)


def test_warmup_cosine_follows_steps_or_the_wall_clock_budget_whichever_is_further():
    now = [0.0]
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    steps = warmup_cosine(optimizer, warmup_steps=2, total_steps=102, floor=0.0)
    assert [steps.lr_lambdas[0](s) for s in (0, 1, 2, 52, 102)] == pytest.approx([0.5, 1.0, 1.0, 0.5, 0.0])
    timed = warmup_cosine(
        optimizer, warmup_steps=2, total_steps=102, floor=0.1, budget_s=60, clock=lambda: now[0]
    )
    now[0] = 30.0  # half the budget gone after 2 % of the steps: the decay is half done
    assert timed.lr_lambdas[0](4) == pytest.approx(0.55)
    assert timed.lr_lambdas[0](0) == pytest.approx(0.5)  # warm-up is by steps only
    now[0] = 600.0
    assert timed.lr_lambdas[0](5) == pytest.approx(0.1)


def test_tiger_size_model_has_the_papers_shape():
    model = build_model(tiger_model(), VOCAB)
    assert (model.config.num_layers, model.config.num_decoder_layers) == (4, 4)
    assert (model.config.d_model, model.config.num_heads, model.config.d_kv, model.config.d_ff) == (
        128,
        6,
        64,
        1024,
    )
    assert model.config.decoder_start_token_id == PAD


def _save_module_checkpoint(tmp_path, sids: SidTable):
    config = ModelConfig(
        d_model=16, num_layers=1, num_decoder_layers=1, num_heads=2, d_kv=8, d_ff=32, user_buckets=7
    )
    module = TigerModule(config, sids, dataset_hash="abc")
    checkpoint = {"state_dict": module.state_dict()}
    module.on_save_checkpoint(checkpoint)
    path = tmp_path / "best.ckpt"
    torch.save(checkpoint, path)
    return module, path


def test_checkpoint_rebuilds_the_same_model(tmp_path):
    sids = cyclic_sids(cyclic_dataset(num_users=4))
    module, path = _save_module_checkpoint(tmp_path, sids)
    loaded = load_checkpoint(path)
    assert loaded.config == module.config and loaded.vocab == module.vocab
    assert loaded.sid_hash == sids.content_hash() and loaded.dataset_hash == "abc"
    assert not loaded.model.training
    ids, mask = encoder_inputs(loaded.vocab, module.sid_tokens, [np.array([0, 1])], ["u"], max_items=4)
    labels = decoder_labels(module.sid_tokens, np.array([2]))
    module.model.eval()
    with torch.no_grad():
        expected = module.model(input_ids=ids, attention_mask=mask, labels=labels).logits
        actual = loaded.model(input_ids=ids, attention_mask=mask, labels=labels).logits
    torch.testing.assert_close(actual, expected)


def test_a_different_sid_table_is_refused_in_one_line(tmp_path):
    dataset = cyclic_dataset(num_users=4)
    sids = cyclic_sids(dataset)
    _, path = _save_module_checkpoint(tmp_path, sids)
    swapped = SidTable(sids.item_ids, sids.codes[::-1].copy(), sids.level_sizes, sids.dataset_hash)
    loaded = load_checkpoint(path)
    loaded.check_sids(sids)  # the table it was trained on passes
    with pytest.raises(InputError, match="trained on SID table") as error:
        loaded.check_sids(swapped, "other/sids.parquet")
    assert "other/sids.parquet" in str(error.value) and "\n" not in str(error.value)


def test_load_checkpoint_refuses_missing_and_foreign_files(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_checkpoint(tmp_path / "none.ckpt")
    torch.save({"state_dict": {}}, tmp_path / "other.ckpt")
    with pytest.raises(InputError, match="not a tidrec checkpoint"):
        load_checkpoint(tmp_path / "other.ckpt")
