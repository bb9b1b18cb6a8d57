import json
import math

import pytest
import torch
from torch import nn

from esc_course import History, NonFiniteLossError, TensorLoader, evaluate, fit, seed_everything
from esc_course.data.toy import blobs
from esc_course.models import MLP


def problem(seed=0, n=256):
    x, y = blobs(n=n, centers=3, std=0.6, seed=seed)
    return TensorLoader(x, y, batch_size=32, generator=torch.Generator().manual_seed(seed)), (x, y)


def train_once(seed=0, epochs=5):
    seed_everything(seed)
    data, (x, y) = problem(seed)
    model = MLP(2, hidden=(16,), out_features=3)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    hist = fit(model, data, TensorLoader(x, y, 64, shuffle=False), loss_fn=nn.functional.cross_entropy,
               optimizer=opt, epochs=epochs, progress=False)
    return model, hist


def test_fit_reduces_the_loss_and_records_history():
    model, hist = train_once(epochs=15)
    assert len(hist) == 15
    assert hist["train_loss"][-1] < 0.5 * hist["train_loss"][0]
    assert hist["val_accuracy"][-1] > 0.9
    for key in ("epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr", "seconds"):
        assert key in hist
    json.dumps(hist.to_dict())  # JSON-ready
    assert History.from_dict(hist.to_dict()).rows == hist.rows


def test_seeded_runs_are_identical():
    m1, h1 = train_once(seed=3)
    m2, h2 = train_once(seed=3)
    assert h1["train_loss"] == h2["train_loss"]
    for a, b in zip(m1.parameters(), m2.parameters()):
        assert torch.equal(a, b)


def test_evaluate_matches_a_manual_computation():
    model, _ = train_once()
    _, (x, y) = problem()
    res = evaluate(model, TensorLoader(x, y, 50, shuffle=False), nn.functional.cross_entropy)
    with torch.no_grad():
        out = model(x)
    assert res["loss"] == pytest.approx(nn.functional.cross_entropy(out, y).item(), rel=1e-5)
    assert res["accuracy"] == pytest.approx((out.argmax(1) == y).float().mean().item())


@pytest.mark.parametrize("two_class_single_logit", [False, True])
def test_epoch_metrics_are_exact_over_uneven_batches(two_class_single_logit):
    """accuracy is counted per step (its batch_sum form) and a user's mean metric is weighted by batch size: both
    must equal the whole-set value when the last batch is short (103 = 4 x 25 + 3)."""
    from esc_course.metrics import accuracy, correct

    torch.manual_seed(0)
    x = torch.randn(103, 4)
    if two_class_single_logit:
        model, y = nn.Linear(4, 1), (x[:, 0] > 0.3).float()  # BCE-style 0./1. float targets
        loss_fn = lambda out, t: nn.functional.binary_cross_entropy_with_logits(out[:, 0], t)  # noqa: E731
    else:
        model, y = nn.Linear(4, 3), torch.randint(0, 3, (103,))
        loss_fn = nn.functional.cross_entropy

    def mean_abs_logit(out, t):  # a user's metric: a batch mean, no batch_sum
        return out.abs().mean()

    res = evaluate(model, TensorLoader(x, y, 25, shuffle=False), loss_fn, metrics=("accuracy", mean_abs_logit))
    with torch.no_grad():
        out = model(x)
    assert res["accuracy"] == pytest.approx(accuracy(out, y).item(), rel=1e-6)  # accuracy is float32
    assert res["accuracy"] == correct(out, y).item() / 103  # the epoch value is the exact count over the size
    assert 0 < res["accuracy"] < 1
    assert res["mean_abs_logit"] == pytest.approx(out.abs().mean().item(), rel=1e-6)
    assert res["loss"] == pytest.approx(loss_fn(out, y).item(), rel=1e-6)


def test_sequence_accuracy_is_the_share_of_positions_over_uneven_batches():
    """(B, T, C) logits with (B, T) targets, as the character language model of week 7 gives them: the epoch's
    accuracy is the share of all positions predicted right (not T times it), with a short last batch."""
    from esc_course.metrics import accuracy
    from esc_course.train import EpochStats

    torch.manual_seed(0)
    out, y = torch.randn(10, 7, 5), torch.randint(0, 5, (10, 7))
    stats = EpochStats({"accuracy": accuracy})
    for lo, hi in ((0, 4), (4, 8), (8, 10)):
        stats.add(torch.tensor(0.0), out[lo:hi], y[lo:hi])
    expected = (out.argmax(-1) == y).float().mean().item()
    assert 0 < expected < 1
    assert stats.summarize()["accuracy"] == pytest.approx(expected, rel=1e-6)


def test_a_mid_epoch_state_round_trips():
    """What a step checkpoint holds of a half-finished epoch: loaded into new statistics, the epoch goes on and
    sums up as if it had never stopped."""
    from esc_course.metrics import accuracy
    from esc_course.train import EpochStats

    torch.manual_seed(0)
    batches = [(torch.randn(8, 3), torch.randint(0, 3, (8,))) for _ in range(3)]
    whole, cut = EpochStats({"accuracy": accuracy}), EpochStats({"accuracy": accuracy})
    for i, (out, y) in enumerate(batches):
        whole.add(torch.tensor(0.1 * i), out, y)
    for out, y in batches[:2]:
        cut.add(torch.tensor(0.1 * len(cut)), out, y)
    again = EpochStats({"accuracy": accuracy})
    again.load_state_dict(cut.state_dict(), torch.device("cpu"))
    again.add(torch.tensor(0.2), *batches[2])
    assert again.summarize() == whole.summarize()


def test_nan_loss_stops_with_epoch_and_step():
    x = torch.randn(40, 2)
    x[25] = float("nan")  # sample 25 sits in the 3rd batch of 10 (unshuffled)
    y = torch.zeros(40, dtype=torch.long)
    model = MLP(2, hidden=(4,), out_features=2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(NonFiniteLossError) as err:
        fit(model, TensorLoader(x, y, 10, shuffle=False), loss_fn=nn.functional.cross_entropy, optimizer=opt,
            epochs=3, progress=False)
    assert err.value.epoch == 1 and err.value.step == 3
    assert "epoch 1, step 3" in str(err.value)


def test_exploding_learning_rate_is_caught():
    x = torch.randn(64, 1)
    y = 3 * x
    model = nn.Linear(1, 1)
    opt = torch.optim.SGD(model.parameters(), lr=10.0)
    with pytest.raises(NonFiniteLossError, match="learning rate"):
        fit(model, TensorLoader(x, y, 64), loss_fn=nn.functional.mse_loss, optimizer=opt, epochs=500,
            metrics=(), progress=False)


def test_on_epoch_can_stop_early_and_scheduler_steps():
    data, _ = problem()
    model = MLP(2, hidden=(8,), out_features=3)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    hist = fit(model, data, loss_fn=nn.functional.cross_entropy, optimizer=opt, epochs=10, scheduler=sched,
               on_epoch=lambda epoch, h: epoch >= 3, progress=False)
    assert len(hist) == 3
    assert hist["lr"] == pytest.approx([0.1, 0.05, 0.025])


def test_fit_accepts_any_iterable_of_batches():
    x, y = torch.randn(30, 4), torch.randn(30, 1)
    batches = [(x[i:i + 10], y[i:i + 10]) for i in range(0, 30, 10)]
    model = nn.Linear(4, 1)
    hist = fit(model, batches, loss_fn=nn.functional.mse_loss, optimizer=torch.optim.SGD(model.parameters(), 0.05),
               epochs=20, metrics=("mse",), progress=False)
    assert hist["train_loss"][-1] < hist["train_loss"][0]
    assert hist["train_mse"][0] == pytest.approx(hist["train_loss"][0], rel=1e-5)


def test_empty_data_and_bad_epochs_are_refused():
    model = nn.Linear(2, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="no batches"):
        fit(model, [], loss_fn=nn.functional.cross_entropy, optimizer=opt, epochs=1, progress=False)
    with pytest.raises(ValueError, match="epochs must be"):
        fit(model, [], loss_fn=nn.functional.cross_entropy, optimizer=opt, epochs=-1, progress=False)
    assert math.isnan(History([{"a": 1.0}, {"b": 2.0}])["a"][1])
