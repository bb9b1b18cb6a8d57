"""Week 6: comparing optimizers (SGD, Momentum, Nesterov, AdaGrad, AdaDelta, RMSProp, Adam).

All seven of the slides' optimizers, from scratch (esc_course.optim), on 2-D test functions (paths on contours) and
on an MLP for the embedded UCI digits: a learning-rate sweep per optimizer (final loss against learning rate), then
each at its best learning rate over several seeds, every optimizer starting from the same initialisation (loss and
accuracy curves, mean and spread). Adam's bias correction is switched off once to show its early steps grow up to
6.5x too long. Last, the construction of Wilson et al. 2017 (The Marginal Value of Adaptive Gradient Methods in
Machine Learning, section 3.3): a linearly separable least-squares problem where every adaptive method fits the
training set and then labels every new point with the majority class, while gradient descent generalises perfectly.

Each experiment is a study function (``landscape_study``, ``lr_sweep``, ``comparison_study``,
``bias_correction_study``, ``wilson_study``) that a notebook cell calls with its settings as keyword arguments;
``run`` calls them all with a Config's values.
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from esc_course.config import quick_variant
from esc_course.data import TensorLoader
from esc_course.data.embedded import digits
from esc_course.data.split import channel_stats, normalize, split
from esc_course.device import get_device
from esc_course.losses import cross_entropy
from esc_course.models import MLP
from esc_course.optim import OPTIMIZERS, SLIDES, Adam, get_optimizer
from esc_course.optim.landscapes import LANDSCAPES, trajectories, values
from esc_course.runs import LabResult, finish
from esc_course.seed import seed_everything
from esc_course.train import NonFiniteLossError, evaluate, fit

HEADLINE = "best_test_accuracy"

# The loss is week 2's written-out cross_entropy: equal to torch's, and it runs on the calling thread, where
# torch's log_softmax starts its thread pool even for a 64 x 10 batch (costly on a busy shared CPU).

# Learning rate per landscape and optimizer, picked from a sweep over 1e-3 .. 1 at 200 steps (the notebook's
# exercise repeats it). On the saddle all but AdaDelta share lr = 0.01 (AdaDelta's lr is a multiplier on its own
# step size and stays 1.0), so what differs is mostly how each uses the gradient.
LANDSCAPE_LR = {
    "bowl": dict(sgd=0.1, momentum=0.03, nesterov=0.03, adagrad=0.3, adadelta=1.0, rmsprop=0.03, adam=0.1),
    "rosenbrock": dict(sgd=1e-3, momentum=1e-3, nesterov=1e-3, adagrad=1.0, adadelta=1.0, rmsprop=0.1, adam=0.3),
    "beale": dict(sgd=0.03, momentum=3e-3, nesterov=3e-3, adagrad=1.0, adadelta=1.0, rmsprop=0.1, adam=0.3),
    "saddle": dict(sgd=0.01, momentum=0.01, nesterov=0.01, adagrad=0.01, adadelta=1.0, rmsprop=0.01, adam=0.01),
    "ill_conditioned": dict(sgd=0.09, momentum=0.03, nesterov=0.03, adagrad=1.0, adadelta=1.0, rmsprop=0.1,
                            adam=0.1),
}
# Learning rates for the Wilson construction (full-batch least squares; each converges within a few hundred steps).
WILSON_LR = dict(sgd=0.1, momentum=0.1, nesterov=0.1, adagrad=0.1, adadelta=1.0, rmsprop=0.01, adam=0.01, adamw=0.01)
ADAPTIVE = ("adagrad", "adadelta", "rmsprop", "adam", "adamw")


@dataclass
class Config:
    optimizers: tuple[str, ...] = SLIDES      # names in esc_course.optim.OPTIMIZERS
    hidden: int = 32                          # hidden units of the MLP on the 8x8 digits (see below)
    batch_size: int = 64                      # samples per mini-batch
    epochs: int = 30                          # epochs of each comparison run (at the optimizer's best lr)
    seeds: int = 5                            # initialisations per optimizer; each is shared by all optimizers
    sweep_lrs: tuple[float, ...] = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 3.0)  # learning rates
    sweep_epochs: int = 10                    # epochs per learning rate in the sweep
    landscape_steps: int = 300                # optimizer steps on each 2-D function
    bias_steps: int = 30                      # Adam steps with and without bias correction
    wilson_train: int = 60                    # training points of the Wilson et al. construction
    wilson_test: int = 1000                   # new points to classify
    wilson_majority: float = 0.7              # probability of the majority class +1
    wilson_steps: int = 5000                  # full-batch steps at most (stops once the training loss < 1e-12)
    snapshot_cycles: int = 5                  # cosine cycles = snapshots in the ensemble = independent models
    snapshot_cycle_epochs: int = 6            # epochs per cycle (every way trains cycles * this many epochs)
    snapshot_lr: float = 0.1                  # peak learning rate of each cosine cycle (SGD, momentum 0.9)
    unroll_steps: int = 30                    # random gradients fed to each optimizer to unroll its state
    newton_max_steps: int = 500               # steps at most on the ill-conditioned quadratic
    seed: int = 0
    device: str = "auto"
    quick: bool = False                       # small, fast variant for CPU CI and weak laptops


# hidden = 32 keeps every weight at <= 2048 numbers: above that, torch's CPU sqrt (in every adaptive optimizer's
# step) starts a thread pool, which costs microseconds on an idle machine but tens of ms on an oversubscribed one.
QUICK = dict(epochs=6, seeds=3, sweep_lrs=(1e-3, 1e-2, 0.1, 1.0), sweep_epochs=3, landscape_steps=100,
             wilson_train=30, wilson_test=300, snapshot_cycles=3, snapshot_cycle_epochs=2)


# ---------------------------------------------------------------------------------------- 2-D functions
def check_optimizers(names) -> None:
    """Fail before any work on a name that is not in esc_course.optim.OPTIMIZERS, listing the valid ones."""
    unknown = [n for n in names if n not in OPTIMIZERS]
    if unknown:
        raise ValueError(f"unknown optimizer {unknown[0]!r} in optimizers; valid optimizers: {', '.join(OPTIMIZERS)}")


@dataclass
class LandscapeResult:
    paths: dict[str, dict[str, torch.Tensor]]  # landscape -> optimizer -> (steps + 1, 2) path
    rows: list[dict]          # per (landscape, optimizer): lr, final value, distance to the minimum, end point

    def row(self, landscape: str, optimizer: str) -> dict:
        return next(r for r in self.rows if r["landscape"] == landscape and r["optimizer"] == optimizer)

    def escape_ranking(self) -> list[tuple[str, float]]:
        """The optimizers by how far they left the saddle along y (|final y|), furthest first."""
        rows = [r for r in self.rows if r["landscape"] == "saddle"]
        return sorted(((r["optimizer"], abs(r["final_y"])) for r in rows), key=lambda t: -t[1])


def landscape_study(*, optimizers: tuple[str, ...] = Config.optimizers, steps: int = Config.landscape_steps,
                    lrs: dict[str, dict[str, float]] | None = None) -> LandscapeResult:
    """Every optimizer on every 2-D landscape from the landscape's start, ``steps`` steps at the learning rate
    ``lrs[landscape][optimizer]`` (default LANDSCAPE_LR; 0.01 for an optimizer not listed): the paths, and where
    they ended (function value, Euclidean distance to the minimum, end point)."""
    check_optimizers(optimizers)
    lrs = LANDSCAPE_LR if lrs is None else lrs
    paths, rows = {}, []
    for land_name, land in LANDSCAPES.items():
        chosen = {name: lrs.get(land_name, {}).get(name, 0.01) for name in optimizers}
        paths[land_name] = trajectories(land_name, {name: (name, {"lr": lr}) for name, lr in chosen.items()},
                                        steps=steps)
        for name, path in paths[land_name].items():
            end = path[-1]
            rows.append({"landscape": land_name, "optimizer": name, "lr": chosen[name], "steps": len(path) - 1,
                         "final_value": float(values(land_name, path)[-1]),
                         "distance_to_min": None if land.minimum is None else
                         float(torch.linalg.vector_norm(end - torch.tensor(land.minimum, dtype=end.dtype))),
                         "final_x": float(end[0]), "final_y": float(end[1])})
    return LandscapeResult(paths, rows)


# ------------------------------------------------------------------------------------------- the digits
@dataclass
class DigitsData:
    """Train/val/test (6:2:2, stratified) of the UCI digits, standardised with the training split's statistics;
    the training split stays as tensors so that each run shuffles it with its own seed (``train_loader``)."""

    x: torch.Tensor
    y: torch.Tensor
    train_eval: TensorLoader
    val: TensorLoader
    test: TensorLoader
    batch_size: int
    device: torch.device

    def train_loader(self, seed: int) -> TensorLoader:
        """Shuffled mini-batches of the training split, in an order fixed by ``seed``."""
        return TensorLoader(self.x, self.y, batch_size=self.batch_size, shuffle=True, device=self.device,
                            generator=torch.Generator().manual_seed(seed))


def digits_data(*, batch_size: int = Config.batch_size, seed: int = Config.seed, device="cpu") -> DigitsData:
    """The digits split 6:2:2 with ``seed``, standardised, living on ``device``."""
    device = torch.device(device)
    x, y = digits()
    (xtr, ytr), (xva, yva), (xte, yte) = split(x, y, (0.6, 0.2, 0.2), seed=seed)
    mean, std = channel_stats(xtr)
    xtr, xva, xte = (normalize(t, mean, std) for t in (xtr, xva, xte))

    def fixed(x, y):
        return TensorLoader(x, y, batch_size=512, shuffle=False, device=device)

    return DigitsData(xtr, ytr, fixed(xtr, ytr), fixed(xva, yva), fixed(xte, yte), batch_size, device)


def build_mlp(hidden: int = Config.hidden) -> MLP:
    return MLP(64, hidden=(hidden,), out_features=10, activation="relu")


def initial_state(seed: int, hidden: int = Config.hidden) -> dict:
    """The MLP's initial weights for one seed: every optimizer starts from this same state."""
    torch.manual_seed(seed)
    return build_mlp(hidden).state_dict()


@dataclass
class DigitsRun:
    """One run's numbers: losses in nats (cross-entropy), accuracy as a fraction; inf / nan when it diverged."""

    diverged: bool
    initial_loss: float
    train_loss: float
    val_loss: float
    test_accuracy: float
    history: dict | None = field(default=None, repr=False)  # History.to_dict(); None when diverged


def train_digits(data: DigitsData, name: str, lr: float, init: dict, *, seed: int, epochs: int,
                 checkpoint_dir: Path | None = None) -> DigitsRun:
    """One run of optimizer ``name`` from the weights ``init``, batches shuffled by ``seed`` (the same order for
    every optimizer); a run whose loss stops being finite is returned with diverged=True."""
    model = build_mlp(hidden=init["0.weight"].shape[0])  # the hidden width the initial weights have
    model.load_state_dict(init)
    model.to(data.device)
    start = evaluate(model, data.train_eval, cross_entropy, data.device)["loss"]
    opt = get_optimizer(name, model.parameters(), lr=lr)
    try:
        history = fit(model, data.train_loader(seed), data.val, loss_fn=cross_entropy, optimizer=opt, epochs=epochs,
                      device=data.device, progress=False, desc=name, checkpoint_dir=checkpoint_dir,
                      resume=checkpoint_dir is not None)
    except NonFiniteLossError:
        return DigitsRun(True, start, math.inf, math.inf, math.nan)
    final = evaluate(model, data.train_eval, cross_entropy, data.device)
    test = evaluate(model, data.test, cross_entropy, data.device)
    return DigitsRun(False, start, final["loss"], history["val_loss"][-1], test["accuracy"], history.to_dict())


def subfolder(checkpoint_dir: Path | None, name: str) -> Path | None:
    return None if checkpoint_dir is None else Path(checkpoint_dir) / name


@dataclass
class SweepResult:
    rows: list[dict]          # per (optimizer, lr): final train and validation loss (nats), diverged
    best_lrs: dict[str, float]  # per optimizer: the lr with the lowest validation loss
    sensitivity: dict[str, float]  # see lr_sensitivity


def lr_sweep(data: DigitsData, *, optimizers: tuple[str, ...] = Config.optimizers,
             lrs: tuple[float, ...] = Config.sweep_lrs, epochs: int = Config.sweep_epochs,
             hidden: int = Config.hidden, seed: int = Config.seed,
             checkpoint_dir: Path | None = None) -> SweepResult:
    """Final training and validation loss (nats) against learning rate, per optimizer, ``epochs`` epochs each
    from one shared initialisation; each optimizer's best lr (by validation loss) and how much the lr matters."""
    check_optimizers(optimizers)
    init = initial_state(seed, hidden)
    rows = []
    for name in optimizers:
        for lr in lrs:
            r = train_digits(data, name, lr, init, seed=seed, epochs=epochs,
                             checkpoint_dir=subfolder(checkpoint_dir, f"sweep-{name}-lr{lr:g}"))
            rows.append({"optimizer": name, "lr": lr, "train_loss": r.train_loss, "val_loss": r.val_loss,
                         "diverged": r.diverged})
    return SweepResult(rows, best_lrs(rows), lr_sensitivity(rows))


def best_lrs(sweep: list[dict]) -> dict[str, float]:
    """Each optimizer's learning rate with the lowest validation loss (test data plays no part in choosing)."""
    best: dict[str, dict] = {}
    for r in sweep:
        if not r["diverged"] and math.isfinite(r["val_loss"]) and \
                (r["optimizer"] not in best or r["val_loss"] < best[r["optimizer"]]["val_loss"]):
            best[r["optimizer"]] = r
    return {name: r["lr"] for name, r in best.items()}


def mean_std(xs: list[float]) -> tuple[float, float]:
    return statistics.fmean(xs), statistics.stdev(xs) if len(xs) > 1 else 0.0


def lr_sensitivity(sweep: list[dict]) -> dict[str, float]:
    """How much the learning rate matters next to the optimizer, in final training loss.

    over_lrs: the median over optimizers of (worst - best) loss across the non-diverged learning rates;
    over_optimizers: (worst - best) across the optimizers' best losses.
    """
    by_opt: dict[str, list[float]] = {}
    for r in sweep:
        if not r["diverged"] and math.isfinite(r["train_loss"]):
            by_opt.setdefault(r["optimizer"], []).append(r["train_loss"])
    over_lrs = statistics.median(max(v) - min(v) for v in by_opt.values())
    bests = [min(v) for v in by_opt.values()]
    over_opts = max(bests) - min(bests)
    return {"loss_spread_over_lrs": over_lrs, "loss_spread_over_optimizers": over_opts,
            "lr_matters_ratio": over_lrs / max(over_opts, 1e-12)}


@dataclass
class ComparisonResult:
    runs: dict[str, list[DigitsRun]]  # optimizer -> one run per seed
    lrs: dict[str, float]
    seed: int

    @property
    def table(self) -> list[dict]:
        """Per optimizer: its lr, seeds, diverged runs, final train loss and test accuracy (mean, std)."""
        rows = []
        for name, results in self.runs.items():
            ok = [r for r in results if not r.diverged]
            loss, loss_sd = mean_std([r.train_loss for r in ok]) if ok else (math.inf, math.nan)
            acc, acc_sd = mean_std([r.test_accuracy for r in ok]) if ok else (math.nan, math.nan)
            rows.append({"optimizer": name, "lr": self.lrs[name], "seeds": len(results),
                         "diverged": len(results) - len(ok), "train_loss_mean": loss, "train_loss_std": loss_sd,
                         "test_accuracy_mean": acc, "test_accuracy_std": acc_sd})
        return rows

    @property
    def best(self) -> dict | None:
        """The table row with the highest mean test accuracy among optimizers with a run that did not diverge."""
        rows = [r for r in self.table if math.isfinite(r["test_accuracy_mean"])]
        return max(rows, key=lambda r: r["test_accuracy_mean"]) if rows else None

    @property
    def diverged(self) -> dict[str, int]:
        """Optimizer -> how many of its seeds diverged (only those with at least one)."""
        return {r["optimizer"]: r["diverged"] for r in self.table if r["diverged"]}

    @property
    def seed_rows(self) -> list[dict]:
        """One row per (optimizer, seed): the shared initial loss, final train loss, test accuracy."""
        return [{"optimizer": name, "seed": self.seed + s, "initial_loss": r.initial_loss, "train_loss": r.train_loss,
                 "test_accuracy": r.test_accuracy, "diverged": r.diverged}
                for name, results in self.runs.items() for s, r in enumerate(results)]

    @property
    def curves(self) -> dict[str, dict[str, list[float]]]:
        """Per optimizer, the per-epoch mean and std over seeds of the training loss and validation metrics."""
        out = {}
        for name, results in self.runs.items():
            hs = [r.history for r in results if r.history is not None]
            if not hs:
                continue
            curves: dict[str, list[float]] = {"epoch": hs[0]["epoch"]}
            for key in ("train_loss", "val_loss", "val_accuracy"):
                columns = list(zip(*(h[key] for h in hs)))
                curves[key] = [mean_std(list(c))[0] for c in columns]
                curves[f"{key}_std"] = [mean_std(list(c))[1] for c in columns]
            out[name] = curves
        return out


def comparison_study(data: DigitsData, *, lrs: dict[str, float], seeds: int = Config.seeds,
                     epochs: int = Config.epochs, hidden: int = Config.hidden, seed: int = Config.seed,
                     checkpoint_dir: Path | None = None) -> ComparisonResult:
    """Each optimizer of ``lrs`` at its learning rate over ``seeds`` seeds (``seed`` .. ``seed + seeds - 1``):
    per seed one initialisation and one batch order that every optimizer shares; ``epochs`` epochs per run."""
    check_optimizers(lrs)
    runs: dict[str, list[DigitsRun]] = {name: [] for name in lrs}
    for s in range(seeds):
        init = initial_state(seed + s, hidden)
        for name, lr in lrs.items():
            runs[name].append(train_digits(data, name, lr, init, seed=seed + s, epochs=epochs,
                                           checkpoint_dir=subfolder(checkpoint_dir, f"compare-{name}-seed{seed + s}")))
    return ComparisonResult(runs, dict(lrs), seed)


# ------------------------------------------------------------------------------------ Adam's bias correction
@dataclass
class BiasResult:
    step: list[int]
    corrected: list[float]    # RMS parameter update / lr per step, with bias correction
    uncorrected: list[float]  # the same without it
    theory_ratio: list[float]  # (1 - beta1^t) / sqrt(1 - beta2^t)

    @property
    def ratio_first10(self) -> float:
        """Mean over the first 10 steps of uncorrected / corrected update size."""
        return statistics.fmean(u / c for u, c in zip(self.uncorrected[:10], self.corrected[:10]))


def bias_correction_study(data: DigitsData, *, lr: float = 1e-3, steps: int = Config.bias_steps,
                          hidden: int = Config.hidden, seed: int = Config.seed) -> BiasResult:
    """RMS update / lr per step (a dimensionless step size) for Adam with and without bias correction, from the
    same initialisation and the same batches."""
    b1, b2 = 0.9, 0.999
    sizes = {}
    for correct in (True, False):
        model = build_mlp(hidden)
        model.load_state_dict(initial_state(seed, hidden))
        model.to(data.device)
        opt = Adam(model.parameters(), lr=lr, betas=(b1, b2), bias_correction=correct)
        batches = iter(data.train_loader(seed))
        moved_rms = []
        for _ in range(steps):
            try:
                x, y = next(batches)
            except StopIteration:
                batches = iter(data.train_loader(seed))
                x, y = next(batches)
            before = torch.nn.utils.parameters_to_vector(model.parameters()).detach().clone()
            loss = cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            moved = torch.nn.utils.parameters_to_vector(model.parameters()).detach() - before
            moved_rms.append(moved.pow(2).mean().sqrt() / lr)  # stays on the device; read once below
        sizes[correct] = torch.stack(moved_rms).tolist()
    return BiasResult(list(range(1, steps + 1)), sizes[True], sizes[False],
                      [(1 - b1**t) / math.sqrt(1 - b2**t) for t in range(1, steps + 1)])


# ----------------------------------------------------------------------------------- Wilson et al. 2017
def wilson_data(n: int, majority: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Section 3.3's construction: x_i = (y_i, 1, 1, then the point's own features), y_i = +1 with prob. majority.

    Point i's own block of 5 columns holds one 1 if y_i = +1 and five 1s if y_i = -1, so X sign(Xᵀy) = 4y and
    every adaptive method converges to w ∝ sign(Xᵀy) (their Lemma 3.1). A point seen only at test time has its
    own columns too, but no training point touches them, so their weights stay 0 for every optimizer here
    (zero initialisation, zero gradient): its columns are left out. Returns X (n, 3 + 5n) float64 and y (n,).
    """
    g = torch.Generator().manual_seed(seed)
    y = torch.where(torch.rand(n, generator=g, dtype=torch.float64) < majority, 1.0, -1.0)
    x = torch.zeros(n, 3 + 5 * n, dtype=torch.float64)
    x[:, 0], x[:, 1], x[:, 2] = y, 1.0, 1.0
    for i in range(n):
        x[i, 3 + 5 * i: 3 + 5 * i + (1 if y[i] > 0 else 5)] = 1.0
    return x, y


@dataclass
class WilsonResult:
    rows: list[dict]          # per optimizer: steps, train loss, train and test sign errors, two weights
    minority: float           # the test error of always answering the majority class

    def optimizer(self, name: str) -> dict:
        return next(r for r in self.rows if r["optimizer"] == name)


def wilson_study(*, optimizers: tuple[str, ...] = Config.optimizers, train: int = Config.wilson_train,
                 test: int = Config.wilson_test, majority: float = Config.wilson_majority,
                 steps: int = Config.wilson_steps, seed: int = Config.seed) -> WilsonResult:
    """Least squares ½ mean (x·w - y)² from w = 0, full batch, per optimizer (lr from WILSON_LR, else 0.01):
    train and test sign errors (fractions), and the test error of always answering the majority class."""
    check_optimizers(optimizers)
    if not 0 < majority < 1:
        raise ValueError(f"majority must be a probability in (0, 1), got {majority!r}")
    x, y = wilson_data(train + test, majority, seed)
    xtr, ytr = x[:train, : 3 + 5 * train], y[:train]
    xte, yte = x[train:, : 3 + 5 * train], y[train:]  # new points: their own columns would get weight 0
    rows = []
    for name in optimizers:
        w = torch.zeros(xtr.shape[1], dtype=torch.float64, requires_grad=True)
        opt = get_optimizer(name, [w], lr=WILSON_LR.get(name, 0.01))
        for step in range(steps):
            loss = 0.5 * (xtr @ w - ytr).pow(2).mean()
            if step % 50 == 0 and loss.item() < 1e-12:  # a check every 50 steps, not a sync per step
                break
            opt.zero_grad()
            loss.backward()
            opt.step()
        else:
            step = steps  # ran out of steps: all of them were taken
        with torch.no_grad():
            rows.append({"optimizer": name, "adaptive": name in ADAPTIVE, "steps": step,
                         "train_loss": float(0.5 * (xtr @ w - ytr).pow(2).mean()),
                         "train_error": float((torch.sign(xtr @ w) != ytr).double().mean()),
                         "test_error": float((torch.sign(xte @ w) != yte).double().mean()),
                         "w_label_feature": float(w[0]), "w_shared_features": float(w[1] + w[2])})
    return WilsonResult(rows, float((yte < 0).double().mean()))


# ------------------------------------------------------------------------- snapshot ensembles (Huang et al. 2017)
@dataclass
class SnapshotResult:
    rows: list[dict]          # per seed: test accuracy (fraction) of each model or ensemble
    summary: dict[str, float]  # mean over seeds of each accuracy column
    cost_epochs: dict[str, int]  # training epochs each way costs
    lr_curve: list[float]     # the cyclic learning rate per step (first seed)
    cycles: int

    @property
    def beats_single(self) -> bool:
        """Whether the snapshot ensemble beats one model trained for the same steps, on the mean over seeds."""
        return self.summary["snapshot_ensemble_accuracy"] > self.summary["snapshot_single_accuracy"]


def train_cosine(data: DigitsData, init: dict, *, seed: int, epochs: int, cycles: int, lr: float) -> list[torch.Tensor]:
    """SGD with momentum 0.9 from ``init`` for ``epochs`` epochs, the learning rate following ``cycles`` cosine
    cycles from ``lr`` to 0 with restarts; returns the test split's softmax at the end of each cycle."""
    from esc_course.optim.schedules import cosine

    model = build_mlp(hidden=init["0.weight"].shape[0])
    model.load_state_dict(init)
    model.to(data.device)
    opt = get_optimizer("momentum", model.parameters(), lr=lr)
    loader = data.train_loader(seed)
    per_cycle = epochs * len(loader) // cycles
    snapshots, step = [], 0
    for _ in range(epochs):
        for x, y in loader:
            for group in opt.param_groups:
                group["lr"] = cosine(step % per_cycle, lr0=lr, total_steps=per_cycle)
            loss = cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            if step % per_cycle == 0 and len(snapshots) < cycles:
                snapshots.append(test_softmax(model, data))
    return snapshots


def test_softmax(model, data: DigitsData) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([torch.softmax(model(x), dim=1) for x, _ in data.test])


def snapshot_study(data: DigitsData, *, cycles: int = Config.snapshot_cycles,
                   cycle_epochs: int = Config.snapshot_cycle_epochs, lr: float = Config.snapshot_lr,
                   seeds: int = Config.seeds, hidden: int = Config.hidden, seed: int = Config.seed) -> SnapshotResult:
    """Snapshot ensembles (Huang et al. 2017, "Snapshot Ensembles: Train 1, get M for free"): ``cycles`` cosine
    cycles with restarts of ``cycle_epochs`` epochs each, the mean softmax of the ``cycles`` snapshots, against one
    model trained for the same total epochs with one cosine decay and against ``cycles`` models trained that way
    from independent initialisations (``cycles`` times the cost). Test accuracy (fraction) per seed."""
    if cycles < 2:
        raise ValueError(f"cycles must be >= 2 (an ensemble needs two snapshots), got {cycles!r}")
    total = cycles * cycle_epochs
    labels = torch.cat([y for _, y in data.test]).to(data.device)

    def acc(p):
        return float((p.argmax(1) == labels).float().mean())

    rows = []
    for s in range(seed, seed + seeds):
        snaps = train_cosine(data, initial_state(s, hidden), seed=s, epochs=total, cycles=cycles, lr=lr)
        singles = [train_cosine(data, initial_state(s + 1000 * j, hidden), seed=s + 1000 * j, epochs=total,
                                cycles=1, lr=lr)[-1] for j in range(cycles)]  # j = 0: the same start as the snapshots
        rows.append({"seed": s, "snapshot_ensemble_accuracy": acc(torch.stack(snaps).mean(0)),
                     "last_snapshot_accuracy": acc(snaps[-1]), "snapshot_single_accuracy": acc(singles[0]),
                     "independent_ensemble_accuracy": acc(torch.stack(singles).mean(0))})
    from esc_course.optim.schedules import cosine

    per_cycle = total * len(data.train_loader(seed)) // cycles
    curve = [cosine(i % per_cycle, lr0=lr, total_steps=per_cycle) for i in range(per_cycle * cycles)]
    summary = {k: statistics.fmean(r[k] for r in rows) for k in rows[0] if k != "seed"}
    return SnapshotResult(rows, summary, {"snapshot_ensemble": total, "single": total,
                                          "independent_ensemble": cycles * total}, curve, cycles)


def snapshot_figure(result: SnapshotResult):
    """The cyclic learning rate with the snapshot points, and test accuracy of each way (mean over seeds, dots)."""
    from esc_course.viz import new_figure

    fig, (ax1, ax2) = new_figure(2, size=(5.0, 3.6))
    ax1.plot(result.lr_curve)
    per_cycle = len(result.lr_curve) // result.cycles
    for c in range(1, result.cycles + 1):
        ax1.axvline(c * per_cycle - 1, color="tab:red", linestyle=":", alpha=0.7)
    ax1.set(xlabel="step", ylabel="learning rate", title="cosine cycles with restarts (red: snapshots)")
    keys = ["snapshot_single_accuracy", "last_snapshot_accuracy", "snapshot_ensemble_accuracy",
            "independent_ensemble_accuracy"]
    labels = [f"single\n({result.cost_epochs['single']} ep)", "last\nsnapshot",
              f"snapshot ens.\n({result.cost_epochs['snapshot_ensemble']} ep)",
              f"independent\n({result.cost_epochs['independent_ensemble']} ep)"]
    ax2.bar(range(4), [result.summary[k] for k in keys], alpha=0.7)
    for i, k in enumerate(keys):
        ax2.plot([i] * len(result.rows), [r[k] for r in result.rows], "k.")
    lo = min(r[k] for r in result.rows for k in keys)
    ax2.set_xticks(range(4), labels, fontsize=7)
    ax2.set(ylabel="test accuracy", ylim=(max(0.0, lo - 0.03), 1.0), title="mean over seeds (dots: seeds)")
    ax2.grid(alpha=0.3, axis="y")
    return fig


# ------------------------------------------------------------------- optimizers as weighted sums of gradients
@dataclass
class UnrollResult:
    rows: list[dict]          # per (optimizer, state): the closed-form weighted sum vs the optimizer's buffer
    weights: dict[str, list[float]]  # state -> weight on the gradient k steps back, k = 0 .. steps-1
    running_mean_max_diff: float  # |c_N - mean(x_1..x_N)| with alpha = (N-1)/N, largest over N

    @property
    def max_abs_diff(self) -> float:
        return max(r["max_abs_diff"] for r in self.rows)


def unroll_study(*, steps: int = Config.unroll_steps, size: int = 6, seed: int = Config.seed) -> UnrollResult:
    """Feed the same ``steps`` random gradients (``size`` numbers each) to Momentum, AdaGrad, RMSProp and Adam and
    compare each buffer with its explicit sum over past gradients (max absolute difference, in gradient units):

        momentum v_T = Σ_t μ^(T-t) g_t          adagrad h_T = Σ_t g_t²
        rmsprop  h_T = Σ_t (1-α) α^(T-t) g_t²   adam m_T = Σ_t (1-β1) β1^(T-t) g_t,  v_T = Σ_t (1-β2) β2^(T-t) g_t²

    and the running mean c_N = α c_(N-1) + (1-α) x_N with α = (N-1)/N, which is exactly the mean of x_1..x_N."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps!r}")
    g = torch.Generator().manual_seed(seed)
    grads = torch.randn(steps, size, generator=g, dtype=torch.float64)
    mu, alpha, (b1, b2) = 0.9, 0.99, (0.9, 0.999)
    makers = {"momentum": lambda p: get_optimizer("momentum", [p], lr=0.01, momentum=mu),
              "adagrad": lambda p: get_optimizer("adagrad", [p], lr=0.01),
              "rmsprop": lambda p: get_optimizer("rmsprop", [p], lr=0.01, alpha=alpha),
              "adam": lambda p: get_optimizer("adam", [p], lr=0.01, betas=(b1, b2))}
    k = torch.arange(steps - 1, -1, -1, dtype=torch.float64)  # T - t for t = 1 .. T
    closed = {("momentum", "momentum_buffer"): (mu**k) @ grads,
              ("adagrad", "sum"): grads.pow(2).sum(0),
              ("rmsprop", "square_avg"): ((1 - alpha) * alpha**k) @ grads.pow(2),
              ("adam", "exp_avg"): ((1 - b1) * b1**k) @ grads,
              ("adam", "exp_avg_sq"): ((1 - b2) * b2**k) @ grads.pow(2)}
    rows = []
    for name, make in makers.items():
        p = torch.zeros(size, dtype=torch.float64, requires_grad=True)
        opt = make(p)
        for gt in grads:
            p.grad = gt.clone()
            opt.step()
        for (opt_name, key), expected in closed.items():
            if opt_name == name:
                rows.append({"optimizer": name, "state": key, "steps": steps,
                             "max_abs_diff": float((opt.state[p][key] - expected).abs().max()),
                             "weight_newest": float({"momentum_buffer": 1.0, "sum": 1.0, "square_avg": 1 - alpha,
                                                     "exp_avg": 1 - b1, "exp_avg_sq": 1 - b2}[key]),
                             "weight_oldest": float({"momentum_buffer": mu ** (steps - 1), "sum": 1.0,
                                                     "square_avg": (1 - alpha) * alpha ** (steps - 1),
                                                     "exp_avg": (1 - b1) * b1 ** (steps - 1),
                                                     "exp_avg_sq": (1 - b2) * b2 ** (steps - 1)}[key])})
    lag = torch.arange(steps, dtype=torch.float64)
    weights = {"momentum v (μ^k)": (mu**lag).tolist(), "adagrad h (1)": [1.0] * steps,
               "rmsprop h ((1-α)α^k)": ((1 - alpha) * alpha**lag).tolist(),
               "adam m ((1-β1)β1^k)": ((1 - b1) * b1**lag).tolist(),
               "running mean (1/N)": [1.0 / steps] * steps}
    x, c, worst = grads[:, 0], torch.zeros((), dtype=torch.float64), 0.0
    for n in range(1, steps + 1):
        a = (n - 1) / n
        c = a * c + (1 - a) * x[n - 1]
        worst = max(worst, float((c - x[:n].mean()).abs()))
    return UnrollResult(rows, weights, worst)


@dataclass
class NewtonResult:
    rows: list[dict]          # per method: lr, steps to reach f < tol (None: not within max_steps), final f
    condition_number: float   # largest / smallest Hessian eigenvalue
    tol: float


def newton_study(*, optimizers: tuple[str, ...] = ("sgd", "momentum", "adam"), max_steps: int = 500,
                 tol: float = 1e-6) -> NewtonResult:
    """On the ill-conditioned quadratic f = (x² + 20 y²)/2 from (-4.5, 1): Newton's step θ ← θ - H⁻¹ ∇f next to
    first-order methods at LANDSCAPE_LR["ill_conditioned"]: the steps each needs to bring f below ``tol``."""
    check_optimizers(optimizers)
    land = LANDSCAPES["ill_conditioned"]
    start = torch.tensor(land.start, dtype=torch.float64)

    def f(p):
        return land.fn(p[0], p[1])

    rows = []
    p = start.clone()
    hess = torch.autograd.functional.hessian(f, p)
    reached, value = None, float(f(p))
    for step in range(1, max_steps + 1):
        grad = torch.autograd.functional.jacobian(f, p)
        p = p - torch.linalg.solve(hess, grad)      # Newton: one step to a quadratic's minimum
        value = float(f(p))
        if value < tol:
            reached = step
            break
    rows.append({"method": "newton", "lr": None, "steps_to_tol": reached, "final_value": value})
    for name in optimizers:
        lr = LANDSCAPE_LR["ill_conditioned"].get(name, 0.01)
        w = start.clone().requires_grad_(True)
        opt = get_optimizer(name, [w], lr=lr)
        reached = None
        for step in range(1, max_steps + 1):
            opt.zero_grad()
            f(w).backward()
            opt.step()
            value = float(f(w.detach()))
            if value < tol:
                reached = step
                break
        rows.append({"method": name, "lr": lr, "steps_to_tol": reached, "final_value": value})
    eig = torch.linalg.eigvalsh(hess)
    return NewtonResult(rows, float(eig.max() / eig.min()), tol)


# -------------------------------------------------------------------------------------------------- run
def run(cfg: Config, out: Path | None = None) -> LabResult:
    cfg = quick_variant(cfg, QUICK)
    seed_everything(cfg.seed)
    device = get_device(cfg.device)
    started = time.perf_counter()
    check_optimizers(cfg.optimizers)  # fail before any training, listing the valid names
    ckpt = Path(out) / "checkpoints" if out is not None else None

    lands = landscape_study(optimizers=cfg.optimizers, steps=cfg.landscape_steps)
    data = digits_data(batch_size=cfg.batch_size, seed=cfg.seed, device=device)
    sweep = lr_sweep(data, optimizers=cfg.optimizers, lrs=cfg.sweep_lrs, epochs=cfg.sweep_epochs, hidden=cfg.hidden,
                     seed=cfg.seed, checkpoint_dir=ckpt)
    comp = comparison_study(data, lrs=sweep.best_lrs, seeds=cfg.seeds, epochs=cfg.epochs, hidden=cfg.hidden,
                            seed=cfg.seed, checkpoint_dir=ckpt)
    bias = bias_correction_study(data, lr=sweep.best_lrs.get("adam", 1e-3), steps=cfg.bias_steps, hidden=cfg.hidden,
                                 seed=cfg.seed)
    wilson = wilson_study(optimizers=cfg.optimizers, train=cfg.wilson_train, test=cfg.wilson_test,
                          majority=cfg.wilson_majority, steps=cfg.wilson_steps, seed=cfg.seed)
    snapshots = snapshot_study(data, cycles=cfg.snapshot_cycles, cycle_epochs=cfg.snapshot_cycle_epochs,
                               lr=cfg.snapshot_lr, seeds=cfg.seeds, hidden=cfg.hidden, seed=cfg.seed)
    unroll = unroll_study(steps=cfg.unroll_steps, seed=cfg.seed)
    newton = newton_study(max_steps=cfg.newton_max_steps)

    table = comp.table
    metrics = {"best_test_accuracy": comp.best["test_accuracy_mean"] if comp.best else math.nan,
               **sweep.sensitivity}
    for r in table:
        for key in ("train_loss_mean", "train_loss_std", "test_accuracy_mean", "test_accuracy_std"):
            metrics[f"{r['optimizer']}_{key.replace('_mean', '')}"] = r[key]
        metrics[f"{r['optimizer']}_best_lr"] = r["lr"]
    metrics["adam_uncorrected_update_ratio_first10"] = bias.ratio_first10
    for r in wilson.rows:
        metrics[f"wilson_{r['optimizer']}_train_error"] = r["train_error"]
        metrics[f"wilson_{r['optimizer']}_test_error"] = r["test_error"]
    metrics["wilson_minority_share_test"] = wilson.minority
    metrics.update(snapshots.summary)  # snapshot_ensemble_accuracy, snapshot_single_accuracy, independent_...
    metrics["unroll_max_abs_diff"] = unroll.max_abs_diff
    metrics["running_mean_max_abs_diff"] = unroll.running_mean_max_diff
    for r in newton.rows:
        metrics[f"newton_study_{r['method']}_steps"] = r["steps_to_tol"] if r["steps_to_tol"] else math.nan
    result = LabResult(
        lab="optimizers", config=asdict(cfg), metrics=metrics,
        history={**comp.curves, "adam_bias_correction": asdict(bias)},
        tables={"comparison": table, "runs": comp.seed_rows, "lr_sweep": sweep.rows, "landscapes": lands.rows,
                "wilson": wilson.rows, "unroll": unroll.rows, "newton": newton.rows,
                "snapshots": snapshots.rows},
        figures={"landscapes": landscape_figure(lands), "lr_sweep": sweep_figure(sweep),
                 "digits_curves": curves_figure(comp), "adam_bias_correction": bias_figure(bias),
                 "wilson": wilson_figure(wilson), "unroll_weights": unroll_figure(unroll),
                 "newton": newton_figure(newton), "snapshots": snapshot_figure(snapshots)},
        captions={**captions(lands, sweep, comp, bias, wilson), **unroll_captions(unroll, newton),
                  "snapshots": f"Mean over {cfg.seeds} seeds: {cfg.snapshot_cycles} cosine-cycle snapshots averaged "
                               f"{snapshots.summary['snapshot_ensemble_accuracy']:.3f}, one model at the same steps "
                               f"{snapshots.summary['snapshot_single_accuracy']:.3f}, {cfg.snapshot_cycles} "
                               f"independent models ({cfg.snapshot_cycles}x the cost) "
                               f"{snapshots.summary['independent_ensemble_accuracy']:.3f}."},
        device=str(device))
    return finish(result, out, started)


def captions(lands: LandscapeResult, sweep: SweepResult, comp: ComparisonResult, bias: BiasResult,
             wilson: WilsonResult) -> dict[str, str]:
    """One sentence per figure and main table, from this run's numbers."""
    shared = [(n, y) for n, y in lands.escape_ranking() if lands.row("saddle", n)["lr"] == 0.01] or [("-", 0.0)]
    best = comp.best or {"optimizer": "none (every run diverged)", "test_accuracy_mean": math.nan}
    return {
        "landscapes": f"Paths on five 2-D functions; of the optimizers at lr 0.01 on the saddle, {shared[0][0]} "
                      f"gets furthest along y (|y| = {shared[0][1]:.3g}) and {shared[-1][0]} the least.",
        "lr_sweep": f"Final training loss against learning rate: the learning rate changes the loss "
                    f"{sweep.sensitivity['lr_matters_ratio']:.1f}x more than the choice of optimizer.",
        "digits_curves": "Training loss and validation accuracy per epoch, mean ± std over seeds, each optimizer "
                         "at its best learning rate.",
        "comparison": f"Each optimizer at its best learning rate; best mean test accuracy: {best['optimizer']} "
                      f"({best['test_accuracy_mean']:.3f}).",
        "adam_bias_correction": f"Without bias correction Adam's first 10 steps are {bias.ratio_first10:.1f}x "
                                "longer on average.",
        "wilson": f"Least squares on separable data: adaptive methods' test error approaches the minority share "
                  f"({wilson.minority:.2f}), gradient descent's is "
                  f"{wilson.optimizer('sgd')['test_error']:.2f}." if any(r["optimizer"] == "sgd" for r in wilson.rows)
                  else "Least squares on separable data: train and test error per optimizer.",
    }


def unroll_captions(unroll: UnrollResult, newton: NewtonResult) -> dict[str, str]:
    """Captions of the weighted-sum and Newton figures and tables, from this run's numbers."""
    steps = {r["method"]: r["steps_to_tol"] for r in newton.rows}
    return {
        "unroll_weights": f"Weight each optimizer's state puts on the gradient k steps back; the explicit sums equal "
                          f"the optimizers' buffers to {unroll.max_abs_diff:.1e}.",
        "unroll": "Each optimizer buffer against its closed-form weighted sum of past gradients.",
        "newton": f"On (x² + 20y²)/2 (condition number {newton.condition_number:.0f}) Newton reaches f < "
                  f"{newton.tol:g} in {steps['newton']} step; first-order methods: "
                  + ", ".join(f"{m} {s if s else 'not'}" for m, s in steps.items() if m != "newton") + " steps.",
    }


# ----------------------------------------------------------------------------------------------- figures
def unroll_figure(result: UnrollResult):
    """The weight on the gradient k steps back, per optimizer state (log scale)."""
    from esc_course.viz import new_figure

    fig, (ax,) = new_figure(size=(6.0, 3.8))
    for label, w in result.weights.items():
        ax.plot(range(len(w)), w, marker=".", label=label)
    ax.set(yscale="log", xlabel="k (steps back)", ylabel="weight on g_(T-k)", title="optimizer state = Σ weight·g")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return fig


def newton_figure(result: NewtonResult):
    """Steps to reach f < tol on the ill-conditioned quadratic, per method (a hatched bar: not reached)."""
    from esc_course.viz import new_figure

    fig, (ax,) = new_figure(size=(5.0, 3.4))
    cap = max([r["steps_to_tol"] or 0 for r in result.rows] + [1])
    for i, r in enumerate(result.rows):
        reached = r["steps_to_tol"] is not None
        ax.bar(i, r["steps_to_tol"] if reached else cap * 1.2, hatch=None if reached else "//",
               color="tab:green" if r["method"] == "newton" else "tab:blue")
    ax.set_xticks(range(len(result.rows)), [r["method"] for r in result.rows])
    ax.set(yscale="log", ylabel=f"steps to f < {result.tol:g}",
           title=f"conditioning: κ = {result.condition_number:.0f}")
    ax.grid(alpha=0.3, axis="y")
    return fig


def landscape_figure(result: LandscapeResult):
    """One contour panel per landscape with every optimizer's path; one shared legend beside the panels."""
    from esc_course.optim.landscapes import landscapes_figure

    return landscapes_figure(result.paths)


def sweep_figure(result: SweepResult | list[dict]):
    """Final training loss against learning rate (log-log), one line per optimizer; x marks a diverged run."""
    from esc_course.viz import new_figure

    sweep = result.rows if isinstance(result, SweepResult) else result
    fig, (ax,) = new_figure(size=(6.0, 4.2))
    finite = [r["train_loss"] for r in sweep if math.isfinite(r["train_loss"])]
    top = max(finite) * 1.5 if finite else 10.0
    for name in dict.fromkeys(r["optimizer"] for r in sweep):
        rows = [r for r in sweep if r["optimizer"] == name]
        line, = ax.plot([r["lr"] for r in rows], [r["train_loss"] if math.isfinite(r["train_loss"]) else math.nan
                                                  for r in rows], marker="o", label=name)
        bad = [r["lr"] for r in rows if not math.isfinite(r["train_loss"])]
        ax.plot(bad, [top] * len(bad), marker="x", color=line.get_color(), linestyle="none", markersize=9)
    ax.set(xscale="log", yscale="log", xlabel="learning rate", ylabel="final training loss (nats)",
           title="learning-rate sweep (x: diverged)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))  # beside the axes: off the data
    return fig


def curves_figure(result: ComparisonResult):
    """Mean over seeds with a ±1 std band: training loss and validation accuracy per epoch."""
    from esc_course.viz import new_figure

    curves = result.curves
    fig, axes = new_figure(2, size=(4.6, 3.8))
    for ax, key, label in zip(axes, ("train_loss", "val_accuracy"), ("training loss (nats)", "validation accuracy")):
        for name, c in curves.items():
            mean, sd = torch.tensor(c[key]), torch.tensor(c[f"{key}_std"])
            line, = ax.plot(c["epoch"], mean, label=name)
            ax.fill_between(c["epoch"], mean - sd, mean + sd, color=line.get_color(), alpha=0.2)
        ax.set(xlabel="epoch", ylabel=label, title=f"{label.split(' (')[0]} (mean ± std over seeds)")
        if key == "train_loss":
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return fig


def bias_figure(result: BiasResult):
    """Adam's update size per step, with and without bias correction, and the theory's prediction."""
    from esc_course.viz import new_figure

    fig, (ax,) = new_figure(size=(5.0, 3.6))
    ax.plot(result.step, result.corrected, marker=".", label="with bias correction")
    ax.plot(result.step, result.uncorrected, marker=".", label="without")
    predicted = [c * r for c, r in zip(result.corrected, result.theory_ratio)]
    ax.plot(result.step, predicted, "--", color="gray", label="with × (1-β1^t)/√(1-β2^t)")
    ax.set(xlabel="step t", ylabel="RMS update / learning rate", title="Adam's first steps")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def wilson_figure(result: WilsonResult):
    """Train and test error per optimizer, and the error of always answering the majority class."""
    from esc_course.viz import new_figure

    rows = result.rows
    fig, (ax,) = new_figure(size=(6.0, 3.6))
    names = [r["optimizer"] for r in rows]
    xs = torch.arange(len(rows), dtype=torch.float64)
    ax.bar(xs - 0.2, [r["train_error"] for r in rows], width=0.4, label="train error")
    ax.bar(xs + 0.2, [r["test_error"] for r in rows], width=0.4, label="test error")
    ax.axhline(result.minority, color="gray", linestyle="--", label="always the majority class")
    ax.set_xticks(xs.tolist(), names, rotation=30)
    ax.set(ylabel="error (fraction)", title="Wilson et al. 2017: least squares, linearly separable",
           ylim=(0, max(0.5, 1.3 * result.minority)))
    ax.legend(fontsize=8, loc="upper left")
    return fig


if __name__ == "__main__":
    from esc_course.lab import main

    raise SystemExit(main("optimizers"))
