"""The weekly labs and their registry.

A lab is a module ``labs/weekNN_<name>.py`` with a ``Config`` dataclass, a ``run(cfg, out=None) -> LabResult``,
a ``QUICK`` dict of quick-mode settings and a ``HEADLINE`` metric name (``HEADLINE_MODE`` "max" or "min").
Labs are found by file name, so adding a week needs no edit here; a lab's name is its module name without
the week prefix (``week01_xor`` -> ``xor``).
"""

from __future__ import annotations

import ast
import importlib
import re
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

_PATTERN = re.compile(r"^week(\d\d)_(\w+)\.py$")
_HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class LabInfo:
    name: str
    module: str
    week: int
    title: str  # first line of the module docstring


def registry() -> dict[str, LabInfo]:
    """name -> LabInfo, in week order, read from file names and docstrings (no lab is imported)."""
    labs = {}
    for path in sorted(_HERE.glob("week*.py")):
        m = _PATTERN.match(path.name)
        if not m:
            continue
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
        labs[m.group(2)] = LabInfo(m.group(2), f"labs.{path.stem}", int(m.group(1)), doc.strip().splitlines()[0]
                                   if doc.strip() else "")
    return labs


def get_info(name: str) -> LabInfo:
    labs = registry()
    key = name.lower().replace("-", "_")
    key = _PATTERN.sub(r"\2", key + ".py") if key.startswith("week") else key
    if key not in labs:
        raise ValueError(f"unknown lab {name!r}; valid labs: {', '.join(labs) or '(none)'}")
    return labs[key]


def load(name: str) -> ModuleType:
    """Import a lab module by its name (``xor``) or module name (``week01_xor``)."""
    return importlib.import_module(get_info(name).module)


def headline(module: ModuleType) -> tuple[str, str]:
    """The lab's headline metric and whether higher ('max') or lower ('min') is better."""
    return module.HEADLINE, getattr(module, "HEADLINE_MODE", "max")


def make_config(name: str, argv: list[str] | None = None, quick: bool = False):
    """The lab's Config with ``--key=value`` overrides applied (typed; unknown keys list the valid ones)."""
    from esc_course.config import parse_overrides

    module = load(name)
    cfg = parse_overrides(module.Config, list(argv or []))
    if quick and hasattr(cfg, "quick"):
        from dataclasses import replace

        cfg = replace(cfg, quick=True)
    return cfg


def run_one(name: str, argv: list[str] | None = None, quick: bool = False, out: Path | None = None):
    """Run one lab, write its folder; return (LabResult or None, RunSummary). A failure is recorded, not lost."""
    import time
    import traceback

    from esc_course.report import RunSummary

    info = get_info(name)
    start = time.perf_counter()
    try:
        module = load(info.name)
        cfg = make_config(info.name, argv, quick)
        result = module.run(cfg, out=out)
    except Exception as err:  # noqa: BLE001 - one failing lab must not stop the others
        text = traceback.format_exc()
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
            (out / "error.txt").write_text(text, encoding="utf-8")
        summary = RunSummary(info.name, info.title, None, None, time.perf_counter() - start, info.name, ok=False,
                             error=f"{type(err).__name__}: {err}")
        return None, summary
    metric, _ = headline(module)
    summary = RunSummary(info.name, info.title, metric, result.metrics.get(metric), result.seconds, info.name,
                         metrics=result.metrics, figures=[f"{f}.png" for f in result.figures])
    _close_figures(result)
    return result, summary


def _close_figures(result) -> None:
    for fig in result.figures.values():
        try:
            fig.clear()
        except Exception:  # noqa: BLE001
            pass


def main(name: str, argv: list[str] | None = None) -> int:
    """``python -m labs.weekNN_name [--quick] [--out=DIR] [--key=value ...]``."""
    import sys

    from esc_course.config import ConfigError
    from esc_course.runs import timestamp
    from esc_course.viz import table_text

    argv = list(sys.argv[1:] if argv is None else argv)
    quick = "--quick" in argv
    out = Path("runs") / timestamp() / get_info(name).name
    rest = []
    for arg in argv:
        if arg.startswith("--out="):
            out = Path(arg.split("=", 1)[1])
        elif arg != "--quick":
            rest.append(arg)
    try:
        make_config(name, rest, quick)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    result, summary = run_one(name, rest, quick, out)
    if result is None:
        print(f"{name} failed: {summary.error} (traceback in {out / 'error.txt'})", file=sys.stderr)
        return 1
    print(table_text([{"metric": k, "value": v} for k, v in result.metrics.items()]))
    print(f"\n{name}: {summary.seconds:.1f} s; results in {out}/results.json")
    return 0
