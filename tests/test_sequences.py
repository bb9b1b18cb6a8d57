"""Sequence tasks: the adding problem, the copy task and sine forecasting windows, checked against closed forms."""

import math

import pytest
import torch
import torch.nn.functional as F

from esc_course.data.sequences import (
    ADDING_BASELINE_MSE,
    adding_problem,
    copy_baseline_loss,
    copy_task,
    persistence_mse,
    sine_forecasting,
    sine_series,
    sliding_windows,
)


def test_adding_problem_structure():
    x, y = adding_problem(500, 30, generator=0)
    assert x.shape == (500, 30, 2) and y.shape == (500, 1) and x.dtype == y.dtype == torch.float32
    values, markers = x[..., 0], x[..., 1]
    assert values.min() >= 0 and values.max() <= 1
    assert torch.all(markers.sum(1) == 2) and set(markers.unique().tolist()) == {0.0, 1.0}
    assert torch.all(markers[:, :15].sum(1) == 1) and torch.all(markers[:, 15:].sum(1) == 1)  # one per half
    torch.testing.assert_close(y[:, 0], (values * markers).sum(1))


def test_adding_problem_is_reproducible_and_seed_dependent():
    a, b, c = adding_problem(8, 10, generator=3), adding_problem(8, 10, generator=3), adding_problem(8, 10, generator=4)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])


def test_adding_baseline_is_the_variance_of_the_sum():
    assert ADDING_BASELINE_MSE == pytest.approx(1 / 6)
    _, y = adding_problem(200_000, 4, generator=1)
    assert float(y.mean()) == pytest.approx(1.0, abs=0.01)  # so 1.0 is the best constant answer
    assert float((y - 1.0).pow(2).mean()) == pytest.approx(ADDING_BASELINE_MSE, abs=0.003)


def test_copy_task_structure():
    x, y = copy_task(50, symbols=5, seq_len=4, delay=6, generator=0)
    total = 2 * 4 + 6
    assert x.shape == (50, total, 7) and y.shape == (50, total) and y.dtype == torch.long
    tokens = x.argmax(-1)
    assert torch.all(x.sum(-1) == 1)  # one-hot
    data = tokens[:, :4]
    assert data.min() >= 1 and data.max() <= 5
    assert torch.all(tokens[:, 4:9] == 0) and torch.all(tokens[:, 9] == 6)  # blanks, then the delimiter
    assert torch.all(tokens[:, 10:] == 0)
    assert torch.all(y[:, :-4] == 0) and torch.equal(y[:, -4:], data)


def test_copy_baseline_matches_the_memoryless_predictor():
    symbols, seq_len, delay = 8, 10, 20
    _, y = copy_task(64, symbols=symbols, seq_len=seq_len, delay=delay, generator=2)
    probs = torch.zeros(*y.shape, symbols + 2)
    probs[:, :-seq_len, 0] = 1.0  # blank, certain, until the copy starts
    probs[:, -seq_len:, 1:symbols + 1] = 1.0 / symbols  # then a uniform guess among the symbols
    loss = F.nll_loss(probs.clamp_min(1e-30).log().reshape(-1, symbols + 2), y.reshape(-1))
    assert float(loss) == pytest.approx(copy_baseline_loss(symbols=symbols, seq_len=seq_len, delay=delay), rel=1e-5)
    assert copy_baseline_loss(symbols=symbols, seq_len=seq_len, delay=delay) == pytest.approx(10 * math.log(8) / 40)


def test_sliding_windows_small_example():
    x, y = sliding_windows(torch.arange(10.0), window=3, horizon=2)
    assert x.shape == (6, 3, 1) and y.shape == (6, 2)
    assert x[0, :, 0].tolist() == [0, 1, 2] and y[0].tolist() == [3, 4]
    assert x[-1, :, 0].tolist() == [5, 6, 7] and y[-1].tolist() == [8, 9]
    features = torch.stack([torch.arange(6.0), -torch.arange(6.0)], 1)  # (L, F): targets come from feature 0
    x2, y2 = sliding_windows(features, window=2)
    assert x2.shape == (4, 2, 2) and y2[:, 0].tolist() == [2, 3, 4, 5]


def test_sine_series_is_periodic_without_noise():
    s = sine_series(700, periods=(25.0, 50.0), amplitudes=(1.0, 0.5), noise=0.0, generator=0)
    torch.testing.assert_close(s[50:], s[:-50], atol=1e-4, rtol=0)
    assert float(s.abs().max()) <= 1.5 + 1e-5
    noisy = sine_series(700, noise=0.1, generator=0)
    assert not torch.equal(noisy, sine_series(700, noise=0.1, generator=1))


def test_sine_forecasting_and_persistence_baseline():
    x, y = sine_forecasting(500, window=20, generator=0)
    assert x.shape == (480, 20, 1) and y.shape == (480, 1)
    torch.testing.assert_close(x[1:, -1, 0], y[:-1, 0])  # each target is the next window's last input
    assert persistence_mse(x, y) == pytest.approx(float((y[:, 0] - x[:, -1, 0]).pow(2).mean()))


def test_bad_arguments_name_the_argument():
    with pytest.raises(ValueError, match="length must be an integer >= 2"):
        adding_problem(4, 1)
    with pytest.raises(ValueError, match="n must be a positive integer"):
        adding_problem(0, 10)
    with pytest.raises(ValueError, match="delay must be a positive integer"):
        copy_task(4, delay=0)
    with pytest.raises(ValueError, match="too short for window=8"):
        sliding_windows(torch.arange(5.0), window=8)
    with pytest.raises(ValueError, match="periods and amplitudes"):
        sine_series(10, periods=(5.0,), amplitudes=(1.0, 2.0))
    with pytest.raises(ValueError, match="noise must be >= 0"):
        sine_series(10, noise=-1.0)
