"""Batch-wise augmentation: each op against a closed form or torchvision, per-sample randomness, seeds, devices."""

import pytest
import torch

from esc_course.data.augment import (
    AUGMENTATIONS,
    PRESETS,
    Augment,
    AugmentedLoader,
    color_jitter,
    crop,
    from_torchvision,
    hflip,
    preset,
    rotate,
    rotate_by,
    shift_by,
    translate,
    vflip,
)
from esc_course.data.loader import TensorLoader


def batch(n=32, c=3, size=12, seed=0):
    return torch.rand(n, c, size, size, generator=torch.Generator().manual_seed(seed))


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("name", list(AUGMENTATIONS))
@pytest.mark.parametrize("channels", [1, 3])
def test_every_op_keeps_shape_dtype_and_is_seeded(name, channels):
    x = batch(c=channels)
    op = AUGMENTATIONS[name]
    a, b, c = op(x, gen(1)), op(x, gen(1)), op(x, gen(2))
    assert a.shape == x.shape and a.dtype == x.dtype and torch.isfinite(a).all()
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    changed = (a != x).flatten(1).any(1)
    assert 0 < changed.sum() <= len(x)  # each sample draws its own parameters


def test_flips_flip_about_half_the_images_exactly():
    x = batch(200)
    out = hflip(x, gen())
    flipped = (out == x.flip(-1)).flatten(1).all(1)
    kept = (out == x).flatten(1).all(1)
    assert (flipped | kept).all() and 70 < flipped.sum() < 130
    assert torch.equal(hflip(x, gen(), p=1.0), x.flip(-1)) and torch.equal(vflip(x, gen(), p=1.0), x.flip(-2))
    assert torch.equal(vflip(x, gen(), p=0.0), x)


def _shifted(img, dy, dx):
    out = torch.roll(img, (dy, dx), (1, 2))
    if dy > 0:
        out[:, :dy] = 0
    elif dy < 0:
        out[:, dy:] = 0
    if dx > 0:
        out[:, :, :dx] = 0
    elif dx < 0:
        out[:, :, dx:] = 0
    return out


def test_shift_by_moves_whole_pixels_and_fills_zeros():
    x = batch(4, size=10)
    dx, dy = torch.tensor([0, 2, -3, 1]), torch.tensor([0, -1, 2, 3])
    out = shift_by(x, dx, dy)
    for i in range(4):
        assert torch.equal(out[i], _shifted(x[i], int(dy[i]), int(dx[i])))


def test_translate_stays_within_max_shift():
    x = batch(64, size=16)
    out = translate(x, gen(), max_shift=0.125)  # up to 2 pixels
    for i in range(64):
        assert any(torch.equal(out[i], _shifted(x[i], dy, dx)) for dy in range(-2, 3) for dx in range(-2, 3))
    assert torch.equal(translate(x, gen(), max_shift=0.0), x)


def test_rotate_by_matches_torchvision():
    import torchvision.transforms.functional as TF
    from torchvision.transforms import InterpolationMode

    x = batch(3, size=15)
    angles = torch.tensor([-30.0, 12.5, 90.0])
    ours = rotate_by(x, angles)
    for i in range(3):
        theirs = TF.rotate(x[i:i + 1], float(angles[i]), interpolation=InterpolationMode.BILINEAR)
        torch.testing.assert_close(ours[i:i + 1], theirs, atol=1e-5, rtol=0)
    torch.testing.assert_close(rotate(x, gen(), degrees=0.0), x, atol=1e-5, rtol=0)


def test_crop_with_full_scale_is_the_identity_and_zooms_otherwise():
    x = batch(8)
    torch.testing.assert_close(crop(x, gen(), scale=(1.0, 1.0)), x, atol=1e-5, rtol=0)
    # a zoomed-in crop of a smooth ramp has a smaller value range than the whole ramp
    ramp = torch.linspace(0, 1, 16).repeat(8, 1, 16, 1)
    out = crop(ramp, gen(), scale=(0.25, 0.25))
    spread = out.amax((1, 2, 3)) - out.amin((1, 2, 3))
    assert (spread < 0.7).all()
    with pytest.raises(ValueError, match="scale"):
        crop(x, gen(), scale=(0.0, 1.0))


def test_color_jitter_stays_in_range_and_is_identity_without_jitter():
    x = batch(16)
    torch.testing.assert_close(color_jitter(x, gen(), 0.0, 0.0, 0.0), x, atol=1e-6, rtol=0)
    out = color_jitter(x, gen(), brightness=0.8, contrast=0.8, saturation=0.8)
    assert 0 <= out.min() and out.max() <= 1
    grey = torch.full((4, 1, 6, 6), 0.5)
    assert torch.allclose(color_jitter(grey, gen(), 0.0, 0.9, 0.9), grey)  # a flat image has no contrast to change
    # saturation moves pixels to/from their grey value: a grey RGB image (equal channels) stays as it is
    grey_rgb = torch.rand(4, 1, 6, 6).expand(4, 3, 6, 6).contiguous()
    torch.testing.assert_close(color_jitter(grey_rgb, gen(), 0.0, 0.0, 0.9), grey_rgb, atol=1e-6, rtol=0)
    # and changes coloured ones
    assert not torch.allclose(color_jitter(x, gen(), 0.0, 0.0, 0.9), x, atol=1e-3)


def test_augment_composes_names_params_and_callables():
    x = batch(8)
    calls = []

    def mark(x, generator=None):
        calls.append(x.shape)
        return x + 1

    aug = Augment(["hflip", ("rotate", {"degrees": 5.0}), mark], seed=3)
    out = aug(x)
    assert out.shape == x.shape and calls == [x.shape] and len(aug) == 3
    assert "rotate(degrees=5.0)" in repr(aug)
    assert torch.equal(Augment(["hflip", "translate"], seed=1)(x), Augment(["hflip", "translate"], seed=1)(x))
    with pytest.raises(ValueError, match="valid augmentations: hflip"):
        Augment(["flip_lr"])
    with pytest.raises(TypeError, match="preset"):
        Augment("cifar")


def test_presets_resolve_and_unknown_lists_valid():
    x = batch(8)
    for name in PRESETS:
        assert preset(name, seed=0)(x).shape == x.shape
    assert len(preset("none")) == 0
    with pytest.raises(ValueError, match="valid presets: none"):
        preset("heavy")


def test_bad_input_is_named():
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        hflip(torch.rand(3, 8, 8))
    with pytest.raises(ValueError, match="float"):
        hflip(torch.zeros(2, 1, 4, 4, dtype=torch.uint8))


def test_torchvision_transform_is_seeded_and_leaves_global_rng_alone():
    from torchvision import transforms as T

    x = batch(16)
    op = from_torchvision(T.RandomErasing(p=0.5))
    state = torch.get_rng_state()
    a, b = op(x, gen(5)), op(x, gen(5))
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(a, b) and 0 < (a != x).flatten(1).any(1).sum() < 16
    assert torch.equal(Augment([from_torchvision(T.RandomHorizontalFlip(p=1.0))])(x), x.flip(-1))


def test_augmented_loader_augments_each_epoch_and_normalises():
    x, y = batch(40), torch.arange(40)
    base = TensorLoader(x, y, batch_size=16, shuffle=False)
    mean, std = torch.tensor([0.5, 0.5, 0.5]), torch.tensor([0.25, 0.25, 0.25])
    loader = AugmentedLoader(base, Augment(["hflip"], seed=0), mean=mean, std=std)
    assert len(loader) == 3 and loader.batch_size == 16
    first = torch.cat([b for b, _ in loader])
    second = torch.cat([b for b, _ in loader])
    assert not torch.equal(first, second)  # new random flips every epoch
    plain = torch.cat([b for b, _ in AugmentedLoader(base, None, mean=mean, std=std)])
    torch.testing.assert_close(plain, (x - 0.5) / 0.25)
    with pytest.raises(ValueError, match="both mean and std"):
        AugmentedLoader(base, None, mean=mean)


@pytest.mark.gpu
@pytest.mark.parametrize("name", list(AUGMENTATIONS))
def test_ops_run_on_the_gpu_like_on_the_cpu(name):
    x = batch(16)
    cpu = AUGMENTATIONS[name](x, gen(4))
    gpu = AUGMENTATIONS[name](x.cuda(), gen(4))
    assert gpu.device.type == "cuda"
    torch.testing.assert_close(gpu.cpu(), cpu, atol=1e-4, rtol=0)
