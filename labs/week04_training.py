"""Week 4: training neural networks: activations, initialization, normalization.

One deep MLP on the embedded digits with each activation (sigmoid, tanh, ReLU, Leaky ReLU, PReLU, ELU, Maxout):
training curves and the share of saturated and dead units per layer. The classic initialization experiment: a
10-layer network fed random data with weights from N(0, 0.01^2), N(0, 1), Xavier and He, with tanh and ReLU:
per-layer statistics of activations and gradients show which combinations vanish, saturate or explode.
Batch/layer/group norm from scratch, checked against torch.nn, and in training. Batch norm's effect on a small VGG
(Santurkar et al. 2018): larger learning rates, "noisy BN", and the smoothness of the loss along the gradient.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
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
from esc_course.scratch import norm as scratch
from esc_course.seed import seed_everything
from esc_course.smoothness import BatchNormNoise, LandscapeProbe
from esc_course.train import NonFiniteLossError, evaluate, fit

HEADLINE = "bn_accuracy"

ACTIVATION_NAMES = ("sigmoid", "tanh", "relu", "leaky_relu", "prelu", "elu", "maxout")
INIT_SCHEMES = ("normal_0.01", "normal_1", "xavier", "he")
NORMS = {  # name -> a from-scratch layer for `width` features (esc_course.scratch.norm), or None
    "none": None,
    "batch": lambda width: scratch.BatchNorm1d(width),
    "layer": lambda width: scratch.LayerNorm(width),
    "group": lambda width: scratch.GroupNorm(8, width),
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
    seed: int = 0
    device: str = "auto"
    quick: bool = False             # small, fast variant for CPU CI and weak laptops


QUICK = dict(depth=6, act_epochs=5, init_width=256, init_samples=512, init_epochs=2, norm_epochs=4,
             vgg_widths=(8, 16, 32), vgg_epochs=3, vgg_lrs=(0.03, 0.3), landscape_every=8)


def sgd(model: nn.Module, lr: float) -> torch.optim.Optimizer:
    return torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)


def train(model: nn.Module, splits, lr: float, epochs: int, device, train_data=None, on_epoch=None):
    """SGD + momentum with cross-entropy; returns (History dict or None, test accuracy or NaN if it diverged)."""
    try:
        history = fit(model, splits.train if train_data is None else train_data, splits.val, loss_fn=F.cross_entropy,
                      optimizer=sgd(model, lr), epochs=epochs, device=device, progress=False, on_epoch=on_epoch)
    except NonFiniteLossError:
        return None, math.nan
    return history.to_dict(), evaluate(model, splits.test, F.cross_entropy, device)["accuracy"]


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


def activation_study(cfg: Config, splits, device):
    """The same deep MLP and init with each activation; returns (histories, accuracy rows, per-layer unit rows)."""
    x_probe, y_probe = splits.val.x.to(device), splits.val.y.to(device)
    histories, rows, units = {}, [], []
    for name in ACTIVATION_NAMES:
        seed_everything(cfg.seed)
        model = init_weights(MLP(64, hidden=(cfg.width,) * cfg.depth, out_features=10, activation=name), cfg.act_init)
        grad_ratio = first_to_last_gradient(model.to(device), x_probe, y_probe)
        history, acc = train(model, splits, cfg.act_lr, cfg.act_epochs, device)
        stats = unit_stats(model, x_probe)
        histories[f"act_{name}"] = history or {}
        rows.append({"activation": name, "init": cfg.act_init, "init_grad_first_to_last": grad_ratio,
                     "test_accuracy": acc,
                     "final_train_loss": history["train_loss"][-1] if history else math.nan,
                     "mean_saturated": sum(s["saturated"] for s in stats) / len(stats),
                     "mean_dead": sum(s["dead"] for s in stats) / len(stats)})
        units += [{"activation": name, **s} for s in stats]
    return histories, rows, units


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


def init_study(cfg: Config, splits, device):
    """Random-data statistics for every (activation, scheme), and digits accuracy of a deep MLP from each."""
    layers, summary, hists, histories = [], [], {}, {}
    for activation in ("tanh", "relu"):
        for scheme in INIT_SCHEMES:
            rows, h = init_forward_backward(activation, scheme, cfg.init_depth, cfg.init_width, cfg.init_samples,
                                            cfg.seed)
            layers += rows
            hists[(activation, scheme)] = h
            seed_everything(cfg.seed)
            model = init_weights(MLP(64, hidden=(cfg.width,) * cfg.init_depth, out_features=10,
                                     activation=activation), scheme)
            history, acc = train(model, splits, cfg.act_lr, cfg.init_epochs, device)
            histories[f"init_{activation}_{scheme}"] = history or {}
            summary.append({"activation": activation, "init": scheme, **init_verdict(rows),
                            "test_accuracy": acc, "diverged": history is None})
    return layers, summary, hists, histories


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
    pairs = {"BatchNorm1d": (scratch.BatchNorm1d(6), nn.BatchNorm1d(6), (16, 6)),
             "BatchNorm2d": (scratch.BatchNorm2d(6), nn.BatchNorm2d(6), (8, 6, 5, 5)),
             "LayerNorm": (scratch.LayerNorm((6, 5, 5)), nn.LayerNorm((6, 5, 5)), (8, 6, 5, 5)),
             "GroupNorm": (scratch.GroupNorm(3, 6), nn.GroupNorm(3, 6), (8, 6, 5, 5))}
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
    bn = scratch.BatchNorm1d(2, eps=0.0, affine=False).train()
    return {"x": x.tolist(), "slides_mean": float(mu), "slides_std": float(sigma),
            "slides_x_hat": ((x - mu) / sigma).tolist(), "batch_norm_x_hat": bn(x).tolist(),
            "batch_norm_mean": x.mean(0).tolist(), "batch_norm_var": x.var(0, unbiased=False).tolist()}


def norm_study(cfg: Config, splits, device):
    """The deep ReLU MLP with PyTorch's default init, without and with each from-scratch norm."""
    histories, rows = {}, []
    for kind in NORMS:
        seed_everything(cfg.seed)
        model = with_norm(MLP(64, hidden=(cfg.width,) * cfg.depth, out_features=10, activation="relu",
                              batch_norm=True), kind)
        history, acc = train(model, splits, cfg.norm_lr, cfg.norm_epochs, device)
        histories[f"norm_{kind}"] = history or {}
        rows.append({"norm": kind, "test_accuracy": acc, "diverged": history is None,
                     "final_train_loss": history["train_loss"][-1] if history else math.nan})
    return histories, rows


# ---- batch norm and the loss landscape (Santurkar et al. 2018) ----------------------------------------------

def vgg_study(cfg: Config, splits, device):
    """SmallVGG without and with BN at every learning rate; landscape probes at ``landscape_lr``; noisy BN."""
    histories, rows, landscape = {}, [], {}
    for lr in sorted(set(cfg.vgg_lrs) | {cfg.landscape_lr}):
        for bn in (False, True):
            name = "bn" if bn else "plain"
            seed_everything(cfg.seed)
            model = init_weights(SmallVGG(1, 10, cfg.vgg_widths, batch_norm=bn), "he").to(device)
            probe = None
            if lr == cfg.landscape_lr:
                probe = LandscapeProbe(splits.train, model, F.cross_entropy, [s * lr for s in cfg.landscape_steps],
                                       cfg.landscape_every)
            history, acc = train(model, splits, lr, cfg.vgg_epochs, device, train_data=probe, on_epoch=probe)
            if lr == cfg.landscape_lr:
                landscape[name] = probe.rows
                histories[f"vgg_{name}"] = history or {}
            rows.append({"network": name, "lr": lr, "test_accuracy": acc, "diverged": history is None,
                         "final_train_loss": history["train_loss"][-1] if history else math.nan})
    seed_everything(cfg.seed)
    model = init_weights(SmallVGG(1, 10, cfg.vgg_widths, batch_norm=True), "he").to(device)
    with BatchNormNoise(model):
        history, acc = train(model, splits, cfg.landscape_lr, cfg.vgg_epochs, device)
    histories["vgg_noisy_bn"] = history or {}
    rows.append({"network": "noisy_bn", "lr": cfg.landscape_lr, "test_accuracy": acc, "diverged": history is None,
                 "final_train_loss": history["train_loss"][-1] if history else math.nan})
    return histories, rows, landscape


def landscape_summary(landscape: dict[str, list[dict]]) -> list[dict[str, float | str]]:
    """Mean over training of each measurement, per network."""
    keys = ("loss_range", "grad_change_max", "beta")
    return [{"network": name, **{f"mean_{k}": sum(r[k] for r in rows) / len(rows) for k in keys},
             "measurements": len(rows)} for name, rows in landscape.items() if rows]


# ---- the lab ------------------------------------------------------------------------------------------------

def run(cfg: Config, out: Path | None = None) -> LabResult:
    cfg = quick_variant(cfg, QUICK)
    seed_everything(cfg.seed)
    device = get_device(cfg.device)
    started = time.perf_counter()
    splits = loaders("digits", batch_size=cfg.batch_size, val_fraction=0.25, device=device, seed=cfg.seed)

    act_hist, act_rows, unit_rows = activation_study(cfg, splits, device)
    init_layers, init_rows, init_hists, init_hist = init_study(cfg, splits, device)
    norm_hist, norm_rows = norm_study(cfg, splits, device)
    vgg_hist, vgg_rows, landscape = vgg_study(cfg, splits, device)
    land_rows = landscape_summary(landscape)

    accuracy = ([{"experiment": "activation", "setting": r["activation"], "test_accuracy": r["test_accuracy"]}
                 for r in act_rows]
                + [{"experiment": "init", "setting": f"{r['activation']}/{r['init']}",
                    "test_accuracy": r["test_accuracy"]} for r in init_rows]
                + [{"experiment": "norm", "setting": r["norm"], "test_accuracy": r["test_accuracy"]}
                   for r in norm_rows]
                + [{"experiment": "vgg", "setting": f"{r['network']}@lr={r['lr']:g}",
                    "test_accuracy": r["test_accuracy"]} for r in vgg_rows])
    result = LabResult(
        lab="training", config=asdict(cfg), metrics=metrics(cfg, act_rows, init_rows, norm_rows, vgg_rows, land_rows),
        history={**act_hist, **init_hist, **norm_hist, **vgg_hist},
        tables={"accuracy": accuracy, "activations": act_rows, "units": unit_rows, "init": init_rows,
                "init_layers": init_layers, "norm_check": norm_check(cfg.seed), "norm": norm_rows,
                "batch_norm_2x2": [batch_norm_2x2()], "vgg": vgg_rows, "landscape": land_rows,
                "landscape_steps": [{"network": k, **r} for k, rows in landscape.items() for r in rows]},
        figures=figures(act_hist, unit_rows, init_layers, init_hists, norm_hist, vgg_rows, vgg_hist, landscape),
        device=str(device),
    )
    return finish(result, out, started)


def metrics(cfg: Config, act_rows, init_rows, norm_rows, vgg_rows, land_rows) -> dict[str, float]:
    acc = {r["activation"]: r["test_accuracy"] for r in act_rows}
    m = {f"act_{k}_accuracy": v for k, v in acc.items()}
    for r in init_rows:
        key = f"init_{r['activation']}_{r['init']}"
        m[f"{key}_last_act_std"] = r["last_act_std"]
        m[f"{key}_grad_growth"] = r["grad_growth"]
        m[f"{key}_accuracy"] = r["test_accuracy"]
    m.update({f"norm_{r['norm']}_accuracy": r["test_accuracy"] for r in norm_rows})
    at = {(r["network"], r["lr"]): r["test_accuracy"] for r in vgg_rows}
    top = max(cfg.vgg_lrs)
    m.update(plain_accuracy=at[("plain", cfg.landscape_lr)], bn_accuracy=at[("bn", cfg.landscape_lr)],
             noisy_bn_accuracy=at[("noisy_bn", cfg.landscape_lr)], plain_accuracy_at_top_lr=at[("plain", top)],
             bn_accuracy_at_top_lr=at[("bn", top)])
    for name in ("plain", "bn"):  # the largest learning rate that still reaches 90 % of the network's best
        accs = {lr: a for (n, lr), a in at.items() if n == name and not math.isnan(a)}
        best = max(accs.values(), default=math.nan)
        m[f"{name}_largest_good_lr"] = max((lr for lr, a in accs.items() if a >= 0.9 * best), default=math.nan)
    for r in land_rows:
        m.update({f"{r['network']}_{k}": v for k, v in r.items() if k.startswith("mean_")})
    return m


def figures(act_hist, unit_rows, init_layers, init_hists, norm_hist, vgg_rows, vgg_hist, landscape) -> dict:
    from esc_course.viz import history_figure

    return {
        "activation_curves": history_figure({k[4:]: v for k, v in act_hist.items()},
                                            keys=("train_loss", "val_accuracy"), title="activations"),
        "units": units_figure(unit_rows),
        "init_stats": init_stats_figure(init_layers),
        "init_histograms": init_histogram_figure(init_hists),
        "norm_curves": history_figure({k[5:]: v for k, v in norm_hist.items()}, keys=("train_loss", "val_accuracy"),
                                      title="normalization"),
        "bn_learning_rates": bn_lr_figure(vgg_rows, vgg_hist),
        "landscape": landscape_figure(landscape),
    }


def units_figure(unit_rows):
    from esc_course.viz import new_figure

    fig, axes = new_figure(2, size=(4.6, 3.4))
    for ax, key in zip(axes, ("saturated", "dead")):
        for name in ACTIVATION_NAMES:
            rows = [r for r in unit_rows if r["activation"] == name]
            ax.plot([r["layer"] for r in rows], [r[key] for r in rows], marker="o", label=name)
        ax.set(xlabel="hidden layer", ylabel=f"share {key}", ylim=(-0.02, 1.02),
               title=f"{key} units after training" if key == "dead" else "values with gain < 10% of peak")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    return fig


def init_stats_figure(init_layers):
    from esc_course.viz import new_figure

    fig, axes = new_figure(2, 2, size=(4.4, 3.2))
    for row, activation in enumerate(("tanh", "relu")):
        for col, key in enumerate(("act_std", "grad_std")):
            ax = axes[2 * row + col]
            for scheme in INIT_SCHEMES:
                rows = [r for r in init_layers if r["activation"] == activation and r["init"] == scheme]
                ax.plot([r["layer"] for r in rows], [max(r[key], 1e-30) for r in rows], marker="o", label=scheme)
            ax.set_yscale("log")
            ax.set(xlabel="layer", ylabel=key.replace("_", " "),
                   title=f"{activation}: {'activations' if key == 'act_std' else 'gradients'}")
            ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    return fig


def init_histogram_figure(init_hists):
    """One row per (activation, what), one column per init scheme; one step histogram per layer (dark = deep)."""
    from matplotlib import colormaps

    from esc_course.viz import new_figure

    fig, axes = new_figure(len(INIT_SCHEMES), 4, size=(3.0, 2.2))
    for r, (activation, what) in enumerate([("tanh", "act"), ("tanh", "grad"), ("relu", "act"), ("relu", "grad")]):
        for c, scheme in enumerate(INIT_SCHEMES):
            ax = axes[r * len(INIT_SCHEMES) + c]
            layers = init_hists[(activation, scheme)][what]
            for i, (edges, counts) in enumerate(layers):
                ax.stairs(counts / counts.sum(), edges, color=colormaps["viridis"](i / max(len(layers) - 1, 1)))
            ax.set_title(f"{activation} {scheme}: {'activations' if what == 'act' else 'gradients'}", fontsize=8)
            ax.set_yticks([])      # shares per bin; the x range is what tells vanishing from exploding
            ax.locator_params(axis="x", nbins=3)
            ax.tick_params(labelsize=6)
    return fig


def bn_lr_figure(vgg_rows, vgg_hist):
    from esc_course.viz import new_figure

    fig, axes = new_figure(2, size=(4.6, 3.4))
    for name in ("plain", "bn"):
        rows = [r for r in vgg_rows if r["network"] == name]
        axes[0].plot([r["lr"] for r in rows], [0.0 if r["diverged"] else r["test_accuracy"] for r in rows],
                     marker="o", label=name)
    noisy = [r for r in vgg_rows if r["network"] == "noisy_bn"]
    axes[0].scatter([r["lr"] for r in noisy], [r["test_accuracy"] for r in noisy], marker="*", s=120, c="k",
                    label="noisy_bn", zorder=3)
    lrs = sorted({r["lr"] for r in vgg_rows})
    axes[0].set(xscale="log", xlabel="learning rate", ylabel="test accuracy (diverged = 0)",
                title="SmallVGG: with and without BN")
    axes[0].set_xticks(lrs, [f"{lr:g}" for lr in lrs])
    axes[0].minorticks_off()
    for name, h in vgg_hist.items():
        if "train_loss" in h:
            axes[1].plot(range(1, len(h["train_loss"]) + 1), h["train_loss"], label=name[4:])
    axes[1].set(xlabel="epoch", ylabel="train loss (noisy BN: with its noise)", yscale="log",
                title="at the landscape learning rate")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return fig


def landscape_figure(landscape):
    """The paper's Figure 4: the loss range and gradient change along the gradient (bands), and beta."""
    from esc_course.viz import new_figure

    fig, axes = new_figure(3, size=(4.2, 3.4))
    for name, rows in landscape.items():
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
        ax.legend(fontsize=8)
    return fig


if __name__ == "__main__":
    from esc_course.lab import main

    raise SystemExit(main("training"))
