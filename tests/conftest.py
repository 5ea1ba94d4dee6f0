"""Shared test fixtures: a seeded generator, and GPU tests skipped where no CUDA device is."""

import pytest
import torch


@pytest.fixture
def rng():
    """A seeded CPU generator; tests never touch global random state."""
    return torch.Generator().manual_seed(12345)


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
