"""Convolutional networks for small images, with explicit keyword arguments.

Every model takes ``(N, in_channels, H, W)`` and returns logits ``(N, num_classes)``. Those that end in global
average pooling (all but LeNet-5) work for any input of at least 8x8 (the embedded digits), 16x16 (shapes),
28x28 (MNIST) or 32x32 (CIFAR-10) pixels.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from esc_course.models.activations import get_activation
from esc_course.scratch.conv import output_size


def _check_sizes(in_channels: int, num_classes: int, widths: Sequence[int]) -> None:
    if in_channels < 1 or num_classes < 1 or not widths or any(w < 1 for w in widths):
        raise ValueError(f"sizes must be positive, got in_channels={in_channels}, num_classes={num_classes}, "
                         f"widths={tuple(widths)} (at least one width)")


def conv_bn_relu(in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                 batch_norm: bool = True) -> list[nn.Module]:
    """Conv (same padding) -> [BatchNorm] -> ReLU; the conv has no bias when batch norm follows (BN's shift
    replaces it)."""
    layers: list[nn.Module] = [nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride,
                                         padding=kernel_size // 2, bias=not batch_norm)]
    if batch_norm:
        layers.append(nn.BatchNorm2d(out_channels))
    layers.append(nn.ReLU(inplace=True))
    return layers


class SmallVGG(nn.Module):
    """VGG's recipe (Simonyan & Zisserman 2015) at small scale: blocks of 3x3 convolutions, each block followed
    by 2x2 max pooling, so the width grows as the image shrinks; then global average pooling and one Linear layer.

    Two 3x3 convs see a 5x5 window with fewer weights than one 5x5 conv (2 * 9 C^2 vs 25 C^2).
    Pooling uses ``ceil_mode``, so an odd or 1-pixel map still pools (7 -> 4, 1 -> 1).
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10, widths: Sequence[int] = (16, 32, 64),
                 batch_norm: bool = False, convs_per_block: int = 2, dropout: float = 0.0):
        super().__init__()
        _check_sizes(in_channels, num_classes, widths)
        if convs_per_block < 1 or not 0 <= dropout < 1:
            raise ValueError(f"convs_per_block must be >= 1 and dropout in [0, 1), got {convs_per_block}, {dropout}")
        layers: list[nn.Module] = []
        c = in_channels
        for w in widths:
            for _ in range(convs_per_block):
                layers += conv_bn_relu(c, w, batch_norm=batch_norm)
                c = w
            layers.append(nn.MaxPool2d(2, ceil_mode=True))
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(c, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.features(x)))


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers plus a skip connection: out = relu(F(x) + x) (He et al. 2016, "Deep Residual
    Learning"). Where the shape changes (stride 2 or new width), the skip is a 1x1 conv + BN projection.
    ``skip=False`` drops the addition: the same layers as a plain network, to compare with.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, skip: bool = True):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False), nn.BatchNorm2d(out_channels),
        )
        self.skip = skip
        self.shortcut: nn.Module = nn.Identity()
        if skip and (stride != 1 or in_channels != out_channels):
            self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                                          nn.BatchNorm2d(out_channels))
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        if self.skip:
            out = out + self.shortcut(x)
        return self.relu(out)


class SmallResNet(nn.Module):
    """A ResNet for small images: a 3x3 stem, then one stage of BasicBlocks per width (the first block of every
    stage after the first halves the resolution with stride 2), global average pooling and one Linear layer.

    ``blocks`` is the number of BasicBlocks per stage (one int for all, or one per width); the network has
    ``2 * sum(blocks) + 2`` weight layers. ``skip=False`` gives the same network without skip connections.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10, widths: Sequence[int] = (16, 32, 64),
                 blocks: int | Sequence[int] = 1, skip: bool = True):
        super().__init__()
        _check_sizes(in_channels, num_classes, widths)
        blocks = [blocks] * len(widths) if isinstance(blocks, int) else list(blocks)
        if len(blocks) != len(widths) or any(b < 1 for b in blocks):
            raise ValueError(f"blocks must be a positive int or one positive int per width {tuple(widths)}, "
                             f"got {blocks}")
        self.stem = nn.Sequential(*conv_bn_relu(in_channels, widths[0]))
        stages: list[nn.Module] = []
        c = widths[0]
        for i, (w, n) in enumerate(zip(widths, blocks)):
            for j in range(n):
                stages.append(BasicBlock(c, w, stride=2 if i > 0 and j == 0 else 1, skip=skip))
                c = w
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.stages(self.stem(x))).flatten(1))


class LeNet5(nn.Module):
    """LeNet-5 (LeCun et al. 1998): conv 5x5 (6) -> pool -> conv 5x5 (16) -> pool -> FC 120 -> FC 84 -> classes.

    The original takes 32x32 images, with tanh and average pooling ("subsampling"). For smaller inputs a conv
    gets padding 2 (same size) where an unpadded 5x5 would leave too little, and the first FC layer's width
    follows from the output-size formula, so ``image_size`` must be given: 32 or 28 give the classic
    16 x 5 x 5 = 400 features; 8x8 digits give 16 x 2 x 2.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10, image_size: int = 32, activation: str = "tanh"):
        super().__init__()
        _check_sizes(in_channels, num_classes, (6, 16))
        if image_size < 4:
            raise ValueError(f"image_size must be at least 4 pixels, got {image_size}")
        size = image_size
        layers: list[nn.Module] = []
        c = in_channels
        for i, width in enumerate((6, 16)):
            # unpadded where the image is large enough for the classic geometry (32 -> 28 -> 14 -> 10 -> 5),
            # else padding 2 keeps the size (28 -> 28 -> 14 -> 10 -> 5, the usual MNIST variant; 8 -> 8 -> 4 -> 4 -> 2)
            pad = 0 if size >= (32 if i == 0 else 10) else 2
            layers += [nn.Conv2d(c, width, 5, padding=pad), get_activation(activation),
                       nn.AvgPool2d(2, ceil_mode=True)]
            size = -(-output_size(size, 5, 1, pad) // 2)  # ceil: pooling with ceil_mode
            c = width
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(16 * size * size, 120), get_activation(activation),
            nn.Linear(120, 84), get_activation(activation), nn.Linear(84, num_classes),
        )
        self.image_size = image_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.image_size or x.shape[-2] != self.image_size:
            raise ValueError(f"LeNet5(image_size={self.image_size}) got images of {tuple(x.shape[-2:])} pixels")
        return self.classifier(self.features(x))


def mlpconv(in_channels: int, out_channels: int, kernel_size: int, batch_norm: bool = False) -> list[nn.Module]:
    """Network-in-Network's block: a kxk conv, then two 1x1 convs: a small MLP applied at every pixel.
    The block ends with the last 1x1 conv (no activation), so the final block can output class scores."""
    def norm() -> list[nn.Module]:
        return [nn.BatchNorm2d(out_channels)] if batch_norm else []

    return [nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2), *norm(),
            nn.ReLU(inplace=True), nn.Conv2d(out_channels, out_channels, 1), *norm(), nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 1)]


class NiN(nn.Module):
    """Network in Network (Lin, Chen & Yan 2014): mlpconv blocks with 1x1 convolutions and no fully-connected
    layer at all. The last block has one channel per class and global average pooling turns each channel's map
    into that class's score, so every parameter is a conv parameter (the slides' NIN row: 100 % conv).

    The original has no batch norm and trains slowly (on the digits it needs a larger learning rate or many
    epochs); ``batch_norm=True`` adds BN after the hidden convs (Ioffe & Szegedy 2015, a year later).
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10, widths: Sequence[int] = (32, 64),
                 dropout: float = 0.3, batch_norm: bool = False):
        super().__init__()
        _check_sizes(in_channels, num_classes, widths)
        layers: list[nn.Module] = []
        c = in_channels
        for w in widths:
            layers += mlpconv(c, w, 3, batch_norm) + [nn.ReLU(inplace=True), nn.MaxPool2d(2, ceil_mode=True),
                                                     nn.Dropout(dropout)]
            c = w
        layers += mlpconv(c, num_classes, 3, batch_norm)  # class maps: (N, num_classes, H, W)
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.features(x)).flatten(1)


class DepthwiseSeparableConv(nn.Module):
    """A 3x3 depthwise conv (one filter per channel, ``groups=in_channels``) then a 1x1 pointwise conv that mixes
    channels, each with BN and ReLU (MobileNet, Howard et al. 2017). Multiply-adds per output pixel:
    C_in * 9 + C_in * C_out instead of C_in * C_out * 9, i.e. a share of 1 / C_out + 1 / 9 of a standard conv."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        self.depthwise = nn.Sequential(
            nn.Conv2d(in_channels, in_channels, 3, stride=stride, padding=1, groups=in_channels, bias=False),
            nn.BatchNorm2d(in_channels), nn.ReLU(inplace=True))
        self.pointwise = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, bias=False),
                                       nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


class SeparableNet(nn.Module):
    """A small MobileNet-style network: a standard 3x3 stem, then depthwise-separable blocks (two per width, the
    first of each width after the first with stride 2), global average pooling and one Linear layer."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10, widths: Sequence[int] = (16, 32, 64)):
        super().__init__()
        _check_sizes(in_channels, num_classes, widths)
        layers: list[nn.Module] = conv_bn_relu(in_channels, widths[0])
        c = widths[0]
        for i, w in enumerate(widths):
            layers += [DepthwiseSeparableConv(c, w, stride=2 if i > 0 else 1), DepthwiseSeparableConv(w, w)]
            c = w
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.features(x)).flatten(1))


CNN_MODELS: dict[str, type[nn.Module]] = {
    "lenet5": LeNet5, "vgg": SmallVGG, "resnet": SmallResNet, "nin": NiN, "separable": SeparableNet,
}


def build_cnn(name: str, *, in_channels: int, num_classes: int, image_size: int, **kwargs) -> nn.Module:
    """A model from CNN_MODELS by name; ``image_size`` goes to the models that need it (LeNet-5), ``kwargs`` to
    the model (e.g. ``batch_norm=True`` for "vgg", ``blocks=2`` for "resnet")."""
    import inspect

    try:
        cls = CNN_MODELS[name]
    except KeyError:
        raise ValueError(f"unknown CNN {name!r}; valid models: {', '.join(CNN_MODELS)}") from None
    if "image_size" in inspect.signature(cls).parameters:
        kwargs["image_size"] = image_size
    return cls(in_channels=in_channels, num_classes=num_classes, **kwargs)
