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
    if cfg.image_size:
        return cfg.image_size
    return 16 if cfg.backbone in tl.OWN_BACKBONES else 64  # 64: ImageNet features still work, 12x cheaper than 224


def architecture(cfg: Config) -> dict:
    """Keyword arguments of the backbone's builder: the own CNNs take their widths here; torchvision's none."""
    return dict(in_channels=3, widths=tuple(cfg.widths)) if cfg.backbone in tl.OWN_BACKBONES else {}


def train(model, x, y, cfg: Config, device, steps: int, decay: float):
    """AdamW on ``param_groups`` (stage rates lr * decay^depth; decay=1: one rate) for ``steps`` steps."""
    data = TensorLoader(x, y, batch_size=min(cfg.batch_size, x.shape[0]), device=device)
    epochs = max(1, math.ceil(steps / len(data)))  # a fixed number of steps, so small sets are not under-trained
    opt = torch.optim.AdamW(tl.param_groups(model, cfg.lr, decay=decay, weight_decay=cfg.weight_decay))
    return fit(model, data, loss_fn=F.cross_entropy, optimizer=opt, epochs=epochs, device=device, progress=False,
               desc="fine-tune")


def accuracy_on(model, task: Task, device) -> float:
    return evaluate(model, TensorLoader(task.x_test, task.y_test, batch_size=512, shuffle=False), device=device)[
        "accuracy"]


def pretrain(name: str, task: Task, cfg: Config, device, folder: Path) -> tuple[Path, dict, dict]:
    """Train the backbone on a source task and save it as safetensors; returns (file, History, table row)."""
    start = time.perf_counter()
    model = tl.backbone(cfg.backbone, weights=None, num_classes=len(task.classes), **architecture(cfg))
    history = train(model, task.x_train, task.y_train, cfg, device, cfg.pretrain_steps, decay=1.0)
    path = save_weights(model, folder / f"backbone_{name}.safetensors")
    row = {"source": name, "data": task.name, "classes": len(task.classes), "train_images": len(task.y_train),
           "test_accuracy": accuracy_on(model, task, device), "seconds": time.perf_counter() - start,
           "file": path.name}
    return path, history.to_dict(), row


def linear_probe(features: dict, idx: torch.Tensor, target: Task, cfg: Config, device) -> float:
    """A Linear layer trained on precomputed features of the training subset ``idx``; test accuracy."""
    train_feats, test_feats = features["train"][idx], features["test"]
    head = torch.nn.Linear(train_feats.shape[1], len(target.classes))
    tl.train_linear(head, train_feats, target.y_train[idx], epochs=cfg.probe_epochs, lr=cfg.probe_lr,
                    weight_decay=cfg.weight_decay, device=device)
    with torch.no_grad():
        return (head(test_feats).argmax(1) == target.y_test).float().mean().item()


def finetune(base, idx, target: Task, cfg: Config, device, until: str | None) -> tuple[float, int]:
    """Fine-tune a copy of ``base`` with a new head; ``until`` freezes the stages before it (None: none)."""
    model = tl.replace_head(copy.deepcopy(base), len(target.classes))
    if until is not None:
        tl.freeze(model, until=until)
    train(model, target.x_train[idx], target.y_train[idx], cfg, device, cfg.finetune_steps, decay=cfg.lr_decay)
    return accuracy_on(model, target, device), count_parameters(model, trainable_only=True)


def from_scratch(idx, target: Task, cfg: Config, device) -> tuple[float, int]:
    model = tl.backbone(cfg.backbone, weights=None, num_classes=len(target.classes), **architecture(cfg))
    train(model, target.x_train[idx], target.y_train[idx], cfg, device, cfg.finetune_steps, decay=1.0)
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


# --- the lab -------------------------------------------------------------------------------------------------------

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


def tasks(cfg: Config, size: int) -> tuple[Task, dict[str, Task]]:
    """The target and the source tasks to pretrain on: the embedded defaults, or the club's ImageFolder as the
    target (then the sources are all of the shapes' source classes and the digits, similarity unknown)."""
    target, sources = embedded_tasks()
    if cfg.data_dir:
        return folder_task(cfg.data_dir, size), {"shapes": sources["similar"], "digits": sources["different"]}
    return target, sources


def pretrain_all(source_tasks: dict, cfg: Config, size: int, stats, device, folder: Path):
    """Pretrain and save a backbone per source task: (name -> file, histories, table rows)."""
    weights, histories, rows = {}, {}, []
    for name, task in source_tasks.items():
        path, history, row = pretrain(name, prepared(task, size, stats, device), cfg, device, folder)
        weights[name], histories[f"pretrain_{name}"] = path, history
        rows.append(row)
    return weights, histories, rows


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
    size = image_size(cfg)
    stats = None if given is None else tl.input_stats(cfg.backbone, cfg.weights)  # ImageNet mean/std, or None
    raw_target, source_tasks = tasks(cfg, size)
    target = prepared(raw_target, size, stats, device)
    sizes = usable_sizes(cfg.sizes, target)
    with torch.random.fork_rng(devices=[]):  # a bad stage name fails now, before any training; no draws used
        stage = stage_plan(tl.backbone(cfg.backbone, weights=None, **architecture(cfg)), cfg)
    with tempfile.TemporaryDirectory() as tmp:
        if given is None:  # offline: pretrain the backbone on each source task, save it, and transfer the file
            weights, histories, source_rows = pretrain_all(source_tasks, cfg, size, stats, device,
                                                           Path(out) if out is not None else Path(tmp))
        else:
            weights, histories, source_rows, source_tasks = given, {}, [], {}
        bases = {name: tl.backbone(cfg.backbone, weights=w, **architecture(cfg)).to(device)
                 for name, w in weights.items()}
        rows = measure(bases, target, sizes, stage, cfg, device)
    table = summarize(rows)
    similarity = {name: name if name in ("similar", "different") else "unknown" for name in bases}
    example = tl.replace_head(copy.deepcopy(next(iter(bases.values()))), len(target.classes))
    groups = [{"stage": g["name"], "lr": g["lr"], "params": sum(p.numel() for p in g["params"])}
              for g in tl.param_groups(example, cfg.lr, decay=cfg.lr_decay)]
    result = LabResult(
        lab="transfer", config=asdict(cfg), metrics=headline_metrics(table, source_rows), history=histories,
        tables={"results": table, "cases": cases(table, similarity), "sources": source_rows, "lr_groups": groups,
                "runs": rows},
        figures=figures(table, histories, raw_target, source_tasks), device=str(device),
    )
    return finish(result, out, started)


def stage_plan(model, cfg: Config) -> dict[str, str | None]:
    """Where each strategy starts: the mid probe reads ``probe_stage``, partial fine-tuning trains from
    ``partial_from`` on (defaults: two stages and one stage before the head)."""
    names = tl.stages(model)
    return {"linear_probe": None,
            "linear_probe_mid": tl.check_stage(model, cfg.probe_stage or names[-3], "--probe_stage"),
            "partial_finetune": tl.check_stage(model, cfg.partial_from or names[-2], "--partial_from"),
            "full_finetune": None}


def measure(bases: dict, target: Task, sizes: list[int], stage: dict, cfg: Config, device) -> list[dict]:
    """Every strategy at every size and repeat: one row per training run."""
    features = {}  # computed once per source and stage: every probe below is then a small matrix problem
    for name, base in bases.items():
        for key in ("linear_probe", "linear_probe_mid"):
            features[name, key] = {split: tl.extract_features(base, x, stage=stage[key], device=device)
                                   for split, x in (("train", target.x_train), ("test", target.x_test))}
    jobs = [("none", "scratch")] + [(name, s) for name in bases for s in STRATEGIES if s != "scratch"]
    rows = []
    for n in sizes:
        for r in range(cfg.repeats if n < len(target.y_train) else 1):  # the whole set has one draw only
            idx = subset(target.y_train, n, seed=cfg.seed * 1000 + r)
            for source, strategy in jobs:
                start = time.perf_counter()
                if strategy == "scratch":
                    acc, trainable = from_scratch(idx, target, cfg, device)
                elif strategy in ("linear_probe", "linear_probe_mid"):
                    feats = features[source, strategy]
                    acc = linear_probe(feats, idx, target, cfg, device)
                    trainable = (feats["train"].shape[1] + 1) * len(target.classes)
                else:
                    acc, trainable = finetune(bases[source], idx, target, cfg, device, stage[strategy])
                rows.append({"source": source, "strategy": strategy, "size": n, "repeat": r, "accuracy": acc,
                             "trainable_params": trainable, "seconds": time.perf_counter() - start})
    return rows


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


def figures(table: list[dict], histories: dict, target: Task, sources: dict) -> dict:
    """Test accuracy against training-set size (one panel per source), the pretraining curves, example images."""
    from esc_course.viz import history_figure, new_figure

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
        ax.set_xticks(sorted({r["size"] for r in table}), labels=[str(n) for n in sorted({r["size"] for r in table})])
        ax.minorticks_off()
        ax.set(xlabel="training images (target)", ylabel="test accuracy", title=f"source: {name}", ylim=(0, 1.02))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"transfer to {target.name}")
    out = {"accuracy_vs_size": fig, "examples": examples_figure(target, sources)}
    if histories:
        out["pretraining"] = history_figure(histories, keys=("train_loss", "train_accuracy"),
                                            title="pretraining on the source tasks")
    return out


def examples_figure(target: Task, sources: dict, per_row: int = 8):
    """A row of images from the target and from each source task."""
    from esc_course.viz import new_figure

    tasks = {"target": target, **{f"{name} source": task for name, task in sources.items()}}
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


if __name__ == "__main__":
    from esc_course.lab import main

    raise SystemExit(main("transfer"))
