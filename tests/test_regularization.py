"""Penalties (closed forms and properties), weight decay as penalty == SGD weight_decay, early stopping."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from esc_course.data import TensorLoader
from esc_course.regularization import (
    PENALTIES,
    EarlyStopping,
    decay_parameters,
    elastic_net_penalty,
    get_penalty,
    l1_penalty,
    l2_penalty,
    penalized,
    weight_decay_paths,
)
from esc_course.train import History, fit

W = [torch.tensor([[1.0, -2.0], [0.5, 0.0]]), torch.tensor([3.0, -1.0])]


def test_penalties_match_closed_forms():
    assert l2_penalty(W).item() == pytest.approx(1 + 4 + 0.25 + 9 + 1)
    assert l1_penalty(W).item() == pytest.approx(1 + 2 + 0.5 + 3 + 1)
    assert elastic_net_penalty(W, beta=0.5).item() == pytest.approx(0.5 * 15.25 + 7.5)
    assert l2_penalty([]).item() == 0.0


@pytest.mark.parametrize("name", list(PENALTIES))
def test_penalty_properties(name):
    fn = get_penalty(name)
    torch.manual_seed(0)
    w = [torch.randn(4, 3), torch.randn(5)]
    assert fn(w) >= 0 and fn([torch.zeros(3)]).item() == 0.0
    assert torch.allclose(fn([-t for t in w]), fn(w))                        # symmetric
    assert fn([2 * t for t in w]) > fn(w)                                    # grows with the weights
    assert torch.allclose(fn(w), fn([w[0]]) + fn([w[1]]))                    # adds over tensors


def test_penalty_gradients():
    w = torch.tensor([1.5, -2.0, 0.3], requires_grad=True)
    (g2,) = torch.autograd.grad(l2_penalty([w]), w)
    (g1,) = torch.autograd.grad(l1_penalty([w]), w)
    assert torch.allclose(g2, 2 * w) and torch.allclose(g1, torch.sign(w))


def test_unknown_penalty_and_bad_lambda():
    with pytest.raises(ValueError, match="valid penalties: l2, l1, elastic_net"):
        get_penalty("l3")
    with pytest.raises(ValueError, match="lam must be >= 0"):
        penalized(F.mse_loss, W, "l2", lam=-1)


def test_decay_parameters_skip_biases_and_norms():
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    assert [p.shape for p in decay_parameters(model)] == [(4, 3), (2, 4)]


def test_penalized_loss_adds_lambda_times_penalty():
    model = nn.Linear(3, 1)
    loss = penalized(F.mse_loss, decay_parameters(model), "l1", lam=0.1)
    x, y = torch.randn(5, 3), torch.randn(5, 1)
    expected = F.mse_loss(model(x), y) + 0.1 * model.weight.abs().sum()
    assert torch.allclose(loss(model(x), y), expected)


def _batches(n=6):
    g = torch.Generator().manual_seed(0)
    return [(torch.randn(16, 5, generator=g), torch.randint(0, 3, (16,), generator=g)) for _ in range(n)]


def _net():
    return nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3))


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_l2_penalty_equals_sgd_weight_decay(momentum):
    torch.manual_seed(0)
    out = weight_decay_paths(_net, _batches(), loss_fn=F.cross_entropy, weight_decay=0.1, lr=0.5, momentum=momentum)
    assert out["max_abs_diff"] < 1e-5
    assert out["weight_norm_penalty"] < out["weight_norm_none"] - 1e-2   # the decay really shrank the weights


def test_decoupled_adamw_differs_from_the_penalty():
    torch.manual_seed(0)
    out = weight_decay_paths(_net, _batches(), loss_fn=F.cross_entropy, weight_decay=0.1, lr=0.05, optimizer="adamw")
    assert out["max_abs_diff"] > 1e-3


def test_early_stopping_stops_after_patience_and_restores_best():
    model = nn.Linear(2, 1)
    stopper = EarlyStopping(model, patience=2)
    history = History()
    values = [1.0, 0.5, 0.7, 0.8, 0.2]
    stops = []
    for epoch, v in enumerate(values, start=1):
        with torch.no_grad():
            model.weight.fill_(epoch)                # weights that identify the epoch
        history.append({"epoch": epoch, "val_loss": v})
        stops.append(stopper(epoch, history))
        if stops[-1]:
            break                                    # as fit does
    assert stops == [False, False, False, True]
    assert stopper.best_epoch == 2 and stopper.stopped_epoch == 4
    assert torch.all(model.weight == 2)             # the weights of epoch 2 are back


def test_early_stopping_as_fit_hook_returns_the_best_model():
    torch.manual_seed(0)
    x = torch.randn(40, 20)
    y = (x[:, 0] > 0).long()
    xv = torch.randn(200, 20)
    yv = torch.randint(0, 2, (200,))               # labels unrelated to x: val loss rises as the net memorises
    model = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 2))
    stopper = EarlyStopping(model, patience=3)
    history = fit(model, TensorLoader(x, y, batch_size=40), TensorLoader(xv, yv, batch_size=200),
                  loss_fn=F.cross_entropy, optimizer=torch.optim.Adam(model.parameters(), lr=0.01), epochs=200,
                  on_epoch=stopper, progress=False)
    assert len(history) < 200 and stopper.stopped_epoch == len(history)
    assert len(history) - stopper.best_epoch == 3
    model.eval()
    with torch.no_grad():
        restored = F.cross_entropy(model(xv), yv).item()
    assert restored == pytest.approx(min(history["val_loss"]), rel=1e-5)


def test_early_stopping_checks_arguments():
    with pytest.raises(ValueError, match="patience"):
        EarlyStopping(nn.Linear(1, 1), patience=0)
    with pytest.raises(ValueError, match="mode"):
        EarlyStopping(nn.Linear(1, 1), mode="best")


def test_early_stopping_state_survives_a_checkpointed_resume(tmp_path):
    torch.manual_seed(0)
    x, y = torch.randn(40, 20), torch.randint(0, 2, (40,))
    xv, yv = torch.randn(100, 20), torch.randint(0, 2, (100,))

    def go(resume):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 2))
        stopper = EarlyStopping(model, patience=50)
        fit(model, TensorLoader(x, y, batch_size=40, generator=torch.Generator().manual_seed(0)),
            TensorLoader(xv, yv, batch_size=100), loss_fn=F.cross_entropy,
            optimizer=torch.optim.Adam(model.parameters(), lr=0.01), epochs=8, on_epoch=stopper, progress=False,
            checkpoint_dir=tmp_path, resume=resume)
        return stopper

    first = go(False)
    again = go(True)                     # finds the finished run's checkpoint and restores the hook from it
    assert again.best_epoch == first.best_epoch and again.best_value == first.best_value
    assert all(torch.equal(first.best_state[k], again.best_state[k]) for k in first.best_state)
