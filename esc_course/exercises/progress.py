"""A student's progress: run every exercise's check on the functions a .py file or a notebook defines.

This executes the student's code (the file's top level, or the notebook's exercise cells): it is meant for the
student's own machine. ``verify`` and the leaderboard never call it; they read the self-reported rows.
"""

from __future__ import annotations

import contextlib
import io
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from esc_course.exercises import catalog
from esc_course.exercises.cells import is_exercise_cell


@dataclass
class Row:
    id: str
    week: int
    status: str  # "passed", "failed" or "missing" (no function of that name in the file)
    message: str

    @property
    def passed(self) -> bool:
        return self.status == "passed"


def _notebook_code(path: Path) -> list[str]:
    """The code of a notebook's exercise stubs (tagged cells); without tags, the code cells that define a
    function of an exercise's name. IPython magics and shell lines are left out. Plain JSON: no Jupyter needed."""
    try:
        cells = json.loads(path.read_text(encoding="utf-8")).get("cells")
    except (ValueError, AttributeError):
        cells = None
    if not isinstance(cells, list):
        raise ValueError(f"--check: {str(path)!r} is not a Jupyter notebook (no 'cells' list in its JSON)")
    code = [c for c in cells if isinstance(c, dict) and c.get("cell_type") == "code"]
    for c in code:
        c["source"] = "".join(c.get("source", "")) if isinstance(c.get("source"), list) else str(c.get("source", ""))
    names = tuple(f"def {ex.name}(" for ex in catalog())
    tagged = [c for c in code if is_exercise_cell(c) and "exercise-stub" in c.get("metadata", {}).get("tags", [])]
    chosen = tagged or [c for c in code if any(n in c["source"] for n in names)]
    return ["\n".join(line for line in c["source"].split("\n") if not line.lstrip().startswith(("%", "!")))
            for c in chosen]


def load_functions(path: str | Path) -> tuple[dict, list[str]]:
    """(namespace, errors): run the file's code (each notebook cell on its own) and keep what it defines."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"--check: no such file {str(path)!r} (give a .py file or a .ipynb notebook)")
    if path.suffix not in (".py", ".ipynb"):
        raise ValueError(f"--check: {str(path)!r} is neither a .py file nor a .ipynb notebook")
    chunks = _notebook_code(path) if path.suffix == ".ipynb" else [path.read_text(encoding="utf-8")]
    namespace: dict = {"__name__": "student_exercises", "__file__": str(path)}
    errors = []
    for i, code in enumerate(chunks):
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # the student's prints and check() calls stay quiet
                exec(compile(code, f"{path.name}[{i}]" if len(chunks) > 1 else str(path), "exec"), namespace)
        except (Exception, SystemExit) as err:  # noqa: BLE001 - reported; the other functions are still checked
            errors.append(f"{path.name}{f' cell {i}' if len(chunks) > 1 else ''}: {type(err).__name__}: {err}")
    return namespace, errors


def check_namespace(namespace: dict, week: int | None = None) -> list[Row]:
    from esc_course.exercises import check

    rows = []
    for ex in catalog(week):
        fn = namespace.get(ex.name)
        if fn is None:
            rows.append(Row(ex.id, ex.week, "missing", f"no function {ex.name} defined"))
            continue
        result = check(ex.id, fn)
        rows.append(Row(ex.id, ex.week, "passed" if result.passed else "failed", result.message.split("\n")[0]))
    return rows


def check_file(path: str | Path, week: int | None = None) -> tuple[list[Row], list[str]]:
    namespace, errors = load_functions(path)
    return check_namespace(namespace, week), errors


def summary(rows: list[Row]) -> dict:
    """{"passed": n, "total": m, "passed_ids": [...]}: what a bundle records and the leaderboard shows."""
    return {"passed": sum(r.passed for r in rows), "total": len(rows),
            "passed_ids": [r.id for r in rows if r.passed]}


def summary_text(s: dict) -> str:
    return f"exercises passed: {s['passed']}/{s['total']}"


def results_json(rows: list[Row]) -> str:
    return json.dumps({"summary": summary(rows), "rows": [asdict(r) for r in rows]}, ensure_ascii=False, indent=1)
