"""Image data sets by name, embedded or on disk, behind one API: ``vision`` (the data) and ``loaders`` (batches).

    x, y = vision("digits")                          # tensors (N, C, H, W) in [0, 1], labels (N,)
    x, y = vision("mnist", split="test")             # torchvision's MNIST files under data/ (or root / $ESC_DATA)
    train, val, test = loaders("shapes", batch_size=64, val_fraction=0.2, device=device, augment="shapes")

Embedded (no network, ship with the package): ``digits`` (UCI, 8x8) and ``shapes`` (generated, 16x16 RGB).
On disk (esc_course.data.real): ``mnist``, ``fashion_mnist``, ``cifar10``, and ``folder`` (any ImageFolder,
the club's practice data: ``loaders("folder", root="path/to/folder")``).

Test splits. MNIST, FashionMNIST and CIFAR-10 have official ones. digits has none: its test split is a fixed
stratified 20 % of each class (seed 0, ``DIGITS_TEST``), the same on every machine. shapes' test images are
generated from another seed than its training images (``SHAPES_TRAIN``, ``SHAPES_TEST``). A folder with
``train/`` and ``test/`` sub-folders uses them, else 20 % of each class is held out the same way as digits.
The validation split is then cut, stratified and seeded, from the training split; normalisation statistics
come from the training part only, so nothing about validation or test images leaks into training.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch

from esc_course.data.shapes import SHAPE_CLASSES

FOLDER = "folder"  # the name that loads an ImageFolder from ``root``
DIGITS_TEST = {"fraction": 0.2, "seed": 0}  # digits' fixed, stratified test split
SHAPES_TRAIN = {"n": 3000, "seed": 0}
SHAPES_TEST = {"n": 1000, "seed": 1}
TENSOR_LIMIT_BYTES = 1 << 30  # an ImageFolder up to this size (as float32) is decoded once and kept as tensors


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    channels: int
    size: int  # pixels per side (images are square)
    classes: tuple[str, ...]
    embedded: bool  # ships with the package (no files, no network)
    description: str

    @property
    def num_classes(self) -> int:
        return len(self.classes)


_DIGITS = tuple(str(i) for i in range(10))
DATASETS: dict[str, DatasetInfo] = {
    "digits": DatasetInfo("digits", 1, 8, _DIGITS, True, "UCI handwritten digits: 1,797 images, 8x8, 17 grey levels "
                          "(1,438 train / 359 test: a fixed stratified 20 %)"),
    "shapes": DatasetInfo("shapes", 3, 16, SHAPE_CLASSES, True, "generated coloured shapes with noise, 16x16 RGB "
                          "(3,000 train / 1,000 test, from different seeds)"),
    "mnist": DatasetInfo("mnist", 1, 28, _DIGITS, False, "MNIST handwritten digits, 28x28 (60,000 / 10,000)"),
    "fashion_mnist": DatasetInfo("fashion_mnist", 1, 28, ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                 "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"), False,
                                 "Zalando's FashionMNIST clothing images, 28x28 (60,000 / 10,000)"),
    "cifar10": DatasetInfo("cifar10", 3, 32, ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog",
                           "horse", "ship", "truck"), False, "CIFAR-10 photos, 32x32 RGB (50,000 / 10,000)"),
}


def get_info(name: str) -> DatasetInfo:
    try:
        return DATASETS[name]
    except KeyError:
        raise ValueError(f"unknown data set {name!r}; valid names: {', '.join(DATASETS)}, or {FOLDER!r} with "
                         f"root=<an ImageFolder>") from None


def vision(name: str, root: str | os.PathLike | None = None, split: str = "train", download: bool = False, *,
           image_size: int = 32):
    """The ``split`` ("train" or "test") of data set ``name``.

    Returns ``(x, y)``: x (N, C, H, W) float32 in [0, 1], y (N,) int64, for the names in DATASETS; for ``"folder"``
    a Dataset of ``(image (3, image_size, image_size), label)`` with ``classes`` and ``targets`` (read lazily).
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    if isinstance(root, str) and root in ("train", "val", "test"):  # vision("digits", "test"): root is 2nd
        raise ValueError(f"root={root!r} looks like a split; call vision({name!r}, split={root!r})")
    if name == FOLDER:
        if root is None:
            raise ValueError("vision('folder') needs root=<the ImageFolder's path>")
        from esc_course.data.real import image_folder

        return image_folder(root, split, image_size=image_size)
    get_info(name)
    if name == "digits":
        from esc_course.data.embedded import digits
        from esc_course.data.split import split_indices

        x, y = digits()
        f = DIGITS_TEST["fraction"]
        train_idx, test_idx = split_indices(y, (1 - f, f), seed=DIGITS_TEST["seed"])
        idx = train_idx if split == "train" else test_idx
        return x[idx], y[idx]
    if name == "shapes":
        from esc_course.data.shapes import shapes

        return shapes(**(SHAPES_TRAIN if split == "train" else SHAPES_TEST))
    from esc_course.data.real import as_tensors, torchvision_dataset

    return as_tensors(torchvision_dataset(name, root, train=split == "train", download=download))


@dataclass
class DataSplits:
    """Train/val/test iterables of ``(x, y)`` batches; unpacks as ``train, val, test = loaders(...)``.

    ``val`` is None when ``val_fraction`` is 0; ``mean``/``std`` are the training split's channel statistics
    used for normalisation (None with ``normalize=False``).
    """

    train: Any
    val: Any
    test: Any
    info: DatasetInfo
    mean: torch.Tensor | None = None
    std: torch.Tensor | None = None

    def __iter__(self) -> Iterator[Any]:
        return iter((self.train, self.val, self.test))


def loaders(name: str, batch_size: int = 64, val_fraction: float = 0.2, device: torch.device | str | None = None,
            augment: str | Callable[[torch.Tensor], torch.Tensor] | None = None, seed: int = 0, *,
            root: str | os.PathLike | None = None, download: bool = False, normalize: bool = True,
            eval_batch_size: int | None = None, train_size: int | None = None, image_size: int = 32,
            backend: str = "auto", num_workers: int | None = None) -> DataSplits:
    """Batches of data set ``name`` for training (shuffled, augmented), validation and test.

    Args:
        val_fraction: share of the training split held out for validation, stratified by class, seeded
            (0.25 with digits' 80/20 test split gives the slides' 6:2:2).
        device: where batches are delivered (default CPU); small sets live there whole (TensorLoader).
        augment: a preset name (esc_course.data.augment.PRESETS) or a callable on batches; training batches only,
            applied on ``device`` before normalisation.
        train_size: use only this many training images (a stratified subset), e.g. for quick runs.
        backend: "auto" (tensors on the device for everything that fits, a DataLoader for a large ImageFolder),
            "tensor" or "dataloader".
        num_workers: DataLoader workers (default: esc_course.data.real.default_workers()).
    """
    if not 0 <= val_fraction < 1:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction!r}")
    if backend not in ("auto", "tensor", "dataloader"):
        raise ValueError(f"backend must be 'auto', 'tensor' or 'dataloader', got {backend!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    device = torch.device(device) if device is not None else torch.device("cpu")
    if isinstance(augment, str):
        from esc_course.data.augment import preset

        augment = preset(augment, seed=seed)
    opts = dict(batch_size=batch_size, eval_batch_size=eval_batch_size or max(batch_size, 256), device=device,
                augment=augment, seed=seed, normalize=normalize, val_fraction=val_fraction, train_size=train_size)
    if name != FOLDER:
        info = get_info(name)
        train = vision(name, root, "train", download)
        test = vision(name, root, "test", download)
        if backend == "dataloader":
            from torch.utils.data import TensorDataset

            return _dataset_splits(TensorDataset(*train), TensorDataset(*test), info, train[1], num_workers=
                                   num_workers if num_workers is not None else 0, **opts)
        return _tensor_splits(train, test, info, **opts)
    train_ds = vision(FOLDER, root, "train", image_size=image_size)
    test_ds = vision(FOLDER, root, "test", image_size=image_size)
    info = DatasetInfo(FOLDER, 3, image_size, tuple(train_ds.classes), False, f"ImageFolder {root}")
    if backend == "tensor" or (backend == "auto" and
                               len(train_ds) * 3 * image_size**2 * 4 <= TENSOR_LIMIT_BYTES):
        return _tensor_splits(_stack(train_ds), _stack(test_ds), info, **opts)
    return _dataset_splits(train_ds, test_ds, info, torch.tensor(train_ds.targets), num_workers=num_workers, **opts)


def _stack(dataset) -> tuple[torch.Tensor, torch.Tensor]:
    """Decode every image once: (x (N, C, H, W), y (N,))."""
    xs, ys = zip(*(dataset[i] for i in range(len(dataset))))
    return torch.stack(xs), torch.tensor(ys, dtype=torch.int64)


def _train_val_indices(y: torch.Tensor, val_fraction: float, train_size: int | None, seed: int,
                       batch_size: int | None = None):
    from esc_course.data.split import split_indices

    if val_fraction > 0:
        train_idx, val_idx = split_indices(y, (1 - val_fraction, val_fraction), seed=seed)
    else:
        train_idx, val_idx = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed)), None
    if train_size is not None and train_size < len(train_idx):
        if isinstance(train_size, bool) or not isinstance(train_size, int) or train_size < 1:
            raise ValueError(f"train_size must be a positive integer, got {train_size!r}")
        train_idx = train_idx[_stratified_first(y[train_idx], train_size, seed)]
    if batch_size is not None and batch_size > len(train_idx):
        raise ValueError(f"batch_size={batch_size} is larger than the training split ({len(train_idx)} samples); "
                         f"use batch_size <= {len(train_idx)}")
    return train_idx, val_idx


def _stratified_first(y: torch.Tensor, k: int, seed: int) -> torch.Tensor:
    """Exactly ``k`` positions of ``y``, every class in proportion: each class is shuffled and its members get
    keys (rank + 0.5) / class size; the k smallest keys are taken."""
    g = torch.Generator().manual_seed(seed)
    keys = torch.empty(len(y))
    for c in torch.unique(y):
        idx = torch.nonzero(y == c).flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        keys[idx] = (torch.arange(len(idx)) + 0.5) / len(idx)
    return torch.argsort(keys, stable=True)[:k]


def _tensor_splits(train, test, info, *, batch_size, eval_batch_size, device, augment, seed, normalize,
                   val_fraction, train_size) -> DataSplits:
    """Small sets: every split lives on ``device`` whole; batches are slices (TensorLoader)."""
    from esc_course.data.augment import AugmentedLoader
    from esc_course.data.loader import TensorLoader
    from esc_course.data.split import channel_stats
    from esc_course.data.split import normalize as norm

    x, y = train
    train_idx, val_idx = _train_val_indices(y, val_fraction, train_size, seed, batch_size)
    mean, std = channel_stats(x[train_idx]) if normalize else (None, None)

    def prepared(t: torch.Tensor) -> torch.Tensor:
        return norm(t, mean, std) if normalize else t

    g = torch.Generator().manual_seed(seed)
    if augment is None:
        train_loader = TensorLoader(prepared(x[train_idx]), y[train_idx], batch_size, device=device, generator=g)
    else:  # raw [0, 1] images stay on the device; each batch is augmented, then normalised
        raw = TensorLoader(x[train_idx], y[train_idx], batch_size, device=device, generator=g)
        train_loader = AugmentedLoader(raw, augment, mean=mean, std=std)
    val = None if val_idx is None else TensorLoader(prepared(x[val_idx]), y[val_idx], eval_batch_size,
                                                    shuffle=False, device=device)
    test_loader = TensorLoader(prepared(test[0]), test[1], eval_batch_size, shuffle=False, device=device)
    return DataSplits(train_loader, val, test_loader, info, mean, std)


def _dataset_splits(train_ds, test_ds, info, targets, *, batch_size, eval_batch_size, device, augment, seed,
                    normalize, val_fraction, train_size, num_workers) -> DataSplits:
    """Large sets: a DataLoader reads and decodes in worker processes; batches move to ``device`` and are
    augmented and normalised there (AugmentedLoader)."""
    from torch.utils.data import DataLoader, Subset

    from esc_course.data.augment import AugmentedLoader
    from esc_course.data.real import default_workers
    from esc_course.data.split import channel_stats

    train_idx, val_idx = _train_val_indices(targets, val_fraction, train_size, seed, batch_size)
    mean = std = None
    if normalize:  # statistics from (a seeded sample of up to 2,048 of) the training images only
        sample = train_idx[torch.randperm(len(train_idx), generator=torch.Generator().manual_seed(seed))[:2048]]
        mean, std = channel_stats(torch.stack([train_ds[int(i)][0] for i in sample]))
    workers = default_workers() if num_workers is None else num_workers
    common = dict(num_workers=workers, pin_memory=device.type == "cuda", persistent_workers=workers > 0)

    def wrap(ds, size, shuffle, aug):
        dl = DataLoader(ds, batch_size=size, shuffle=shuffle, **common,
                        generator=torch.Generator().manual_seed(seed) if shuffle else None)
        return AugmentedLoader(dl, aug, mean=mean, std=std, device=device)

    train = wrap(Subset(train_ds, train_idx.tolist()), batch_size, True, augment)
    val = None if val_idx is None else wrap(Subset(train_ds, val_idx.tolist()), eval_batch_size, False, None)
    return DataSplits(train, val, wrap(test_ds, eval_batch_size, False, None), info, mean, std)
