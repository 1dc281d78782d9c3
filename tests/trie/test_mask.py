"""Masking kernels: golden values on a hand-written trie and equivalence on random tries."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tidrec.errors import ConfigError
from trie import Trie, children_only, constrained_candidates

NEG = float("-inf")


def test_golden_root_and_inner_step():
    # items: (2,4) (2,5) (3,4); vocabulary of 6 tokens
    trie = Trie.from_codes(np.array([[2, 4], [2, 5], [3, 4]])).to_torch()
    logits = torch.tensor([[0.0, 0.0, 1.0, 2.0, 0.0, 0.0]])
    log_norm = torch.logsumexp(logits, -1).item()
    for kernel in ("torch", "gather"):
        got = constrained_candidates(
            logits, torch.zeros(1), torch.zeros(1, dtype=torch.long), trie=trie, depth=0, k=3, kernel=kernel
        )
        finite = torch.isfinite(got.scores[0])
        assert got.tokens[0][finite].tolist() == [3, 2]  # token 3 has the larger logit
        assert torch.allclose(got.scores[0][finite], torch.tensor([2.0, 1.0]) - log_norm)
        assert got.children[0][finite].tolist() == [1, 0]  # child ids: (2,) is node 0, (3,) node 1
    # depth 1 from node 0 (prefix 2) with beam score -1: only tokens 4 and 5
    logits = torch.tensor([[0.0, 0.0, 0.0, 0.0, 3.0, 1.0]])
    for kernel in ("torch", "gather"):
        got = constrained_candidates(
            logits, torch.tensor([-1.0]), torch.tensor([0]), trie=trie, depth=1, k=2, kernel=kernel
        )
        assert got.tokens[0].tolist() == [4, 5]
        assert got.children[0].tolist() == [0, 1]
        expected = torch.tensor([3.0, 1.0]) - torch.logsumexp(logits, -1) - 1.0
        assert torch.allclose(got.scores[0], expected)
        # excluding child 0 leaves only token 5
        got = constrained_candidates(
            logits,
            torch.tensor([-1.0]),
            torch.tensor([0]),
            trie=trie,
            depth=1,
            k=2,
            exclude=torch.tensor([[-1, 0]]),
            kernel=kernel,
        )
        assert got.children[0].tolist() == [1, -1] and got.scores[0, 1] == NEG


@settings(max_examples=50, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    num_items=st.integers(1, 80),
    rows=st.integers(1, 12),
    k=st.integers(1, 8),
    use_exclude=st.booleans(),
)
def test_kernels_agree_on_random_tries(seed, num_items, rows, k, use_exclude):
    rng = np.random.default_rng(seed)
    sizes = (4, 5, 6)
    vocab = 2 + sum(sizes) + 3
    flat = rng.choice(np.prod(sizes), size=min(num_items, np.prod(sizes)), replace=False)
    codes = np.stack(np.unravel_index(flat, sizes), 1) + np.array([2, 6, 11])
    host = Trie.from_codes(codes, dense_limit=int(rng.integers(0, 2)) * (1 << 16))
    trie = host.to_torch()
    depth = int(rng.integers(0, host.depth))
    nodes = torch.from_numpy(rng.integers(0, host.num_nodes(depth), size=rows))
    logits = torch.from_numpy(rng.normal(size=(rows, vocab)).astype(np.float32))
    beam_scores = torch.from_numpy(rng.normal(size=rows).astype(np.float32))
    beam_scores[rng.random(rows) < 0.2] = NEG  # some dead beams
    exclude = None
    if use_exclude:
        children = host.num_nodes(depth + 1)
        exclude = torch.from_numpy(np.sort(rng.integers(-1, children, size=(rows, 3)), axis=1))
    ref = constrained_candidates(logits, beam_scores, nodes, trie=trie, depth=depth, k=k, exclude=exclude)
    fast = constrained_candidates(
        logits, beam_scores, nodes, trie=trie, depth=depth, k=k, exclude=exclude, kernel="gather"
    )
    width = fast.scores.shape[1]
    assert torch.isinf(ref.scores[:, width:]).all()  # the reference has no extra finite entries
    ref_scores = ref.scores[:, :width]
    assert torch.equal(torch.isfinite(ref_scores), torch.isfinite(fast.scores))
    finite = torch.isfinite(fast.scores)
    torch.testing.assert_close(ref_scores[finite], fast.scores[finite], atol=1e-5, rtol=1e-5)
    assert torch.equal(ref.children[:, :width], fast.children)
    assert torch.equal(ref.tokens[:, :width], fast.tokens)
    # every child really is a child of its row's node, reached by that token
    for r, c in zip(*torch.nonzero(finite, as_tuple=True), strict=True):
        node, token = int(nodes[r]), int(fast.tokens[r, c])
        assert host.child(depth, np.array([node]), np.array([token]))[0] == fast.children[r, c]


@pytest.mark.parametrize("kernel", ["torch", "gather"])
def test_exclude_row_shared_by_a_users_beams_equals_one_row_per_beam(kernel):
    for host, depth, logits, scores, nodes in random_case(1):
        trie, beams = host.to_torch(), 5  # 40 rows = 8 users x 5 beams
        rng = np.random.default_rng(depth)
        per_user = np.sort(rng.integers(-1, host.num_nodes(depth + 1), size=(8, 6)), axis=1)
        shared = torch.from_numpy(per_user)  # (8, 6)
        args = (logits, scores, nodes)
        got = constrained_candidates(*args, trie=trie, depth=depth, k=4, exclude=shared, kernel=kernel)
        ref = constrained_candidates(
            *args, trie=trie, depth=depth, k=4, exclude=shared.repeat_interleave(beams, 0), kernel=kernel
        )
        assert torch.equal(got.children, ref.children) and torch.equal(got.scores, ref.scores)
        for row, children in enumerate(got.children.tolist()):
            assert not set(children) & set(per_user[row // beams].tolist()) - {-1}
    with pytest.raises(ValueError, match="G dividing N=40"):
        constrained_candidates(*args, trie=trie, depth=depth, k=4, exclude=shared[:3], kernel=kernel)


def random_case(seed: int, rows: int = 40):
    """A 300-item trie over 3 levels and random logits, scores and nodes at every depth."""
    rng = np.random.default_rng(seed)
    flat = rng.choice(8 * 8 * 8, size=300, replace=False)
    host = Trie.from_codes(np.stack(np.unravel_index(flat, (8, 8, 8)), 1) + np.array([2, 10, 18]))
    for depth in range(3):
        nodes = torch.from_numpy(rng.integers(0, host.num_nodes(depth), size=rows))
        logits = torch.from_numpy(rng.normal(size=(rows, 40)).astype(np.float32))
        yield host, depth, logits, torch.from_numpy(rng.normal(size=rows).astype(np.float32)), nodes


@pytest.mark.slow
def test_torch_compiled_kernel_matches_reference():
    """torch.compile takes tens of seconds on a small CPU: opt-in."""
    for host, depth, logits, scores, nodes in random_case(0):
        trie = host.to_torch()
        for rows in (40, 7):  # a second row count must not need another compile to stay correct
            args = (logits[:rows], scores[:rows], nodes[:rows])
            ref = constrained_candidates(*args, trie=trie, depth=depth, k=5)
            got = constrained_candidates(*args, trie=trie, depth=depth, k=5, kernel="compiled")
            torch.testing.assert_close(ref.scores[:, :5], got.scores, atol=1e-5, rtol=1e-5)
            assert torch.equal(ref.children[:, :5], got.children)
        # one exclude row per user, shared by its beams (40 rows = 8 users x 5 beams)
        children = np.random.default_rng(depth).integers(-1, host.num_nodes(depth + 1), size=(8, 3))
        shared = torch.from_numpy(np.sort(children, axis=1))  # (8, 3)
        ref = constrained_candidates(logits, scores, nodes, trie=trie, depth=depth, k=5, exclude=shared)
        got = constrained_candidates(
            logits, scores, nodes, trie=trie, depth=depth, k=5, exclude=shared, kernel="compiled"
        )
        torch.testing.assert_close(ref.scores[:, :5], got.scores, atol=1e-5, rtol=1e-5)
        assert torch.equal(ref.children[:, :5], got.children)


def test_unknown_kernel_and_missing_backend_fail_clearly():
    trie = Trie.from_codes(np.array([[2, 4]])).to_torch()
    args = (torch.zeros(1, 6), torch.zeros(1), torch.zeros(1, dtype=torch.long))
    with pytest.raises(ConfigError, match="kernel must be one of"):
        constrained_candidates(*args, trie=trie, depth=0, k=1, kernel="cuda")
    with pytest.raises(ConfigError, match="triton"):
        constrained_candidates(*args, trie=trie, depth=0, k=1, kernel="triton")


@pytest.mark.gpu
def test_triton_matches_reference_on_cuda():
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    rng = np.random.default_rng(0)
    flat = rng.choice(16 * 16 * 16, size=2000, replace=False)
    codes = np.stack(np.unravel_index(flat, (16, 16, 16)), 1) + np.array([2, 18, 34])
    host = Trie.from_codes(codes)
    trie = host.to_torch("cuda")
    for depth in range(3):
        nodes = torch.from_numpy(rng.integers(0, host.num_nodes(depth), size=300)).cuda()
        logits = torch.randn(300, 3000, device="cuda")
        scores = torch.randn(300, device="cuda")
        # one exclude row per user, shared by its 10 beams (300 rows = 30 users)
        children = torch.randint(0, host.num_nodes(depth + 1), (30, 40), device="cuda")
        for exclude in (None, children.sort(1).values):
            ref = constrained_candidates(logits, scores, nodes, trie=trie, depth=depth, k=20, exclude=exclude)
            got = constrained_candidates(
                logits, scores, nodes, trie=trie, depth=depth, k=20, exclude=exclude, kernel="triton"
            )
            width = got.scores.shape[1]
            finite = torch.isfinite(got.scores)
            torch.testing.assert_close(
                ref.scores[:, :width][finite], got.scores[finite], atol=1e-4, rtol=1e-4
            )
            assert torch.equal(ref.children[:, :width], got.children)


def test_children_only_by_hand():
    # items: (2,4) (2,5) (3,4); vocabulary of 6 tokens; rows at the root, then at nodes (2,) and (3,)
    trie = Trie.from_codes(np.array([[2, 4], [2, 5], [3, 4]])).to_torch()
    logits = torch.arange(12, dtype=torch.float32).view(2, 6)
    inf = float("-inf")
    root = children_only(logits[:1], torch.tensor([0]), trie, 0)
    assert root.tolist() == [[inf, inf, 2.0, 3.0, inf, inf]]
    inner = children_only(logits, torch.tensor([0, 1]), trie, 1)
    assert inner.tolist() == [[inf, inf, inf, inf, 4.0, 5.0], [inf, inf, inf, inf, 10.0, inf]]
