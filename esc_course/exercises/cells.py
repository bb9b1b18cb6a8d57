"""Stubs and solutions from one source, and each week's exercise section of a notebook.

The reference of every exercise marks its solution lines with ``# BEGIN SOLUTION`` / ``# END SOLUTION``
(nbgrader's convention). The student's stub keeps the signature and docstring and puts
``raise NotImplementedError  # 여기에 구현`` where the solution was; the organisers' copy keeps the solution
without the markers. So stub and reference never drift.

A notebook's section is a run of cells tagged ``exercises`` at its end: a heading, then per exercise a
statement (markdown), a stub (code) and a ``check(...)`` cell. ``write_section`` removes any tagged cells and
appends a fresh section, leaving every other cell as it was.
"""

from __future__ import annotations

import inspect
import re
import textwrap
from pathlib import Path

from esc_course.exercises import catalog
from esc_course.exercises.core import Exercise

BEGIN, END = "# BEGIN SOLUTION", "# END SOLUTION"
STUB_LINE = "raise NotImplementedError  # 여기에 구현"
TAG = "exercises"  # every cell of the section carries it; the kind of cell is a second tag
KINDS = ("exercise-heading", "exercise-statement", "exercise-stub", "exercise-check")


def _source_lines(ex: Exercise) -> list[str]:
    return textwrap.dedent(inspect.getsource(ex.solution)).rstrip("\n").split("\n")


def _blocks(ex: Exercise) -> list[str]:
    lines = _source_lines(ex)
    begins = [i for i, line in enumerate(lines) if line.strip() == BEGIN]
    ends = [i for i, line in enumerate(lines) if line.strip() == END]
    if not begins or len(begins) != len(ends) or any(b >= e for b, e in zip(begins, ends)):
        raise ValueError(f"{ex.id}: the reference needs matching '{BEGIN}' / '{END}' lines")
    return lines


def stub_source(ex: Exercise) -> str:
    """The student's function: signature and docstring, the solution replaced by raise NotImplementedError."""
    out, inside = [], False
    for line in _blocks(ex):
        if line.strip() == BEGIN:
            inside = True
            out.append(line[: len(line) - len(line.lstrip())] + STUB_LINE)
        elif line.strip() == END:
            inside = False
        elif not inside:
            out.append(line)
    return "\n".join(out)


def solution_source(ex: Exercise) -> str:
    """The reference without its marker lines (the organisers' copy)."""
    return "\n".join(line for line in _blocks(ex) if line.strip() not in (BEGIN, END))


def _cell_id(*parts: str) -> str:
    return re.sub(r"[^A-Za-z0-9-]+", "-", "-".join(parts)).strip("-")[:64]


def section_cells(week: int, solutions: bool = False) -> list:
    """The exercise section of ``week`` as nbformat cells (solutions=True: the organisers' copy)."""
    import nbformat

    def cell(kind: str, text: str, ident: str, ex_id: str | None = None):
        make = nbformat.v4.new_markdown_cell if kind in KINDS[:2] else nbformat.v4.new_code_cell
        c = make(text)
        c["id"] = ident
        c.metadata["tags"] = [TAG, kind]
        if ex_id:
            c.metadata["exercise_id"] = ex_id
        return c

    exercises = catalog(week)
    heading = (f"## 연습 문제 (Exercises): week {week:02d}\n\n"
               "이번 주에 배운 것을 직접 구현(implement)해 봅니다. 각 함수의 `raise NotImplementedError` 자리에 코드를 "
               "쓰고, 바로 아래 `check(...)` 셀을 실행하면 PyTorch 와 비교한 결과(verdict)가 나옵니다: 틀린 경우"
               "(case), 입력의 모양(shape), 기대값과 실제값(expected vs got), 힌트(hint).\n\n"
               "Implement each function, then run the `check(...)` cell under it. "
               "`esc-course exercises --check` 로 파일 전체를 한 번에 확인할 수도 있습니다.")
    cells = [cell("exercise-heading", heading, _cell_id("exercises", f"week{week:02d}"))]
    for ex in exercises:
        base = _cell_id("ex", ex.id.replace(".", "-").replace("_", "-"))
        statement = (f"### `{ex.id}`\n\n{ex.statement_ko}\n\n*{ex.statement_en}*\n\n`{ex.signature}`")
        body = solution_source(ex) if solutions else stub_source(ex)
        code = f"{ex.imports}\n\n\n{body}" if ex.imports else body
        cells.append(cell("exercise-statement", statement, base[:58] + "-text", ex.id))
        cells.append(cell("exercise-stub", code, base[:58] + "-stub", ex.id))
        check_code = f'from esc_course.exercises import check\n\ncheck("{ex.id}", {ex.name})'
        cells.append(cell("exercise-check", check_code, base[:57] + "-check", ex.id))
    return cells


def is_exercise_cell(cell) -> bool:
    return TAG in cell.get("metadata", {}).get("tags", [])


def week_of(path: str | Path) -> int:
    """The week of a notebook from its file name (weekNN_...)."""
    match = re.match(r"week(\d{2})", Path(path).name)
    if not match:
        raise ValueError(f"cannot tell the week of notebook {str(path)!r}: its name must start with weekNN_ "
                         f"(or pass week=)")
    return int(match.group(1))


def write_section(path: str | Path, week: int | None = None, solutions: bool = False,
                  out: str | Path | None = None) -> Path:
    """Replace the exercise section of the notebook at ``path`` (or append one) and write it to ``out``
    (default: in place). The other cells are left exactly as they were."""
    import nbformat

    from esc_course.files import atomic_write

    path = Path(path)
    week = week_of(path) if week is None else week
    nb = nbformat.read(path, as_version=4)
    nb.cells = [c for c in nb.cells if not is_exercise_cell(c)] + section_cells(week, solutions)
    target = Path(out) if out else path
    with atomic_write(target) as tmp:
        nbformat.write(nb, tmp)
    return target
