"""Beam search against brute force on a tiny random T5, and the decoder step against HF's forward;
the certificate of exactness and the exact decoder against brute force."""

import functools

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers import T5Config, T5ForConditionalGeneration

from tidrec.generate import beam_search, decoder_step, encode, exact_search, self_attention_bias
from tidrec.vocab import Vocab
from trie import Trie

VOCAB = Vocab((4, 3, 2), user_buckets=5)


def tiny_t5(seed: int = 0, **overrides) -> T5ForConditionalGeneration:
    torch.manual_seed(seed)
    config = dict(
        vocab_size=VOCAB.size,
        d_model=32,
        d_kv=8,
        num_heads=2,
        d_ff=64,
        num_layers=2,
        num_decoder_layers=2,
        dropout_rate=0.1,
        feed_forward_proj="relu",
        pad_token_id=0,
        eos_token_id=1,
        decoder_start_token_id=0,
    )
    config.update(overrides)
    return T5ForConditionalGeneration(T5Config(**config)).eval()


@pytest.fixture(scope="module")
def catalogue() -> np.ndarray:
    """(10, 3) SID tokens: 10 of the 24 possible code tuples."""
    rng = np.random.default_rng(0)
    every = np.array([(a, b, c) for a in range(4) for b in range(3) for c in range(2)])
    return VOCAB.sid_tokens(every[rng.choice(len(every), 10, replace=False)])


@pytest.fixture(scope="module")
def encoder_batch():
    generator = torch.Generator().manual_seed(1)
    input_ids = torch.randint(2, VOCAB.size, (3, 7), generator=generator)
    attention_mask = torch.ones_like(input_ids)
    attention_mask[0, 5:] = 0  # a padded user
    input_ids[0, 5:] = 0
    return input_ids, attention_mask


def brute_force(model, input_ids, attention_mask, tokens):
    """(B, I) every item's summed token log-probability from a teacher-forced HF forward."""
    items = torch.from_numpy(tokens)
    decoder_in = torch.cat([torch.zeros(len(items), 1, dtype=torch.long), items[:, :-1]], 1)  # shift right
    rows = []
    with torch.no_grad():
        for b in range(len(input_ids)):
            logits = model(
                input_ids=input_ids[b : b + 1].expand(len(items), -1),
                attention_mask=attention_mask[b : b + 1].expand(len(items), -1),
                decoder_input_ids=decoder_in,
            ).logits
            rows.append(logits.log_softmax(-1).gather(2, items.unsqueeze(-1)).squeeze(-1).sum(1))
    return torch.stack(rows)


@pytest.mark.parametrize(
    "overrides",
    [{}, {"tie_word_embeddings": False}, {"feed_forward_proj": "gated-gelu"}],
    ids=["tied-scaled", "untied", "gated"],
)
def test_decoder_step_matches_hf_forward(overrides, encoder_batch):
    model = tiny_t5(**overrides)
    input_ids, attention_mask = encoder_batch
    decoder_in = torch.randint(2, VOCAB.size, (3, 2, 4))  # (B, K, T): two beams per user
    decoder_in[:, :, 0] = 0
    with torch.no_grad():
        encoder = encode(model, input_ids, attention_mask)
        bias = self_attention_bias(model, 4, input_ids.device)
        cache, steps = None, []
        for t in range(4):
            logits, cache = decoder_step(model, decoder_in[:, :, t], encoder, cache, bias)  # (B, K, V)
            steps.append(logits)
        ours = torch.stack(steps, 2)  # (B, K, T, V)
        hf = model(
            input_ids=input_ids.repeat_interleave(2, 0),
            attention_mask=attention_mask.repeat_interleave(2, 0),
            decoder_input_ids=decoder_in.view(6, 4),
        ).logits.view(3, 2, 4, -1)
    torch.testing.assert_close(ours, hf, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kernel", ["torch", "gather"])
def test_large_beam_returns_the_exact_ranking_of_all_items(kernel, catalogue, encoder_batch):
    model = tiny_t5()
    input_ids, attention_mask = encoder_batch
    result = beam_search(
        model, input_ids, attention_mask, trie=Trie.from_codes(catalogue), beam_size=12, kernel=kernel
    )
    expected = brute_force(model, input_ids, attention_mask, catalogue)  # (B, 10)
    order = expected.argsort(dim=1, descending=True)
    assert result.item_idx.shape == (3, 12)
    assert torch.equal(result.item_idx[:, :10], order)
    assert (result.item_idx[:, 10:] == -1).all() and torch.isinf(result.log_probs[:, 10:]).all()
    torch.testing.assert_close(result.log_probs[:, :10], expected.gather(1, order), atol=1e-5, rtol=1e-5)


def test_small_beam_gives_real_distinct_items_best_first(catalogue, encoder_batch):
    model = tiny_t5(seed=3)
    input_ids, attention_mask = encoder_batch
    trie = Trie.from_codes(catalogue)
    result = beam_search(model, input_ids, attention_mask, trie=trie, beam_size=4, top_k=3, kernel="gather")
    expected = brute_force(model, input_ids, attention_mask, catalogue)
    assert result.item_idx.shape == (3, 3)
    for row, scores in zip(result.item_idx, result.log_probs, strict=True):
        assert ((row >= 0) & (row < 10)).all() and len(set(row.tolist())) == 3
        assert (scores[:-1] >= scores[1:]).all()
    # the reported score is the item's true log-likelihood
    torch.testing.assert_close(result.log_probs, expected.gather(1, result.item_idx), atol=1e-5, rtol=1e-5)
    # both kernels pick the same beams
    ref = beam_search(model, input_ids, attention_mask, trie=trie, beam_size=4, top_k=3, kernel="torch")
    assert torch.equal(ref.item_idx, result.item_idx)


@pytest.mark.parametrize("kernel", ["torch", "gather"])
def test_excluded_items_never_come_back(kernel, catalogue, encoder_batch):
    model = tiny_t5()
    input_ids, attention_mask = encoder_batch
    exclude = [np.array([3, 7]), np.array([], dtype=np.int64), np.array([0, 1, 2, 3, 4, 5, 6, 7, 8])]
    result = beam_search(
        model,
        input_ids,
        attention_mask,
        trie=Trie.from_codes(catalogue),
        beam_size=12,
        exclude=exclude,
        kernel=kernel,
    )
    expected = brute_force(model, input_ids, attention_mask, catalogue)
    for b, banned in enumerate(exclude):
        keep = [i for i in expected[b].argsort(descending=True).tolist() if i not in set(banned.tolist())]
        got = result.item_idx[b]
        assert got[: len(keep)].tolist() == keep
        assert (got[len(keep) :] == -1).all()


EVERY_SID = VOCAB.sid_tokens(np.array([(a, b, c) for a in range(4) for b in range(3) for c in range(2)]))
"""(24, 3) every code tuple of VOCAB: items 0-5 share first code 0, items 0-1 share (0, 0), ..."""


def check_exact_exclusion(model, input_ids, attention_mask, codes, exclude, *, beam_size, top_k, kernel):
    """Beam search with ``exclude`` on ``codes`` is beam search without it on each user's allowed items."""
    result = beam_search(
        model,
        input_ids,
        attention_mask,
        trie=Trie.from_codes(codes),
        beam_size=beam_size,
        top_k=top_k,
        exclude=exclude,
        kernel=kernel,
    )
    log_likelihood = brute_force(model, input_ids, attention_mask, codes)  # (B, I)
    for b, banned in enumerate(exclude):
        allowed = np.setdiff1d(np.arange(len(codes)), banned)
        got, scores = result.item_idx[b], result.log_probs[b]
        full = min(top_k, len(allowed))
        assert (got[:full] >= 0).all() and (got[full:] == -1).all()  # full unless too few are allowed
        assert not set(got[:full].tolist()) & set(banned.tolist())
        torch.testing.assert_close(scores[:full], log_likelihood[b, got[:full]], atol=1e-5, rtol=1e-5)
        if len(allowed):  # the same beams as a search over only this user's allowed items
            alone = beam_search(
                model,
                input_ids[b : b + 1],
                attention_mask[b : b + 1],
                trie=Trie.from_codes(codes[allowed]),
                beam_size=beam_size,
                top_k=top_k,
                kernel=kernel,
            )
            expected = np.where(alone.item_idx[0] >= 0, allowed[alone.item_idx[0].clamp(min=0)], -1)
            # the same items in the same order, except that two items whose scores tie to float noise
            # may come in either order (batched and single-user matmuls round differently)
            for mine, theirs in zip(got.tolist(), expected.tolist(), strict=True):
                gap = abs(log_likelihood[b, mine] - log_likelihood[b, theirs])
                tie = min(mine, theirs) >= 0 and gap < 1e-5
                assert mine == theirs or tie
    return result


@pytest.mark.parametrize("kernel", ["torch", "gather"])
def test_small_beam_skips_dead_prefixes_and_fills_the_list(kernel, encoder_batch):
    model = tiny_t5(seed=2)
    input_ids, attention_mask = encoder_batch
    exclude = [
        np.arange(0, 18),  # every item with first code 0, 1 or 2: only 6 items are left
        np.array([0, 1, 6, 7, 12, 13, 18, 19, 5, 5]),  # every (x, 0) prefix, item 5 twice
        np.arange(0, 22),  # 2 items left for a list of 4
    ]
    result = check_exact_exclusion(
        model, input_ids, attention_mask, EVERY_SID, exclude, beam_size=4, top_k=4, kernel=kernel
    )
    assert (result.item_idx[0] >= 18).all()  # user 0 only has items 18..23 left
    assert result.item_idx[2].tolist()[2:] == [-1, -1] and set(result.item_idx[2, :2].tolist()) == {22, 23}


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    num_items=st.integers(1, 24),
    beam_size=st.integers(1, 6),
    kernel=st.sampled_from(["torch", "gather"]),
)
def test_exact_exclusion_on_random_catalogues(seed, num_items, beam_size, kernel):
    rng = np.random.default_rng(seed)
    codes = EVERY_SID[np.sort(rng.choice(24, num_items, replace=False))]
    exclude = [rng.choice(num_items, rng.integers(0, num_items + 1)) for _ in range(3)]  # repeats allowed
    input_ids = torch.from_numpy(rng.integers(2, VOCAB.size, (3, 5)))
    check_exact_exclusion(
        _property_model(),
        input_ids,
        torch.ones_like(input_ids),
        codes,
        exclude,
        beam_size=beam_size,
        top_k=int(rng.integers(1, beam_size + 1)),
        kernel=kernel,
    )


@functools.cache
def _property_model() -> T5ForConditionalGeneration:
    return tiny_t5(seed=4)


def test_bad_arguments_and_training_mode_restored(catalogue, encoder_batch):
    model = tiny_t5().train()
    input_ids, attention_mask = encoder_batch
    trie = Trie.from_codes(catalogue)
    first = beam_search(model, input_ids, attention_mask, trie=trie, beam_size=3)
    assert model.training  # the caller's mode is restored
    again = beam_search(model, input_ids, attention_mask, trie=trie, beam_size=3)
    assert torch.equal(first.item_idx, again.item_idx)  # no dropout inside
    with pytest.raises(ValueError, match="top_k"):
        beam_search(model, input_ids, attention_mask, trie=trie, beam_size=3, top_k=4)
    with pytest.raises(ValueError, match="fixed-length"):
        beam_search(model, input_ids, attention_mask, trie=Trie.from_sequences([[2], [2, 7]]), beam_size=3)
    with pytest.raises(ValueError, match="outside"):
        beam_search(model, input_ids, attention_mask, trie=trie, beam_size=3, exclude=[np.array([10])] * 3)


def best_allowed(log_likelihood: torch.Tensor, banned: np.ndarray, k: int) -> torch.Tensor:
    """The k best scores among a user's allowed items, best first (fewer if fewer are allowed)."""
    allowed = np.setdiff1d(np.arange(len(log_likelihood)), banned)
    return log_likelihood[allowed].sort(descending=True).values[:k]


@functools.cache
def _random_model(seed: int) -> T5ForConditionalGeneration:
    """Untied: the tied output layer's scaling leaves a random model's next-token distributions so
    flat that a narrow beam can certify nothing."""
    return tiny_t5(seed=seed, tie_word_embeddings=False)


def _random_case(seed: int, num_items: int, excluded: bool):
    rng = np.random.default_rng(seed)
    codes = EVERY_SID[np.sort(rng.choice(24, num_items, replace=False))]
    input_ids = torch.from_numpy(rng.integers(2, VOCAB.size, (4, 5)))
    exclude = [rng.choice(num_items, rng.integers(0, num_items + 1)) for _ in range(4)] if excluded else None
    return _random_model(seed % 3), codes, input_ids, exclude


def _random_prior(seed: int, num_items: int, scale: float) -> torch.Tensor:
    """(4, I) log-scores <= 0, as a weighted item head's log-probabilities would be."""
    return -torch.from_numpy(np.random.default_rng(seed + 1).exponential(scale, (4, num_items))).float()


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    num_items=st.integers(1, 24),
    beam_size=st.integers(1, 8),
    top_k=st.integers(1, 3),
    kernel=st.sampled_from(["torch", "gather"]),
    excluded=st.booleans(),
    prior_scale=st.sampled_from([0.0, 0.1, 1.0, 10.0]),
)
def test_a_certified_list_is_the_exact_top_k(
    seed, num_items, beam_size, top_k, kernel, excluded, prior_scale
):
    """With an item prior (scale > 0) the exact top-k is that of the SID log-likelihood plus the prior."""
    model, codes, input_ids, exclude = _random_case(seed, num_items, excluded)
    mask = torch.ones_like(input_ids)
    prior = _random_prior(seed, num_items, prior_scale) if prior_scale else None
    top_k = min(top_k, beam_size)
    result = beam_search(
        model, input_ids, mask, trie=Trie.from_codes(codes), beam_size=beam_size, top_k=top_k,
        exclude=exclude, kernel=kernel, item_prior=prior,
    )  # fmt: skip
    log_likelihood = brute_force(model, input_ids, mask, codes) + (0.0 if prior is None else prior)  # (B, I)
    for b in torch.nonzero(result.certified).squeeze(1).tolist():
        best = best_allowed(log_likelihood[b], exclude[b] if exclude else np.array([], int), top_k)
        torch.testing.assert_close(result.log_probs[b, : len(best)], best, atol=1e-5, rtol=1e-5)
        assert (result.item_idx[b, len(best) :] == -1).all()


def test_a_prior_low_for_every_item_costs_no_certainty():
    """A pruned prefix's bound adds the best prior below it, not 0: a constant prior of -5 shifts
    every score and every bound alike, so the same lists are certified as without it."""
    certified = []
    for seed in range(6):
        model, codes, input_ids, _ = _random_case(seed, 24, excluded=False)
        mask, trie = torch.ones_like(input_ids), Trie.from_codes(codes)
        plain = beam_search(model, input_ids, mask, trie=trie, beam_size=4, top_k=2)
        shifted = beam_search(
            model, input_ids, mask, trie=trie, beam_size=4, top_k=2, item_prior=torch.full((4, 24), -5.0)
        )
        assert torch.equal(shifted.item_idx, plain.item_idx)
        torch.testing.assert_close(shifted.log_probs, plain.log_probs - 5.0)
        assert torch.equal(shifted.certified, plain.certified)
        certified.append(shifted.certified)
    assert torch.cat(certified).any()  # some lists are certified under the prior, so the check bites


def test_narrow_beams_are_sometimes_uncertified_and_wide_ones_never():
    certified = []
    for seed in range(6):
        model, codes, input_ids, _ = _random_case(seed, 24, excluded=False)
        mask = torch.ones_like(input_ids)
        trie = Trie.from_codes(codes)
        certified.append(beam_search(model, input_ids, mask, trie=trie, beam_size=4, top_k=1).certified)
        assert beam_search(model, input_ids, mask, trie=trie, beam_size=24, top_k=3).certified.all()
    share = torch.cat(certified).float().mean()
    assert 0 < share < 1  # 4 beams over 24 items are provably exact for some users, not for all


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    num_items=st.integers(1, 24),
    top_k=st.integers(1, 5),
    kernel=st.sampled_from(["torch", "gather"]),
    excluded=st.booleans(),
)
def test_exact_search_is_brute_force(seed, num_items, top_k, kernel, excluded):
    model, codes, input_ids, exclude = _random_case(seed, num_items, excluded)
    mask = torch.ones_like(input_ids)
    result = exact_search(
        model, input_ids, mask, trie=Trie.from_codes(codes), top_k=top_k, beam_size=1, max_beam=32,
        exclude=exclude, kernel=kernel,
    )  # fmt: skip
    assert result.certified.all()  # 32 beams prune nothing among 24 items
    log_likelihood = brute_force(model, input_ids, mask, codes)  # (B, I)
    for b in range(len(input_ids)):
        banned = exclude[b] if exclude else np.array([], int)
        allowed = np.setdiff1d(np.arange(num_items), banned)
        order = allowed[log_likelihood[b, allowed].argsort(descending=True).numpy()][:top_k]
        got = result.item_idx[b]
        assert got[: len(order)].tolist() == order.tolist() and (got[len(order) :] == -1).all()
        assert 1 <= result.beams[b] <= 32


def test_exact_search_widens_only_for_users_it_cannot_certify(catalogue, encoder_batch):
    model = tiny_t5(seed=3)
    input_ids, attention_mask = encoder_batch
    trie = Trie.from_codes(catalogue)
    first = beam_search(model, input_ids, attention_mask, trie=trie, beam_size=1)
    result = exact_search(model, input_ids, attention_mask, trie=trie, top_k=1, max_beam=16)
    assert torch.equal(result.beams == 1, first.certified)  # certified users keep the first search
    capped = exact_search(model, input_ids, attention_mask, trie=trie, top_k=1, max_beam=1)
    assert torch.equal(capped.certified, first.certified) and torch.equal(capped.item_idx, first.item_idx)
    with pytest.raises(ValueError, match="max_beam"):
        exact_search(model, input_ids, attention_mask, trie=trie, top_k=4, max_beam=2)


@pytest.mark.parametrize("kernel", ["torch", "gather"])
def test_trie_softmax_gives_a_distribution_over_the_catalogue(kernel, catalogue, encoder_batch):
    model = tiny_t5(seed=5, tie_word_embeddings=False)
    input_ids, attention_mask = encoder_batch
    trie = Trie.from_codes(catalogue)
    everything = beam_search(
        model, input_ids, attention_mask, trie=trie, beam_size=10, kernel=kernel, trie_softmax=True
    )
    # every item scored, renormalised at each level over the codes the trie allows: they sum to one
    torch.testing.assert_close(everything.log_probs.exp().sum(1), torch.ones(3), atol=1e-5, rtol=1e-5)
    full = brute_force(model, input_ids, attention_mask, catalogue)  # (B, I) whole-vocabulary scores
    assert (full.exp().sum(1) < 0.999).all()  # the whole-vocabulary model leaks mass off the trie
    # the same order as scoring each item by hand: log-softmax over the allowed children at each level
    expected = torch.stack(
        [trie_softmax_scores(model, input_ids[b], attention_mask[b], trie, catalogue) for b in range(3)]
    )
    torch.testing.assert_close(
        everything.log_probs, expected.sort(dim=1, descending=True).values, atol=1e-5, rtol=1e-5
    )
    narrow = beam_search(
        model, input_ids, attention_mask, trie=trie, beam_size=3, top_k=2, kernel=kernel, trie_softmax=True
    )
    for b in torch.nonzero(narrow.certified).squeeze(1).tolist():  # the certificate still holds
        torch.testing.assert_close(narrow.log_probs[b], expected[b].sort(descending=True).values[:2])


def trie_softmax_scores(model, input_ids, attention_mask, trie, codes) -> torch.Tensor:
    """(I,) each item's summed log-probability, each level normalised over the trie's allowed codes."""
    items = torch.from_numpy(codes)
    decoder_in = torch.cat([torch.zeros(len(items), 1, dtype=torch.long), items[:, :-1]], 1)
    with torch.no_grad():
        logits = model(
            input_ids=input_ids[None].expand(len(items), -1),
            attention_mask=attention_mask[None].expand(len(items), -1),
            decoder_input_ids=decoder_in,
        ).logits  # (I, L, V)
    scores = torch.zeros(len(items))
    for item, sid in enumerate(codes.tolist()):
        for depth in range(len(sid)):
            allowed = torch.from_numpy(trie.allowed_tokens(sid[:depth]))
            scores[item] += logits[item, depth, allowed].log_softmax(0)[
                (allowed == sid[depth]).nonzero()[0, 0]
            ]
    return scores


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), num_items=st.integers(1, 24), top_k=st.integers(1, 5))
def test_exact_search_under_an_item_prior_ranks_every_item_by_the_sum(seed, num_items, top_k):
    model, codes, input_ids, _ = _random_case(seed, num_items, excluded=False)
    mask, prior = torch.ones_like(input_ids), _random_prior(seed, num_items, 3.0)
    result = exact_search(
        model, input_ids, mask, trie=Trie.from_codes(codes), top_k=top_k, beam_size=1, max_beam=32,
        item_prior=prior,
    )  # fmt: skip
    assert result.certified.all()
    total = brute_force(model, input_ids, mask, codes) + prior  # (B, I)
    order = total.argsort(dim=1, descending=True)[:, : min(top_k, num_items)]
    assert torch.equal(result.item_idx[:, : order.shape[1]], order)


def test_a_narrow_beam_reorders_its_items_by_the_prior_and_a_bad_prior_is_refused(catalogue, encoder_batch):
    model = tiny_t5()
    input_ids, mask = encoder_batch
    trie = Trie.from_codes(catalogue)
    plain = beam_search(model, input_ids, mask, trie=trie, beam_size=4)
    prior = torch.zeros(len(input_ids), len(catalogue))
    prior.scatter_(1, plain.item_idx[:, :1], -50.0)  # the SID's favourite is pushed to the end
    moved = beam_search(model, input_ids, mask, trie=trie, beam_size=4, item_prior=prior)
    assert torch.equal(moved.item_idx[:, :3], plain.item_idx[:, 1:]) and torch.equal(
        moved.item_idx[:, 3], plain.item_idx[:, 0]
    )
    with pytest.raises(ValueError, match="<= 0"):
        beam_search(model, input_ids, mask, trie=trie, beam_size=4, item_prior=prior + 1.0)
    with pytest.raises(ValueError, match="item_prior must be"):
        beam_search(model, input_ids, mask, trie=trie, beam_size=4, item_prior=prior[:, :-1])
