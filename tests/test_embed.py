import numpy as np
import pytest

import tidrec.embed as embed
from tidrec.errors import ConfigError


class FakeModel:
    """Stands in for a SentenceTransformer: deterministic vectors from text length."""

    def __init__(self) -> None:
        self.calls = 0

    def encode(self, texts, **kwargs):
        self.calls += 1
        return np.array([[len(t), 1.0, 0.5] for t in texts], dtype=np.float64)


@pytest.fixture
def fake(monkeypatch):
    model = FakeModel()
    loads = []

    def load_model(name, device):
        loads.append(name)
        return model

    monkeypatch.setattr(embed, "load_model", load_model)
    return model, loads


def test_second_call_is_served_from_cache(fake, tmp_path):
    model, loads = fake
    first = embed.embed_texts(["ab", "c"], model="m", cache_dir=tmp_path)
    second = embed.embed_texts(["ab", "c"], model="m", cache_dir=tmp_path)
    assert model.calls == 1 and loads == ["m"]
    np.testing.assert_array_equal(first, second)
    assert first.dtype == np.float32 and first.shape == (2, 3)
    assert [p.name for p in tmp_path.iterdir()] == [embed.cache_path(tmp_path, "m", ["ab", "c"]).name]


def test_cache_is_keyed_by_texts_and_model(fake, tmp_path):
    model, _ = fake
    embed.embed_texts(["ab", "c"], model="m", cache_dir=tmp_path)
    embed.embed_texts(["a", "bc"], model="m", cache_dir=tmp_path)
    embed.embed_texts(["ab", "c"], model="other/m", cache_dir=tmp_path)
    assert model.calls == 3 and len(list(tmp_path.iterdir())) == 3


def test_corrupt_cache_file_is_recomputed(fake, tmp_path):
    model, _ = fake
    embed.cache_path(tmp_path, "m", ["x"]).write_bytes(b"half a file")
    assert embed.embed_texts(["x"], model="m", cache_dir=tmp_path).shape == (1, 3)
    assert model.calls == 1
    assert embed.embed_texts(["x"], model="m", cache_dir=tmp_path).shape == (1, 3)
    assert model.calls == 1


def test_default_model_names_share_one_cache_slug(tmp_path):
    assert embed.model_slug("sentence-transformers/all-MiniLM-L6-v2") == embed.model_slug(
        embed.DEFAULT_EMBEDDING_MODEL
    )
    assert (
        embed.model_slug("sentence-transformers/sentence-t5-base") == "sentence-transformers_sentence-t5-base"
    )


def test_unavailable_model_is_a_one_line_config_error(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ConfigError, match=r"cannot be loaded here.*--embedding-model DIR") as info:
        embed.load_model(str(tmp_path / "no-such-model"), "cpu")
    assert "\n" not in str(info.value)
