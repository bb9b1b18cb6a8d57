"""TensorLoader against torch.utils.data.DataLoader on an MNIST-sized tensor data set (60,000 x 1 x 28 x 28).

Two measurements: fetching every batch of an epoch and doing nothing with it, and one training epoch of a small
MLP through ``fit``. The DataLoader runs with its defaults (no workers) and with 1..cores worker processes
(persistent, so their start-up is not counted; the first epoch is a warm-up); the best of these is the issue's
"best DataLoader". One more DataLoader is shown beside them: a BatchSampler with ``batch_size=None``, which hands
the data set a whole batch of indices at once (the known trick for in-memory tensors) and so closes most of the gap.
The loaders run on the CPU whatever ``--device`` says: this compares ways of making batches, not devices.
A DataLoader indexes the data set one sample at a time and collates the samples into a batch in Python, which is
the cost TensorLoader's one gather per batch avoids (pytorch/pytorch#106704).
"""

from __future__ import annotations

import os
import time

import torch
from torch.nn import functional as F
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, TensorDataset

from bench.timing import interleaved, median, spread
from esc_course import TensorLoader, fit
from esc_course.models import MLP

BATCH = 128
BATCH_SAMPLER = "DataLoader (BatchSampler)"  # not one of the settings: shown, not counted as "best"


def mnist_sized(n: int = 60_000):
    g = torch.Generator().manual_seed(0)
    return torch.rand(n, 1, 28, 28, generator=g), torch.randint(0, 10, (n,), generator=g)


def make_loaders(x, y, workers: list[int]) -> dict[str, object]:
    loaders = {"TensorLoader": TensorLoader(x, y, BATCH, generator=torch.Generator().manual_seed(0))}
    dataset = TensorDataset(x, y)
    loaders["DataLoader (default)"] = DataLoader(dataset, batch_size=BATCH, shuffle=True)
    loaders[BATCH_SAMPLER] = DataLoader(dataset, batch_size=None,
                                        sampler=BatchSampler(RandomSampler(dataset), BATCH, drop_last=False))
    for w in workers:
        loaders[f"DataLoader ({w} workers)"] = DataLoader(dataset, batch_size=BATCH, shuffle=True, num_workers=w,
                                                          persistent_workers=True)
    return loaders


def fetch(loader) -> list[float]:
    start = time.perf_counter()
    for _ in loader:
        pass
    return [time.perf_counter() - start]


def mlp_epoch(loader, model, opt) -> list[float]:
    start = time.perf_counter()
    fit(model, loader, loss_fn=F.cross_entropy, optimizer=opt, epochs=1, progress=False)
    return [time.perf_counter() - start]


def run(device: torch.device, quick: bool = False) -> dict:
    x, y = mnist_sized(12_000 if quick else 60_000)
    workers = list(range(1, min(os.cpu_count() or 1, 4) + 1))
    loaders = make_loaders(x, y, workers)
    rounds = 2 if quick else 4
    fetched = interleaved({name: (lambda ld=ld: fetch(ld)) for name, ld in loaders.items()}, rounds=rounds)
    models = {}
    for name in loaders:
        torch.manual_seed(0)
        model = MLP(28 * 28, hidden=(128,), out_features=10)
        models[name] = (model, torch.optim.SGD(model.parameters(), lr=0.05))
    trained = interleaved({name: (lambda ld=ld, m=models[name]: mlp_epoch(ld, *m)) for name, ld in loaders.items()},
                          rounds=max(rounds - 1, 1))
    batches = len(loaders["TensorLoader"])
    result = {"samples": len(y), "batch_size": BATCH, "batches": batches, "workers_tried": workers,
              "fetch": {}, "mlp_epoch": {}}
    for name in loaders:
        result["fetch"][name] = {"us_per_batch": 1e6 * median(fetched[name]) / batches,
                                 "spread": spread(fetched[name])}
        result["mlp_epoch"][name] = {"s_per_epoch": median(trained[name]), "spread": spread(trained[name])}
    data_loaders = [n for n in loaders if n.startswith("DataLoader") and n != BATCH_SAMPLER]
    best_fetch = min(data_loaders, key=lambda n: result["fetch"][n]["us_per_batch"])
    best_epoch = min(data_loaders, key=lambda n: result["mlp_epoch"][n]["s_per_epoch"])
    tl_fetch, tl_epoch = result["fetch"]["TensorLoader"]["us_per_batch"], \
        result["mlp_epoch"]["TensorLoader"]["s_per_epoch"]
    result["ratios"] = {
        "fetch_vs_default": result["fetch"]["DataLoader (default)"]["us_per_batch"] / tl_fetch,
        "fetch_vs_best": result["fetch"][best_fetch]["us_per_batch"] / tl_fetch, "fetch_best": best_fetch,
        "epoch_vs_default": result["mlp_epoch"]["DataLoader (default)"]["s_per_epoch"] / tl_epoch,
        "epoch_vs_best": result["mlp_epoch"][best_epoch]["s_per_epoch"] / tl_epoch, "epoch_best": best_epoch,
        "fetch_vs_batch_sampler": result["fetch"][BATCH_SAMPLER]["us_per_batch"] / tl_fetch,
        "epoch_vs_batch_sampler": result["mlp_epoch"][BATCH_SAMPLER]["s_per_epoch"] / tl_epoch,
    }
    for ld in loaders.values():  # stop the persistent workers
        getattr(ld, "_iterator", None) and ld._iterator._shutdown_workers()
    return result


def report(result: dict) -> str:
    from esc_course.viz import table_text

    rows = [{"loader": name, "us/batch (fetch)": result["fetch"][name]["us_per_batch"],
             "fetch x slower": result["fetch"][name]["us_per_batch"] / result["fetch"]["TensorLoader"]["us_per_batch"],
             "s/epoch (MLP)": result["mlp_epoch"][name]["s_per_epoch"],
             "epoch x slower": result["mlp_epoch"][name]["s_per_epoch"]
             / result["mlp_epoch"]["TensorLoader"]["s_per_epoch"]}
            for name in result["fetch"]]
    r = result["ratios"]
    return (table_text(rows, digits=3) + f"\nTensorLoader speed-up, batch fetching: {r['fetch_vs_default']:.1f}x "
            f"against the default DataLoader, {r['fetch_vs_best']:.1f}x against the best ({r['fetch_best']}); "
            f"MLP epoch: {r['epoch_vs_default']:.2f}x / {r['epoch_vs_best']:.2f}x ({r['epoch_best']}); against "
            f"{BATCH_SAMPLER}: {r['fetch_vs_batch_sampler']:.1f}x fetching, {r['epoch_vs_batch_sampler']:.2f}x epoch")
