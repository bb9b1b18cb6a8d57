"""Week 3: convolutional networks.

Convolution by hand (the slides' 5x5 example), then CNNs trained on images: a small VGG by default, compared
with LeNet-5, a small ResNet (skip connections), Network-in-Network (1x1 convolutions, global average pooling)
and a depthwise-separable net. The lab shows what the first layer learned (filters, feature maps), where the
model errs (confusion matrix, misclassified images) and the slides' table: conv layers hold most of the
compute, fully-connected layers most of the parameters (measured for the lab's models and for torchvision's
AlexNet, VGG-16 and ResNet-18). Runs on the embedded digits by default; --dataset=shapes|mnist|fashion_mnist|
cifar10, or --data-dir=<an ImageFolder> for the club's practice data.

Studies (each one notebook cell): ``convolution_study`` (no training), ``training_study`` (trains the models),
``prediction_study`` (the first model's test predictions), ``complexity_study`` (counts, no training).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from esc_course.config import quick_variant
from esc_course.device import get_device
from esc_course.metrics import confusion_matrix
from esc_course.models import count_parameters
from esc_course.models.cnn import CNN_MODELS, build_cnn
from esc_course.models.complexity import REFERENCE_MODELS, complexity_table, kind_table, layer_costs
from esc_course.runs import LabResult, finish
from esc_course.scratch.conv import conv2d, slide_example
from esc_course.seed import seed_everything
from esc_course.train import evaluate, fit

HEADLINE = "test_accuracy"
MODELS = ("vgg", "lenet5", "resnet", "nin", "separable")   # the lab's five CNNs, the figures' model first


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
    shifts: tuple[int, ...] = (1, 2, 3)  # pixels the test images are moved right in the invariance study
    invariance_images: int = 256  # test images the invariance study shifts
    image_size: int = 32        # ImageFolder images are resized to image_size x image_size pixels
    seed: int = 0
    device: str = "auto"
    quick: bool = False         # small, fast variant for CPU CI and weak laptops


QUICK = dict(epochs=6, train_size=5000)   # all five models, fewer epochs (quick still compares every CNN)


def data_for(cfg: Config, device: torch.device):
    """The loaders for cfg's data set: embedded by default, an ImageFolder when data_dir is set alone."""
    from esc_course.data.vision import DATASETS, loaders

    name, root = cfg.dataset, cfg.data_dir or None
    if root is not None and (name not in DATASETS or DATASETS[name].embedded):
        name = "folder"
    return loaders(name, batch_size=cfg.batch_size, val_fraction=cfg.val_fraction, device=device,
                   augment=None if cfg.augment == "none" else cfg.augment, seed=cfg.seed, root=root,
                   train_size=cfg.train_size or None, image_size=cfg.image_size)


def make_model(name: str, *, in_channels: int, num_classes: int, image_size: int, batch_norm: bool = True
               ) -> nn.Module:
    """CNN ``name`` for images of ``in_channels`` x ``image_size`` x ``image_size``; ``batch_norm`` reaches the
    VGG's and NiN's conv blocks (ResNet and separable always have it, LeNet-5 never)."""
    extra = {"batch_norm": batch_norm} if name in ("vgg", "nin") else {}
    return build_cnn(name, in_channels=in_channels, num_classes=num_classes, image_size=image_size, **extra)


# ---- convolution by hand ------------------------------------------------------------------------------------

@dataclass
class ConvolutionResult:
    example: dict[str, torch.Tensor]  # the slides' "image" 5x5, "filter" 3x3, "feature" 3x3, "pooled" 2x2
    slide_correct: bool               # our feature map equals the slides' [[4, 3, 4], [2, 4, 3], [2, 3, 4]]
    scratch_max_error: float          # largest |conv2d - F.conv2d| on random multi-channel input


SLIDE_FEATURE = [[4, 3, 4], [2, 4, 3], [2, 3, 4]]


def scratch_conv_check(seed: int) -> float:
    """Largest difference between the hand-written conv2d and F.conv2d on random multi-channel input."""
    g = torch.Generator().manual_seed(seed)
    x, w, b = torch.randn(2, 3, 7, 7, generator=g), torch.randn(4, 3, 3, 3, generator=g), torch.randn(4, generator=g)
    return (conv2d(x, w, b, stride=2, padding=1) - F.conv2d(x, w, b, stride=2, padding=1)).abs().max().item()


def convolution_study(*, seed: int = 0) -> ConvolutionResult:
    """The slides' 5x5 example by hand, and the hand-written conv2d against F.conv2d (absolute error, no unit)."""
    example = slide_example()
    return ConvolutionResult(example, example["feature"].tolist() == SLIDE_FEATURE, scratch_conv_check(seed))


# ---- training the CNNs --------------------------------------------------------------------------------------

@dataclass
class TrainingResult:
    models: dict[str, nn.Module]                   # name -> the trained model (in training order)
    histories: dict[str, dict[str, list[float]]]   # name -> History.to_dict(): per-epoch train_loss, val_accuracy...
    rows: list[dict]                               # one per model: params, test accuracy/loss, best val, seconds

    @property
    def first(self) -> str:
        """The first model trained: the one the figures show."""
        return next(iter(self.models))

    def accuracy(self, name: str) -> float:
        return next(r["test_accuracy"] for r in self.rows if r["model"] == name)


def training_study(data, *, models: tuple[str, ...] = MODELS, epochs: int = 20, lr: float = 3e-3,
                   batch_norm: bool = True, seed: int = 0, device: torch.device | str | None = None,
                   checkpoint_dir: Path | None = None) -> TrainingResult:
    """Train each CNN in ``models`` on ``data`` (a DataSplits) the same way: Adam at ``lr``, cosine-annealed to 0
    over ``epochs``, the same seed. Rows: params (count), test_accuracy (share), test_loss (cross-entropy, nats),
    best_val_accuracy (share), train_seconds (wall-clock s). With ``checkpoint_dir``, each model's fit resumes from
    ``checkpoint_dir / "train-<name>"``."""
    unknown = [m for m in models if m not in CNN_MODELS]
    if unknown or not models:
        raise ValueError(f"models={models!r}: give one or more of the valid models: {', '.join(CNN_MODELS)}")
    device = get_device(device) if device is None or isinstance(device, str) else device
    info = data.info
    trained, histories, rows = {}, {}, []
    for name in dict.fromkeys(models):
        seed_everything(seed)  # the same initial randomness for every model
        generator = getattr(data.train, "generator", None)
        if generator is not None:  # and the same batch order, however many runs came before
            generator.manual_seed(seed)
        model = make_model(name, in_channels=info.channels, num_classes=info.num_classes, image_size=info.size,
                           batch_norm=batch_norm).to(device)
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(epochs, 1))
        start = time.perf_counter()
        history = fit(model, data.train, data.val, loss_fn=F.cross_entropy, optimizer=opt, epochs=epochs,
                      device=device, scheduler=sched, desc=name,
                      checkpoint_dir=None if checkpoint_dir is None else Path(checkpoint_dir) / f"train-{name}",
                      resume=checkpoint_dir is not None)
        seconds = time.perf_counter() - start
        test = evaluate(model, data.test, F.cross_entropy, device)
        trained[name], histories[name] = model, history.to_dict()
        rows.append({"model": name, "params": count_parameters(model), "test_accuracy": test["accuracy"],
                     "test_loss": test["loss"],
                     "best_val_accuracy": max(history["val_accuracy"]) if data.val else None,
                     "train_seconds": seconds})
    return TrainingResult(trained, histories, rows)


def training_figure(result: TrainingResult):
    """Training loss and validation accuracy per epoch, one line per model."""
    from esc_course.viz import history_figure

    return history_figure(result.histories, keys=("train_loss", "val_accuracy"), title="")


# ---- what the model learned and where it errs ---------------------------------------------------------------

@dataclass
class Predictions:
    model: nn.Module       # the model that predicted (for its filters and feature maps)
    x: torch.Tensor        # test inputs as the model saw them (normalised), on the CPU, (N, C, H, W)
    images: torch.Tensor   # the same images un-normalised for display
    y: torch.Tensor        # true classes (N,)
    pred: torch.Tensor     # predicted classes (N,)
    classes: list = field(default_factory=list)

    @property
    def confusion(self) -> torch.Tensor:
        """(true, predicted) counts."""
        return confusion_matrix(self.pred, self.y, len(self.classes))

    @property
    def errors(self) -> int:
        return int((self.pred != self.y).sum())

    @property
    def accuracy(self) -> float:
        return 1 - self.errors / max(len(self.y), 1)


@torch.no_grad()
def prediction_study(model: nn.Module, data) -> Predictions:
    """``model``'s predictions on the whole test split of ``data`` (a DataSplits), kept on the CPU."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    xs, ys, ps = [], [], []
    for x, y in data.test:
        ps.append(model(x.to(device)).argmax(1).cpu())
        xs.append(x.cpu())
        ys.append(y.cpu())
    model.train(was_training)
    x = torch.cat(xs)
    images = x * data.std.reshape(1, -1, 1, 1) + data.mean.reshape(1, -1, 1, 1) if data.mean is not None else x
    return Predictions(model, x, images, torch.cat(ys), torch.cat(ps), list(data.info.classes))


# ---- pooling and invariance --------------------------------------------------------------------------------

INVARIANCE_STAGES = ("conv", "max_pooled", "global_pooled", "output")


def shift_images(x: torch.Tensor, pixels: int) -> torch.Tensor:
    """``x`` (N, C, H, W) moved ``pixels`` to the right, the vacated columns filled with the image's minimum."""
    if not 0 <= pixels < x.shape[-1]:
        raise ValueError(f"pixels={pixels}: give a shift in [0, {x.shape[-1] - 1}] for images {x.shape[-1]} wide")
    out = torch.full_like(x, float(x.min()))
    out[..., pixels:] = x[..., :x.shape[-1] - pixels]
    return out


@dataclass
class InvarianceResult:
    rows: list[dict]   # per shift (pixels): relative change of each stage, prediction agreement (share)

    def change(self, stage: str, pixels: int) -> float:
        return next(r[f"{stage}_change"] for r in self.rows if r["shift"] == pixels)


@torch.no_grad()
def invariance_study(model: nn.Module, x: torch.Tensor, *, shifts: tuple[int, ...] = (1, 2, 3)) -> InvarianceResult:
    """How much ``model``'s representations of images ``x`` (N, C, H, W) change when the images move ``shifts``
    pixels to the right. Stages: ``conv`` (the input of the first max pool: conv features, equivariant, so they
    move with the image), ``max_pooled`` (its output; LeNet-5's first pool averages), ``global_pooled`` (the
    global average pool's output, what the classifier sees; without one, the last Linear layer's input) and ``output`` (softmax probabilities). Change: mean over images of
    ||f(shifted) - f(x)|| / ||f(x)|| (a ratio, no unit); ``agreement``: share of images whose predicted class
    stays the same."""
    if not shifts:
        raise ValueError("shifts=(): give one or more shifts in pixels")
    seen: dict[str, torch.Tensor] = {}
    pools = [m for m in model.modules() if isinstance(m, (nn.MaxPool2d, nn.AvgPool2d))]
    global_pool = next((m for m in model.modules() if isinstance(m, nn.AdaptiveAvgPool2d)), None)
    last_linear = [m for m in model.modules() if isinstance(m, nn.Linear)][-1:]
    if not pools or (global_pool is None and not last_linear):
        raise ValueError(f"model={type(model).__name__}: needs a pooling layer and a global pool or a Linear head")
    hooks = [pools[0].register_forward_hook(lambda m, i, o: seen.update(conv=i[0], max_pooled=o))]
    if global_pool is not None:
        hooks.append(global_pool.register_forward_hook(lambda m, i, o: seen.update(global_pooled=o)))
    else:  # LeNet-5: no global pool; what its classifier's last layer sees
        hooks.append(last_linear[0].register_forward_hook(lambda m, i, o: seen.update(global_pooled=i[0])))
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device

    def stages(images):
        seen["output"] = model(images.to(device)).softmax(1)
        return {k: seen[k].flatten(1).cpu() for k in INVARIANCE_STAGES}

    try:
        base = stages(x)
        rows = []
        for pixels in shifts:
            moved = stages(shift_images(x, pixels))
            row = {"shift": pixels}
            for k in INVARIANCE_STAGES:
                row[f"{k}_change"] = float(((moved[k] - base[k]).norm(dim=1)
                                            / base[k].norm(dim=1).clamp_min(1e-12)).mean())
            row["agreement"] = float((moved["output"].argmax(1) == base["output"].argmax(1)).float().mean())
            rows.append(row)
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return InvarianceResult(rows)


def invariance_figure(result: InvarianceResult):
    """Relative change of each stage against the shift in pixels."""
    from esc_course.viz import new_figure

    fig, (ax,) = new_figure(size=(4.6, 3.4))
    shifts = [r["shift"] for r in result.rows]
    for k, marker in zip(INVARIANCE_STAGES, "osD^"):
        ax.plot(shifts, [r[f"{k}_change"] for r in result.rows], marker=marker, label=k.replace("_", " "))
    ax.set(xlabel="shift (pixels)", ylabel="||f(shifted) - f(x)|| / ||f(x)||", title="what a shift changes")
    ax.set_xticks(shifts)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    return fig


# ---- parameters and multiply-adds ---------------------------------------------------------------------------

@dataclass
class ComplexityResult:
    rows: list[dict]          # per model: params_M, conv/fc parameter shares (%), macs_M, conv/fc MAC shares (%)
    layers: list[dict]        # per layer of ``models[0]``: kind, params, MACs
    layer_types: list[dict]   # the same summed per layer kind, with shares (%)

    def row(self, name: str) -> dict:
        return next(r for r in self.rows if r["model"] == name)


def complexity_study(*, models: tuple[str, ...] = MODELS, input_shape: tuple[int, int, int] = (1, 8, 8),
                     num_classes: int = 10, batch_norm: bool = True,
                     references: tuple[str, ...] = tuple(REFERENCE_MODELS)) -> ComplexityResult:
    """Parameters and multiply-adds (per image) of the lab's CNNs at ``input_shape`` (C, H, W) and of torchvision's
    ``references`` at 3x224x224. Counting needs no training: the models are built fresh."""
    c, h, _ = input_shape
    built = {name: (make_model(name, in_channels=c, num_classes=num_classes, image_size=h, batch_norm=batch_norm),
                    input_shape) for name in dict.fromkeys(models)}
    layers = layer_costs(next(iter(built.values()))[0], input_shape)
    return ComplexityResult(complexity_table(built, references), layers, kind_table(layers))


# ---- the lab ------------------------------------------------------------------------------------------------

def run(cfg: Config, out: Path | None = None) -> LabResult:
    cfg = quick_variant(cfg, QUICK)
    seed_everything(cfg.seed)
    device = get_device(cfg.device)
    started = time.perf_counter()
    data = data_for(cfg, device)
    info = data.info
    names = (cfg.model, *(m for m in cfg.compare if m != cfg.model))
    conv = convolution_study(seed=cfg.seed)
    trained = training_study(data, models=names, epochs=cfg.epochs, lr=cfg.lr, batch_norm=cfg.batch_norm,
                             seed=cfg.seed, device=device,
                             checkpoint_dir=None if out is None else Path(out) / "checkpoints")
    preds = prediction_study(trained.models[cfg.model], data)
    shifted = invariance_study(trained.models[cfg.model], preds.x[:cfg.invariance_images], shifts=cfg.shifts)
    cost = complexity_study(models=names, input_shape=(info.channels, info.size, info.size),
                            num_classes=info.num_classes, batch_norm=cfg.batch_norm)
    rows = [dict(r, macs=round(cost.row(r["model"])["macs_M"] * 1e6)) for r in trained.rows]
    metrics = {
        "test_accuracy": rows[0]["test_accuracy"],
        "params": rows[0]["params"],
        "macs": rows[0]["macs"],
        **{f"{r['model']}_test_accuracy": r["test_accuracy"] for r in rows[1:]},
        "scratch_conv_max_error": conv.scratch_max_error,
        "slide_example_correct": float(conv.slide_correct),
        **{f"shift{r['shift']}_{k}_change": r[f"{k}_change"] for r in shifted.rows for k in INVARIANCE_STAGES},
        **{f"shift{r['shift']}_agreement": r["agreement"] for r in shifted.rows},
    }
    result = LabResult(
        lab="cnn", config=asdict(cfg), metrics=metrics, history=trained.histories,
        tables={"models": rows, "complexity": cost.rows, "layer_types": cost.layer_types, "layers": cost.layers, "invariance": shifted.rows,
                "slide_example": [{"row": i, **{f"col{j}": v for j, v in enumerate(r)}}
                                  for i, r in enumerate(conv.example["feature"].tolist())]},
        figures={"convolution_example": convolution_figure(conv), "training_curves": training_figure(trained),
                 "filters": filters_figure(preds.model), "feature_maps": feature_maps_figure(preds),
                 "confusion_matrix": confusion_figure(preds), "misclassified": misclassified_figure(preds),
                 "invariance": invariance_figure(shifted)},
        captions={
            "convolution_example": "The slides' 5x5 image convolved with the 3x3 filter, and 2x2 max pooling.",
            "training_curves": f"Training loss and validation accuracy per epoch of {', '.join(names)}.",
            "filters": f"The first conv layer's learned filters of {cfg.model}.",
            "feature_maps": f"{cfg.model}'s first two conv layers' activations for one test image.",
            "confusion_matrix": f"{cfg.model}'s test predictions against the true classes.",
            "misclassified": f"Test images {cfg.model} got wrong, with true and predicted class.",
            "invariance": f"How much {cfg.model}'s conv features, pooled features and output change when the "
                          f"test images move {', '.join(map(str, cfg.shifts))} pixels.",
            "models": "Parameters, test accuracy, best validation accuracy and training time per model.",
            "complexity": "Parameters and multiply-adds per model, and the shares of conv and FC layers.",
            "layer_types": f"{cfg.model}'s parameters and multiply-adds summed per layer type.",
        },
        device=str(device),
    )
    return finish(result, out, started)


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


def convolution_figure(result: ConvolutionResult):
    """The slides' 5x5 image, 3x3 filter, the convolved feature and its 2x2 max pooling, with the numbers."""
    from esc_course.viz import new_figure

    example = result.example
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
def feature_maps_figure(preds: Predictions, index: int = 0, per_layer: int = 8):
    """Test image ``index`` and the activations of the model's first two conv layers for it (the first
    ``per_layer`` channels, after ReLU)."""
    from esc_course.viz import new_figure

    model = preds.model
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)][:2]
    maps: list[torch.Tensor] = []
    hooks = [c.register_forward_hook(lambda m, i, o: maps.append(o[0].relu().cpu())) for c in convs]
    was_training = model.training
    model.eval()
    try:
        model(preds.x[index:index + 1].to(next(model.parameters()).device))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    fig, axes = new_figure(per_layer + 1, len(maps), size=(1.2, 1.3))
    for row, fmap in enumerate(maps):
        show_image(axes[row * (per_layer + 1)], preds.images[index], "input" if row == 0 else "")
        for j in range(per_layer):
            ax = axes[row * (per_layer + 1) + 1 + j]
            if j < len(fmap):
                ax.imshow(fmap[j].numpy(), cmap="magma")
                ax.set_title(f"conv{row + 1} ch{j}", fontsize=7)
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle("feature maps (after ReLU)", fontsize=10)
    return fig


def confusion_figure(preds: Predictions):
    """(true, predicted) counts of the test predictions, with the counts written in."""
    from esc_course.viz import new_figure

    cm, classes = preds.confusion, preds.classes
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
    ax.set(xlabel="predicted", ylabel="true", title=f"confusion matrix (test accuracy {preds.accuracy:.3f})")
    return fig


def misclassified_figure(preds: Predictions, limit: int = 16):
    """Up to ``limit`` test images the model got wrong, titled with the true and the predicted class."""
    from esc_course.viz import new_figure

    images, y, pred, classes = preds.images, preds.y, preds.pred, preds.classes
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
    fig.suptitle(f"misclassified test images ({preds.errors} of {len(y)})", fontsize=10)
    return fig


if __name__ == "__main__":
    from esc_course.lab import main

    raise SystemExit(main("cnn"))
