"""Every lab's quick run, as ``esc-course lab run all --quick`` runs them (results, figures and checkpoints are
written to a temporary folder); seconds per lab and in total."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path


def run(device=None, quick: bool = False) -> dict:
    from esc_course import lab

    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        for name in lab.registry():
            t = time.perf_counter()
            _, summary = lab.run_one(name, [], True, Path(tmp) / name)
            rows[name] = {"seconds": time.perf_counter() - t, "lab_seconds": summary.seconds, "ok": summary.ok,
                          "error": summary.error or None}
        total = time.perf_counter() - start
    return {"labs": rows, "total_seconds": total}


def report(result: dict) -> str:
    from esc_course.viz import table_text

    rows = [{"lab": name, "seconds": r["seconds"], "ok": r["ok"]} for name, r in result["labs"].items()]
    return table_text(rows, digits=3) + f"\nall labs, quick: {result['total_seconds']:.1f} s"
