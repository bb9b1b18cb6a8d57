"""Rank a folder of submission bundles by the lab's headline metric; list the rejected ones with the reason.

    board = collect("submissions/", lab="xor")                         # verify every *.zip, rank the valid ones
    board = collect("submissions/", reevaluate=True, data_dir="heldout/")  # measure the metric from the weights
    print(text(board)); write(board, "submissions/")                  # leaderboard.md and leaderboard.csv

Ranking: by the metric (the lab's HEADLINE unless another is asked for; its HEADLINE_MODE says whether higher or
lower is better), ties broken by submission time (earlier first). A group's earlier bundles for the same lab are
superseded by its latest. With ``reevaluate``, the measured value ranks and the claimed one is shown beside it.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from esc_course.course.bundle import WEIGHTS, finite_number
from esc_course.course.verify import BundleError, Limits, read_member, verify_bundle
from esc_course.exercises.bundle import summary_text as exercise_summary


@dataclass
class Entry:
    bundle: Path
    lab: str | None = None
    group: str = ""
    members: list[str] = field(default_factory=list)
    created: datetime | None = None
    claimed: float | None = None  # the metric as results.json states it
    measured: float | None = None  # the metric measured from the weights (reevaluate)
    rank: int | None = None
    reason: str = ""  # why it is not ranked
    exercises: str = ""  # "exercises passed: 18/27" (self-reported), "" without exercises

    @property
    def value(self) -> float | None:
        return self.measured if self.measured is not None else self.claimed


@dataclass
class Board:
    lab: str
    metric: str
    mode: str  # "max": higher is better, "min": lower is better
    ranked: list[Entry] = field(default_factory=list)


@dataclass
class Leaderboard:
    boards: dict[str, Board]
    rejected: list[Entry]
    reevaluated: bool = False
    heldout: bool = False  # measured on the organisers' held-out data, not on the lab's own test split
    tolerance: float = 1e-6  # |claimed - measured| above this is a mismatch (same data only)


def collect(folder: Path | str, lab: str | None = None, metric: str | None = None, mode: str | None = None,
            reevaluate: bool = False, data_dir: Path | str | None = None, tolerance: float = 1e-6,
            limits: Limits | None = None) -> Leaderboard:
    """Verify every ``*.zip`` in ``folder`` and rank the valid bundles, one board per lab (or only ``lab``)."""
    import esc_course.lab

    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"folder {str(folder)!r} does not exist; give the folder that holds the bundles (*.zip)")
    if mode not in (None, "max", "min"):
        raise ValueError(f"mode {mode!r}: expected 'max' (higher is better) or 'min' (lower is better)")
    only = esc_course.lab.get_info(lab).name if lab else None
    result = Leaderboard({}, [], reevaluated=reevaluate, heldout=data_dir is not None, tolerance=tolerance)
    entries = []  # (entry, its verification report)
    for path in sorted(folder.glob("*.zip")):
        report = verify_bundle(path, limits or Limits())
        manifest = report.manifest or {}
        entry = Entry(path, manifest.get("lab"), manifest.get("group", ""), manifest.get("members", []))
        if not report.ok:
            entry.reason = f"failed verification: {report.reason}"
            result.rejected.append(entry)
        elif only is None or entry.lab == only:
            entry.created = datetime.fromisoformat(manifest["created"])
            entry.exercises = exercise_summary(manifest.get("exercises"))
            entries.append((entry, report))
    for entry in _supersede([e for e, _ in entries]):
        result.rejected.append(entry)
    for entry, report in entries:
        if entry.reason:
            continue
        board = result.boards.get(entry.lab) or _board(entry.lab, metric, mode)
        result.boards[entry.lab] = board
        entry.claimed = _number(report.results["metrics"].get(board.metric))
        if reevaluate:
            _measure(entry, report, board, data_dir)
        if entry.value is None and not entry.reason:
            entry.reason = f"no finite value of {board.metric!r} in its results"
        (result.rejected if entry.reason else board.ranked).append(entry)
    for board in result.boards.values():
        _rank(board)
    return result


def _board(lab: str, metric: str | None, mode: str | None) -> Board:
    import esc_course.lab

    headline, headline_mode = esc_course.lab.headline(esc_course.lab.load(lab))
    name = metric or headline
    return Board(lab, name, mode or (headline_mode if name == headline else "max"))


def _number(value) -> float | None:
    return float(value) if finite_number(value) else None


def _supersede(entries: list[Entry]) -> list[Entry]:
    """A group's earlier bundles for a lab, marked superseded by its latest one (returned to be listed)."""
    latest: dict[tuple, Entry] = {}
    for e in entries:
        key = (e.lab, e.group)
        if key not in latest or e.created > latest[key].created:
            latest[key] = e
    old = [e for e in entries if latest[(e.lab, e.group)] is not e]
    for e in old:
        e.reason = f"superseded by {latest[(e.lab, e.group)].bundle.name} (a later submission of the group)"
    return old


def _measure(entry: Entry, report, board: Board, data_dir) -> None:
    """Set ``entry.measured`` from the bundle's weights, or ``entry.reason`` why it cannot be measured."""
    from safetensors import SafetensorError

    import esc_course.lab
    from esc_course.course.reevaluate import reevaluate, supports

    module = esc_course.lab.load(board.lab)
    if not supports(module):
        entry.reason = (f"lab {board.lab!r} cannot re-evaluate weights yet: labs/{module.__name__.split('.')[-1]}.py "
                        f"defines no build_model/evaluate_weights (see esc_course.course.reevaluate)")
        return
    files = report.manifest["files"]
    if WEIGHTS not in files:
        entry.reason = f"no {WEIGHTS} to re-evaluate"
        return
    try:
        weights = read_member(entry.bundle, WEIGHTS, files[WEIGHTS]["sha256"])  # re-hashed as it is read
        config = report.results.get("config")
        measured = reevaluate(module, config if isinstance(config, dict) else {}, weights, data_dir)
    except (BundleError, SafetensorError, ValueError, RuntimeError, TypeError, KeyError) as err:
        entry.reason = f"re-evaluation failed: {err}"
        return
    entry.measured = _number(measured.get(board.metric))
    if entry.measured is None:
        entry.reason = f"re-evaluation gave no finite {board.metric!r} (got {sorted(measured)})"


def _rank(board: Board) -> None:
    sign = -1.0 if board.mode == "max" else 1.0
    board.ranked.sort(key=lambda e: (sign * e.value, e.created))
    for i, e in enumerate(board.ranked, 1):
        e.rank = i


# ---- output: a terminal table, Markdown and CSV

def check_of(entry: Entry, board: Leaderboard) -> str:
    if entry.measured is None:
        return ""
    if board.heldout:
        return "held-out"
    if entry.claimed is None:  # ranked on a metric the lab measures from weights but results.json does not hold
        return "not claimed"
    return "ok" if abs(entry.measured - entry.claimed) <= board.tolerance else "MISMATCH"


def rows(board: Board, lb: Leaderboard) -> list[dict]:
    out = []
    for e in board.ranked:
        row = {"rank": e.rank, "group": e.group, "members": ", ".join(_clean(m) for m in e.members)}
        if lb.reevaluated:
            row.update({"claimed": e.claimed, "measured": e.measured, "check": check_of(e, lb)})
        else:
            row[board.metric] = e.claimed
        if any(x.exercises for x in board.ranked):
            row["exercises"] = e.exercises.removeprefix("exercises passed: ") or "-"
        row.update({"submitted": e.created.isoformat() if e.created else "", "bundle": e.bundle.name})
        out.append(row)
    return out


def rejected_rows(lb: Leaderboard) -> list[dict]:
    return [{"bundle": e.bundle.name, "group": _clean(e.group), "lab": e.lab or "", "reason": _clean(e.reason)}
            for e in lb.rejected]


def _clean(text: str) -> str:
    """One line without control characters: names come from students' manifests."""
    return "".join(c if c.isprintable() else " " for c in str(text))


def _title(board: Board, lb: Leaderboard) -> str:
    better = "higher" if board.mode == "max" else "lower"
    how = (" measured on held-out data" if lb.heldout else " re-measured from the weights") if lb.reevaluated else ""
    return f"{board.lab}: {board.metric} ({better} is better){how}"


def text(lb: Leaderboard) -> str:
    from esc_course.viz import table_text

    parts = []
    for board in lb.boards.values():
        parts += [_title(board, lb), table_text(rows(board, lb), digits=6), ""]
    if not lb.boards:
        parts += ["no valid bundles to rank", ""]
    if lb.rejected:
        parts += [f"rejected ({len(lb.rejected)})", table_text(rejected_rows(lb))]
    return "\n".join(parts).rstrip()


def _md_cell(value) -> str:
    text = f"{value:.6g}" if isinstance(value, float) else "" if value is None else str(value)
    return _clean(text).replace("|", "\\|")


def _md_table(table: list[dict]) -> list[str]:
    if not table:
        return ["(none)"]
    cols = list(table[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    return lines + ["| " + " | ".join(_md_cell(r[c]) for c in cols) + " |" for r in table]


def markdown(lb: Leaderboard) -> str:
    lines = ["# Leaderboard", ""]
    for board in lb.boards.values():
        lines += [f"## {_title(board, lb)}", ""] + _md_table(rows(board, lb)) + [""]
    lines += ["## Rejected", ""] + _md_table(rejected_rows(lb)) + [""]
    return "\n".join(lines)


def _csv_cell(value):
    # a spreadsheet runs a cell that starts with = + - @ as a formula; names come from students' manifests
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@"):
        return "'" + value
    return value


def csv_text(lb: Leaderboard) -> str:
    buf = io.StringIO()
    cols = ["lab", "metric", "rank", "group", "members", "claimed", "measured", "check", "submitted", "bundle",
            "status", "reason"]
    writer = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
    writer.writeheader()
    for board in lb.boards.values():
        for e in board.ranked:
            writer.writerow({k: _csv_cell(v) for k, v in {
                "lab": board.lab, "metric": board.metric, "rank": e.rank, "group": e.group,
                "members": ", ".join(_clean(m) for m in e.members), "claimed": e.claimed, "measured": e.measured,
                "check": check_of(e, lb), "submitted": e.created.isoformat(), "bundle": e.bundle.name,
                "status": "ranked", "reason": ""}.items()})
    for r in rejected_rows(lb):
        writer.writerow({k: _csv_cell(v) for k, v in {**r, "status": "rejected"}.items()})
    return buf.getvalue()


def write(lb: Leaderboard, out_dir: Path | str) -> tuple[Path, Path]:
    """Write ``leaderboard.md`` and ``leaderboard.csv`` into ``out_dir`` (atomically); return their paths."""
    from esc_course.files import write_text

    out_dir = Path(out_dir)
    md, table = out_dir / "leaderboard.md", out_dir / "leaderboard.csv"
    write_text(md, markdown(lb))
    write_text(table, csv_text(lb))
    return md, table
