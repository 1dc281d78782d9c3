"""Item embeddings -> semantic IDs: RQ-VAE, residual k-means, collision code, SID table."""

from tokenizer.sid_table import SidTable

__all__ = ["SidTable"]
