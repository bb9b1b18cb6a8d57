"""Exercises in a group bundle: the student's exercise code and its check results, self-reported like the
metrics. ``esc-course submit --exercises FILE`` runs the checks (on the student's machine, so it executes their
code) and records ``{"passed", "total", "passed_ids"}`` in the manifest; ``verify`` and the leaderboard only
read and validate those numbers, they never execute submitted code. Importing this module loads no torch.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

CODE = "exercises/exercises.py"
RESULTS = "exercises/results.json"
KINDS = {"exercise_code": ("exercises/", ".py"), "exercise_results": ("exercises/", ".json")}
_ID = re.compile(r"^week\d{2}\.[a-z][a-z0-9_]{0,63}$")
MAX_EXERCISES = 1000


def prepare(path: Path | str, tmp_dir: Path | str) -> tuple[dict[str, Path], dict]:
    """(bundle member name -> file, manifest entry) for the student's exercise file (.py, or a notebook whose
    exercise cells are taken). Runs the checks: this executes the student's code."""
    from esc_course.exercises.progress import _notebook_code, check_file, results_json, summary

    path, tmp_dir = Path(path), Path(tmp_dir)
    rows, errors = check_file(path)  # FileNotFoundError / ValueError name the argument
    code = tmp_dir / "exercises.py"
    text = ("\n\n".join(_notebook_code(path)) if path.suffix == ".ipynb" else path.read_text(encoding="utf-8"))
    code.write_text(text, encoding="utf-8")
    results = tmp_dir / "results.json"
    data = json.loads(results_json(rows))
    data["errors"] = errors
    results.write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return {CODE: code, RESULTS: results}, summary(rows)


def entry_problems(entry) -> list[str]:
    """What is wrong with a manifest's ``exercises`` entry (empty when it is valid)."""
    if not isinstance(entry, dict) or set(entry) != {"passed", "total", "passed_ids"}:
        return ["exercises must have exactly passed, total and passed_ids"]
    passed, total, ids = entry["passed"], entry["total"], entry["passed_ids"]
    if not all(isinstance(n, int) and not isinstance(n, bool) for n in (passed, total)) or \
            not 0 <= passed <= total <= MAX_EXERCISES:
        return [f"exercises passed {passed!r} / total {total!r}: need 0 <= passed <= total <= {MAX_EXERCISES}"]
    if not isinstance(ids, list) or len(ids) != passed or len(set(map(str, ids))) != passed or \
            not all(isinstance(i, str) and _ID.match(i) for i in ids):
        return [f"exercises passed_ids must be {passed} distinct ids like 'week06.adam_step'"]
    return []


def summary_text(entry) -> str:
    """'exercises passed: 18/27', or '' for a bundle without exercises."""
    if not isinstance(entry, dict) or entry_problems(entry):
        return ""
    return f"exercises passed: {entry['passed']}/{entry['total']}"
