"""``python -m bench [--only fit,loaders,startup,labs,attention,cuda] [--quick] [--threads N] [--device auto]``."""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

SECTIONS = ("fit", "loaders", "startup", "labs", "attention", "cuda")
RESULTS = Path(__file__).resolve().parent / "results"
VERDICT = {True: "met", False: "NOT met", None: "inconclusive"}


def targets(results: dict) -> list[tuple[str, str, bool | None]]:
    """(target, measured, met) for every target of the speed issue that this run measured; met is None where the
    measurement cannot tell (the fit ratio's 95 % interval spans the target) or there is nothing to measure."""
    out = []
    for name, r in results.get("fit", {}).items():
        low, high = r["ratio_low"], r["ratio_high"]
        met = False if low > 1.02 or not r["same_parameters"] else True if high <= 1.02 else None
        same = "" if r["same_parameters"] else ", but the two loops computed different parameters"
        out.append((f"fit/raw <= 1.02 ({name})", f"{r['ratio']:.3f} (95 % interval {low:.3f}-{high:.3f}){same}",
                    met))
    if "loaders" in results:
        r = results["loaders"]["ratios"]
        out.append(("TensorLoader fetch >= 5x best DataLoader", f"{r['fetch_vs_best']:.1f}x", r["fetch_vs_best"] >= 5))
        out.append(("TensorLoader MLP epoch >= 1.3x best DataLoader", f"{r['epoch_vs_best']:.2f}x",
                    r["epoch_vs_best"] >= 1.3))
    if "startup" in results:
        r = results["startup"]
        out.append(("import esc_course (fit, TensorLoader) / import torch <= 1.15", f"{r['import_ratio']:.3f}",
                    r["import_ratio"] <= 1.15))
        out.append(("esc-course --help < 0.3 s", f"{r['help_seconds']:.3f} s", r["help_seconds"] < 0.3))
    if "labs" in results:
        total = results["labs"]["total_seconds"]
        failed = [name for name, r in results["labs"]["labs"].items() if not r["ok"]]
        out.append(("all labs' quick runs < 180 s", f"{total:.1f} s" + (f", but failed: {', '.join(failed)}"
                                                                        if failed else ""),
                    total < 180 and not failed))
    for model, r in results.get("cuda", {}).get("models", {}).items():
        speedup = r["modes"].get("fit auto", {}).get("speedup_vs_raw_fp32")
        out.append((f"bf16+channels_last+cudnn.benchmark >= 2x fp32 ({model})",
                    f"{speedup:.2f}x" if speedup else "n/a", speedup >= 2 if speedup else None))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated sections ({', '.join(SECTIONS)})")
    parser.add_argument("--quick", action="store_true", help="fewer rounds and smaller data (a smoke test)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--device", default="auto", help="device for the fit and cuda sections (default: auto)")
    parser.add_argument("--out", default=str(RESULTS), help="folder for the JSON result")
    args = parser.parse_args(argv)
    sections = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = [s for s in sections if s not in SECTIONS]
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; valid: {', '.join(SECTIONS)}")

    import importlib

    import torch

    from bench.timing import environment
    from esc_course.device import get_device

    if args.threads:
        torch.set_num_threads(args.threads)
    device = get_device(args.device)
    results: dict = {"env": environment(device), "quick": args.quick, "sections": sections}
    modules = {"fit": "bench.fit_vs_raw", "loaders": "bench.loaders", "startup": "bench.startup",
               "labs": "bench.labs_quick", "attention": "bench.attention", "cuda": "bench.cuda"}
    print(f"bench on {results['env']['device']} ({results['env']['device_name']}), torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, load average {results['env']['load_average_1min']}", flush=True)
    for section in sections:
        module = importlib.import_module(modules[section])
        start = time.perf_counter()
        results[section] = module.run(device, quick=args.quick)
        print(f"\n== {section} ({time.perf_counter() - start:.0f} s)\n{module.report(results[section])}", flush=True)
    results["targets"] = [{"target": t, "measured": m, "met": ok} for t, m, ok in targets(results)]
    print("\n== targets")
    for t, m, ok in targets(results):
        print(f"  {VERDICT[ok]:<12} {t}: {m}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    kind = "cuda" if device.type == "cuda" else device.type
    path = out / f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}{'-quick' if args.quick else ''}.json"
    results["env"]["load_average_1min_end"] = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    path.write_text(json.dumps(results, indent=2, default=str))
    print(f"\nresults: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
