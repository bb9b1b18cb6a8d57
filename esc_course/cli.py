"""The ``esc-course`` command. Startup imports no torch: each command imports what it needs when it runs.

    esc-course doctor                      versions, device, memory: paste it into a question
    esc-course lab list                    the labs
    esc-course lab run NAME [--quick] [--out DIR] [--resume] [--key=value ...]
    esc-course lab run all --quick         every lab, with a summary table and runs/<time>/index.html
    esc-course data list [--root DIR]      image data sets: embedded, or on disk and whether their files are there
    esc-course data fetch NAME [--root DIR]   download mnist, fashion_mnist or cifar10 (when online)
    esc-course submit --group G --members "a,b" --lab LAB [--run DIR] [--notebook NB] [--weights W]
    esc-course verify BUNDLE...            every check a bundle must pass, before anything is extracted
    esc-course leaderboard DIR [--lab LAB] [--reevaluate]   rank the valid bundles, list the rejected ones
    esc-course draw --from FILE|--names a,b,c [--groups] [--seed S] [--history FILE]   who presents
    esc-course exercises [--week N] [--check FILE]   the exercises; check your functions (runs your code)
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
    from esc_course.lab import registry

    for info in registry().values():
        print(f"week {info.week:02d}  {info.name:<20} {info.title}")
    return 0


def cmd_lab_run(args: argparse.Namespace, overrides: list[str]) -> int:
    from esc_course.lab import run_labs

    return run_labs(args.name, overrides, args.quick, args.out, args.resume)


def cmd_submit(args: argparse.Namespace) -> int:
    from esc_course.course.submit import SubmitError, build_bundle
    from esc_course.course.verify import verify_bundle
    from esc_course.lab import registry, spec

    try:
        path = build_bundle(group=args.group, members=args.members, lab=spec(args.lab), run_dir=args.run,
                            notebook=args.notebook, weights=args.weights, out_dir=args.out,
                            exercises=args.exercises)
    except (SubmitError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    report = verify_bundle(path, known_labs=registry())  # the same checks the organisers run
    if not report.ok:
        print(report.text(), file=sys.stderr)
        return 1
    m = report.manifest
    print(f"wrote {path} ({path.stat().st_size} bytes): group {m['group']} ({', '.join(m['members'])}), "
          f"lab {m['lab']}, {m['metric']['name']} = {m['metric']['value']}")
    print(f"files: {', '.join(m['files'])}")
    if "exercises" in m:
        print(f"exercises passed: {m['exercises']['passed']}/{m['exercises']['total']} (self-reported)")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from esc_course.course.verify import BundleError, extract_verified, verify_bundle
    from esc_course.lab import registry

    failed, known = 0, registry()  # lab names from file names: no lab is imported
    for bundle in args.bundles:
        report = verify_bundle(bundle, known_labs=known)
        print(report.text())
        failed += not report.ok
        if report.ok and args.extract:
            try:
                print(f"  extracted to {extract_verified(bundle, args.extract)}")
            except BundleError as err:
                print(f"  not extracted: {err}", file=sys.stderr)
                failed += 1
    return 1 if failed else 0


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from esc_course.course.leaderboard import collect, text, write
    from esc_course.lab import spec

    try:
        board = collect(args.dir, lab=args.lab, metric=args.metric, mode=args.mode, reevaluate=args.reevaluate,
                        data_dir=args.data, tolerance=args.tolerance, spec=spec)
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(text(board))
    md, table = write(board, args.out or args.dir)
    print(f"\nwrote {md} and {table}")
    return 0


def cmd_draw(args: argparse.Namespace) -> int:
    from esc_course.course import draw as d

    kind = "groups" if args.groups else "people"
    try:
        if args.from_file:
            candidates = d.parse_candidates(Path(args.from_file).read_text(encoding="utf-8"), groups=args.groups)
        else:
            candidates = {name: () for name in d.parse_names(args.names)}
        history = d.load_history(args.history, kind) if args.history else []
        for problem in d.audit(history):
            print(f"warning: {args.history}: {problem}", file=sys.stderr)
        result = d.draw(list(candidates), seed=args.seed, history=history)
        if args.history:
            d.record(args.history, result, kind, history)
    except (OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    members = candidates[result.name]
    print(f"drawn: {result.name}" + (f" ({', '.join(members)})" if members else ""))
    print(f"seed: {result.seed}  (random.Random({result.seed}).choice(pool) gives the same draw)")
    print(f"cycle {result.cycle}, pool: {', '.join(result.pool)}")
    if args.history:
        left = ", ".join(result.remaining) or "nobody: the next draw starts a new cycle"
        print(f"still to present in this cycle: {left}  (recorded in {args.history})")
    else:
        print("no --history: this draw does not remember earlier ones (anyone can be drawn again)")
    return 0


def cmd_data_list(args: argparse.Namespace) -> int:
    from esc_course.data.real import TORCHVISION_SETS, data_root, missing_files
    from esc_course.data.vision import DATASETS

    print(f"data root: {data_root(args.root)}  (--root, or the ESC_DATA environment variable)")
    for name, info in DATASETS.items():
        shape = f"{info.channels}x{info.size}x{info.size}"
        if info.embedded:
            status = "embedded (in the package)"
        else:
            missing = missing_files(name, args.root)
            where = data_root(args.root) / TORCHVISION_SETS[name][1]
            status = f"ready in {where}" if not missing else \
                f"missing {len(missing)} files in {where}: esc-course data fetch {name}"
        print(f"  {name:<14} {shape:<8} {info.num_classes:>3} classes  {status}")
    print("  folder         any ImageFolder: <dir>/<class name>/<image>.png  (vision('folder', root=<dir>))")
    return 0


def cmd_data_fetch(args: argparse.Namespace) -> int:
    from esc_course.data.real import TORCHVISION_SETS, expected_files, fetch
    from esc_course.data.vision import DATASETS

    if args.name in DATASETS and DATASETS[args.name].embedded:
        print(f"{args.name} is embedded in the package: nothing to fetch")
        return 0
    if args.name not in TORCHVISION_SETS:
        print(f"error: unknown data set {args.name!r}; can fetch: {', '.join(TORCHVISION_SETS)}", file=sys.stderr)
        return 2
    try:
        files = fetch(args.name, args.root)
    except Exception as err:  # noqa: BLE001 - offline, a proxy, a full disk: say what happened and the way round
        where = "\n".join(f"  {p}" for p in expected_files(args.name, args.root))
        print(f"error: could not download {args.name}: {err}\nWithout a network, copy these files there by "
              f"hand:\n{where}", file=sys.stderr)
        return 1
    print(f"{args.name}: {len(files)} files in {files[0].parent}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from esc_course.lab import add_run_options

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
    add_run_options(p)
    p.set_defaults(func=cmd_lab_run, takes_overrides=True)

    p = sub.add_parser("submit", help="build a group's submission bundle (zip) for one lab",
                       epilog='example: esc-course submit --group team-a --members "Kim,Lee" --lab xor '
                              '--run runs/my-xor --notebook notebooks/week01_xor.ipynb')
    p.add_argument("--group", required=True, help="group name: letters, digits, '_' or '-'")
    p.add_argument("--members", required=True, help="the group's members, separated by commas")
    p.add_argument("--lab", required=True, help="lab name (see 'esc-course lab list')")
    p.add_argument("--run", help="the lab's run folder (default: the newest run of the lab under runs/)")
    p.add_argument("--notebook", help="the group's notebook (.ipynb)")
    p.add_argument("--weights", help="model weights as .safetensors (default: the run's model.safetensors)")
    p.add_argument("--exercises", metavar="FILE", help="your exercise code (.py or the notebook) and its check "
                   "results (this runs the code in FILE; see 'esc-course exercises')")
    p.add_argument("--out", default=".", help="folder for the bundle (default: the current folder)")
    p.set_defaults(func=cmd_submit)

    p = sub.add_parser("verify", help="check bundles before anything in them is extracted (exit 1 on failure)")
    p.add_argument("bundles", nargs="+", metavar="BUNDLE", help="bundle .zip files")
    p.add_argument("--extract", metavar="DIR", help="extract each valid bundle into DIR/<bundle name>/")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("leaderboard", help="rank a folder of bundles; write leaderboard.md and .csv")
    p.add_argument("dir", help="folder holding the bundles (*.zip)")
    p.add_argument("--lab", help="only this lab's bundles")
    p.add_argument("--metric", help="rank by this metric (default: the lab's headline metric)")
    p.add_argument("--mode", choices=("max", "min"), help="higher or lower is better (default: the lab's)")
    p.add_argument("--reevaluate", action="store_true",
                   help="measure the metric from each bundle's safetensors weights instead of trusting it")
    p.add_argument("--data", metavar="DIR", help="the organisers' held-out data for --reevaluate "
                   "(DIR/<lab>.safetensors; default: the lab's own test split)")
    p.add_argument("--tolerance", type=float, default=1e-6, help="largest |claimed - measured| that counts as ok")
    p.add_argument("--out", help="folder for leaderboard.md/.csv (default: DIR)")
    p.set_defaults(func=cmd_leaderboard)

    p = sub.add_parser("draw", help="draw who presents: nobody twice before everyone once (with --history)")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--from", dest="from_file", metavar="FILE",
                     help="candidates: one name a line, or 'group: member, member'")
    who.add_argument("--names", help="candidates separated by commas")
    p.add_argument("--groups", action="store_true", help="draw a group instead of a person")
    p.add_argument("--seed", type=int, help="seed of the draw (default: a fresh one, printed)")
    p.add_argument("--history", metavar="FILE", help="JSON file remembering earlier draws (updated atomically)")
    p.set_defaults(func=cmd_draw)

    data = sub.add_parser("data", help="image data sets: list them, fetch the real ones (needs a network)")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    p = data_sub.add_parser("list", help="every data set, embedded or on disk, and whether its files are there")
    p.add_argument("--root", help="data folder (default: $ESC_DATA, else the checkout's data/)")
    p.set_defaults(func=cmd_data_list)
    p = data_sub.add_parser("fetch", help="download a data set through torchvision",
                            epilog="example: esc-course data fetch mnist --root data")
    p.add_argument("name", help="mnist, fashion_mnist or cifar10")
    p.add_argument("--root", help="data folder (default: $ESC_DATA, else the checkout's data/)")
    p.set_defaults(func=cmd_data_fetch)

    from esc_course.exercises.command import add_parser as add_exercises_parser

    add_exercises_parser(sub)
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
