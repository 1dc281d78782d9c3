import numpy as np
import torch

from tokenizer.quantize import kmeans, nearest_code, residual_quantize, residual_quantize_chunked

# Level 0: four corners of a 10 x 10 square; level 1: four corners of a unit square.
CODEBOOKS = [
    torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]]),
    torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]),
]


def test_residual_quantize_golden_codes_and_residuals():
    vectors = torch.tensor([[11.0, 0.2], [0.1, 9.2], [10.6, 10.9]])
    codes, chosen = residual_quantize(vectors, CODEBOOKS)
    # [11, .2] -> (10, 0) leaves [1, .2] -> (1, 0); [.1, 9.2] -> (0, 10) leaves [.1, -.8] -> (0, 0);
    # [10.6, 10.9] -> (10, 10) leaves [.6, .9] -> (1, 1).
    assert codes.tolist() == [[1, 1], [2, 0], [3, 3]]
    assert codes.dtype == torch.int64
    residuals = vectors - chosen.sum(dim=1)
    torch.testing.assert_close(residuals, torch.tensor([[0.0, 0.2], [0.1, -0.8], [-0.4, -0.1]]))


def test_nearest_code_tie_goes_to_lower_index():
    assert nearest_code(torch.tensor([[5.0, 0.0]]), CODEBOOKS[0]).tolist() == [0]


def test_chunked_matches_tensor_version(monkeypatch):
    monkeypatch.setattr("tokenizer.quantize.ENCODE_CHUNK", 7)
    rng = np.random.default_rng(0)
    vectors = rng.uniform(-1, 12, size=(50, 2)).astype(np.float32)
    expected = residual_quantize(torch.from_numpy(vectors), CODEBOOKS)[0].numpy()
    np.testing.assert_array_equal(
        residual_quantize_chunked(vectors, [b.numpy() for b in CODEBOOKS]), expected
    )


def test_kmeans_finds_separated_clusters_and_is_seeded():
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0], [5.0, 5.0], [-5.0, 5.0]])
    points = (centres[rng.integers(0, 3, size=300)] + 0.1 * rng.normal(size=(300, 2))).astype(np.float32)
    found = kmeans(points, 3, seed=1)
    assert found.shape == (3, 2) and found.dtype == np.float32
    nearest = np.linalg.norm(found[:, None] - centres[None], axis=2).min(axis=0)
    assert nearest.max() < 0.1
    np.testing.assert_array_equal(kmeans(points, 3, seed=1), found)


def test_kmeans_with_fewer_points_than_centroids_still_returns_k():
    points = np.array([[0.0, 1.0], [2.0, 3.0]], dtype=np.float32)
    found = kmeans(points, 5, seed=0)
    assert found.shape == (5, 2)
    np.testing.assert_array_equal(found[:2], points)
