"""The from-scratch optimizers against torch.optim: same model, data and seed, 200 steps, parameters within 1e-5."""

import inspect
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from esc_course import optim
from esc_course.optim import OPTIMIZERS, SLIDES, get_optimizer

STEPS = 200

# (class name in both esc_course.optim and torch.optim, hyperparameters): reaches every branch of every step()
GRID = [
    ("SGD", {"lr": 0.1}),
    ("SGD", {"lr": 0.05, "weight_decay": 1e-2}),
    ("SGD", {"lr": 0.05, "momentum": 0.9}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "dampening": 0.5, "weight_decay": 1e-3}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True}),
    ("SGD", {"lr": 0.02, "momentum": 0.5, "nesterov": True, "weight_decay": 1e-2, "maximize": True}),
    ("Adagrad", {}),
    ("Adagrad", {"lr": 0.1, "lr_decay": 1e-2, "weight_decay": 1e-3}),
    ("Adagrad", {"lr": 0.05, "initial_accumulator_value": 0.1, "eps": 1e-6, "maximize": True}),
    ("Adadelta", {}),
    ("Adadelta", {"lr": 0.5, "rho": 0.95, "eps": 1e-5, "weight_decay": 1e-2}),
    ("RMSprop", {}),
    ("RMSprop", {"lr": 1e-3, "alpha": 0.9, "weight_decay": 1e-3}),
    ("RMSprop", {"lr": 1e-3, "momentum": 0.9}),
    ("RMSprop", {"lr": 1e-3, "centered": True}),
    ("RMSprop", {"lr": 1e-3, "momentum": 0.5, "centered": True, "eps": 1e-6, "maximize": True}),
    ("Adam", {}),
    ("Adam", {"lr": 1e-2, "betas": (0.8, 0.99), "weight_decay": 1e-2}),
    ("Adam", {"lr": 1e-2, "amsgrad": True}),
    ("Adam", {"lr": 3e-3, "amsgrad": True, "weight_decay": 1e-3, "eps": 1e-6, "maximize": True}),
    ("AdamW", {}),
    ("AdamW", {"lr": 1e-2, "weight_decay": 0.1}),
    ("AdamW", {"lr": 1e-2, "betas": (0.5, 0.9), "amsgrad": True}),
]


def _data():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(96, 6, generator=g)
    y = (x[:, 0] + x[:, 1] * x[:, 2] > 0).long() + (x[:, 3] > 1).long()  # 3 classes, not linearly separable
    # a fixed sequence of mini-batches of 16, the same for both optimizers
    order = torch.cat([torch.randperm(96, generator=g) for _ in range(STEPS * 16 // 96 + 1)])
    return [(x[order[k * 16:(k + 1) * 16]], y[order[k * 16:(k + 1) * 16]]) for k in range(STEPS)]


BATCHES = _data()


def _model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3))


def _train(make, seed: int = 0, steps: int = STEPS, model: nn.Module | None = None, opt=None):
    model = model if model is not None else _model(seed)
    opt = opt if opt is not None else make(model.parameters())
    for xb, yb in BATCHES[:steps]:
        loss = F.cross_entropy(model(xb), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model, opt


def _params(model):
    return [p.detach().clone() for p in model.parameters()]


@pytest.mark.parametrize("name,hparams", GRID, ids=[f"{n}-{i}" for i, (n, _) in enumerate(GRID)])
def test_matches_torch_optim_for_200_steps(name, hparams):
    ours, _ = _train(lambda p: getattr(optim, name)(p, **hparams))
    theirs, _ = _train(lambda p: getattr(torch.optim, name)(p, **hparams))
    start = _params(_model())
    for a, b, s in zip(_params(ours), _params(theirs), start):
        assert (b - s).abs().max() > 1e-3, "the run must actually move the parameters"
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", ["SGD", "Adagrad", "Adadelta", "RMSprop", "Adam", "AdamW"])
def test_constructor_arguments_and_defaults_are_torchs(name):
    ours = inspect.signature(getattr(optim, name)).parameters
    theirs = inspect.signature(getattr(torch.optim, name)).parameters
    implementation_only = {"foreach", "fused", "capturable", "differentiable"}
    for arg, spec in theirs.items():
        if arg in implementation_only:
            continue
        assert arg in ours, f"{name} lacks torch's argument {arg}"
        if spec.default is not inspect.Parameter.empty:
            assert ours[arg].default == spec.default, f"{name}({arg}=...) default differs from torch's"
    model = _model()
    assert getattr(optim, name)(model.parameters()).defaults["lr"] == \
        getattr(torch.optim, name)(model.parameters()).defaults["lr"]


def test_parameter_groups_and_closure_match_torch():
    def groups(model):
        return [{"params": model[0].parameters(), "lr": 0.05}, {"params": model[2].parameters()}]

    ours, theirs = _model(), _model()
    a = optim.SGD(groups(ours), lr=0.01, momentum=0.9)
    b = torch.optim.SGD(groups(theirs), lr=0.01, momentum=0.9)
    x, y = BATCHES[0]
    for model, opt in ((ours, a), (theirs, b)):
        for _ in range(20):
            def closure(model=model, opt=opt):
                opt.zero_grad()
                loss = F.cross_entropy(model(x), y)
                loss.backward()
                return loss
            loss = opt.step(closure)
            assert torch.is_tensor(loss) and loss.ndim == 0
    for p, q in zip(ours.parameters(), theirs.parameters()):
        torch.testing.assert_close(p, q, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("name", ["sgd", "momentum", "adagrad", "adadelta", "rmsprop", "adam", "adamw"])
def test_state_dict_round_trip_resumes_exactly(name):
    """Stop after 100 steps, save, load into a fresh optimizer, go on: the same as 200 steps in one go."""
    make = lambda p: get_optimizer(name, p, lr=0.01)  # noqa: E731
    straight, _ = _train(make)
    model, opt = _train(make, steps=100)
    saved_model, saved_opt = model.state_dict(), opt.state_dict()
    resumed = _model(seed=1)  # a different init, overwritten by the load
    resumed.load_state_dict(saved_model)
    fresh = make(resumed.parameters())
    fresh.load_state_dict(saved_opt)
    for xb, yb in BATCHES[100:]:
        loss = F.cross_entropy(resumed(xb), yb)
        fresh.zero_grad()
        loss.backward()
        fresh.step()
    for p, q in zip(resumed.parameters(), straight.parameters()):
        torch.testing.assert_close(p, q, atol=0, rtol=0)


def test_adam_bias_correction_closed_form():
    """On a constant gradient, corrected Adam moves exactly lr per step; uncorrected (1-b1^t)/sqrt(1-b2^t) lr."""
    lr, (b1, b2) = 0.01, (0.9, 0.999)
    for correct in (True, False):
        w = torch.zeros(3, requires_grad=True)
        opt = optim.Adam([w], lr=lr, eps=0.0, bias_correction=correct)
        for t in range(1, 31):
            before = w.detach().clone()
            w.grad = torch.tensor([2.0, -0.5, 1e-3])  # any constant gradient: the step length is the same
            opt.step()
            moved = (w.detach() - before).abs()
            expected = lr if correct else lr * (1 - b1**t) / math.sqrt(1 - b2**t)
            torch.testing.assert_close(moved, torch.full((3,), expected), atol=1e-7, rtol=1e-5)
    assert (1 - b1) / math.sqrt(1 - b2) > 3  # the first uncorrected step is more than 3x too long


def test_adamw_decays_weights_without_a_gradient():
    w = torch.ones(2, requires_grad=True)
    opt = optim.AdamW([w], lr=0.1, weight_decay=0.5)
    w.grad = torch.zeros(2)
    opt.step()
    torch.testing.assert_close(w.detach(), torch.full((2,), 1 - 0.1 * 0.5))
    v = torch.ones(2, requires_grad=True)
    opt = optim.Adam([v], lr=0.1, weight_decay=0.5)  # L2 through the gradient: normalised to a full lr step
    v.grad = torch.zeros(2)
    opt.step()
    torch.testing.assert_close(v.detach(), torch.full((2,), 1 - 0.1), atol=1e-6, rtol=0)


def test_registry_has_the_slides_names_and_rejects_unknown_ones():
    assert set(SLIDES) <= set(OPTIMIZERS) and "adamw" in OPTIMIZERS and len(SLIDES) == 7
    w = [torch.zeros(2, requires_grad=True)]
    assert isinstance(get_optimizer("momentum", w), optim.SGD)
    assert get_optimizer("momentum", w).defaults["momentum"] == 0.9
    assert get_optimizer("Nesterov", w, lr=0.1).defaults["nesterov"] is True
    assert isinstance(get_optimizer("adamw", w), optim.AdamW)
    with pytest.raises(ValueError, match="valid optimizers: sgd, momentum, nesterov, adagrad"):
        get_optimizer("lion", w)


@pytest.mark.parametrize("make,arg", [
    (lambda p: optim.SGD(p, lr=-1.0), "lr"),
    (lambda p: optim.SGD(p, lr=0.1, nesterov=True), "nesterov"),
    (lambda p: optim.Adam(p, betas=(0.9, 1.0)), r"betas\[1\]"),
    (lambda p: optim.Adadelta(p, rho=1.5), "rho"),
    (lambda p: optim.RMSprop(p, momentum=-0.1), "momentum"),
    (lambda p: optim.Adagrad(p, eps=float("nan")), "eps"),
])
def test_bad_hyperparameters_name_the_argument(make, arg):
    with pytest.raises(ValueError, match=arg):
        make([torch.zeros(1, requires_grad=True)])


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_every_optimizer_reduces_the_loss(name):
    lr = {"adadelta": 1.0, "sgd": 0.1, "momentum": 0.05, "nesterov": 0.05}.get(name, 0.01)
    model = _model()
    first = F.cross_entropy(model(BATCHES[0][0]), BATCHES[0][1]).item()
    model, _ = _train(lambda p: get_optimizer(name, p, lr=lr), model=model)
    x = torch.cat([b[0] for b in BATCHES[:6]])
    y = torch.cat([b[1] for b in BATCHES[:6]])
    assert F.cross_entropy(model(x), y).item() < 0.8 * first
