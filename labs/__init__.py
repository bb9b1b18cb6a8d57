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


CHECKPOINTS = "checkpoints"  # a lab run's checkpoints, inside its out folder until the run finishes


def unfinished_run(name: str, root: Path = Path("runs")) -> Path | None:
    """The newest ``runs/<time>`` folder holding a killed (unfinished) run of lab ``name``, or of any lab for "all"."""
    pattern = f"*/*/{CHECKPOINTS}/run.json" if name == "all" else f"*/{get_info(name).name}/{CHECKPOINTS}/run.json"
    found = sorted(Path(root).glob(pattern), key=lambda p: p.stat().st_mtime)
    return found[-1].parents[2] if found else None


def resume_settings(out: Path) -> tuple[list[str], bool] | None:
    """The ``--key=value`` overrides and quick flag a killed run in ``out`` was started with, if it left them."""
    import json

    path = Path(out) / CHECKPOINTS / "run.json"
    if not path.is_file():
        return None
    saved = json.loads(path.read_text(encoding="utf-8"))
    return list(saved["argv"]), bool(saved["quick"])


def check_resume(name: str, out: Path, argv: list[str] | None, quick: bool, resume: bool) -> None:
    """Refuse, before anything is written, to start over a killed run's checkpoints, or to resume a run with
    settings other than the ones it was started with."""
    import json
    from dataclasses import asdict

    from esc_course.runs import jsonable

    saved = Path(out) / CHECKPOINTS / "run.json"
    if not saved.is_file():
        return
    if not resume:
        raise FileExistsError(f"{out} holds the checkpoints of an unfinished run of {name}: add --resume to "
                              f"continue it, or choose another --out (nothing was changed)")
    before = json.loads(saved.read_text(encoding="utf-8"))["config"]
    now = jsonable(asdict(make_config(name, argv, quick)))
    changed = [f"{k}: {before.get(k)!r} then, {v!r} now" for k, v in now.items() if before.get(k) != v]
    if changed:
        raise ValueError(f"--resume: the run in {out} was started with other settings ({'; '.join(changed)}); "
                         f"resume it with the settings it was started with")


def _checkpointing(name: str, out: Path | None, cfg, argv: list[str] | None, quick: bool, resume: bool):
    """The lab's fits checkpoint into ``out/checkpoints/<experiment>`` (the lab passes checkpoint_dir and
    resume=True to fit); this checks a resume and records the run's settings there."""
    import json
    from dataclasses import asdict

    from esc_course.runs import atomic_write_text, jsonable

    if out is None:
        return
    check_resume(name, out, argv, quick, resume)
    folder = Path(out) / CHECKPOINTS
    if not (folder / "run.json").is_file():
        atomic_write_text(folder / "run.json", json.dumps({"lab": name, "argv": list(argv or []), "quick": quick,
                                                           "config": jsonable(asdict(cfg))}, indent=2))


def run_one(name: str, argv: list[str] | None = None, quick: bool = False, out: Path | None = None,
            resume: bool = False):
    """Run one lab, write its folder; return (LabResult or None, RunSummary). A failure is recorded, not lost.

    While it runs, its fits checkpoint into ``out/checkpoints``; ``resume=True`` continues a killed run from there
    (finished fits are loaded, the interrupted one continues from its last checkpoint). Removed when it finishes.
    """
    import shutil
    import time
    import traceback

    from esc_course.report import RunSummary

    info = get_info(name)
    start = time.perf_counter()
    try:
        module = load(info.name)
        cfg = make_config(info.name, argv, quick)
        _checkpointing(info.name, out, cfg, argv, quick, resume)
        result = module.run(cfg, out=out)
        if out is not None:
            shutil.rmtree(Path(out) / CHECKPOINTS, ignore_errors=True)  # finished: nothing left to resume
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
    """``python -m labs.weekNN_name [--quick] [--out=DIR] [--resume] [--key=value ...]``: the same as
    ``esc-course lab run NAME ...`` (one implementation of the options, resuming and the output folder)."""
    import sys

    from esc_course import cli

    get_info(name)  # an unknown name raises here, listing the valid labs
    return cli.main(["lab", "run", name, *(sys.argv[1:] if argv is None else argv)])
