"""Write (or replace) each notebook's exercise section: the stubs generated from the references' solution
markers, one statement, stub and check cell per exercise, at the end between the cells tagged ``exercises``.
Every other cell is left as it was, so it runs on whatever version of a notebook it is given.

    python -m tools.exercise_cells notebooks/*.ipynb                 # student sections, in place
    python -m tools.exercise_cells notebooks/*.ipynb --solutions DIR  # organisers: solution copies in DIR

The week comes from the file name (weekNN_...). The logic lives in esc_course.exercises.cells (the CLI's
``esc-course exercises --write / --solutions`` uses it too).
"""

from __future__ import annotations

import argparse
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    from esc_course.exercises import weeks
    from esc_course.exercises.cells import week_of, write_section

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--solutions", type=Path, metavar="DIR",
                        help="write solution copies into DIR instead of changing the notebooks")
    args = parser.parse_args(argv)
    for nb in args.notebooks:
        if week_of(nb) not in weeks():
            print(f"{nb}: week {week_of(nb):02d} has no exercises yet, left alone")
            continue
        out = args.solutions / nb.name if args.solutions else None
        print(f"{nb}: {write_section(nb, solutions=bool(args.solutions), out=out)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
