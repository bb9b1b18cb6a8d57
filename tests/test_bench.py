"""The benchmarks themselves: `python -m bench --quick` runs, writes its JSON and checks what it compares.

Speed is not asserted here (the machines are noisy; the ratios are read from `make bench`), but the fit-vs-raw
comparison must be a fair one: both loops end with bit-identical parameters.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_quick_bench_runs_and_compares_like_with_like(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "bench", "--quick", "--only", "fit,loaders,cuda", "--threads", "1",
                           "--device", "cpu", "--out", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "== targets" in proc.stdout and "fit/raw <= 1.02 (mlp_xor)" in proc.stdout
    [path] = list(tmp_path.glob("cpu-*-quick.json"))
    results = json.loads(path.read_text())
    assert results["env"]["device"] == "cpu" and results["env"]["torch_threads"] == 1
    for name, r in results["fit"].items():
        assert r["same_parameters"] is True, f"{name}: fit and the raw loop did different computations"
        assert r["blocks_timed"] >= 3 and r["epochs_timed"] >= 4 * r["block"] and r["fit_first_epoch_ms"] > 0
        assert 0.2 < r["ratio"] < 5  # a sanity bound, not a speed target
    assert results["loaders"]["ratios"]["fetch_vs_best"] > 0
    targets = {t["target"]: t for t in results["targets"]}
    assert "TensorLoader fetch >= 5x best DataLoader" in targets
    assert results["cuda"] == {"skipped": "no CUDA device"} or "models" in results["cuda"]


def test_bench_refuses_an_unknown_section():
    proc = subprocess.run([sys.executable, "-m", "bench", "--only", "fit,nope"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2 and "unknown section(s) nope" in proc.stderr


def test_cuda_section_measures_every_mode(cpu):
    """The CUDA section's pipeline (throughput, FLOP count, speed-up, share of peak) on the CPU with tiny sizes:
    it runs for real only where a GPU is, so this keeps it from breaking unseen. torch.compile is left out here
    (minutes of C++ compilation on a 2-core CPU)."""
    import torch

    from bench import cuda

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = cuda.measure(cpu, "NVIDIA H100 80GB HBM3", n=64, batch=32, epochs=1, modes=cuda.MODES[:3])
    finally:
        torch.set_num_threads(threads)
    assert result["peak_tflops"] == {"bf16": 989.0, "fp32": 67.0} and result["bf16_supported"] is False
    for model in ("cnn", "resnet"):
        r = result["models"][model]
        assert r["step_gflops"] > 0
        assert set(r["modes"]) == {"raw fp32", "fit fp32", "fit auto"}
        for mode, m in r["modes"].items():
            assert "error" not in m, f"{model} {mode}: {m}"
            assert m["images_per_s"] > 0 and m["precision"] == "fp32" and 0 < m["share_of_peak"] < 1
    assert "H100" in cuda.report(result) and "x raw fp32" in cuda.report(result)


@pytest.mark.parametrize("case", ["mlp_xor", "lstm_week7", "xor_full_batch"])
def test_the_raw_loop_reports_what_fit_reports(case):
    """The benchmark's raw loop is the same computation as fit's epoch: the same loss and accuracy, the same
    parameters after it."""
    import torch

    from bench.fit_vs_raw import CASES, raw_epoch
    from esc_course import TensorLoader, fit

    c = CASES[case]
    x, y = c.data()
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        model = c.model()
        runs.append((model, c.optimizer(model), TensorLoader(x, y, c.batch_size,
                                                             generator=torch.Generator().manual_seed(0))))
    (m1, o1, d1), (m2, o2, d2) = runs
    row = fit(m1, d1, loss_fn=c.loss_fn, optimizer=o1, epochs=1, progress=False, amp="off",
              metrics=("accuracy",) if c.hits is not None else ()).last
    loss, acc = raw_epoch(m2, d2, c.loss_fn, o2, c.hits)
    assert loss == pytest.approx(row["train_loss"], rel=1e-6)
    assert (acc is None) is (c.hits is None)
    if c.hits is not None:
        assert acc == pytest.approx(row["train_accuracy"], abs=1e-12) and 0.2 < acc < 1
    for a, b in zip(m1.parameters(), m2.parameters()):
        assert torch.equal(a, b)


def test_median_interval_covers_the_median_and_narrows_with_more_values():
    import random

    from bench.timing import median, median_interval

    rng = random.Random(0)
    few, many = [rng.gauss(1, 0.05) for _ in range(25)], [rng.gauss(1, 0.05) for _ in range(400)]
    lo, hi = median_interval(few)
    assert lo < median(few) < hi
    lo2, hi2 = median_interval(many)
    assert lo2 < median(many) < hi2 and (hi2 - lo2) < (hi - lo) / 2  # ~1/sqrt(n): 4x the values, half the width
    assert median_interval([1.0]) == (1.0, 1.0)


def test_targets_are_judged_on_the_interval_and_on_broken_runs():
    from bench.__main__ import targets

    fit = {"inside": {"ratio": 1.0, "ratio_low": 0.99, "ratio_high": 1.01, "same_parameters": True},
           "spans": {"ratio": 1.0, "ratio_low": 0.97, "ratio_high": 1.03, "same_parameters": True},
           "above": {"ratio": 1.05, "ratio_low": 1.03, "ratio_high": 1.07, "same_parameters": True},
           "differs": {"ratio": 0.9, "ratio_low": 0.89, "ratio_high": 0.91, "same_parameters": False}}
    labs = {"labs": {"xor": {"ok": True}, "cnn": {"ok": False}}, "total_seconds": 10.0}
    startup = {"import_ratio": 1.2, "help_seconds": 0.1}
    verdicts = {t: ok for t, _, ok in targets({"fit": fit, "labs": labs, "startup": startup})}
    assert verdicts["fit/raw <= 1.02 (inside)"] is True
    assert verdicts["fit/raw <= 1.02 (spans)"] is None  # inconclusive
    assert verdicts["fit/raw <= 1.02 (above)"] is False
    assert verdicts["fit/raw <= 1.02 (differs)"] is False  # fast, but not the same computation
    assert verdicts["all labs' quick runs < 180 s"] is False  # fast because a lab failed
    assert verdicts["import esc_course (fit, TensorLoader) / import torch <= 1.15"] is False
    assert verdicts["esc-course --help < 0.3 s"] is True


def test_attention_section_compares_the_same_module_both_ways(cpu):
    from bench import attention

    result = attention.run(cpu, quick=True)
    assert set(result["shapes"]) == {f"B{b}_T{t}_C{c}_H{h}" for b, t, c, h in attention.QUICK_SHAPES}
    for r in result["shapes"].values():
        assert r["scratch_tokens_per_s"] > 0 and r["fused_tokens_per_s"] > 0
        assert r["ratio_low"] <= r["ratio"] <= r["ratio_high"]
    assert "fused / written out" in attention.report(result)
