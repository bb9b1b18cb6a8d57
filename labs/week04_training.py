"""Week 4: training neural networks: activations, initialization, normalization.

One deep MLP on the embedded digits with each activation (sigmoid, tanh, ReLU, Leaky ReLU, PReLU, ELU, Maxout):
training curves and the share of saturated and dead units per layer. The classic initialization experiment: a
10-layer network fed random data with weights from N(0, 0.01^2), N(0, 1), Xavier and He, with tanh and ReLU:
per-layer statistics of activations and gradients show which combinations vanish, saturate or explode.
Batch/layer/group norm from scratch, checked against torch.nn, and in training. Batch norm's effect on a small VGG
(Santurkar et al. 2018): larger learning rates, "noisy BN", and the smoothness of the loss along the gradient.

Studies (each one notebook cell, each takes the data splits from one ``loaders("digits", ...)`` call):
``activation_study``, ``init_study``, ``norm_study``, ``learning_rate_study``, ``landscape_study``,
``noisy_bn_study``; ``norm_check`` and ``batch_norm_2x2`` need no data.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from esc_course.config import quick_variant
from esc_course.data.vision import loaders
from esc_course.device import get_device
from esc_course.models import MLP, Maxout, init_weights
from esc_course.models.cnn import SmallVGG
from esc_course.runs import LabResult, finish
from esc_course.scratch.norm import BatchNorm1d, BatchNorm2d, GroupNorm, LayerNorm
from esc_course.seed import seed_everything
from esc_course.smoothness import BatchNormNoise, landscape_step
from esc_course.train import NonFiniteLossError, evaluate, fit

HEADLINE = "bn_accuracy"

ACTIVATION_NAMES = ("sigmoid", "tanh", "relu", "leaky_relu", "prelu", "elu", "maxout")
INIT_SCHEMES = ("normal_0.01", "normal_1", "xavier", "he")
NORMS = {  # name -> a from-scratch layer for `width` features (esc_course.scratch.norm), or None
    "none": None,
    "batch": lambda width: BatchNorm1d(width),
    "layer": lambda width: LayerNorm(width),
    "group": lambda width: GroupNorm(8, width),
}


@dataclass
class Config:
    batch_size: int = 64            # samples per SGD step (digits, split 6:2:2)
    depth: int = 8                  # hidden layers of the MLP in the activation and normalization comparisons
    width: int = 64                 # units per hidden layer
    act_init: str = "xavier"        # init of the activation comparison (the same for every activation)
    act_lr: float = 0.02            # SGD step size (momentum 0.9) for the MLPs
    act_epochs: int = 20            # epochs of the activation comparison
    init_depth: int = 10            # layers of the random-data initialization experiment
    init_width: int = 500           # units per layer there
    init_samples: int = 1000        # random N(0, 1) inputs fed to it
    init_epochs: int = 10           # epochs of the digits MLP trained from each init (the accuracy table)
    norm_epochs: int = 20           # epochs of the normalization comparison (ReLU MLP, PyTorch's default init)
    norm_lr: float = 0.02           # SGD step size (momentum 0.9) there
    vgg_widths: tuple[int, ...] = (16, 32, 64)  # channels of SmallVGG's blocks
    vgg_epochs: int = 15            # epochs per SmallVGG run
    vgg_lrs: tuple[float, ...] = (0.01, 0.03, 0.1, 0.3, 1.0)  # SGD step sizes (momentum 0.9), with and without BN
    landscape_lr: float = 0.03      # step size of the runs whose landscape is measured (and of noisy BN)
    landscape_steps: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0)  # probe steps along the gradient, in units of the lr
    landscape_every: int = 5        # measure every this many SGD steps
    input_lrs: tuple[float, ...] = (0.003, 0.01, 0.03, 0.1, 0.3, 1.0)  # SGD step sizes, raw vs standardized inputs
    input_epochs: int = 10          # epochs per run of the input-normalization comparison (tanh MLP, 3 x 64)
    same_sign_samples: int = 256    # validation images whose per-sample gradient signs are counted
    identity_steps: int = 200       # Adam steps fitting BN's gamma and beta to the identity
    seed: int = 0
    device: str = "auto"
    quick: bool = False             # small, fast variant for CPU CI and weak laptops


QUICK = dict(depth=6, act_epochs=5, init_width=256, init_samples=512, init_epochs=2, norm_epochs=4,
             vgg_widths=(8, 16, 32), vgg_epochs=3, vgg_lrs=(0.03, 0.3), landscape_every=8,
             input_epochs=3)


# ---- one training run ---------------------------------------------------------------------------------------

@dataclass
class Run:
    """One training run: its per-epoch history and test accuracy, or where its loss became NaN/inf."""

    history: dict[str, list[float]] = field(default_factory=dict)  # History.to_dict(); {} when it diverged
    test_accuracy: float | None = None     # share of the test split; None when the run diverged
    diverged: str | None = None            # NonFiniteLossError's message when the loss became NaN/inf

    @property
    def final_train_loss(self) -> float | None:
        """The last epoch's mean training loss (cross-entropy, nats); None when the run diverged."""
        return self.history["train_loss"][-1] if self.history.get("train_loss") else None

    def row(self) -> dict:
        """The columns every study's table has: test_accuracy, final_train_loss, diverged."""
        return {"test_accuracy": self.test_accuracy, "final_train_loss": self.final_train_loss,
                "diverged": self.diverged is not None}


def number(value: float | None) -> float:
    """A table value as a metric: None (a diverged run) becomes NaN."""
    return math.nan if value is None else float(value)


def fresh_order(data, seed: int) -> None:
    """Re-seed the training loader's shuffling, so a run's batches depend on ``seed`` only, not on the runs made
    before it (re-running one notebook cell then gives the same numbers)."""
    generator = getattr(data.train, "generator", None)
    if generator is not None:
        generator.manual_seed(seed)


def train(model: nn.Module, data, *, lr: float, epochs: int, device, seed: int = 0,
          checkpoint_dir: Path | None = None) -> Run:
    """SGD + momentum 0.9 with cross-entropy on ``data.train``; validation each epoch, test accuracy at the end.
    A run whose loss becomes NaN/inf returns ``Run(diverged=<where>)`` instead of raising."""
    fresh_order(data, seed)
    try:
        history = fit(model, data.train, data.val, loss_fn=F.cross_entropy,
                      optimizer=torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9), epochs=epochs,
                      device=device, progress=False, checkpoint_dir=checkpoint_dir,
                      resume=checkpoint_dir is not None)
    except NonFiniteLossError as err:
        return Run(diverged=f"loss became {err.value} at epoch {err.epoch}, step {err.step}")
    return Run(history.to_dict(), evaluate(model, data.test, F.cross_entropy, device)["accuracy"])


def _folder(checkpoint_dir: Path | None, name: str) -> Path | None:
    return None if checkpoint_dir is None else Path(checkpoint_dir) / name


def _device(device) -> torch.device:
    return device if isinstance(device, torch.device) else get_device(device or "auto")


# ---- activations: saturated and dead units ------------------------------------------------------------------

_ACTIVATION_TYPES = (nn.Sigmoid, nn.Tanh, nn.ReLU, nn.LeakyReLU, nn.PReLU, nn.ELU, Maxout)


def _gain(act: nn.Module, z: torch.Tensor) -> torch.Tensor:
    """d act / d z per unit, (N, units): f'(z) for elementwise activations; for Maxout the sum over a unit's
    pieces (always 1: it never saturates or dies)."""
    with torch.enable_grad():
        z = z.detach().clone().requires_grad_(True)
        out = act(z)
        (g,) = torch.autograd.grad(out.sum(), z)
    return g.reshape(out.shape[0], out.shape[1], -1).sum(-1)


def _peak_gain(act: nn.Module, device) -> float:
    """The largest derivative the activation can have: 0.25 for sigmoid, 1 for tanh/ReLU/ELU, max(1, a) for PReLU."""
    if isinstance(act, Maxout):
        return 1.0
    return float(_gain(act, torch.linspace(-6, 6, 1201, device=device).reshape(-1, 1)).max())


@torch.no_grad()
def unit_stats(model: nn.Module, x: torch.Tensor) -> list[dict[str, float]]:
    """Per hidden layer: the share of (sample, unit) values whose local gain f'(z) is below 10 % of the
    activation's peak (``saturated``: gradients pass shrunk 10x or more), and the share of units with zero gain on
    every sample (``dead``: they get no gradient at all, e.g. a ReLU whose input is always negative).

    """
    inputs: list[tuple[nn.Module, torch.Tensor]] = []
    hooks = [m.register_forward_hook(lambda m, i, o: inputs.append((m, i[0].detach())))
             for m in model.modules() if isinstance(m, _ACTIVATION_TYPES)]
    was_training = model.training
    try:
        model.eval()
        model(x)
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    rows = []
    for layer, (act, z) in enumerate(inputs, start=1):
        gain = _gain(act, z)
        rows.append({"layer": layer, "saturated": float((gain < 0.1 * _peak_gain(act, z.device)).float().mean()),
                     "dead": float((gain == 0).all(dim=0).float().mean())})
    return rows


def first_to_last_gradient(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """||dL/dW|| of the first Linear layer over that of the last hidden one: far below 1 means the gradient
    vanishes on its way back (sigmoid's derivative is at most 0.25, so each layer can shrink it 4x)."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    grads = torch.autograd.grad(F.cross_entropy(model(x), y), [linears[0].weight, linears[-2].weight])
    return float(grads[0].norm() / grads[1].norm().clamp_min(1e-30))


@dataclass
class ActivationResult:
    rows: list[dict]                 # per activation: init gradient ratio, test accuracy, final loss, unit shares
    units: list[dict]                # per (activation, hidden layer): saturated and dead shares after training
    runs: dict[str, Run]             # activation -> its training run

    @property
    def histories(self) -> dict[str, dict[str, list[float]]]:
        return {name: run.history for name, run in self.runs.items()}

    def diverged(self) -> dict[str, str]:
        """activation -> where its loss became NaN/inf, for the runs that diverged."""
        return {name: run.diverged for name, run in self.runs.items() if run.diverged}


def activation_study(data, *, activations: tuple[str, ...] = ACTIVATION_NAMES, depth: int = 8, width: int = 64,
                     init: str = "xavier", lr: float = 0.02, epochs: int = 20, seed: int = 0, device=None,
                     checkpoint_dir: Path | None = None) -> ActivationResult:
    """The same deep MLP (``depth`` hidden layers of ``width``) and init with each activation, trained by SGD.

    Rows: ``init_grad_first_to_last`` (before training: ||dL/dW|| of the first layer over the last hidden one, a
    ratio), test_accuracy (share), final_train_loss (nats), mean_saturated and mean_dead (shares of values and
    units, mean over layers; ``unit_stats``). Checkpoints: ``checkpoint_dir / "act-<name>"``.
    """
    device = _device(device)
    x_probe, y_probe = data.val.x.to(device), data.val.y.to(device)
    rows, units, runs = [], [], {}
    for name in dict.fromkeys(activations):
        seed_everything(seed)
        model = init_weights(MLP(64, hidden=(width,) * depth, out_features=10, activation=name), init).to(device)
        grad_ratio = first_to_last_gradient(model, x_probe, y_probe)
        run = runs[name] = train(model, data, lr=lr, epochs=epochs, device=device, seed=seed,
                                 checkpoint_dir=_folder(checkpoint_dir, f"act-{name}"))
        stats = unit_stats(model, x_probe) if run.diverged is None else []
        rows.append({"activation": name, "init": init, "init_grad_first_to_last": grad_ratio, **run.row(),
                     "mean_saturated": sum(s["saturated"] for s in stats) / len(stats) if stats else None,
                     "mean_dead": sum(s["dead"] for s in stats) / len(stats) if stats else None})
        units += [{"activation": name, **s} for s in stats]
    return ActivationResult(rows, units, runs)


def activation_figure(result: ActivationResult):
    """Training loss and validation accuracy per epoch, one line per activation (diverged runs are left out)."""
    from esc_course.viz import history_figure

    return history_figure({k: h for k, h in result.histories.items() if h}, keys=("train_loss", "val_accuracy"),
                          title="")


def units_figure(result: ActivationResult):
    """Per hidden layer: the share of values with a small local gain, and the share of dead units."""
    from esc_course.viz import new_figure

    fig, axes = new_figure(2, size=(4.6, 3.4))
    names = list(dict.fromkeys(r["activation"] for r in result.units))
    for ax, key in zip(axes, ("saturated", "dead")):
        for name in names:
            rows = [r for r in result.units if r["activation"] == name]
            ax.plot([r["layer"] for r in rows], [r[key] for r in rows], marker="o", label=name)
        ax.set(xlabel="hidden layer", ylabel=f"share {key}", ylim=(-0.02, 1.02),
               title="dead units after training" if key == "dead" else "values with gain < 10% of peak")
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=7, loc="upper right")
    return fig


# ---- initialization: 10 layers, random data -----------------------------------------------------------------

def init_forward_backward(activation: str, scheme: str, depth: int, width: int, samples: int, seed: int,
                          bins: int = 40):
    """Feed N(0, 1) data through ``depth`` Linear+activation layers initialised by ``scheme``; backpropagate a
    random N(0, 1/samples) upstream gradient from the last layer.

    Returns per-layer rows (mean/std of the activations and of the gradients with respect to them, the share of
    saturated tanh units) and histograms {"act": [(edges, counts) per layer], "grad": [...]}.
    """
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    layers = [m for _ in range(depth) for m in (nn.Linear(width, width), nn.Tanh() if activation == "tanh"
                                                else nn.ReLU())]
    model = init_weights(nn.Sequential(*layers), scheme)
    outs: list[torch.Tensor] = []
    hooks = [m.register_forward_hook(lambda m, i, o: outs.append(o)) for m in model if not isinstance(m, nn.Linear)]
    model(torch.randn(samples, width, generator=g))
    for hk in hooks:
        hk.remove()
    for o in outs:
        o.retain_grad()
    outs[-1].backward(torch.randn(outs[-1].shape, generator=g) / math.sqrt(samples))
    rows, hists = [], {"act": [], "grad": []}
    for layer, o in enumerate(outs, start=1):
        a, da = o.detach(), o.grad
        rows.append({"activation": activation, "init": scheme, "layer": layer, "act_mean": float(a.mean()),
                     "act_std": float(a.std()), "grad_mean": float(da.mean()), "grad_std": float(da.std()),
                     "saturated": float((a.abs() > 0.95).float().mean()) if activation == "tanh" else 0.0})
        for key, t in (("act", a), ("grad", da)):
            lo, hi = float(t.min()), float(t.max())
            hi = hi if hi > lo else lo + 1e-12
            hists[key].append((torch.linspace(lo, hi, bins + 1), torch.histc(t, bins, lo, hi)))
    return rows, hists


def init_verdict(rows: list[dict]) -> dict[str, float | str]:
    """Summarise one (activation, init) run: last-layer activation std (inputs have std 1), the backward growth
    of the gradient (first-layer grad std / last-layer grad std), and a one-word reading of the two."""
    first, last = rows[0], rows[-1]
    act_std, growth = last["act_std"], first["grad_std"] / max(last["grad_std"], 1e-300)
    if act_std < 1e-3 or growth < 1e-3:
        verdict = "vanishes"
    elif last["saturated"] > 0.5:
        verdict = "saturates"      # tanh stuck at +-1: its local gradient 1 - tanh^2 is about 0
    elif act_std > 1e3 or growth > 1e3:
        verdict = "explodes"
    elif act_std < 0.1 or growth < 0.1:
        verdict = "shrinks"        # slower vanishing: a factor below 1 per layer
    elif act_std > 10 or growth > 10:
        verdict = "grows"
    else:
        verdict = "healthy"
    return {"last_act_std": act_std, "grad_growth": growth, "last_saturated": last["saturated"], "verdict": verdict}


@dataclass
class InitResult:
    rows: list[dict]      # per (activation, scheme): last_act_std, grad_growth, last_saturated, verdict, accuracy
    layers: list[dict]    # per (activation, scheme, layer): mean/std of activations and gradients, saturated share
    hists: dict[tuple[str, str], dict[str, list]]  # (activation, scheme) -> {"act"|"grad": [(edges, counts)]}
    runs: dict[str, Run]  # "<activation>_<scheme>" -> the digits MLP's training run

    def row(self, activation: str, scheme: str) -> dict:
        return next(r for r in self.rows if r["activation"] == activation and r["init"] == scheme)


def init_study(data, *, activations: tuple[str, ...] = ("tanh", "relu"), schemes: tuple[str, ...] = INIT_SCHEMES,
               depth: int = 10, width: int = 500, samples: int = 1000, mlp_width: int = 64, lr: float = 0.02,
               epochs: int = 10, seed: int = 0, device=None, checkpoint_dir: Path | None = None) -> InitResult:
    """For every (activation, scheme): ``init_forward_backward`` on random data (``depth`` layers of ``width``,
    ``samples`` inputs) and its ``init_verdict``; then a digits MLP (``depth`` hidden layers of ``mlp_width``) from
    that init trained ``epochs`` epochs (0: no training, test_accuracy None). Checkpoints:
    ``checkpoint_dir / "init-<activation>-<scheme>"``."""
    for a in activations:
        if a not in ("tanh", "relu"):
            raise ValueError(f"activations={activations!r}: the init experiment knows 'tanh' and 'relu'")
    device = _device(device)
    rows, layers, hists, runs = [], [], {}, {}
    for activation in activations:
        for scheme in schemes:
            stats, hists[(activation, scheme)] = init_forward_backward(activation, scheme, depth, width, samples,
                                                                       seed)
            layers += stats
            run = Run()
            if epochs > 0:
                seed_everything(seed)
                model = init_weights(MLP(64, hidden=(mlp_width,) * depth, out_features=10, activation=activation),
                                     scheme)
                run = train(model, data, lr=lr, epochs=epochs, device=device, seed=seed,
                            checkpoint_dir=_folder(checkpoint_dir, f"init-{activation}-{scheme}"))
            runs[f"{activation}_{scheme}"] = run
            rows.append({"activation": activation, "init": scheme, **init_verdict(stats),
                         "test_accuracy": run.test_accuracy, "diverged": run.diverged is not None})
    return InitResult(rows, layers, hists, runs)


def init_stats_figure(result: InitResult):
    """Per layer, the std of the activations and of their gradients, one line per scheme (log scale)."""
    from esc_course.viz import new_figure

    activations = list(dict.fromkeys(r["activation"] for r in result.layers))
    schemes = list(dict.fromkeys(r["init"] for r in result.layers))
    fig, axes = new_figure(2, len(activations), size=(4.4, 3.2))
    for row, activation in enumerate(activations):
        for col, key in enumerate(("act_std", "grad_std")):
            ax = axes[2 * row + col]
            for scheme in schemes:
                rows = [r for r in result.layers if r["activation"] == activation and r["init"] == scheme]
                ax.plot([r["layer"] for r in rows], [max(r[key], 1e-30) for r in rows], marker="o", label=scheme)
            ax.set_yscale("log")
            ax.set(xlabel="layer", ylabel=key.replace("_", " "),
                   title=f"{activation}: {'activations' if key == 'act_std' else 'gradients'}")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=6, loc="best")
    return fig


def init_histogram_figure(result: InitResult):
    """One row per (activation, what), one column per init scheme; one step histogram per layer, coloured by
    layer (the colour bar beside each panel: 1 = first layer)."""
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    from esc_course.viz import new_figure

    keys = [(a, s) for a, s in result.hists]
    activations = list(dict.fromkeys(a for a, _ in keys))
    schemes = list(dict.fromkeys(s for _, s in keys))
    panels = [(a, what) for a in activations for what in ("act", "grad")]
    fig, axes = new_figure(len(schemes), len(panels), size=(3.1, 2.4))
    depth = max(len(h["act"]) for h in result.hists.values())
    cmap, norm = colormaps["viridis"], Normalize(1, max(depth, 2))
    for r, (activation, what) in enumerate(panels):
        for c, scheme in enumerate(schemes):
            ax = axes[r * len(schemes) + c]
            layers = result.hists[(activation, scheme)][what]
            for i, (edges, counts) in enumerate(layers, start=1):
                ax.stairs(counts / counts.sum(), edges, color=cmap(norm(i)))
            ax.set_title(f"{activation} {scheme}: {'activations' if what == 'act' else 'gradients'}", fontsize=8)
            ax.set_xlabel("activation value" if what == "act" else "gradient value", fontsize=7)
            ax.set_ylabel("share of values", fontsize=7)
            ax.locator_params(axis="x", nbins=3)
            ax.ticklabel_format(axis="x", style="sci", scilimits=(-2, 3))
            ax.xaxis.get_offset_text().set_fontsize(6)
            ax.tick_params(labelsize=6)
            bar = fig.colorbar(ScalarMappable(norm, cmap), ax=ax, fraction=0.06, pad=0.02, ticks=[1, depth])
            bar.set_label("layer", fontsize=6, labelpad=-4)
            bar.ax.tick_params(labelsize=6)
    return fig


# ---- normalization ------------------------------------------------------------------------------------------

def with_norm(model: MLP, kind: str) -> MLP:
    """Replace the BatchNorm1d layers of ``MLP(batch_norm=True)`` by the from-scratch layer ``kind`` (or remove)."""
    if kind not in NORMS:
        raise ValueError(f"unknown norm {kind!r}; valid norms: {', '.join(NORMS)}")
    for i, m in enumerate(model):
        if isinstance(m, nn.BatchNorm1d):
            model[i] = NORMS[kind](m.num_features) if NORMS[kind] else nn.Identity()
    return model


def norm_check(seed: int = 0) -> list[dict[str, float | str]]:
    """Largest |difference| between each from-scratch layer and torch.nn's: outputs in train and eval mode after
    three training steps, input gradients, and the running statistics."""
    torch.manual_seed(seed)
    pairs = {"BatchNorm1d": (BatchNorm1d(6), nn.BatchNorm1d(6), (16, 6)),
             "BatchNorm2d": (BatchNorm2d(6), nn.BatchNorm2d(6), (8, 6, 5, 5)),
             "LayerNorm": (LayerNorm((6, 5, 5)), nn.LayerNorm((6, 5, 5)), (8, 6, 5, 5)),
             "GroupNorm": (GroupNorm(3, 6), nn.GroupNorm(3, 6), (8, 6, 5, 5))}
    rows = []
    for name, (mine, ref, shape) in pairs.items():
        with torch.no_grad():
            for p in ref.parameters():
                p.copy_(torch.randn_like(p))
        mine.load_state_dict(ref.state_dict())
        train_diff = grad_diff = 0.0
        for step in range(3):
            x = (torch.randn(shape) * (step + 2) + step).requires_grad_(True)
            xr = x.detach().clone().requires_grad_(True)
            a, b = mine.train()(x), ref.train()(xr)
            a.pow(2).sum().backward()
            b.pow(2).sum().backward()
            train_diff = max(train_diff, float((a - b).detach().abs().max()))
            grad_diff = max(grad_diff, float((x.grad - xr.grad).abs().max()))
        x = torch.randn(shape) * 3 + 1
        with torch.no_grad():
            eval_diff = float((mine.eval()(x) - ref.eval()(x)).abs().max())
        running = [float((getattr(mine, k) - getattr(ref, k)).abs().max()) for k in ("running_mean", "running_var")
                   ] if hasattr(ref, "running_mean") else [math.nan, math.nan]
        rows.append({"layer": name, "train_max_diff": train_diff, "eval_max_diff": eval_diff,
                     "grad_max_diff": grad_diff, "running_mean_max_diff": running[0],
                     "running_var_max_diff": running[1]})
    return rows


def batch_norm_2x2() -> dict[str, list[list[float]] | float]:
    """The slides' batch x = [[2, 6], [15, 1]], normalised two ways.

    The slides take one mean and the unbiased (n - 1) std over all four numbers: mu = 6, sigma = 6.37704. Batch
    norm (training mode) takes one mean and the biased (1/m) variance per feature (column) over the batch.
    """
    x = torch.tensor([[2.0, 6.0], [15.0, 1.0]])
    mu, sigma = x.mean(), x.std()  # all four values, n - 1
    bn = BatchNorm1d(2, eps=0.0, affine=False).train()
    return {"x": x.tolist(), "slides_mean": float(mu), "slides_std": float(sigma),
            "slides_x_hat": ((x - mu) / sigma).tolist(), "batch_norm_x_hat": bn(x).tolist(),
            "batch_norm_mean": x.mean(0).tolist(), "batch_norm_var": x.var(0, unbiased=False).tolist()}


@dataclass
class NormResult:
    rows: list[dict]        # per norm: test accuracy, final train loss, diverged
    runs: dict[str, Run]    # norm -> its training run

    @property
    def histories(self) -> dict[str, dict[str, list[float]]]:
        return {name: run.history for name, run in self.runs.items()}

    def accuracy(self, kind: str) -> float:
        return number(self.runs[kind].test_accuracy)


def norm_study(data, *, norms: tuple[str, ...] = tuple(NORMS), depth: int = 8, width: int = 64, lr: float = 0.02,
               epochs: int = 20, seed: int = 0, device=None, checkpoint_dir: Path | None = None) -> NormResult:
    """The deep ReLU MLP with PyTorch's default init, without and with each from-scratch norm, trained by SGD.
    Rows: test_accuracy (share), final_train_loss (nats), diverged. Checkpoints: ``checkpoint_dir / "norm-<kind>"``.
    """
    device = _device(device)
    rows, runs = [], {}
    for kind in dict.fromkeys(norms):
        seed_everything(seed)
        model = with_norm(MLP(64, hidden=(width,) * depth, out_features=10, activation="relu", batch_norm=True),
                          kind)
        run = runs[kind] = train(model, data, lr=lr, epochs=epochs, device=device, seed=seed,
                                 checkpoint_dir=_folder(checkpoint_dir, f"norm-{kind}"))
        rows.append({"norm": kind, **run.row()})
    return NormResult(rows, runs)


def norm_figure(result: NormResult):
    """Training loss and validation accuracy per epoch, one line per norm."""
    from esc_course.viz import history_figure

    return history_figure({k: h for k, h in result.histories.items() if h}, keys=("train_loss", "val_accuracy"),
                          title="")


# ---- input normalization and zero-centred activations -------------------------------------------------------

@dataclass
class LrSweep:
    """Two kinds of run at each learning rate (raw vs standardized inputs; plain vs BN networks)."""

    rows: list[dict]                    # per (kind, lr): test accuracy, final train loss, diverged
    runs: dict[tuple[str, float], Run]  # (kind, lr) -> its run

    def accuracy(self, kind: str, lr: float) -> float:
        """Test accuracy; NaN for a run that diverged."""
        return number(self.runs[(kind, lr)].test_accuracy)

    def largest_good_lr(self, kind: str) -> float:
        """The largest learning rate whose run did not diverge and reached 90 % of the kind's best accuracy
        (NaN if all diverged)."""
        accs = {lr: a for (k, lr), run in self.runs.items() if k == kind
                and not math.isnan(a := number(run.test_accuracy))}
        best = max(accs.values(), default=math.nan)
        return max((lr for lr, a in accs.items() if a >= 0.9 * best), default=math.nan)


def input_normalization_study(raw, standardized, *, lrs: tuple[float, ...] = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3),
                              depth: int = 3, width: int = 64, epochs: int = 10, seed: int = 0, device=None
                              ) -> LrSweep:
    """The same tanh MLP (``depth`` hidden layers of ``width``, Xavier init, the same seed) trained by SGD with
    momentum 0.9 on ``raw`` pixels (the digits' intensities scaled to [0, 1]: all >= 0, mean about 0.3) and on
    ``standardized`` ones (zero mean, unit variance per channel), at each step size in ``lrs``. Rows:
    test_accuracy (share; None if diverged), final_train_loss (nats), diverged. No checkpoints."""
    if not lrs or any(not lr > 0 for lr in lrs):
        raise ValueError(f"lrs={lrs!r}: give one or more positive learning rates")
    device = _device(device)
    rows, runs = [], {}
    for lr in sorted(set(lrs)):
        for name, data in (("raw", raw), ("standardized", standardized)):
            seed_everything(seed)
            model = init_weights(MLP(64, hidden=(width,) * depth, out_features=10, activation="tanh"),
                                 "xavier").to(device)
            run = runs[(name, lr)] = train(model, data, lr=lr, epochs=epochs, device=device, seed=seed)
            rows.append({"inputs": name, "lr": lr, **run.row()})
    return LrSweep(rows, runs)


def input_normalization_figure(result: LrSweep):
    """Left: test accuracy against the learning rate (diverged = 0). Right: training loss per epoch at each lr
    (colour = learning rate; solid = standardized, dashed = raw)."""
    return lr_runs_figure(result, ("raw", "standardized"), "raw vs standardized inputs")


def lr_runs_figure(result, names: tuple[str, str], title: str):
    """Two kinds of run (``names``: dashed, then solid) at each learning rate: the test accuracy against the
    learning rate (diverged = 0), and every run's training loss per epoch (colour = learning rate).
    ``result.runs`` maps (name, lr) to a Run; ``result.accuracy(name, lr)`` reads its test accuracy."""
    from matplotlib import colormaps

    from esc_course.viz import new_figure

    fig, axes = new_figure(2, size=(4.6, 3.4))
    lrs = sorted({lr for _, lr in result.runs})
    for name, marker in zip(names, ("o", "s")):
        axes[0].plot(lrs, [0.0 if result.runs[(name, lr)].diverged else result.accuracy(name, lr) for lr in lrs],
                     marker=marker, label=name)
    axes[0].set(xscale="log", xlabel="learning rate", ylabel="test accuracy (diverged = 0)", ylim=(-0.02, 1.02),
                title=title)
    axes[0].set_xticks(lrs, [f"{lr:g}" for lr in lrs])
    axes[0].minorticks_off()
    axes[0].legend(fontsize=8, loc="lower left")
    colours = colormaps["tab10"]   # distinct colours, one per learning rate
    for (name, lr), run in result.runs.items():
        losses = run.history.get("train_loss")
        if losses:
            axes[1].plot(range(1, len(losses) + 1), losses, ls="-" if name == names[1] else "--",
                         color=colours(lrs.index(lr) % 10), label=f"{name} lr={lr:g}")
    axes[1].set(xlabel="epoch", ylabel="train loss", yscale="log", title="training loss per run")
    axes[1].legend(fontsize=6, loc="center left", bbox_to_anchor=(1.0, 0.5))
    for ax in axes:
        ax.grid(alpha=0.3)
    return fig


def same_sign_share(model: nn.Module, layer: int, x: torch.Tensor, y: torch.Tensor) -> float:
    """Share of (sample, unit) pairs whose per-sample weight gradient row dL/dW[unit, :] of Linear layer
    ``layer`` (0 = first) has one sign in every entry. dL/dW[i, j] = delta_i * h_j for one sample, so the row
    shares a sign exactly when the layer's inputs h all do: always after a sigmoid (h > 0), the zig-zag path of
    the slides. Rows that are all zero (delta_i = 0) are left out."""
    linear = [m for m in model.modules() if isinstance(m, nn.Linear)][layer]
    seen = {}
    def record(module, inputs, out):
        seen["h"] = inputs[0]
        out.register_hook(lambda grad: seen.update(delta=grad))

    hooks = [linear.register_forward_hook(record)]
    try:
        F.cross_entropy(model(x), y, reduction="sum").backward()  # sum: row n of delta is sample n's own gradient
    finally:
        for h in hooks:
            h.remove()
        model.zero_grad(set_to_none=True)
    g = seen["delta"].detach()[:, :, None] * seen["h"].detach()[:, None, :]   # (N, out, in): per-sample dL/dW
    live = (g != 0).any(-1)
    same = ((g >= 0).all(-1) | (g <= 0).all(-1)) & live
    return float(same.sum() / live.sum().clamp_min(1))


@dataclass
class SameSignResult:
    rows: list[dict]   # per (activation, inputs, layer): share of per-sample gradient rows with a single sign


def same_sign_study(raw, standardized, *, activations: tuple[str, ...] = ("sigmoid", "tanh"), depth: int = 3,
                    width: int = 64, samples: int = 256, seed: int = 0, device=None) -> SameSignResult:
    """Before training, ``same_sign_share`` (a share) of the first Linear layer (its inputs are the pixels: raw
    ones are all >= 0) and of the second (its inputs are the first activation's outputs: a sigmoid's are all > 0)
    of an MLP per activation, on ``samples`` validation images of ``raw`` and of ``standardized``."""
    device = _device(device)
    rows = []
    for act in activations:
        for name, data in (("raw", raw), ("standardized", standardized)):
            seed_everything(seed)
            model = init_weights(MLP(64, hidden=(width,) * depth, out_features=10, activation=act),
                                 "xavier").to(device)
            x, y = data.val.x[:samples].to(device), data.val.y[:samples].to(device)
            rows.append({"activation": act, "inputs": name, "first_layer_same_sign": same_sign_share(model, 0, x, y),
                         "second_layer_same_sign": same_sign_share(model, 1, x, y)})
    return SameSignResult(rows)


# ---- batch norm's gamma and beta can undo it ----------------------------------------------------------------

@dataclass
class BNIdentityResult:
    gamma: list[float]        # learned scale per feature
    beta: list[float]         # learned shift per feature
    target_std: list[float]   # the input's std per feature (what gamma must become for the identity)
    target_mean: list[float]  # the input's mean per feature (what beta must become)
    losses: list[float]       # mean squared error ||BN(x) - x||^2 per step

    @property
    def max_error(self) -> float:
        """Largest |gamma - std| or |beta - mean| over the features."""
        return max(abs(a - b) for a, b in zip(self.gamma + self.beta, self.target_std + self.target_mean))


def bn_identity_study(*, means: tuple[float, ...] = (3.0, -2.0, 0.5), stds: tuple[float, ...] = (2.0, 0.5, 4.0),
                      batch: int = 256, steps: int = 200, lr: float = 0.1, seed: int = 0) -> BNIdentityResult:
    """A from-scratch BatchNorm1d alone, fit by Adam (step size ``lr``) to output its own input (y = x) on fresh
    batches of ``batch`` samples of N(means, stds^2) per feature. Normalising removes the mean and scale; the
    identity needs gamma = std and beta = mean, which training finds: BN can represent "no normalization"."""
    if len(means) != len(stds) or not means or any(not s > 0 for s in stds):
        raise ValueError(f"means={means!r}, stds={stds!r}: give equally many means and positive stds")
    g = torch.Generator().manual_seed(seed)
    bn = BatchNorm1d(len(means)).train()
    opt = torch.optim.Adam(bn.parameters(), lr=lr)
    mu, sd = torch.tensor(means), torch.tensor(stds)
    losses = []
    for _ in range(steps):
        x = mu + sd * torch.randn(batch, len(means), generator=g)
        loss = F.mse_loss(bn(x), x)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return BNIdentityResult(bn.weight.detach().tolist(), bn.bias.detach().tolist(), list(stds), list(means), losses)


def bn_identity_figure(result: BNIdentityResult):
    """The squared error of BN(x) against x per step (log scale)."""
    from esc_course.viz import new_figure

    fig, (ax,) = new_figure(size=(4.6, 3.4))
    ax.plot(range(1, len(result.losses) + 1), result.losses)
    ax.set(xlabel="Adam step", ylabel="mean squared error of BN(x) vs x", yscale="log",
           title="gamma, beta learn the identity")
    ax.grid(alpha=0.3)
    return fig


# ---- batch norm and the loss landscape (Santurkar et al. 2018) ----------------------------------------------

def small_vgg(widths: tuple[int, ...], batch_norm: bool, seed: int, device) -> nn.Module:
    """The SmallVGG of these studies for digits (1 channel, 10 classes), He-initialised after seeding."""
    seed_everything(seed)
    return init_weights(SmallVGG(1, 10, widths, batch_norm=batch_norm), "he").to(device)


def network_name(batch_norm: bool) -> str:
    return "bn" if batch_norm else "plain"


def learning_rate_study(data, *, lrs: tuple[float, ...] = (0.01, 0.03, 0.1, 0.3, 1.0),
                        widths: tuple[int, ...] = (16, 32, 64), epochs: int = 15, seed: int = 0, device=None,
                        checkpoint_dir: Path | None = None) -> LrSweep:
    """SmallVGG without (``plain``) and with BN (``bn``) at each SGD step size in ``lrs`` (momentum 0.9, He init).
    Rows: test_accuracy (share; None if diverged), final_train_loss (nats), diverged. Checkpoints:
    ``checkpoint_dir / "lr-<network>-<lr>"``."""
    if not lrs or any(not lr > 0 for lr in lrs):
        raise ValueError(f"lrs={lrs!r}: give one or more positive learning rates")
    device = _device(device)
    rows, runs = [], {}
    for lr in sorted(set(lrs)):
        for bn in (False, True):
            name = network_name(bn)
            model = small_vgg(widths, bn, seed, device)
            run = runs[(name, lr)] = train(model, data, lr=lr, epochs=epochs, device=device, seed=seed,
                                           checkpoint_dir=_folder(checkpoint_dir, f"lr-{name}-{lr:g}"))
            rows.append({"network": name, "lr": lr, **run.row()})
    return LrSweep(rows, runs)


def learning_rate_figure(result: LrSweep):
    """Left: test accuracy against the learning rate (diverged = 0). Right: training loss per epoch of every run
    (colour = learning rate; solid = BN, dashed = plain)."""
    return lr_runs_figure(result, ("plain", "bn"), "SmallVGG: accuracy vs learning rate")


@dataclass
class MeasuredRun:
    run: Run
    measurements: list[dict]   # one landscape_step row per probe, with its global "step"


def train_measuring(model: nn.Module, data, *, lr: float, epochs: int, step_sizes: list[float], every: int,
                    device, seed: int = 0) -> MeasuredRun:
    """The plain SGD loop, written out, with Santurkar et al.'s measurement made explicitly every ``every`` steps:
    at theta_t, on the batch about to be trained on, before the optimizer steps (``landscape_step``; it leaves
    the model as it found it). Returns the run and its measurements."""
    if every < 1:
        raise ValueError(f"every must be >= 1, got {every}")
    fresh_order(data, seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    history: dict[str, list[float]] = {"train_loss": [], "val_loss": [], "val_accuracy": []}
    measurements, step = [], 0
    for epoch in range(1, epochs + 1):
        model.train()
        total, count = torch.zeros((), device=device), 0
        for x, y in data.train:
            x, y = x.to(device), y.to(device)
            if step % every == 0:
                measurements.append({"step": step, **landscape_step(model, F.cross_entropy, x, y, step_sizes)})
            loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total, count, step = total + loss.detach() * len(y), count + len(y), step + 1
        train_loss = float(total) / count       # one host sync per epoch
        if not math.isfinite(train_loss):
            return MeasuredRun(Run(diverged=f"loss became {train_loss} in epoch {epoch}"), measurements)
        val = evaluate(model, data.val, F.cross_entropy, device)
        history["train_loss"].append(train_loss)
        history["val_loss"].append(val["loss"])
        history["val_accuracy"].append(val["accuracy"])
    return MeasuredRun(Run(history, evaluate(model, data.test, F.cross_entropy, device)["accuracy"]), measurements)


LANDSCAPE_KEYS = ("loss_range", "grad_change_max", "beta")


@dataclass
class LandscapeResult:
    lr: float
    steps: dict[str, list[dict]]    # "plain" | "bn" -> one measurement row per probe (landscape_step + "step")
    runs: dict[str, Run]            # "plain" | "bn" -> its run

    @property
    def rows(self) -> list[dict]:
        """Per network: the run's columns and the mean over training of each measurement."""
        return [{"network": name, "lr": self.lr, **self.runs[name].row(),
                 **{f"mean_{k}": self.mean(name, k) for k in LANDSCAPE_KEYS}, "measurements": len(rows)}
                for name, rows in self.steps.items()]

    def mean(self, network: str, key: str) -> float:
        """Mean over training of measurement ``key`` (loss_range in nats, grad_change_max an l2 norm, beta)."""
        rows = self.steps[network]
        return sum(r[key] for r in rows) / len(rows) if rows else math.nan


def landscape_study(data, *, lr: float = 0.03, step_sizes: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0),
                    every: int = 5, widths: tuple[int, ...] = (16, 32, 64), epochs: int = 15, seed: int = 0,
                    device=None) -> LandscapeResult:
    """SmallVGG without and with BN trained at ``lr`` while the loss landscape is measured every ``every`` steps
    along the gradient at step sizes ``step_sizes`` (in units of ``lr``): the loss range (nats), the l2 change of
    the gradient, and the effective beta-smoothness (their ratio to the distance moved). These runs are the
    written-out loop of ``train_measuring``; they keep no checkpoints."""
    device = _device(device)
    steps, runs = {}, {}
    for bn in (False, True):
        name = network_name(bn)
        model = small_vgg(widths, bn, seed, device)
        measured = train_measuring(model, data, lr=lr, epochs=epochs, every=every, device=device,
                                   step_sizes=[s * lr for s in step_sizes], seed=seed)
        runs[name], steps[name] = measured.run, measured.measurements
    return LandscapeResult(lr, steps, runs)


def landscape_figure(result: LandscapeResult):
    """The paper's Figure 4: the loss range and gradient change along the gradient (bands), and beta."""
    from esc_course.viz import new_figure

    fig, axes = new_figure(3, size=(4.2, 3.4))
    for name, rows in result.steps.items():
        steps = [r["step"] for r in rows]
        band = axes[0].fill_between(steps, [r["loss_min"] for r in rows], [r["loss_max"] for r in rows],
                                    alpha=0.4, label=name)
        axes[1].fill_between(steps, [r["grad_change_min"] for r in rows], [r["grad_change_max"] for r in rows],
                             alpha=0.4, color=band.get_facecolor(), label=name)
        axes[2].plot(steps, [r["beta"] for r in rows], label=name)
    titles = ("loss landscape", "gradient predictiveness", "effective beta-smoothness")
    ylabels = ("loss along the gradient", "l2 change of the gradient", "max grad change / distance")
    for ax, title, ylabel in zip(axes, titles, ylabels):
        ax.set(xlabel="training step", ylabel=ylabel, title=title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="upper right")
    return fig


@dataclass
class NoisyBNResult:
    lr: float
    runs: dict[str, Run]    # "bn" | "noisy_bn" -> its run
    noise: dict[str, float] = field(default_factory=dict)  # BatchNormNoise's mean, scale, std

    @property
    def rows(self) -> list[dict]:
        return [{"network": name, "lr": self.lr, **run.row(), **(self.noise if name == "noisy_bn" else {})}
                for name, run in self.runs.items()]


def noisy_bn_study(data, *, lr: float = 0.03, mean: float = 0.5, scale: float = 0.5, std: float = 0.1,
                   widths: tuple[int, ...] = (16, 32, 64), epochs: int = 15, seed: int = 0, device=None,
                   checkpoint_dir: Path | None = None) -> NoisyBNResult:
    """SmallVGG with BN, and with BN followed by Santurkar et al.'s noise (``BatchNormNoise(mean, scale, std)``:
    shifted, rescaled outputs drawn anew every step), both trained at ``lr``. Rows: test_accuracy (share),
    final_train_loss (nats; noisy BN's includes its noise), diverged. Checkpoints: ``checkpoint_dir / "bn-clean"``,
    ``checkpoint_dir / "bn-noisy"``."""
    device = _device(device)
    runs = {}
    for name in ("bn", "noisy_bn"):
        model = small_vgg(widths, True, seed, device)
        folder = _folder(checkpoint_dir, "bn-clean" if name == "bn" else "bn-noisy")
        if name == "bn":
            runs[name] = train(model, data, lr=lr, epochs=epochs, device=device, seed=seed, checkpoint_dir=folder)
            continue
        with BatchNormNoise(model, mean=mean, scale=scale, std=std):
            runs[name] = train(model, data, lr=lr, epochs=epochs, device=device, seed=seed, checkpoint_dir=folder)
    return NoisyBNResult(lr, runs, {"noise_mean": mean, "noise_scale": scale, "noise_std": std})


def noisy_bn_figure(result: NoisyBNResult):
    """Training loss and validation accuracy per epoch of BN and noisy BN."""
    from esc_course.viz import history_figure

    return history_figure({k: r.history for k, r in result.runs.items() if r.history},
                          keys=("train_loss", "val_accuracy"), title="")


# ---- the lab ------------------------------------------------------------------------------------------------

def run(cfg: Config, out: Path | None = None) -> LabResult:
    cfg = quick_variant(cfg, QUICK)
    seed_everything(cfg.seed)
    device = get_device(cfg.device)
    started = time.perf_counter()
    ckpt = None if out is None else Path(out) / "checkpoints"
    digits = loaders("digits", batch_size=cfg.batch_size, val_fraction=0.25, device=device, seed=cfg.seed)
    common = dict(seed=cfg.seed, device=device)
    act = activation_study(digits, depth=cfg.depth, width=cfg.width, init=cfg.act_init, lr=cfg.act_lr,
                           epochs=cfg.act_epochs, checkpoint_dir=ckpt, **common)
    init = init_study(digits, depth=cfg.init_depth, width=cfg.init_width, samples=cfg.init_samples,
                      mlp_width=cfg.width, lr=cfg.act_lr, epochs=cfg.init_epochs, checkpoint_dir=ckpt, **common)
    norm = norm_study(digits, depth=cfg.depth, width=cfg.width, lr=cfg.norm_lr, epochs=cfg.norm_epochs,
                      checkpoint_dir=ckpt, **common)
    lrs = learning_rate_study(digits, lrs=tuple(sorted(set(cfg.vgg_lrs) | {cfg.landscape_lr})),
                              widths=cfg.vgg_widths, epochs=cfg.vgg_epochs, checkpoint_dir=ckpt, **common)
    land = landscape_study(digits, lr=cfg.landscape_lr, step_sizes=cfg.landscape_steps, every=cfg.landscape_every,
                           widths=cfg.vgg_widths, epochs=cfg.vgg_epochs, **common)
    noisy = noisy_bn_study(digits, lr=cfg.landscape_lr, widths=cfg.vgg_widths, epochs=cfg.vgg_epochs,
                           checkpoint_dir=ckpt, **common)
    raw = loaders("digits", batch_size=cfg.batch_size, val_fraction=0.25, device=device, seed=cfg.seed,
                  normalize=False)
    inputs = input_normalization_study(raw, digits, lrs=cfg.input_lrs, epochs=cfg.input_epochs, **common)
    signs = same_sign_study(raw, digits, samples=cfg.same_sign_samples, **common)
    identity = bn_identity_study(steps=cfg.identity_steps, seed=cfg.seed)
    vgg_rows = lrs.rows + [r for r in noisy.rows if r["network"] == "noisy_bn"]
    accuracy = ([{"experiment": "activation", "setting": r["activation"], "test_accuracy": r["test_accuracy"]}
                 for r in act.rows]
                + [{"experiment": "init", "setting": f"{r['activation']}/{r['init']}",
                    "test_accuracy": r["test_accuracy"]} for r in init.rows]
                + [{"experiment": "norm", "setting": r["norm"], "test_accuracy": r["test_accuracy"]} for r in norm.rows]
                + [{"experiment": "vgg", "setting": f"{r['network']}@lr={r['lr']:g}",
                    "test_accuracy": r["test_accuracy"]} for r in vgg_rows])
    history = {**{f"act_{k}": h for k, h in act.histories.items()},
               **{f"init_{k}": r.history for k, r in init.runs.items()},
               **{f"norm_{k}": h for k, h in norm.histories.items()},
               **{f"vgg_{k}": r.history for k, r in land.runs.items()},
               "vgg_noisy_bn": noisy.runs["noisy_bn"].history}
    result = LabResult(
        lab="training", config=asdict(cfg), metrics={**metrics(cfg, act, init, norm, lrs, land, noisy),
                                               **new_metrics(inputs, signs, identity)},
        history=history,
        tables={"accuracy": accuracy, "activations": act.rows, "units": act.units, "init": init.rows,
                "init_layers": init.layers, "norm_check": norm_check(cfg.seed), "norm": norm.rows,
                "batch_norm_2x2": [batch_norm_2x2()], "vgg": vgg_rows, "landscape": land.rows,
                "input_normalization": inputs.rows, "same_sign": signs.rows,
                "bn_identity": [{"feature": i, "gamma": g, "target_std": sd, "beta": b, "target_mean": mu}
                                for i, (g, sd, b, mu) in enumerate(zip(identity.gamma, identity.target_std,
                                                                       identity.beta, identity.target_mean))],
                "landscape_steps": [{"network": k, **r} for k, rows in land.steps.items() for r in rows]},
        figures={"activation_curves": activation_figure(act), "units": units_figure(act),
                 "init_stats": init_stats_figure(init), "init_histograms": init_histogram_figure(init),
                 "norm_curves": norm_figure(norm), "bn_learning_rates": learning_rate_figure(lrs),
                 "landscape": landscape_figure(land), "noisy_bn": noisy_bn_figure(noisy),
                 "input_normalization": input_normalization_figure(inputs), "bn_identity": bn_identity_figure(identity)},
        captions={
            "activation_curves": f"Training loss and validation accuracy of a {cfg.depth}-layer MLP per activation.",
            "units": "Per hidden layer after training: values with a small local gain, and dead units.",
            "init_stats": f"Std of activations and gradients per layer of a {cfg.init_depth}-layer net on random "
                          "data, per init.",
            "init_histograms": "Histograms of activations and gradients per layer (colour = layer) for each init.",
            "norm_curves": "Training curves of the deep ReLU MLP without and with each from-scratch norm.",
            "bn_learning_rates": "SmallVGG's test accuracy and training loss at each learning rate, without and "
                                 "with BN.",
            "landscape": f"Loss range, gradient change and beta along the gradient during training at lr "
                         f"{cfg.landscape_lr:g}.",
            "noisy_bn": "Training curves of BN and of BN with Santurkar et al.'s noise after every BN layer.",
            "input_normalization": "Test accuracy per learning rate and learning curves of one tanh MLP on raw "
                                   "and on standardized digits.",
            "bn_identity": "Squared error of a lone batch-norm layer fit to output its input: gamma and beta "
                           "learn the std and mean.",
            "same_sign": "Share of per-sample weight-gradient rows with a single sign, per activation, inputs "
                         "and layer.",
            "activations": "Per activation: gradient ratio before training, test accuracy, saturated and dead "
                           "shares.",
            "init": "Per (activation, init): last-layer activation std, gradient growth, verdict, test accuracy.",
            "norm": "Test accuracy of the deep ReLU MLP per normalization.",
            "vgg": "SmallVGG's test accuracy per learning rate, without and with BN, and noisy BN.",
            "accuracy": "Every experiment's final test accuracy.",
        },
        device=str(device),
    )
    return finish(result, out, started)


def metrics(cfg: Config, act: ActivationResult, init: InitResult, norm: NormResult, lrs: LrSweep,
            land: LandscapeResult, noisy: NoisyBNResult) -> dict[str, float]:
    m = {f"act_{r['activation']}_accuracy": number(r["test_accuracy"]) for r in act.rows}
    for r in init.rows:
        key = f"init_{r['activation']}_{r['init']}"
        m[f"{key}_last_act_std"] = r["last_act_std"]
        m[f"{key}_grad_growth"] = r["grad_growth"]
        m[f"{key}_accuracy"] = number(r["test_accuracy"])
    m.update({f"norm_{r['norm']}_accuracy": number(r["test_accuracy"]) for r in norm.rows})
    top = max(cfg.vgg_lrs)
    m.update(plain_accuracy=lrs.accuracy("plain", cfg.landscape_lr), bn_accuracy=lrs.accuracy("bn", cfg.landscape_lr),
             noisy_bn_accuracy=number(noisy.runs["noisy_bn"].test_accuracy),
             plain_accuracy_at_top_lr=lrs.accuracy("plain", top), bn_accuracy_at_top_lr=lrs.accuracy("bn", top))
    for name in ("plain", "bn"):
        m[f"{name}_largest_good_lr"] = lrs.largest_good_lr(name)
    for name in land.steps:
        m.update({f"{name}_mean_{k}": land.mean(name, k) for k in LANDSCAPE_KEYS})
    return m


def new_metrics(inputs: LrSweep, signs: SameSignResult, identity: BNIdentityResult
                ) -> dict[str, float]:
    """The metrics of issue 18's input-normalization, same-sign and BN-identity studies."""
    m = {f"{name}_input_largest_stable_lr": inputs.largest_good_lr(name) for name in ("raw", "standardized")}
    for r in signs.rows:
        key = f"{r['activation']}_{r['inputs']}"
        m[f"{key}_first_layer_same_sign"] = r["first_layer_same_sign"]
        m[f"{key}_second_layer_same_sign"] = r["second_layer_same_sign"]
    m.update(bn_identity_max_error=identity.max_error, bn_identity_final_mse=identity.losses[-1])
    return m


if __name__ == "__main__":
    from esc_course.lab import main

    raise SystemExit(main("training"))
