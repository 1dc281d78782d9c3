"""tidrec: semantic-ID generative retrieval for sequential recommendation."""

__version__ = "0.1.0"
