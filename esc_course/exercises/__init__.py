"""Implement-and-check exercises: each week's notebook asks the student to write what the week teaches
(a backward pass, a convolution, an optimizer step, ...) and checks it against PyTorch or the package's own
from-scratch code.

    from esc_course.exercises import catalog, check
    check("week06.adam_step", adam_step)      # -> CheckResult: .passed, .message; shown as HTML in a notebook

Ids are ``weekNN.name``; ``name`` is the function the student defines. A new week adds its module to MODULES.
"""

from __future__ import annotations

import importlib

from esc_course.exercises.core import Case, CaseResult, CheckResult, Exercise, run_check

# the topic modules, in week order; each holds EXERCISES (a week's exercises live in one module)
MODULES = ("backprop", "losses", "conv", "norm", "regularization", "optimizers", "rnn", "transfer", "graphs")

_CATALOG: dict[str, Exercise] | None = None


def _load() -> dict[str, Exercise]:
    global _CATALOG
    if _CATALOG is None:
        found: dict[str, Exercise] = {}
        for module in MODULES:
            for ex in importlib.import_module(f"esc_course.exercises.{module}").EXERCISES:
                if ex.id in found:
                    raise RuntimeError(f"exercise id {ex.id!r} defined twice")
                found[ex.id] = ex
        _CATALOG = dict(sorted(found.items()))
    return _CATALOG


def catalog(week: int | None = None) -> list[Exercise]:
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


def get(exercise_id: str) -> Exercise:
    """The exercise with this id; an unknown id raises a ValueError listing the valid ones."""
    table = _load()
    if exercise_id not in table:
        raise ValueError(f"unknown exercise id {exercise_id!r}; valid ids: {', '.join(table)}")
    return table[exercise_id]


def check(exercise_id: str, fn) -> CheckResult:
    """Run ``fn`` on every case of the exercise; a wrong answer of any kind is a failed result, never an error."""
    return run_check(get(exercise_id), fn)


__all__ = ["Case", "CaseResult", "CheckResult", "Exercise", "catalog", "check", "get", "weeks"]
