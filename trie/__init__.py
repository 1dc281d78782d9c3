"""Generated codes back to real items: a compact prefix trie and the masking kernels over it."""

from trie.exclude import dead_nodes
from trie.mask import KERNELS, Candidates, children_only, constrained_candidates
from trie.trie import TorchTrie, Trie

__all__ = [
    "KERNELS",
    "Candidates",
    "TorchTrie",
    "Trie",
    "children_only",
    "constrained_candidates",
    "dead_nodes",
]
