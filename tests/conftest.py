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


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    """An empty torch hub cache with downloads failing as they do offline: the user's real cache and network must
    not make the weight-loading tests pass or fail. Returns the TORCH_HOME folder."""
    import urllib.error

    import torch

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    if not torch.hub.get_dir().startswith(str(tmp_path)):
        pytest.skip("torch.hub.set_dir was called in this process; TORCH_HOME is not used")

    def no_network(url, *args, **kwargs):
        raise urllib.error.URLError("no network in the test")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    return tmp_path / "torch"
