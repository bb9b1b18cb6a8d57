"""Real data sets in their own on-disk formats, read by torchvision's own classes; nothing is downloaded.

The tests write tiny files in the formats torchvision expects (MNIST's IDX, raw or .gz; CIFAR-10's pickled
batches; an ImageFolder of PNGs) into a temporary folder, as torchvision's own dataset tests do.
"""

import gzip
import pickle
import struct

import numpy as np
import pytest
import torch

from esc_course.data import real
from esc_course.data.real import DataNotFoundError, data_root, expected_files, missing_files
from esc_course.data.vision import DATASETS, loaders, vision


def write_idx(path, array: np.ndarray, gz: bool = False) -> None:
    """IDX ("Pascal Vincent") format: magic = 0x0000 | type 0x08 (uint8) | ndim, then big-endian int32 sizes."""
    header = struct.pack(">I", 0x0800 | array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.astype(np.uint8).tobytes()
    if gz:
        path = path.with_name(path.name + ".gz")
        data = gzip.compress(data)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def fake_mnist(root, folder="MNIST", n_train=60, n_test=20, gz=False, seed=0):
    """Images whose mean brightness encodes the label (label * 20 + noise), so a loader mix-up would show."""
    rng = np.random.default_rng(seed)
    out = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = np.arange(n) % 10
        images = (labels[:, None, None] * 20 + rng.integers(0, 10, (n, 28, 28))).astype(np.uint8)
        write_idx(root / folder / "raw" / f"{prefix}-images-idx3-ubyte", images, gz)
        write_idx(root / folder / "raw" / f"{prefix}-labels-idx1-ubyte", labels, gz)
        out[prefix] = (images, labels)
    return out


def fake_cifar(root, per_batch=10, seed=0):
    """Five training batches and a test batch: dicts with 'data' (N, 3072) uint8 rows (R, G, B planes) and
    'labels', plus batches.meta with 'label_names', pickled as the "python version" of CIFAR-10 is."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    batches = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        labels = rng.integers(0, 10, per_batch)
        data = rng.integers(0, 256, (per_batch, 3 * 32 * 32)).astype(np.uint8)
        with open(folder / name, "wb") as f:
            pickle.dump({"data": data, "labels": labels.tolist(), "batch_label": name}, f)
        batches[name] = (data, labels)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": list(DATASETS["cifar10"].classes)}, f)
    return batches


@pytest.fixture
def no_md5(monkeypatch):
    """Our fake CIFAR files cannot have the official MD5 sums: check only that the files exist (what
    torchvision's own tests patch too). The library never does this."""
    import os

    import torchvision.datasets.cifar as cifar

    monkeypatch.setattr(cifar, "check_integrity", lambda fpath, md5=None: os.path.isfile(fpath))


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("name, folder", [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST")])
def test_mnist_formats_load_through_torchvision(tmp_path, name, folder, gz):
    written = fake_mnist(tmp_path, folder, gz=gz)
    for split, prefix in (("train", "train"), ("test", "t10k")):
        x, y = vision(name, root=tmp_path, split=split)
        images, labels = written[prefix]
        assert x.shape == (len(labels), 1, 28, 28) and x.dtype == torch.float32
        assert torch.equal(y, torch.from_numpy(labels).long())
        torch.testing.assert_close(x[:, 0], torch.from_numpy(images).float() / 255)
    if gz:  # unpacked next to the .gz copies, as torchvision's download would have left them
        assert not missing_files(name, tmp_path) and all(p.is_file() for p in expected_files(name, tmp_path))


def test_cifar_batches_load_through_torchvision(tmp_path, no_md5):
    batches = fake_cifar(tmp_path)
    x, y = vision("cifar10", root=tmp_path)
    assert x.shape == (50, 3, 32, 32)
    data, labels = batches["data_batch_1"]
    assert torch.equal(y[:10], torch.from_numpy(labels).long())
    # row layout: 1024 red values, then green, then blue, each row-major 32x32
    torch.testing.assert_close(x[0], torch.from_numpy(data[0]).float().reshape(3, 32, 32) / 255)
    xt, yt = vision("cifar10", root=tmp_path, split="test")
    assert xt.shape == (10, 3, 32, 32) and torch.equal(yt, torch.from_numpy(batches["test_batch"][1]).long())


def test_cifar_files_that_are_not_the_official_ones_are_refused(tmp_path):
    fake_cifar(tmp_path)  # without the no_md5 fixture: torchvision's MD5 check refuses to unpickle them
    with pytest.raises(RuntimeError, match="corrupted"):
        vision("cifar10", root=tmp_path)


def test_missing_files_say_what_where_and_how(tmp_path):
    with pytest.raises(DataNotFoundError) as err:
        vision("mnist", root=tmp_path)
    text = str(err.value)
    assert str(tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte") in text
    assert "t10k-labels-idx1-ubyte" in text
    assert "esc-course data fetch mnist" in text
    assert isinstance(err.value, FileNotFoundError)
    fake_mnist(tmp_path)
    (tmp_path / "MNIST" / "raw" / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DataNotFoundError, match="t10k-labels") as err:
        vision("mnist", root=tmp_path)
    assert "train-images" not in str(err.value)  # only what is missing
    with pytest.raises(DataNotFoundError, match="cifar-10-batches-py/data_batch_1"):
        vision("cifar10", root=tmp_path)


def test_root_comes_from_argument_then_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("ESC_DATA", str(tmp_path / "env"))
    assert data_root() == tmp_path / "env"
    assert data_root(tmp_path / "arg") == tmp_path / "arg"
    monkeypatch.delenv("ESC_DATA")
    assert data_root().name == "data"
    fake_mnist(tmp_path / "env")
    monkeypatch.setenv("ESC_DATA", str(tmp_path / "env"))
    assert vision("mnist", split="test")[0].shape == (20, 1, 28, 28)


def test_loaders_on_mnist_files(tmp_path):
    fake_mnist(tmp_path, n_train=100, n_test=30)
    train, val, test = loaders("mnist", batch_size=16, val_fraction=0.2, root=tmp_path, augment="digits")
    assert sum(len(y) for _, y in train) == 80 and val.num_samples == 20 and test.num_samples == 30
    x, _ = next(iter(train))
    assert x.shape == (16, 1, 28, 28)


def write_pngs(folder, classes=("cat", "dog", "owl"), per_class=10, size=(20, 14), seed=0):
    from PIL import Image

    rng = np.random.default_rng(seed)
    for k, name in enumerate(classes):
        (folder / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = np.full((size[1], size[0], 3), 40 * k, np.uint8) + rng.integers(0, 30, (size[1], size[0], 3),
                                                                                      dtype=np.uint8)
            Image.fromarray(pixels).save(folder / name / f"{i}.png")


def test_image_folder_holds_out_a_stratified_test_split(tmp_path):
    write_pngs(tmp_path)
    train = vision("folder", root=tmp_path, image_size=16)
    test = vision("folder", root=tmp_path, split="test", image_size=16)
    assert train.classes == ["cat", "dog", "owl"] and len(train) == 24 and len(test) == 6
    assert sorted(test.targets) == [0, 0, 1, 1, 2, 2]
    assert not set(train.indices) & set(test.indices)
    img, label = train[0]
    assert img.shape == (3, 16, 16) and 0 <= img.min() and img.max() <= 1 and label in (0, 1, 2)


def test_image_folder_uses_train_and_test_subfolders(tmp_path):
    write_pngs(tmp_path / "train", per_class=4)
    write_pngs(tmp_path / "test", per_class=2, seed=1)
    assert len(vision("folder", root=tmp_path)) == 12
    assert len(vision("folder", root=tmp_path, split="test")) == 6


@pytest.mark.parametrize("backend", ["auto", "dataloader"])
def test_loaders_on_an_image_folder(tmp_path, backend):
    write_pngs(tmp_path, per_class=10)
    data = loaders("folder", batch_size=8, val_fraction=0.25, root=tmp_path, image_size=12, backend=backend,
                   num_workers=0, augment="flip")
    assert data.info.classes == ("cat", "dog", "owl") and data.info.channels == 3
    xs = torch.cat([x for x, _ in data.train])
    ys = torch.cat([y for _, y in data.train])
    assert xs.shape == (18, 3, 12, 12) and torch.bincount(ys).tolist() == [6, 6, 6]
    assert sum(len(y) for _, y in data.val) == 6 and sum(len(y) for _, y in data.test) == 6
    assert data.mean.shape == (3,)


def test_image_folder_errors_name_the_layout(tmp_path):
    with pytest.raises(DataNotFoundError, match="one sub-folder per class"):
        vision("folder", root=tmp_path / "nothing-here")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataNotFoundError, match="no images found"):
        vision("folder", root=tmp_path / "empty")


def test_fetch_offline_fails_with_the_reason(tmp_path, monkeypatch):
    from urllib.error import URLError

    import torchvision.datasets.mnist as mnist

    def offline(*args, **kwargs):
        raise URLError("no network")

    monkeypatch.setattr(mnist, "download_and_extract_archive", offline)
    with pytest.raises(RuntimeError, match="Error downloading"):
        real.fetch("mnist", tmp_path)


def test_cli_data_list_shows_what_is_there(tmp_path, capsys):
    from esc_course.cli import main

    fake_mnist(tmp_path)
    assert main(["data", "list", "--root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert "embedded" in lines["digits"] and "embedded" in lines["shapes"]
    assert "ready" in lines["mnist"]
    assert "missing 7 files" in lines["cifar10"] and "esc-course data fetch cifar10" in lines["cifar10"]


def test_cli_data_fetch(tmp_path, capsys, monkeypatch):
    from urllib.error import URLError

    import torchvision.datasets.mnist as mnist

    from esc_course.cli import main

    assert main(["data", "fetch", "digits"]) == 0 and "nothing to fetch" in capsys.readouterr().out
    assert main(["data", "fetch", "imagenet"]) == 2 and "can fetch: mnist" in capsys.readouterr().err

    def offline(*args, **kwargs):
        raise URLError("no network")

    monkeypatch.setattr(mnist, "download_and_extract_archive", offline)
    assert main(["data", "fetch", "mnist", "--root", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "could not download mnist" in err and str(tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte") in err

    def pretend_download(url, download_root, filename, md5=None, **kwargs):  # what a download leaves behind:
        fake_mnist(tmp_path, gz=True)  # the archives,
        fake_mnist(tmp_path, gz=False)  # unpacked

    monkeypatch.setattr(mnist, "download_and_extract_archive", pretend_download)
    assert main(["data", "fetch", "mnist", "--root", str(tmp_path)]) == 0
    assert "4 files in" in capsys.readouterr().out
