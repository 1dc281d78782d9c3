"""Fixtures of the baseline tests (helpers live in baseline_fixtures.py)."""

import pytest
from baseline_fixtures import successor_dataset

from tidrec.data.dataset import Dataset


@pytest.fixture(scope="session")
def successor() -> Dataset:
    return successor_dataset()


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models train faster on one thread, above all on a shared 2-core CI machine."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
