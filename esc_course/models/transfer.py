"""Transfer learning: pretrained backbones, a new head, freezing, discriminative learning rates, feature extraction.

    model = backbone("resnet18", weights="DEFAULT", num_classes=5)   # torchvision's ImageNet weights
    freeze(model, until="layer4")                                    # train layer4 and the head only
    opt = torch.optim.AdamW(param_groups(model, lr=1e-3))            # earlier layers get smaller steps

Weights come from torchvision (the torch hub cache, downloaded when online), from a local file (safetensors, or a
state dict read with ``torch.load(weights_only=True)``: nothing is unpickled that could run code), or are None
(random initialisation). torchvision is imported inside the functions that need it.

Donahue et al. 2014 (DeCAF) and Razavian et al. 2014 ("CNN features off-the-shelf") showed that the features of
a network trained on ImageNet are a strong baseline for other image tasks: the slides' "transfer learning".
"""

from __future__ import annotations

import copy
import http.client
import os
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

import torch
import torch.nn.functional as F
from torch import nn

# torchvision classification models whose layout (blocks in order, one final Linear) the functions here handle
TORCHVISION_BACKBONES = ("resnet18", "resnet34", "resnet50", "mobilenet_v3_small", "mobilenet_v3_large",
                         "efficientnet_b0", "efficientnet_b1")
# the package's own CNNs (esc_course.models.cnn): small enough to pretrain on a CPU in seconds, no download
OWN_BACKBONES = {"small_resnet": "SmallResNet", "small_vgg": "SmallVGG"}
WEIGHT_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin")


class WeightsUnavailableError(FileNotFoundError):
    """Pretrained weights are neither in the torch hub cache nor downloadable (no network)."""


def _torchvision_builder(name: str) -> Callable[..., nn.Module]:
    def build(**kwargs) -> nn.Module:
        from torchvision import models

        return models.get_model(name, weights=None, **kwargs)

    return build


def _own_builder(class_name: str) -> Callable[..., nn.Module]:
    def build(**kwargs) -> nn.Module:
        from esc_course.models import cnn

        return getattr(cnn, class_name)(**kwargs)

    return build


BACKBONES: dict[str, Callable[..., nn.Module]] = {
    **{name: _torchvision_builder(name) for name in TORCHVISION_BACKBONES},
    **{name: _own_builder(cls) for name, cls in OWN_BACKBONES.items()},
}


def _check_name(name: str) -> None:
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; valid backbones: {', '.join(BACKBONES)}")


# --- weights -----------------------------------------------------------------------------------------------------

def is_weights_file(weights) -> bool:
    """A Path, or a string that looks like a file (a folder separator, a weights suffix, or an existing file)."""
    if isinstance(weights, Path):
        return True
    if not isinstance(weights, str):
        return False
    return ("/" in weights or os.sep in weights or weights.lower().endswith(WEIGHT_SUFFIXES)
            or Path(weights).is_file())


def weights_enum(name: str, weights: str = "DEFAULT"):
    """torchvision's weights entry for ``name`` ("DEFAULT" or a member name such as "IMAGENET1K_V1")."""
    _check_name(name)
    if name in OWN_BACKBONES:
        raise ValueError(f"backbone {name!r} has no published pretrained weights: pass weights=None (random "
                         f"initialisation) or the path of a .safetensors/.pt file (labs/week08_transfer.py "
                         f"pretrains and saves one)")
    from torchvision import models

    enum = models.get_model_weights(name)
    if weights == "DEFAULT":
        return enum.DEFAULT
    try:
        return enum[weights]
    except KeyError:
        valid = ["DEFAULT", *enum.__members__]
        raise ValueError(f"weights={weights!r} is not a weight set of {name}; valid: {', '.join(valid)}, None, "
                         f"or the path of a {'/'.join(WEIGHT_SUFFIXES)} file") from None


def cache_path(name: str, weights: str = "DEFAULT") -> Path:
    """Where torch hub keeps the file of ``name``'s pretrained weights: <torch hub dir>/checkpoints/<file name>.

    The hub dir is ``$TORCH_HOME/hub`` (default ``~/.cache/torch/hub``), or what ``torch.hub.set_dir`` set.
    """
    url = weights_enum(name, weights).url
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(url).path)


def pretrained_state(name: str, weights: str = "DEFAULT", *, download: bool = True,
                     progress: bool = False) -> dict[str, torch.Tensor]:
    """torchvision's pretrained state dict: from the torch hub cache, else downloaded into it when ``download``.

    Raises:
        WeightsUnavailableError: not cached and not downloadable; the message gives the expected file and URL.
    """
    entry = weights_enum(name, weights)
    path = cache_path(name, weights)
    if path.is_file():
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # noqa: BLE001 - a truncated copy, another file under that name
            raise ValueError(f"the cached weights {path} cannot be read with weights_only=True ({type(err).__name__}"
                             f": {err}); delete the file and download it again ({entry.url})") from err

    def unavailable(reason: str) -> WeightsUnavailableError:
        return WeightsUnavailableError(
            f"pretrained weights {entry} for {name} are not in the torch hub cache and {reason}.\n"
            f"  expected file: {path}\n"
            f"  download it where there is a network:  curl -L -o {path.name} {entry.url}\n"
            f"  then copy it to that path (or set TORCH_HOME so that <TORCH_HOME>/hub/checkpoints holds it).\n"
            f"  Offline alternatives: weights=None (random initialisation), or a local .safetensors/.pt file "
            f"(the transfer lab pretrains its own backbone on the embedded data with its default settings).")

    if not download:
        raise unavailable("download=False")
    try:
        return torch.hub.load_state_dict_from_url(entry.url, map_location="cpu", progress=progress,
                                                  check_hash=True, weights_only=True)
    except (OSError, http.client.HTTPException) as err:  # URLError is an OSError: no network, DNS, refused
        raise unavailable(f"could not be downloaded ({type(err).__name__}: {err})") from err


def backbone(name: str, weights: str | Path | None = "DEFAULT", *, num_classes: int | None = None,
             download: bool = True, **kwargs) -> nn.Module:
    """Build a backbone by name, load its weights, and give it a head of ``num_classes`` outputs.

    Args:
        name: one of BACKBONES (torchvision's resnet18, mobilenet_v3_small, efficientnet_b0, ...; or the
            package's own small_resnet / small_vgg, whose keyword arguments go in ``kwargs``).
        weights: "DEFAULT" or a torchvision weight name (ImageNet, from the hub cache or downloaded); None
            (random); or the path of a .safetensors / .pt / .pth file.
        num_classes: replace the head with a new Linear layer of this many outputs (None keeps it).
        download: allow downloading torchvision weights that are not cached.
    """
    _check_name(name)
    if weights is not None and not is_weights_file(weights):
        if not isinstance(weights, str):
            raise ValueError(f"weights must be 'DEFAULT', a weight name, None or a file path, got {weights!r}")
        weights_enum(name, weights)  # a bad name fails here, before anything is built or downloaded
    model = BACKBONES[name](**kwargs)
    if weights is not None:
        from esc_course.checkpoint import load_model_state, read_weights

        if is_weights_file(weights):
            load_model_state(model, read_weights(weights), weights, head=head_name(model))
        else:
            load_model_state(model, pretrained_state(name, weights, download=download), f"{name} {weights}",
                             head=head_name(model))
    if num_classes is not None:
        replace_head(model, num_classes)
    return model


def input_stats(name: str, weights: str | Path | None = "DEFAULT") -> tuple[list[float], list[float]] | None:
    """The (mean, std) per RGB channel that torchvision's pretrained weights expect, or None for other weights."""
    if weights is None or is_weights_file(weights) or name in OWN_BACKBONES:
        return None
    preset = weights_enum(name, str(weights)).transforms()
    return list(preset.mean), list(preset.std)


# --- heads, stages -------------------------------------------------------------------------------------------------

def head_name(model: nn.Module) -> str:
    """Dotted name of the classifier head: the last ``nn.Linear`` in the model (``fc``, ``classifier.3``, ...)."""
    names = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not names:
        raise ValueError(f"{type(model).__name__} has no nn.Linear layer, so it has no head to replace")
    return names[-1]


def get_head(model: nn.Module) -> nn.Linear:
    return model.get_submodule(head_name(model))


def replace_head(model: nn.Module, num_classes: int) -> nn.Module:
    """Swap the head for a new, randomly initialised Linear with ``num_classes`` outputs (in place; returns model)."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
    name, old = head_name(model), get_head(model)
    new = nn.Linear(old.in_features, num_classes, bias=old.bias is not None)
    model.set_submodule(name, new.to(device=old.weight.device, dtype=old.weight.dtype))
    return model


def stages(model: nn.Module) -> list[str]:
    """The model's blocks in forward order, input side first: the units that freeze and param_groups work on.

    The top-level children that hold parameters (resnet: conv1, bn1, layer1..layer4, fc); when there are fewer
    than four, as in torchvision's mobilenet/efficientnet (features, classifier), each Sequential is opened one
    level (features.0 ... features.12, classifier.0, classifier.3). Assumes parameters are registered in forward
    order, which holds for torchvision's models and the package's own.
    """
    def with_params(parent: nn.Module, prefix: str) -> list[tuple[str, nn.Module]]:
        return [(f"{prefix}{n}", m) for n, m in parent.named_children() if any(True for _ in m.parameters())]

    top = with_params(model, "")
    if len(top) >= 4:
        return [n for n, _ in top]
    names = []
    for name, child in top:
        inner = with_params(child, f"{name}.") if isinstance(child, nn.Sequential) else []
        names += [n for n, _ in inner] or [name]
    return names


def check_stage(model: nn.Module, name: str, argument: str = "until") -> str:
    """``name`` if it is a layer of ``model`` that holds parameters; else a ValueError listing the stages."""
    modules = dict(model.named_modules())
    if name not in modules or not any(True for _ in modules[name].parameters()):
        raise ValueError(f"{argument}={name!r} is not a layer with parameters of {type(model).__name__}; "
                         f"valid: {', '.join(stages(model))} (or any dotted module name)")
    return name


# --- freezing -------------------------------------------------------------------------------------------------------

class FrozenBatchNorm2d(nn.Module):
    """BatchNorm2d with fixed statistics and affine parameters: the same output in train and eval mode.

    A frozen layer must not change. A BatchNorm2d in train mode would normalise with each batch's statistics
    and update its running ones, which with the few images of a small data set shifts every later layer. This is
    torchvision.ops.FrozenBatchNorm2d's idea (used when fine-tuning detectors), kept with BatchNorm2d's state-dict
    keys and momentum, so a frozen model saves like the plain one and ``unfreeze`` restores the layer exactly.
    """

    def __init__(self, bn: nn.BatchNorm2d):
        super().__init__()
        self.num_features, self.eps, self.momentum = bn.num_features, bn.eps, bn.momentum
        for key in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
            self.register_buffer(key, getattr(bn, key).detach().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, training=False,
                            eps=self.eps)

    def to_batchnorm(self) -> nn.BatchNorm2d:
        bn = nn.BatchNorm2d(self.num_features, eps=self.eps, momentum=self.momentum).to(self.weight.device)
        bn.load_state_dict({k: getattr(self, k) for k in bn.state_dict()})
        return bn

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}"


def _swap_modules(model: nn.Module, kind: type, make: Callable[[nn.Module], nn.Module],
                  keep: Callable[[str, nn.Module], bool] = lambda name, m: True) -> None:
    targets = [(n, m) for n, m in model.named_modules() if type(m) is kind and keep(n, m)]
    for name, module in targets:
        model.set_submodule(name, make(module))


def unfreeze(model: nn.Module) -> nn.Module:
    """Make every parameter trainable again and restore frozen batch-norm layers (in place; returns model)."""
    _swap_modules(model, FrozenBatchNorm2d, lambda m: m.to_batchnorm())
    for p in model.parameters():
        p.requires_grad_(True)
    return model


def freeze(model: nn.Module, until: str | None = None) -> nn.Module:
    """Freeze every layer before ``until``; ``until`` and what follows it stay trainable (in place; returns model).

    ``until=None`` freezes everything but the head (a linear classifier on fixed features). The call is absolute:
    ``freeze(m, "layer3")`` after ``freeze(m, "layer4")`` trains layer3 too (gradual unfreezing). Batch-norm layers
    in the frozen part become FrozenBatchNorm2d, so their statistics stay fixed in train mode as well.
    """
    unfreeze(model)
    start = head_name(model) if until is None else check_stage(model, until)
    names = [n for n, _ in model.named_parameters()]
    first = next(i for i, n in enumerate(names) if n.startswith(start + "."))
    frozen = set(names[:first])
    for i, (_, p) in enumerate(model.named_parameters()):
        p.requires_grad_(i >= first)
    _swap_modules(model, nn.BatchNorm2d, FrozenBatchNorm2d,
                  keep=lambda name, m: m.affine and m.track_running_stats and f"{name}.weight" in frozen)
    return model


def param_groups(model: nn.Module, lr: float, *, decay: float = 1 / 2.6,
                 weight_decay: float | None = None) -> list[dict]:
    """Optimizer parameter groups, one per stage: the last stage gets ``lr``, each earlier one ``decay`` times the
    rate of the stage after it (discriminative fine-tuning, Howard & Ruder 2018, "Universal Language Model
    Fine-tuning", who used decay = 1/2.6). Early layers hold generic features (edges, colours) that need small
    changes; late layers are task-specific. Frozen parameters are left out; each group carries its stage "name".
    """
    if not lr > 0:
        raise ValueError(f"lr must be positive, got {lr!r}")
    if not 0 < decay <= 1:
        raise ValueError(f"decay must be in (0, 1] (1 gives every stage the same rate), got {decay!r}")
    names = stages(model)
    groups, seen = [], set()
    for depth, name in enumerate(reversed(names)):
        params = [p for p in model.get_submodule(name).parameters() if p.requires_grad and id(p) not in seen]
        seen.update(id(p) for p in params)
        if params:
            groups.append({"params": params, "lr": lr * decay**depth, "name": name})
    rest = [p for p in model.parameters() if p.requires_grad and id(p) not in seen]  # e.g. on the root module
    if rest:
        groups.append({"params": rest, "lr": lr, "name": "(other)"})
    if not groups:
        raise ValueError("every parameter of the model is frozen: nothing to optimise (call unfreeze or freeze "
                         "with a later until=)")
    if weight_decay is not None:
        for g in groups:
            g["weight_decay"] = weight_decay
    return groups[::-1]


# --- feature extraction --------------------------------------------------------------------------------------------

class _Captured(Exception):
    """Raised by the capture hook to stop the forward pass once the wanted activation is in hand."""


@torch.no_grad()
def extract_features(model: nn.Module, x: torch.Tensor, *, stage: str | None = None, batch_size: int = 256,
                     device: torch.device | str | None = None) -> torch.Tensor:
    """Features (N, D) of images ``x`` (N, C, H, W), computed once in eval mode, on ``device``.

    ``stage=None``: the head's input (what a linear classifier on top sees). A stage name (e.g. "layer2"): that
    block's output, globally average-pooled over H, W, for "a linear classifier from an earlier stage".
    """
    name = head_name(model) if stage is None else check_stage(model, stage, "stage")
    device = torch.device(device) if device is not None else next(model.parameters()).device
    model.to(device)
    grabbed: list[torch.Tensor] = []

    def keep_input(module, args):
        grabbed.append(args[0])
        raise _Captured

    def keep_output(module, args, out):
        grabbed.append(out)
        raise _Captured

    module = model.get_submodule(name)
    handle = (module.register_forward_pre_hook(keep_input) if stage is None
              else module.register_forward_hook(keep_output))
    was_training = model.training
    model.eval()
    chunks = []
    try:
        for start in range(0, x.shape[0], batch_size):
            try:
                model(x[start:start + batch_size].to(device))
            except _Captured:
                pass
            feats = grabbed.pop()
            chunks.append(feats.mean(dim=(2, 3)) if feats.ndim == 4 else feats.flatten(1))  # (B, C, H, W) -> (B, C)
    finally:
        handle.remove()
        model.train(was_training)
    return torch.cat(chunks)


def train_linear(head: nn.Linear, features: torch.Tensor, y: torch.Tensor, *, val=None, epochs: int = 100,
                 lr: float = 1e-2, weight_decay: float = 1e-4, batch_size: int = 256,
                 device: torch.device | str | None = None):
    """Train a Linear layer on fixed features (N, D) -> class labels (N,) with AdamW; returns the History.

    ``val`` is an optional (features, y) pair evaluated after each epoch. The features are computed once, so each
    epoch is only a matrix multiply: this is why feature extraction is fast on a CPU.
    """
    from esc_course.data.loader import TensorLoader
    from esc_course.train import fit

    device = torch.device(device) if device is not None else features.device
    train = TensorLoader(features, y, batch_size=min(batch_size, features.shape[0]), device=device)
    val_loader = TensorLoader(*val, batch_size=1024, shuffle=False, device=device) if val is not None else None
    opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=weight_decay)
    return fit(head, train, val_loader, loss_fn=F.cross_entropy, optimizer=opt, epochs=epochs, device=device,
               progress=False, desc="linear head")


def fit_head(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, val=None, epochs: int = 100,
             lr: float = 1e-2, weight_decay: float = 1e-4, batch_size: int = 256,
             device: torch.device | str | None = None):
    """Feature extraction: the backbone's features of ``x`` once, then train only the model's own head on them.

    The head is trained in place, so ``model(x)`` afterwards predicts with it. ``val`` is an optional (x, y) pair
    of images. Returns the head's History.
    """
    feats = extract_features(model, x, device=device)
    val_feats = (extract_features(model, val[0], device=device), val[1]) if val is not None else None
    return train_linear(get_head(model), feats, y, val=val_feats, epochs=epochs, lr=lr,
                        weight_decay=weight_decay, batch_size=batch_size, device=feats.device)


def headless(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose head is ``nn.Identity``: it maps images to features (N, D)."""
    body = copy.deepcopy(model)
    body.set_submodule(head_name(body), nn.Identity())
    return body
