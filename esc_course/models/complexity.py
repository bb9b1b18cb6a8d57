"""Parameters and multiply-adds per layer, per layer type and per model: the slides' table of where a CNN's
weights and compute go (conv layers hold most of the compute, fully-connected layers most of the parameters).

Multiply-adds (MACs) are counted for one image: a conv layer does (C_in / groups) * k_h * k_w of them per output
value, a Linear layer in_features per output value. Pooling, activations and normalisation are counted as
parameters only (their arithmetic is a rounding error next to conv and FC); biases are not counted as MACs.

Reference models from torchvision are built on PyTorch's "meta" device: shapes and parameter counts without
allocating or initialising a single weight, so VGG-16's 138 M parameters cost neither memory nor time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

KINDS = ("conv", "conv1x1", "depthwise", "fc", "norm", "other")


def layer_kind(module: nn.Module) -> str:
    if isinstance(module, nn.Conv2d):
        if module.groups > 1:
            return "depthwise"
        return "conv1x1" if module.kernel_size == (1, 1) else "conv"
    if isinstance(module, nn.Linear):
        return "fc"
    if isinstance(module, (nn.BatchNorm2d, nn.BatchNorm1d, nn.LayerNorm, nn.GroupNorm)):
        return "norm"
    return "other"


def _macs(module: nn.Module, out: torch.Tensor) -> int:
    per_image = out[0].numel() if out.ndim > 1 else out.numel()
    if isinstance(module, nn.Conv2d):
        kh, kw = module.kernel_size
        return per_image * (module.in_channels // module.groups) * kh * kw
    if isinstance(module, nn.Linear):
        return per_image * module.in_features
    return 0


def layer_costs(model: nn.Module, input_shape: Sequence[int]) -> list[dict[str, Any]]:
    """One row per layer that has parameters or does conv/FC arithmetic, in forward order:
    ``{"layer", "kind", "output", "params", "macs"}``. ``input_shape`` is one image's (C, H, W)."""
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    rows: list[dict[str, Any]] = []
    hooks = []

    def hook(name):
        def record(module, inputs, out):
            params = sum(p.numel() for p in module.parameters(recurse=False))
            macs = _macs(module, out)
            if params or macs:
                rows.append({"layer": name, "kind": layer_kind(module), "output": "x".join(map(str, out.shape[1:])),
                             "params": params, "macs": macs})
        return record

    for name, module in model.named_modules():
        if not any(True for _ in module.children()):  # leaves only
            hooks.append(module.register_forward_hook(hook(name)))
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, *input_shape, device=device))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return rows


def kind_table(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``layer_costs`` rows summed per layer type, with each type's share (%) of parameters and MACs."""
    params = sum(r["params"] for r in rows) or 1
    macs = sum(r["macs"] for r in rows) or 1
    out = []
    for kind in KINDS:
        part = [r for r in rows if r["kind"] == kind]
        if part:
            p, m = sum(r["params"] for r in part), sum(r["macs"] for r in part)
            out.append({"kind": kind, "layers": len(part), "params": p, "params_pct": 100 * p / params,
                        "macs": m, "macs_pct": 100 * m / macs})
    return out


def model_summary(name: str, model: nn.Module, input_shape: Sequence[int]) -> dict[str, Any]:
    """One row of the slides' table: parameters (M), conv and FC shares (%), multiply-adds (M), their shares.
    "conv" counts every conv layer (3x3, 1x1 and depthwise)."""
    rows = layer_costs(model, input_shape)
    params = sum(r["params"] for r in rows)
    macs = sum(r["macs"] for r in rows)

    def total(key, kinds):
        return sum(r[key] for r in rows if r["kind"] in kinds)

    conv = ("conv", "conv1x1", "depthwise")
    return {
        "model": name, "input": "x".join(map(str, input_shape)),
        "params_M": params / 1e6, "conv_params_pct": 100 * total("params", conv) / max(params, 1),
        "fc_params_pct": 100 * total("params", ("fc",)) / max(params, 1),
        "macs_M": macs / 1e6, "conv_macs_pct": 100 * total("macs", conv) / max(macs, 1),
        "fc_macs_pct": 100 * total("macs", ("fc",)) / max(macs, 1),
    }


REFERENCE_MODELS = {"AlexNet": "alexnet", "VGG-16": "vgg16", "VGG-19": "vgg19", "GoogLeNet": "googlenet",
                    "NiN": "nin", "ResNet-18": "resnet18"}


def imagenet_nin(num_classes: int = 1000) -> nn.Module:
    """Network in Network for ImageNet as Lin et al. released it (the Caffe model zoo's NIN-ImageNet): mlpconv
    blocks 96-11x11/4, 256-5x5, 384-3x3, then 1024-3x3 ending in ``num_classes`` maps and global average pooling.
    torchvision has no NiN, so the definition is written out here from esc_course's ``mlpconv`` block."""
    from esc_course.models.cnn import mlpconv

    def block(c_in, c_out, k, stride, pad):
        conv, *rest = mlpconv(c_in, c_out, k)
        return [nn.Conv2d(c_in, c_out, k, stride=stride, padding=pad), *rest, nn.ReLU(inplace=True)]

    last = block(384, 1024, 3, 1, 1)
    last[-2] = nn.Conv2d(1024, num_classes, 1)   # the final 1x1 conv outputs one map per class
    return nn.Sequential(*block(3, 96, 11, 4, 0), nn.MaxPool2d(3, 2, ceil_mode=True),
                         *block(96, 256, 5, 1, 2), nn.MaxPool2d(3, 2, ceil_mode=True),
                         *block(256, 384, 3, 1, 1), nn.MaxPool2d(3, 2, ceil_mode=True), nn.Dropout(0.5),
                         *last, nn.AdaptiveAvgPool2d(1), nn.Flatten())


def reference_model(name: str) -> nn.Module:
    """A torchvision ImageNet model (``weights=None``: nothing is downloaded) on the meta device."""
    import torchvision.models as tvm

    if name not in REFERENCE_MODELS:
        raise ValueError(f"unknown reference model {name!r}; valid: {', '.join(REFERENCE_MODELS)}")
    with torch.device("meta"):
        if name == "NiN":
            return imagenet_nin()
        if name == "GoogLeNet":  # the auxiliary classifiers train only; the slides' 6.8 M counts without them
            return tvm.googlenet(weights=None, aux_logits=False, init_weights=False)
        return getattr(tvm, REFERENCE_MODELS[name])(weights=None)


def complexity_table(models: Mapping[str, tuple[nn.Module, Sequence[int]]],
                     references: Sequence[str] = tuple(REFERENCE_MODELS)) -> list[dict[str, Any]]:
    """``model_summary`` rows for ``models`` (name -> (model, input (C, H, W))) and for torchvision's reference
    models at 3x224x224."""
    rows = [model_summary(name, model, shape) for name, (model, shape) in models.items()]
    return rows + [model_summary(name, reference_model(name), (3, 224, 224)) for name in references]
