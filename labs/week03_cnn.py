"""Week 3: convolutional networks.

Convolution by hand (the slides' 5x5 example), then CNNs trained on images: a small VGG by default, compared
with LeNet-5, a small ResNet (skip connections), Network-in-Network (1x1 convolutions, global average pooling)
and a depthwise-separable net. The lab shows what the first layer learned (filters, feature maps), where the
model errs (confusion matrix, misclassified images) and the slides' table: conv layers hold most of the
compute, fully-connected layers most of the parameters (measured for the lab's models and for torchvision's
AlexNet, VGG-16 and ResNet-18). Runs on the embedded digits by default; --dataset=shapes|mnist|fashion_mnist|
cifar10, or --data-dir=<an ImageFolder> for the club's practice data.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from esc_course.config import quick_variant
from esc_course.device import get_device
from esc_course.metrics import confusion_matrix
from esc_course.models import count_parameters
from esc_course.models.cnn import build_cnn
from esc_course.runs import LabResult, finish
from esc_course.seed import seed_everything
from esc_course.train import evaluate, fit

HEADLINE = "test_accuracy"


@dataclass
class Config:
    dataset: str = "digits"     # digits | shapes (embedded) | mnist | fashion_mnist | cifar10 (esc-course data fetch)
    data_dir: str = ""          # an ImageFolder (<dir>/<class>/<image>) to train on; with mnist/... their data root
    model: str = "vgg"          # the model shown in the figures: a name in esc_course.models.cnn.CNN_MODELS
    compare: tuple[str, ...] = ("lenet5", "resnet", "nin", "separable")  # also trained, for the comparison table
    batch_norm: bool = True     # batch norm in the VGG's and NiN's conv blocks (ResNet and separable always have it)
    augment: str = "none"       # augmentation preset for training batches (esc_course.data.augment.PRESETS)
    epochs: int = 20            # passes over the training split, per model
    batch_size: int = 64        # images per step
    lr: float = 3e-3            # Adam step size, cosine-annealed to 0 over the epochs
    val_fraction: float = 0.2   # share of the training split held out for validation
    train_size: int = 0         # train on only this many images (a stratified subset); 0 = all
    image_size: int = 32        # ImageFolder images are resized to image_size x image_size pixels
    seed: int = 0
    device: str = "auto"
    quick: bool = False         # small, fast variant for CPU CI and weak laptops


QUICK = dict(epochs=6, compare=("lenet5",), train_size=5000)


def data_for(cfg: Config, device: torch.device):
    """The loaders for cfg's data set: embedded by default, an ImageFolder when data_dir is set alone."""
    from esc_course.data.vision import DATASETS, loaders

    name, root = cfg.dataset, cfg.data_dir or None
    if root is not None and (name not in DATASETS or DATASETS[name].embedded):
        name = "folder"
    return loaders(name, batch_size=cfg.batch_size, val_fraction=cfg.val_fraction, device=device,
                   augment=None if cfg.augment == "none" else cfg.augment, seed=cfg.seed, root=root,
                   train_size=cfg.train_size or None, image_size=cfg.image_size)


def make_model(name: str, cfg: Config, info) -> torch.nn.Module:
    extra = {"batch_norm": cfg.batch_norm} if name in ("vgg", "nin") else {}
    return build_cnn(name, in_channels=info.channels, num_classes=info.num_classes, image_size=info.size, **extra)


def train_one(name: str, cfg: Config, data, device) -> tuple[torch.nn.Module, dict, dict]:
    """Train model ``name``; return it, its History (as a dict) and its summary row."""
    seed_everything(cfg.seed)  # the same initial randomness for every model
    model = make_model(name, cfg, data.info).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(cfg.epochs, 1))
    start = time.perf_counter()
    history = fit(model, data.train, data.val, loss_fn=F.cross_entropy, optimizer=opt, epochs=cfg.epochs,
                  device=device, scheduler=sched, desc=name)
    seconds = time.perf_counter() - start
    test = evaluate(model, data.test, F.cross_entropy, device)
    row = {"model": name, "params": count_parameters(model), "test_accuracy": test["accuracy"],
           "test_loss": test["loss"], "best_val_accuracy": max(history["val_accuracy"]) if data.val else None,
           "train_seconds": seconds}
    return model, history.to_dict(), row


@torch.no_grad()
def predict(model: torch.nn.Module, loader) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Inputs, labels and predicted classes over a whole loader, on the CPU."""
    model.eval()
    xs, ys, ps = [], [], []
    for x, y in loader:
        ps.append(model(x).argmax(1).cpu())
        xs.append(x.cpu())
        ys.append(y.cpu())
    return torch.cat(xs), torch.cat(ys), torch.cat(ps)


def scratch_conv_check(seed: int) -> float:
    """Largest difference between the hand-written conv2d and F.conv2d on random multi-channel input."""
    from esc_course.scratch.conv import conv2d

    g = torch.Generator().manual_seed(seed)
    x, w, b = torch.randn(2, 3, 7, 7, generator=g), torch.randn(4, 3, 3, 3, generator=g), torch.randn(4, generator=g)
    return (conv2d(x, w, b, stride=2, padding=1) - F.conv2d(x, w, b, stride=2, padding=1)).abs().max().item()


def run(cfg: Config, out: Path | None = None) -> LabResult:
    cfg = quick_variant(cfg, QUICK)
    seed_everything(cfg.seed)
    device = get_device(cfg.device)
    started = time.perf_counter()
    from esc_course.models.complexity import complexity_table, kind_table, layer_costs
    from esc_course.scratch.conv import slide_example

    data = data_for(cfg, device)
    info = data.info
    names = [cfg.model] + [m for m in cfg.compare if m != cfg.model]
    models, histories, rows = {}, {}, []
    for name in names:
        models[name], histories[name], row = train_one(name, cfg, data, device)
        rows.append(row)
    main = models[cfg.model]
    x, y, pred = predict(main, data.test)
    shape = (info.channels, info.size, info.size)
    complexity = complexity_table({name: (m, shape) for name, m in models.items()})
    for r, row in zip(complexity, rows):
        row["macs"] = round(r["macs_M"] * 1e6)
    example = slide_example()
    metrics = {
        "test_accuracy": rows[0]["test_accuracy"],
        "params": rows[0]["params"],
        "macs": rows[0]["macs"],
        **{f"{r['model']}_test_accuracy": r["test_accuracy"] for r in rows[1:]},
        "scratch_conv_max_error": scratch_conv_check(cfg.seed),
        "slide_example_correct": float(example["feature"].tolist() == [[4, 3, 4], [2, 4, 3], [2, 3, 4]]),
    }
    layers = layer_costs(main, shape)
    images = x * data.std.reshape(1, -1, 1, 1) + data.mean.reshape(1, -1, 1, 1) if data.mean is not None else x
    result = LabResult(
        lab="cnn", config=asdict(cfg), metrics=metrics, history=histories,
        tables={"models": rows, "complexity": complexity, "layer_types": kind_table(layers), "layers": layers,
                "slide_example": [{"row": i, **{f"col{j}": v for j, v in enumerate(r)}}
                                  for i, r in enumerate(example["feature"].tolist())]},
        figures=figures(main, histories, x, images, y, pred, info, example, device), device=str(device),
    )
    return finish(result, out, started)


def figures(model, histories, x, images, y, pred, info, example, device) -> dict:
    from esc_course.viz import history_figure

    return {
        "convolution_example": convolution_figure(example),
        "training_curves": history_figure(histories, keys=("train_loss", "val_accuracy"), title=""),
        "filters": filters_figure(model),
        "feature_maps": feature_maps_figure(model, x[:1].to(device), images[0]),
        "confusion_matrix": confusion_figure(confusion_matrix(pred, y, info.num_classes), info.classes),
        "misclassified": misclassified_figure(images, y, pred, info.classes),
    }


def show_image(ax, img: torch.Tensor, title: str = "", cmap: str = "gray") -> None:
    """One image (C, H, W) in [0, 1]-ish: grey for one channel, RGB for three."""
    img = img.detach().cpu().float()
    if img.shape[0] == 3:
        ax.imshow(img.permute(1, 2, 0).clamp(0, 1).numpy())
    else:
        ax.imshow(img[0].numpy(), cmap=cmap)
    ax.set_title(title, fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])


def convolution_figure(example: dict):
    """The slides' 5x5 image, 3x3 filter, the convolved feature and its 2x2 max pooling, with the numbers."""
    from esc_course.viz import new_figure

    fig, axes = new_figure(4, size=(2.6, 2.6))
    for ax, key in zip(axes, ("image", "filter", "feature", "pooled")):
        m = example[key]
        top = max(float(m.max()), 1)
        ax.imshow(m.numpy(), cmap="Blues", vmin=0, vmax=top)
        for (i, j), v in zip(torch.cartesian_prod(torch.arange(m.shape[0]), torch.arange(m.shape[1])).tolist(),
                             m.flatten().tolist()):
            ax.text(j, i, f"{v:g}", ha="center", va="center", fontsize=11, color="white" if v > 0.6 * top else "black")
        ax.set_title({"image": "image 5x5", "filter": "filter 3x3", "feature": "convolved feature",
                      "pooled": "2x2 max pool, stride 1"}[key], fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    return fig


def _first_conv(model) -> torch.nn.Conv2d:
    return next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))


def filters_figure(model, limit: int = 32):
    """The first conv layer's filters, each scaled to its own range (RGB for colour input, one panel per
    input channel otherwise)."""
    from esc_course.viz import new_figure

    w = _first_conv(model).weight.detach().cpu()[:limit]  # (F, C, k, k)
    cols = min(8, len(w))
    fig, axes = new_figure(cols, -(-len(w) // cols), size=(1.1, 1.1))
    for i, (ax, f) in enumerate(zip(axes, w)):
        f = (f - f.min()) / (f.max() - f.min() + 1e-8)
        show_image(ax, f if f.shape[0] == 3 else f[:1], f"filter {i}", cmap="viridis")
    for ax in axes[len(w):]:
        ax.set_visible(False)
    fig.suptitle("first-layer filters (learned)", fontsize=10)
    return fig


@torch.no_grad()
def feature_maps_figure(model, x: torch.Tensor, image: torch.Tensor, per_layer: int = 8):
    """The input and the activations of the first two conv layers for it (the first ``per_layer`` channels)."""
    from esc_course.viz import new_figure

    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)][:2]
    maps: list[torch.Tensor] = []
    hooks = [c.register_forward_hook(lambda m, i, o: maps.append(o[0].relu().cpu())) for c in convs]
    model.eval()
    try:
        model(x)
    finally:
        for h in hooks:
            h.remove()
    fig, axes = new_figure(per_layer + 1, len(maps), size=(1.2, 1.3))
    for row, fmap in enumerate(maps):
        show_image(axes[row * (per_layer + 1)], image, "input" if row == 0 else "")
        for j in range(per_layer):
            ax = axes[row * (per_layer + 1) + 1 + j]
            if j < len(fmap):
                ax.imshow(fmap[j].numpy(), cmap="magma")
                ax.set_title(f"conv{row + 1} ch{j}", fontsize=7)
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle("feature maps (after ReLU)", fontsize=10)
    return fig


def confusion_figure(cm: torch.Tensor, classes) -> object:
    from esc_course.viz import new_figure

    k = len(classes)
    fig, (ax,) = new_figure(size=(max(3.6, 0.45 * k + 1.5), max(3.2, 0.45 * k + 1.2)))
    ax.imshow(cm.numpy(), cmap="Blues")
    for i in range(k):
        for j in range(k):
            v = int(cm[i, j])
            if v:
                ax.text(j, i, str(v), ha="center", va="center", fontsize=7,
                        color="white" if v > cm.max() / 2 else "black")
    short = [str(c)[:10] for c in classes]
    ax.set_xticks(range(k), short, rotation=90, fontsize=7)
    ax.set_yticks(range(k), short, fontsize=7)
    ax.set(xlabel="predicted", ylabel="true", title=f"confusion matrix (test accuracy "
                                                      f"{cm.diag().sum().item() / max(cm.sum().item(), 1):.3f})")
    return fig


def misclassified_figure(images: torch.Tensor, y: torch.Tensor, pred: torch.Tensor, classes, limit: int = 16):
    from esc_course.viz import new_figure

    wrong = torch.nonzero(pred != y).flatten()[:limit]
    n = max(len(wrong), 1)
    cols = min(8, n)
    fig, axes = new_figure(cols, -(-n // cols), size=(1.3, 1.5))
    for ax, i in zip(axes, wrong.tolist()):
        show_image(ax, images[i], f"true {str(classes[y[i]])[:8]}\npred {str(classes[pred[i]])[:8]}")
    if len(wrong) == 0:
        axes[0].text(0.5, 0.5, "no errors", ha="center", va="center")
        axes[0].axis("off")
    for ax in axes[max(len(wrong), 1):]:
        ax.set_visible(False)
    fig.suptitle(f"misclassified test images ({int((pred != y).sum())} of {len(y)})", fontsize=10)
    return fig


if __name__ == "__main__":
    from esc_course.lab import main

    raise SystemExit(main("cnn"))
