"""Every CNN: output shape and finite values/gradients on the input sizes of the course's data sets."""

import pytest
import torch

from esc_course.models import count_parameters
from esc_course.models.cnn import (
    CNN_MODELS,
    DepthwiseSeparableConv,
    LeNet5,
    NiN,
    SeparableNet,
    SmallResNet,
    SmallVGG,
    build_cnn,
)

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


@pytest.mark.parametrize("channels, size", SIZES)
def test_lenet5(channels, size):
    check(LeNet5(in_channels=channels, num_classes=10, image_size=size), channels, size, 10)


def test_lenet5_has_the_classic_geometry_and_parameter_count():
    model = LeNet5(in_channels=1, num_classes=10, image_size=32)
    assert model.classifier[1].in_features == 16 * 5 * 5
    # conv1 6*(25+1), conv2 16*(6*25+1), fc 400*120+120, 120*84+84, 84*10+10: LeCun et al.'s 61,706 (C5 as FC)
    assert count_parameters(model) == 156 + 2416 + 48120 + 10164 + 850 == 61_706
    assert LeNet5(in_channels=1, num_classes=10, image_size=28).classifier[1].in_features == 400
    with pytest.raises(ValueError, match="image_size=32"):
        model(torch.randn(1, 1, 28, 28))


@pytest.mark.parametrize("channels, size", SIZES)
@pytest.mark.parametrize("batch_norm", [False, True])
def test_nin_has_no_fully_connected_layer(channels, size, batch_norm):
    model = NiN(in_channels=channels, num_classes=6, widths=(8, 16), batch_norm=batch_norm)
    check(model, channels, size, 6)
    assert not any(isinstance(m, torch.nn.Linear) for m in model.modules())
    assert sum(isinstance(m, torch.nn.Conv2d) and m.kernel_size == (1, 1) for m in model.modules()) == 6
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules()) == (6 if batch_norm else 0)


@pytest.mark.parametrize("channels, size", SIZES)
def test_separable_net(channels, size):
    check(SeparableNet(in_channels=channels, num_classes=4, widths=(8, 16)), channels, size, 4)


def test_depthwise_separable_block_saves_weights():
    block = DepthwiseSeparableConv(32, 64, stride=2)
    out = block(torch.randn(2, 32, 8, 8))
    assert out.shape == (2, 64, 4, 4) and torch.isfinite(out).all()
    convs = [m for m in block.modules() if isinstance(m, torch.nn.Conv2d)]
    weights = sum(m.weight.numel() for m in convs)
    assert weights == 32 * 9 + 32 * 64  # vs 32 * 64 * 9 for a standard 3x3 conv: 1/64 + 1/9 of it
    assert convs[0].groups == 32


def test_build_cnn_by_name():
    for name in CNN_MODELS:
        model = build_cnn(name, in_channels=3, num_classes=6, image_size=16)
        assert model(torch.randn(2, 3, 16, 16)).shape == (2, 6)
    assert isinstance(build_cnn("vgg", in_channels=1, num_classes=10, image_size=8, batch_norm=True)
                      .features[1], torch.nn.BatchNorm2d)
    with pytest.raises(ValueError, match="valid models: lenet5, vgg, resnet, nin, separable"):
        build_cnn("alexnet", in_channels=1, num_classes=10, image_size=8)
