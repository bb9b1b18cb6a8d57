"""One entry point for image data: vision() and loaders() on the embedded sets (no files, no network)."""

import pytest
import torch

from esc_course.data.loader import TensorLoader
from esc_course.data.vision import DATASETS, DIGITS_TEST, DataSplits, get_info, loaders, vision


@pytest.mark.parametrize("name", [n for n, info in DATASETS.items() if info.embedded])
def test_embedded_sets_match_their_info(name):
    info = DATASETS[name]
    for split in ("train", "test"):
        x, y = vision(name, split=split)
        assert x.shape[1:] == (info.channels, info.size, info.size) and x.dtype == torch.float32
        assert 0 <= x.min() and x.max() <= 1
        assert y.dtype == torch.int64 and set(y.tolist()) == set(range(info.num_classes))
    assert len(info.classes) == info.num_classes


def test_digits_test_split_is_fixed_disjoint_and_stratified():
    from esc_course.data.embedded import digits

    xa, ya = vision("digits", split="train")
    xb, yb = vision("digits", split="test")
    x, _ = digits()
    assert len(xa) + len(xb) == len(x) == 1797
    assert abs(len(xb) - DIGITS_TEST["fraction"] * 1797) < 10
    rows = {tuple(r.tolist()) for r in x.flatten(1)}
    train_rows = {tuple(r.tolist()) for r in xa.flatten(1)}
    test_rows = {tuple(r.tolist()) for r in xb.flatten(1)}
    assert train_rows | test_rows == rows  # all of them (the set has a few exact duplicate images)
    share = torch.bincount(yb, minlength=10) / torch.bincount(torch.cat([ya, yb]), minlength=10)
    assert (share - 0.2).abs().max() < 0.02  # every class split 80/20
    assert torch.equal(vision("digits", split="test")[0], xb)  # the same on every call


def test_shapes_test_images_are_not_training_images():
    xa, _ = vision("shapes")
    xb, _ = vision("shapes", split="test")
    assert len(xa) == 3000 and len(xb) == 1000
    assert not torch.allclose(xa[:1000], xb)


def test_unknown_names_and_splits_are_named():
    with pytest.raises(ValueError, match="valid names: digits, shapes"):
        get_info("imagenet")
    with pytest.raises(ValueError, match="split must be"):
        vision("digits", split="validation")
    with pytest.raises(ValueError, match="root"):
        vision("folder")


def test_loaders_split_ratios_and_normalise_with_training_statistics():
    data = loaders("digits", batch_size=64, val_fraction=0.25, seed=0)
    assert isinstance(data, DataSplits)
    train, val, test = data
    assert all(isinstance(d, TensorLoader) for d in (train, val, test))
    sizes = [train.num_samples, val.num_samples, test.num_samples]
    assert sum(sizes) == 1797
    assert [round(s / 1797, 1) for s in sizes] == [0.6, 0.2, 0.2]  # the slides' 6:2:2
    xt = torch.cat([x for x, _ in train])
    # statistics from the training part only: it is exactly standardised, the others only roughly
    assert abs(xt.mean().item()) < 1e-4 and abs(xt.std().item() - 1) < 1e-3
    xv = torch.cat([x for x, _ in val])
    assert abs(xv.mean().item()) > 1e-4
    assert data.mean.shape == (1,) and 0.2 < data.mean.item() < 0.4
    assert data.info.name == "digits" and data.info.num_classes == 10
    assert torch.bincount(val.y, minlength=10).min() >= 25  # stratified


def test_loaders_are_reproducible_by_seed():
    a = torch.cat([y for _, y in loaders("digits", 32, 0.2, seed=4).train])
    b = torch.cat([y for _, y in loaders("digits", 32, 0.2, seed=4).train])
    c = torch.cat([y for _, y in loaders("digits", 32, 0.2, seed=5).train])
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_augmentation_touches_training_batches_only():
    data = loaders("shapes", batch_size=500, val_fraction=0.1, augment="shapes", seed=0)
    e1 = torch.cat([x for x, _ in data.train])
    e2 = torch.cat([x for x, _ in data.train])
    assert e1.shape == e2.shape and not torch.equal(e1, e2)
    assert abs(e1.mean().item()) < 0.2  # normalised after augmenting
    v1 = torch.cat([x for x, _ in data.val])
    assert torch.equal(v1, torch.cat([x for x, _ in data.val]))


def test_no_validation_subset_and_bad_arguments():
    data = loaders("digits", batch_size=128, val_fraction=0.0, train_size=300, normalize=False)
    assert data.val is None and data.mean is None
    assert data.train.num_samples == 300 and torch.bincount(data.train.y).min() >= 29
    assert data.train.x.max() <= 1.0  # not normalised
    with pytest.raises(ValueError, match="val_fraction"):
        loaders("digits", val_fraction=1.0)
    with pytest.raises(ValueError, match="backend"):
        loaders("digits", backend="fast")
    with pytest.raises(ValueError, match="batch_size"):
        loaders("digits", batch_size=0)


def test_dataloader_backend_gives_the_same_splits():
    tensor = loaders("digits", batch_size=100, val_fraction=0.2, seed=1)
    dl = loaders("digits", batch_size=100, val_fraction=0.2, seed=1, backend="dataloader", num_workers=0)
    assert isinstance(dl.train.loader, torch.utils.data.DataLoader)
    xs = torch.cat([x for x, _ in dl.val])
    torch.testing.assert_close(xs, tensor.val.x)  # same validation images, same normalisation
    n = sum(len(y) for _, y in dl.train)
    assert n == tensor.train.num_samples


def test_a_split_passed_as_root_is_refused():
    with pytest.raises(ValueError, match="split='test'"):
        vision("digits", "test")
