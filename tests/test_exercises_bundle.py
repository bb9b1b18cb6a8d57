"""Exercises in a group bundle: submit records the student's code and self-reported results, verify and the
leaderboard show "exercises passed: n/m" without executing anything, and a forged entry is refused."""

import json
import zipfile

import pytest
from test_submit import make_run

from esc_course.course import leaderboard
from esc_course.course.submit import SubmitError, build_bundle, manifest_problems
from esc_course.course.verify import verify_bundle
from esc_course.exercises import get
from esc_course.exercises.bundle import CODE, RESULTS, entry_problems
from esc_course.exercises.cells import solution_source


@pytest.fixture
def student(tmp_path):
    ex = get("week01.relu_backward")
    path = tmp_path / "mine.py"
    path.write_text(f"{ex.imports}\n\n{solution_source(ex)}\n\n"
                    "def linear_backward(x, w, b, grad_out):\n    return grad_out @ w, grad_out.T @ x, "
                    "grad_out.mean(0)\n", encoding="utf-8")
    return path


def test_submit_verify_and_leaderboard_show_exercises(tmp_path, student):
    run = make_run(tmp_path / "run")
    subs = tmp_path / "subs"
    path = build_bundle(group="team-a", members="Kim", lab="xor", run_dir=run, out_dir=subs, exercises=student)
    build_bundle(group="team-b", members="Lee", lab="xor", run_dir=run, out_dir=subs)  # no exercises: still valid
    report = verify_bundle(path)
    assert report.ok, report.text()
    assert report.manifest["exercises"]["passed"] == 1 and report.manifest["exercises"]["passed_ids"] == [
        "week01.relu_backward"]
    total = report.manifest["exercises"]["total"]
    assert total >= 27 and f"exercises passed: 1/{total} (self-reported)" in report.text()
    with zipfile.ZipFile(path) as zf:
        assert zf.read(CODE).decode() == student.read_text()
        rows = {r["id"]: r["status"] for r in json.loads(zf.read(RESULTS))["rows"]}
    assert rows["week01.relu_backward"] == "passed" and rows["week01.linear_backward"] == "failed"
    text = leaderboard.text(leaderboard.collect(subs))
    assert f"1/{total}" in text and "exercises" in text


def test_verify_never_runs_the_code_and_refuses_a_forged_entry(tmp_path, student):
    run = make_run(tmp_path / "run")
    bomb = tmp_path / "bomb.py"
    bomb.write_text("def relu_backward(x, g):\n    return g\n", encoding="utf-8")
    path = build_bundle(group="team-a", members="Kim", lab="xor", run_dir=run, out_dir=tmp_path, exercises=bomb)
    with zipfile.ZipFile(path) as zf:
        files = {n: zf.read(n) for n in zf.namelist()}
    files[CODE] = b"raise SystemExit('verify executed me')\n"  # checksum no longer matches; nothing is run
    manifest = json.loads(files["manifest.json"])
    manifest["exercises"]["passed"] = 99
    files["manifest.json"] = json.dumps(manifest).encode()
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    report = verify_bundle(path)
    assert not report.ok and "exercises passed" in report.check("manifest").detail
    assert entry_problems({"passed": 2, "total": 1, "passed_ids": []})
    assert entry_problems({"passed": 1, "total": 3, "passed_ids": ["../x"]})
    assert not entry_problems({"passed": 1, "total": 3, "passed_ids": ["week06.adam_step"]})
    assert any("unknown key" in p for p in manifest_problems({**manifest, "exercise": 1}))
    with pytest.raises(SubmitError, match="--exercises"):
        build_bundle(group="team-a", members="Kim", lab="xor", run_dir=run, out_dir=tmp_path,
                     exercises=tmp_path / "missing.py")
