"""Week 2: loss functions and gradient descent.

The losses written out (MSE, Huber, cross-entropy, binary cross-entropy, KL divergence) and checked against torch,
with the numeric check that cross-entropy = KL divergence + entropy of the labels. Then the slides' example:
gradient descent from (0, 0) towards the minimum 0 at (1, 1) for 20 steps with step sizes 0.01 (too small), 0.3
(right) and 0.6 (too large: it diverges). Last, batch vs mini-batch vs stochastic gradient descent on one linear
regression problem: per step, the full batch is best; per sample seen, the small batches are.

Each experiment is a study function (``loss_check_study``, ``step_size_study``, ``batch_size_study`` on the data of
``regression_data``) that a notebook cell calls with its settings as keyword arguments; each returns a dataclass that
its figure function takes. ``run`` calls them all with a Config's values.
"""

from __future__ import annotations

import math
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
from esc_course.optim.landscapes import LANDSCAPES, MULTI_MINIMA, trajectory, values
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
    convex_starts: int = 20                           # random starts of gradient descent on each landscape
    convex_steps: int = 2000                          # gradient-descent steps from each start
    convex_lr: float = 0.005                          # their step size (below 2 / the largest curvature met)
    minima_tolerance: float = 1e-3                    # end points closer than this (Euclidean) are one minimum
    hessian_starts: int = 6                           # random initialisations of the tiny 1-2-1 network
    seed: int = 0
    device: str = "auto"
    quick: bool = False                               # small, fast variant for CPU CI and weak laptops


QUICK = dict(samples=256, epochs=3, convex_steps=1000)


def subfolder(checkpoint_dir: Path | None, name: str) -> Path | None:
    """The checkpoint folder of one experiment's fit (stable across runs), or None without a checkpoint_dir."""
    return None if checkpoint_dir is None else Path(checkpoint_dir) / name


def _check_positive(name: str, value) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name}={value!r}: expected a positive integer")


# ----------------------------------------------------------------------------------------------- losses
@dataclass
class LossCheckStudy:
    """Each written-out loss next to torch's, and the cross-entropy decomposition on soft labels."""

    rows: list[dict]                          # loss, ours, torch, abs_diff (float64)
    decomposition: dict[str, float]           # cross_entropy, kl_divergence, label_entropy, gap

    @property
    def max_abs_diff(self) -> float:
        return max(r["abs_diff"] for r in self.rows)


def loss_check_study(*, seed: int = Config.seed, batch: int = 8, classes: int = 4) -> LossCheckStudy:
    """Each loss of esc_course.losses next to torch's on one random float64 batch of ``batch`` samples
    (``classes`` classes), and H(p, q) = KL(p || q) + H(p) checked on soft labels. Values in nats."""
    _check_positive("batch", batch)
    if not isinstance(classes, int) or isinstance(classes, bool) or classes < 2:
        raise ValueError(f"classes={classes!r}: expected an integer >= 2")
    g = torch.Generator().manual_seed(seed)
    f64 = dict(generator=g, dtype=torch.float64)
    logits, labels = torch.randn(batch, classes, **f64) * 2, torch.randint(0, classes, (batch,), generator=g)
    soft = torch.softmax(torch.randn(batch, classes, **f64), dim=-1)   # soft labels (e.g. label smoothing)
    pred, target = torch.randn(batch, **f64) * 2, torch.randn(batch, **f64)
    z, y01 = torch.randn(batch, **f64) * 3, torch.randint(0, 2, (batch,), generator=g).double()
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
    return LossCheckStudy(rows, losses.cross_entropy_decomposition(logits, soft))


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
@dataclass
class StepSizeStudy:
    """Plain gradient descent on the slides' bowl, one path per step size."""

    paths: dict[float, torch.Tensor]          # lr -> (steps + 1, 2) points visited, the start first
    rows: list[dict]                          # lr, steps, start_loss, final_loss, distance_to_min, overshoots, verdict

    def row(self, lr: float) -> dict:
        for r in self.rows:
            if r["lr"] == lr:
                return r
        ran = ", ".join(f"{r['lr']:g}" for r in self.rows)
        raise KeyError(f"lr={lr!r}: this study ran the step sizes {ran}")


def step_size_study(*, lrs: tuple[float, ...] = Config.gd_lrs, steps: int = Config.gd_steps,
                    start: tuple[float, float] = (0.0, 0.0)) -> StepSizeStudy:
    """Gradient descent from ``start`` on f(x, y) = (x - 1)² + 2 (y - 1)² (minimum 0 at (1, 1)) for ``steps`` steps
    with each step size in ``lrs``; measures the final f, the distance to (1, 1), and how many steps jumped across
    the minimum, and gives each step size a verdict (too small / right / too large)."""
    _check_positive("steps", steps)
    bad = [lr for lr in lrs if not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr <= 0]
    if not lrs or bad:
        raise ValueError(f"lrs={lrs!r}: expected one or more positive step sizes")
    start_loss = float(LANDSCAPES["bowl"](torch.tensor(float(start[0])), torch.tensor(float(start[1]))))
    paths, rows = {}, []
    for lr in lrs:
        path = trajectory("bowl", "sgd", start=start, steps=steps, lr=lr)
        f = values("bowl", path)
        offset = path - 1.0  # displacement from the minimum (1, 1)
        flips = int(((offset[1:] * offset[:-1]) < 0).any(dim=1).sum())  # steps that jumped across the minimum
        final = float(f[-1])
        if not math.isfinite(final) or final > start_loss:
            verdict = "too large: diverges"
        elif final > 1e-2 * start_loss:
            verdict = "too large: oscillates" if flips > steps // 2 else "too small: slow"
        else:
            verdict = "right: converged"
        paths[lr] = path
        rows.append({"lr": lr, "steps": len(path) - 1, "start_loss": start_loss, "final_loss": final,
                     "distance_to_min": float(torch.linalg.vector_norm(offset[-1])), "overshoots": flips,
                     "verdict": verdict})
    return StepSizeStudy(paths, rows)


# ------------------------------------------------------------------- batch vs mini-batch vs stochastic GD
def regression_data(*, samples: int = Config.samples, features: int = Config.features, noise: float = Config.noise,
                    seed: int = Config.seed) -> tuple[torch.Tensor, torch.Tensor]:
    """y = x·w* + b* + noise·ε with x, w*, ε standard normal: x (N, D), y (N, 1)."""
    _check_positive("samples", samples)
    _check_positive("features", features)
    if not noise >= 0:
        raise ValueError(f"noise={noise!r}: expected a standard deviation >= 0")
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(samples, features, generator=g)
    w, b = torch.randn(features, 1, generator=g), torch.randn(1, generator=g)
    return x, x @ w + b + noise * torch.randn(samples, 1, generator=g)


@dataclass
class BatchSizeStudy:
    """One linear model trained from the same initialisation with batch, mini-batch and stochastic GD."""

    curves: dict[str, dict[str, list[float]]]  # method -> epoch, loss (MSE on all samples), steps, samples_seen
    rows: list[dict]                           # method, batch_size, steps_per_epoch, losses at equal samples/steps
    samples: int                               # training samples N

    def row(self, method: str) -> dict:
        for r in self.rows:
            if r["method"] == method:
                return r
        raise KeyError(f"method={method!r}: valid methods are {', '.join(r['method'] for r in self.rows)}")

    @property
    def equal_steps_key(self) -> str:
        """The table column of the loss after N updates (as many as one epoch of stochastic GD)."""
        return f"loss_after_{self.samples}_steps"


def batch_size_study(x: torch.Tensor, y: torch.Tensor, *, lr: float = Config.lr, minibatch: int = Config.minibatch,
                     epochs: int = Config.epochs, seed: int = Config.seed, device: torch.device | str = "cpu",
                     checkpoint_dir: Path | None = None) -> BatchSizeStudy:
    """Train nn.Linear on ``x`` (N, D), ``y`` (N, 1) with SGD of step size ``lr`` and batch sizes N (batch GD),
    ``minibatch`` and 1 (stochastic GD), all from one initialisation and one sample order; measures the MSE on all
    N samples after each epoch. Mini-batch and stochastic GD run ``epochs`` epochs, batch GD max(epochs, N), so
    that it makes as many steps as one epoch of stochastic GD. Checkpoints: ``checkpoint_dir / "batch-<method>"``."""
    _check_positive("minibatch", minibatch)
    _check_positive("epochs", epochs)
    n = len(x)
    sizes = {"batch": n, "minibatch": minibatch, "stochastic": 1}
    full = TensorLoader(x, y, batch_size=n, shuffle=False, device=device)
    seed_everything(seed)
    init = nn.Linear(x.shape[1], 1).state_dict()
    curves, rows = {}, []
    for name, size in sizes.items():
        model = nn.Linear(x.shape[1], 1)
        model.load_state_dict(init)
        order = torch.Generator().manual_seed(seed)  # the same sample order for every run
        data = TensorLoader(x, y, batch_size=size, shuffle=True, device=device, generator=order)
        runs = max(epochs, n) if name == "batch" else epochs
        start = evaluate(model.to(device), full, losses.mse, device, metrics=())["loss"]
        history = fit(model, data, full, loss_fn=losses.mse, optimizer=get_optimizer("sgd", model.parameters(),
                      lr=lr), epochs=runs, device=device, metrics=(), progress=False, desc=name,
                      checkpoint_dir=subfolder(checkpoint_dir, f"batch-{name}"), resume=checkpoint_dir is not None)
        loss = [start] + history["val_loss"]
        c = {"epoch": list(range(len(loss))), "loss": loss, "steps": [e * len(data) for e in range(len(loss))],
             "samples_seen": [e * n for e in range(len(loss))]}
        curves[name] = c
        at_steps = c["steps"].index(n) if n in c["steps"] else None
        rows.append({"method": name, "batch_size": size, "steps_per_epoch": c["steps"][1],
                     "loss_after_1_epoch": c["loss"][1],
                     f"loss_after_{n}_steps": c["loss"][at_steps] if at_steps is not None else None,
                     "final_loss": c["loss"][-1], "final_samples_seen": c["samples_seen"][-1]})
    return BatchSizeStudy(curves, rows, n)


# ------------------------------------------------------------------------------ convex vs non-convex
@dataclass
class ConvexityStudy:
    """Gradient descent from many random starts on a convex and on a non-convex function."""

    paths: dict[str, torch.Tensor]            # landscape -> (starts, steps + 1, 2) every path, the start first
    minima: dict[str, list[dict]]             # landscape -> one row per distinct end point: x, y, f, starts
    tolerance: float                          # end points closer than this are counted as one minimum
    max_grad_norm: dict[str, float]           # landscape -> the largest |gradient| at an end point (converged?)

    def distinct_minima(self, name: str) -> int:
        return len(self.minima[name])

    @property
    def rows(self) -> list[dict]:
        return [{"landscape": name, "convex": name == "bowl", "starts": int(p.shape[0]),
                 "distinct_minima": len(self.minima[name]), "max_grad_norm_at_end": self.max_grad_norm[name],
                 "tolerance": self.tolerance} for name, p in self.paths.items()]


def _distinct(points: torch.Tensor, tolerance: float) -> list[list[int]]:
    """Group the rows of ``points`` (S, 2): a point joins the first group whose first point is within
    ``tolerance``; returns the indices of each group."""
    groups: list[list[int]] = []
    for i, p in enumerate(points):
        for g in groups:
            if float(torch.linalg.vector_norm(points[g[0]] - p)) < tolerance:
                g.append(i)
                break
        else:
            groups.append([i])
    return groups


def convexity_study(*, starts: int = Config.convex_starts, steps: int = Config.convex_steps,
                    lr: float = Config.convex_lr, tolerance: float = Config.minima_tolerance,
                    seed: int = Config.seed) -> ConvexityStudy:
    """Plain gradient descent (step size ``lr``, ``steps`` steps, float64) from ``starts`` points drawn uniformly in
    each landscape's plot window, on the convex bowl (x-1)² + 2(y-1)² (window [-0.5, 2.5]²) and on the non-convex
    Himmelblau function (four minima, window [-5, 5]²). Counts the distinct end points: end points closer than
    ``tolerance`` (Euclidean distance, in the units of x and y) are one minimum; also the largest gradient norm at
    an end point, to show the runs converged."""
    _check_positive("starts", starts)
    _check_positive("steps", steps)
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr={lr!r}: expected a positive step size")
    if not (isinstance(tolerance, (int, float)) and tolerance > 0):
        raise ValueError(f"tolerance={tolerance!r}: expected a positive distance")
    g = torch.Generator().manual_seed(seed)
    paths, minima, grad_norm = {}, {}, {}
    for land in (LANDSCAPES["bowl"], MULTI_MINIMA["himmelblau"]):
        lo = torch.tensor([land.xlim[0], land.ylim[0]], dtype=torch.float64)
        hi = torch.tensor([land.xlim[1], land.ylim[1]], dtype=torch.float64)
        p = lo + (hi - lo) * torch.rand(starts, 2, generator=g, dtype=torch.float64)
        visited = [p.clone()]
        for _ in range(steps):  # all starts at once: the function is a sum of independent terms
            p.requires_grad_(True)
            (grad,) = torch.autograd.grad(land(p[:, 0], p[:, 1]).sum(), p)
            p = (p - lr * grad).detach()
            visited.append(p.clone())
        p.requires_grad_(True)
        (grad,) = torch.autograd.grad(land(p[:, 0], p[:, 1]).sum(), p)
        end = p.detach()
        grad_norm[land.name] = float(torch.linalg.vector_norm(grad, dim=1).max())
        paths[land.name] = torch.stack(visited, dim=1)
        rows = []
        for group in _distinct(end, tolerance):
            at = end[group].mean(0)
            rows.append({"x": float(at[0]), "y": float(at[1]), "f": float(land(at[0], at[1])), "starts": len(group)})
        minima[land.name] = sorted(rows, key=lambda r: -r["starts"])
    return ConvexityStudy(paths, minima, float(tolerance), grad_norm)


# ------------------------------------------------------- critical points of a tiny network: the Hessian
TINY_X = torch.linspace(-2, 2, 16, dtype=torch.float64)
TINY_Y = torch.sin(3 * TINY_X)  # the tiny network's regression target: two tanh units cannot fit it exactly


TINY_WEIGHT_DECAY = 1e-2  # keeps every minimum at finite weights (else tanh units sharpen for ever)


def tiny_net_loss(theta: torch.Tensor, x: torch.Tensor = TINY_X, y: torch.Tensor = TINY_Y) -> torch.Tensor:
    """Mean squared error of the 1-2-1 tanh net y = w2 · tanh(w1 x + b1) + b2, with theta = (w1 (2), b1 (2),
    w2 (2), b2) the 7 parameters, plus TINY_WEIGHT_DECAY / 2 · |theta|²."""
    w1, b1, w2, b2 = theta[0:2], theta[2:4], theta[4:6], theta[6]
    mse = ((torch.tanh(x[:, None] * w1 + b1) @ w2 + b2 - y) ** 2).mean()
    return mse + TINY_WEIGHT_DECAY / 2 * (theta**2).sum()


@dataclass
class HessianStudy:
    """Critical points the tiny 1-2-1 network reaches from several starts, classified by the Hessian."""

    rows: list[dict]                          # start, loss, grad_norm, min/max eigenvalue, negative, kind
    eigenvalues: dict[str, list[float]]       # start -> the 7 Hessian eigenvalues, ascending

    def kinds(self) -> dict[str, str]:
        return {r["start"]: r["kind"] for r in self.rows}

    def row(self, start: str) -> dict:
        for r in self.rows:
            if r["start"] == start:
                return r
        raise KeyError(f"start={start!r}: this study started from {', '.join(r['start'] for r in self.rows)}")

    def count(self, kind: str) -> int:
        return sum(r["kind"] == kind for r in self.rows)

    @property
    def distinct_minimum_losses(self) -> list[float]:
        """The loss values of the minima reached, those within 1e-6 of each other counted once, ascending."""
        out: list[float] = []
        for loss in sorted(r["loss"] for r in self.rows if r["kind"] == "minimum"):
            if not out or loss - out[-1] > 1e-6:
                out.append(loss)
        return out


def hessian_study(*, starts: int = Config.hessian_starts, seed: int = Config.seed, tolerance: float = 1e-6
                  ) -> HessianStudy:
    """Train the 1-2-1 tanh net (:func:`tiny_net_loss`, fitting sin(3 x) at 16 points on [-2, 2], float64) with
    L-BFGS to a point where the gradient vanishes, from ``starts`` random initialisations (standard normal), from
    all zeros (both hidden units dead: gradient descent can never leave the subspace w = 0) and from a symmetric
    start (the two hidden units identical: they stay identical). At each end point the 7x7 Hessian's eigenvalues:
    all >= -``tolerance`` is a minimum, one below -``tolerance`` a saddle (a direction downhill)."""
    _check_positive("starts", starts)
    g = torch.Generator().manual_seed(seed)
    inits = {f"random {i}": torch.randn(7, generator=g, dtype=torch.float64) for i in range(starts)}
    inits["zeros"] = torch.zeros(7, dtype=torch.float64)
    half = torch.randn(4, generator=g, dtype=torch.float64)
    inits["symmetric"] = torch.stack([half[0], half[0], half[1], half[1], half[2], half[2], half[3]])
    rows, eigenvalues = [], {}
    for name, theta0 in inits.items():
        theta = theta0.clone().requires_grad_(True)
        opt = torch.optim.LBFGS([theta], lr=1.0, max_iter=300, tolerance_grad=1e-10, tolerance_change=1e-15,
                                history_size=20, line_search_fn="strong_wolfe")

        def closure(opt=opt, theta=theta):
            opt.zero_grad()
            loss = tiny_net_loss(theta)
            loss.backward()
            return loss

        opt.step(closure)
        end = theta.detach()
        at = end.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(tiny_net_loss(at), [at])
        eig = torch.linalg.eigvalsh(torch.autograd.functional.hessian(tiny_net_loss, end))
        negative = int((eig < -tolerance).sum())
        eigenvalues[name] = eig.tolist()
        rows.append({"start": name, "loss": float(tiny_net_loss(end)), "grad_norm": float(grad.norm()),
                     "min_eigenvalue": float(eig[0]), "max_eigenvalue": float(eig[-1]), "negative": negative,
                     "kind": "saddle" if negative else "minimum"})
    return HessianStudy(rows, eigenvalues)


# -------------------------------------------------------------------------------------------------- run
def run(cfg: Config, out: Path | None = None) -> LabResult:
    cfg = quick_variant(cfg, QUICK)
    seed_everything(cfg.seed)
    device = get_device(cfg.device)
    started = time.perf_counter()
    ckpt = Path(out) / "checkpoints" if out is not None else None

    checks = loss_check_study(seed=cfg.seed)
    steps = step_size_study(lrs=cfg.gd_lrs, steps=cfg.gd_steps)
    x, y = regression_data(samples=cfg.samples, features=cfg.features, noise=cfg.noise, seed=cfg.seed)
    batches = batch_size_study(x, y, lr=cfg.lr, minibatch=cfg.minibatch, epochs=cfg.epochs, seed=cfg.seed,
                               device=device, checkpoint_dir=ckpt)
    convexity = convexity_study(starts=cfg.convex_starts, steps=cfg.convex_steps, lr=cfg.convex_lr,
                                tolerance=cfg.minima_tolerance, seed=cfg.seed)
    hessian = hessian_study(starts=cfg.hessian_starts, seed=cfg.seed)

    decomposition = checks.decomposition
    metrics = {"loss_max_abs_diff_vs_torch": checks.max_abs_diff,
               "cross_entropy_minus_kl_plus_entropy": decomposition["gap"],
               "soft_label_entropy": decomposition["label_entropy"]}
    for r in steps.rows:
        metrics[f"gd_final_loss_lr{r['lr']:g}"] = r["final_loss"]
        metrics[f"gd_distance_lr{r['lr']:g}"] = r["distance_to_min"]
        metrics[f"gd_overshoots_lr{r['lr']:g}"] = float(r["overshoots"])
    for r in batches.rows:
        metrics[f"{r['method']}_loss_after_1_epoch"] = r["loss_after_1_epoch"]
        if r[batches.equal_steps_key] is not None:  # batch and stochastic GD: measured at an epoch's end
            metrics[f"{r['method']}_{batches.equal_steps_key}"] = r[batches.equal_steps_key]
        metrics[f"{r['method']}_final_loss"] = r["final_loss"]
    metrics["noise_floor"] = cfg.noise**2
    metrics["convex_distinct_minima"] = float(convexity.distinct_minima("bowl"))
    metrics["nonconvex_distinct_minima"] = float(convexity.distinct_minima("himmelblau"))
    metrics["convexity_max_grad_norm_at_end"] = max(convexity.max_grad_norm.values())
    metrics["tiny_net_saddles"] = float(hessian.count("saddle"))
    metrics["tiny_net_minima"] = float(hessian.count("minimum"))
    metrics["tiny_net_distinct_minimum_losses"] = float(len(hessian.distinct_minimum_losses))
    metrics["tiny_net_zero_start_negative_eigenvalues"] = float(hessian.row("zeros")["negative"])
    history = {f"gd_lr{lr:g}": {"step": list(range(len(p))), "loss": values("bowl", p).tolist()}
               for lr, p in steps.paths.items()}
    history.update({f"regression_{k}": v for k, v in batches.curves.items()})
    result = LabResult(
        lab="gradient_descent", config=asdict(cfg), metrics=metrics, history=history,
        tables={"losses_vs_torch": checks.rows, "cross_entropy_decomposition": [decomposition],
                "output_activations": activation_examples(), "gradient_descent": steps.rows,
                "batch_sizes": batches.rows, "convexity": convexity.rows,
                "nonconvex_minima": convexity.minima["himmelblau"], "tiny_net_critical_points": hessian.rows},
        figures={"gd_contours": step_size_contours_figure(steps), "gd_loss": step_size_loss_figure(steps),
                 "batch_vs_minibatch": batch_size_figure(batches), "loss_functions": loss_functions_figure(),
                 "convexity": convexity_figure(convexity), "tiny_net_hessian": hessian_figure(hessian)},
        captions={**captions(checks, steps, batches, cfg.noise**2), **convexity_captions(convexity, hessian)},
        device=str(device))
    return finish(result, out, started)


def captions(checks: LossCheckStudy, steps: StepSizeStudy, batches: BatchSizeStudy, noise_floor: float) -> dict:
    """One sentence per figure and main table, from this run's numbers."""
    verdicts = "; ".join(f"η = {r['lr']:g}: {r['verdict']}" for r in steps.rows)
    one_epoch = min(batches.rows, key=lambda r: r["loss_after_1_epoch"])["method"]
    return {
        "loss_functions": "MSE, Huber (δ = 1) and |r| against the residual; cross-entropy against the true class's "
                          "probability.",
        "losses_vs_torch": f"Each written-out loss against torch's (float64): largest difference "
                           f"{checks.max_abs_diff:.1e}.",
        "cross_entropy_decomposition": f"H(p, q) - (KL(p || q) + H(p)) = {checks.decomposition['gap']:.1e} on soft "
                                       "labels.",
        "gd_contours": f"Gradient-descent paths from (0, 0) on the bowl: {verdicts}.",
        "gd_loss": f"f(x, y) per step for each step size over {steps.rows[0]['steps']} steps (log scale).",
        "gradient_descent": f"Final loss, distance to the minimum and overshoots per step size: {verdicts}.",
        "batch_vs_minibatch": f"Training MSE against updates (left) and samples seen (right); after one epoch "
                              f"{one_epoch} GD is lowest; the noise floor is {noise_floor:g}.",
        "batch_sizes": f"Loss after one epoch and after {batches.samples} updates per batch size.",
    }


def convexity_captions(convexity: ConvexityStudy, hessian: HessianStudy) -> dict[str, str]:
    """The sentences of the convex vs non-convex figures and tables, from this run's numbers."""
    n = convexity.paths["bowl"].shape[0]
    ends = (f"{n} random starts reach {convexity.distinct_minima('bowl')} distinct minimum on the convex bowl and "
            f"{convexity.distinct_minima('himmelblau')} on Himmelblau's function (end points within "
            f"{convexity.tolerance:g} counted as one)")
    losses_ = ", ".join(f"{v:.3f}" for v in hessian.distinct_minimum_losses)
    kinds = (f"{hessian.count('minimum')} minima (losses {losses_}) and {hessian.count('saddle')} saddles; the "
             f"all-zeros start stops at a saddle with {hessian.row('zeros')['negative']} negative eigenvalues")
    return {
        "convexity": f"Gradient-descent paths: {ends}.",
        "tiny_net_hessian": f"Hessian eigenvalues at the critical points the 1-2-1 tanh net reaches: {kinds}.",
        "nonconvex_minima": "Himmelblau's minima and how many starts ended in each.",
        "tiny_net_critical_points": f"The tiny network's critical points by start: {kinds}.",
    }


# ---------------------------------------------------------------------------------------------- figures
def convexity_figure(result: ConvexityStudy):
    """One contour panel per landscape with every gradient-descent path (start: dot, end: cross)."""
    from esc_course.optim.landscapes import MULTI_MINIMA, draw
    from esc_course.viz import new_figure

    fig, axes = new_figure(len(result.paths), size=(4.4, 4.0))
    for ax, (name, paths) in zip(axes, result.paths.items()):
        land = LANDSCAPES.get(name) or MULTI_MINIMA[name]
        draw(ax, land, {}, title=f"{name}: distinct minima {result.distinct_minima(name)}")
        for path in paths:
            ax.plot(path[:, 0], path[:, 1], lw=0.8, color="tab:blue", alpha=0.7)
            ax.plot(path[0, 0], path[0, 1], "o", ms=3, color="tab:blue")
        for m in result.minima[name]:
            ax.plot(m["x"], m["y"], "X", ms=10, color="tab:red", mec="white")
            ax.annotate(f"{m['starts']}", (m["x"], m["y"]), textcoords="offset points", xytext=(6, 6),
                        color="tab:red", fontsize=9)
        ax.set(xlim=land.xlim, ylim=land.ylim)
    return fig


def hessian_figure(result: HessianStudy):
    """The Hessian's 7 eigenvalues at each critical point (symmetric log scale), negative ones red."""
    from esc_course.viz import new_figure

    fig, (ax,) = new_figure(size=(6.4, 3.8))
    for i, eig in enumerate(result.eigenvalues.values()):
        ax.scatter([i] * len(eig), eig, c=["tab:red" if e < 0 and abs(e) > 1e-6 else "tab:blue" for e in eig], s=18)
    ax.axhline(0, color="black", lw=0.8)
    labels = [f"{r['start']}\n{r['kind']}\nL = {r['loss']:.3f}" for r in result.rows]
    ax.set_xticks(range(len(labels)), labels, fontsize=7)
    ax.set(yscale="symlog", ylabel="Hessian eigenvalue (symlog)",
           title=f"1-2-1 tanh net: {result.count('minimum')} minima, {result.count('saddle')} saddles")
    ax.set_yscale("symlog", linthresh=1e-3)
    ax.grid(alpha=0.3)
    return fig


def step_size_contours_figure(result: StepSizeStudy):
    """One contour panel per step size with its path and its verdict in the title."""
    from esc_course.optim.landscapes import draw
    from esc_course.viz import new_figure

    fig, axes = new_figure(len(result.paths), size=(4.0, 3.8))
    for ax, (lr, path), row in zip(axes, result.paths.items(), result.rows):
        draw(ax, "bowl", {f"η = {lr:g}": path}, title=f"η = {lr:g}: {row['verdict']}")
    return fig


def step_size_loss_figure(result: StepSizeStudy):
    """f(x, y) after each step, one line per step size (log scale)."""
    from esc_course.viz import new_figure

    fig, (ax,) = new_figure(size=(5.6, 3.8))
    for lr, path in result.paths.items():
        ax.plot(values("bowl", path).numpy(), marker=".", label=f"η = {lr:g}")
    ax.set(yscale="log", xlabel="step", ylabel="f(x, y)", title="gradient descent on the bowl")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1))  # beside the axes: the lines span the whole plot
    return fig


def batch_size_figure(result: BatchSizeStudy):
    """Training loss (MSE on all samples) against updates and against samples seen, one line per batch size."""
    from esc_course.viz import new_figure

    fig, (by_step, by_sample) = new_figure(2)
    for name, c in result.curves.items():  # the start (0 steps, 0 samples) is drawn at 0.5 to show on the log axis
        by_step.plot([max(s, 0.5) for s in c["steps"]], c["loss"], marker=".", label=name)
        by_sample.plot([max(s, 0.5) for s in c["samples_seen"]], c["loss"], marker=".", label=name)
    for ax, what in ((by_step, "steps (updates)"), (by_sample, "samples seen")):
        ax.set(xscale="log", yscale="log", xlabel=what, ylabel="training loss (MSE, all samples)",
               title=f"loss against {what}")
        ax.grid(alpha=0.3)
        ax.legend(loc="lower left")
    return fig


def loss_functions_figure(*, deltas: tuple[float, ...] = (1.0,)):
    """MSE, Huber (one curve per δ in ``deltas``) and |r| against the residual; cross-entropy -log p against the
    true class's probability."""
    from esc_course.viz import new_figure

    bad = [d for d in deltas if not isinstance(d, (int, float)) or not math.isfinite(d) or d <= 0]
    if not deltas or bad:
        raise ValueError(f"deltas={deltas!r}: expected one or more positive Huber thresholds δ")
    fig, (reg, cls) = new_figure(2)
    r = torch.linspace(-3, 3, 301)
    zero = torch.zeros_like(r)
    reg.plot(r, losses.mse(r, zero, reduction="none"), label="MSE: r²")
    for delta in deltas:
        reg.plot(r, losses.huber(r, zero, delta=float(delta), reduction="none"), label=f"Huber (δ = {delta:g})")
    reg.plot(r, r.abs(), "--", label="|r|")
    reg.set(xlabel="residual r = ŷ - y", ylabel="loss", title="regression losses", ylim=(0, 4))
    p = torch.linspace(0.005, 0.995, 199)
    cls.plot(p, -torch.log(p), label="y = 1: -log p")
    cls.plot(p, -torch.log(1 - p), label="y = 0: -log(1 - p)")
    cls.set(xlabel="predicted probability p", ylabel="cross-entropy", title="(binary) cross-entropy")
    for ax in (reg, cls):
        ax.grid(alpha=0.3)
    reg.legend(fontsize=8, loc="upper center")
    cls.legend(fontsize=8, loc="upper center")
    return fig


if __name__ == "__main__":
    from esc_course.lab import main

    raise SystemExit(main("gradient_descent"))
