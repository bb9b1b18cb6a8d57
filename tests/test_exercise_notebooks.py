"""Every notebook's exercise section is what the tool generates from the references (stubs never drift), holds
no solution, and runs in a real kernel: with the stubs every check says 'not implemented yet' without a
traceback; with the organisers' solutions every check passes. Also the ``esc-course exercises`` command."""

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from esc_course.exercises import catalog, weeks
from esc_course.exercises.cells import (
    is_exercise_cell,
    section_cells,
    solution_source,
    week_of,
    write_section,
)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tools import run_notebook  # noqa: E402

NOTEBOOKS = sorted(p for p in (ROOT / "notebooks").glob("week*.ipynb") if week_of(p) in weeks())
FIELDS = ("cell_type", "id", "source")


def _exercise_cells(nb):
    return [c for c in nb.cells if is_exercise_cell(c)]


def test_every_week_with_exercises_has_a_notebook():
    assert sorted(week_of(p) for p in NOTEBOOKS) == weeks() == list(range(1, 11))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_committed_section_is_the_generated_one(path):
    nb = nbformat.read(path, as_version=4)
    committed, generated = _exercise_cells(nb), section_cells(week_of(path))
    assert [[c[f] for f in FIELDS] + [c.metadata["tags"]] for c in committed] == \
        [[c[f] for f in FIELDS] + [c.metadata["tags"]] for c in generated], \
        f"{path.name}: re-run python -m tools.exercise_cells {path.relative_to(ROOT)}"
    assert nb.cells[-len(committed):] == committed  # the section is the notebook's end
    text = "\n".join(c.source for c in nb.cells)
    assert "BEGIN SOLUTION" not in text
    for ex in catalog(week_of(path)):
        assert f'check("{ex.id}", {ex.name})' in text
        body = [line for line in solution_source(ex).split("\n")[1:] if line.strip() and '"""' not in line
                and line not in ex.solution.__doc__]
        assert not any(line in text.split("\n") for line in body), f"{ex.id}: a solution line is in the notebook"


def test_write_section_replaces_only_its_cells(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# mine"), nbformat.v4.new_code_cell("x = 1")]
    path = tmp_path / "week06_anything.ipynb"
    nbformat.write(nb, path)
    write_section(path)
    first = nbformat.read(path, as_version=4)
    write_section(path)  # again: the section is replaced, not appended twice
    again = nbformat.read(path, as_version=4)
    assert again == first and again.cells[:2] == nb.cells and len(again.cells) == 2 + 1 + 3 * 3
    write_section(path, solutions=True, out=tmp_path / "solutions.ipynb")
    solved = nbformat.read(tmp_path / "solutions.ipynb", as_version=4)
    assert "m_hat = m / (1 - beta1**t)" in "\n".join(c.source for c in solved.cells)
    assert "m_hat" not in "\n".join(c.source for c in nbformat.read(path, as_version=4).cells)
    with pytest.raises(ValueError, match="weekNN_"):
        write_section(tmp_path / "solutions.ipynb")


def _section_notebook(tmp_path, solutions: bool) -> Path:
    """One notebook holding every week's exercise cells (the committed ones, or their solution copies)."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    for path in NOTEBOOKS:
        if solutions:
            path = write_section(path, solutions=True, out=tmp_path / f"solutions-{path.name}")
        nb.cells += _exercise_cells(nbformat.read(path, as_version=4))
    if not solutions:  # wrong answers of every kind, shown the way a student's are; the last one never returns
        nb.cells.append(nbformat.v4.new_code_cell(WRONG_ANSWERS))
    out = tmp_path / f"exercises-{'solutions' if solutions else 'stubs'}.ipynb"
    nbformat.write(nb, out)
    return out


WRONG_ANSWERS = """import sys

from esc_course.exercises import check


def forever(*args):
    while True:
        pass


for wrong in (lambda *a: 1 / 0, lambda *a: None, lambda *a: torch.zeros(1), lambda *a: torch.full((1, 1, 3, 3), float("nan")),
              lambda *a: sys.exit(1), forever):
    display(check("week03.conv2d", wrong))
"""


def _check_outputs(nb) -> list[str]:
    texts = []
    for cell in nb.cells:
        if "exercise-check" in cell.metadata.get("tags", []):
            data = [o.get("data", {}) for o in cell.get("outputs", []) if o.get("output_type") == "execute_result"]
            assert data and "text/html" in data[0], f"{cell.id}: no verdict shown"
            texts.append("".join(data[0]["text/plain"]))
    return texts


@pytest.mark.slow
@pytest.mark.parametrize("solutions", [False, True], ids=["stubs", "solutions"])
def test_exercise_cells_in_a_real_kernel(tmp_path, solutions):
    nb = run_notebook.execute(_section_notebook(tmp_path, solutions), cwd=tmp_path)
    assert not run_notebook.problems(nb)
    texts = _check_outputs(nb)
    assert len(texts) == len(catalog())
    if not solutions:
        shown = ["".join(o["data"]["text/plain"]) for o in nb.cells[-1].outputs if o.output_type == "display_data"]
        assert [s.split(": ", 1)[0] for s in shown] == ["✗ week03.conv2d"] * 6, shown
        for text, words in zip(shown, ["raised ZeroDivisionError", "got NoneType", "has shape (1,)", "has NaN",
                                       "called exit()", "too slow"]):
            assert words in text, text
    for text in texts:
        if solutions:
            assert text.startswith("✓") and "cases passed" in text, text
        else:
            assert text.startswith("✗") and "not implemented yet" in text, text


def _cli(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "esc_course.cli", "exercises", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=300)


def test_cli_lists_and_says_check_runs_your_code():
    res = _cli("--week", "3")
    assert res.returncode == 0 and "week03.conv2d" in res.stdout and "week06" not in res.stdout
    assert "conv2d(x, w, b, stride, padding)" in res.stdout
    helptext = _cli("--help").stdout
    assert "EXECUTES the code" in helptext and "your own machine" in helptext
    bad = _cli("--week", "42")
    assert bad.returncode == 2 and "week 42" in bad.stderr


def test_cli_checks_a_file_and_a_notebook(tmp_path):
    from esc_course.exercises import get

    adam = get("week06.adam_step")
    student = tmp_path / "mine.py"
    student.write_text("import torch\n\n" + solution_source(adam) + "\n\n"
                       "def sgd_momentum_step(param, grad, buf, lr, momentum):\n"
                       "    return param - lr * grad, buf\n\nprint('hello')\n", encoding="utf-8")
    res = _cli("--week", "6", "--check", str(student), "--json", str(tmp_path / "r.json"))
    assert res.returncode == 1 and "hello" not in res.stdout
    lines = {line.split()[1]: line.split()[2] for line in res.stdout.splitlines() if line.startswith("06 ")}
    assert lines == {"week06.adam_step": "passed", "week06.sgd_momentum_step": "failed",
                     "week06.rmsprop_step": "missing"}
    assert "exercises passed: 1/3" in res.stdout
    assert json.loads((tmp_path / "r.json").read_text())["summary"]["passed_ids"] == ["week06.adam_step"]
    stubs = _cli("--check", str(ROOT / "notebooks" / "week04_training.ipynb"), "--week", "4")
    assert stubs.returncode == 1 and "exercises passed: 0/3" in stubs.stdout
    out = tmp_path / "solved.ipynb"
    assert _cli("--solutions", str(ROOT / "notebooks" / "week04_training.ipynb")).returncode == 2
    assert _cli("--solutions", str(ROOT / "notebooks" / "week04_training.ipynb"), "--out", str(out)).returncode == 0
    solved = _cli("--check", str(out), "--week", "4")
    assert solved.returncode == 0 and "exercises passed: 3/3" in solved.stdout
    plain = tmp_path / "untagged.ipynb"  # a student's own notebook: the cells that define an exercise's function
    plain.write_text(json.dumps({"cells": [
        {"cell_type": "code", "metadata": {}, "source": ["%matplotlib inline\n", "def relu_backward(x, g):\n", "    return g\n",
                                                         "raise SystemExit"]},
        {"cell_type": "code", "metadata": {}, "source": ["import torch\n", "def l2_penalty(params):\n",
                                                         "    return sum((p ** 2).sum() for p in params)\n"]}],
        "metadata": {}, "nbformat": 4, "nbformat_minor": 5}), encoding="utf-8")
    res = _cli("--check", str(plain), "--week", "5")
    status = {line.split()[1]: line.split()[2] for line in res.stdout.splitlines() if line.startswith("05 ")}
    assert status["week05.l2_penalty"] == "passed" and status["week05.inverted_dropout"] == "missing", res.stdout
    assert "warning: untagged.ipynb cell 0: SystemExit" in res.stderr
    (tmp_path / "broken.ipynb").write_text("not json", encoding="utf-8")
    broken = _cli("--check", str(tmp_path / "broken.ipynb"))
    assert broken.returncode == 2 and "not a Jupyter notebook" in broken.stderr
    missing = _cli("--check", str(tmp_path / "nope.py"))
    assert missing.returncode == 2 and "no such file" in missing.stderr


def test_tool_writes_sections_and_leaves_a_week_without_exercises_alone(tmp_path, capsys):
    from tools.exercise_cells import main

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# attention")]
    later, week6 = tmp_path / "week11_projects.ipynb", tmp_path / "week06_optimizers.ipynb"
    nbformat.write(nb, later)
    nbformat.write(nb, week6)
    before = later.read_bytes(), week6.read_bytes()
    assert main([str(later), str(week6), "--solutions", str(tmp_path / "sol")]) == 0
    assert (later.read_bytes(), week6.read_bytes()) == before  # solutions go to the copy only
    assert "has no exercises yet" in capsys.readouterr().out
    assert "m_hat" in (tmp_path / "sol" / "week06_optimizers.ipynb").read_text(encoding="utf-8")
    assert main([str(week6)]) == 0
    tags = [c.metadata.get("tags", []) for c in nbformat.read(week6, as_version=4).cells]
    assert tags[0] == [] and sum("exercise-stub" in t for t in tags) == 3
