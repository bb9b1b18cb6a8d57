"""Data augmentation as batch-wise tensor operations (the slides' flips, translation, rotation, crop, colour jitter).

Every operation takes a batch ``x`` (N, C, H, W) of float images and returns a batch of the same shape on the same
device (CPU, CUDA or MPS), each sample with its own random parameters. The parameters (N numbers) are drawn on the
CPU from an optional ``torch.Generator``, so a seed gives the same augmentation on every device. The images
themselves never leave their device: one ``grid_sample`` or one ``torch.where`` per batch, no Python loop over
samples (the DataLoader-per-image way costs a Python call per image and per transform).

    aug = Augment(["hflip", ("rotate", {"degrees": 10})], seed=0)
    aug = preset("cifar", seed=0)                    # named recipes: PRESETS
    train = AugmentedLoader(train, aug)              # yields (aug(x), y) batch by batch, only while training

Bring your own torchvision transform with ``from_torchvision(T.RandomErasing())`` (applied per sample).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
import torch.nn.functional as F

Op = Callable[..., torch.Tensor]  # op(x, generator=None, **params) -> x


def _check(x: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or not x.is_floating_point():
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        dtype = x.dtype if isinstance(x, torch.Tensor) else None
        raise ValueError(f"augmentations take a float batch of images (N, C, H, W), got {shape} {dtype or ''}")


def _uniform(n: int, low: float, high: float, g: torch.Generator | None, device: torch.device) -> torch.Tensor:
    """n draws from U(low, high), made on the CPU (reproducible across devices) and moved to ``device``."""
    return (low + (high - low) * torch.rand(n, generator=g)).to(device)


def _coin(n: int, p: float, g: torch.Generator | None, device: torch.device) -> torch.Tensor:
    return (torch.rand(n, generator=g) < p).to(device)


def _warp(x: torch.Tensor, theta: torch.Tensor, mode: str = "bilinear", padding_mode: str = "zeros") -> torch.Tensor:
    """Resample each image by its own affine map ``theta`` (N, 2, 3): output coordinates -> input coordinates,
    both in [-1, 1] (``F.affine_grid``'s convention)."""
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode=mode, padding_mode=padding_mode, align_corners=False)


def hflip(x: torch.Tensor, generator: torch.Generator | None = None, p: float = 0.5) -> torch.Tensor:
    """Mirror left-right (the slides' Flip(LR)) with probability ``p`` per image."""
    _check(x)
    flip = _coin(x.shape[0], p, generator, x.device)[:, None, None, None]
    return torch.where(flip, x.flip(-1), x)


def vflip(x: torch.Tensor, generator: torch.Generator | None = None, p: float = 0.5) -> torch.Tensor:
    """Mirror upside-down (Flip(UD)) with probability ``p`` per image; wrong for digits and letters."""
    _check(x)
    flip = _coin(x.shape[0], p, generator, x.device)[:, None, None, None]
    return torch.where(flip, x.flip(-2), x)


def translate(x: torch.Tensor, generator: torch.Generator | None = None, max_shift: float = 0.125,
              padding_mode: str = "zeros") -> torch.Tensor:
    """Shift each image by whole pixels, up to ``max_shift`` of its width/height each way; the gap is filled with 0.

    The same as padding by that many pixels and taking a random crop of the original size (the CIFAR recipe:
    pad 4, crop 32, is ``max_shift=0.125``).
    """
    _check(x)
    n, _, h, w = x.shape
    mh, mw = round(max_shift * h), round(max_shift * w)
    dy = _uniform(n, -mh - 0.5, mh + 0.5, generator, x.device).round().clamp(-mh, mh)  # whole pixels
    dx = _uniform(n, -mw - 0.5, mw + 0.5, generator, x.device).round().clamp(-mw, mw)
    return shift_by(x, dx, dy, padding_mode)


def shift_by(x: torch.Tensor, dx: torch.Tensor, dy: torch.Tensor, padding_mode: str = "zeros") -> torch.Tensor:
    """Move image i right by ``dx[i]`` and down by ``dy[i]`` whole pixels; pixels are copied exactly (nearest
    sampling at pixel centres)."""
    n, _, h, w = x.shape
    theta = torch.zeros(n, 2, 3, device=x.device)
    theta[:, 0, 0] = theta[:, 1, 1] = 1.0
    theta[:, 0, 2] = -2.0 * dx.to(x.device) / w  # the output pixel at u reads the input at u - shift
    theta[:, 1, 2] = -2.0 * dy.to(x.device) / h  # (in normalised units: the image is 2 wide)
    return _warp(x, theta, mode="nearest", padding_mode=padding_mode)


def rotate(x: torch.Tensor, generator: torch.Generator | None = None, degrees: float = 15.0,
           padding_mode: str = "zeros") -> torch.Tensor:
    """Rotate each image about its centre by an angle drawn from U(-degrees, degrees); corners filled with 0."""
    _check(x)
    return rotate_by(x, _uniform(x.shape[0], -degrees, degrees, generator, x.device), padding_mode)


def rotate_by(x: torch.Tensor, degrees: torch.Tensor, padding_mode: str = "zeros") -> torch.Tensor:
    """Rotate image i counter-clockwise by ``degrees[i]`` (bilinear), as torchvision's ``rotate`` does."""
    n, _, h, w = x.shape
    a = degrees.to(x.device, torch.float32) * (math.pi / 180)
    cos, sin = torch.cos(a), torch.sin(a)
    theta = torch.zeros(n, 2, 3, device=x.device)
    # a rotation in pixel units, written in normalised coordinates (x / (w/2), y / (h/2)): exact for h != w too
    theta[:, 0, 0], theta[:, 0, 1] = cos, -sin * h / w
    theta[:, 1, 0], theta[:, 1, 1] = sin * w / h, cos
    return _warp(x, theta, padding_mode=padding_mode)


def crop(x: torch.Tensor, generator: torch.Generator | None = None,
         scale: tuple[float, float] = (0.6, 1.0)) -> torch.Tensor:
    """Random crop and scale: a square-ish window with ``scale`` of the image's area, anywhere inside it,
    resized back to the full size (bilinear). The slides' "sample random crops / scales" (ResNet)."""
    _check(x)
    lo, hi = scale
    if not 0 < lo <= hi <= 1:
        raise ValueError(f"scale must be (low, high) with 0 < low <= high <= 1 (share of the area), got {scale}")
    n = x.shape[0]
    side = _uniform(n, lo, hi, generator, x.device).sqrt()  # the window's side, as a share of the image's
    cx = _uniform(n, -1.0, 1.0, generator, x.device) * (1 - side)  # window centre: the window stays inside
    cy = _uniform(n, -1.0, 1.0, generator, x.device) * (1 - side)
    theta = torch.zeros(n, 2, 3, device=x.device)
    theta[:, 0, 0] = theta[:, 1, 1] = side
    theta[:, 0, 2], theta[:, 1, 2] = cx, cy
    return _warp(x, theta, padding_mode="border")


_LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601 weights, as torchvision's rgb_to_grayscale


def color_jitter(x: torch.Tensor, generator: torch.Generator | None = None, brightness: float = 0.3,
                 contrast: float = 0.3, saturation: float = 0.3) -> torch.Tensor:
    """Random brightness, contrast and (for RGB) saturation factors from U(1 - a, 1 + a), for images in [0, 1].

    brightness scales the pixels, contrast moves them to/from the image's mean grey, saturation to/from each
    pixel's grey value; the result is clipped to [0, 1]. Apply it before normalisation.
    """
    _check(x)
    n, c = x.shape[:2]

    def factor(a: float) -> torch.Tensor:
        return _uniform(n, max(0.0, 1 - a), 1 + a, generator, x.device)[:, None, None, None]

    x = x * factor(brightness)
    mean_grey = _grey(x).mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean_grey) * factor(contrast) + mean_grey
    if c == 3:
        grey = _grey(x)
        x = grey + (x - grey) * factor(saturation)
    return x.clamp(0.0, 1.0)


def _grey(x: torch.Tensor) -> torch.Tensor:
    """Per-pixel grey value (N, 1, H, W): luma for RGB, the channel mean otherwise."""
    if x.shape[1] == 3:  # a weighted sum of the channel slices: no weight tensor to copy to the device per batch
        return sum(w * x[:, i:i + 1] for i, w in enumerate(_LUMA))
    return x.mean(1, keepdim=True)


def from_torchvision(transform: Callable[[torch.Tensor], torch.Tensor]) -> Op:
    """Wrap a torchvision transform (v1 or v2, tensor in, tensor out) as a batch op, applied image by image.

    torchvision draws from torch's global RNG; here it draws inside ``torch.random.fork_rng`` seeded from the
    op's generator, so a seeded ``Augment`` stays reproducible and the global RNG is left alone.
    """

    def op(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        _check(x)
        seed = int(torch.randint(0, 2**62, (1,), generator=generator))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return torch.stack([transform(img) for img in x])

    op.__name__ = f"torchvision({type(transform).__name__})"
    return op


AUGMENTATIONS: dict[str, Op] = {
    "hflip": hflip, "vflip": vflip, "translate": translate, "rotate": rotate, "crop": crop,
    "color_jitter": color_jitter,
}

# Named recipes. Digits and letters must not be flipped (a mirrored 2 is not a 2); photos of objects may be
# mirrored left-right but rarely upside-down; the generated shapes look the same either way.
PRESETS: dict[str, list] = {
    "none": [],
    "flip": ["hflip"],
    "digits": [("translate", {"max_shift": 0.125}), ("rotate", {"degrees": 10.0})],
    "cifar": [("translate", {"max_shift": 0.125}), "hflip"],
    "shapes": ["hflip", "vflip", ("translate", {"padding_mode": "border"}), "color_jitter"],
    "all": ["hflip", "vflip", "translate", "rotate", "crop", "color_jitter"],
}


def get_augmentation(name: str) -> Op:
    try:
        return AUGMENTATIONS[name]
    except KeyError:
        raise ValueError(f"unknown augmentation {name!r}; valid augmentations: {', '.join(AUGMENTATIONS)}") from None


class Augment:
    """Apply a list of augmentations to a batch, in order: ``Augment(["hflip", ("rotate", {"degrees": 10})])``.

    Each entry is a name in AUGMENTATIONS, a ``(name, params)`` pair, or any callable ``op(x, generator=None)``
    (for example ``from_torchvision(...)``). ``seed`` (or ``generator``) makes the random draws reproducible.
    """

    def __init__(self, ops: Sequence[str | tuple[str, dict[str, Any]] | Op] = (), *, seed: int | None = None,
                 generator: torch.Generator | None = None):
        if isinstance(ops, str):
            raise TypeError(f"ops must be a list of augmentations, got the string {ops!r}; "
                            f"for a named recipe use preset({ops!r})")
        self.ops: list[tuple[str, Op, dict[str, Any]]] = [self._resolve(op) for op in ops]
        if generator is None and seed is not None:
            generator = torch.Generator().manual_seed(seed)
        self.generator = generator

    @staticmethod
    def _resolve(op) -> tuple[str, Op, dict[str, Any]]:
        if isinstance(op, str):
            return op, get_augmentation(op), {}
        if isinstance(op, tuple) and len(op) == 2 and isinstance(op[0], str) and isinstance(op[1], dict):
            return op[0], get_augmentation(op[0]), dict(op[1])
        if callable(op):
            return getattr(op, "__name__", type(op).__name__), op, {}
        raise TypeError(f"an augmentation must be a name, a (name, params) pair or a callable, got {op!r}")

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        for _, fn, params in self.ops:
            x = fn(x, generator=self.generator, **params)
        return x

    def __len__(self) -> int:
        return len(self.ops)

    def __repr__(self) -> str:
        parts = [name + (f"({', '.join(f'{k}={v}' for k, v in p.items())})" if p else "") for name, _, p in self.ops]
        return f"Augment([{', '.join(parts)}])"


def preset(name: str, seed: int | None = None, generator: torch.Generator | None = None) -> Augment:
    """The named recipe from PRESETS as an ``Augment``."""
    if name not in PRESETS:
        raise ValueError(f"unknown augmentation preset {name!r}; valid presets: {', '.join(PRESETS)}")
    return Augment(PRESETS[name], seed=seed, generator=generator)


class AugmentedLoader:
    """Wrap a training loader: yields ``(augment(x), y)``, fresh random augmentations every epoch.

    ``device``: move each batch there first (non-blocking), so augmentation runs on the GPU for a CPU DataLoader.
    ``mean``/``std``: normalise after augmenting (colour jitter and clipping expect images in [0, 1]).
    """

    def __init__(self, loader: Iterable, augment: Callable[[torch.Tensor], torch.Tensor] | None = None, *,
                 mean: torch.Tensor | None = None, std: torch.Tensor | None = None,
                 device: torch.device | str | None = None):
        if (mean is None) != (std is None):
            raise ValueError("give both mean and std (to normalise after augmenting), or neither")
        self.loader, self.augment = loader, augment
        self.device = torch.device(device) if device is not None else None
        self.mean, self.std = mean, std

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        from esc_course.data.split import normalize

        mean, std = self.mean, self.std
        for x, y in self.loader:
            if self.device is not None:
                x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
            if self.augment is not None:
                x = self.augment(x)
            if mean is not None:
                if mean.device != x.device:  # once per epoch, not a host-to-device copy per batch
                    mean, std = mean.to(x.device), std.to(x.device)
                x = normalize(x, mean, std)
            yield x, y

    def __getattr__(self, name: str):  # batch_size, dataset, ... of the wrapped loader
        if name == "loader":
            raise AttributeError(name)
        return getattr(self.loader, name)

    def __repr__(self) -> str:
        return f"AugmentedLoader({self.loader!r}, {self.augment!r})"
