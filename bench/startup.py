"""Start-up cost: ``import esc_course`` against ``import torch``, and ``esc-course --help`` (which imports no torch).

Each command runs in a fresh interpreter; they are interleaved, and the median of the rounds is reported. The
realistic import is ``from esc_course import fit, TensorLoader``: ``import esc_course`` alone imports nothing
(PEP 562 lazy attributes).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bench.timing import ROOT, interleaved, median, spread, timed

CHECK = ("import sys; from esc_course import fit, TensorLoader, get_device; "
         "print(sorted({m.split('.')[0] for m in sys.modules} & {'torchvision', 'matplotlib', 'safetensors', "
         "'tqdm', 'pandas', 'scipy'}))")


def commands() -> dict[str, list[str]]:
    py = sys.executable
    script = Path(py).with_name("esc-course")
    cli = [str(script)] if script.exists() else [py, "-m", "esc_course.cli"]
    return {
        "python -c pass": [py, "-c", "pass"],
        "import torch": [py, "-c", "import torch"],
        "import esc_course": [py, "-c", "import esc_course"],
        "from esc_course import fit, TensorLoader": [py, "-c", "from esc_course import fit, TensorLoader"],
        "esc-course --help": [*cli, "--help"],
    }


def run_cmd(cmd: list[str]) -> None:
    subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300)


def run(device=None, quick: bool = False) -> dict:
    cmds = commands()
    times = interleaved({name: (lambda c=cmd: timed(lambda: run_cmd(c))) for name, cmd in cmds.items()},
                        rounds=3 if quick else 9)
    seconds = {name: median(t) for name, t in times.items()}
    heavy = subprocess.run([sys.executable, "-c", CHECK], cwd=ROOT, capture_output=True, text=True,
                           timeout=300).stdout.strip()
    return {
        "seconds": seconds, "spread": {name: spread(t) for name, t in times.items()},
        "import_ratio": seconds["from esc_course import fit, TensorLoader"] / seconds["import torch"],
        "bare_import_ratio": seconds["import esc_course"] / seconds["import torch"],
        "help_seconds": seconds["esc-course --help"],
        "heavy_modules_after_import": heavy,
    }


def report(result: dict) -> str:
    from esc_course.viz import table_text

    rows = [{"command": name, "seconds": s, "vs import torch": s / result["seconds"]["import torch"]}
            for name, s in result["seconds"].items()]
    return (table_text(rows, digits=3) + f"\nimport ratio (fit, TensorLoader vs torch): {result['import_ratio']:.3f}; "
            f"esc-course --help: {result['help_seconds']:.3f} s; heavy modules loaded by that import: "
            f"{result['heavy_modules_after_import']}")
