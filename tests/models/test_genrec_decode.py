"""Title beam search against brute force on a tiny random LLaMA: exact at full width, certified lists
exact at any width, exclusions, left padding and batching, and free greedy generation."""

import numpy as np
import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from tidrec.models.genrec import decode
from tidrec.models.genrec.decode import generate_free, prompt_positions, score_titles, title_beam_search
from trie import Trie

PAD, BOS, EOS, VOCAB = 0, 1, 2, 40
PROMPT_LENGTHS = (4, 9, 6, 12)


def tiny_llama(seed: int = 0) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        pad_token_id=PAD,
        bos_token_id=BOS,
        eos_token_id=EOS,
        initializer_range=0.3,  # peaked next-token distributions: items far apart, no near-ties
    )
    return LlamaForCausalLM(config).eval()


def random_titles(count: int, seed: int, max_len: int = 6) -> list[list[int]]:
    """``count`` distinct sequences of 1..max_len tokens (never EOS), each followed by EOS."""
    rng = np.random.default_rng(seed)
    titles: dict[tuple[int, ...], None] = {}
    while len(titles) < count:
        body = rng.integers(EOS + 1, VOCAB, rng.integers(1, max_len + 1))
        titles[(*body.tolist(), EOS)] = None
    return [list(t) for t in titles]


def left_pad(prompts: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    return decode.left_pad(prompts, PAD)


@pytest.fixture(scope="module")
def model() -> LlamaForCausalLM:
    return tiny_llama()


@pytest.fixture(scope="module")
def prompts() -> list[list[int]]:
    rng = np.random.default_rng(7)
    return [rng.integers(EOS + 1, VOCAB, n).tolist() for n in PROMPT_LENGTHS]


@pytest.fixture(scope="module", params=[(0, 20), (1, 45), (2, 60)], ids=["20-items", "45-items", "60-items"])
def catalogue(request, model, prompts) -> tuple[list[list[int]], Trie, torch.Tensor]:
    """Titles, their trie, and the brute-force ``(B, I)`` log-likelihoods after each prompt."""
    seed, count = request.param
    titles = random_titles(count, seed)
    ids, mask = left_pad(prompts)
    return titles, Trie.from_sequences(titles), score_titles(model, ids, mask, titles)


def brute_top(log_probs: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    scores, items = log_probs.topk(k, dim=1)
    return items, scores


@pytest.mark.parametrize("kernel", ["gather", "torch"])
def test_full_width_equals_brute_force(model, prompts, catalogue, kernel):
    titles, trie, brute = catalogue
    ids, mask = left_pad(prompts)
    result = title_beam_search(model, ids, mask, trie=trie, beam_size=len(titles), top_k=5, kernel=kernel)
    items, scores = brute_top(brute, 5)
    assert torch.equal(result.item_idx, items)
    torch.testing.assert_close(result.log_probs, scores, atol=1e-4, rtol=0)
    assert bool(result.certified.all())
    assert result.beams.tolist() == [len(titles)] * len(prompts)


def test_exclusion_equals_brute_force_without_those_items(model, prompts, catalogue):
    titles, trie, brute = catalogue
    ids, mask = left_pad(prompts)
    rng = np.random.default_rng(3)
    # each user excludes its two best items and a few random ones
    exclude = [
        np.concatenate([brute[u].topk(2).indices.numpy(), rng.choice(len(titles), 4)])
        for u in range(len(prompts))
    ]
    result = title_beam_search(model, ids, mask, trie=trie, beam_size=len(titles), top_k=5, exclude=exclude)
    allowed = brute.clone()
    for user, items in enumerate(exclude):
        allowed[user, items] = float("-inf")
        assert not set(result.item_idx[user].tolist()) & set(items.tolist())
    items, scores = brute_top(allowed, 5)
    assert torch.equal(result.item_idx, items)
    torch.testing.assert_close(result.log_probs, scores, atol=1e-4, rtol=0)


def reference_beam_search(
    model: LlamaForCausalLM, prompt: list[int], trie: Trie, beam_size: int, top_k: int
) -> list[tuple[int, float]]:
    """The same search written plainly for one unpadded prompt: a full forward per beam, every child."""
    alive: list[tuple[tuple[int, ...], float]] = [((), 0.0)]
    finished: list[tuple[int, float]] = []
    for _ in range(trie.depth):
        candidates = []
        for prefix, score in alive:
            with torch.no_grad():
                logits = model(input_ids=torch.tensor([[*prompt, *prefix]])).logits[0, -1]
            log_probs = torch.log_softmax(logits, dim=-1)
            candidates += [((*prefix, t), score + float(log_probs[t])) for t in trie.allowed_tokens(prefix)]
        finished += [(trie.item_of(seq), score) for seq, score in candidates if trie.item_of(seq) >= 0]
        finished = sorted(finished, key=lambda f: -f[1])[:top_k]
        alive = sorted([c for c in candidates if trie.item_of(c[0]) < 0], key=lambda c: -c[1])[:beam_size]
        if not alive or (len(finished) == top_k and finished[-1][1] >= alive[0][1]):
            break
    return finished


@pytest.mark.parametrize("beam_size", [1, 2, 3])
def test_narrow_beam_equals_reference_search(model, prompts, catalogue, beam_size):
    _, trie, brute = catalogue
    ids, mask = left_pad(prompts)
    result = title_beam_search(model, ids, mask, trie=trie, beam_size=beam_size, top_k=3)
    for user, prompt in enumerate(prompts):
        expected = reference_beam_search(model, prompt, trie, beam_size, top_k=3)
        count = len(expected)
        assert result.item_idx[user].tolist() == [item for item, _ in expected] + [-1] * (3 - count)
        torch.testing.assert_close(
            result.log_probs[user, :count], torch.tensor([score for _, score in expected]), atol=1e-4, rtol=0
        )
        # real items, once each, with their true log-likelihoods
        found = result.item_idx[user, :count].tolist()
        assert len(set(found)) == count and min(found, default=0) >= 0
        torch.testing.assert_close(result.log_probs[user, :count], brute[user, found], atol=1e-4, rtol=0)


def fit_preferences(model: LlamaForCausalLM, prompts: list[list[int]], titles: list[list[int]], steps: int):
    """A few Adam steps teaching each prompt its own favourite titles (a Dirichlet preference each),
    so the model concentrates on a few catalogue items per user as a trained recommender does."""
    rng = np.random.default_rng(0)
    preference = rng.dirichlet(np.full(len(titles), 0.3), size=len(prompts))  # (B, I)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(steps):
        picks = [rng.choice(len(titles), 4, p=preference[u]) for u in range(len(prompts))]  # (B, 4)
        pairs = [(prompt, titles[j]) for prompt, chosen in zip(prompts, picks, strict=True) for j in chosen]
        width = max(len(p) + len(t) for p, t in pairs)
        ids = torch.full((len(pairs), width), PAD)
        labels = torch.full((len(pairs), width), -100)  # only the title tokens are learned
        for row, (prompt, title) in enumerate(pairs):
            ids[row, : len(prompt) + len(title)] = torch.tensor(prompt + title)
            labels[row, len(prompt) : len(prompt) + len(title)] = torch.tensor(title)
        loss = model(input_ids=ids, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


def test_certified_lists_are_exact(prompts):
    """On a briefly trained model narrow beams certify many lists; every certified list is brute force's."""
    titles = random_titles(30, seed=0)
    trie = Trie.from_sequences(titles)
    model = fit_preferences(tiny_llama(seed=3), prompts, titles, steps=80)
    ids, mask = left_pad(prompts)
    brute = score_titles(model, ids, mask, titles)
    certified = 0
    for beam_size in (1, 2, 3, 5):
        for top_k in (1, 3):
            result = title_beam_search(model, ids, mask, trie=trie, beam_size=beam_size, top_k=top_k)
            items, scores = brute_top(brute, top_k)
            for user in torch.nonzero(result.certified).squeeze(1).tolist():
                assert result.item_idx[user].tolist() == items[user].tolist()
                torch.testing.assert_close(result.log_probs[user], scores[user], atol=1e-4, rtol=0)
                certified += 1
    assert certified >= 8  # of 32 lists


def test_user_does_not_depend_on_batch(model, prompts, catalogue):
    """Left padding shifts neither positions nor scores: each prompt alone gives the same list."""
    _, trie, _ = catalogue
    ids, mask = left_pad(prompts)
    exclude = [np.array([u, u + 1]) for u in range(len(prompts))]
    batched = title_beam_search(model, ids, mask, trie=trie, beam_size=4, top_k=4, exclude=exclude)
    for user, prompt in enumerate(prompts):
        alone_ids, alone_mask = left_pad([prompt])
        alone = title_beam_search(
            model, alone_ids, alone_mask, trie=trie, beam_size=4, top_k=4, exclude=[exclude[user]]
        )
        assert alone.item_idx[0].tolist() == batched.item_idx[user].tolist()
        torch.testing.assert_close(alone.log_probs[0], batched.log_probs[user], atol=1e-4, rtol=0)
        assert bool(alone.certified[0]) == bool(batched.certified[user])


def test_small_catalogue_pads_with_minus_one(model, prompts):
    titles = [[5, EOS], [6, 7, EOS], [6, 8, 9, EOS]]
    trie = Trie.from_sequences(titles)
    ids, mask = left_pad(prompts)
    exclude = [np.array([], dtype=np.int64), np.array([1]), np.array([0, 2]), np.array([0, 1, 2])]
    result = title_beam_search(model, ids, mask, trie=trie, beam_size=2, top_k=5, exclude=exclude)
    brute = score_titles(model, ids, mask, titles)
    counts = [3, 2, 1, 0]
    for user, count in enumerate(counts):
        row = result.item_idx[user].tolist()
        assert row[count:] == [-1] * (5 - count)
        assert sorted(row[:count]) == sorted(set(range(3)) - set(exclude[user].tolist()))
        assert bool(torch.isinf(result.log_probs[user, count:]).all())
        torch.testing.assert_close(
            result.log_probs[user, :count], brute[user, row[:count]], atol=1e-4, rtol=0
        )
    assert bool(result.certified.all())  # nothing was pruned: every allowed item came out


def test_item_above_a_leaf_is_rejected(model, prompts):
    ids, mask = left_pad(prompts)
    trie = Trie.from_sequences([[5, 6], [5, 6, 7]])  # no EOS: item 0 is a prefix of item 1
    with pytest.raises(ValueError, match="prefix"):
        title_beam_search(model, ids, mask, trie=trie, beam_size=2)


def test_peft_wrapped_model_decodes_like_its_base(model, prompts):
    peft = pytest.importorskip("peft")
    titles = random_titles(20, seed=4)
    trie = Trie.from_sequences(titles)
    ids, mask = left_pad(prompts)
    wrapped = peft.get_peft_model(
        tiny_llama(), peft.LoraConfig(r=2, target_modules=["q_proj", "v_proj"], init_lora_weights=True)
    )  # LoRA starts as the identity: same scores as the base model
    base = title_beam_search(model, ids, mask, trie=trie, beam_size=3, top_k=3)
    lora = title_beam_search(wrapped, ids, mask, trie=trie, beam_size=3, top_k=3)
    assert torch.equal(lora.item_idx, base.item_idx)
    torch.testing.assert_close(lora.log_probs, base.log_probs, atol=1e-4, rtol=0)


def greedy_loop(model: LlamaForCausalLM, prompt: list[int], max_new_tokens: int) -> list[int]:
    """Argmax decoding by hand: full forward every step, no cache, no padding."""
    ids = torch.tensor([prompt])
    new: list[int] = []
    with torch.no_grad():
        for _ in range(max_new_tokens):
            token = int(model(input_ids=ids).logits[0, -1].argmax())
            if token == EOS:
                break
            new.append(token)
            ids = torch.cat([ids, torch.tensor([[token]])], 1)
    return new


def test_generate_free_is_greedy_and_stops_at_eos(prompts):
    model = tiny_llama(seed=1)
    with torch.no_grad():  # make EOS likely enough that some rows stop early
        model.lm_head.weight[EOS] *= 4
    ids, mask = left_pad(prompts)
    generated = generate_free(model, ids, mask, eos_token_id=EOS, max_new_tokens=8)
    expected = [greedy_loop(model, prompt, 8) for prompt in prompts]
    assert generated == expected
    assert all(EOS not in row for row in generated)
    assert any(len(row) < 8 for row in generated)


def test_prompt_positions_start_at_the_first_real_token():
    mask = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])
    assert prompt_positions(mask).tolist() == [[0, 0, 0, 1, 2], [0, 1, 2, 3, 4]]
