"""Every notebook runs top to bottom in quick mode the way a student's runs (a real kernel, no MPLBACKEND), shows
every figure as an image, prints no traceback and no warning; and is committed without outputs."""

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tools import run_notebook  # noqa: E402

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_stripped(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            assert not cell.get("outputs") and cell.get("execution_count") is None, f"{path.name}: strip outputs"


def test_problems_sees_a_figure_shown_as_text(tmp_path):
    """The check itself can fail: a Figure made without pyplot and without _repr_png_ is shown as text."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("from matplotlib.figure import Figure\nfig = Figure()\nfig.subplots()\nfig"),
                nbformat.v4.new_code_cell("import warnings\nwarnings.warn('careful')"),
                nbformat.v4.new_code_cell("from esc_course.viz import new_figure\nfig, _ = new_figure()\nfig")]
    path = tmp_path / "probe.ipynb"
    nbformat.write(nb, path)
    found = run_notebook.problems(run_notebook.execute(path, cwd=tmp_path))
    assert any(p.startswith("cell 0 shows a figure as text") for p in found), found
    assert any(p.startswith("cell 1 wrote to stderr") and "careful" in p for p in found), found
    assert not any(p.startswith("cell 2") for p in found), found


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_in_quick_mode(path, tmp_path):
    nb = run_notebook.execute(path, quick=True, cwd=tmp_path)
    assert not run_notebook.problems(nb)
    assert run_notebook.images(nb), f"{path.name} shows no figure"
