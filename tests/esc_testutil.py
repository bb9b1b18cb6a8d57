"""Helpers shared by several test files (imported as ``from esc_testutil import ...``; pytest puts tests/ on the path)."""

from __future__ import annotations

import math

import torch


def assert_same(a, b):
    """Equal nested state: tensors bit for bit with the same dtype, NaN equal to NaN, containers element-wise."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    elif isinstance(a, dict):
        assert set(a) == set(b)
        for k in a:
            assert_same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_same(x, y)
    elif isinstance(a, float) and math.isnan(a):
        assert isinstance(b, float) and math.isnan(b)
    else:
        assert a == b
