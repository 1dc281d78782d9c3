"""Item embeddings -> semantic IDs: RQ-VAE, residual k-means, collision code, SID table."""

from tokenizer.base import SidTokenizer, load_tokenizer
from tokenizer.collision import DEFAULT_COLLISION_SIZE, add_collision_codes
from tokenizer.rkmeans import ResidualKMeansConfig, ResidualKMeansTokenizer
from tokenizer.rqvae import RqVaeConfig, RqVaeTokenizer
from tokenizer.sid_table import SidTable

__all__ = [
    "DEFAULT_COLLISION_SIZE",
    "ResidualKMeansConfig",
    "ResidualKMeansTokenizer",
    "RqVaeConfig",
    "RqVaeTokenizer",
    "SidTable",
    "SidTokenizer",
    "add_collision_codes",
    "load_tokenizer",
]
