"""Week 2: loss functions and gradient descent.

The losses written out (MSE, Huber, cross-entropy, binary cross-entropy, KL divergence) and checked against torch,
with the numeric check that cross-entropy = KL divergence + entropy of the labels. Then the slides' example:
gradient descent from (0, 0) towards the minimum 0 at (1, 1) for 20 steps with step sizes 0.01 (too small), 0.3
(right) and 0.6 (too large: it diverges). Last, batch vs mini-batch vs stochastic gradient descent on one linear
regression problem: per step, the full batch is best; per sample seen, the stochastic one is.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from esc_course import losses
from esc_course.config import quick_variant
from esc_course.data import TensorLoader
from esc_course.device import get_device
from esc_course.optim import get_optimizer
from esc_course.optim.landscapes import LANDSCAPES, trajectory, values
from esc_course.runs import LabResult, finish
from esc_course.seed import seed_everything
from esc_course.train import evaluate, fit

HEADLINE = "gd_final_loss_lr0.3"
HEADLINE_MODE = "min"


@dataclass
class Config:
    gd_steps: int = 20                                # gradient-descent steps on the slides' bowl (the slides: 20)
    gd_lrs: tuple[float, ...] = (0.01, 0.3, 0.6)      # the slides' step sizes η
    samples: int = 1024                               # training samples of the regression problem
    features: int = 5                                 # inputs of the regression problem
    noise: float = 1.0                                # std of the label noise (the loss cannot go below noise²)
    lr: float = 0.03                                  # SGD step size, the same for all three batch sizes
    minibatch: int = 32                               # samples per mini-batch
    epochs: int = 10                                  # passes over the data for mini-batch and stochastic GD
    seed: int = 0
    device: str = "auto"
    quick: bool = False                               # small, fast variant for CPU CI and weak laptops


QUICK = dict(samples=256, epochs=3)


# ----------------------------------------------------------------------------------------------- losses
def loss_checks(seed: int) -> tuple[list[dict], dict[str, float]]:
    """Each written-out loss next to torch's on one random batch (float64), and the cross-entropy decomposition."""
    g = torch.Generator().manual_seed(seed)
    f64 = dict(generator=g, dtype=torch.float64)
    logits, labels = torch.randn(8, 4, **f64) * 2, torch.randint(0, 4, (8,), generator=g)
    soft = torch.softmax(torch.randn(8, 4, **f64), dim=-1)   # soft labels (e.g. label smoothing)
    pred, target = torch.randn(8, **f64) * 2, torch.randn(8, **f64)
    z, y01 = torch.randn(8, **f64) * 3, torch.randint(0, 2, (8,), generator=g).double()
    pairs = {
        "mse": (losses.mse(pred, target), F.mse_loss(pred, target)),
        "huber": (losses.huber(pred, target), F.huber_loss(pred, target)),
        "cross_entropy": (losses.cross_entropy(logits, labels), F.cross_entropy(logits, labels)),
        "cross_entropy_soft": (losses.cross_entropy(logits, soft), F.cross_entropy(logits, soft)),
        "binary_cross_entropy": (losses.binary_cross_entropy(losses.sigmoid(z), y01),
                                 F.binary_cross_entropy(torch.sigmoid(z), y01)),
        "kl_divergence": (losses.kl_divergence(soft, losses.softmax(logits)),
                          F.kl_div(torch.log_softmax(logits, -1), soft, reduction="batchmean")),
    }
    rows = [{"loss": k, "ours": float(a), "torch": float(b), "abs_diff": float((a - b).abs())}
            for k, (a, b) in pairs.items()]
    decomposition = losses.cross_entropy_decomposition(logits, soft)
    return rows, decomposition


def activation_examples() -> list[dict]:
    """Softmax turns scores into probabilities that sum to 1; sigmoid squashes one score into (0, 1)."""
    logits = torch.tensor([2.0, 1.0, 0.1])
    probs = losses.softmax(logits)
    rows = [{"output": "softmax", "input": f"z{i} = {float(z):g}", "value": float(p)}
            for i, (z, p) in enumerate(zip(logits, probs))]
    rows += [{"output": "sigmoid", "input": f"z = {z:g}", "value": float(losses.sigmoid(torch.tensor(z)))}
             for z in (-4.0, 0.0, 2.0)]
    return rows


# ---------------------------------------------------------------------------------------- GD on the bowl
def gradient_descent_on_bowl(lrs, steps: int) -> tuple[dict[float, torch.Tensor], list[dict]]:
    """Plain gradient descent from (0, 0) on the slides' bowl for each step size; the paths and a table."""
    start_loss = float(LANDSCAPES["bowl"](torch.tensor(0.0), torch.tensor(0.0)))
    paths, rows = {}, []
    for lr in lrs:
        path = trajectory("bowl", "sgd", start=(0.0, 0.0), steps=steps, lr=lr)
        f = values("bowl", path)
        offset = path - 1.0  # displacement from the minimum (1, 1)
        flips = int(((offset[1:] * offset[:-1]) < 0).any(dim=1).sum())  # steps that jumped across the minimum
        final = float(f[-1])
        if final > start_loss:
            verdict = "too large: diverges"
        elif final > 1e-2 * start_loss:
            verdict = "too large: oscillates" if flips > steps // 2 else "too small: slow"
        else:
            verdict = "right: converged"
        paths[lr] = path
        rows.append({"lr": lr, "steps": len(path) - 1, "start_loss": start_loss, "final_loss": final,
                     "distance_to_min": float(torch.linalg.vector_norm(offset[-1])), "overshoots": flips,
                     "verdict": verdict})
    return paths, rows


# ------------------------------------------------------------------- batch vs mini-batch vs stochastic GD
def regression_data(samples: int, features: int, noise: float, seed: int):
    """y = x·w* + b* + noise·ε with x, w*, ε standard normal: x (N, D), y (N, 1)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(samples, features, generator=g)
    w, b = torch.randn(features, 1, generator=g), torch.randn(1, generator=g)
    return x, x @ w + b + noise * torch.randn(samples, 1, generator=g)


def batch_sizes(cfg: Config) -> dict[str, int]:
    return {"batch": cfg.samples, "minibatch": cfg.minibatch, "stochastic": 1}


def compare_batch_sizes(cfg: Config, device) -> dict[str, dict[str, list[float]]]:
    """Train one linear model from the same initialisation with each batch size; full-data loss per epoch.

    Batch GD runs ``samples`` epochs, so that it makes as many steps as one epoch of stochastic GD.
    """
    x, y = regression_data(cfg.samples, cfg.features, cfg.noise, cfg.seed)
    full = TensorLoader(x, y, batch_size=cfg.samples, shuffle=False, device=device)
    init = nn.Linear(cfg.features, 1).state_dict()
    curves = {}
    for name, size in batch_sizes(cfg).items():
        model = nn.Linear(cfg.features, 1)
        model.load_state_dict(init)
        order = torch.Generator().manual_seed(cfg.seed)  # the same sample order for every run
        data = TensorLoader(x, y, batch_size=size, shuffle=True, device=device, generator=order)
        epochs = max(cfg.epochs, cfg.samples) if name == "batch" else cfg.epochs
        start = evaluate(model.to(device), full, losses.mse, device, metrics=())["loss"]
        history = fit(model, data, full, loss_fn=losses.mse, optimizer=get_optimizer("sgd", model.parameters(),
                      lr=cfg.lr), epochs=epochs, device=device, metrics=(), progress=False, desc=name)
        loss = [start] + history["val_loss"]
        steps_per_epoch = len(data)
        curves[name] = {"epoch": list(range(len(loss))), "loss": loss,
                        "steps": [e * steps_per_epoch for e in range(len(loss))],
                        "samples_seen": [e * cfg.samples for e in range(len(loss))]}
    return curves


def batch_size_table(cfg: Config, curves) -> list[dict]:
    """Loss after one epoch (equal samples seen) and after ``samples`` steps (equal number of updates)."""
    rows = []
    for name, size in batch_sizes(cfg).items():
        c = curves[name]
        at_steps = c["steps"].index(cfg.samples) if cfg.samples in c["steps"] else None
        rows.append({"method": name, "batch_size": size, "steps_per_epoch": c["steps"][1],
                     "loss_after_1_epoch": c["loss"][1],
                     f"loss_after_{cfg.samples}_steps": c["loss"][at_steps] if at_steps is not None else None,
                     "final_loss": c["loss"][-1], "final_samples_seen": c["samples_seen"][-1]})
    return rows


# -------------------------------------------------------------------------------------------------- run
def run(cfg: Config, out: Path | None = None) -> LabResult:
    cfg = quick_variant(cfg, QUICK)
    seed_everything(cfg.seed)
    device = get_device(cfg.device)
    started = time.perf_counter()

    loss_rows, decomposition = loss_checks(cfg.seed)
    paths, gd_rows = gradient_descent_on_bowl(cfg.gd_lrs, cfg.gd_steps)
    curves = compare_batch_sizes(cfg, device)
    bs_rows = batch_size_table(cfg, curves)

    metrics = {"loss_max_abs_diff_vs_torch": max(r["abs_diff"] for r in loss_rows),
               "cross_entropy_minus_kl_plus_entropy": decomposition["gap"],
               "soft_label_entropy": decomposition["label_entropy"]}
    for r in gd_rows:
        metrics[f"gd_final_loss_lr{r['lr']:g}"] = r["final_loss"]
        metrics[f"gd_distance_lr{r['lr']:g}"] = r["distance_to_min"]
        metrics[f"gd_overshoots_lr{r['lr']:g}"] = float(r["overshoots"])
    for r in bs_rows:
        metrics[f"{r['method']}_loss_after_1_epoch"] = r["loss_after_1_epoch"]
        if r[f"loss_after_{cfg.samples}_steps"] is not None:  # batch and stochastic GD: measured at an epoch's end
            metrics[f"{r['method']}_loss_after_{cfg.samples}_steps"] = r[f"loss_after_{cfg.samples}_steps"]
        metrics[f"{r['method']}_final_loss"] = r["final_loss"]
    metrics["noise_floor"] = cfg.noise**2
    history = {f"gd_lr{lr:g}": {"step": list(range(len(p))), "loss": values("bowl", p).tolist()}
               for lr, p in paths.items()}
    history.update({f"regression_{k}": v for k, v in curves.items()})
    result = LabResult(
        lab="gradient_descent", config=asdict(cfg), metrics=metrics, history=history,
        tables={"losses_vs_torch": loss_rows, "cross_entropy_decomposition": [decomposition],
                "output_activations": activation_examples(), "gradient_descent": gd_rows, "batch_sizes": bs_rows},
        figures=figures(paths, gd_rows, curves), device=str(device))
    return finish(result, out, started)


def figures(paths, gd_rows, curves) -> dict:
    from esc_course.optim.landscapes import draw
    from esc_course.viz import new_figure

    contours, axes = new_figure(len(paths), size=(4.0, 3.8))
    for ax, (lr, path), row in zip(axes, paths.items(), gd_rows):
        draw(ax, "bowl", {f"η = {lr:g}": path}, title=f"η = {lr:g}: {row['verdict']}")

    descent, (ax,) = new_figure()
    for lr, path in paths.items():
        ax.plot(values("bowl", path).numpy(), marker=".", label=f"η = {lr:g}")
    ax.set(yscale="log", xlabel="step", ylabel="f(x, y)", title="gradient descent on the bowl")
    ax.grid(alpha=0.3)
    ax.legend()

    batches, (by_step, by_sample) = new_figure(2)
    for name, c in curves.items():  # the start (0 steps, 0 samples) is drawn at 0.5 to show on the log axis
        by_step.plot([max(s, 0.5) for s in c["steps"]], c["loss"], marker=".", label=name)
        by_sample.plot([max(s, 0.5) for s in c["samples_seen"]], c["loss"], marker=".", label=name)
    for ax, what in ((by_step, "steps (updates)"), (by_sample, "samples seen")):
        ax.set(xscale="log", yscale="log", xlabel=what, ylabel="training loss (MSE, all samples)",
               title=f"loss against {what}")
        ax.grid(alpha=0.3)
        ax.legend()
    return {"gd_contours": contours, "gd_loss": descent, "batch_vs_minibatch": batches,
            "loss_functions": loss_functions_figure()}


def loss_functions_figure():
    """MSE, Huber and |r| against the residual; cross-entropy -log p against the true class's probability."""
    from esc_course.viz import new_figure

    fig, (reg, cls) = new_figure(2)
    r = torch.linspace(-3, 3, 301)
    zero = torch.zeros_like(r)
    reg.plot(r, losses.mse(r, zero, reduction="none"), label="MSE: r²")
    reg.plot(r, losses.huber(r, zero, delta=1.0, reduction="none"), label="Huber (δ = 1)")
    reg.plot(r, r.abs(), "--", label="|r|")
    reg.set(xlabel="residual r = ŷ - y", ylabel="loss", title="regression losses", ylim=(0, 4))
    p = torch.linspace(0.005, 0.995, 199)
    cls.plot(p, -torch.log(p), label="y = 1: -log p")
    cls.plot(p, -torch.log(1 - p), label="y = 0: -log(1 - p)")
    cls.set(xlabel="predicted probability p", ylabel="cross-entropy", title="(binary) cross-entropy")
    for ax in (reg, cls):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return fig


if __name__ == "__main__":
    from esc_course.lab import main

    raise SystemExit(main("gradient_descent"))
