"""Synthetic sequence tasks: sine/time-series forecasting, the adding problem and the copy task.

Every generator takes a ``torch.Generator`` (or a seed) so a data set is reproducible on its own, independent of
other random draws. Shapes are batch first: x (N, T, features).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch


def _generator(generator: torch.Generator | int | None) -> torch.Generator | None:
    if generator is None or isinstance(generator, torch.Generator):
        return generator
    return torch.Generator().manual_seed(int(generator))


def _positive(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


# -- time series ---------------------------------------------------------------------------------------------

def sine_series(length: int, *, periods: Sequence[float] = (25.0, 60.0), amplitudes: Sequence[float] = (1.0, 0.5),
                noise: float = 0.05, generator: torch.Generator | int | None = None) -> torch.Tensor:
    """A 1-D series (length,) = sum of sines with the given periods (in steps) and random phases, plus noise."""
    _positive("length", length)
    if len(periods) != len(amplitudes) or not periods:
        raise ValueError(f"periods and amplitudes must be non-empty and of equal length, got {list(periods)} "
                         f"and {list(amplitudes)}")
    if any(p <= 0 for p in periods):
        raise ValueError(f"periods must be positive (steps per cycle), got {list(periods)}")
    if noise < 0:
        raise ValueError(f"noise must be >= 0 (standard deviation), got {noise}")
    gen = _generator(generator)
    t = torch.arange(length, dtype=torch.float32)
    phases = torch.rand(len(periods), generator=gen) * 2 * math.pi
    series = sum(a * torch.sin(2 * math.pi * t / p + ph) for p, a, ph in zip(periods, amplitudes, phases))
    return series + noise * torch.randn(length, generator=gen)


def sliding_windows(series: torch.Tensor, window: int, horizon: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Forecasting pairs from a series (L,) or (L, F): x (N, window, F) and y (N, horizon) of feature 0.

    Window i is ``series[i : i + window]`` and its target the next ``horizon`` values; N = L - window - horizon + 1.
    Split in time (train on the first windows, test on the last), never at random: neighbouring windows overlap.
    """
    _positive("window", window)
    _positive("horizon", horizon)
    if series.ndim == 1:
        series = series[:, None]
    if series.ndim != 2:
        raise ValueError(f"series must have shape (L,) or (L, F), got {tuple(series.shape)}")
    n = series.shape[0] - window - horizon + 1
    if n < 1:
        raise ValueError(f"a series of length {series.shape[0]} is too short for window={window} + "
                         f"horizon={horizon}")
    x = series.unfold(0, window, 1)[:n].transpose(1, 2)  # (N, window, F)
    y = series[window:, 0].unfold(0, horizon, 1)[:n]  # (N, horizon)
    return x.contiguous(), y.contiguous()


def sine_forecasting(n_steps: int = 2000, *, window: int = 40, horizon: int = 1, noise: float = 0.05,
                     generator: torch.Generator | int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Windows of a noisy two-sine series: x (N, window, 1), y (N, horizon), in time order."""
    return sliding_windows(sine_series(n_steps, noise=noise, generator=generator), window, horizon)


def persistence_mse(x: torch.Tensor, y: torch.Tensor) -> float:
    """MSE of the naive forecast "the next values equal the last one seen": the baseline a model must beat."""
    last = x[:, -1, :1]  # (N, 1), feature 0
    return float((y - last).pow(2).mean())


# -- the adding problem --------------------------------------------------------------------------------------

ADDING_BASELINE_MSE = 1.0 / 6.0  # Var(u1 + u2) for u1, u2 ~ U[0, 1]: the MSE of always answering the mean, 1.0


def adding_problem(n: int, length: int, *, generator: torch.Generator | int | None = None
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """The adding problem (Hochreiter and Schmidhuber 1997), in the form of Le et al. (2015), arXiv:1504.00941.

    Each sequence has ``length`` steps of two features: a value uniform in [0, 1] and a marker that is 1 at
    exactly two steps, one in the first half and one in the second half. The target is the sum of the two
    marked values. Answering 1.0 always gives MSE = Var(u1 + u2) = 1/6 ~ 0.167 (``ADDING_BASELINE_MSE``);
    beating it means the network carried the first marked value across at least ``length / 2`` steps.
    Returns x (n, length, 2) float32 and y (n, 1).
    """
    _positive("n", n)
    if isinstance(length, bool) or not isinstance(length, int) or length < 2:
        raise ValueError(f"length must be an integer >= 2 (two marked steps), got {length!r}")
    gen = _generator(generator)
    values = torch.rand(n, length, generator=gen)
    half = length // 2
    first = torch.randint(0, half, (n,), generator=gen)
    second = torch.randint(half, length, (n,), generator=gen)
    markers = torch.zeros(n, length)
    rows = torch.arange(n)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    y = (values[rows, first] + values[rows, second])[:, None]
    return torch.stack([values, markers], dim=2), y


# -- the copy task -------------------------------------------------------------------------------------------

def copy_task(n: int, *, symbols: int = 8, seq_len: int = 10, delay: int = 20,
              generator: torch.Generator | int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The copy (memory) task (Hochreiter and Schmidhuber 1997; as in Arjovsky et al. 2016, arXiv:1511.06464).

    Tokens: 0 = blank, 1..symbols = data, symbols + 1 = the "now repeat" delimiter. An input is ``seq_len``
    random data tokens, ``delay - 1`` blanks, the delimiter, then ``seq_len`` blanks; the target is blank
    everywhere except the last ``seq_len`` steps, where it repeats the data. Total length T = 2 seq_len + delay.
    Returns x (n, T, symbols + 2) one-hot float32 and y (n, T) int64 token ids, for a per-step classifier.
    """
    for name, value in (("n", n), ("symbols", symbols), ("seq_len", seq_len), ("delay", delay)):
        _positive(name, value)
    gen = _generator(generator)
    total = 2 * seq_len + delay
    data = torch.randint(1, symbols + 1, (n, seq_len), generator=gen)
    tokens = torch.zeros(n, total, dtype=torch.long)
    tokens[:, :seq_len] = data
    tokens[:, seq_len + delay - 1] = symbols + 1
    y = torch.zeros(n, total, dtype=torch.long)
    y[:, -seq_len:] = data
    x = torch.nn.functional.one_hot(tokens, symbols + 2).float()
    return x, y


def copy_baseline_loss(*, symbols: int = 8, seq_len: int = 10, delay: int = 20) -> float:
    """Cross-entropy per step (nats) of the best memoryless answer: blank where blanks are due (certain to be
    right once the delimiter is seen), uniform over the symbols where the data are due:
    seq_len log(symbols) / (2 seq_len + delay)."""
    return seq_len * math.log(symbols) / (2 * seq_len + delay)
