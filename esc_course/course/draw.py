"""A fair, reproducible draw of who presents (a person or a group).

Fair: with a history file, nobody is drawn twice before everyone has been drawn once. The draws form cycles; a
draw picks uniformly among those not yet drawn in the current cycle, and when everyone has presented a new
cycle begins (whose first draw excludes the one who presented last, so nobody presents twice in a row). Reproducible and auditable: the pick is ``random.Random(seed).choice(sorted(pool))``, and each
history entry stores the seed and the pool, so anyone can recompute it (``audit``).

Candidates file (``--from FILE``), UTF-8, one entry a line, ``#`` starts a comment:

    team-a: Kim, Lee, Park      a group and its members
    team-b: Choi, Jung
    Han                         a person on their own

With ``groups=True`` the group names are drawn; otherwise the people (every member of every group).
"""

from __future__ import annotations

import json
import random
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

HISTORY_FORMAT = "esc-course-draws"


@dataclass(frozen=True)
class Draw:
    name: str  # who presents
    seed: int
    cycle: int  # 1 while the first round through everyone lasts, then 2, ...
    pool: tuple[str, ...]  # who could have been drawn (not yet drawn in this cycle), sorted
    remaining: tuple[str, ...]  # who is still to present in this cycle after this draw

    def to_json(self) -> dict:
        return {"name": self.name, "seed": self.seed, "cycle": self.cycle, "pool": list(self.pool),
                "time": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def parse_candidates(text: str, groups: bool = False) -> dict[str, tuple[str, ...]]:
    """Candidate name -> members (a group's members, or empty) from the file format in the module docstring."""
    entries: list[tuple[str, tuple[str, ...]]] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, rest = line.partition(":")
        if not name.strip():
            raise ValueError(f"line {number}: {raw!r} has no name before ':'")
        entries.append((name.strip(), tuple(m.strip() for m in rest.split(",") if m.strip()) if sep else ()))
    if groups:
        _unique([name for name, _ in entries], "group")
        return dict(entries)
    people = [m for name, members in entries for m in (members or (name,))]
    return {p: () for p in _unique(people, "person")}


def parse_names(text: str) -> list[str]:
    """``"a, b,c"`` -> ``["a", "b", "c"]`` (the ``--names`` option)."""
    return _unique([n.strip() for n in text.split(",") if n.strip()], "name")


def _unique(names: list[str], what: str) -> list[str]:
    if not names:
        raise ValueError(f"no {what}s to draw from")
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f"{what} {', '.join(map(repr, twice))} listed twice; every {what} must be listed once")
    return names


def current_cycle(candidates: Sequence[str], history: Sequence[dict]) -> tuple[int, list[str]]:
    """The current cycle number and who in it has not been drawn yet (sorted).

    Names in the history that are no longer candidates are ignored; a new candidate joins the current cycle.
    """
    everyone, drawn, cycle = set(candidates), set(), 1
    for entry in history:
        if entry.get("name") in everyone:
            drawn.add(entry["name"])
        if drawn >= everyone:
            cycle, drawn = cycle + 1, set()
    return cycle, sorted(everyone - drawn)


def new_seed() -> int:
    """A fresh seed from the operating system's randomness (printed with the draw, so it can be repeated)."""
    return secrets.randbelow(2**32)


def draw(candidates: Sequence[str], seed: int | None = None, history: Sequence[dict] = ()) -> Draw:
    """Draw one of ``candidates`` among those not yet drawn in the current cycle of ``history``."""
    if not candidates:
        raise ValueError("candidates is empty: nobody to draw")
    if seed is None:
        seed = new_seed()
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    cycle, left = current_cycle(candidates, history)
    pool = left
    if history and len(left) == len(set(candidates)) > 1:  # a new cycle: not again who presented last time
        pool = [p for p in left if p != history[-1].get("name")]
    name = random.Random(seed).choice(pool)  # sorted pool: the result does not depend on the input order
    return Draw(name, seed, cycle, tuple(pool), tuple(p for p in left if p != name))


def load_history(path: Path | str, kind: str) -> list[dict]:
    """The draws recorded in ``path`` (none if it does not exist yet); ``kind`` is "people" or "groups"."""
    path = Path(path)
    if not path.exists():
        return []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as err:
        raise ValueError(f"--history {path}: not valid JSON ({err}); fix or move it") from None
    if not isinstance(data, dict) or data.get("format") != HISTORY_FORMAT or not isinstance(data.get("draws"), list):
        raise ValueError(f"--history {path}: not an esc-course draw history")
    if data.get("kind") != kind:
        raise ValueError(f"--history {path} records draws of {data.get('kind')}, not of {kind}; use another file")
    return data["draws"]


def record(path: Path | str, result: Draw, kind: str, history: Sequence[dict]) -> None:
    """Append ``result`` to the history file, written atomically (a crash leaves the previous file)."""
    from esc_course.files import write_text

    data = {"format": HISTORY_FORMAT, "version": 1, "kind": kind, "draws": [*history, result.to_json()]}
    write_text(Path(path), json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def audit(history: Sequence[dict]) -> list[str]:
    """Problems with a history: an entry whose seed and pool do not give its name (an empty list: all reproduce)."""
    problems = []
    for i, entry in enumerate(history, 1):
        pool, seed = entry.get("pool"), entry.get("seed")
        if not isinstance(pool, list) or not pool or not isinstance(seed, int):
            problems.append(f"draw {i}: no seed or pool recorded")
        elif random.Random(seed).choice(sorted(pool)) != entry.get("name"):
            problems.append(f"draw {i}: seed {seed} over its pool gives "
                            f"{random.Random(seed).choice(sorted(pool))!r}, not {entry.get('name')!r}")
    return problems
