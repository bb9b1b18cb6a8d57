"""Week 5: overfitting and regularization.

Polynomial regression of growing degree shows under- and overfitting: train and test error against capacity,
the generalization gap (test error - train error) and the bias-variance split; hyperparameters are chosen on a
validation split (6:2:2 or 5:3:2), never on the test split. Then a deliberately small training set of digits,
where an MLP learns every training image but far fewer test images, and the regularizers that narrow that gap:
L2 (as a loss penalty and as SGD's weight_decay, shown to take identical steps), L1 and elastic net, dropout (from
scratch), data augmentation, early stopping that restores the best weights, and learning-rate decay. Each method
is compared by the mean and spread over seeds, and against the same MLP trained on every training image.

Each experiment is a study function (``capacity_study``, ``weight_decay_study``, ``comparison_study``, ...) that a
notebook cell calls with its settings as keyword arguments; ``run`` calls them all with a Config's values.
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from esc_course.config import quick_variant
from esc_course.data.augment import preset
from esc_course.data.split import split_indices
from esc_course.data.vision import DataSplits, loaders
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
    boundary_train: int = 60        # noisy 2-D training points of the classification boundary
    boundary_flip: float = 0.1      # probability that a boundary point's label is flipped
    boundary_degree: int = 8        # polynomial features x1^i x2^j, i + j <= degree (45 of them)
    boundary_lambdas: tuple[float, ...] = (0.0, 1e-3, 1e-2, 0.1, 1.0, 10.0, 100.0)  # L2 strengths
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
    test_passes: int = 20           # predictions averaged by test-time augmentation and Monte-Carlo dropout
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


def label_roles(rows: list[dict], key: str, score: str) -> float:
    """Mark each row "small" / "proper" / "large" by ``key`` around the row with the lowest ``score``; return
    the proper value."""
    proper = min(rows, key=lambda r: r[score])[key]
    for r in rows:
        r["role"] = "proper" if r[key] == proper else ("small" if r[key] < proper else "large")
    return proper


@dataclass
class CapacityResult:
    rows: list[dict]          # per degree: train/test MSE, gap, bias^2, variance, noise^2
    x: torch.Tensor           # the training set the figure draws
    y: torch.Tensor

    @property
    def best_degree(self) -> int:
        """The degree with the lowest test MSE."""
        return min(self.rows, key=lambda r: r["test_mse"])["degree"]

    def row(self, degree: int) -> dict:
        return next(r for r in self.rows if r["degree"] == degree)


def capacity_study(*, degrees: tuple[int, ...] = Config.poly_degrees, train_points: int = Config.poly_train,
                   noise: float = Config.poly_noise, repeats: int = Config.poly_repeats,
                   seed: int = Config.seed) -> CapacityResult:
    """Train and test MSE (squared units of y) per polynomial degree on one training set, and bias^2 / variance
    over ``repeats`` training sets.

    Training sets share their x (``train_points`` evenly spaced) and differ in the noise. Bias and variance are
    measured against the noise-free target on 200 grid points; the expected test error is bias^2 + variance +
    noise^2. Test MSE is on 1,000 fresh points.
    """
    g = torch.Generator().manual_seed(seed)
    x, y = poly_data(train_points, noise, g, grid=True)
    x_test, y_test = poly_data(1000, noise, g)
    sets = [poly_data(train_points, noise, g, grid=True) for _ in range(repeats)]
    grid = torch.linspace(0, 1, 200, dtype=torch.float64)
    rows = []
    for d in degrees:
        theta = fit_poly(x, y, d)
        train, test = mse(poly_predict(theta, x), y), mse(poly_predict(theta, x_test), y_test)
        preds = torch.stack([poly_predict(fit_poly(xs, ys, d), grid) for xs, ys in sets])  # (repeats, 200)
        bias2 = float((preds.mean(0) - target(grid)).pow(2).mean())
        variance = float(preds.var(0, unbiased=False).mean())
        rows.append({"degree": d, "train_mse": train, "test_mse": test, "gap": test - train, "bias2": bias2,
                     "variance": variance, "noise2": noise**2})
    return CapacityResult(rows, x, y)


@dataclass
class SplitResult:
    rows: list[dict]          # per split ratio: sizes, the chosen degree, its validation and test MSE


def split_study(*, size: int = Config.poly_split_size, degrees: tuple[int, ...] = Config.poly_degrees,
                noise: float = Config.poly_noise, seed: int = Config.seed) -> SplitResult:
    """Split one data set of ``size`` points 6:2:2 and 5:3:2; pick the degree with the lowest validation MSE;
    report its test MSE (squared units of y; the test split is looked at once, for the chosen model only)."""
    g = torch.Generator().manual_seed(seed + 1)  # another data set than the capacity study's
    x, y = poly_data(size, noise, g)
    rows = []
    for ratios in ((6, 2, 2), (5, 3, 2)):
        tr, va, te = split_indices(y, ratios, seed=seed, stratify=False)
        usable = [d for d in degrees if d < len(tr)]  # at most an interpolating polynomial
        val = {d: mse(poly_predict(fit_poly(x[tr], y[tr], d), x[va]), y[va]) for d in usable}
        best = min(val, key=val.get)
        theta = fit_poly(x[tr], y[tr], best)
        rows.append({"split": ":".join(map(str, ratios)), "train": len(tr), "val": len(va), "test": len(te),
                     "chosen_degree": best, "val_mse": val[best], "test_mse": mse(poly_predict(theta, x[te]), y[te])})
    return SplitResult(rows)


@dataclass
class LambdaResult:
    rows: list[dict]          # per lambda: train/val/test MSE, |theta|, role small / proper / large
    proper: float             # the lambda with the lowest validation MSE
    degree: int
    x: torch.Tensor           # the training set the figure draws
    y: torch.Tensor


def lambda_study(*, lambdas: tuple[float, ...] = Config.poly_lambdas, degrees: tuple[int, ...] = Config.poly_degrees,
                 train_points: int = Config.poly_train, noise: float = Config.poly_noise,
                 seed: int = Config.seed) -> LambdaResult:
    """Ridge on the highest degree below ``train_points``: train/validation/test MSE (squared units of y) and the
    coefficient norm per lambda; the lambda with the lowest validation MSE is "proper"."""
    degree = max(d for d in degrees if d < train_points)
    g = torch.Generator().manual_seed(seed + 2)
    x, y = poly_data(train_points, noise, g, grid=True)
    x_val, y_val = poly_data(train_points, noise, g)
    x_test, y_test = poly_data(1000, noise, g)
    rows = []
    for lam in lambdas:
        theta = fit_poly(x, y, degree, lam)
        rows.append({"degree": degree, "lambda": lam, "train_mse": mse(poly_predict(theta, x), y),
                     "val_mse": mse(poly_predict(theta, x_val), y_val),
                     "test_mse": mse(poly_predict(theta, x_test), y_test), "theta_norm": float(theta.norm())})
    proper = label_roles(rows, "lambda", "val_mse")
    return LambdaResult(rows, proper, degree, x, y)


# ---- under- and overfitting a classification boundary -------------------------------------------------------

def boundary_data(n: int, flip: float, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """n points uniform in [-1, 1]², label 1 inside the wavy circle x1² + x2² + 0.3 sin(4 x1) < 0.5, each label
    flipped with probability ``flip`` (label noise to overfit); float64 points, float64 labels in {0, 1}."""
    x = torch.rand(n, 2, generator=g, dtype=torch.float64) * 2 - 1
    y = ((x.pow(2).sum(1) + 0.3 * torch.sin(4 * x[:, 0])) < 0.5).double()
    noisy = torch.rand(n, generator=g, dtype=torch.float64) < flip
    return x, torch.where(noisy, 1 - y, y)


def boundary_features(x: torch.Tensor, degree: int) -> torch.Tensor:
    """Every monomial x1^i x2^j with i + j <= degree, the constant first: (n, (degree+1)(degree+2)/2)."""
    return torch.stack([x[:, 0] ** i * x[:, 1] ** (d - i) for d in range(degree + 1) for i in range(d + 1)], dim=1)


def fit_logistic(x: torch.Tensor, y: torch.Tensor, degree: int, lam: float, iters: int = 200) -> torch.Tensor:
    """Logistic regression on polynomial features minimising mean cross-entropy + lam/(2m) sum_{j>=1} theta_j^2
    (the bias unpenalised, as in the slides' J), by L-BFGS from zero."""
    X = boundary_features(x, degree)
    theta = torch.zeros(X.shape[1], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([theta], max_iter=iters, line_search_fn="strong_wolfe", tolerance_grad=1e-9)

    def closure():
        opt.zero_grad()
        loss = F.binary_cross_entropy_with_logits(X @ theta, y) + lam / (2 * len(y)) * theta[1:].pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return theta.detach()


@dataclass
class BoundaryResult:
    rows: list[dict]          # per lambda: train / validation / test accuracy (fractions), |theta|, role
    proper: float             # the lambda with the best validation accuracy (ties: the larger lambda)
    degree: int
    data: dict[str, tuple[torch.Tensor, torch.Tensor]] = field(repr=False)  # "train" -> (x, y)
    thetas: dict[float, torch.Tensor] = field(repr=False)

    def row(self, lam: float) -> dict:
        return next(r for r in self.rows if r["lambda"] == lam)


def boundary_study(*, lambdas: tuple[float, ...] = Config.boundary_lambdas, degree: int = Config.boundary_degree,
                   train_points: int = Config.boundary_train, flip: float = Config.boundary_flip,
                   seed: int = Config.seed) -> BoundaryResult:
    """Logistic regression on degree-``degree`` polynomial features of 2-D points, ``train_points`` noisy training
    points, per L2 strength lambda: train / validation / test accuracy (fractions; validation and test 1000 points
    each with the same label noise) and |theta|; lambda is chosen on validation accuracy."""
    if train_points < 2 or not 0 <= flip < 0.5:
        raise ValueError(f"train_points must be >= 2 and flip in [0, 0.5), got {train_points!r}, {flip!r}")
    g = torch.Generator().manual_seed(seed)
    data = {"train": boundary_data(train_points, flip, g), "val": boundary_data(1000, flip, g),
            "test": boundary_data(1000, flip, g)}
    rows, thetas = [], {}
    for lam in lambdas:
        theta = thetas[lam] = fit_logistic(*data["train"], degree, lam)
        row = {"lambda": lam, "theta_norm": float(theta[1:].norm())}
        for part, (x, y) in data.items():
            row[f"{part}_accuracy"] = float(((boundary_features(x, degree) @ theta > 0).double() == y).double().mean())
        rows.append(row)
    best = max(r["val_accuracy"] for r in rows)
    proper = max(r["lambda"] for r in rows if r["val_accuracy"] == best)
    for r in rows:
        r["role"] = "proper" if r["lambda"] == proper else ("small" if r["lambda"] < proper else "large")
    return BoundaryResult(rows, proper, degree, data, thetas)


def boundary_figure(result: BoundaryResult):
    """The training points and the decision boundary for the smallest, the proper and the largest lambda."""
    from esc_course.viz import new_figure

    lams = list(dict.fromkeys([min(result.thetas), result.proper, max(result.thetas)]))
    fig, axes = new_figure(len(lams), size=(3.4, 3.4))
    grid = torch.linspace(-1, 1, 200, dtype=torch.float64)
    gx, gy = torch.meshgrid(grid, grid, indexing="xy")
    flat = torch.stack([gx.flatten(), gy.flatten()], 1)
    x, y = result.data["train"]
    for ax, lam in zip(axes, lams):
        z = (boundary_features(flat, result.degree) @ result.thetas[lam]).reshape(gx.shape)
        ax.contourf(gx, gy, z > 0, levels=[-0.5, 0.5, 1.5], colors=["#dde8f5", "#f8dcdc"])
        ax.contour(gx, gy, z, levels=[0], colors="k", linewidths=1)
        ax.scatter(x[y == 0, 0], x[y == 0, 1], s=12, c="tab:blue", label="class 0")
        ax.scatter(x[y == 1, 0], x[y == 1, 1], s=12, c="tab:red", marker="^", label="class 1")
        r = result.row(lam)
        ax.set(title=f"λ = {lam:g} ({r['role']}): train {r['train_accuracy']:.2f}, test {r['test_accuracy']:.2f}",
               xlabel="x1", ylabel="x2")
        ax.title.set_fontsize(8)
    axes[0].legend(fontsize=7, loc="lower left")
    return fig


# ---- the small digits training set --------------------------------------------------------------------------

@dataclass
class SmallDigits:
    """The digits splits the studies train on: ``train_size`` training images (stratified), plain and augmented
    (the same images), the whole training split for the more-data reference, and one validation and test split."""

    clean: DataSplits
    augmented: DataSplits
    full: DataSplits
    device: torch.device


def small_digits(*, train_size: int = Config.train_size, batch_size: int = Config.batch_size,
                 augment: str = Config.augment, seed: int = Config.seed, device="cpu") -> SmallDigits:
    """The small training set, its augmented twin and the full training split (validation 25 % of the training
    split, test digits' fixed 20 %), all living on ``device``."""
    device = torch.device(device)
    opts = dict(batch_size=batch_size, val_fraction=0.25, seed=seed, device=device)
    return SmallDigits(clean=loaders("digits", train_size=train_size, **opts),
                       augmented=loaders("digits", train_size=train_size, augment=augment, **opts),
                       full=loaders("digits", **opts), device=device)


def build_mlp(hidden: tuple[int, ...] = Config.hidden, dropout: float = 0.0) -> MLP:
    """The MLP, with torch's Dropout layers swapped for the from-scratch one (esc_course.scratch.dropout)."""
    model = MLP(64, hidden=hidden, out_features=10, activation="relu", dropout=dropout)
    for i, m in enumerate(model):
        if isinstance(m, nn.Dropout):
            model[i] = Dropout(m.p)
    return model


def reseed(train, seed: int) -> None:
    """Re-seed a training loader's shuffling (and augmentation) generators, so that a run's batches depend on its
    own seed only and not on how many runs came before it."""
    for part in (train, getattr(train, "loader", None), getattr(train, "augment", None)):
        generator = getattr(part, "generator", None)
        if generator is not None:
            generator.manual_seed(seed)


@dataclass
class SmallRun:
    """One training run on the small set: accuracies (fractions) and cross-entropy losses (nats) on the clean
    training split and the test split, both generalization gaps, epochs run, the share of near-zero weights."""

    train_accuracy: float
    test_accuracy: float
    train_loss: float
    test_loss: float
    gap_accuracy: float       # train accuracy - test accuracy
    gap_loss: float           # test loss - train loss
    epochs: int
    best_epoch: int           # early stopping's restored epoch (= epochs without early stopping)
    near_zero_weights: float  # share of weights with |w| < 1e-3
    history: dict = field(repr=False)
    model: nn.Module | None = field(default=None, repr=False, compare=False)  # the trained model itself

    def row(self) -> dict:
        """The run's numbers without its history and model, for a table."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("history", "model")}

    def last(self, key: str) -> float:
        """The last epoch's value of a history column."""
        return self.history[key][-1]


def run_name(seed: int, settings: dict) -> str:
    """A run's stable name from its settings, e.g. ``seed0-weight_decay0.01``: its checkpoint sub-folder."""
    return "-".join([f"seed{seed}", *(f"{k}{v:g}" if isinstance(v, float) else f"{k}{v}"
                                      for k, v in sorted(settings.items()))])


def train_small(data: SmallDigits, *, seed: int = Config.seed, hidden: tuple[int, ...] = Config.hidden,
                lr: float = Config.lr, epochs: int = Config.epochs, weight_decay: float = 0.0, dropout: float = 0.0,
                augment: bool = False, patience: int | None = None, penalty: str | None = None, lam: float = 0.0,
                schedule: str | None = None, split: str = "small",
                checkpoint_dir: Path | None = None) -> SmallRun:
    """One run of the MLP (SGD, momentum 0.9) on the small set (``split="small"``) or the whole training
    split (``"full"``, without augmentation); ``checkpoint_dir`` (this run's own folder) makes it resumable."""
    if split not in ("small", "full") or (split == "full" and augment):
        raise ValueError(f"split must be 'small' or 'full' (full without augment), got {split!r}, augment={augment}")
    schedules = {None: None,
                 "step": lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=max(epochs // 3, 1), gamma=0.1),
                 "exponential": lambda opt: torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.95)}
    if schedule not in schedules:
        raise ValueError(f"unknown schedule {schedule!r}; valid schedules: None, 'step', 'exponential'")
    seed_everything(seed)
    model = build_mlp(hidden, dropout).to(data.device)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=weight_decay)
    loss_fn = penalized(F.cross_entropy, decay_parameters(model), penalty, lam) if penalty else F.cross_entropy
    stopper = EarlyStopping(model, patience=patience) if patience else None
    scheduler = schedules[schedule](opt) if schedule else None
    splits = data.full if split == "full" else data.clean
    train = data.augmented.train if augment else splits.train
    reseed(train, seed)
    history = fit(model, train, splits.val, loss_fn=loss_fn, optimizer=opt, epochs=epochs, device=data.device,
                  progress=False, on_epoch=stopper, scheduler=scheduler, checkpoint_dir=checkpoint_dir,
                  resume=checkpoint_dir is not None)
    if stopper is not None:
        stopper.restore()
    tr = evaluate(model, splits.train, F.cross_entropy, data.device)  # the clean (unaugmented) training images
    te = evaluate(model, splits.test, F.cross_entropy, data.device)
    weights = torch.cat([p.detach().flatten() for p in decay_parameters(model)])
    return SmallRun(train_accuracy=tr["accuracy"], test_accuracy=te["accuracy"], train_loss=tr["loss"],
                    test_loss=te["loss"], gap_accuracy=tr["accuracy"] - te["accuracy"],
                    gap_loss=te["loss"] - tr["loss"], epochs=len(history),
                    best_epoch=stopper.best_epoch if stopper else len(history),
                    near_zero_weights=float((weights.abs() < 1e-3).float().mean()), history=history.to_dict(),
                    model=model)


class Runs:
    """``train_small`` once per (seed, settings): studies that need a run another study already made share it
    (``run`` passes one Runs to all its studies; a notebook cell may too). Settings at their defaults are dropped
    from the key; ``checkpoint_dir`` gives each distinct run its own sub-folder, named by ``run_name`` (the folder
    holds runs of one training setting: a run resumes from its sub-folder, so change ``epochs``, ``lr`` or
    ``hidden`` together with the folder)."""

    def __init__(self, data: SmallDigits, checkpoint_dir: Path | None = None, **training):
        self.data, self.checkpoint_dir, self.training, self.done = data, checkpoint_dir, training, {}

    def __call__(self, seed: int, **settings) -> SmallRun:
        settings = {k: v for k, v in settings.items() if v not in (None, 0, 0.0, False)}
        key = (seed, tuple(sorted(settings.items())))
        if key not in self.done:
            folder = None if self.checkpoint_dir is None else Path(self.checkpoint_dir) / run_name(seed, settings)
            self.done[key] = train_small(self.data, seed=seed, checkpoint_dir=folder, **self.training, **settings)
        return self.done[key]


def runs_for(data: SmallDigits, runs: Runs | None, checkpoint_dir: Path | None, **training) -> Runs:
    """The given Runs (its training settings must match), or a new one."""
    if runs is None:
        return Runs(data, checkpoint_dir, **training)
    if runs.training != training or runs.data is not data:
        raise ValueError(f"runs was made with other data or training settings ({runs.training}); got {training}")
    return runs


@dataclass
class WeightDecayResult:
    rows: list[dict]          # per weight decay: last-epoch validation loss/accuracy, the run's numbers, role
    proper: float             # the weight decay with the lowest validation loss
    histories: dict[str, dict]  # "wd_<value>" -> History.to_dict()


def weight_decay_study(data: SmallDigits, *, weight_decays: tuple[float, ...] = Config.weight_decays,
                       seed: int = Config.seed, epochs: int = Config.epochs, lr: float = Config.lr,
                       hidden: tuple[int, ...] = Config.hidden, checkpoint_dir: Path | None = None,
                       runs: Runs | None = None) -> WeightDecayResult:
    """L2 strength (SGD's weight_decay) chosen by the last epoch's validation loss (nats; the test split is not
    looked at to choose); rows say small / proper / large and carry accuracies (fractions) and losses."""
    runs = runs_for(data, runs, checkpoint_dir, epochs=epochs, lr=lr, hidden=hidden)
    rows, histories = [], {}
    for wd in weight_decays:
        r = runs(seed, weight_decay=wd)
        histories[f"wd_{wd:g}"] = r.history
        rows.append({"weight_decay": wd, "val_loss": r.last("val_loss"), "val_accuracy": r.last("val_accuracy"),
                     **r.row()})
    proper = label_roles(rows, "weight_decay", "val_loss")
    return WeightDecayResult(rows, proper, histories)


@dataclass
class ComparisonResult:
    runs: list[dict]          # one row per (method, seed)
    summary: list[dict]       # per method: mean and standard deviation over seeds
    histories: dict[str, dict]  # method -> the first seed's History.to_dict()

    def method(self, name: str) -> dict:
        """The summary row of one method."""
        return next(r for r in self.summary if r["method"] == name)

    @property
    def best(self) -> dict:
        """The summary row with the highest mean test accuracy."""
        return max(self.summary, key=lambda r: r["test_accuracy_mean"])


def comparison_study(data: SmallDigits, *, weight_decay: float, dropout: float = Config.dropout,
                     patience: int = Config.patience, seeds: int = Config.seeds, seed: int = Config.seed,
                     epochs: int = Config.epochs, lr: float = Config.lr, hidden: tuple[int, ...] = Config.hidden,
                     checkpoint_dir: Path | None = None, runs: Runs | None = None) -> ComparisonResult:
    """none / L2 / dropout / augmentation / early stopping / all, ``seeds`` runs each (seeds ``seed`` ..
    ``seed + seeds - 1``): per-run rows, a summary of test accuracy (fraction), the accuracy gap (train - test)
    and the loss gap (test - train, nats) as mean and standard deviation over seeds, and the first seed's
    histories."""
    runs = runs_for(data, runs, checkpoint_dir, epochs=epochs, lr=lr, hidden=hidden)
    settings = {"none": {}, "l2": {"weight_decay": weight_decay}, "dropout": {"dropout": dropout},
                "augmentation": {"augment": True}, "early_stopping": {"patience": patience},
                "all": {"weight_decay": weight_decay, "dropout": dropout, "augment": True, "patience": patience}}
    rows, histories = [], {}
    for method in METHODS:
        for s in range(seeds):
            r = runs(seed + s, **settings[method])
            if s == 0:
                histories[method] = r.history
            rows.append({"method": method, "seed": seed + s, **r.row()})
    summary = []
    for method in METHODS:
        rs = [r for r in rows if r["method"] == method]
        row = {"method": method, "runs": len(rs)}
        for key in ("test_accuracy", "train_accuracy", "gap_accuracy", "gap_loss", "test_loss"):
            values = [r[key] for r in rs]
            row[f"{key}_mean"] = statistics.fmean(values)
            row[f"{key}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
        summary.append(row)
    return ComparisonResult(rows, summary, histories)


@dataclass
class MoreDataResult:
    row: dict                 # the unregularized MLP trained on the whole training split: its SmallRun numbers
    train_images: int


def more_data_study(data: SmallDigits, *, seed: int = Config.seed, epochs: int = Config.epochs,
                    lr: float = Config.lr, hidden: tuple[int, ...] = Config.hidden,
                    checkpoint_dir: Path | None = None) -> MoreDataResult:
    """The reference no regularizer on the small set can reach: the same MLP without regularization trained on
    every training image (accuracy as a fraction, losses in nats, same validation and test split)."""
    folder = None if checkpoint_dir is None else Path(checkpoint_dir) / f"seed{seed}-full"
    r = train_small(data, seed=seed, epochs=epochs, lr=lr, hidden=hidden, split="full", checkpoint_dir=folder)
    return MoreDataResult(r.row(), len(data.full.train.x))


@dataclass
class PenaltyResult:
    rows: list[dict]          # per penalty: lambda, accuracies, loss gap, share of near-zero weights

    def penalty(self, name: str) -> dict:
        return next(r for r in self.rows if r["penalty"] == name)


def penalty_study(data: SmallDigits, *, weight_decay: float, l1: float = Config.l1, seed: int = Config.seed,
                  epochs: int = Config.epochs, lr: float = Config.lr, hidden: tuple[int, ...] = Config.hidden,
                  checkpoint_dir: Path | None = None, runs: Runs | None = None) -> PenaltyResult:
    """L2 as a loss penalty (lambda = wd / 2, the same steps as weight_decay=wd), L1 and elastic net:
    accuracy (fraction), the loss gap (nats) and the share of weights that end up near zero (L1's sparsity)."""
    runs = runs_for(data, runs, checkpoint_dir, epochs=epochs, lr=lr, hidden=hidden)
    rows = []
    for name, lam in (("none", 0.0), ("l2", weight_decay / 2), ("l1", l1), ("elastic_net", l1)):
        r = runs(seed, penalty=None if name == "none" else name, lam=lam)
        rows.append({"penalty": name, "lambda": lam, "train_accuracy": r.train_accuracy,
                     "test_accuracy": r.test_accuracy, "gap_loss": r.gap_loss,
                     "near_zero_weights": r.near_zero_weights})
    return PenaltyResult(rows)


@dataclass
class DecayResult:
    rows: list[dict]          # per schedule: the last learning rate, train/test loss, test accuracy
    histories: dict[str, dict]  # schedule name -> History.to_dict() (with its "lr" column)

    def schedule(self, name: str) -> dict:
        return next(r for r in self.rows if r["schedule"] == name)


def decay_study(data: SmallDigits, *, seed: int = Config.seed, epochs: int = Config.epochs, lr: float = Config.lr,
                hidden: tuple[int, ...] = Config.hidden, checkpoint_dir: Path | None = None,
                runs: Runs | None = None) -> DecayResult:
    """Constant learning rate vs StepLR (x0.1 every third of training) vs ExponentialLR (x0.95 per epoch):
    the final learning rate, train and test loss (nats) and test accuracy (fraction)."""
    runs = runs_for(data, runs, checkpoint_dir, epochs=epochs, lr=lr, hidden=hidden)
    rows, histories = [], {}
    for schedule in (None, "step", "exponential"):
        r = runs(seed, schedule=schedule)
        name = schedule or "constant"
        histories[name] = r.history
        rows.append({"schedule": name, "final_lr": r.last("lr"), "train_loss": r.train_loss,
                     "test_loss": r.test_loss, "test_accuracy": r.test_accuracy})
    return DecayResult(rows, histories)


@dataclass
class EquivalenceResult:
    rows: list[dict]          # per optimizer: the largest parameter difference and the weight norms

    def optimizer(self, name: str) -> dict:
        return next(r for r in self.rows if r["optimizer"] == name)


def equivalence_study(data: SmallDigits, *, weight_decay: float, epochs: int = 3, lr: float = Config.lr,
                      hidden: tuple[int, ...] = Config.hidden, seed: int = Config.seed) -> EquivalenceResult:
    """The same model and batches (``epochs`` passes over the small set) trained with (wd/2) sum W^2 in the loss
    and with the optimizer's weight_decay=wd: the largest absolute parameter difference is ~0 for SGD (and Adam's
    coupled weight_decay) and not for AdamW's decoupled decay. Adam and AdamW use lr 1e-3."""
    batches = [(x.to(data.device), y.to(data.device)) for x, y in data.clean.train] * epochs
    rows = []
    for optimizer, step in (("sgd", lr), ("adam", 1e-3), ("adamw", 1e-3)):
        torch.manual_seed(seed)
        out = weight_decay_paths(lambda: build_mlp(hidden).to(data.device), batches, loss_fn=F.cross_entropy,
                                 weight_decay=weight_decay, lr=step, optimizer=optimizer,
                                 momentum=0.9 if optimizer == "sgd" else 0.0)
        rows.append({"optimizer": optimizer, "weight_decay": weight_decay, "steps": len(batches), **out})
    return EquivalenceResult(rows)


# ---- noise in training, averaging at test -------------------------------------------------------------------

@dataclass
class TestTimeResult:
    rows: list[dict]          # per seed: accuracies (fractions) of each way of predicting the test split
    summary: dict[str, float]  # mean over seeds of each accuracy column
    passes: int


def test_time_study(data: SmallDigits, *, dropout: float = Config.dropout, passes: int = Config.test_passes,
                    augment: str = Config.augment, seeds: int = Config.seeds, seed: int = Config.seed,
                    epochs: int = Config.epochs, lr: float = Config.lr, hidden: tuple[int, ...] = Config.hidden,
                    checkpoint_dir: Path | None = None, runs: Runs | None = None) -> TestTimeResult:
    """The MLP trained with dropout and augmentation, predicting the test split (accuracy as a fraction) by:
    one deterministic pass (eval mode), test-time augmentation (the mean softmax over the clean image and
    ``passes - 1`` augmented copies), Monte-Carlo dropout (the mean softmax over ``passes`` passes with dropout on),
    and, for reference, one augmented pass and one pass with dropout on; ``seeds`` seeds."""
    if passes < 2:
        raise ValueError(f"passes must be >= 2 (an average needs two predictions), got {passes!r}")
    runs = runs_for(data, runs, checkpoint_dir, epochs=epochs, lr=lr, hidden=hidden)
    test, mean, std = data.clean.test, data.clean.mean, data.clean.std
    xs, ys = zip(*[(x.to(data.device), y.to(data.device)) for x, y in test])
    x, y = torch.cat(xs), torch.cat(ys)
    m, sd = (t.to(data.device) for t in (mean, std))
    raw = x * sd + m  # augment the images, not their standardised values
    rows = []
    for s in range(seed, seed + seeds):
        model = runs(s, dropout=dropout, augment=True).model
        aug = preset(augment, seed=s)
        with torch.no_grad():
            model.eval()
            single = F.softmax(model(x), dim=1)
            tta = [single] + [F.softmax(model((aug(raw) - m) / sd), dim=1) for _ in range(passes - 1)]
            model.train()  # dropout on: each pass samples a new mask
            torch.manual_seed(s)
            mc = [F.softmax(model(x), dim=1) for _ in range(passes)]
            model.eval()

        def acc(p):
            return float((p.argmax(1) == y).float().mean())
        rows.append({"seed": s, "single_pass_accuracy": acc(single), "tta_accuracy": acc(torch.stack(tta).mean(0)),
                     "mc_dropout_accuracy": acc(torch.stack(mc).mean(0)), "one_augmented_pass_accuracy": acc(tta[1]),
                     "one_dropout_pass_accuracy": acc(mc[0]),
                     "mc_agrees_with_single": float((torch.stack(mc).mean(0).argmax(1) == single.argmax(1))
                                                    .float().mean())})
    summary = {k: statistics.fmean(r[k] for r in rows) for k in rows[0] if k != "seed"}
    return TestTimeResult(rows, summary, passes)


def test_time_figure(result: TestTimeResult):
    """Mean test accuracy (over seeds) of each way of predicting, with each seed as a dot."""
    from esc_course.viz import new_figure

    keys = ["single_pass_accuracy", "one_augmented_pass_accuracy", "tta_accuracy", "one_dropout_pass_accuracy",
            "mc_dropout_accuracy"]
    labels = ["single\n(eval)", "1 augmented", f"TTA\n({result.passes})", "1 dropout", f"MC dropout\n({result.passes})"]
    fig, (ax,) = new_figure(size=(6.4, 3.6))
    ax.bar(range(len(keys)), [result.summary[k] for k in keys], color=["gray", "tab:orange", "tab:orange",
                                                                        "tab:blue", "tab:blue"], alpha=0.7)
    for i, k in enumerate(keys):
        ax.plot([i] * len(result.rows), [r[k] for r in result.rows], "k.", markersize=6)
    lo = min(r[k] for r in result.rows for k in keys)
    ax.set_xticks(range(len(keys)), labels, fontsize=8)
    ax.set(ylabel="test accuracy", ylim=(max(0.0, lo - 0.05), 1.0), title="averaging predictions at test time")
    ax.grid(alpha=0.3, axis="y")
    return fig


# ---- the lab ------------------------------------------------------------------------------------------------

def run(cfg: Config, out: Path | None = None) -> LabResult:
    cfg = quick_variant(cfg, QUICK)
    seed_everything(cfg.seed)
    device = get_device(cfg.device)
    started = time.perf_counter()
    ckpt = Path(out) / "checkpoints" if out is not None else None
    poly = dict(degrees=cfg.poly_degrees, noise=cfg.poly_noise, seed=cfg.seed)
    capacity = capacity_study(train_points=cfg.poly_train, repeats=cfg.poly_repeats, **poly)
    chosen = split_study(size=cfg.poly_split_size, **poly)
    lambdas = lambda_study(lambdas=cfg.poly_lambdas, train_points=cfg.poly_train, **poly)
    boundary = boundary_study(lambdas=cfg.boundary_lambdas, degree=cfg.boundary_degree,
                              train_points=cfg.boundary_train, flip=cfg.boundary_flip, seed=cfg.seed)

    data = small_digits(train_size=cfg.train_size, batch_size=cfg.batch_size, augment=cfg.augment, seed=cfg.seed,
                        device=device)
    training = dict(epochs=cfg.epochs, lr=cfg.lr, hidden=cfg.hidden)
    runs = Runs(data, ckpt, **training)  # one run per distinct setting, shared by the studies below
    sweep = weight_decay_study(data, weight_decays=cfg.weight_decays, seed=cfg.seed, runs=runs, **training)
    comp = comparison_study(data, weight_decay=sweep.proper, dropout=cfg.dropout, patience=cfg.patience,
                            seeds=cfg.seeds, seed=cfg.seed, runs=runs, **training)
    more = more_data_study(data, seed=cfg.seed, checkpoint_dir=ckpt, **training)
    penalties = penalty_study(data, weight_decay=sweep.proper, l1=cfg.l1, seed=cfg.seed, runs=runs, **training)
    decay = decay_study(data, seed=cfg.seed, runs=runs, **training)
    equivalence = equivalence_study(data, weight_decay=sweep.proper, lr=cfg.lr, hidden=cfg.hidden, seed=cfg.seed)
    test_time = test_time_study(data, dropout=cfg.dropout, passes=cfg.test_passes, augment=cfg.augment,
                                seeds=cfg.seeds, seed=cfg.seed, runs=runs, **training)

    best, none = comp.best, comp.method("none")
    metrics = {
        "best_test_accuracy": best["test_accuracy_mean"], "best_method": best["method"],
        "none_test_accuracy": none["test_accuracy_mean"], "none_gap_accuracy": none["gap_accuracy_mean"],
        "none_gap_loss": none["gap_loss_mean"], "chosen_weight_decay": sweep.proper,
        **{f"{r['method']}_gap_loss": r["gap_loss_mean"] for r in comp.summary if r["method"] != "none"},
        "full_data_test_accuracy": more.row["test_accuracy"],
        "sgd_penalty_vs_weight_decay_max_diff": equivalence.optimizer("sgd")["max_abs_diff"],
        "adamw_penalty_vs_weight_decay_max_diff": equivalence.optimizer("adamw")["max_abs_diff"],
        "poly_best_test_degree": capacity.best_degree,
        "poly_chosen_degree_622": chosen.rows[0]["chosen_degree"],
        "poly_proper_lambda": lambdas.proper,
        "boundary_proper_lambda": boundary.proper,
        **{f"boundary_{role}_lambda_{part}_accuracy": boundary.row(lam)[f"{part}_accuracy"]
           for role, lam in (("smallest", min(cfg.boundary_lambdas)), ("proper", boundary.proper),
                             ("largest", max(cfg.boundary_lambdas))) for part in ("train", "test")},
        **{k: test_time.summary[k] for k in ("tta_accuracy", "mc_dropout_accuracy", "single_pass_accuracy",
                                             "one_augmented_pass_accuracy", "one_dropout_pass_accuracy")},
    }
    result = LabResult(
        lab="regularization", config=asdict(cfg), metrics=metrics,
        history={**{f"compare_{k}": v for k, v in comp.histories.items()}, **sweep.histories,
                 **{f"lr_{k}": v for k, v in decay.histories.items()}},
        tables={"comparison": comp.summary, "comparison_runs": comp.runs, "more_data": [more.row],
                "weight_decay": sweep.rows, "penalties": penalties.rows, "lr_decay": decay.rows,
                "l2_equivalence": equivalence.rows, "poly_capacity": capacity.rows, "poly_split_choice": chosen.rows,
                "poly_lambda": lambdas.rows, "test_time": test_time.rows,
                "boundary_lambda": boundary.rows},
        figures={"poly_capacity": capacity_figure(capacity), "poly_fits": poly_fits_figure(capacity, lambdas),
                 "comparison": comparison_figure(comp), "comparison_curves": comparison_curves_figure(comp),
                 "weight_decay": weight_decay_figure(sweep), "lr_decay": decay_figure(decay),
                 "test_time": test_time_figure(test_time), "boundary": boundary_figure(boundary)},
        captions={**captions(cfg, capacity, lambdas, sweep, comp, more),
                  "boundary": f"Logistic regression on degree-{boundary.degree} features: λ = "
                              f"{min(cfg.boundary_lambdas):g} fits the noisy training points (overfits), λ = "
                              f"{max(cfg.boundary_lambdas):g} underfits, validation picks λ = {boundary.proper:g}.",
                  "test_time": f"Mean over {cfg.seeds} seeds: one deterministic pass "
                               f"{test_time.summary['single_pass_accuracy']:.3f}, TTA "
                               f"{test_time.summary['tta_accuracy']:.3f}, MC dropout "
                               f"{test_time.summary['mc_dropout_accuracy']:.3f} ({cfg.test_passes} passes each)."},
        device=str(device),
    )
    return finish(result, out, started)


def captions(cfg: Config, capacity: CapacityResult, lambdas: LambdaResult, sweep: WeightDecayResult,
             comp: ComparisonResult, more: MoreDataResult) -> dict[str, str]:
    """One sentence per figure and main table, from the numbers of this run."""
    best, none = comp.best, comp.method("none")
    return {
        "poly_capacity": f"Train error falls with the polynomial degree while test error is lowest at degree "
                         f"{capacity.best_degree}; bias² falls and variance grows with capacity.",
        "poly_fits": f"Degree 1 underfits, degree {lambdas.degree} interpolates the noise; ridge with the "
                     f"validation's lambda = {lambdas.proper:g} smooths it.",
        "comparison": f"Mean ± std over {cfg.seeds} seeds on {cfg.train_size} training digits: best "
                      f"{best['method']} ({best['test_accuracy_mean']:.3f}) vs none ({none['test_accuracy_mean']:.3f}).",
        "comparison_curves": "Training and validation loss per epoch of each method (first seed).",
        "weight_decay": f"The L2 grid on validation loss: {sweep.proper:g} is proper.",
        "lr_decay": "Learning rate and validation loss per epoch: constant, StepLR and ExponentialLR.",
        "more_data": f"The unregularized MLP on all training images reaches test accuracy "
                     f"{more.row['test_accuracy']:.3f}.",
        "poly_lambda": "Ridge on the top degree: small / proper / large lambda by validation MSE.",
    }


# ---- figures ------------------------------------------------------------------------------------------------

def capacity_figure(result: CapacityResult):
    """Train and test MSE against degree (the gap shaded), and bias² / variance / their sum with the noise."""
    from esc_course.viz import new_figure

    rows = result.rows
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
        ax.legend(fontsize=8, loc="upper center")
    return fig


def poly_fits_figure(capacity: CapacityResult, lambdas: LambdaResult):
    """The slides' pictures: underfit / just right / overfit, and small / proper / large lambda."""
    from esc_course.viz import new_figure

    fig, axes = new_figure(2, size=(4.6, 3.6))
    grid = torch.linspace(0, 1, 300, dtype=torch.float64)
    for d, label in ((1, "high bias (underfit)"), (4, "just right"), (lambdas.degree, "high variance (overfit)")):
        axes[0].plot(grid, poly_predict(fit_poly(capacity.x, capacity.y, d), grid), label=f"degree {d}: {label}")
    for role in ("small", "proper", "large"):
        r = next((r for r in lambdas.rows if r["role"] == role), None)
        if r is not None:
            axes[1].plot(grid, poly_predict(fit_poly(lambdas.x, lambdas.y, r["degree"], r["lambda"]), grid),
                         label=f"{role} $\\lambda$ = {r['lambda']:g}")
    for ax, (xs, ys), title in ((axes[0], (capacity.x, capacity.y), "capacity"),
                                (axes[1], (lambdas.x, lambdas.y), f"degree {lambdas.degree} + L2")):
        ax.plot(grid, target(grid), "k:", label="sin(2$\\pi$x)")
        ax.scatter(xs, ys, c="k", s=14, zorder=3)
        ax.set(ylim=(-1.8, 1.8), xlabel="x", ylabel="y", title=title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncols=2)  # below: off the data
    return fig


def comparison_figure(result: ComparisonResult):
    """Test accuracy and the accuracy gap per method, mean with a ±1 std error bar over seeds."""
    from esc_course.viz import new_figure

    summary = result.summary
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


def comparison_curves_figure(result: ComparisonResult):
    """Training loss and validation loss per epoch, one line per method (the first seed), log scale."""
    from esc_course.viz import new_figure

    fig, axes = new_figure(2, size=(4.6, 3.6))
    for ax, key, title in ((axes[0], "train_loss", "training loss (small set)"),
                           (axes[1], "val_loss", "validation loss")):
        for name, h in result.histories.items():
            ax.plot(range(1, len(h[key]) + 1), h[key], label=name)
        ax.set(xlabel="epoch", ylabel=f"{key.replace('_', ' ')} (nats)", yscale="log", title=title)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7, loc="lower left")
    return fig


def decay_figure(result: DecayResult):
    """The learning rate per epoch of each schedule, and its validation loss."""
    from esc_course.viz import new_figure

    fig, axes = new_figure(2, size=(4.6, 3.6))
    for ax, key, title in ((axes[0], "lr", "learning rate per epoch"), (axes[1], "val_loss", "validation loss")):
        for name, h in result.histories.items():
            ax.plot(range(1, len(h[key]) + 1), h[key], label=name)
        ax.set(xlabel="epoch", ylabel="learning rate" if key == "lr" else "validation loss (nats)", title=title,
               yscale="log")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8, loc="lower left")
    return fig


def weight_decay_figure(result: WeightDecayResult):
    """Train and validation accuracy and loss against the weight decay (log scale)."""
    from esc_course.viz import new_figure

    rows = result.rows
    fig, axes = new_figure(2, size=(4.4, 3.4))
    wd = [r["weight_decay"] for r in rows]
    axes[0].plot(wd, [r["train_accuracy"] for r in rows], marker="o", label="train")
    axes[0].plot(wd, [r["val_accuracy"] for r in rows], marker="o", label="validation")
    axes[0].set(ylabel="accuracy", title="accuracy against lambda")
    axes[1].plot(wd, [r["train_loss"] for r in rows], marker="o", label="train")
    axes[1].plot(wd, [r["val_loss"] for r in rows], marker="o", label="validation")
    axes[1].set(ylabel="loss (nats)", yscale="log", title="loss against lambda")
    for ax in axes:
        ax.axvline(result.proper, color="gray", linestyle=":", label=f"proper {result.proper:g}")
        ax.set(xscale="log", xlabel="weight decay (L2 lambda)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="best")
    return fig


if __name__ == "__main__":
    from esc_course.lab import main

    raise SystemExit(main("regularization"))
