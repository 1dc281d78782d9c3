import numpy as np
import pytest
import torch

from tidrec.errors import ConfigError, InputError
from tokenizer import SidTable, load_tokenizer
from tokenizer.base import SidTokenizer
from tokenizer.collision import add_collision_codes
from tokenizer.rqvae import RqVaeConfig, RqVaeTokenizer
from tokenizer.stats import code_stats

SMALL = RqVaeConfig(levels=2, codebook_size=16, hidden_dims=(64, 32), latent_dim=8, epochs=40, batch_size=128)


def unexplained_variance(x: np.ndarray, reconstruction: np.ndarray) -> float:
    return float(((reconstruction - x) ** 2).sum() / ((x - x.mean(0)) ** 2).sum())


@pytest.fixture(scope="module")
def fitted(embeddings):
    tokenizer = RqVaeTokenizer(SMALL, device="cpu")
    summary = tokenizer.fit(embeddings, seed=3)
    return tokenizer, summary


def test_rqvae_uses_its_codes_and_reconstructs(fitted, embeddings):
    tokenizer, summary = fitted
    assert isinstance(tokenizer, SidTokenizer)
    codes = tokenizer.encode(embeddings)
    assert codes.shape == (len(embeddings), 2) and codes.dtype == np.int64
    stats = code_stats(codes, tokenizer.level_sizes)
    assert min(level["usage"] for level in stats["levels"]) >= 0.9
    # level 1 must refine level 0: more distinct tuples than two per level-0 code
    assert stats["unique_tuple_rate"] * len(embeddings) > 2 * 16
    assert unexplained_variance(embeddings, tokenizer.reconstruct(embeddings)) < 0.5
    assert summary["final_loss"] < tokenizer.history[0]["loss"]


def test_same_seed_gives_byte_identical_sid_table(fitted, embeddings, tmp_path):
    tokenizer, _ = fitted
    again = RqVaeTokenizer(SMALL, device="cpu")
    again.fit(embeddings, seed=3)
    item_ids = np.array([f"i{i}" for i in range(len(embeddings))])
    for name, tok in (("a", tokenizer), ("b", again)):
        codes = add_collision_codes(tok.encode(embeddings), collision_size=64)
        SidTable(item_ids, codes, (*tok.level_sizes, 64), "hash").save(tmp_path / f"{name}.parquet")
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()


def test_fit_leaves_global_rng_alone(embeddings):
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    RqVaeTokenizer(RqVaeConfig(**{**SMALL.__dict__, "epochs": 1}), device="cpu").fit(embeddings, seed=9)
    torch.testing.assert_close(torch.rand(3), expected)


def test_checkpoint_round_trip_encodes_identically(fitted, embeddings, tmp_path):
    tokenizer, _ = fitted
    tokenizer.save(tmp_path / "tokenizer.pt", extra={"embedding_model": "m"})
    loaded = load_tokenizer(tmp_path / "tokenizer.pt", device="cpu")
    assert isinstance(loaded, RqVaeTokenizer) and loaded.config == SMALL
    np.testing.assert_array_equal(loaded.encode(embeddings), tokenizer.encode(embeddings))


def test_load_refuses_foreign_file(tmp_path):
    (tmp_path / "x.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match=r"x\.pt: not a readable tokenizer checkpoint"):
        load_tokenizer(tmp_path / "x.pt")
    with pytest.raises(InputError, match="not found"):
        load_tokenizer(tmp_path / "missing.pt")


def test_encode_checks_embedding_width(fitted):
    with pytest.raises(ValueError, match=r"\(N, 32\)"):
        fitted[0].encode(np.zeros((2, 5), dtype=np.float32))


def test_bad_options_are_config_errors():
    with pytest.raises(ConfigError, match="codebook_size=1"):
        RqVaeConfig(codebook_size=1)


@pytest.mark.gpu
def test_rqvae_trains_and_encodes_on_cuda(embeddings, tmp_path):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    tokenizer = RqVaeTokenizer(SMALL, device="cuda")
    tokenizer.fit(embeddings, seed=3)
    codes = tokenizer.encode(embeddings)
    assert min(level["usage"] for level in code_stats(codes, tokenizer.level_sizes)["levels"]) >= 0.9
    tokenizer.save(tmp_path / "t.pt")
    on_cpu = load_tokenizer(tmp_path / "t.pt", device="cpu").encode(embeddings)
    assert (on_cpu == codes).all(axis=1).mean() > 0.99  # float differences may flip a near tie
