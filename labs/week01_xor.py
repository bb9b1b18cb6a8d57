"""Week 1: the XOR problem and backpropagation.

A single-layer perceptron draws one straight line, so it can get at most 3 of XOR's 4 points right; one hidden
layer bends the boundary and solves it. Backpropagation is then done by hand with a scalar autograd engine
(esc_course.scratch.autograd.Value), checked on the slides' example f = (x + y) z.

Each experiment is a study function (``model_study``, ``restart_study``, ``value_mlp_study``) that a notebook cell
calls with its settings as keyword arguments and the XOR points as data; each returns a dataclass that its figure
function takes. ``run`` calls them all with a Config's values. ``build_model`` and ``evaluate_weights`` are the
organisers' re-evaluation protocol.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from esc_course.checkpoint import save_weights
from esc_course.config import quick_variant
from esc_course.data import TensorLoader
from esc_course.data.heldout import load_heldout
from esc_course.data.toy import xor
from esc_course.device import get_device
from esc_course.models import MLP, count_parameters
from esc_course.models.activations import activation_curves
from esc_course.runs import LabResult, finish
from esc_course.scratch.autograd import Value, ValueMLP, train_value_mlp
from esc_course.seed import seed_everything
from esc_course.train import evaluate, fit

HEADLINE = "mlp_accuracy"


@dataclass
class Config:
    hidden: int = 8             # hidden units of the wider MLP (the narrow one is always 2-2-1)
    activation: str = "tanh"    # hidden activation, any name in esc_course.models.ACTIVATIONS
    lr: float = 0.5             # SGD step size
    momentum: float = 0.9       # SGD momentum
    epochs: int = 1000          # full-batch steps: XOR has 4 points, so one step per epoch
    restarts: int = 10          # random initialisations of the 2-2-1 net, to show how often it gets stuck
    value_steps: int = 500      # gradient-descent steps of the from-scratch Value MLP
    ua_widths: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64, 128, 256)  # hidden units of the one-hidden-layer nets
    ua_steps: int = 2000        # full-batch Adam steps of each universal-approximation fit
    ua_points: int = 100        # points on [-1, 1] the nets are fitted to
    seed: int = 0
    device: str = "auto"
    quick: bool = False         # small, fast variant for CPU CI and weak laptops


QUICK = dict(epochs=300, restarts=5, value_steps=150, ua_widths=(1, 2, 4, 8, 16, 32, 64), ua_steps=300)


def bce_logits(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy on a single logit per sample: out (N, 1), y (N,) in {0, 1}."""
    return F.binary_cross_entropy_with_logits(out.squeeze(-1), y.float())


def subfolder(checkpoint_dir: Path | None, name: str) -> Path | None:
    """The checkpoint folder of one experiment's fit (stable across runs), or None without a checkpoint_dir."""
    return None if checkpoint_dir is None else Path(checkpoint_dir) / name


def _check_positive(name: str, value, least: int = 1) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < least:
        raise ValueError(f"{name}={value!r}: expected an integer >= {least}")


def train_xor(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, lr: float, momentum: float, epochs: int,
              device: torch.device | str = "cpu", checkpoint_dir: Path | None = None) -> dict:
    """Full-batch SGD with momentum on the points ``x`` (N, 2), ``y`` (N,); one step per epoch.

    Returns one table row: final accuracy (share of points right), final loss (binary cross-entropy, nats) and the
    probability of class 1 the model gives each point, with the history under "history"."""
    data = TensorLoader(x, y, batch_size=len(x), shuffle=False, device=device)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    history = fit(model, data, loss_fn=bce_logits, optimizer=opt, epochs=epochs, device=device, progress=False,
                  checkpoint_dir=checkpoint_dir, resume=checkpoint_dir is not None)
    final = evaluate(model, data, bce_logits, device)
    with torch.no_grad():
        p = torch.sigmoid(model(x.to(device)).squeeze(-1)).cpu()
    return {"accuracy": final["accuracy"], "points_right": round(final["accuracy"] * len(x)),
            "final_loss": final["loss"], "p_min": float(p.min()), "p_max": float(p.max()),
            "history": history.to_dict()}


def _row(trained: dict, **first) -> dict:
    return {**first, **{k: v for k, v in trained.items() if k != "history"}}


# ------------------------------------------------------------------------------------ perceptron vs MLP
@dataclass
class ModelStudy:
    """The perceptron, the 2-2-1 MLP and the wider MLP trained alike on the same points."""

    rows: list[dict]                          # one per model: params, accuracy, points_right, final_loss, p_min/max
    histories: dict[str, dict]                # model name -> History.to_dict() (train_loss, train_accuracy per epoch)
    models: dict[str, nn.Module]              # the trained models, by name
    x: torch.Tensor                           # (N, 2) the points trained on
    y: torch.Tensor                           # (N,) their labels

    def row(self, name: str) -> dict:
        for r in self.rows:
            if r["model"] == name:
                return r
        raise KeyError(f"model={name!r}: this study trained {', '.join(r['model'] for r in self.rows)}")

    @property
    def wide(self) -> str:
        """Name of the wider MLP (the lab's headline model)."""
        return self.rows[-1]["model"]


def model_study(x: torch.Tensor, y: torch.Tensor, *, hidden: int = Config.hidden,
                activation: str = Config.activation, lr: float = Config.lr, momentum: float = Config.momentum,
                epochs: int = Config.epochs, seed: int = Config.seed, device: torch.device | str = "cpu",
                checkpoint_dir: Path | None = None) -> ModelStudy:
    """Train a perceptron (no hidden layer), a 2-2-1 MLP and a 2-``hidden``-1 MLP on ``x``, ``y`` with full-batch
    SGD + momentum for ``epochs`` steps each, from initialisations drawn after ``seed_everything(seed)``.

    Measures each model's final accuracy (share of the points right), its final binary cross-entropy (nats) and
    the range of the probabilities it gives the points. Checkpoints: ``checkpoint_dir / "model-<name>"``."""
    _check_positive("hidden", hidden)
    _check_positive("epochs", epochs)
    seed_everything(seed)
    models = {"perceptron": MLP(2, hidden=(), out_features=1),
              "mlp_2_2_1": MLP(2, hidden=(2,), out_features=1, activation=activation)}
    models[f"mlp_2_{hidden}_1"] = MLP(2, hidden=(hidden,), out_features=1, activation=activation)
    rows, histories = [], {}
    for name, model in models.items():
        trained = train_xor(model, x, y, lr=lr, momentum=momentum, epochs=epochs, device=device,
                            checkpoint_dir=subfolder(checkpoint_dir, f"model-{name}"))
        histories[name] = trained["history"]
        rows.append(_row(trained, model=name, params=count_parameters(model)))
    return ModelStudy(rows, histories, models, x, y)


# ---------------------------------------------------------------------------------- 2-2-1 restarts
@dataclass
class RestartStudy:
    """The 2-2-1 MLP from several random initialisations: how often does the smallest net that can solve XOR
    actually solve it?"""

    rows: list[dict]                          # one per initialisation: init_seed, accuracy, final_loss, solved
    histories: dict[str, dict]                # "seed <init_seed>" -> History.to_dict()

    @property
    def solved(self) -> int:
        """Number of initialisations that got all points right."""
        return sum(r["solved"] for r in self.rows)

    @property
    def solved_share(self) -> float:
        """Share of the initialisations that solved XOR (0.0 when there were none)."""
        return self.solved / len(self.rows) if self.rows else 0.0

    @property
    def stuck_seeds(self) -> list[int]:
        """Initialisations that ended with at least one point wrong (a local minimum or a plateau)."""
        return [r["init_seed"] for r in self.rows if not r["solved"]]


def restart_study(x: torch.Tensor, y: torch.Tensor, *, restarts: int = Config.restarts,
                  activation: str = Config.activation, lr: float = Config.lr, momentum: float = Config.momentum,
                  epochs: int = Config.epochs, seed: int = Config.seed, device: torch.device | str = "cpu",
                  checkpoint_dir: Path | None = None) -> RestartStudy:
    """Train the 2-2-1 MLP from ``restarts`` initialisations (``seed_everything(seed + 1000 + i)``), each as in
    :func:`model_study`; measures each one's final accuracy and loss (nats) and whether it solved all points.
    Checkpoints: ``checkpoint_dir / "restart-seed<init_seed>"``."""
    _check_positive("restarts", restarts, least=0)  # 0: no restarts (e.g. a test's quickest run)
    _check_positive("epochs", epochs)
    rows, histories = [], {}
    for i in range(restarts):
        init_seed = seed + 1000 + i
        seed_everything(init_seed)
        model = MLP(2, hidden=(2,), out_features=1, activation=activation)
        trained = train_xor(model, x, y, lr=lr, momentum=momentum, epochs=epochs, device=device,
                            checkpoint_dir=subfolder(checkpoint_dir, f"restart-seed{init_seed}"))
        histories[f"seed {init_seed}"] = trained["history"]
        rows.append(_row(trained, init_seed=init_seed, solved=trained["accuracy"] == 1.0))
    return RestartStudy(rows, histories)


# --------------------------------------------------------------------------------- backprop by hand
def backprop_example() -> dict[str, float]:
    """The slides' f(x, y, z) = (x + y) z at x = -2, y = 5, z = -4, by the Value engine."""
    x, y, z = Value(-2.0, label="x"), Value(5.0, label="y"), Value(-4.0, label="z")
    q = x + y  # q = 3
    f = q * z  # f = -12
    f.backward()  # df/dz = q = 3, df/dq = z = -4, df/dx = df/dq * dq/dx = -4 * 1
    return {"f": f.data, "df_dx": x.grad, "df_dy": y.grad, "df_dz": z.grad}


@dataclass
class ValueMLPStudy:
    """A 2-``hidden``-1 tanh MLP made of scalar Values, trained on XOR with targets -1/+1."""

    accuracy: float                           # share of the 4 points whose output has the target's sign
    losses: list[float]                       # mean squared error per gradient-descent step
    outputs: list[float]                      # the trained net's output at (0,0), (0,1), (1,0), (1,1)

    @property
    def final_loss(self) -> float:
        return self.losses[-1]


def value_mlp_study(*, steps: int = Config.value_steps, hidden: int = 4, lr: float = 0.2,
                    seed: int = Config.seed) -> ValueMLPStudy:
    """Train a 2-``hidden``-1 tanh MLP of Values for ``steps`` full-batch gradient-descent steps of size ``lr``;
    measures its accuracy on the 4 XOR points and its mean squared error (targets -1/+1) per step."""
    _check_positive("steps", steps)
    _check_positive("hidden", hidden)
    xs = [[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]
    ys = [-1.0, 1.0, 1.0, -1.0]
    model = ValueMLP(2, [hidden, 1], activation="tanh", out_activation="tanh", seed=seed)
    losses = train_value_mlp(model, xs, ys, steps=steps, lr=lr)
    outputs = [model(x).data for x in xs]
    correct = sum((o > 0) == (t > 0) for o, t in zip(outputs, ys))
    return ValueMLPStudy(correct / len(xs), losses, outputs)


# ------------------------------------------------------------------------------ universal approximation
UA_TARGETS = {
    "smooth": lambda x: torch.sin(math.pi * x),             # one period of a sine on [-1, 1]
    "step": lambda x: (x > 0).to(x.dtype),                  # a jump from 0 to 1 at x = 0
    "high_freq": lambda x: torch.sin(4 * math.pi * x),      # four periods on [-1, 1]
}


@dataclass
class UniversalStudy:
    """One-hidden-layer tanh nets of growing width (and one deeper net) fitted to three functions on [-1, 1]."""

    widths: list[int]                         # hidden units of the one-hidden-layer nets
    x: torch.Tensor                           # (N,) the points fitted
    targets: dict[str, torch.Tensor]          # function name -> (N,) its values
    mse: dict[str, list[float]]               # function name -> final mean squared error per width
    fits: dict[str, torch.Tensor]             # function name -> (len(widths), N) the fitted curves
    deep_width: int                           # hidden units per layer of the two-hidden-layer net
    deep_params: int                          # its parameter count (close to the widest shallow net's)
    deep_mse: dict[str, float]                # function name -> the deeper net's final mean squared error
    deep_fits: dict[str, torch.Tensor]        # function name -> (N,) its fitted curve

    def params(self, width: int) -> int:
        """Parameters of the 1-``width``-1 net: w1, b1, w2 (``width`` each) and b2."""
        return 3 * width + 1

    def mean_mse(self, width: int) -> float:
        """Final mean squared error at ``width``, averaged over the functions."""
        i = self.widths.index(width)
        return sum(m[i] for m in self.mse.values()) / len(self.mse)

    @property
    def rows(self) -> list[dict]:
        rows = [{"net": f"1-{w}-1", "params": self.params(w), **{f"mse_{k}": m[i] for k, m in self.mse.items()},
                 "mse_mean": self.mean_mse(w)} for i, w in enumerate(self.widths)]
        rows.append({"net": f"1-{self.deep_width}-{self.deep_width}-1", "params": self.deep_params,
                     **{f"mse_{k}": v for k, v in self.deep_mse.items()},
                     "mse_mean": sum(self.deep_mse.values()) / len(self.deep_mse)})
        return rows


def _deep_width(params: int) -> int:
    """Width h of a 1-h-h-1 net (h² + 4h + 1 parameters) closest in size to ``params``."""
    return min(range(1, 200), key=lambda h: abs(h * h + 4 * h + 1 - params))


def universal_study(*, widths: tuple[int, ...] = Config.ua_widths, steps: int = Config.ua_steps,
                    points: int = Config.ua_points, lr: float = 0.01, seed: int = Config.seed,
                    functions: tuple[str, ...] = tuple(UA_TARGETS)) -> UniversalStudy:
    """Fit a 1-w-1 tanh net (y = sum_j w2_j tanh(w1_j x + b1_j) + b2) for every w in ``widths`` to each of the
    ``functions`` (smooth sin(πx), a step, high-frequency sin(4πx)) at ``points`` evenly spaced x in [-1, 1], with
    ``steps`` full-batch Adam steps whose size decays linearly from ``lr`` to 0; then a two-hidden-layer 1-h-h-1 net with about as many
    parameters as the widest one. Measures the final mean squared error of each fit (target units squared).

    First-layer weights and biases start uniform in [-5, 5], so the tanh knees spread over [-1, 1]; output weights
    uniform in ±1/sqrt(width). All nets of all widths are trained at once as one block-diagonal batch: each has
    its own parameters and Adam state, so this is the same as training them one by one, only faster."""
    if not widths or any(not isinstance(w, int) or isinstance(w, bool) or w < 1 for w in widths):
        raise ValueError(f"widths={widths!r}: expected one or more positive integers")
    _check_positive("steps", steps)
    _check_positive("points", points, least=2)
    unknown = [f for f in functions if f not in UA_TARGETS]
    if not functions or unknown:
        raise ValueError(f"functions={functions!r}: expected names among {', '.join(UA_TARGETS)}")
    widths = sorted(set(widths))
    g = torch.Generator().manual_seed(seed)
    x = torch.linspace(-1, 1, points)
    ys = torch.stack([UA_TARGETS[f](x) for f in functions])                 # (F, N)
    nf, total = len(functions), sum(widths)

    def uniform(shape, scale):
        return ((torch.rand(shape, generator=g) * 2 - 1) * scale).requires_grad_()

    # shallow nets, all widths in one block: hidden unit j belongs to net seg[j]
    seg = torch.repeat_interleave(torch.arange(len(widths)), torch.tensor(widths))
    pick = F.one_hot(seg, len(widths)).float()                                # (H, K) sums each net's units
    w1, b1 = uniform((nf, total), 5.0), uniform((nf, total), 5.0)
    w2 = uniform((nf, total), 1.0) * (1 / torch.tensor(widths, dtype=torch.float)[seg].sqrt())
    w2 = w2.detach().requires_grad_()
    b2 = torch.zeros(nf, len(widths), requires_grad=True)
    # the deeper net: 1-h-h-1 with about as many parameters as the widest shallow one
    h = _deep_width(3 * widths[-1] + 1)
    dw1, db1 = uniform((nf, h), 5.0), uniform((nf, h), 5.0)
    dw2, db2 = uniform((nf, h, h), math.sqrt(3 / h)), uniform((nf, h), 1.0)
    dw3, db3 = uniform((nf, h), 1 / math.sqrt(h)), torch.zeros(nf, requires_grad=True)

    def shallow():
        hid = torch.tanh(x[None, :, None] * w1[:, None, :] + b1[:, None, :])  # (F, N, H)
        return (hid * w2[:, None, :]) @ pick + b2[:, None, :]                  # (F, N, K)

    def deep():
        h1 = torch.tanh(x[None, :, None] * dw1[:, None, :] + db1[:, None, :])  # (F, N, h)
        h2 = torch.tanh(h1 @ dw2 + db2[:, None, :])
        return (h2 * dw3[:, None, :]).sum(-1) + db3[:, None]                   # (F, N)

    opt = torch.optim.Adam([w1, b1, w2, b2, dw1, db1, dw2, db2, dw3, db3], lr=lr)
    for step in range(steps):
        for group in opt.param_groups:  # linear decay to 0: the last steps settle instead of jittering
            group["lr"] = lr * (1 - step / steps)
        opt.zero_grad()
        loss = ((shallow() - ys[:, :, None]) ** 2).mean(1).sum() + ((deep() - ys) ** 2).mean(1).sum()
        loss.backward()
        opt.step()
    with torch.no_grad():
        fit, dfit = shallow(), deep()
        mse = ((fit - ys[:, :, None]) ** 2).mean(1)                             # (F, K)
        dmse = ((dfit - ys) ** 2).mean(1)
    return UniversalStudy(
        widths, x, {f: ys[i] for i, f in enumerate(functions)}, {f: mse[i].tolist() for i, f in enumerate(functions)},
        {f: fit[i].T.contiguous() for i, f in enumerate(functions)}, h, h * h + 4 * h + 1,
        {f: float(dmse[i]) for i, f in enumerate(functions)}, {f: dfit[i] for i, f in enumerate(functions)})


# ------------------------------------------------------------------- backprop through a matrix layer
@dataclass
class AffineBackwardStudy:
    """The affine layer Y = X W + b's backward by hand against autograd."""

    rows: list[dict]                          # gradient, formula, shape, max_abs_diff (float64)

    @property
    def max_abs_diff(self) -> float:
        return max(r["max_abs_diff"] for r in self.rows)


def affine_backward_study(*, batch: int = 4, n_in: int = 3, n_out: int = 2, seed: int = Config.seed
                          ) -> AffineBackwardStudy:
    """Y = X W + b with X (``batch``, ``n_in``), W (``n_in``, ``n_out``), b (``n_out``,), float64, and the loss
    L = sum(Y * G) for a random upstream gradient G = dL/dY. The backward by hand, dL/dX = G W^T, dL/dW = X^T G,
    dL/db = G summed over the batch, against torch.autograd; measures the largest absolute difference of each."""
    for name, v in (("batch", batch), ("n_in", n_in), ("n_out", n_out)):
        _check_positive(name, v)
    g = torch.Generator().manual_seed(seed)
    X, W, b = (torch.randn(*s, generator=g, dtype=torch.float64, requires_grad=True)
               for s in ((batch, n_in), (n_in, n_out), (n_out,)))
    G = torch.randn(batch, n_out, generator=g, dtype=torch.float64)
    ((X @ W + b) * G).sum().backward()
    by_hand = {"dL/dX": (G @ W.detach().T, "G W^T", X.grad), "dL/dW": (X.detach().T @ G, "X^T G", W.grad),
               "dL/db": (G.sum(0), "sum over the batch of G", b.grad)}
    return AffineBackwardStudy([{"gradient": k, "formula": f, "shape": tuple(mine.shape),
                                 "max_abs_diff": float((mine - auto).abs().max())}
                                for k, (mine, f, auto) in by_hand.items()])


def gate_study(*, a: float = 3.0, b: float = -4.0, upstream: float = 2.0) -> list[dict]:
    """The three gate patterns on the Value engine: out = a + b, a * b and max(a, b), each given the upstream
    gradient ``upstream``; returns each gate's output and the gradients it sends to a and b, and its pattern
    (add: distributor, multiply: swapper, max: router)."""
    rows = []
    for gate, pattern, op in (("add", "distributor: both get the upstream gradient", lambda u, v: u + v),
                              ("multiply", "swapper: each gets upstream x the other input", lambda u, v: u * v),
                              ("max", "router: the larger input gets it all", lambda u, v: u.max(v))):
        va, vb = Value(a), Value(b)
        out = op(va, vb) * upstream  # the factor makes the upstream gradient of op's output `upstream`
        out.backward()
        rows.append({"gate": gate, "a": a, "b": b, "output": out.data / upstream, "upstream": upstream,
                     "grad_a": va.grad, "grad_b": vb.grad, "pattern": pattern})
    return rows


# -------------------------------------------------------------------------------------------------- run
def run(cfg: Config, out: Path | None = None) -> LabResult:
    cfg = quick_variant(cfg, QUICK)
    seed_everything(cfg.seed)
    device = get_device(cfg.device)
    started = time.perf_counter()
    ckpt = Path(out) / "checkpoints" if out is not None else None
    x, y = xor()
    train = dict(activation=cfg.activation, lr=cfg.lr, momentum=cfg.momentum, epochs=cfg.epochs, device=device,
                 checkpoint_dir=ckpt)

    models = model_study(x, y, hidden=cfg.hidden, seed=cfg.seed, **train)
    restarts = restart_study(x, y, restarts=cfg.restarts, seed=cfg.seed, **train)
    grads = backprop_example()
    value = value_mlp_study(steps=cfg.value_steps, seed=cfg.seed)
    universal = universal_study(widths=cfg.ua_widths, steps=cfg.ua_steps, points=cfg.ua_points, seed=cfg.seed)
    affine = affine_backward_study(seed=cfg.seed)
    gates = gate_study()

    metrics = {
        "perceptron_accuracy": models.row("perceptron")["accuracy"],
        "mlp_accuracy": models.row(models.wide)["accuracy"],
        "mlp_2_2_1_accuracy": models.row("mlp_2_2_1")["accuracy"],
        "mlp_2_2_1_solved_share": restarts.solved_share,
        "value_mlp_accuracy": value.accuracy,
        "value_mlp_final_loss": value.final_loss,
        **{f"backprop_{k}": v for k, v in grads.items()},
        **{f"universal_mse_w{w}": universal.mean_mse(w) for w in universal.widths},
        **{f"universal_mse_{f}_w{w}": m[i] for f, m in universal.mse.items() for i, w in enumerate(universal.widths)},
        **{f"universal_deep_mse_{f}": v for f, v in universal.deep_mse.items()},
        "affine_backward_max_abs_diff": affine.max_abs_diff,
        **{f"gate_{r['gate']}_grad_{k}": r[f"grad_{k}"] for r in gates for k in "ab"},
    }
    histories = {**models.histories, "value_mlp": {"epoch": list(range(1, len(value.losses) + 1)),
                                                   "train_loss": value.losses}}
    result = LabResult(
        lab="xor", config=asdict(cfg), metrics=metrics, history=histories,
        tables={"models": models.rows, "mlp_2_2_1_restarts": restarts.rows, "backprop_example": [grads],
                "universal_approximation": universal.rows, "affine_backward": affine.rows, "gates": gates},
        figures={"decision_boundaries": decision_boundary_figure(models),
                 "loss_curves": loss_curve_figure(models, value),
                 "restart_losses": restart_figure(restarts),
                 "activations": activations_figure(),
                 "universal_error": universal_error_figure(universal),
                 "universal_fits": universal_fits_figure(universal)},
        captions=captions(models, restarts, value, universal, affine, gates), device=str(device))
    result = finish(result, out, started)
    if out is not None:  # the headline model's weights, for `esc-course submit` and re-evaluation
        save_weights(models.models[models.wide], Path(out) / "model.safetensors")
    return result


def captions(models: ModelStudy, restarts: RestartStudy, value: ValueMLPStudy, universal: UniversalStudy,
             affine: AffineBackwardStudy, gates: list[dict]) -> dict[str, str]:
    """One sentence per figure and main table, from this run's numbers."""
    p, wide = models.row("perceptron"), models.row(models.wide)
    lo, hi = universal.widths[0], universal.widths[-1]
    ua = (f"mean squared error averaged over the functions {universal.mean_mse(lo):.2g} at width {lo}, "
          f"{universal.mean_mse(hi):.2g} at width {hi}")
    return {
        "universal_error": f"One-hidden-layer tanh nets fitted to a smooth function, a step and sin(4πx): {ua}; the "
                           f"1-{universal.deep_width}-{universal.deep_width}-1 net has {universal.deep_params} "
                           "parameters.",
        "universal_fits": f"The fitted curves of widths {', '.join(map(str, universal.widths))} against each target, "
                          "and the deeper net's.",
        "universal_approximation": f"Final mean squared error per width and function: {ua}.",
        "affine_backward": f"The affine layer's backward by hand against autograd: largest difference "
                           f"{affine.max_abs_diff:.1e}.",
        "gates": "Add distributes the upstream gradient, multiply swaps the inputs, max routes it to the larger: "
                 + "; ".join(f"{r['gate']} sends ({r['grad_a']:g}, {r['grad_b']:g})" for r in gates) + ".",
        "decision_boundaries": f"Decision boundaries: the perceptron's is one straight line ({p['points_right']} of "
                               f"4 points right), the {models.wide} one bends around the points "
                               f"({wide['points_right']} of 4).",
        "loss_curves": f"Training loss (binary cross-entropy; the Value MLP's mean squared error) per step; the "
                       f"perceptron ends at {p['final_loss']:.3f} nats (ln 2 = 0.693 is probability 0.5 everywhere).",
        "restart_losses": f"The 2-2-1 MLP from {len(restarts.rows)} initialisations: {restarts.solved} solved XOR.",
        "activations": "Activation functions (solid) and their derivatives (dashed).",
        "models": f"Accuracy and final loss per model; the perceptron gets {p['points_right']} of 4 points, the "
                  f"{models.wide} {wide['points_right']} of 4.",
        "mlp_2_2_1_restarts": f"{restarts.solved} of {len(restarts.rows)} random initialisations of the 2-2-1 MLP "
                              f"solved XOR; the Value MLP got {value.accuracy:.0%} of the points.",
    }


# ---------------------------------------------------------------------------------------------- figures
def decision_boundary_figure(result: ModelStudy):
    """One panel per model: the probability of class 1 over the plane, the 0.5 contour and the points."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    from esc_course.viz import decision_boundary, new_figure

    fig, axes = new_figure(len(result.models))
    for ax, (name, model) in zip(axes, result.models.items()):
        m = copy.deepcopy(model).cpu().eval()
        r = result.row(name)
        decision_boundary(ax, lambda g, m=m: torch.sigmoid(m(g)).squeeze(-1), result.x, result.y,
                          title=f"{name}: {r['points_right']}/4 right")
        ax.set(xlabel="$x_1$", ylabel="$x_2$")
    fig.colorbar(ScalarMappable(Normalize(0, 1), cmap="RdBu_r"), ax=axes, label="P(y = 1), black line: 0.5",
                 shrink=0.9)
    return fig


def loss_curve_figure(result: ModelStudy, value: ValueMLPStudy | None = None):
    """Training loss per epoch of each model (log scale), and the Value MLP's per step when given."""
    from esc_course.viz import new_figure

    fig, (ax,) = new_figure(size=(6.0, 3.8))
    for name, h in result.histories.items():
        ax.plot(range(1, len(h["train_loss"]) + 1), h["train_loss"], label=f"{name} (BCE)")
    if value is not None:
        ax.plot(range(1, len(value.losses) + 1), value.losses, "--", label="Value MLP (MSE)")
    ax.set(yscale="log", xlabel="epoch (= one full-batch step)", ylabel="training loss", title="XOR training loss")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))  # beside the axes, off the curves
    return fig


def restart_figure(result: RestartStudy):
    """Training loss of each 2-2-1 initialisation, solved ones solid, stuck ones dashed red."""
    from esc_course.viz import new_figure

    fig, (ax,) = new_figure(size=(6.0, 3.8))
    for r, h in zip(result.rows, result.histories.values()):
        loss = h["train_loss"]
        style = dict(lw=1.2) if r["solved"] else dict(ls="--", color="tab:red", lw=1.5)
        ax.plot(range(1, len(loss) + 1), loss, label=f"seed {r['init_seed']}: {r['points_right']}/4", **style)
    ax.set(yscale="log", xlabel="epoch (= one full-batch step)", ylabel="training loss (BCE, nats)",
           title=f"2-2-1 MLP: {result.solved} of {len(result.rows)} initialisations solve XOR")
    ax.grid(alpha=0.3)
    if result.rows:  # with no restarts there is nothing to label
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1), ncols=1 + len(result.rows) // 13)
    return fig


def value_mlp_figure(result: ValueMLPStudy):
    """The Value MLP's mean squared error per gradient-descent step (log scale)."""
    from esc_course.viz import new_figure

    fig, (ax,) = new_figure(size=(5.0, 3.4))
    ax.plot(range(1, len(result.losses) + 1), result.losses)
    ax.set(yscale="log", xlabel="gradient-descent step", ylabel="MSE (targets -1/+1)",
           title=f"Value MLP: {result.accuracy:.0%} of the 4 points right")
    ax.grid(alpha=0.3)
    return fig


def universal_error_figure(result: UniversalStudy):
    """Final mean squared error against width (log-log), one line per function; the deeper net as a marker at
    its parameter count's width."""
    from esc_course.viz import new_figure

    fig, (ax,) = new_figure(size=(6.0, 3.8))
    for name, mse in result.mse.items():
        line, = ax.plot(result.widths, mse, marker="o", label=f"{name} (1 hidden layer)")
        ax.plot([result.widths[-1]], [result.deep_mse[name]], marker="*", ms=13, ls="none", color=line.get_color(),
                label=f"{name}: 1-{result.deep_width}-{result.deep_width}-1 ({result.deep_params} params)")
    ax.set(xscale="log", yscale="log", xlabel="hidden units (width)", ylabel="final MSE",
           title="universal approximation: error against width")
    ax.set_xscale("log", base=2)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    return fig


def universal_fits_figure(result: UniversalStudy, widths: tuple[int, ...] | None = None):
    """One panel per function: the target (black) and the fitted curves of ``widths`` (default: up to four of the
    study's widths, the smallest to the largest), and the deeper net's (dashed)."""
    from esc_course.viz import new_figure

    if widths is None:
        step = max(1, (len(result.widths) - 1) // 3)
        widths = tuple(result.widths[::step][:3]) + (result.widths[-1],)
    missing = [w for w in widths if w not in result.widths]
    if missing:
        raise ValueError(f"widths={widths!r}: this study fitted the widths {result.widths}")
    fig, axes = new_figure(len(result.targets))
    for ax, (name, target) in zip(axes, result.targets.items()):
        ax.plot(result.x, target, color="black", lw=2.5, alpha=0.35, label="target")
        for w in dict.fromkeys(widths):
            ax.plot(result.x, result.fits[name][result.widths.index(w)], lw=1.2, label=f"width {w}")
        ax.plot(result.x, result.deep_fits[name], "--", color="black", lw=1.0,
                label=f"1-{result.deep_width}-{result.deep_width}-1")
        ax.set(xlabel="x", ylabel="y", title=name)
        ax.grid(alpha=0.3)
    axes[-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    return fig


def activations_figure(names: tuple[str, ...] | None = None):
    """Each activation (solid) and its derivative (dashed) on [-5, 5], one panel each (``names``: a subset of
    esc_course.models.ACTIVATIONS, default all but identity)."""
    from esc_course.viz import activations_figure as draw

    fig = draw(activation_curves(names))
    for ax in fig.axes:
        ax.set_xlabel("x")
    return fig


def build_model(config: dict) -> torch.nn.Module:
    """The headline model (the 2-hidden-1 MLP) for a run's config: the re-evaluation protocol of
    esc_course.course.reevaluate. The config may come from a student's bundle, so its fields are checked."""
    hidden = config.get("hidden", Config.hidden)
    activation = config.get("activation", Config.activation)
    if not isinstance(hidden, int) or isinstance(hidden, bool) or not 1 <= hidden <= 4096:
        raise ValueError(f"config hidden={hidden!r}: expected an integer in [1, 4096]")
    if not isinstance(activation, str):
        raise ValueError(f"config activation={activation!r}: expected a name in esc_course.models.ACTIVATIONS")
    return MLP(2, hidden=(hidden,), out_features=1, activation=activation)


def evaluate_weights(model: torch.nn.Module, config: dict, data_dir: Path | None = None) -> dict[str, float]:
    """The headline model's accuracy and loss on the organisers' held-out points (``data_dir/xor.safetensors``,
    tensors x (N, 2) and y (N,) in {0, 1}), else on the four XOR corners the lab trains on."""
    x, y = load_heldout(data_dir, "xor") if data_dir is not None else xor()
    data = TensorLoader(x.float(), y.long(), batch_size=len(x), shuffle=False)
    final = evaluate(model.cpu(), data, bce_logits, torch.device("cpu"))
    return {"mlp_accuracy": final["accuracy"], "mlp_loss": final["loss"]}


if __name__ == "__main__":
    from esc_course.lab import main

    raise SystemExit(main("xor"))
