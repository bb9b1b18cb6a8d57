"""``esc-course exercises``: list the exercises, check a student's file, write a notebook's exercise section.

Importing this module imports no torch (the CLI's --help stays fast); ``run`` imports what it needs.
"""

from __future__ import annotations

import argparse
import sys

HELP = "list the implement-and-check exercises; check your functions (--check runs YOUR code)"
EPILOG = ("--check FILE executes the code in FILE (a .py file, or a notebook's exercise cells) on this machine: "
          "use it on your own code, on your own machine. examples: esc-course exercises --week 6;  "
          "esc-course exercises --check notebooks/week06_optimizers.ipynb;  organisers: esc-course exercises "
          "--solutions notebooks/week06_optimizers.ipynb --out solutions/week06_optimizers.ipynb")


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("exercises", help=HELP, description=HELP, epilog=EPILOG)
    p.add_argument("--week", type=int, help="only this week's exercises")
    p.add_argument("--check", metavar="FILE", help="run the checks on the functions FILE (.py or .ipynb) defines; "
                   "this EXECUTES the code in FILE")
    p.add_argument("--json", metavar="OUT", help="with --check: also write the results as JSON to OUT")
    p.add_argument("--solutions", metavar="NOTEBOOK", help="(organisers) write a copy of NOTEBOOK whose exercise "
                   "section has the solutions in place of the stubs; needs --out")
    p.add_argument("--write", metavar="NOTEBOOK", nargs="+", help="(authors) write or replace the exercise "
                   "section (stubs) at the end of each NOTEBOOK, in place")
    p.add_argument("--out", help="where --solutions writes its copy")
    p.set_defaults(func=run)
    return p


def _table(rows: list[dict]) -> str:
    from esc_course.viz import table_text

    return table_text(rows)


def run(args: argparse.Namespace) -> int:
    from esc_course.exercises import catalog

    try:
        exercises = catalog(args.week)
    except (TypeError, ValueError) as err:
        print(f"error: --week: {err}", file=sys.stderr)
        return 2
    if args.solutions or args.write:
        return _write(args)
    if not args.check:
        print(_table([{"week": f"{ex.week:02d}", "exercise": ex.id, "signature": ex.signature}
                      for ex in exercises]))
        print(f"\n{len(exercises)} exercises. Check yours: esc-course exercises --check FILE (runs your code)")
        return 0
    from esc_course.exercises.progress import check_file, results_json, summary, summary_text

    try:
        rows, errors = check_file(args.check, args.week)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for err in errors:
        print(f"warning: {err}", file=sys.stderr)
    print(_table([{"week": f"{r.week:02d}", "exercise": r.id, "result": r.status,
                   "detail": "" if r.passed else r.message[:90]} for r in rows]))
    print(f"\n{summary_text(summary(rows))}")
    if args.json:
        from esc_course.files import atomic_write

        with atomic_write(args.json) as tmp:
            tmp.write_text(results_json(rows) + "\n", encoding="utf-8")
    return 0 if all(r.passed for r in rows) else 1


def _write(args: argparse.Namespace) -> int:
    from esc_course.exercises.cells import write_section

    try:
        if args.solutions:
            if not args.out:
                print("error: --solutions needs --out (the solutions never go into the student notebook)",
                      file=sys.stderr)
                return 2
            print(f"solutions copy: {write_section(args.solutions, args.week, solutions=True, out=args.out)}")
        for nb in args.write or []:
            print(f"exercise section written: {write_section(nb, args.week)}")
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except ImportError as err:  # nbformat comes with Jupyter and the dev extra
        print(f"error: writing notebooks needs nbformat ({err}); pip install nbformat", file=sys.stderr)
        return 2
    return 0
