"""``fit`` against the raw loop it wraps: same model, same data order, same seed; median wall time per epoch.

The raw loop is the strict version: it also sums the loss (and counts correct predictions) on the device and
reads them once per epoch, as fit does, so the ratio measures only what fit adds (argument checks, the first-batch
check, history rows, the error handlers). Both models must end with bit-identical parameters: the check that the
two loops did the same computation.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from bench.timing import interleaved, median, spread
from esc_course import TensorLoader, fit


def raw_epoch(model: nn.Module, data, loss_fn: Callable, optimizer: torch.optim.Optimizer, classify: bool):
    """The 15-line loop: forward, loss, backward, step; loss and accuracy summed on the device, one read."""
    model.train()
    loss_sum, correct, n = 0.0, 0.0, 0
    for x, y in data:
        out = model(x)
        loss = loss_fn(out, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        loss_sum = loss_sum + loss.detach() * y.shape[0]
        if classify:
            correct = correct + (out.argmax(dim=1) == y).sum()
        n += y.shape[0]
    return float(loss_sum) / n, (float(correct) / n if classify else None)


@dataclass
class Case:
    description: str
    model: Callable[[], nn.Module]
    data: Callable[[], tuple[torch.Tensor, torch.Tensor]]
    optimizer: Callable[[nn.Module], torch.optim.Optimizer]
    loss_fn: Callable
    classify: bool
    batch_size: int


def _mlp_xor():
    from esc_course.data.toy import xor

    return xor(samples_per_corner=256, noise=0.25, seed=0)


def _mlp():
    from esc_course.models import MLP

    return MLP(2, hidden=(16,), out_features=2, activation="tanh")


def _digits():
    from esc_course.data.vision import vision

    return vision("digits", split="train")


def _week3_cnn():
    from esc_course.models.cnn import build_cnn

    return build_cnn("vgg", in_channels=1, num_classes=10, image_size=8, batch_norm=True)  # the lab's default


def _adding():
    from esc_course.data.sequences import adding_problem

    return adding_problem(1024, 50, generator=0)


def _week7_lstm():
    from esc_course.models.rnn import SequenceRegressor

    return SequenceRegressor(input_size=2, hidden_size=32, cell="lstm")


CASES = {
    "mlp_xor": Case("MLP 2-16-2 on noisy XOR, 1024 points, batches of 32", _mlp, _mlp_xor,
                    lambda m: torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9), F.cross_entropy, True, 32),
    "mlp_xor_loss_only": Case("the same, no accuracy (fit metrics=(); the raw loop sums only the loss)", _mlp, _mlp_xor,
                              lambda m: torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9), F.cross_entropy,
                              False, 32),
    "cnn_week3": Case("week 3 CNN (SmallVGG + batch norm) on the digits, 1438 images 1x8x8, batches of 64",
                      _week3_cnn, _digits, lambda m: torch.optim.Adam(m.parameters(), lr=3e-3), F.cross_entropy,
                      True, 64),
    "lstm_week7": Case("week 7 LSTM (hidden 32) on the adding problem, 1024 sequences of 50 steps, batches of 64",
                       _week7_lstm, _adding, lambda m: torch.optim.Adam(m.parameters(), lr=1e-2), F.mse_loss,
                       False, 64),
}


def compare(case: Case, device: torch.device, rounds: int = 6, block: int = 4) -> dict:
    """Median seconds per epoch of fit and of the raw loop, interleaved in blocks of ``block`` epochs."""
    x, y = case.data()
    models, opts, loaders = [], [], []
    for _ in range(2):  # two identical set-ups: one for fit, one for the raw loop
        torch.manual_seed(0)
        model = case.model().to(device)
        models.append(model)
        opts.append(case.optimizer(model))
        loaders.append(TensorLoader(x, y, case.batch_size, device=device,
                                    generator=torch.Generator().manual_seed(0)))
    metrics = ("accuracy",) if case.classify else ()

    cpu = {"fit": [], "raw": []}  # this process's CPU seconds per epoch: less sensitive to other processes

    def with_fit() -> list[float]:
        stamps = [(time.perf_counter(), time.process_time())]
        fit(models[0], loaders[0], loss_fn=case.loss_fn, optimizer=opts[0], epochs=block, metrics=metrics,
            progress=False, amp="off", channels_last=False,
            on_epoch=lambda e, h: stamps.append((time.perf_counter(), time.process_time())))
        cpu["fit"].extend(b[1] - a[1] for a, b in zip(stamps, stamps[1:]))
        return [b[0] - a[0] for a, b in zip(stamps, stamps[1:])]

    def with_raw() -> list[float]:
        durations = []
        for _ in range(block):
            start, start_cpu = time.perf_counter(), time.process_time()
            raw_epoch(models[1], loaders[1], case.loss_fn, opts[1], case.classify)
            durations.append(time.perf_counter() - start)
            cpu["raw"].append(time.process_time() - start_cpu)
        return durations

    times = interleaved({"fit": with_fit, "raw": with_raw}, rounds=rounds)
    same = all(torch.equal(a, b) for a, b in zip(models[0].state_dict().values(), models[1].state_dict().values()))
    fit_s, raw_s = median(times["fit"]), median(times["raw"])
    n = len(times["fit"])
    cpu = {k: v[-n:] for k, v in cpu.items()}  # the same epochs as the wall times (warm-up dropped)
    return {"description": case.description, "steps_per_epoch": len(loaders[0]), "epochs_timed": n,
            "fit_ms": 1e3 * fit_s, "raw_ms": 1e3 * raw_s, "ratio": fit_s / raw_s,
            "ratio_of_fastest": min(times["fit"]) / min(times["raw"]),  # least disturbed by other processes
            "cpu_ratio": median(cpu["fit"]) / median(cpu["raw"]),
            "fit_spread": spread(times["fit"]), "raw_spread": spread(times["raw"]), "same_parameters": same}


def run(device: torch.device, quick: bool = False) -> dict:
    rounds, block = (2, 2) if quick else (8, 4)
    return {name: compare(case, device, rounds, block) for name, case in CASES.items()}


def report(results: dict) -> str:
    from esc_course.viz import table_text

    rows = [{"case": name, "fit ms/epoch": r["fit_ms"], "raw ms/epoch": r["raw_ms"], "fit/raw": r["ratio"],
             "fastest fit/raw": r["ratio_of_fastest"], "CPU-time fit/raw": r["cpu_ratio"],
             "noise": f"{100 * max(r['fit_spread'], r['raw_spread']):.1f}%", "same params": r["same_parameters"]}
            for name, r in results.items()]
    return table_text(rows, digits=3)
