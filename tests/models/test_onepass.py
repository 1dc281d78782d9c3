"""One-pass TIGER: layout by hand, causality, one pass = every prefix alone, beam search = brute force,
and a tiny model that learns the cyclic catalogue."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from tiger_fixtures import NUM_ITEMS, cyclic_dataset, cyclic_sids
from transformers import T5Config, T5ForConditionalGeneration
from transformers.modeling_outputs import BaseModelOutput
from transformers.models.t5.modeling_t5 import T5Attention

from tidrec.generate import beam_search, cross_attention_state
from tidrec.model import decoder_labels
from tidrec.models.tiger.onepass import (
    OnePassConfig,
    block_causal_mask,
    block_cross_bias,
    build_onepass,
    cross_attention_bias,
    decoder_blocks,
    encode_items,
    encoder_embeddings,
    encoder_mask,
    history_batch,
    masked_batch,
    onepass_batch,
    onepass_logits,
    onepass_loss,
    recommend,
    target_losses,
)
from tidrec.vocab import EOS, PAD, Vocab
from trie import Trie

VOCAB = Vocab(level_sizes=(4, 3, 2), user_buckets=0)
EVERY_SID = VOCAB.sid_tokens(np.array([(a, b, c) for a in range(4) for b in range(3) for c in range(2)]))
"""(24, 3) every code tuple of VOCAB."""
CATALOGUE = EVERY_SID[np.random.default_rng(0).choice(24, 10, replace=False)]
"""(10, 3) SID tokens of a 10-item catalogue."""
SEQUENCES = [np.array([3, 1, 4, 1, 5, 9, 2]), np.array([6, 5]), np.array([3, 5, 8, 9, 7])]


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models run faster on one thread, above all on a shared 2-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny(
    *,
    seed: int = 0,
    hybrid: bool = False,
    recency: bool = False,
    sid_tokens: np.ndarray = CATALOGUE,
    vocab: Vocab = VOCAB,
    **sizes,
):
    torch.manual_seed(seed)
    config = dict(
        d_model=32, num_layers=2, num_decoder_layers=2, num_heads=2, d_kv=8, d_ff=64, dropout=0.0, max_items=8
    )
    config.update(sizes)
    config = OnePassConfig(**config, item_id_embedding=hybrid, recency_bias=recency)
    model = build_onepass(config, vocab, sid_tokens).eval()
    if recency:  # the table starts at zero (plain cross-attention): make it matter
        torch.nn.init.normal_(model.recency.weight, std=2.0)
    return model


VARIANTS = {"codes": {}, "hybrid": {"hybrid": True}, "recency": {"hybrid": True, "recency": True}}
"""Encoder inputs and cross-attention variants every equivalence test runs on."""


def test_batch_layout_by_hand():
    sid = Vocab((3, 4), user_buckets=0).sid_tokens(np.array([[0, 0], [0, 1], [2, 3]]))  # [[2,5],[2,6],[4,8]]
    batch = onepass_batch([np.array([0, 1, 2, 0]), np.array([2, 1])], sid, max_items=2)
    assert batch["items"].tolist() == [[1, 2], [2, 3]]  # last 3 items of row 0; item 3 pads
    assert batch["targets"].tolist() == [[2, 0], [1, -1]]
    assert batch["attention_mask"].tolist() == [[1, 1], [1, 0]]
    assert batch["decoder_input_ids"].tolist() == [[PAD, 4, 8, PAD, 2, 5], [PAD, 2, 6, PAD, PAD, PAD]]
    assert batch["labels"].tolist() == [[4, 8, EOS, 2, 5, EOS], [2, 6, EOS, -100, -100, -100]]
    with pytest.raises(ValueError, match="at least 2"):
        onepass_batch([np.array([0])], sid, max_items=2)


def test_masks_by_hand():
    def allowed(mask):
        return (mask[0, 0] == 0).int().tolist()

    assert allowed(encoder_mask(3, dtype=torch.float32)) == [[1, 0, 0], [1, 1, 0], [1, 1, 1]]
    assert allowed(block_causal_mask(2, 2, dtype=torch.float32)) == [
        [1, 0, 0, 0],
        [1, 1, 0, 0],
        [0, 0, 1, 0],
        [0, 0, 1, 1],
    ]
    assert allowed(block_cross_bias(tiny(), 2, 2, 3, dtype=torch.float32)) == [
        [1, 0, 0],
        [1, 0, 0],
        [1, 1, 0],
        [1, 1, 0],
    ]
    blocked = encoder_mask(2, dtype=torch.float64)[0, 0, 0, 1]
    assert blocked == torch.finfo(torch.float64).min  # additive and finite, in the model's dtype


def test_recency_bias_by_hand():
    """Query t reads positions s <= t, each biased by the learned value of its distance t - s."""
    model = tiny(recency=True)
    with torch.no_grad():
        model.recency.weight.copy_(torch.arange(64, dtype=torch.float32).view(32, 2))  # bucket b: (2b, 2b+1)
    bias = cross_attention_bias(model, torch.tensor([[0, 2]]), 3, dtype=torch.float32)  # (1, H, 2, 3)
    minimum = torch.finfo(torch.float32).min
    assert bias.shape == (1, 2, 2, 3)
    assert bias[0, 0].tolist() == [[0.0, minimum, minimum], [4.0, 2.0, 0.0]]  # head 0: 2 x distance
    assert bias[0, 1].tolist() == [[1.0, minimum, minimum], [5.0, 3.0, 1.0]]
    far = cross_attention_bias(model, torch.tensor([[500]]), 501, dtype=torch.float32)[0, 0, 0]
    assert far[0] == far[1] == 62.0 and far[-1] == 0.0  # distances >= 128 share the last bucket
    plain = cross_attention_bias(tiny(), torch.tensor([[1]]), 3, dtype=torch.float32)
    assert plain.shape == (1, 1, 1, 3) and plain[0, 0, 0].tolist() == [0.0, 0.0, minimum]


def test_config_and_shapes_are_checked():
    with pytest.raises(ValueError, match="dropout"):
        OnePassConfig(dropout=1.0)
    with pytest.raises(ValueError, match="max_items"):
        OnePassConfig(max_items=0)
    with pytest.raises(ValueError, match=r"\(I, 3\)"):
        tiny(sid_tokens=CATALOGUE[:, :2])
    model = tiny()
    batch = onepass_batch(SEQUENCES, CATALOGUE, 8)
    with pytest.raises(ValueError, match="decoder_input_ids"):
        onepass_logits(model, batch["items"], batch["decoder_input_ids"][:, :-1])


def test_attention_dropout_drops_attention_weights_alone():
    model = tiny(dropout=0.3, attention_dropout=0.0).train()
    attentions = [m for m in model.modules() if isinstance(m, T5Attention)]
    assert attentions and all(m.dropout == 0.0 for m in attentions)
    assert {m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)} == {0.3}  # hidden states still
    batch = onepass_batch(SEQUENCES, CATALOGUE, 8)
    torch.manual_seed(0)
    first = onepass_logits(model, batch["items"], batch["decoder_input_ids"])
    assert not torch.allclose(first, onepass_logits(model, batch["items"], batch["decoder_input_ids"]))
    assert all(m.dropout == 0.3 for m in tiny(dropout=0.3).modules() if isinstance(m, T5Attention))
    with pytest.raises(ValueError, match="attention_dropout"):
        OnePassConfig(attention_dropout=1.5)


def test_hybrid_adds_the_item_table_and_padding_is_zero():
    items = torch.tensor([[0, 10]])  # a real item and the padding item
    plain, hybrid = tiny(), tiny(hybrid=True)
    codes_only = hybrid.t5.shared(hybrid.sid_tokens[items]).sum(2)  # (1, 2, L, D) -> (1, 2, D)
    torch.testing.assert_close(
        encoder_embeddings(plain, items), plain.t5.shared(plain.sid_tokens[items]).sum(2)
    )
    torch.testing.assert_close(encoder_embeddings(hybrid, items)[0, 1], codes_only[0, 1])  # pad row is 0
    assert not torch.allclose(encoder_embeddings(hybrid, items)[0, 0], codes_only[0, 0])


@pytest.mark.parametrize("variant", VARIANTS)
def test_later_items_do_not_change_earlier_targets(variant):
    model = tiny(seed=1, **VARIANTS[variant])
    cut = 3  # perturb x_4, x_5, ...: targets 0..2 (x_1..x_3) keep their loss, block 3 its first logits
    base = [s.copy() for s in SEQUENCES]
    later, earlier = [s.copy() for s in base], [s.copy() for s in base]
    later[0][cut + 1 :] = (later[0][cut + 1 :] + 1) % 10
    earlier[0][0] = 7
    with torch.no_grad():
        outs = {}
        for name, seqs in (("base", base), ("later", later), ("earlier", earlier)):
            batch = onepass_batch(seqs, CATALOGUE, 8)
            outs[name] = (
                encode_items(model, batch["items"]),  # (B, T, D)
                onepass_logits(model, batch["items"], batch["decoder_input_ids"]),  # (B, T, L+1, V)
                target_losses(model, batch),  # (B, T)
            )
    (hid, logits, losses), (hid2, logits2, losses2) = outs["base"], outs["later"]
    torch.testing.assert_close(hid[0, : cut + 1], hid2[0, : cut + 1], rtol=0, atol=1e-6)
    torch.testing.assert_close(logits[0, : cut + 1, 0], logits2[0, : cut + 1, 0], rtol=0, atol=1e-6)
    torch.testing.assert_close(losses[0, :cut], losses2[0, :cut], rtol=0, atol=1e-6)
    assert not torch.allclose(losses[0, cut:], losses2[0, cut:])  # the perturbed targets did change
    torch.testing.assert_close(losses[1:], losses2[1:], rtol=0, atol=1e-6)  # other rows untouched
    _, logits3, losses3 = outs["earlier"]
    assert (losses[0] - losses3[0]).abs().min() > 1e-4  # an earlier item reaches every later target
    assert not torch.allclose(logits[0, :, 0], logits3[0, :, 0])


@pytest.mark.parametrize("recency", [False, True], ids=["plain", "recency"])
@pytest.mark.parametrize("overrides", [{}, {"tie_word_embeddings": False}], ids=["tied", "untied"])
def test_blockwise_decoder_matches_hf_on_random_inputs(overrides, recency):
    model = tiny(seed=6, hybrid=True, recency=recency, dropout=0.1)  # eval mode: dropout off
    if overrides:  # the same T5 with its own output head
        model.t5 = T5ForConditionalGeneration(T5Config(**{**model.t5.config.to_dict(), **overrides})).eval()
    generator = torch.Generator().manual_seed(0)
    items = torch.randint(0, 11, (3, 6), generator=generator)  # padding item 10 anywhere
    decoder_in = torch.randint(0, VOCAB.size, (3, 6 * 4), generator=generator)
    weights = torch.randn(3, 6, 4, VOCAB.size, generator=generator)  # a loss that reaches every logit
    logits, grads = {}, {}
    for kernel in ("hf", "blocks"):
        model.zero_grad(set_to_none=True)
        logits[kernel] = onepass_logits(model, items, decoder_in, kernel=kernel)  # (B, T, L+1, V)
        (logits[kernel] * weights).sum().backward()
        grads[kernel] = {name: p.grad for name, p in model.named_parameters() if p.grad is not None}
    torch.testing.assert_close(logits["blocks"], logits["hf"], rtol=1e-5, atol=1e-5)
    assert grads["blocks"].keys() == grads["hf"].keys()
    for name, grad in grads["hf"].items():
        torch.testing.assert_close(grads["blocks"][name], grad, rtol=1e-4, atol=1e-5, msg=name)
    with pytest.raises(ValueError, match="kernel"):
        onepass_logits(model, items, decoder_in, kernel="triton")


def prefix_loss(model, prefix: np.ndarray, target: int) -> torch.Tensor:
    """The ordinary example (prefix -> target) alone: causal encoder, HF's own shift-right and loss."""
    hidden = encode_items(model, torch.from_numpy(prefix)[None])  # (1, t+1, D)
    labels = decoder_labels(model.sid_tokens.numpy(), np.array([target]))  # (1, L+1)
    latest = torch.tensor([[len(prefix) - 1]])  # the decoder predicts after the prefix's last item
    bias = cross_attention_bias(model, latest, len(prefix), dtype=hidden.dtype)  # (1, H or 1, 1, t+1)
    outputs = BaseModelOutput(last_hidden_state=hidden)
    return model.t5(encoder_outputs=outputs, attention_mask=bias, labels=labels).loss


@pytest.mark.parametrize(
    ("kernel", "attention"),
    [("hf", "sdpa"), ("hf", "eager"), ("blocks", "sdpa")],
    ids=["hf-sdpa", "hf-eager", "blocks"],
)
@pytest.mark.parametrize("variant", VARIANTS)
def test_one_pass_loss_is_every_prefix_fed_alone(kernel, attention, variant):
    model = tiny(seed=2, max_items=4, **VARIANTS[variant])  # row 0 (7 items) is cut to its last 5
    model.t5.set_attn_implementation(attention)  # the prefixes alone run under it too
    batch = onepass_batch(SEQUENCES, CATALOGUE, max_items=4)
    with torch.no_grad():
        losses = target_losses(model, batch, kernel=kernel)  # (B, T)
        loss = onepass_loss(model, batch, kernel=kernel)
        alone = {}
        for b, sequence in enumerate(SEQUENCES):
            window = sequence[-5:]
            for t in range(len(window) - 1):
                alone[b, t] = prefix_loss(model, window[: t + 1], int(window[t + 1]))
    assert len(alone) == 4 + 1 + 4 == int(batch["attention_mask"].sum())
    for (b, t), expected in alone.items():
        torch.testing.assert_close(losses[b, t], expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(loss, torch.stack(list(alone.values())).mean(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kernel", ["hf", "blocks"])
def test_one_pass_loss_is_exact_in_float64(kernel):
    model = tiny(seed=5, hybrid=True).double()
    batch = onepass_batch(SEQUENCES, CATALOGUE, max_items=8)
    with torch.no_grad():
        loss = onepass_loss(model, batch, kernel=kernel)
        alone = [prefix_loss(model, s[: t + 1], int(s[t + 1])) for s in SEQUENCES for t in range(len(s) - 1)]
    assert loss.dtype == torch.float64
    # T5's layer norm takes its variance in float32, so agreement stops near float32's epsilon
    torch.testing.assert_close(loss, torch.stack(alone).mean(), rtol=1e-7, atol=1e-7)


def brute_force(model, histories, sid_tokens: np.ndarray) -> torch.Tensor:
    """(B, I) every item's summed SID log-probability: HF forward, one user at a time, under the bias of a
    query after the user's last item (padding masked)."""
    items, mask = history_batch(histories, model.num_items, model.config.max_items)
    tokens = torch.from_numpy(sid_tokens)  # (I, L)
    decoder_in = F.pad(tokens[:, :-1], (1, 0), value=PAD)  # (I, L): shift right
    rows = []
    with torch.no_grad():
        hidden = encode_items(model, items)  # (B, S, D)
        for b in range(len(histories)):
            logits = model.t5(
                encoder_outputs=BaseModelOutput(
                    last_hidden_state=hidden[b : b + 1].expand(len(tokens), -1, -1)
                ),
                attention_mask=cross_attention_bias(
                    model, mask[b : b + 1].sum(1, keepdim=True) - 1, items.shape[1], dtype=hidden.dtype
                ).expand(len(tokens), -1, -1, -1),  # (I, H or 1, 1, S)
                decoder_input_ids=decoder_in,
            ).logits  # (I, L, V)
            rows.append(logits.log_softmax(-1).gather(2, tokens.unsqueeze(-1)).squeeze(-1).sum(1))
    return torch.stack(rows)  # (B, I)


@pytest.mark.parametrize("variant", VARIANTS)
def test_beam_search_ranks_like_brute_force(variant):
    model = tiny(seed=3, max_items=4, **VARIANTS[variant])
    histories = [np.array([3, 1, 4, 1, 5, 9]), np.array([2]), np.array([], dtype=np.int64)]
    result = recommend(model, histories, beam_size=12)
    expected = brute_force(model, histories, CATALOGUE)  # (B, 10)
    order = expected.argsort(dim=1, descending=True)
    assert torch.equal(result.item_idx[:, :10], order)  # every real item once, best first
    assert (result.item_idx[:, 10:] == -1).all()
    torch.testing.assert_close(result.log_probs[:, :10], expected.gather(1, order), rtol=1e-5, atol=1e-5)
    small = recommend(model, histories, beam_size=4, top_k=3, exclude=[np.array([order[0, 0]])] * 3)
    assert ((small.item_idx >= 0) & (small.item_idx < 10)).all()
    assert (small.item_idx[0] != order[0, 0]).all()
    torch.testing.assert_close(small.log_probs, expected.gather(1, small.item_idx), rtol=1e-5, atol=1e-5)


def test_inference_reads_like_the_last_training_block():
    """An item's log-probability at inference is the one the last training block gives it."""
    model = tiny(seed=4, max_items=5)
    sequence = np.array([1, 2, 3, 4, 0])
    batch = onepass_batch([sequence], CATALOGUE, max_items=5)
    with torch.no_grad():
        logits = onepass_logits(model, batch["items"], batch["decoder_input_ids"])  # (1, T, L+1, V)
    codes = torch.from_numpy(CATALOGUE[sequence[-1]])  # (L,)
    last_block = logits[0, -1, :-1].log_softmax(-1).gather(1, codes[:, None]).sum()  # (L, V) -> ()
    expected = brute_force(model, [sequence[:-1]], CATALOGUE)  # (1, I)
    torch.testing.assert_close(last_block, expected[0, sequence[-1]], rtol=1e-5, atol=1e-5)
    hidden = encode_items(model, batch["items"])  # (1, T, D)
    state = cross_attention_state(model.t5, hidden, torch.ones(1, hidden.shape[1], dtype=torch.long))
    result = beam_search(model.t5, encoder=state, trie=model.trie(), beam_size=10)
    assert torch.equal(result.item_idx, recommend(model, [sequence[:-1]], beam_size=10).item_idx)


def test_generate_takes_exactly_one_encoder_input():
    model = tiny()
    state = cross_attention_state(model.t5, torch.zeros(2, 3, 32), torch.ones(2, 3, dtype=torch.long))
    trie = model.trie()
    with pytest.raises(ValueError, match="exactly one"):
        beam_search(model.t5, trie=trie, beam_size=2)
    with pytest.raises(ValueError, match="exactly one"):
        beam_search(
            model.t5,
            torch.ones(2, 3, dtype=torch.long),
            torch.ones(2, 3),
            encoder=state,
            trie=trie,
            beam_size=2,
        )
    with pytest.raises(ValueError, match="attention_mask"):
        beam_search(model.t5, torch.ones(2, 3, dtype=torch.long), trie=trie, beam_size=2)
    with pytest.raises(ValueError, match=r"\(B, S\)"):
        cross_attention_state(model.t5, torch.zeros(2, 3, 32), torch.ones(2, 4))


def with_nodes(model):
    """Node vectors start at zero (the plain trie softmax): make them matter."""
    for vectors in model.node_embeddings:
        torch.nn.init.normal_(vectors, std=0.5)
    return model


@pytest.mark.parametrize("kernel, nodes", [("hf", False), ("blocks", False), ("blocks", True)])
def test_trie_softmax_loss_is_the_items_probability_over_the_catalogue(kernel, nodes):
    model = tiny(seed=3, max_items=4, trie_softmax=True, node_embeddings=nodes, **VARIANTS["recency"])
    if nodes:
        with_nodes(model)
    batch = onepass_batch(SEQUENCES, CATALOGUE, max_items=4)
    with torch.no_grad():
        losses = target_losses(model, batch, kernel=kernel)  # (B, T): mean over L codes + EOS
        for b, sequence in enumerate(SEQUENCES):
            window = sequence[-5:]
            for t in range(len(window) - 1):
                every = recommend(model, [window[: t + 1]], beam_size=len(CATALOGUE))  # all 10 items
                # renormalised at each level, the items' probabilities sum to one ...
                torch.testing.assert_close(every.log_probs.exp().sum(), torch.tensor(1.0))
                # ... and a target's loss is its log-probability among them (EOS costs nothing)
                score = every.log_probs[0, every.item_idx[0].tolist().index(int(window[t + 1]))]
                levels = CATALOGUE.shape[1] + 1
                torch.testing.assert_close(losses[b, t] * levels, -score, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kernel", ["hf", "blocks"])
def test_under_the_trie_softmax_the_eos_position_changes_nothing(kernel):
    model = tiny(seed=4, max_items=4, trie_softmax=True, **VARIANTS["recency"])
    losses, grads = [], []
    for eos in (True, False):
        batch = onepass_batch(SEQUENCES, CATALOGUE, max_items=4, eos=eos)
        assert batch["decoder_input_ids"].shape[1] == batch["items"].shape[1] * (3 + eos)
        model.zero_grad()
        loss = onepass_loss(model, batch, kernel=kernel)
        loss.backward()
        losses.append(loss.detach())
        grads.append([p.grad.clone() for p in model.parameters() if p.grad is not None])
    torch.testing.assert_close(losses[0], losses[1], rtol=1e-6, atol=1e-6)
    for with_eos, without in zip(*grads, strict=True):
        torch.testing.assert_close(with_eos, without, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="trie softmax"):
        target_losses(tiny(), onepass_batch(SEQUENCES, CATALOGUE, max_items=4, eos=False))


def test_node_vectors_change_scores_and_must_fit_the_trie():
    plain = tiny(seed=3, max_items=4, trie_softmax=True, **VARIANTS["recency"])
    model = tiny(seed=3, max_items=4, trie_softmax=True, node_embeddings=True, **VARIANTS["recency"])
    counts = [len(tokens) for tokens in model.trie().tokens]
    assert [len(v) for v in model.node_vectors()] == counts  # one vector per node at depths 1..L
    assert counts[-1] == len(CATALOGUE)  # the last level's nodes are the items
    histories = [np.array([3, 1, 4]), np.array([2])]
    before = recommend(model, histories, beam_size=10)  # zero vectors: the plain trie softmax
    torch.testing.assert_close(before.log_probs, recommend(plain, histories, beam_size=10).log_probs)
    with_nodes(model)
    after = recommend(model, histories, beam_size=10)
    assert not torch.allclose(before.log_probs, after.log_probs)
    torch.testing.assert_close(after.log_probs.exp().sum(1), torch.ones(2))
    other = Trie.from_codes(CATALOGUE[:7])
    with pytest.raises(ValueError, match="another catalogue's trie"):
        recommend(model, histories, beam_size=5, trie=other)
    with pytest.raises(ValueError, match="need trie_softmax"):
        OnePassConfig(node_embeddings=True)


@pytest.mark.parametrize("trie_softmax, nodes", [(False, False), (True, False), (True, True)])
def test_a_tiny_model_learns_the_cycle(trie_softmax, nodes):
    dataset = cyclic_dataset(num_users=40)
    vocab = Vocab(level_sizes=(3, 4), user_buckets=0)
    sid_tokens = vocab.sid_tokens(cyclic_sids(dataset).codes)  # (12, 2)
    model = tiny(
        seed=0, vocab=vocab, sid_tokens=sid_tokens, d_model=32, num_layers=1, num_decoder_layers=1,
        trie_softmax=trie_softmax, node_embeddings=nodes,
    )  # fmt: skip
    sequences = [dataset.items[dataset.offsets[u] : dataset.offsets[u + 1]] for u in range(40)]
    batch = onepass_batch(sequences, sid_tokens, max_items=8, eos=not trie_softmax)
    loss, hits = train_on_the_cycle(model, batch, sequences)  # 1.0 hit@1 over seeds 0-3
    assert loss < 0.1 and hits > 0.95


def train_on_the_cycle(model, batch, sequences, steps: int = 300) -> tuple[float, float]:
    """Train ``model`` on the cyclic ``batch``; return the last loss and hit@1 of the next item."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(steps):
        loss = onepass_loss(model, batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    histories = [np.array([s]) for s in range(NUM_ITEMS)] + [s[:-1] for s in sequences]
    truth = np.array([(h[-1] + 1) % NUM_ITEMS for h in histories])
    top = recommend(model, histories, beam_size=4, top_k=1).item_idx[:, 0].numpy()
    return loss.item(), float((top == truth).mean())


def masked_model(seed: int = 5, **sizes):
    model = tiny(seed=seed, objective="masked", trie_softmax=True, **VARIANTS["recency"], **sizes)
    torch.nn.init.normal_(model.masked_recency.weight, std=2.0)  # zeros at first: make it matter
    return model


def test_masks_are_seeded_and_leave_the_sequences_alone():
    rows = [s.copy() for s in SEQUENCES]
    first = masked_batch(rows, CATALOGUE, max_items=4, rate=0.3, rng=np.random.default_rng(7))
    again = masked_batch(rows, CATALOGUE, max_items=4, rate=0.3, rng=np.random.default_rng(7))
    for name, value in first.items():
        assert torch.equal(value, again[name]), name
    assert (first["masked"].sum(1) >= 1).all()  # at least one masked item per sequence
    for row, window in enumerate(s[-5:] for s in SEQUENCES):
        real = first["attention_mask"][row].bool()
        positions = first["positions"][row][real]
        assert torch.equal(first["targets"][row][real], torch.from_numpy(window)[positions])
        assert torch.equal(torch.nonzero(first["masked"][row]).squeeze(1), positions)
        assert int(first["key_mask"][row].sum()) == len(window)
    # the masks are drawn from copies: the next-item examples of the same rows are untouched
    for row, sequence in zip(rows, SEQUENCES, strict=True):
        assert np.array_equal(row, sequence)
    plain = onepass_batch(SEQUENCES, CATALOGUE, max_items=4)
    for name, value in onepass_batch(rows, CATALOGUE, max_items=4).items():
        assert torch.equal(value, plain[name]), name


def test_a_mask_at_the_end_is_what_inference_decodes():
    """A masked model's loss on a sequence whose last item is masked is minus that item's
    log-probability when the history is served (a mask appended, read bidirectionally)."""
    model = masked_model()
    for sequence in SEQUENCES:
        window = sequence[-5:]
        targets = np.array([[window[-1]]])
        batch = {
            "items": torch.from_numpy(window[None]),
            "masked": torch.from_numpy(np.arange(len(window)) == len(window) - 1)[None],
            "key_mask": torch.ones(1, len(window), dtype=torch.long),
            "positions": torch.tensor([[len(window) - 1]]),
            "targets": torch.from_numpy(targets),
            "attention_mask": torch.ones(1, 1, dtype=torch.long),
            **decoder_blocks(targets, CATALOGUE, eos=False),
        }
        with torch.no_grad():
            loss = target_losses(model, batch)[0, 0] * (CATALOGUE.shape[1] + 1)
        every = recommend(model, [window[:-1]], beam_size=len(CATALOGUE))
        torch.testing.assert_close(every.log_probs.exp().sum(), torch.tensor(1.0))
        score = every.log_probs[0, every.item_idx[0].tolist().index(int(window[-1]))]
        torch.testing.assert_close(loss, -score, rtol=1e-5, atol=1e-5)


def test_a_tiny_model_recovers_masked_items_of_a_fixed_pattern():
    dataset = cyclic_dataset(num_users=40)
    vocab = Vocab(level_sizes=(3, 4), user_buckets=0)
    sid_tokens = vocab.sid_tokens(cyclic_sids(dataset).codes)  # (12, 2)
    model = tiny(
        seed=0, vocab=vocab, sid_tokens=sid_tokens, num_layers=1, num_decoder_layers=1, objective="masked",
        trie_softmax=True, recency=True, hybrid=True,
    )  # fmt: skip
    sequences = [dataset.items[dataset.offsets[u] : dataset.offsets[u + 1]] for u in range(40)]
    rng = np.random.default_rng(0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(300):
        batch = masked_batch(sequences, sid_tokens, max_items=8, rate=0.3, rng=rng, eos=False)
        loss = onepass_loss(model, batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():  # masks anywhere in fresh sequences: the neighbours give the item away
        fresh = masked_batch(sequences, sid_tokens, max_items=8, rate=0.3, rng=rng, eos=False)
        assert onepass_loss(model, fresh).item() < 0.1
    histories = [s[:-1] for s in sequences]
    top = recommend(model, histories, beam_size=4, top_k=1).item_idx[:, 0].numpy()
    assert (top == np.array([s[-1] for s in sequences])).mean() > 0.95


def test_a_grown_catalogue_keeps_what_old_items_learned():
    model = tiny(seed=3, max_items=4, trie_softmax=True, node_embeddings=True, **VARIANTS["hybrid"])
    with_nodes(model)
    known = {tuple(row) for row in CATALOGUE.tolist()}
    new = np.array([row for row in EVERY_SID.tolist() if tuple(row) not in known][:3])  # (3, L)
    grown = model.extended(np.concatenate([CATALOGUE, new]))
    assert grown.num_items == len(CATALOGUE) + 3
    torch.testing.assert_close(grown.item_embedding.weight[:10], model.item_embedding.weight[:10])
    assert not grown.item_embedding.weight[10:].any()  # new items and the padding row: nothing learned
    old, now = model.trie().item_paths(np.arange(10)), grown.trie().item_paths(np.arange(10))
    for depth in range(CATALOGUE.shape[1]):
        before = model.node_embeddings[depth][torch.from_numpy(old[:, depth + 1])]
        torch.testing.assert_close(grown.node_embeddings[depth][torch.from_numpy(now[:, depth + 1])], before)
    histories = [np.array([3, 1, 4]), np.array([2])]
    every = recommend(grown, histories, beam_size=13)
    assert sorted(every.item_idx[0].tolist()) == list(range(13))  # the new items can be generated
    torch.testing.assert_close(every.log_probs.exp().sum(1), torch.ones(2))
    same = model.extended(CATALOGUE)  # nothing new: the same model
    torch.testing.assert_close(
        recommend(same, histories, beam_size=10).log_probs,
        recommend(model, histories, beam_size=10).log_probs,
    )
    changed = CATALOGUE.copy()
    changed[[0, 1]] = changed[[1, 0]]
    with pytest.raises(ValueError, match="changes existing items' SIDs"):
        model.extended(changed)


def test_the_item_loss_is_sasrecs_cross_entropy_on_the_encoder_states():
    from tidrec.models.tiger.onepass import item_losses

    model = tiny(hybrid=True, trie_softmax=True, item_loss=0.5)
    batch = onepass_batch(SEQUENCES, CATALOGUE, max_items=8, eos=False)
    encoded = encode_items(model, batch["items"])  # (B, T, D)
    targets = batch["targets"]  # (B, T), -1 on padding
    table = model.item_embedding.weight[: model.num_items]  # (I, D)
    for row, col in zip(*np.nonzero(targets.numpy() >= 0), strict=True):
        expected = F.cross_entropy(encoded[row, col] @ table.T / 32**0.5, targets[row, col])  # D = 32
        torch.testing.assert_close(item_losses(model, encoded, targets)[row, col], expected)
    assert (item_losses(model, encoded, targets)[targets < 0] == 0).all()
    without = tiny(hybrid=True, trie_softmax=True)  # same seed, same weights, no item loss
    extra = target_losses(model, batch) - target_losses(without, batch)
    torch.testing.assert_close(extra, 0.5 * item_losses(model, encoded, targets))
    with pytest.raises(ValueError, match="needs item_id_embedding"):
        OnePassConfig(item_loss=1.0)


def test_the_item_score_ranks_by_the_sid_plus_the_weighted_item_head():
    from tidrec.models.tiger.onepass import item_scores

    model = tiny(seed=3, max_items=4, hybrid=True, trie_softmax=True, item_loss=0.1, item_score=0.7)
    histories = [np.array([3, 1, 4, 1, 5, 9]), np.array([2]), np.array([0, 7])]
    items, mask = history_batch(histories, model.num_items, 4)
    latest = encode_items(model, items)[torch.arange(3), mask.sum(1) - 1]  # (B, D)
    head = item_scores(model, latest).log_softmax(-1)  # (B, I)
    sid = recommend(model, histories, beam_size=12, item_score=0.0)  # every item: ranked by its SID
    sid_log_probs = torch.full_like(head, float("-inf")).scatter(
        1, sid.item_idx[:, :10], sid.log_probs[:, :10]
    )
    expected = sid_log_probs + 0.7 * head  # (B, I)
    result = recommend(model, histories, beam_size=12)  # the config's weight
    order = expected.argsort(dim=1, descending=True)
    assert torch.equal(result.item_idx[:, :10], order) and result.certified.all()
    torch.testing.assert_close(result.log_probs[:, :10], expected.gather(1, order), rtol=1e-5, atol=1e-5)
    assert not torch.equal(order, sid.item_idx[:, :10])  # the head changed some ranking
    with pytest.raises(ValueError, match="needs item_loss"):
        OnePassConfig(item_id_embedding=True, item_score=1.0)
    with pytest.raises(ValueError, match="needs a model trained with item_loss"):
        recommend(tiny(hybrid=True), histories, beam_size=4, item_score=1.0)


def test_a_tiny_model_learns_the_cycle_with_the_item_loss():
    dataset = cyclic_dataset(num_users=40)
    vocab = Vocab(level_sizes=(3, 4), user_buckets=0)
    sid_tokens = vocab.sid_tokens(cyclic_sids(dataset).codes)  # (12, 2)
    model = tiny(
        seed=0, vocab=vocab, sid_tokens=sid_tokens, d_model=32, num_layers=1, num_decoder_layers=1,
        trie_softmax=True, hybrid=True, item_loss=1.0,
    )  # fmt: skip
    sequences = [dataset.items[dataset.offsets[u] : dataset.offsets[u + 1]] for u in range(40)]
    batch = onepass_batch(sequences, sid_tokens, max_items=8, eos=False)
    _, hits = train_on_the_cycle(model, batch, sequences)
    assert hits > 0.95


def test_the_words_dropout_kernel_is_used_and_still_learns_the_cycle():
    from tidrec.dropout import Dropout

    with pytest.raises(ValueError, match="dropout_kernel must be one of"):
        OnePassConfig(dropout_kernel="philox")
    dataset = cyclic_dataset(num_users=40)
    vocab = Vocab(level_sizes=(3, 4), user_buckets=0)
    sid_tokens = vocab.sid_tokens(cyclic_sids(dataset).codes)  # (12, 2)
    model = tiny(
        seed=0, vocab=vocab, sid_tokens=sid_tokens, num_layers=1, num_decoder_layers=1, trie_softmax=True,
        dropout=0.1, dropout_kernel="words",
    )  # fmt: skip
    dropouts = [m for m in model.modules() if isinstance(m, torch.nn.Dropout)]
    assert dropouts and all(isinstance(m, Dropout) and m.kernel == "words" and m.p == 0.1 for m in dropouts)
    sequences = [dataset.items[dataset.offsets[u] : dataset.offsets[u + 1]] for u in range(40)]
    batch = onepass_batch(sequences, sid_tokens, max_items=8, eos=False)
    loss, hits = train_on_the_cycle(model, batch, sequences)
    assert loss < 0.2 and hits > 0.95
