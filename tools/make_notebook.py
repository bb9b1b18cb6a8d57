"""Write a notebook from a list of ("md"|"code", text) cells, outputs empty. No command line: notebook authors
import it from the repository root, e.g.  from tools.make_notebook import write; write("notebooks/x.ipynb", cells)."""

from __future__ import annotations

from pathlib import Path

import nbformat


def write(path: str | Path, cells: list[tuple[str, str]]) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    for kind, text in cells:
        text = text.strip("\n")
        nb.cells.append(nbformat.v4.new_markdown_cell(text) if kind == "md" else nbformat.v4.new_code_cell(text))
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i:02d}"
    path = Path(path)
    nbformat.write(nb, path)
    return path
