"""Week 1: the XOR problem and backpropagation.

A single-layer perceptron draws one straight line, so it can get at most 3 of XOR's 4 points right; one hidden
layer bends the boundary and solves it. Backpropagation is then done by hand with a scalar autograd engine
(esc_course.scratch.autograd.Value), checked on the slides' example f = (x + y) z.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

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
    seed: int = 0
    device: str = "auto"
    quick: bool = False         # small, fast variant for CPU CI and weak laptops


QUICK = dict(epochs=300, restarts=5, value_steps=150)


def bce_logits(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy on a single logit per sample: out (N, 1), y (N,) in {0, 1}."""
    return F.binary_cross_entropy_with_logits(out.squeeze(-1), y.float())


def train_xor(model, x, y, cfg: Config, device):
    """Full-batch SGD with momentum on the 4 points; returns (History, final accuracy, final loss)."""
    data = TensorLoader(x, y, batch_size=len(x), shuffle=False, device=device)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum)
    history = fit(model, data, loss_fn=bce_logits, optimizer=opt, epochs=cfg.epochs, device=device, progress=False)
    final = evaluate(model, data, bce_logits, device)
    return history, final["accuracy"], final["loss"]


def backprop_example() -> dict[str, float]:
    """The slides' f(x, y, z) = (x + y) z at x = -2, y = 5, z = -4, by the Value engine."""
    x, y, z = Value(-2.0, label="x"), Value(5.0, label="y"), Value(-4.0, label="z")
    q = x + y  # q = 3
    f = q * z  # f = -12
    f.backward()  # df/dz = q = 3, df/dq = z = -4, df/dx = df/dq * dq/dx = -4 * 1
    return {"f": f.data, "df_dx": x.grad, "df_dy": y.grad, "df_dz": z.grad}


def value_mlp_xor(steps: int, seed: int) -> tuple[float, list[float]]:
    """A 2-4-1 tanh MLP made of Values trained on XOR with targets -1/+1; returns (accuracy, losses)."""
    xs = [[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]
    ys = [-1.0, 1.0, 1.0, -1.0]
    model = ValueMLP(2, [4, 1], activation="tanh", out_activation="tanh", seed=seed)
    losses = train_value_mlp(model, xs, ys, steps=steps, lr=0.2)
    correct = sum((model(x).data > 0) == (t > 0) for x, t in zip(xs, ys))
    return correct / len(xs), losses


def run(cfg: Config, out: Path | None = None) -> LabResult:
    cfg = quick_variant(cfg, QUICK)
    seed_everything(cfg.seed)
    device = get_device(cfg.device)
    started = time.perf_counter()
    x, y = xor()

    models = {
        "perceptron": MLP(2, hidden=(), out_features=1),
        "mlp_2_2_1": MLP(2, hidden=(2,), out_features=1, activation=cfg.activation),
        f"mlp_2_{cfg.hidden}_1": MLP(2, hidden=(cfg.hidden,), out_features=1, activation=cfg.activation),
    }
    histories, rows = {}, []
    for name, model in models.items():
        history, acc, loss = train_xor(model, x, y, cfg, device)
        histories[name] = history.to_dict()
        rows.append({"model": name, "params": count_parameters(model), "accuracy": acc, "final_loss": loss})

    restarts = []
    for s in range(cfg.restarts):  # how often does the smallest net that can solve XOR actually solve it?
        seed_everything(cfg.seed + 1000 + s)
        _, acc, loss = train_xor(MLP(2, hidden=(2,), out_features=1, activation=cfg.activation), x, y, cfg, device)
        restarts.append({"init_seed": cfg.seed + 1000 + s, "accuracy": acc, "final_loss": loss})

    grads = backprop_example()
    value_acc, value_losses = value_mlp_xor(cfg.value_steps, cfg.seed)
    wide = f"mlp_2_{cfg.hidden}_1"
    metrics = {
        "perceptron_accuracy": rows[0]["accuracy"],
        "mlp_accuracy": rows[2]["accuracy"],
        "mlp_2_2_1_accuracy": rows[1]["accuracy"],
        "mlp_2_2_1_solved_share": sum(r["accuracy"] == 1.0 for r in restarts) / max(len(restarts), 1),
        "value_mlp_accuracy": value_acc,
        "value_mlp_final_loss": value_losses[-1],
        **{f"backprop_{k}": v for k, v in grads.items()},
    }
    histories["value_mlp"] = {"epoch": list(range(1, len(value_losses) + 1)), "train_loss": value_losses}
    result = LabResult(
        lab="xor", config=asdict(cfg), metrics=metrics, history=histories,
        tables={"models": rows, "mlp_2_2_1_restarts": restarts, "backprop_example": [grads]},
        figures=figures(models, x, y, histories, wide), device=str(device),
    )
    result = finish(result, out, started)
    if out is not None:  # the headline model's weights, for `esc-course submit` and re-evaluation
        save_weights(models[wide], Path(out) / "model.safetensors")
    return result


def figures(models, x, y, histories, wide: str) -> dict:
    """Decision boundaries, loss curves, and the activations with their derivatives."""
    from esc_course.viz import activations_figure, decision_boundary, history_figure, new_figure

    fig, axes = new_figure(len(models))
    for ax, (name, model) in zip(axes, models.items()):
        model.eval().cpu()
        decision_boundary(ax, lambda g, m=model: torch.sigmoid(m(g)).squeeze(-1), x, y, title=name)
    curves = history_figure({k: v for k, v in histories.items()}, keys=("train_loss",), log_y=True,
                            title="XOR training loss")
    return {"decision_boundaries": fig, "loss_curves": curves,
            "activations": activations_figure(activation_curves())}


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
