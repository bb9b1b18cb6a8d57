"""A generated image set: coloured shapes on coloured backgrounds, with pixel noise.

Every class can take any colour, position and size, and half of the images are dark shapes on a light background,
so neither colour nor brightness gives the class away: a model has to see the outline (a circle and a ring have the
same colour and centre; a square and a frame differ only inside). Generated on the fly from a seed, so it ships as
code, needs no network, and the same seed always gives the same images on every machine.
"""

from __future__ import annotations

import torch

SHAPE_CLASSES = ("circle", "square", "triangle", "cross", "ring", "frame")

_SUPERSAMPLE = 2  # shapes are drawn at 2x resolution and averaged down, for soft (anti-aliased) edges


def shapes(n: int = 3000, size: int = 16, seed: int = 0, noise: float = 0.08) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` images of the shapes in ``SHAPE_CLASSES``: x (n, 3, size, size) float32 in [0, 1], y (n,) int64.

    Classes are balanced (``n`` is cut into equal parts, the remainder going to the first classes) and shuffled.
    Each image draws its own shape radius (25-45 % of ``size``), centre (the shape stays inside), foreground and
    background colours (at least 0.3 apart in brightness, either one the brighter), triangle orientation (up or
    down) and Gaussian pixel noise of std ``noise``.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    if isinstance(size, bool) or not isinstance(size, int) or size < 8:
        raise ValueError(f"size must be an integer >= 8 (pixels per side), got {size!r}")
    if noise < 0:
        raise ValueError(f"noise must be >= 0 (pixel std), got {noise!r}")
    g = torch.Generator().manual_seed(seed)
    k = len(SHAPE_CLASSES)
    y = (torch.arange(n) % k)[torch.randperm(n, generator=g)]
    radius = size * (0.25 + 0.2 * torch.rand(n, generator=g))  # pixels
    centre = radius[:, None] + (size - 2 * radius[:, None]) * torch.rand(n, 2, generator=g)  # (n, 2): x, y
    flip = torch.rand(n, generator=g) < 0.5  # triangles point down instead of up
    alpha = _masks(y, centre, radius, flip, size)  # (n, size, size) in [0, 1]
    fg, bg = _colours(n, g)
    x = bg[:, :, None, None] + (fg - bg)[:, :, None, None] * alpha[:, None]
    x = x + noise * torch.randn(x.shape, generator=g)
    return x.clamp_(0.0, 1.0).float(), y.long()


def _masks(y: torch.Tensor, centre: torch.Tensor, radius: torch.Tensor, flip: torch.Tensor,
           size: int) -> torch.Tensor:
    """Coverage of each pixel by the image's shape, (n, size, size) in [0, 1]."""
    s = _SUPERSAMPLE
    coords = (torch.arange(size * s, dtype=torch.float32) + 0.5) / s  # pixel centres, in pixels
    fine = torch.zeros(len(y), size * s, size * s)
    for k, name in enumerate(SHAPE_CLASSES):
        pick = y == k
        if pick.any():
            dx = coords[None, None, :] - centre[pick, 0, None, None]  # (m, 1, W), pixels from the centre
            dy = coords[None, :, None] - centre[pick, 1, None, None]  # (m, H, 1)
            dy = torch.where(flip[pick, None, None], -dy, dy)  # only the triangle is not symmetric up-down
            fine[pick] = _SHAPES[name](dx, dy, radius[pick, None, None]).float()
    return torch.nn.functional.avg_pool2d(fine[:, None], s)[:, 0]


def _box(dx, dy):
    return torch.maximum(dx.abs(), dy.abs())  # the L-infinity distance: squares are its level sets


def _dist(dx, dy):
    return (dx**2 + dy**2).sqrt()


# name -> inside(dx, dy, r): a boolean (m, H, W) mask from offsets to the centre and the radius, all in pixels
_SHAPES = {
    "circle": lambda dx, dy, r: _dist(dx, dy) <= r,
    "square": lambda dx, dy, r: _box(dx, dy) <= 0.8 * r,
    # apex at (0, -r), base from (-r, 0.7 r) to (r, 0.7 r): above the base line and between the two slanted sides
    "triangle": lambda dx, dy, r: (dy <= 0.7 * r) & (dx.abs() <= (dy + r) / 1.7),
    "cross": lambda dx, dy, r: ((dx.abs() <= 0.3 * r) & (dy.abs() <= r)) | ((dy.abs() <= 0.3 * r) & (dx.abs() <= r)),
    "ring": lambda dx, dy, r: (_dist(dx, dy) <= r) & (_dist(dx, dy) >= 0.55 * r),
    "frame": lambda dx, dy, r: (_box(dx, dy) <= 0.8 * r) & (_box(dx, dy) >= 0.45 * r),
}


def _colours(n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Foreground and background RGB (n, 3): random hues, brightness at least 0.3 apart, either one brighter."""
    light = 0.45 + 0.55 * torch.rand(n, 3, generator=g)
    dark = 0.45 * torch.rand(n, 3, generator=g)
    gap = light.mean(1, keepdim=True) - dark.mean(1, keepdim=True)
    dark = (dark - (0.3 - gap).clamp_min(0)).clamp_min(0)  # darken where the two are too close ...
    gap = light.mean(1, keepdim=True) - dark.mean(1, keepdim=True)
    light = (light + (0.3 - gap).clamp_min(0)).clamp_max(1)  # ... and brighten what clamping at 0 left over
    swap = (torch.rand(n, 1, generator=g) < 0.5)
    return torch.where(swap, dark, light), torch.where(swap, light, dark)
