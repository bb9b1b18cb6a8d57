"""Data that ships inside the package, so every lab runs without a network."""

from __future__ import annotations

import gzip
from functools import lru_cache
from pathlib import Path

import torch

BUNDLED = Path(__file__).resolve().parent / "bundled"


@lru_cache(maxsize=1)
def _digits_raw() -> tuple[torch.Tensor, torch.Tensor]:
    with gzip.open(BUNDLED / "digits.csv.gz", "rt") as f:
        rows = [list(map(float, line.split(","))) for line in f if line.strip()]
    table = torch.tensor(rows)
    return table[:, :64], table[:, 64].long()


def digits() -> tuple[torch.Tensor, torch.Tensor]:
    """The UCI handwritten digits: x (1797, 1, 8, 8) float32 in [0, 1], y (1797,) int64 in 0..9.

    Source and license: esc_course/data/bundled/README.md.
    """
    pixels, labels = _digits_raw()
    return (pixels / 16.0).reshape(-1, 1, 8, 8).clone(), labels.clone()
