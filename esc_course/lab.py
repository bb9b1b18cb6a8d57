"""The lab registry and runner: the one module of the library that imports lab modules (by name, with importlib).

A lab is a module ``labs/weekNN_<name>.py`` with a ``Config`` dataclass, a ``run(cfg, out=None) -> LabResult``,
a ``QUICK`` dict of quick-mode settings and a ``HEADLINE`` metric name (``HEADLINE_MODE`` "max" or "min").
Labs are found by file name, so adding a week needs no edit here; a lab's name is its module name without
the week prefix (``week01_xor`` -> ``xor``).

    registry(), get_info(name), load(name), headline(module)   which labs there are; import one; its metric
    make_config(name, argv, quick)                             its Config with ``--key=value`` overrides
    run_one(name, argv, quick, out, resume)                    run it into ``out``; a failure is recorded
    run_labs(name, overrides, quick, out, resume)              ``esc-course lab run`` (one lab or "all")
    main(name)                                                 ``python -m labs.weekNN_name ...``, the same options

A lab that trains checkpoints into ``Path(out) / CHECKPOINTS`` itself (its studies take that folder); the runner
keeps the run's settings there (``run.json``) for ``--resume`` and removes the folder when the run finishes.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import json
import re
import sys
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from types import ModuleType

LABS_DIR = Path(__file__).resolve().parent.parent / "labs"  # the checkout's labs/ folder
PACKAGE = "labs"  # lab modules are imported as labs.weekNN_name
CHECKPOINTS = "checkpoints"  # a lab run's checkpoints, inside its out folder until the run finishes
RUN_SETTINGS = "run.json"  # in CHECKPOINTS: the overrides, quick flag and config a run was started with
_PATTERN = re.compile(r"^week(\d\d)_(\w+)\.py$")


@dataclass(frozen=True)
class LabInfo:
    name: str
    module: str
    week: int
    title: str  # first line of the module docstring


def registry() -> dict[str, LabInfo]:
    """name -> LabInfo, in week order, read from file names and docstrings (no lab is imported)."""
    labs = {}
    for path in sorted(LABS_DIR.glob("week*.py")):
        m = _PATTERN.match(path.name)
        if not m:
            continue
        doc = (ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or "").strip()
        labs[m.group(2)] = LabInfo(m.group(2), f"{PACKAGE}.{path.stem}", int(m.group(1)),
                                   doc.splitlines()[0] if doc else "")
    return labs


def get_info(name: str) -> LabInfo:
    """The lab called ``name`` (``xor``, ``week01_xor`` or ``week01-xor``); an unknown name lists the valid ones."""
    labs = registry()
    key = str(name).lower().replace("-", "_")
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


def spec(name: str):
    """What the course tools need of lab ``name`` (esc_course.course.bundle.LabSpec): its names, week, headline
    metric and mode, and its re-evaluation functions (build_model, evaluate_weights) when it defines them. The CLI
    passes it to submit / leaderboard, so esc_course.course never imports a lab, not even through this module."""
    from esc_course.course.bundle import LabSpec

    info = get_info(name)
    module = load(info.name)
    metric, mode = headline(module)
    return LabSpec(info.name, info.module.rsplit(".", 1)[-1], info.week, metric, mode,
                   build_model=getattr(module, "build_model", None),
                   evaluate_weights=getattr(module, "evaluate_weights", None))


def make_config(name: str, argv: list[str] | None = None, quick: bool = False):
    """The lab's Config with ``--key=value`` overrides applied (typed; unknown keys list the valid ones)."""
    from esc_course.config import parse_overrides

    cfg = parse_overrides(load(name).Config, list(argv or []))
    return replace(cfg, quick=True) if quick and hasattr(cfg, "quick") else cfg


# ---- resuming a killed run

def unfinished_run(name: str, root: Path = Path("runs")) -> Path | None:
    """The newest ``runs/<time>`` folder holding a killed (unfinished) run of lab ``name``, or of any lab for "all"."""
    lab = "*" if name == "all" else get_info(name).name
    found = sorted(Path(root).glob(f"*/{lab}/{CHECKPOINTS}/{RUN_SETTINGS}"), key=lambda p: p.stat().st_mtime)
    return found[-1].parents[2] if found else None


def resume_settings(out: Path) -> tuple[list[str], bool] | None:
    """The ``--key=value`` overrides and quick flag a killed run in ``out`` was started with, if it left them."""
    path = Path(out) / CHECKPOINTS / RUN_SETTINGS
    if not path.is_file():
        return None
    saved = json.loads(path.read_text(encoding="utf-8"))
    return list(saved["argv"]), bool(saved["quick"])


def check_resume(name: str, out: Path, argv: list[str] | None, quick: bool, resume: bool) -> None:
    """Refuse, before anything is written, to start over a killed run's checkpoints, or to resume a run with
    settings other than the ones it was started with."""
    from esc_course.runs import jsonable

    saved = Path(out) / CHECKPOINTS / RUN_SETTINGS
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


def _keep_settings(name: str, out: Path, cfg, argv: list[str] | None, quick: bool) -> None:
    """``out/checkpoints/run.json``: what ``--resume`` needs to continue the run with the same settings."""
    from esc_course.files import write_text
    from esc_course.runs import jsonable

    path = Path(out) / CHECKPOINTS / RUN_SETTINGS
    if not path.is_file():
        write_text(path, json.dumps({"lab": name, "argv": list(argv or []), "quick": quick,
                                     "config": jsonable(asdict(cfg))}, indent=2))


# ---- running

def run_one(name: str, argv: list[str] | None = None, quick: bool = False, out: Path | None = None,
            resume: bool = False):
    """Run one lab, write its folder; return (LabResult or None, RunSummary). A failure of the lab is recorded
    (``out/error.txt``), not lost; bad settings (an unknown override, a refused resume) raise before anything
    is written.

    The lab checkpoints its studies into ``out/checkpoints``; ``resume=True`` lets it continue a killed run from
    there. The folder is removed when the run finishes.
    """
    import shutil
    import time

    info = get_info(name)
    out = Path(out) if out is not None else None
    start = time.perf_counter()
    try:
        module = load(info.name)
    except Exception as err:  # noqa: BLE001 - one lab that cannot be imported must not stop the others
        return None, _failed(info, out, err, start)
    cfg = make_config(info.name, argv, quick)  # bad settings raise here, before anything is written
    if out is not None:
        check_resume(info.name, out, argv, quick, resume)
        _keep_settings(info.name, out, cfg, argv, quick)
    try:
        result = module.run(cfg, out=out)
    except Exception as err:  # noqa: BLE001 - one failing lab must not stop the others
        return None, _failed(info, out, err, start)
    if out is not None:
        shutil.rmtree(out / CHECKPOINTS, ignore_errors=True)  # finished: nothing left to resume
    from esc_course.report import RunSummary

    metric, _ = headline(module)
    summary = RunSummary(info.name, info.title, metric, result.metrics.get(metric), result.seconds, info.name,
                         metrics=result.metrics, figures=[f"{f}.png" for f in result.figures])
    _close_figures(result)
    return result, summary


def _failed(info: LabInfo, out: Path | None, err: Exception, start: float):
    """The RunSummary of a failed lab; its traceback goes to ``out/error.txt``."""
    import time
    import traceback

    from esc_course.report import RunSummary

    if out is not None:
        from esc_course.files import write_text

        write_text(out / "error.txt", "".join(traceback.format_exception(err)))
    return RunSummary(info.name, info.title, None, None, time.perf_counter() - start, info.name, ok=False,
                      error=f"{type(err).__name__}: {err}")


def _close_figures(result) -> None:
    for fig in result.figures.values():
        try:
            fig.clear()
        except Exception:  # noqa: BLE001
            pass


def add_run_options(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options of a lab run (``esc-course lab run NAME`` and ``python -m labs.weekNN_name`` share them)."""
    parser.add_argument("--quick", action="store_true", help="small, fast variant (seconds on a laptop CPU)")
    parser.add_argument("--out", help="output folder (default: runs/<time>/<lab>)")
    parser.add_argument("--resume", action="store_true", help="continue a killed run from its checkpoints: the "
                        "newest unfinished one under runs/, or --out DIR")
    return parser


def run_labs(name: str, overrides: list[str], quick: bool = False, out: Path | str | None = None,
             resume: bool = False) -> int:
    """Run lab ``name`` (or "all") as ``esc-course lab run`` does; print the results; return the exit code
    (0 all ran, 1 a lab failed, 2 bad settings: nothing was run or written)."""
    from esc_course.config import ConfigError
    from esc_course.report import summary_table, write_index
    from esc_course.runs import timestamp
    from esc_course.viz import table_text

    overrides = list(overrides)
    try:
        names = list(registry()) if name == "all" else [get_info(name).name]
        run_dir = Path(out) if out else (_unfinished(name) if resume else Path("runs") / timestamp())
        outs = {n: run_dir / n if name == "all" or not out else run_dir for n in names}
        saved = [resume_settings(o) for o in outs.values()] if resume else []
        if resume and not overrides and not quick and any(saved):
            overrides, quick = next(s for s in saved if s)  # what the killed run was started with
        for n in names:
            try:
                make_config(n, overrides, quick)  # check every override before running anything
            except ImportError:
                continue  # a lab that cannot be imported is recorded as failed when its turn comes
            check_resume(n, outs[n], overrides, quick, resume)
    except (ConfigError, ValueError, FileExistsError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    rows = []
    for n in names:
        lab_out = outs[n]
        print(f"running {n} ({'quick' if quick else 'full'}) ...", flush=True)
        result, summary = run_one(n, overrides, quick, lab_out, resume=resume)
        if result is not None and len(names) == 1:  # one lab: all its metrics, not just the headline
            print(table_text([{"metric": k, "value": v} for k, v in result.metrics.items()]))
        summary.folder = lab_out.relative_to(run_dir).as_posix()  # "." when the lab writes into run_dir itself
        rows.append(summary)
        if not summary.ok:
            print(f"  {n} FAILED: {summary.error} (see {lab_out / 'error.txt'})", file=sys.stderr)
    index = write_index(run_dir, rows)
    print()
    print(summary_table(rows))
    print(f"\nresults: {run_dir}/   open {index} in a browser")
    return 0 if all(r.ok for r in rows) else 1


def _unfinished(name: str) -> Path:
    found = unfinished_run(name)
    if found is None:
        raise ValueError(f"--resume: no unfinished run of {name} under runs/ (a killed run keeps its checkpoints "
                         f"there until it finishes); name the run's folder with --out DIR")
    return found


def main(name: str, argv: list[str] | None = None) -> int:
    """``python -m labs.weekNN_name [--quick] [--out=DIR] [--resume] [--key=value ...]``: the same as
    ``esc-course lab run NAME ...`` (one implementation of the options, resuming and the output folder)."""
    info = get_info(name)  # an unknown name raises here, listing the valid labs
    parser = add_run_options(argparse.ArgumentParser(prog=f"python -m {info.module}",
                                                     description=f"week {info.week:02d}: {info.title}"))
    args, overrides = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    return run_labs(info.name, overrides, args.quick, args.out, args.resume)
