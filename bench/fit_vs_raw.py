"""``fit`` against the raw loop it wraps: same model, same data order, same seed; wall time per epoch, paired.

The raw loop is the strict version: it keeps the per-step loss (and the count of correct predictions) on the
device and reads them once per epoch, with the same cheap bookkeeping as fit, and its optimizer is the same
(unfused on both sides), so the ratio measures only what fit adds per epoch (the summary, the history row, the
checks, the error handlers, the hooks). fit's one-off set-up per call (argument checks, the first-batch check) is
reported on its own. Both models must end with bit-identical parameters: the check that the two loops did the
same computation.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from bench.timing import median, median_interval, spread
from esc_course import TensorLoader, fit


def class_hits(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Correct predictions of (N, C) logits: what a raw loop writes."""
    return (out.argmax(dim=1) == y).sum()


def logit_hits(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Correct predictions of one logit per sample, (N, 1): positive means class 1."""
    return ((out.squeeze(1) > 0) == y).sum()


def raw_epoch(model: nn.Module, data, loss_fn: Callable, optimizer: torch.optim.Optimizer,
              hits_fn: Callable | None):
    """The 15-line loop: forward, loss, backward, step; per-step losses and correct counts (``hits_fn``, None for
    none) kept on the device (appended, as fit does: the cheapest bookkeeping there is) and read once at the end
    of the epoch."""
    model.train()
    losses, sizes, hits = [], [], []
    for x, y in data:
        out = model(x)
        loss = loss_fn(out, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.detach())
        sizes.append(y.shape[0])
        if hits_fn is not None:
            hits.append(hits_fn(out, y))
    n = sum(sizes)
    loss_sum = float((torch.stack(losses) * torch.tensor(sizes, device=losses[0].device)).sum())
    return loss_sum / n, (float(torch.stack(hits).sum()) / n if hits_fn is not None else None)


@dataclass
class Case:
    description: str
    model: Callable[[], nn.Module]
    data: Callable[[], tuple[torch.Tensor, torch.Tensor]]
    optimizer: Callable[[nn.Module], torch.optim.Optimizer]
    loss_fn: Callable
    hits: Callable | None  # the raw loop's count of correct predictions (fit counts accuracy); None: loss only
    batch_size: int


def _mlp_xor():
    from esc_course.data.toy import xor

    return xor(samples_per_corner=256, noise=0.25, seed=0)


def _xor_corners():
    from esc_course.data.toy import xor

    return xor()  # the 4 corners


def _xor_net():
    from esc_course.models import MLP

    return MLP(2, hidden=(8,), out_features=1, activation="tanh")


def bce_logits(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Week 1's loss: binary cross-entropy on one logit per sample."""
    return F.binary_cross_entropy_with_logits(out.squeeze(-1), y.float())


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
                    lambda m: torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9, fused=False), F.cross_entropy, class_hits, 32),
    "mlp_xor_loss_only": Case("the same, no accuracy (fit metrics=(); the raw loop sums only the loss)", _mlp, _mlp_xor,
                              lambda m: torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9, fused=False), F.cross_entropy,
                              None, 32),
    "cnn_week3": Case("week 3 CNN (SmallVGG + batch norm) on the digits, 1438 images 1x8x8, batches of 64",
                      _week3_cnn, _digits, lambda m: torch.optim.Adam(m.parameters(), lr=3e-3, fused=False), F.cross_entropy,
                      class_hits, 64),
    "lstm_week7": Case("week 7 LSTM (hidden 32) on the adding problem, 1024 sequences of 50 steps, batches of 64",
                       _week7_lstm, _adding, lambda m: torch.optim.Adam(m.parameters(), lr=1e-2, fused=False), F.mse_loss,
                       None, 64),
    "xor_full_batch": Case("week 1 MLP 2-8-1 (one logit) on XOR's 4 points, full batch: one step per epoch",
                           _xor_net, _xor_corners,
                           lambda m: torch.optim.SGD(m.parameters(), lr=0.5, momentum=0.9, fused=False), bce_logits,
                           logit_hits, 4),
}


def compare(case: Case, device: torch.device, seconds: float = 12.0, block: int = 8, min_blocks: int = 4) -> dict:
    """Seconds per epoch of fit and of the raw loop, in alternating blocks of ``block`` consecutive epochs: fit's
    ``on_epoch`` hook runs ``block`` raw epochs after every ``block`` fit epochs. Consecutive epochs are how both
    are used (an epoch finds the caches as its own previous epoch left them); alternating blocks make a machine
    getting busier or quieter (this one's epoch times wander by 5-15 %) fall on both alike. The ratio is the median
    over blocks of fit's median epoch against the mean of the raw blocks just before and just after it. Blocks are
    taken for about ``seconds`` (at least ``min_blocks`` after the first, which is a warm-up).

    A fit epoch is timed from the end of the previous one (or of the raw block before it) to fit's next
    ``on_epoch`` call: everything fit does per epoch (the steps, the summary with its one host sync, the history
    row, its checks) is inside it.
    """
    x, y = case.data()
    models, opts, loaders = [], [], []
    for _ in range(2):  # two identical set-ups: one for fit, one for the raw loop
        torch.manual_seed(0)
        model = case.model().to(device)
        models.append(model)
        opts.append(case.optimizer(model))
        loaders.append(TensorLoader(x, y, case.batch_size, device=device,
                                    generator=torch.Generator().manual_seed(0)))
    metrics = ("accuracy",) if case.hits is not None else ()
    wall: dict[str, list[list[float]]] = {"fit": [[]], "raw": []}  # blocks of epoch times
    cpu: dict[str, list[float]] = {"fit": [], "raw": []}  # this process's CPU seconds: blind to other processes
    mark = [time.perf_counter(), time.process_time()]  # where the current fit epoch started

    def after_fit_epoch(epoch: int, history) -> bool:
        now, now_cpu = time.perf_counter(), time.process_time()
        wall["fit"][-1].append(now - mark[0])
        cpu["fit"].append(now_cpu - mark[1])
        if len(wall["fit"][-1]) == block:
            wall["raw"].append([])
            for _ in range(block):
                start, start_cpu = time.perf_counter(), time.process_time()
                raw_epoch(models[1], loaders[1], case.loss_fn, opts[1], case.hits)
                wall["raw"][-1].append(time.perf_counter() - start)
                cpu["raw"].append(time.process_time() - start_cpu)
            if len(wall["raw"]) > min_blocks and time.perf_counter() - started >= seconds:
                return True  # stops fit
            wall["fit"].append([])
        mark[:] = [time.perf_counter(), time.process_time()]
        return False

    started = time.perf_counter()
    fit(models[0], loaders[0], loss_fn=case.loss_fn, optimizer=opts[0], epochs=100_000, metrics=metrics,
        progress=False, amp="off", channels_last=False, on_epoch=after_fit_epoch)
    same = all(torch.equal(a, b) for a, b in zip(models[0].state_dict().values(), models[1].state_dict().values()))
    first = {"fit": wall["fit"][0][0], "raw": wall["raw"][0][0]}  # fit's holds its one-off set-up
    fit_blocks, raw_blocks = wall["fit"][1:], wall["raw"][1:]  # the first block of each is a warm-up
    cpu = {k: v[block:] for k, v in cpu.items()}
    ratios = [median(f) / ((median(before) + median(after)) / 2)
              for f, before, after in zip(fit_blocks[1:], raw_blocks, raw_blocks[1:])]
    fit_epochs = [t for b in fit_blocks for t in b]
    raw_epochs = [t for b in raw_blocks for t in b]
    quartiles = statistics.quantiles(ratios, n=4)
    low, high = median_interval(ratios)
    return {"description": case.description, "steps_per_epoch": len(loaders[0]), "block": block,
            "blocks_timed": len(ratios), "epochs_timed": len(fit_epochs),
            "fit_ms": 1e3 * median(fit_epochs), "raw_ms": 1e3 * median(raw_epochs),
            "ratio": median(ratios), "ratio_low": low, "ratio_high": high,  # ~95 % interval of the median
            "ratio_q1": quartiles[0], "ratio_q3": quartiles[2],
            "ratio_of_medians": median(fit_epochs) / median(raw_epochs),
            "ratio_of_fastest": min(fit_epochs) / min(raw_epochs),
            "cpu_ratio": median(cpu["fit"]) / median(cpu["raw"]),
            "fit_first_epoch_ms": 1e3 * first["fit"], "raw_first_epoch_ms": 1e3 * first["raw"],
            "fit_spread": spread(fit_epochs), "raw_spread": spread(raw_epochs), "same_parameters": same}


def run(device: torch.device, quick: bool = False) -> dict:
    # 26+ blocks of 8: the median's ~95 % interval is about +-1 % for the MLP (70 blocks, steady epochs) and
    # +-3 % for the CNN and the LSTM on this noisy 2-core machine; the targets say "inconclusive" when it spans 1.02
    seconds, block, min_blocks = (0.5, 2, 4) if quick else (12.0, 8, 26)
    return {name: compare(case, device, seconds, block, min_blocks) for name, case in CASES.items()}


def report(results: dict) -> str:
    from esc_course.viz import table_text

    rows = [{"case": name, "fit ms/epoch": r["fit_ms"], "raw ms/epoch": r["raw_ms"], "fit/raw": r["ratio"],
             "blocks": f"{r['blocks_timed']}x{r['block']}",
             "95% interval": f"{r['ratio_low']:.3f}-{r['ratio_high']:.3f}", "fastest fit/raw": r["ratio_of_fastest"],
             "CPU-time fit/raw": r["cpu_ratio"],
             "1st epoch fit/raw ms": f"{r['fit_first_epoch_ms']:.3g}/{r['raw_first_epoch_ms']:.3g}",
             "noise": f"{100 * max(r['fit_spread'], r['raw_spread']):.1f}%", "same params": r["same_parameters"]}
            for name, r in results.items()]
    return table_text(rows, digits=3)
