"""Every CNN: output shape and finite values/gradients on the input sizes of the course's data sets."""

import pytest
import torch

from esc_course.models import count_parameters
from esc_course.models.cnn import SmallResNet, SmallVGG

SIZES = [(1, 8), (3, 16), (1, 28), (3, 32)]  # digits, shapes, MNIST, CIFAR-10


def check(model, channels, size, classes):
    x = torch.randn(4, channels, size, size)
    out = model(x)
    assert out.shape == (4, classes)
    assert torch.isfinite(out).all()
    out.logsumexp(1).mean().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("channels, size", SIZES)
@pytest.mark.parametrize("batch_norm", [False, True])
def test_small_vgg(channels, size, batch_norm):
    check(SmallVGG(in_channels=channels, num_classes=7, widths=(8, 16, 32), batch_norm=batch_norm), channels, size, 7)


@pytest.mark.parametrize("channels, size", SIZES)
@pytest.mark.parametrize("blocks, skip", [(1, True), ((2, 1, 1), True), (1, False)])
def test_small_resnet(channels, size, blocks, skip):
    check(SmallResNet(in_channels=channels, num_classes=5, widths=(8, 16, 32), blocks=blocks, skip=skip),
          channels, size, 5)


def test_vgg_batch_norm_adds_norm_layers_and_drops_conv_bias():
    plain = SmallVGG(in_channels=1, num_classes=10, widths=(16, 32, 64))
    bn = SmallVGG(in_channels=1, num_classes=10, widths=(16, 32, 64), batch_norm=True)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in plain.modules())
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in bn.modules()) == 6
    conv = (1 * 16 + 16 * 16 + 16 * 32 + 32 * 32 + 32 * 64 + 64 * 64) * 9 + 2 * (16 + 32 + 64)
    assert count_parameters(plain) == conv + 64 * 10 + 10 == 72_442


def test_resnet_has_projection_shortcuts_only_where_shapes_change():
    model = SmallResNet(in_channels=3, num_classes=10, widths=(16, 32), blocks=2)
    shortcuts = [b.shortcut for b in model.stages]
    assert [isinstance(s, torch.nn.Identity) for s in shortcuts] == [True, True, False, True]
    plain = SmallResNet(in_channels=3, num_classes=10, widths=(16, 32), blocks=2, skip=False)
    assert count_parameters(plain) < count_parameters(model)  # the 1x1 projection is gone too


def test_bad_sizes_are_named():
    with pytest.raises(ValueError, match="widths"):
        SmallVGG(in_channels=1, num_classes=10, widths=())
    with pytest.raises(ValueError, match="blocks"):
        SmallResNet(in_channels=1, num_classes=10, widths=(8, 16), blocks=(1, 1, 1))
