"""Implement-and-check exercises: each week's notebook asks the student to write what the week teaches
(a backward pass, a convolution, an optimizer step, ...) and checks it against PyTorch or the package's own
from-scratch code.

    from esc_course.exercises import catalog, check
    check("week06.adam_step", adam_step)      # -> CheckResult: .passed, .message; shown as HTML in a notebook

Ids are ``weekNN.name``; ``name`` is the function the student defines. A new week adds its module to MODULES.
Importing this package loads no torch (the CLI's --help imports it); the catalogue loads on first use.
"""

from __future__ import annotations

import importlib

# the topic modules, in week order; each holds EXERCISES (a week's exercises live in one module)
MODULES = ("backprop", "losses", "conv", "norm", "regularization", "optimizers", "rnn", "transfer", "graphs",
           "attention")

_CATALOG: dict | None = None  # id -> Exercise, loaded on first use


def __getattr__(name: str):
    if name in ("Case", "CaseResult", "CheckResult", "Exercise", "run_check"):
        from esc_course.exercises import core

        return getattr(core, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _load() -> dict:
    global _CATALOG
    if _CATALOG is None:
        found: dict = {}
        for module in MODULES:
            for ex in importlib.import_module(f"esc_course.exercises.{module}").EXERCISES:
                if ex.id in found:
                    raise RuntimeError(f"exercise id {ex.id!r} defined twice")
                found[ex.id] = ex
        _CATALOG = dict(sorted(found.items()))
    return _CATALOG


def catalog(week: int | None = None) -> list:
    """Every exercise (sorted by id), or one week's."""
    exercises = list(_load().values())
    if week is None:
        return exercises
    if isinstance(week, bool) or not isinstance(week, int):
        raise TypeError(f"week must be an int, got {week!r}")
    weeks = sorted({ex.week for ex in exercises})
    if week not in weeks:
        raise ValueError(f"week {week} has no exercises; weeks with exercises: {weeks}")
    return [ex for ex in exercises if ex.week == week]


def weeks() -> list[int]:
    return sorted({ex.week for ex in _load().values()})


def get(exercise_id: str):
    """The exercise with this id; an unknown id raises a ValueError listing the valid ones."""
    table = _load()
    if exercise_id not in table:
        raise ValueError(f"unknown exercise id {exercise_id!r}; valid ids: {', '.join(table)}")
    return table[exercise_id]


def check(exercise_id: str, fn):
    """Run ``fn`` on every case of the exercise and return a CheckResult (.passed, .message); a wrong answer of
    any kind (an exception, a wrong shape, dtype or device, a NaN, a stub) is a failed result, never an error."""
    from esc_course.exercises.core import run_check

    return run_check(get(exercise_id), fn)


__all__ = ["Case", "CaseResult", "CheckResult", "Exercise", "catalog", "check", "get", "weeks"]
