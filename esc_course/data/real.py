"""Real image data sets on disk, read by torchvision's own classes in their own formats.

    <root>/MNIST/raw/train-images-idx3-ubyte ...          MNIST (IDX files; .gz copies are unpacked on first use)
    <root>/FashionMNIST/raw/train-images-idx3-ubyte ...   FashionMNIST (same layout)
    <root>/cifar-10-batches-py/data_batch_1 ...           CIFAR-10 (the "python version" pickled batches)
    any/folder/<class name>/<image>.png                    an ImageFolder: the club's practice data

``<root>`` is the ``root`` argument, else the ESC_DATA environment variable, else the checkout's ``data/`` folder.
Nothing is downloaded unless asked (``download=True`` or ``esc-course data fetch NAME``); missing files raise
``DataNotFoundError`` saying which files are expected where and how to get them.

Safety: CIFAR-10's batches are Python pickles. torchvision checks each file's MD5 against the official one before
unpickling it, and nothing here bypasses that check, so only the genuine files are ever unpickled.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch

ENV_VAR = "ESC_DATA"
_CHECKOUT = Path(__file__).resolve().parents[2]

_MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                "t10k-labels-idx1-ubyte")

# name -> (torchvision class name, folder under root, expected files, where they come from)
TORCHVISION_SETS: dict[str, tuple[str, str, tuple[str, ...], str]] = {
    "mnist": ("MNIST", "MNIST/raw", _MNIST_FILES, "https://ossci-datasets.s3.amazonaws.com/mnist/"),
    "fashion_mnist": ("FashionMNIST", "FashionMNIST/raw", _MNIST_FILES,
                      "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"),
    "cifar10": ("CIFAR10", "cifar-10-batches-py",
                tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch", "batches.meta"),
                "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz (unpacked)"),
}


class DataNotFoundError(FileNotFoundError):
    """A data set's files are not where they are expected."""


def data_root(root: str | os.PathLike | None = None) -> Path:
    """Where real data sets live: ``root``, else $ESC_DATA, else ``data/`` of this checkout (or of the cwd)."""
    if root is not None:
        return Path(root).expanduser()
    if os.environ.get(ENV_VAR, "").strip():
        return Path(os.environ[ENV_VAR].strip()).expanduser()
    if (_CHECKOUT / "pyproject.toml").is_file():  # an editable install: the repository's data/ folder
        return _CHECKOUT / "data"
    return Path.cwd() / "data"


def expected_files(name: str, root: str | os.PathLike | None = None) -> list[Path]:
    """The files torchvision reads for data set ``name`` under ``root``."""
    _, folder, files, _ = _spec(name)
    return [data_root(root) / folder / f for f in files]


def missing_files(name: str, root: str | os.PathLike | None = None) -> list[Path]:
    """Expected files that are absent (an IDX file also counts as present when its .gz copy is there)."""
    return [p for p in expected_files(name, root) if not p.is_file() and not p.with_name(p.name + ".gz").is_file()]


def _spec(name: str):
    if name not in TORCHVISION_SETS:
        raise ValueError(f"unknown torchvision data set {name!r}; valid names: {', '.join(TORCHVISION_SETS)}")
    return TORCHVISION_SETS[name]


def _not_found(name: str, root: str | os.PathLike | None, missing: list[Path]) -> DataNotFoundError:
    base = data_root(root)
    lines = "\n".join(f"  {p}" for p in missing)
    return DataNotFoundError(
        f"data set {name!r} is not under {base}: these files are missing:\n{lines}\n"
        f"Get them when online with:  esc-course data fetch {name} --root {base}\n"
        f"(or pass download=True), or copy them there by hand from {_spec(name)[3]}. "
        f"Set root=... or the {ENV_VAR} environment variable to use another folder."
    )


def _unpack_gz(name: str, root: str | os.PathLike | None) -> None:
    """MNIST-style sets: torchvision reads the unpacked IDX files; unpack any that exist only as .gz."""
    from torchvision.datasets.utils import extract_archive

    for path in expected_files(name, root):
        gz = path.with_name(path.name + ".gz")
        if not path.is_file() and gz.is_file():
            extract_archive(str(gz), str(path.parent))


def torchvision_dataset(name: str, root: str | os.PathLike | None = None, train: bool = True,
                        download: bool = False, transform=None):
    """The torchvision Dataset object (MNIST, FashionMNIST or CIFAR10) for ``name``, read from ``root``."""
    import torchvision.datasets as tvd

    cls_name, _, _, _ = _spec(name)
    base = data_root(root)
    if download:
        base.mkdir(parents=True, exist_ok=True)
    else:
        missing = missing_files(name, root)
        if missing:
            raise _not_found(name, root, missing)
        _unpack_gz(name, root)
    return getattr(tvd, cls_name)(str(base), train=train, download=download, transform=transform)


def as_tensors(dataset) -> tuple[torch.Tensor, torch.Tensor]:
    """x (N, C, H, W) float32 in [0, 1] and y (N,) int64 from a torchvision MNIST/CIFAR object's arrays
    (read in one go, not image by image through PIL)."""
    data = dataset.data
    data = torch.as_tensor(data) if not isinstance(data, torch.Tensor) else data
    if data.ndim == 3:  # MNIST-style (N, H, W)
        x = data[:, None]
    else:  # CIFAR-style (N, H, W, C)
        x = data.permute(0, 3, 1, 2)
    y = torch.as_tensor(dataset.targets, dtype=torch.int64)
    return x.float().div_(255.0).contiguous(), y


def fetch(name: str, root: str | os.PathLike | None = None) -> list[Path]:
    """Download ``name`` (train and test) into ``root`` through torchvision; return the files now in place."""
    for train in (True, False):
        torchvision_dataset(name, root, train=train, download=True)
    return expected_files(name, root)


def default_workers() -> int:
    """DataLoader workers: 0 on Windows and macOS (spawned workers re-import the notebook's code and often fail
    or start slowly there), else up to 4, leaving one core for the main process."""
    if sys.platform.startswith(("win", "darwin")):
        return 0
    return max(0, min(4, (os.cpu_count() or 1) - 1))


def _folder_layout(path: Path) -> dict[str, Path] | None:
    """``path/train`` and ``path/test`` (or ``path/val``) when the folder is already split, else None."""
    test = next((path / d for d in ("test", "val") if (path / d).is_dir()), None)
    return {"train": path / "train", "test": test} if (path / "train").is_dir() and test else None


class FolderSplit(torch.utils.data.Subset):
    """Part of an ImageFolder that keeps ``classes`` and ``targets`` (a plain Subset drops them)."""

    def __init__(self, dataset, indices):
        super().__init__(dataset, [int(i) for i in indices])
        self.classes = dataset.classes
        self.targets = [dataset.targets[i] for i in self.indices]


def image_folder(path: str | os.PathLike, split: str = "train", image_size: int = 32, test_fraction: float = 0.2,
                 seed: int = 0):
    """An ImageFolder (``path/<class name>/<image>``, any of PNG/JPEG/BMP/...) as RGB tensors (3, s, s) in [0, 1].

    If ``path`` holds ``train/`` and ``test/`` (or ``val/``) folders, those are the splits; otherwise a stratified
    ``test_fraction`` of each class is held out as the test split (the same ``seed`` gives the same split).
    The result has ``classes`` and ``targets``, like torchvision's ImageFolder.
    """
    from torchvision import datasets, transforms

    path = Path(path).expanduser()
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    if not path.is_dir():
        raise DataNotFoundError(f"image folder {path} does not exist; expected {path}/<class name>/<image>.png "
                                f"(one sub-folder per class), or {path}/train/<class>/... and {path}/test/<class>/...")
    tf = transforms.Compose([transforms.Resize((image_size, image_size)), transforms.ToTensor()])
    layout = _folder_layout(path)
    try:
        if layout:
            return datasets.ImageFolder(str(layout[split]), transform=tf)
        full = datasets.ImageFolder(str(path), transform=tf)
    except FileNotFoundError as err:
        raise DataNotFoundError(f"no images found in {path}: expected {path}/<class name>/<image>.png, one "
                                f"sub-folder per class ({err})") from None
    from esc_course.data.split import split_indices

    train_idx, test_idx = split_indices(torch.tensor(full.targets), (1 - test_fraction, test_fraction), seed=seed)
    return FolderSplit(full, (train_idx if split == "train" else test_idx).sort().values)
