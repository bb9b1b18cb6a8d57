"""Week 8: transfer learning.

A backbone trained on a large source task gives features that a small target task can reuse. The slides' four
cases (similar or different source data x little or a lot of target data) are measured here: a linear classifier
on the top features (linear probe), one on an earlier stage's features, fine-tuning the last block, fine-tuning
everything with smaller learning rates for earlier layers, and training from scratch, at several training-set
sizes. Offline and by default the lab pretrains the package's own small ResNet on two embedded source tasks,
saves it (safetensors) and transfers it to the target: shapes cross/ring/frame. The similar source is the other
shapes (circle/square/triangle), the different one the handwritten digits. ``--backbone=resnet18
--weights=DEFAULT`` uses torchvision's ImageNet weights instead, ``--data-dir`` the club's practice data.
"""

from __future__ import annotations

import copy
import math
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from esc_course.checkpoint import save_weights
from esc_course.config import quick_variant
from esc_course.data import TensorLoader
from esc_course.data.split import normalize, split_indices
from esc_course.device import get_device
from esc_course.models import count_parameters
from esc_course.models import transfer as tl
from esc_course.runs import LabResult, finish
from esc_course.seed import seed_everything
from esc_course.train import evaluate, fit

HEADLINE = "finetune_gain_little"  # full fine-tuning minus training from scratch, at the smallest training set

STRATEGIES = ("linear_probe", "linear_probe_mid", "partial_finetune", "full_finetune", "scratch")
# the slides' table: (source, amount of target data) -> (their advice, the strategy here that follows it)
SLIDES = {
    ("similar", "little"): ("Use linear classifier on top layer", "linear_probe"),
    ("similar", "a lot"): ("Finetune a few layers", "partial_finetune"),
    ("different", "little"): ("You're in trouble... Try linear classifier from different stages",
                              "linear_probe_mid"),
    ("different", "a lot"): ("Finetune a larger number of layers", "full_finetune"),
}
SHAPES_SOURCE_CLASSES = 3  # shapes 0-2 (circle, square, triangle) are the similar source; 3-5 the target


@dataclass
class Config:
    backbone: str = "small_resnet"  # esc_course's own CNN, or a torchvision one: resnet18, mobilenet_v3_small, ...
    weights: str = "pretrain"       # pretrain: on the embedded source tasks, here; DEFAULT: torchvision's; or a file
    data_dir: str = ""              # the club's practice data: an ImageFolder (one sub-folder per class)
    image_size: int = 0             # pixels per side; 0: 16 for small_resnet/small_vgg, 64 for torchvision's
    widths: tuple[int, ...] = (16, 32, 64)  # channels per stage of small_resnet / small_vgg
    sizes: tuple[int, ...] = (15, 30, 75, 150, 300, 750, 1500)  # target training-set sizes (images, stratified)
    repeats: int = 3                # training subsets drawn per size: the table gives mean and std over them
    pretrain_steps: int = 600       # optimizer steps on each source task (batches of batch_size)
    finetune_steps: int = 200       # optimizer steps per fine-tuning / from-scratch run, whatever the set size
    probe_epochs: int = 100         # full-batch epochs of a linear classifier on fixed features
    lr: float = 3e-3                # AdamW step size of the head (and of every layer from scratch)
    lr_decay: float = 0.5           # each earlier stage learns lr_decay times as fast as the next (discriminative)
    probe_lr: float = 1e-2          # AdamW step size of the linear probes
    weight_decay: float = 1e-4      # AdamW decoupled weight decay
    batch_size: int = 32            # images per step
    partial_from: str = ""          # first trained stage of partial fine-tuning; "": the last block before the head
    probe_stage: str = ""           # stage whose pooled output the mid probe reads; "": two before the head
    seed: int = 0
    device: str = "auto"
    quick: bool = False             # small, fast variant for CPU CI and weak laptops


QUICK = dict(widths=(8, 16, 32), sizes=(15, 300), repeats=1, pretrain_steps=80, finetune_steps=40,
             probe_epochs=60)


@dataclass
class Task:
    """Images (N, C, H, W) in [0, 1] and labels (N,) of one classification task, split into train and test."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    classes: tuple[str, ...]


# --- data ----------------------------------------------------------------------------------------------------------

def _classes(x: torch.Tensor, y: torch.Tensor, keep: range) -> tuple[torch.Tensor, torch.Tensor]:
    mask = (y >= keep.start) & (y < keep.stop)
    return x[mask], y[mask] - keep.start


def embedded_tasks() -> tuple[Task, dict[str, Task]]:
    """The default target (shapes cross/ring/frame) and its sources: similar (the other shapes) and different
    (the handwritten digits, grey 8x8)."""
    from esc_course.data.shapes import SHAPE_CLASSES
    from esc_course.data.vision import vision

    k = SHAPES_SOURCE_CLASSES
    shapes = {s: vision("shapes", split=s) for s in ("train", "test")}
    digits = {s: vision("digits", split=s) for s in ("train", "test")}
    target = Task("shapes: " + "/".join(SHAPE_CLASSES[k:]), *_classes(*shapes["train"], range(k, 6)),
                  *_classes(*shapes["test"], range(k, 6)), SHAPE_CLASSES[k:])
    similar = Task("shapes: " + "/".join(SHAPE_CLASSES[:k]), *_classes(*shapes["train"], range(k)),
                   *_classes(*shapes["test"], range(k)), SHAPE_CLASSES[:k])
    different = Task("digits 0-9", *digits["train"], *digits["test"], tuple(str(i) for i in range(10)))
    return target, {"similar": similar, "different": different}


def folder_task(path: str, image_size: int) -> Task:
    """The club's practice data: an ImageFolder, read once into tensors (its own train/test folders, or a fixed
    stratified 20 % test split)."""
    from esc_course.data.vision import loaders

    data = loaders("folder", root=path, image_size=image_size, val_fraction=0.0, normalize=False,
                   backend="tensor", batch_size=1)  # only the tensors are used, not the batches
    return Task(f"folder {path}", data.train.x.cpu(), data.train.y.cpu(), data.test.x.cpu(), data.test.y.cpu(),
                data.info.classes)


def as_input(x: torch.Tensor, size: int, stats: tuple[list[float], list[float]] | None) -> torch.Tensor:
    """Grey -> RGB (the channel repeated), resized to size x size, normalised with the weights' statistics."""
    if x.shape[1] == 1:
        x = x.repeat(1, 3, 1, 1)
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    if stats is not None:
        x = normalize(x, torch.tensor(stats[0]), torch.tensor(stats[1]))
    return x.contiguous()


def prepared(task: Task, size: int, stats, device: torch.device) -> Task:
    return Task(task.name, as_input(task.x_train, size, stats).to(device), task.y_train.to(device),
                as_input(task.x_test, size, stats).to(device), task.y_test.to(device), task.classes)


# --- training ------------------------------------------------------------------------------------------------------

def image_size(cfg: Config) -> int:
    return default_image_size(cfg.backbone, cfg.image_size)


def default_image_size(backbone: str, size: int = 0) -> int:
    """``size`` if given, else 16 pixels for the own small CNNs and 64 for torchvision's."""
    if size:
        return size
    return 16 if backbone in tl.OWN_BACKBONES else 64  # 64: ImageNet features still work, 12x cheaper than 224


def architecture(backbone: str, widths) -> dict:
    """Keyword arguments of the backbone's builder: the own CNNs take their widths here; torchvision's none."""
    return dict(in_channels=3, widths=tuple(widths)) if backbone in tl.OWN_BACKBONES else {}


@dataclass(frozen=True)
class Recipe:
    """How every training run of a study is done: the study's keyword arguments, handed down together."""

    lr: float = 3e-3            # AdamW step size of the head (and of every layer from scratch)
    lr_decay: float = 0.5       # each earlier stage learns lr_decay times as fast as the next
    probe_lr: float = 1e-2      # AdamW step size of the linear probes
    weight_decay: float = 1e-4  # AdamW decoupled weight decay
    batch_size: int = 32        # images per step
    steps: int = 200            # optimizer steps per run, whatever the training-set size
    probe_epochs: int = 100     # full-batch epochs of a linear probe


def sub_folder(checkpoint_dir: Path | str | None, name: str) -> dict:
    """``fit``'s checkpoint arguments for one run: its own stable folder ``checkpoint_dir / name``, resumed when it
    holds a checkpoint; nothing when ``checkpoint_dir`` is None."""
    if checkpoint_dir is None:
        return {}
    return {"checkpoint_dir": Path(checkpoint_dir) / name, "resume": True}


def train(model, x, y, recipe: Recipe, device, decay: float, checkpoint: dict | None = None):
    """AdamW on ``param_groups`` (stage rates lr * decay^depth; decay=1: one rate) for ``recipe.steps`` steps."""
    data = TensorLoader(x, y, batch_size=min(recipe.batch_size, x.shape[0]), device=device)
    epochs = max(1, math.ceil(recipe.steps / len(data)))  # a fixed number of steps: small sets are not under-trained
    opt = torch.optim.AdamW(tl.param_groups(model, recipe.lr, decay=decay, weight_decay=recipe.weight_decay))
    return fit(model, data, loss_fn=F.cross_entropy, optimizer=opt, epochs=epochs, device=device, progress=False,
               desc="fine-tune", **(checkpoint or {}))


def accuracy_on(model, task: Task, device) -> float:
    return evaluate(model, TensorLoader(task.x_test, task.y_test, batch_size=512, shuffle=False), device=device)[
        "accuracy"]


# --- 1. the data ---------------------------------------------------------------------------------------------------

@dataclass
class TransferData:
    """The target task and the source tasks, as the backbone reads them (RGB, resized, normalised, on the device);
    ``raw_*`` keep the images as they are, for drawing."""

    target: Task
    sources: dict[str, Task]
    raw_target: Task
    raw_sources: dict[str, Task]
    image_size: int


def transfer_data(*, backbone: str = "small_resnet", weights: str = "pretrain", data_dir: str = "",
                  image_size: int = 0, device="cpu") -> TransferData:
    """The embedded target (shapes cross/ring/frame) and sources (the other shapes, the digits), or the club's
    ImageFolder ``data_dir`` as the target; resized to ``image_size`` pixels (0: the backbone's default) and
    normalised with the statistics of ``weights`` (none for the lab's own pretraining)."""
    if backbone not in tl.BACKBONES:
        raise ValueError(f"--backbone={backbone!r}: unknown; valid backbones: {', '.join(tl.BACKBONES)}")
    device = get_device(device)
    size = default_image_size(backbone, image_size)
    stats = None if weights == "pretrain" else tl.input_stats(backbone, weights)  # ImageNet mean/std, or None
    target, sources = embedded_tasks()
    if data_dir:
        target, sources = folder_task(data_dir, size), {"shapes": sources["similar"], "digits": sources["different"]}
    return TransferData(prepared(target, size, stats, device),
                        {name: prepared(t, size, stats, device) for name, t in sources.items()}, target, sources, size)


def examples_figure(data: TransferData, per_row: int = 8):
    """A row of images from the target and from each source task."""
    from esc_course.viz import new_figure

    tasks = {"target": data.raw_target, **{f"{name} source": task for name, task in data.raw_sources.items()}}
    fig, axes = new_figure(per_row, len(tasks), size=(1.1, 1.25))
    for row, (label, task) in enumerate(tasks.items()):
        for col in range(per_row):
            ax = axes[row * per_row + col]
            img = task.x_train[col].cpu()
            ax.imshow((img[0] if img.shape[0] == 1 else img.permute(1, 2, 0)).numpy(), cmap="gray", vmin=0, vmax=1)
            ax.set_title(task.classes[int(task.y_train[col])], fontsize=7)
            ax.axis("off")
        axes[row * per_row].text(-0.3, 0.5, label, transform=axes[row * per_row].transAxes, ha="right",
                                 va="center", fontsize=8)
    return fig


# --- 2. pretraining ------------------------------------------------------------------------------------------------

@dataclass
class PretrainResult:
    files: dict[str, Path]       # source -> the saved backbone (safetensors)
    histories: dict[str, dict]   # "pretrain_<source>" -> History.to_dict()
    rows: list[dict]             # per source: its data, classes, images, test accuracy, seconds, file name


def pretrain_study(sources: dict[str, Task], *, backbone: str = "small_resnet", widths=(16, 32, 64),
                   steps: int = 600, lr: float = 3e-3, weight_decay: float = 1e-4, batch_size: int = 32,
                   folder: Path | str | None = None, seed: int = 0, device="cpu",
                   checkpoint_dir: Path | None = None) -> PretrainResult:
    """Train the backbone from random weights on each source task (``transfer_data(...).sources``) for ``steps``
    AdamW steps and save it as ``folder/backbone_<source>.safetensors`` (``folder`` None: a new temporary
    folder). Measures each backbone's test accuracy (fraction) on its own source task and the seconds it took."""
    if steps < 1:
        raise ValueError(f"--pretrain_steps={steps}: must be a positive integer")
    device = get_device(device)
    folder = Path(folder) if folder is not None else Path(tempfile.mkdtemp(prefix="week08-backbones-"))
    folder.mkdir(parents=True, exist_ok=True)
    recipe = Recipe(lr=lr, weight_decay=weight_decay, batch_size=batch_size, steps=steps)
    seed_everything(seed)
    files, histories, rows = {}, {}, []
    for name, task in sources.items():
        start = time.perf_counter()
        model = tl.backbone(backbone, weights=None, num_classes=len(task.classes), **architecture(backbone, widths))
        history = train(model, task.x_train, task.y_train, recipe, device, decay=1.0,
                        checkpoint=sub_folder(checkpoint_dir, f"pretrain-{name}"))
        files[name] = save_weights(model, folder / f"backbone_{name}.safetensors")
        histories[f"pretrain_{name}"] = history.to_dict()
        rows.append({"source": name, "data": task.name, "classes": len(task.classes),
                     "train_images": len(task.y_train), "test_accuracy": accuracy_on(model, task, device),
                     "seconds": time.perf_counter() - start, "file": files[name].name})
    return PretrainResult(files, histories, rows)


def pretraining_figure(result: PretrainResult):
    """Training loss and accuracy per epoch on each source task."""
    from matplotlib.ticker import MaxNLocator

    from esc_course.viz import history_figure

    fig = history_figure(result.histories, keys=("train_loss", "train_accuracy"))
    fig.axes[0].set_title("pretraining: training loss")
    fig.axes[1].set_title("pretraining: training accuracy")
    for ax in fig.axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # whole epochs
    return fig


# --- 3. the strategies ---------------------------------------------------------------------------------------------

def linear_probe(features: dict, idx: torch.Tensor, target: Task, recipe: Recipe, device) -> float:
    """A Linear layer trained on precomputed features of the training subset ``idx``; test accuracy."""
    train_feats, test_feats = features["train"][idx], features["test"]
    head = torch.nn.Linear(train_feats.shape[1], len(target.classes))
    tl.train_linear(head, train_feats, target.y_train[idx], epochs=recipe.probe_epochs, lr=recipe.probe_lr,
                    weight_decay=recipe.weight_decay, device=device)
    with torch.no_grad():
        return (head(test_feats).argmax(1) == target.y_test).float().mean().item()


def finetune(base, idx, target: Task, recipe: Recipe, device, until: str | None,
             checkpoint: dict | None = None) -> tuple[float, int]:
    """Fine-tune a copy of ``base`` with a new head; ``until`` freezes the stages before it (None: none)."""
    model = tl.replace_head(copy.deepcopy(base), len(target.classes))
    if until is not None:
        tl.freeze(model, until=until)
    train(model, target.x_train[idx], target.y_train[idx], recipe, device, decay=recipe.lr_decay,
          checkpoint=checkpoint)
    return accuracy_on(model, target, device), count_parameters(model, trainable_only=True)


def from_scratch(idx, target: Task, backbone: str, widths, recipe: Recipe, device,
                 checkpoint: dict | None = None) -> tuple[float, int]:
    model = tl.backbone(backbone, weights=None, num_classes=len(target.classes), **architecture(backbone, widths))
    train(model, target.x_train[idx], target.y_train[idx], recipe, device, decay=1.0, checkpoint=checkpoint)
    return accuracy_on(model, target, device), count_parameters(model)


def usable_sizes(sizes, target: Task) -> list[int]:
    """The requested sizes that the target's training split can give, at least one image per class each."""
    n, k = len(target.y_train), len(target.classes)
    kept = sorted({min(s, n) for s in sizes if s >= k})
    if not kept:
        raise ValueError(f"sizes={tuple(sizes)}: every size must be at least the number of classes ({k})")
    return kept


def subset(y: torch.Tensor, size: int, seed: int) -> torch.Tensor:
    """A stratified random subset of ``size`` indices (all of them when size is the whole set)."""
    if size >= len(y):
        return torch.arange(len(y), device=y.device)
    return split_indices(y.cpu(), (size, len(y) - size), seed=seed)[0].to(y.device)


def stage_plan(model, partial_from: str = "", probe_stage: str = "") -> dict[str, str | None]:
    """Where each strategy starts: the mid probe reads ``probe_stage``, partial fine-tuning trains from
    ``partial_from`` on (defaults: two stages and one stage before the head)."""
    names = tl.stages(model)
    return {"linear_probe": None,
            "linear_probe_mid": tl.check_stage(model, probe_stage or names[-3], "--probe_stage"),
            "partial_finetune": tl.check_stage(model, partial_from or names[-2], "--partial_from"),
            "full_finetune": None}


@dataclass
class TransferResult:
    runs: list[dict]       # one per training run: source, strategy, size, repeat, accuracy, params, seconds
    table: list[dict]      # mean and std of the accuracy over repeats, per (size, source, strategy)
    cases: list[dict]      # the slides' four cases: their advice and what was measured
    lr_groups: list[dict]  # full fine-tuning's learning rate per stage

    def accuracy(self, source: str, strategy: str, size: int | None = None) -> float:
        """Mean test accuracy of (source, strategy) at ``size`` (default: the smallest); source "none" for
        scratch."""
        size = self.table[0]["size"] if size is None else size
        return next(r["accuracy"] for r in self.table
                    if r["source"] == source and r["strategy"] == strategy and r["size"] == size)

    @property
    def sizes(self) -> list[int]:
        return sorted({r["size"] for r in self.table})


def measure(bases: dict, target: Task, sizes: list[int], stage: dict, *, repeats: int, backbone: str, widths,
            recipe: Recipe, seed: int, device, checkpoint_dir) -> list[dict]:
    """Every strategy at every size and repeat: one row per training run."""
    features = {}  # computed once per source and stage: every probe below is then a small matrix problem
    for name, base in bases.items():
        for key in ("linear_probe", "linear_probe_mid"):
            features[name, key] = {split: tl.extract_features(base, x, stage=stage[key], device=device)
                                   for split, x in (("train", target.x_train), ("test", target.x_test))}
    jobs = [("none", "scratch")] + [(name, s) for name in bases for s in STRATEGIES if s != "scratch"]
    rows = []
    for n in sizes:
        for r in range(repeats if n < len(target.y_train) else 1):  # the whole set has one draw only
            idx = subset(target.y_train, n, seed=seed * 1000 + r)
            for source, strategy in jobs:
                start = time.perf_counter()
                checkpoint = sub_folder(checkpoint_dir, f"{source}-{strategy}-n{n}-r{r}")
                if strategy == "scratch":
                    acc, trainable = from_scratch(idx, target, backbone, widths, recipe, device, checkpoint)
                elif strategy in ("linear_probe", "linear_probe_mid"):
                    feats = features[source, strategy]
                    acc = linear_probe(feats, idx, target, recipe, device)
                    trainable = (feats["train"].shape[1] + 1) * len(target.classes)
                else:
                    acc, trainable = finetune(bases[source], idx, target, recipe, device, stage[strategy],
                                              checkpoint)
                rows.append({"source": source, "strategy": strategy, "size": n, "repeat": r, "accuracy": acc,
                             "trainable_params": trainable, "seconds": time.perf_counter() - start})
    return rows


def transfer_study(weights: dict[str, Path | str], target: Task, *, backbone: str = "small_resnet",
                   widths=(16, 32, 64), sizes=(15, 30, 75, 150, 300, 750, 1500), repeats: int = 3,
                   finetune_steps: int = 200, probe_epochs: int = 100, lr: float = 3e-3, lr_decay: float = 0.5,
                   probe_lr: float = 1e-2, weight_decay: float = 1e-4, batch_size: int = 32,
                   partial_from: str = "", probe_stage: str = "", seed: int = 0, device="cpu",
                   checkpoint_dir: Path | None = None) -> TransferResult:
    """Each pretrained backbone (``weights``: source -> file or torchvision weights name) transferred to
    ``target`` by the five strategies (linear probe on the top / a middle stage, partial and full fine-tuning,
    from scratch), at each training-set size (images, stratified draws; ``repeats`` draws per size). Measures
    the test accuracy (fraction) and the trainable parameters and seconds of each run."""
    for key, value in (("repeats", repeats), ("finetune_steps", finetune_steps), ("probe_epochs", probe_epochs),
                       ("batch_size", batch_size)):
        if value < 1:
            raise ValueError(f"--{key}={value}: must be a positive integer")
    if not weights:
        raise ValueError("weights must name at least one backbone (source -> file), e.g. PretrainResult.files")
    device = get_device(device)
    arch = architecture(backbone, widths)
    with torch.random.fork_rng(devices=[]):  # a bad stage name fails now, before any training; no draws used
        stage = stage_plan(tl.backbone(backbone, weights=None, **arch), partial_from, probe_stage)
    usable = usable_sizes(sizes, target)
    seed_everything(seed)
    bases = {name: tl.backbone(backbone, weights=w, **arch).to(device) for name, w in weights.items()}
    recipe = Recipe(lr=lr, lr_decay=lr_decay, probe_lr=probe_lr, weight_decay=weight_decay, batch_size=batch_size,
                    steps=finetune_steps, probe_epochs=probe_epochs)
    runs = measure(bases, target, usable, stage, repeats=repeats, backbone=backbone, widths=widths, recipe=recipe,
                   seed=seed, device=device, checkpoint_dir=checkpoint_dir)
    table = summarize(runs)
    similarity = {name: name if name in ("similar", "different") else "unknown" for name in bases}
    example = tl.replace_head(copy.deepcopy(next(iter(bases.values()))), len(target.classes))
    groups = [{"stage": g["name"], "lr": g["lr"], "params": sum(p.numel() for p in g["params"])}
              for g in tl.param_groups(example, lr, decay=lr_decay)]
    return TransferResult(runs, table, cases(table, similarity), groups)


def summarize(rows: list[dict]) -> list[dict]:
    """Mean and std of test accuracy over repeats, per (size, source, strategy)."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["size"], r["source"], r["strategy"]), []).append(r)
    table = []
    for (n, source, strategy), rs in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1] == "none")):
        accs = [r["accuracy"] for r in rs]
        table.append({"size": n, "source": source, "strategy": strategy, "accuracy": statistics.fmean(accs),
                      "std": statistics.stdev(accs) if len(accs) > 1 else 0.0, "repeats": len(accs),
                      "trainable_params": rs[0]["trainable_params"],
                      "seconds": statistics.fmean(r["seconds"] for r in rs)})
    return table


def cases(table: list[dict], similarity: dict[str, str]) -> list[dict]:
    """The slides' four cases, each with their advice, what it measured, and the best strategy measured."""
    little, lot = table[0]["size"], table[-1]["size"]
    mean = {(r["source"], r["strategy"], r["size"]): r["accuracy"] for r in table}
    rows = []
    for source, kind in similarity.items():
        for amount, n in (("little", little), ("a lot", lot)):
            advice, follows = SLIDES.get((kind, amount), ("", ""))
            measured = {s: mean[(source, s, n)] for s in STRATEGIES if (source, s, n) in mean}
            measured["scratch"] = mean[("none", "scratch", n)]
            best = max(measured, key=measured.get)
            rows.append({"source": source, "similarity": kind, "data": f"{amount} ({n} images)",
                         "slides_advice": advice, "advice_strategy": follows,
                         "advice_accuracy": measured.get(follows), "best_strategy": best,
                         "best_accuracy": measured[best], "scratch_accuracy": measured["scratch"]})
    return rows


def slide_claims(result: TransferResult) -> list[dict]:
    """The notebook's reading of the four cases, each checked on the measured accuracies: {"case", "claim",
    "holds", "numbers"}. Needs the sources "similar" and "different" (the lab's own pretraining)."""
    little, lot = result.sizes[0], result.sizes[-1]

    def acc(source, strategy, n):
        return result.accuracy(source, strategy, n)

    lp_little, scratch_little = acc("similar", "linear_probe", little), acc("none", "scratch", little)
    tuned_lot = max(acc("similar", "partial_finetune", lot), acc("similar", "full_finetune", lot))
    lp_lot = acc("similar", "linear_probe", lot)
    diff_little = max(acc("different", s, little) for s in STRATEGIES[:-1])
    diff_full_lot, scratch_lot = acc("different", "full_finetune", lot), acc("none", "scratch", lot)
    diff_lp_lot = acc("different", "linear_probe", lot)
    return [
        {"case": f"similar, little ({little})", "claim": "a linear probe on the frozen features beats training "
         "from scratch by more than 0.1", "holds": lp_little > scratch_little + 0.1,
         "numbers": f"linear_probe {lp_little:.3f} vs scratch {scratch_little:.3f}"},
        {"case": f"similar, a lot ({lot})", "claim": "fine-tuning layers beats the linear probe",
         "holds": tuned_lot > lp_lot, "numbers": f"best fine-tuning {tuned_lot:.3f} vs linear_probe {lp_lot:.3f}"},
        {"case": f"different, little ({little})", "claim": "no strategy reaches what the similar source's linear "
         "probe gets", "holds": diff_little < lp_little,
         "numbers": f"best from digits {diff_little:.3f} vs similar linear_probe {lp_little:.3f}"},
        {"case": f"different, a lot ({lot})", "claim": "many layers must learn: full fine-tuning beats the "
         "linear probe by more than 0.05 (with this much data training from scratch is an option too: compare)",
         "holds": diff_full_lot > diff_lp_lot + 0.05,
         "numbers": f"full_finetune {diff_full_lot:.3f} vs linear_probe {diff_lp_lot:.3f}, "
                    f"scratch {scratch_lot:.3f}"},
    ]


def accuracy_figure(result: TransferResult, target_name: str = "the target"):
    """Test accuracy against training-set size (log scale), one panel per source, every strategy and scratch."""
    from esc_course.viz import new_figure

    table = result.table
    names = [s for s in dict.fromkeys(r["source"] for r in table) if s != "none"]
    fig, axes = new_figure(len(names), size=(4.6, 3.8))
    scratch = [r for r in table if r["strategy"] == "scratch"]
    for ax, name in zip(axes, names):
        for strategy in STRATEGIES[:-1]:
            rs = [r for r in table if r["source"] == name and r["strategy"] == strategy]
            ax.errorbar([r["size"] for r in rs], [r["accuracy"] for r in rs], yerr=[r["std"] for r in rs],
                        marker="o", capsize=3, label=strategy)
        ax.errorbar([r["size"] for r in scratch], [r["accuracy"] for r in scratch], yerr=[r["std"] for r in scratch],
                    marker="s", capsize=3, color="k", linestyle="--", label="scratch")
        ax.set_xscale("log")
        ax.set_xticks(result.sizes, labels=[str(n) for n in result.sizes])
        ax.minorticks_off()
        ax.set(xlabel="training images (target)", ylabel="test accuracy", title=f"source: {name}", ylim=(0, 1.02))
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right center", fontsize=8)  # outside: never over the points
    fig.suptitle(f"transfer to {target_name}")
    return fig


# --- the whole lab -------------------------------------------------------------------------------------------------

def sources_of(cfg: Config) -> dict[str, str] | None:
    """Pretrained weights to transfer (name -> weights), or None when the lab pretrains its own. Checked before
    any data is read, so a missing file or unavailable download fails at once with its message."""
    if cfg.weights == "pretrain":
        return None
    if tl.is_weights_file(cfg.weights):
        if not Path(cfg.weights).is_file():
            raise FileNotFoundError(f"--weights={cfg.weights}: no such file (a .safetensors/.pt state dict of "
                                    f"{cfg.backbone}, e.g. backbone_similar.safetensors from a run of this lab)")
        return {Path(cfg.weights).stem: cfg.weights}
    tl.pretrained_state(cfg.backbone, cfg.weights)  # fetch now (or raise WeightsUnavailableError)
    return {"imagenet": cfg.weights}


def check(cfg: Config) -> None:
    if cfg.backbone not in tl.BACKBONES:
        raise ValueError(f"--backbone={cfg.backbone!r}: unknown; valid backbones: {', '.join(tl.BACKBONES)}")
    for key in ("repeats", "pretrain_steps", "finetune_steps", "probe_epochs", "batch_size"):
        if getattr(cfg, key) < 1:
            raise ValueError(f"--{key}={getattr(cfg, key)}: must be a positive integer")
    if not cfg.sizes or not cfg.widths:
        raise ValueError(f"--sizes={cfg.sizes} and --widths={cfg.widths} must each hold at least one number")


def headline_metrics(table: list[dict], source_rows: list[dict]) -> dict[str, float]:
    """Accuracy of every (source, strategy) at the smallest ("little") and largest ("lot") training set."""
    little, lot = table[0]["size"], table[-1]["size"]
    metrics = {f"source_accuracy_{r['source']}": r["test_accuracy"] for r in source_rows}
    for r in table:
        if r["size"] in (little, lot):
            prefix = "" if r["strategy"] == "scratch" else f"{r['source']}_"
            metrics[f"{prefix}{r['strategy']}_{'little' if r['size'] == little else 'lot'}"] = r["accuracy"]
    first = next(r["source"] for r in table if r["source"] != "none")
    metrics["finetune_gain_little"] = metrics[f"{first}_full_finetune_little"] - metrics["scratch_little"]
    metrics["smallest_size"], metrics["largest_size"] = little, lot
    return metrics


def run(cfg: Config, out: Path | None = None) -> LabResult:
    cfg = quick_variant(cfg, QUICK)
    check(cfg)
    seed_everything(cfg.seed)
    device = get_device(cfg.device)
    started = time.perf_counter()
    given = sources_of(cfg)
    ckpt = Path(out) / "checkpoints" if out is not None else None
    data = transfer_data(backbone=cfg.backbone, weights=cfg.weights, data_dir=cfg.data_dir,
                         image_size=cfg.image_size, device=device)
    usable_sizes(cfg.sizes, data.target)  # a bad size fails before any training
    with torch.random.fork_rng(devices=[]):
        stage_plan(tl.backbone(cfg.backbone, weights=None, **architecture(cfg.backbone, cfg.widths)),
                   cfg.partial_from, cfg.probe_stage)
    with tempfile.TemporaryDirectory() as tmp:
        if given is None:  # offline: pretrain the backbone on each source task, save it, and transfer the file
            pre = pretrain_study(data.sources, backbone=cfg.backbone, widths=cfg.widths, steps=cfg.pretrain_steps,
                                 lr=cfg.lr, weight_decay=cfg.weight_decay, batch_size=cfg.batch_size,
                                 folder=Path(out) if out is not None else Path(tmp), seed=cfg.seed, device=device,
                                 checkpoint_dir=ckpt)
        else:
            pre = PretrainResult(given, {}, [])
            data.raw_sources = {}
        transfer = transfer_study(pre.files, data.target, backbone=cfg.backbone, widths=cfg.widths, sizes=cfg.sizes,
                                  repeats=cfg.repeats, finetune_steps=cfg.finetune_steps,
                                  probe_epochs=cfg.probe_epochs, lr=cfg.lr, lr_decay=cfg.lr_decay,
                                  probe_lr=cfg.probe_lr, weight_decay=cfg.weight_decay, batch_size=cfg.batch_size,
                                  partial_from=cfg.partial_from, probe_stage=cfg.probe_stage, seed=cfg.seed,
                                  device=device, checkpoint_dir=ckpt)
    figures = {"accuracy_vs_size": accuracy_figure(transfer, data.raw_target.name), "examples": examples_figure(data)}
    captions = {
        "accuracy_vs_size": "Test accuracy on the target against the number of training images, per source "
                            "backbone and strategy, with training from scratch (mean and std over repeats).",
        "examples": "Example images of the target task and of each source task.",
        "results": "Mean test accuracy per training-set size, source and strategy.",
        "cases": "The slides' four cases: their advice, its measured accuracy, and the best strategy measured.",
        "sources": "Each pretrained backbone's accuracy on its own source task.",
        "lr_groups": "Full fine-tuning's learning rate per stage (discriminative learning rates).",
    }
    if pre.histories:
        figures["pretraining"] = pretraining_figure(pre)
        captions["pretraining"] = "Training loss and accuracy per epoch while pretraining on each source task."
    result = LabResult(
        lab="transfer", config=asdict(cfg), metrics=headline_metrics(transfer.table, pre.rows),
        history=pre.histories,
        tables={"results": transfer.table, "cases": transfer.cases, "sources": pre.rows,
                "lr_groups": transfer.lr_groups, "runs": transfer.runs},
        figures=figures, captions=captions, device=str(device),
    )
    return finish(result, out, started)


if __name__ == "__main__":
    from esc_course.lab import main

    raise SystemExit(main("transfer"))
