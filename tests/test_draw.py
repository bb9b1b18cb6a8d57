"""The presenter draw: nobody twice before everyone once, uniform over many rounds, reproducible with a seed."""

import json
import os
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from esc_course.course import draw as d

ROOT = Path(__file__).resolve().parents[1]
NAMES = ["Kim", "Lee", "Park", "Choi", "Jung"]
CHI2_DF4_P001 = 18.467  # chi-square critical value, 4 degrees of freedom, p = 0.001


def chi_square(counts: Counter, names, total: int) -> float:
    expected = total / len(names)
    return sum((counts[n] - expected) ** 2 / expected for n in names)


def run_draws(names, seeds, history=None) -> list[d.Draw]:
    history = [] if history is None else history
    out = []
    for seed in seeds:
        result = d.draw(names, seed=seed, history=history)
        history.append(result.to_json())
        out.append(result)
    return out


def test_nobody_is_drawn_twice_before_everyone_was_drawn_once():
    draws = run_draws(NAMES, range(40 * len(NAMES)))
    for start in range(0, len(draws), len(NAMES)):
        cycle = draws[start:start + len(NAMES)]
        assert sorted(r.name for r in cycle) == sorted(NAMES)  # each cycle is a permutation
        assert {r.cycle for r in cycle} == {start // len(NAMES) + 1}
        assert [len(r.pool) for r in cycle] == ([5] if start == 0 else [4]) + [4, 3, 2, 1]
    assert Counter(r.name for r in draws) == Counter({n: 40 for n in NAMES})
    assert all(a.name != b.name for a, b in zip(draws, draws[1:]))  # not twice in a row across cycles either
    assert [len(r.pool) for r in draws[5:10]] == [4, 4, 3, 2, 1]  # a new cycle leaves out the last presenter


def test_draws_are_uniform_over_many_rounds():
    # without history, every name is equally likely
    counts = Counter(d.draw(NAMES, seed=s).name for s in range(5000))
    assert chi_square(counts, NAMES, 5000) < CHI2_DF4_P001, counts
    # with history, every name is equally likely at each position of a cycle (who presents first, second, ...)
    by_position = [Counter() for _ in NAMES]
    for c in range(600):
        for pos, r in enumerate(run_draws(NAMES, [c * 100 + k for k in range(len(NAMES))])):
            by_position[pos][r.name] += 1
    for pos, counts in enumerate(by_position):
        assert chi_square(counts, NAMES, 600) < CHI2_DF4_P001, (pos, counts)


def test_a_biased_draw_would_fail_the_fairness_bound():
    """The bound has teeth: a draw that prefers the first name by a little is caught."""
    rng = random.Random(0)
    biased = Counter(NAMES[0] if rng.random() < 0.06 else rng.choice(NAMES) for _ in range(5000))
    assert chi_square(biased, NAMES, 5000) > CHI2_DF4_P001


def test_the_same_seed_and_history_give_the_same_draw_whatever_the_input_order():
    history = [r.to_json() for r in run_draws(NAMES, [11, 12])]
    a = d.draw(NAMES, seed=123, history=history)
    b = d.draw(list(reversed(NAMES)), seed=123, history=history)
    assert a == b
    assert a.name == random.Random(123).choice(a.pool)  # what the printed seed lets anyone recompute
    assert len({d.draw(NAMES, seed=s).name for s in range(50)}) == len(NAMES)  # the seed matters


def test_a_fresh_seed_is_chosen_and_reported_when_none_is_given():
    results = [d.draw(NAMES) for _ in range(20)]
    assert len({r.seed for r in results}) > 1
    for r in results:
        assert r.name == random.Random(r.seed).choice(sorted(NAMES))


def test_a_new_candidate_joins_the_current_cycle_and_a_removed_one_is_ignored():
    history = [r.to_json() for r in run_draws(NAMES, [1, 2])]
    drawn = {h["name"] for h in history}
    cycle, pool = d.current_cycle(NAMES + ["Han"], history)
    assert cycle == 1 and set(pool) == set(NAMES) - drawn | {"Han"}
    gone = history[0]["name"]
    cycle, pool = d.current_cycle([n for n in NAMES if n != gone], history)
    assert gone not in pool and len(pool) == len(NAMES) - 2


CANDIDATES = """# the club's groups for week 4
team-a: Kim, Lee, Park
team-b: Choi, Jung   # two members
Han
"""


def test_candidates_file_gives_groups_or_people():
    groups = d.parse_candidates(CANDIDATES, groups=True)
    assert groups == {"team-a": ("Kim", "Lee", "Park"), "team-b": ("Choi", "Jung"), "Han": ()}
    assert list(d.parse_candidates(CANDIDATES)) == ["Kim", "Lee", "Park", "Choi", "Jung", "Han"]
    with pytest.raises(ValueError, match="'Kim' listed twice"):
        d.parse_candidates("a: Kim, Lee\nb: Kim")
    with pytest.raises(ValueError, match="group 'a' listed twice"):
        d.parse_candidates("a: Kim\na: Lee", groups=True)
    with pytest.raises(ValueError, match="no names"):
        d.parse_names(" , ")
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        d.draw(NAMES, seed=-1)


def test_history_is_written_atomically_and_audited(tmp_path, monkeypatch):
    path = tmp_path / "history.json"
    history = []
    for seed in (1, 2):
        result = d.draw(NAMES, seed=seed, history=history)
        d.record(path, result, "people", history)
        history = d.load_history(path, "people")
    assert [h["name"] for h in history] == [d.draw(NAMES, seed=1).name, history[1]["name"]]
    assert d.audit(history) == []
    before = path.read_bytes()

    def crash(*args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)  # a crash while writing leaves the previous history intact
    with pytest.raises(OSError):
        d.record(path, d.draw(NAMES, seed=3, history=history), "people", history)
    monkeypatch.undo()
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["history.json"]

    forged = json.loads(before)
    forged["draws"][0]["name"] = next(n for n in NAMES if n != forged["draws"][0]["name"])
    assert "draw 1: seed 1 over its pool gives" in d.audit(forged["draws"])[0]
    with pytest.raises(ValueError, match="records draws of people, not of groups"):
        d.load_history(path, "groups")
    path.write_text("{")
    with pytest.raises(ValueError, match="not valid JSON"):
        d.load_history(path, "people")


def cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "esc_course.cli", "draw", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_draw_command_prints_the_seed_and_remembers_the_history(tmp_path):
    res = cli("--names", ",".join(NAMES), "--seed", "7", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert f"drawn: {random.Random(7).choice(sorted(NAMES))}" in res.stdout and "seed: 7" in res.stdout
    (tmp_path / "groups.txt").write_text(CANDIDATES, encoding="utf-8")
    seen, lines = [], []
    for _ in range(3):
        res = cli("--from", "groups.txt", "--groups", "--history", "draws.json", cwd=tmp_path)
        assert res.returncode == 0, res.stderr
        lines.append(res.stdout.splitlines()[0])
        seen.append(lines[-1].split()[1])
        assert "seed: " in res.stdout
    assert sorted(seen) == ["Han", "team-a", "team-b"]  # three draws, three different groups
    assert "drawn: team-a (Kim, Lee, Park)" in lines and "drawn: team-b (Choi, Jung)" in lines
    assert "nobody: the next draw starts a new cycle" in res.stdout
    history = json.loads((tmp_path / "draws.json").read_text())
    assert history["kind"] == "groups" and [h["name"] for h in history["draws"]] == seen
    res = cli("--from", "groups.txt", "--history", "draws.json", cwd=tmp_path)  # people, with a groups history
    assert res.returncode == 2 and "not of people" in res.stderr
    res = cli("--from", "missing.txt", cwd=tmp_path)
    assert res.returncode == 2 and "missing.txt" in res.stderr
