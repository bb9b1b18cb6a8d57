"""Week 5: overfitting and regularization.

Polynomial regression of growing degree shows under- and overfitting: train and test error against capacity,
the generalization gap (test error - train error) and the bias-variance split; hyperparameters are chosen on a
validation split (6:2:2 or 5:3:2), never on the test split. Then a deliberately small training set of digits,
where an MLP learns every training image but far fewer test images, and the regularizers that narrow that gap:
L2 (as a loss penalty and as SGD's weight_decay, shown to take identical steps), L1 and elastic net, dropout (from
scratch), data augmentation, early stopping that restores the best weights, and learning-rate decay. Each method
is compared by the mean and spread over seeds.
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from esc_course.config import quick_variant
from esc_course.data.split import split_indices
from esc_course.data.vision import loaders
from esc_course.device import get_device
from esc_course.models import MLP
from esc_course.regularization import EarlyStopping, decay_parameters, penalized, weight_decay_paths
from esc_course.runs import LabResult, finish
from esc_course.scratch.dropout import Dropout
from esc_course.seed import seed_everything
from esc_course.train import evaluate, fit

HEADLINE = "best_test_accuracy"
METHODS = ("none", "l2", "dropout", "augmentation", "early_stopping", "all")


@dataclass
class Config:
    poly_train: int = 12            # evenly spaced x in [0, 1] with noisy y = sin(2 pi x) + noise, to fit
    poly_noise: float = 0.25        # std of the noise on y
    poly_degrees: tuple[int, ...] = (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11)  # 11 interpolates 12 points
    poly_repeats: int = 200         # fresh training sets drawn for the bias-variance split
    poly_split_size: int = 50       # points of the data set split 6:2:2 and 5:3:2 to choose the degree
    poly_lambdas: tuple[float, ...] = (1e-8, 1e-6, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0)  # ridge grid, top degree
    train_size: int = 100           # digits in the deliberately small training set (10 per class)
    hidden: tuple[int, ...] = (256, 256)  # hidden units of the MLP
    lr: float = 0.1                 # SGD step size (momentum 0.9)
    batch_size: int = 50            # samples per step
    epochs: int = 100               # epochs per run (early stopping may end sooner)
    weight_decays: tuple[float, ...] = (1e-4, 1e-3, 1e-2, 1e-1)  # L2 grid; the best on validation loss is used
    dropout: float = 0.2            # drop probability after each hidden layer
    augment: str = "digits"         # the data layer's augmentation preset (esc_course.data.augment.PRESETS)
    patience: int = 10              # early stopping: epochs without a better validation loss
    l1: float = 1e-3                # lambda of the L1 and elastic-net penalties (sum |W|, sum W^2 + |W|)
    seeds: int = 5                  # seeds per method in the comparison (mean and spread)
    seed: int = 0
    device: str = "auto"
    quick: bool = False             # small, fast variant for CPU CI and weak laptops


QUICK = dict(poly_repeats=50, epochs=40, weight_decays=(1e-4, 1e-2, 1e-1), seeds=2)


# ---- polynomial regression ----------------------------------------------------------------------------------

def target(x: torch.Tensor) -> torch.Tensor:
    return torch.sin(2 * math.pi * x)


def poly_data(n: int, noise: float, g: torch.Generator, grid: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """n points x ~ U(0, 1) (or evenly spaced with ``grid``), y = sin(2 pi x) + N(0, noise^2); float64."""
    x = torch.linspace(0, 1, n, dtype=torch.float64) if grid else torch.rand(n, generator=g, dtype=torch.float64)
    return x, target(x) + noise * torch.randn(n, generator=g, dtype=torch.float64)


def poly_features(x: torch.Tensor, degree: int) -> torch.Tensor:
    """[1, t, t^2, ..., t^degree] with t = 2x - 1 in [-1, 1] (keeps high powers well conditioned)."""
    t = 2 * x - 1
    return torch.stack([t**k for k in range(degree + 1)], dim=1)


def fit_poly(x: torch.Tensor, y: torch.Tensor, degree: int, lam: float = 0.0) -> torch.Tensor:
    """Coefficients minimising the slides' J = 1/(2m) sum (h(x) - y)^2 + lam/(2m) sum_{j>=1} theta_j^2:
    (X^T X + lam I') theta = X^T y, with I' the identity without the bias entry (the bias is not penalised)."""
    X = poly_features(x, degree)
    if lam == 0:
        return torch.linalg.lstsq(X, y.unsqueeze(1), driver="gelsd").solution.squeeze(1)
    eye = torch.eye(degree + 1, dtype=X.dtype)
    eye[0, 0] = 0
    return torch.linalg.solve(X.T @ X + lam * eye, X.T @ y)


def poly_predict(theta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return poly_features(x, len(theta) - 1) @ theta


def mse(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).pow(2).mean())


def capacity_study(cfg: Config, g: torch.Generator):
    """Train/test MSE per degree on one training set, and bias^2 / variance over ``poly_repeats`` training sets.

    Training sets share their x (evenly spaced) and differ in the noise. Bias and variance are measured against
    the noise-free target on 200 grid points; the expected test error is bias^2 + variance + noise^2.
    """
    x, y = poly_data(cfg.poly_train, cfg.poly_noise, g, grid=True)
    x_test, y_test = poly_data(1000, cfg.poly_noise, g)
    sets = [poly_data(cfg.poly_train, cfg.poly_noise, g, grid=True) for _ in range(cfg.poly_repeats)]
    grid = torch.linspace(0, 1, 200, dtype=torch.float64)
    rows = []
    for d in cfg.poly_degrees:
        theta = fit_poly(x, y, d)
        train, test = mse(poly_predict(theta, x), y), mse(poly_predict(theta, x_test), y_test)
        preds = torch.stack([poly_predict(fit_poly(xs, ys, d), grid) for xs, ys in sets])  # (repeats, 200)
        bias2 = float((preds.mean(0) - target(grid)).pow(2).mean())
        variance = float(preds.var(0, unbiased=False).mean())
        rows.append({"degree": d, "train_mse": train, "test_mse": test, "gap": test - train, "bias2": bias2,
                     "variance": variance, "noise2": cfg.poly_noise**2})
    return rows, (x, y)


def choose_degree(cfg: Config, g: torch.Generator) -> list[dict]:
    """Split one data set 6:2:2 and 5:3:2; pick the degree with the lowest validation MSE; report its test MSE
    (the test split is looked at once, for the chosen model only)."""
    x, y = poly_data(cfg.poly_split_size, cfg.poly_noise, g)
    rows = []
    for ratios in ((6, 2, 2), (5, 3, 2)):
        tr, va, te = split_indices(y, ratios, seed=cfg.seed, stratify=False)
        degrees = [d for d in cfg.poly_degrees if d < len(tr)]  # at most an interpolating polynomial
        val = {d: mse(poly_predict(fit_poly(x[tr], y[tr], d), x[va]), y[va]) for d in degrees}
        best = min(val, key=val.get)
        theta = fit_poly(x[tr], y[tr], best)
        rows.append({"split": ":".join(map(str, ratios)), "train": len(tr), "val": len(va), "test": len(te),
                     "chosen_degree": best, "val_mse": val[best], "test_mse": mse(poly_predict(theta, x[te]), y[te])})
    return rows


def lambda_study(cfg: Config, g: torch.Generator):
    """Ridge on the highest degree: train/val/test MSE per lambda; small / proper (best on validation) / large."""
    degree = max(d for d in cfg.poly_degrees if d < cfg.poly_train)
    x, y = poly_data(cfg.poly_train, cfg.poly_noise, g, grid=True)
    x_val, y_val = poly_data(cfg.poly_train, cfg.poly_noise, g)
    x_test, y_test = poly_data(1000, cfg.poly_noise, g)
    rows = []
    for lam in cfg.poly_lambdas:
        theta = fit_poly(x, y, degree, lam)
        rows.append({"degree": degree, "lambda": lam, "train_mse": mse(poly_predict(theta, x), y),
                     "val_mse": mse(poly_predict(theta, x_val), y_val),
                     "test_mse": mse(poly_predict(theta, x_test), y_test), "theta_norm": float(theta.norm())})
    proper = min(rows, key=lambda r: r["val_mse"])["lambda"]
    for r in rows:
        r["role"] = "proper" if r["lambda"] == proper else ("small" if r["lambda"] < proper else "large")
    return rows, (x, y)


# ---- the small digits training set --------------------------------------------------------------------------

def build_mlp(cfg: Config, dropout: float = 0.0) -> MLP:
    """The MLP, with torch's Dropout layers swapped for the from-scratch one (esc_course.scratch.dropout)."""
    model = MLP(64, hidden=cfg.hidden, out_features=10, activation="relu", dropout=dropout)
    for i, m in enumerate(model):
        if isinstance(m, nn.Dropout):
            model[i] = Dropout(m.p)
    return model


def digits_splits(cfg: Config, device, augment: str | None = None):
    """The small training set (``train_size`` images, stratified), and the usual validation and test splits."""
    return loaders("digits", batch_size=cfg.batch_size, val_fraction=0.25, train_size=cfg.train_size,
                   augment=augment, seed=cfg.seed, device=device)


def reseed(train, seed: int) -> None:
    """Re-seed a training loader's shuffling (and augmentation) generators, so that a run's batches depend on its
    own seed only and not on how many runs came before it."""
    for part in (train, getattr(train, "loader", None), getattr(train, "augment", None)):
        generator = getattr(part, "generator", None)
        if generator is not None:
            generator.manual_seed(seed)


def train_small(cfg: Config, data: dict, seed: int, device, *, weight_decay: float = 0.0, dropout: float = 0.0,
                augment: bool = False, patience: int | None = None, penalty: str | None = None, lam: float = 0.0,
                schedule: str | None = None) -> dict:
    """One run on the small set; returns accuracies and losses on the (clean) training and the test split,
    both generalization gaps, the epochs run, the history, and the share of near-zero weights."""
    seed_everything(seed)
    model = build_mlp(cfg, dropout).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=0.9, weight_decay=weight_decay)
    loss_fn = penalized(F.cross_entropy, decay_parameters(model), penalty, lam) if penalty else F.cross_entropy
    stopper = EarlyStopping(model, patience=patience) if patience else None
    scheduler = {None: None,
                 "step": lambda: torch.optim.lr_scheduler.StepLR(opt, step_size=max(cfg.epochs // 3, 1), gamma=0.1),
                 "exponential": lambda: torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.95)}[schedule]
    train = data["augmented"].train if augment else data["clean"].train
    reseed(train, seed)
    history = fit(model, train, data["clean"].val, loss_fn=loss_fn,
                  optimizer=opt, epochs=cfg.epochs, device=device, progress=False, on_epoch=stopper,
                  scheduler=scheduler() if scheduler else None)
    if stopper is not None:
        stopper.restore()
    tr = evaluate(model, data["clean"].train, F.cross_entropy, device)
    te = evaluate(model, data["clean"].test, F.cross_entropy, device)
    weights = torch.cat([p.detach().flatten() for p in decay_parameters(model)])
    return {"train_accuracy": tr["accuracy"], "test_accuracy": te["accuracy"], "train_loss": tr["loss"],
            "test_loss": te["loss"], "gap_accuracy": tr["accuracy"] - te["accuracy"],
            "gap_loss": te["loss"] - tr["loss"], "epochs": len(history),
            "best_epoch": stopper.best_epoch if stopper else len(history),
            "near_zero_weights": float((weights.abs() < 1e-3).float().mean()), "history": history.to_dict()}


def cached_run(cache: dict, cfg: Config, data: dict, seed: int, device, **settings) -> dict:
    """``train_small`` once per (seed, settings): the sweep, the comparison and the penalty and decay studies
    share their identical runs (settings at their defaults are dropped from the key)."""
    settings = {k: v for k, v in settings.items() if v not in (None, 0, 0.0, False)}
    key = (seed, tuple(sorted(settings.items())))
    if key not in cache:
        cache[key] = train_small(cfg, data, seed, device, **settings)
    return dict(cache[key])


def weight_decay_sweep(cfg: Config, data: dict, device, cache: dict) -> tuple[list[dict], float, dict]:
    """L2 strength by validation loss (the test split is not looked at to choose); rows say small/proper/large."""
    rows, histories = [], {}
    for wd in cfg.weight_decays:
        r = cached_run(cache, cfg, data, cfg.seed, device, weight_decay=wd)
        histories[f"wd_{wd:g}"] = r.pop("history")
        rows.append({"weight_decay": wd, "val_loss": histories[f"wd_{wd:g}"]["val_loss"][-1],
                     "val_accuracy": histories[f"wd_{wd:g}"]["val_accuracy"][-1], **r})
    proper = min(rows, key=lambda r: r["val_loss"])["weight_decay"]
    for r in rows:
        r["role"] = "proper" if r["weight_decay"] == proper else ("small" if r["weight_decay"] < proper else "large")
    return rows, proper, histories


def comparison(cfg: Config, data: dict, weight_decay: float, device, cache: dict
               ) -> tuple[list[dict], list[dict], dict]:
    """none / L2 / dropout / augmentation / early stopping / all, ``seeds`` runs each: per-run rows, a summary
    (mean and standard deviation over seeds), and the first seed's histories."""
    settings = {"none": {}, "l2": {"weight_decay": weight_decay}, "dropout": {"dropout": cfg.dropout},
                "augmentation": {"augment": True}, "early_stopping": {"patience": cfg.patience},
                "all": {"weight_decay": weight_decay, "dropout": cfg.dropout, "augment": True,
                        "patience": cfg.patience}}
    runs, histories = [], {}
    for method in METHODS:
        for s in range(cfg.seeds):
            r = cached_run(cache, cfg, data, cfg.seed + s, device, **settings[method])
            history = r.pop("history")
            if s == 0:
                histories[method] = history
            runs.append({"method": method, "seed": cfg.seed + s, **r})
    summary = []
    for method in METHODS:
        rs = [r for r in runs if r["method"] == method]
        row = {"method": method, "runs": len(rs)}
        for key in ("test_accuracy", "train_accuracy", "gap_accuracy", "gap_loss", "test_loss"):
            values = [r[key] for r in rs]
            row[f"{key}_mean"] = statistics.fmean(values)
            row[f"{key}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
        summary.append(row)
    return runs, summary, histories


def penalty_study(cfg: Config, data: dict, weight_decay: float, device, cache: dict) -> list[dict]:
    """L2 as a loss penalty (lambda = wd / 2, the same steps as weight_decay=wd), L1 and elastic net:
    accuracy and the share of weights that end up near zero (L1's sparsity)."""
    rows = []
    for name, lam in (("none", 0.0), ("l2", weight_decay / 2), ("l1", cfg.l1), ("elastic_net", cfg.l1)):
        r = cached_run(cache, cfg, data, cfg.seed, device, penalty=None if name == "none" else name, lam=lam)
        r.pop("history")
        rows.append({"penalty": name, "lambda": lam, **{k: r[k] for k in (
            "train_accuracy", "test_accuracy", "gap_loss", "near_zero_weights")}})
    return rows


def decay_study(cfg: Config, data: dict, device, cache: dict) -> tuple[list[dict], dict]:
    """Constant learning rate vs StepLR (x0.1 every third of training) vs ExponentialLR (x0.95 per epoch)."""
    rows, histories = [], {}
    for schedule in (None, "step", "exponential"):
        r = cached_run(cache, cfg, data, cfg.seed, device, schedule=schedule)
        name = schedule or "constant"
        histories[f"lr_{name}"] = r.pop("history")
        rows.append({"schedule": name, "final_lr": histories[f"lr_{name}"]["lr"][-1],
                     **{k: r[k] for k in ("train_loss", "test_loss", "test_accuracy")}})
    return rows, histories


def equivalence_check(cfg: Config, data: dict, weight_decay: float, device) -> list[dict]:
    """The same model and batches trained with (wd/2) sum W^2 in the loss and with the optimizer's
    weight_decay=wd: identical for SGD (and Adam's coupled weight_decay), different for AdamW's decoupled decay."""
    batches = [(x.to(device), y.to(device)) for x, y in data["clean"].train] * 3
    rows = []
    for optimizer, lr in (("sgd", cfg.lr), ("adam", 1e-3), ("adamw", 1e-3)):
        torch.manual_seed(cfg.seed)
        out = weight_decay_paths(lambda: build_mlp(cfg).to(device), batches, loss_fn=F.cross_entropy,
                                 weight_decay=weight_decay, lr=lr, optimizer=optimizer,
                                 momentum=0.9 if optimizer == "sgd" else 0.0)
        rows.append({"optimizer": optimizer, "weight_decay": weight_decay, "steps": len(batches), **out})
    return rows


# ---- the lab ------------------------------------------------------------------------------------------------

def run(cfg: Config, out: Path | None = None) -> LabResult:
    cfg = quick_variant(cfg, QUICK)
    seed_everything(cfg.seed)
    device = get_device(cfg.device)
    started = time.perf_counter()
    g = torch.Generator().manual_seed(cfg.seed)
    capacity, poly_sample = capacity_study(cfg, g)
    chosen = choose_degree(cfg, g)
    lambdas, lambda_sample = lambda_study(cfg, g)

    data = {"clean": digits_splits(cfg, device), "augmented": digits_splits(cfg, device, cfg.augment)}
    cache: dict = {}
    sweep, weight_decay, wd_hist = weight_decay_sweep(cfg, data, device, cache)
    runs, summary, comp_hist = comparison(cfg, data, weight_decay, device, cache)
    penalties = penalty_study(cfg, data, weight_decay, device, cache)
    decay, decay_hist = decay_study(cfg, data, device, cache)
    equivalence = equivalence_check(cfg, data, weight_decay, device)

    best = max(summary, key=lambda r: r["test_accuracy_mean"])
    none = next(r for r in summary if r["method"] == "none")
    metrics = {
        "best_test_accuracy": best["test_accuracy_mean"], "best_method": best["method"],
        "none_test_accuracy": none["test_accuracy_mean"], "none_gap_accuracy": none["gap_accuracy_mean"],
        "none_gap_loss": none["gap_loss_mean"], "chosen_weight_decay": weight_decay,
        **{f"{r['method']}_gap_loss": r["gap_loss_mean"] for r in summary if r["method"] != "none"},
        "sgd_penalty_vs_weight_decay_max_diff": equivalence[0]["max_abs_diff"],
        "adamw_penalty_vs_weight_decay_max_diff": equivalence[2]["max_abs_diff"],
        "poly_best_test_degree": min(capacity, key=lambda r: r["test_mse"])["degree"],
        "poly_chosen_degree_622": chosen[0]["chosen_degree"],
        "poly_proper_lambda": next(r["lambda"] for r in lambdas if r["role"] == "proper"),
    }
    result = LabResult(
        lab="regularization", config=asdict(cfg), metrics=metrics,
        history={**{f"compare_{k}": v for k, v in comp_hist.items()}, **wd_hist, **decay_hist},
        tables={"comparison": summary, "comparison_runs": runs, "weight_decay": sweep, "penalties": penalties,
                "lr_decay": decay, "l2_equivalence": equivalence, "poly_capacity": capacity,
                "poly_split_choice": chosen, "poly_lambda": lambdas},
        figures=figures(cfg, capacity, poly_sample, lambdas, lambda_sample, summary, comp_hist, sweep, decay_hist),
        device=str(device),
    )
    return finish(result, out, started)


def figures(cfg, capacity, poly_sample, lambdas, lambda_sample, summary, comp_hist, sweep, decay_hist) -> dict:
    from esc_course.viz import history_figure

    return {
        "poly_capacity": capacity_figure(capacity),
        "poly_fits": poly_fits_figure(cfg, poly_sample, lambdas, lambda_sample),
        "comparison": comparison_figure(summary),
        "comparison_curves": history_figure(comp_hist, keys=("train_loss", "val_loss"), log_y=True,
                                            title="small training set"),
        "weight_decay": weight_decay_figure(sweep),
        "lr_decay": history_figure({k[3:]: v for k, v in decay_hist.items()}, keys=("lr", "val_loss"),
                                   title="learning-rate decay"),
    }


def capacity_figure(rows):
    from esc_course.viz import new_figure

    fig, axes = new_figure(2, size=(4.6, 3.6))
    d = [r["degree"] for r in rows]
    axes[0].plot(d, [r["train_mse"] for r in rows], marker="o", label="train error")
    axes[0].plot(d, [r["test_mse"] for r in rows], marker="o", label="test error")
    axes[0].fill_between(d, [r["train_mse"] for r in rows], [r["test_mse"] for r in rows], alpha=0.15,
                         label="generalization gap")
    axes[0].set(xlabel="polynomial degree (capacity)", ylabel="MSE", title="train and test error",
                ylim=(0, 1.1 * max(r["test_mse"] for r in rows)))
    axes[1].plot(d, [r["bias2"] for r in rows], marker="o", label="bias$^2$")
    axes[1].plot(d, [r["variance"] for r in rows], marker="o", label="variance")
    axes[1].plot(d, [r["bias2"] + r["variance"] + r["noise2"] for r in rows], "k--", label="bias$^2$ + var + noise")
    axes[1].set(yscale="log", xlabel="polynomial degree (capacity)", ylabel="error", title="bias-variance")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return fig


def poly_fits_figure(cfg, poly_sample, lambdas, lambda_sample):
    """The slides' pictures: underfit / just right / overfit, and small / proper / large lambda."""
    from esc_course.viz import new_figure

    fig, axes = new_figure(2, size=(4.6, 3.6))
    grid = torch.linspace(0, 1, 300, dtype=torch.float64)
    top = max(d for d in cfg.poly_degrees if d < cfg.poly_train)
    x, y = poly_sample
    for d, label in ((1, "high bias (underfit)"), (4, "just right"), (top, "high variance (overfit)")):
        axes[0].plot(grid, poly_predict(fit_poly(x, y, d), grid), label=f"degree {d}: {label}")
    x, y = lambda_sample
    for role in ("small", "proper", "large"):
        r = next((r for r in lambdas if r["role"] == role), None)
        if r is not None:
            axes[1].plot(grid, poly_predict(fit_poly(x, y, r["degree"], r["lambda"]), grid),
                         label=f"{role} $\\lambda$ = {r['lambda']:g}")
    for ax, (xs, ys), title in ((axes[0], poly_sample, "capacity"), (axes[1], lambda_sample, f"degree {top} + L2")):
        ax.plot(grid, target(grid), "k:", label="sin(2$\\pi$x)")
        ax.scatter(xs, ys, c="k", s=14, zorder=3)
        ax.set(ylim=(-1.8, 1.8), xlabel="x", ylabel="y", title=title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return fig


def comparison_figure(summary):
    from esc_course.viz import new_figure

    fig, axes = new_figure(2, size=(4.8, 3.6))
    names = [r["method"] for r in summary]
    for ax, key, label in ((axes[0], "test_accuracy", "test accuracy"),
                           (axes[1], "gap_accuracy", "gap: train acc - test acc")):
        ax.bar(names, [r[f"{key}_mean"] for r in summary], yerr=[r[f"{key}_std"] for r in summary], capsize=3)
        ax.set(ylabel=label, title=f"{label} (mean, std over seeds)")
        ax.tick_params(axis="x", labelrotation=35, labelsize=8)
        ax.grid(alpha=0.3, axis="y")
    lo = min(r["test_accuracy_mean"] - r["test_accuracy_std"] for r in summary)
    axes[0].set_ylim(max(0.0, lo - 0.05), 1.0)
    return fig


def weight_decay_figure(rows):
    from esc_course.viz import new_figure

    fig, axes = new_figure(2, size=(4.4, 3.4))
    wd = [r["weight_decay"] for r in rows]
    axes[0].plot(wd, [r["train_accuracy"] for r in rows], marker="o", label="train")
    axes[0].plot(wd, [r["val_accuracy"] for r in rows], marker="o", label="validation")
    axes[0].set(ylabel="accuracy")
    axes[1].plot(wd, [r["val_loss"] for r in rows], marker="o", label="validation")
    axes[1].plot(wd, [r["train_loss"] for r in rows], marker="o", label="train")
    axes[1].set(ylabel="loss")
    for ax in axes:
        ax.set(xscale="log", xlabel="weight decay (L2 lambda)", title="small / proper / large lambda")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return fig


if __name__ == "__main__":
    from esc_course.lab import main

    raise SystemExit(main("regularization"))
