"""On CUDA only: the week 3 CNN and ResNet on CIFAR-10-shaped tensors (3 x 32 x 32, 10 classes).

Four ways to train the same model on the same data, images per second over an epoch (median after warm-up):

1. ``raw fp32``: the raw loop, fp32 (TF32 off), NCHW, cudnn.benchmark off (what a first PyTorch script does)
2. ``fit fp32``: fit with amp="off", channels_last=False, TF32 off (cudnn.benchmark on, fused optimizer step)
3. ``fit auto``: fit's defaults on CUDA: bf16 autocast, channels_last, cudnn.benchmark, fused optimizer step
4. ``fit auto + compile``: the same through torch.compile

The share of the GPU's peak: FLOPs of one training step (forward + backward, counted by
torch.utils.flop_counter) x steps per second / the datasheet's dense peak for that precision.
"""

from __future__ import annotations

import contextlib
import time

import torch
from torch.nn import functional as F

from bench.fit_vs_raw import class_hits, raw_epoch
from bench.timing import median, spread
from esc_course import TensorLoader, fit

# dense peak TFLOP/s from the vendors' datasheets (bf16 on tensor cores; fp32 without TF32), by device-name marker
PEAK_TFLOPS = [
    ("H100 PCIe", {"bf16": 756.0, "fp32": 51.0}),
    ("H100 NVL", {"bf16": 835.0, "fp32": 60.0}),
    ("H100", {"bf16": 989.0, "fp32": 67.0}),  # SXM (HBM3)
    ("H200", {"bf16": 989.0, "fp32": 67.0}),
    ("A100", {"bf16": 312.0, "fp32": 19.5}),
    ("L40S", {"bf16": 362.0, "fp32": 91.6}),
    ("L4", {"bf16": 121.0, "fp32": 30.3}),
    ("A10", {"bf16": 125.0, "fp32": 31.2}),
]


def peak(name: str) -> dict | None:
    for marker, values in PEAK_TFLOPS:
        if marker in name:
            return values
    return None


def models() -> dict:
    from esc_course.models.cnn import build_cnn

    return {
        "cnn": lambda: build_cnn("vgg", in_channels=3, num_classes=10, image_size=32, batch_norm=True),
        "resnet": lambda: build_cnn("resnet", in_channels=3, num_classes=10, image_size=32),
    }


def step_flops(make, device, batch: int) -> float:
    """FLOPs of one training step (forward and backward) on a batch, counted in fp32."""
    from torch.utils.flop_counter import FlopCounterMode

    model = make().to(device)
    x = torch.randn(batch, 3, 32, 32, device=device)
    y = torch.randint(0, 10, (batch,), device=device)
    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(model(x), y).backward()
    return float(counter.get_total_flops())


@contextlib.contextmanager
def true_fp32(on: bool):
    """fp32 that is fp32: PyTorch lets cuDNN run fp32 convolutions as TF32 by default, which would make the fp32
    baseline faster than its name and its share of the fp32 peak wrong. The old flags are put back after."""
    if not on:
        yield
        return
    before = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = before


def throughput(make, data: TensorLoader, device, mode: str, epochs: int) -> list[float]:
    """Seconds per epoch (the first one, with compilation and autotuning, excluded)."""
    with true_fp32(mode.endswith("fp32")):
        return _throughput(make, data, device, mode, epochs)


def _throughput(make, data: TensorLoader, device, mode: str, epochs: int) -> list[float]:
    torch.manual_seed(0)
    model = make().to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    if mode == "raw fp32":
        before = torch.backends.cudnn.benchmark
        torch.backends.cudnn.benchmark = False
        try:
            durations = []
            for _ in range(epochs + 1):
                start = time.perf_counter()
                raw_epoch(model, data, F.cross_entropy, opt, class_hits)
                durations.append(time.perf_counter() - start)
        finally:
            torch.backends.cudnn.benchmark = before
        return durations[1:]
    options = {"fit fp32": dict(amp="off", channels_last=False), "fit auto": {},
               "fit auto + compile": dict(compile=True)}[mode]
    stamps = [time.perf_counter()]
    fit(model, data, loss_fn=F.cross_entropy, optimizer=opt, epochs=epochs + 1, progress=False,
        on_epoch=lambda e, h: stamps.append(time.perf_counter()), **options)
    return [b - a for a, b in zip(stamps, stamps[1:])][1:]


MODES = ("raw fp32", "fit fp32", "fit auto", "fit auto + compile")


def run(device: torch.device, quick: bool = False) -> dict:
    if device.type != "cuda" or not torch.cuda.is_available():
        return {"skipped": "no CUDA device"}
    n, batch, epochs = (8192, 256, 2) if quick else (32768, 256, 4)
    return measure(device, torch.cuda.get_device_name(device), n, batch, epochs)


def measure(device: torch.device, name: str, n: int, batch: int, epochs: int, modes=MODES) -> dict:
    """Images per second of every model in every mode, the speed-up over raw fp32 and the share of ``name``'s
    peak. ``run`` calls it on CUDA; the tests call it on the CPU with tiny sizes to keep the section working."""
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(n, 3, 32, 32, generator=g), torch.randint(0, 10, (n,), generator=g)
    data = TensorLoader(x, y, batch, device=device, generator=torch.Generator().manual_seed(0))
    bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
    result = {"device_name": name, "images": n, "batch_size": batch, "peak_tflops": peak(name),
              "bf16_supported": bf16, "models": {}}
    for model_name, make in models().items():
        flops = step_flops(make, device, batch)
        rows = {}
        for mode in modes:
            try:
                seconds = throughput(make, data, device, mode, epochs)
            except Exception as err:  # noqa: BLE001 - e.g. torch.compile without a working compiler
                rows[mode] = {"error": f"{type(err).__name__}: {err}"[:300]}
                continue
            s = median(seconds)
            steps_per_s = len(data) / s
            precision = "bf16" if mode.startswith("fit auto") and bf16 else "fp32"
            achieved = flops * steps_per_s / 1e12
            top = (result["peak_tflops"] or {}).get(precision)
            rows[mode] = {"images_per_s": n / s, "spread": spread(seconds), "tflops": achieved,
                          "precision": precision, "share_of_peak": achieved / top if top else None}
        base = rows.get("raw fp32", {}).get("images_per_s")
        for row in rows.values():
            if base and "images_per_s" in row:
                row["speedup_vs_raw_fp32"] = row["images_per_s"] / base
        result["models"][model_name] = {"step_gflops": flops / 1e9, "modes": rows}
    return result


def report(result: dict) -> str:
    from esc_course.viz import table_text

    if "skipped" in result:
        return f"CUDA section skipped: {result['skipped']}"
    rows = []
    for model_name, r in result["models"].items():
        for mode, m in r["modes"].items():
            if "error" in m:
                rows.append({"model": model_name, "mode": mode, "images/s": m["error"]})
                continue
            rows.append({"model": model_name, "mode": mode, "images/s": m["images_per_s"],
                         "x raw fp32": m.get("speedup_vs_raw_fp32"), "TFLOP/s": m["tflops"],
                         "share of peak": m["share_of_peak"]})
    return f"{result['device_name']} (peak {result['peak_tflops']} TFLOP/s)\n" + table_text(rows, digits=3)
