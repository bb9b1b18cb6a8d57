"""Shared test set-up: Agg plots, a quiet device choice, the gpu marker skipped without CUDA."""

from __future__ import annotations

import os

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.pop("ESC_DEVICE", None)  # a developer's ESC_DEVICE must not change what the tests run on

import pytest  # noqa: E402


def pytest_collection_modifyitems(config, items):
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def cpu():
    import torch

    return torch.device("cpu")
