"""Execute a notebook the way a student's runs: a real IPython kernel, no MPLBACKEND, then list what a student
would see go wrong (a traceback, a warning or anything else on stderr, a figure shown as text instead of an image).

    python -m tools.run_notebook notebooks/week04_training.ipynb [--full] [--out DIR]

prints each code cell's seconds and the problems; ``--out`` keeps the executed notebook and its PNGs there to
look at. The notebook tests call :func:`execute` and :func:`problems`.
"""

from __future__ import annotations

import argparse
import base64
import os
import re
import sys
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# a Figure's plain-text repr: what a student sees when no image was produced
FIGURE_TEXT = re.compile(r"<(?:[\w.]+\.)?\w*Figure size [\d.]+x[\d.]+ with \d+ Axes>")


def execute(path: str | Path, quick: bool = True, timeout: int = 600, cwd: str | Path | None = None):
    """Run every cell of ``path`` in a fresh python3 kernel; return the executed notebook (nbformat node).

    The kernel gets this process's environment less MPLBACKEND (the student's has none), with ESC_QUICK set from
    ``quick`` and the repository root on PYTHONPATH; it runs in ``cwd`` (default: a folder beside the notebook's
    runs, so nothing lands in notebooks/)."""
    import nbformat
    from nbclient import NotebookClient

    saved = dict(os.environ)
    os.environ.pop("MPLBACKEND", None)
    os.environ["ESC_QUICK"] = "1" if quick else "0"
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), saved.get("PYTHONPATH")]))
    try:
        nb = nbformat.read(path, as_version=4)
        client = NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=True,
                                resources={"metadata": {"path": str(cwd or Path(path).parent)}})
        client.execute()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return nb


def cell_seconds(cell) -> float | None:
    """Wall seconds the kernel spent on a code cell (nbclient's timing metadata)."""
    timing = cell.get("metadata", {}).get("execution", {})
    start, end = timing.get("iopub.execute_input"), timing.get("shell.execute_reply")
    if not start or not end:
        return None
    parse = lambda t: datetime.fromisoformat(t.replace("Z", "+00:00"))  # noqa: E731
    return (parse(end) - parse(start)).total_seconds()


def problems(nb) -> list[str]:
    """What a student would see go wrong, one line per problem, naming the cell (0-based index)."""
    found = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        for out in cell.get("outputs", []):
            kind = out.get("output_type")
            if kind == "error":
                found.append(f"cell {i}: {out.get('ename')}: {out.get('evalue')}")
            elif kind == "stream" and out.get("name") == "stderr":
                found.append(f"cell {i} wrote to stderr: {out.get('text', '').strip()[:300]}")
            elif kind in ("execute_result", "display_data"):
                data = out.get("data", {})
                text = data.get("text/plain", "")
                text = "".join(text) if isinstance(text, list) else text
                if FIGURE_TEXT.search(text) and "image/png" not in data:
                    found.append(f"cell {i} shows a figure as text, not as an image: {text[:120]}")
            if kind == "stream" and FIGURE_TEXT.search(out.get("text", "")):
                found.append(f"cell {i} printed a figure as text: {out.get('text', '')[:120]}")
    return found


def images(nb) -> list[tuple[int, bytes]]:
    """(cell index, PNG bytes) of every image the notebook shows."""
    return [(i, base64.b64decode(out["data"]["image/png"]))
            for i, cell in enumerate(nb.cells) if cell.cell_type == "code"
            for out in cell.get("outputs", []) if "image/png" in out.get("data", {})]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebook", type=Path)
    parser.add_argument("--full", action="store_true", help="full mode (default: quick mode, ESC_QUICK=1)")
    parser.add_argument("--out", type=Path, help="write the executed notebook and its PNGs here")
    args = parser.parse_args(argv)
    import nbformat

    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
    nb = execute(args.notebook, quick=not args.full, cwd=args.out)
    total = 0.0
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            s = cell_seconds(cell) or 0.0
            total += s
            print(f"cell {i:2d}: {s:6.1f} s  {cell.source.splitlines()[0][:80] if cell.source else ''}")
    print(f"total {total:.1f} s, {len(images(nb))} images")
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, args.out / args.notebook.name)
        for k, (i, png) in enumerate(images(nb)):
            (args.out / f"cell{i:02d}_{k}.png").write_bytes(png)
    found = problems(nb)
    for line in found:
        print("PROBLEM:", line)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
