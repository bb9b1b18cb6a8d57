"""The ``esc-course`` command. Startup imports no torch: each command imports what it needs when it runs.

    esc-course doctor                      versions, device, memory: paste it into a question
    esc-course lab list                    the labs
    esc-course lab run NAME [--quick] [--out DIR] [--key=value ...]
    esc-course lab run all --quick         every lab, with a summary table and runs/<time>/index.html
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def cmd_doctor(args: argparse.Namespace) -> int:
    from esc_course.device import describe_device

    print(describe_device(args.device))
    return 0


def cmd_lab_list(args: argparse.Namespace) -> int:
    import labs

    for info in labs.registry().values():
        print(f"week {info.week:02d}  {info.name:<20} {info.title}")
    return 0


def cmd_lab_run(args: argparse.Namespace, overrides: list[str]) -> int:
    import labs
    from esc_course.config import ConfigError
    from esc_course.report import summary_table, write_index
    from esc_course.runs import timestamp

    names = list(labs.registry()) if args.name == "all" else [args.name]
    try:
        for name in names:
            labs.make_config(name, overrides, args.quick)  # check every override before running anything
    except (ConfigError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    run_dir = Path(args.out) if args.out else Path("runs") / timestamp()
    rows = []
    for name in names:
        info = labs.get_info(name)
        out = run_dir / info.name if args.name == "all" or not args.out else run_dir
        print(f"running {info.name} ({'quick' if args.quick else 'full'}) ...", flush=True)
        _, summary = labs.run_one(info.name, overrides, args.quick, out)
        if out != run_dir:
            summary.folder = out.relative_to(run_dir).as_posix()
        else:
            summary.folder = "."
        rows.append(summary)
        if not summary.ok:
            print(f"  {info.name} FAILED: {summary.error} (see {out / 'error.txt'})", file=sys.stderr)
    index = write_index(run_dir, rows)
    print()
    print(summary_table(rows))
    print(f"\nresults: {run_dir}/   open {index} in a browser")
    return 0 if all(r.ok for r in rows) else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="esc-course", description="The ESC deep-learning course: labs, helpers "
                                     "and group-assignment tools.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("doctor", help="print versions, device and memory (paste this into a question)")
    p.add_argument("--device", default="auto", help="device to check (default: auto)")
    p.set_defaults(func=cmd_doctor)

    lab = sub.add_parser("lab", help="list or run the weekly labs")
    lab_sub = lab.add_subparsers(dest="lab_command", required=True)
    p = lab_sub.add_parser("list", help="list the labs")
    p.set_defaults(func=cmd_lab_list)
    p = lab_sub.add_parser("run", help="run a lab (or 'all'); extra --key=value set the lab's Config",
                           epilog="example: esc-course lab run xor --quick --lr=0.3 --epochs=200")
    p.add_argument("name", help="lab name (see 'esc-course lab list') or 'all'")
    p.add_argument("--quick", action="store_true", help="small, fast variant (seconds on a laptop CPU)")
    p.add_argument("--out", help="output folder (default: runs/<time>/<lab>)")
    p.set_defaults(func=cmd_lab_run, takes_overrides=True)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if getattr(args, "takes_overrides", False):
        return args.func(args, extra)
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
