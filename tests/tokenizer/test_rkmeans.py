import numpy as np

from tokenizer import load_tokenizer
from tokenizer.base import SidTokenizer
from tokenizer.rkmeans import ResidualKMeansConfig, ResidualKMeansTokenizer


def test_first_level_recovers_separated_clusters():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, size=200)
    centres = 10 * np.eye(4, 6)
    points = (centres[labels] + 0.1 * rng.normal(size=(200, 6))).astype(np.float32)
    tokenizer = ResidualKMeansTokenizer(ResidualKMeansConfig(levels=2, codebook_size=4))
    assert isinstance(tokenizer, SidTokenizer)
    tokenizer.fit(points, seed=0)
    codes = tokenizer.encode(points)
    # same partition as the true labels, up to renaming the codes
    assert len({(a, b) for a, b in zip(labels, codes[:, 0], strict=True)}) == 4


def test_more_levels_reconstruct_better_and_round_trip(embeddings, tmp_path):
    errors = []
    for levels in (1, 2, 3):
        tokenizer = ResidualKMeansTokenizer(ResidualKMeansConfig(levels=levels, codebook_size=16))
        tokenizer.fit(embeddings, seed=0)
        errors.append(float(((tokenizer.reconstruct(embeddings) - embeddings) ** 2).mean()))
    assert errors[0] > errors[1] > errors[2]
    tokenizer.save(tmp_path / "t.pt")
    loaded = load_tokenizer(tmp_path / "t.pt")
    np.testing.assert_array_equal(loaded.encode(embeddings), tokenizer.encode(embeddings))
    assert loaded.level_sizes == (16, 16, 16)
