"""Leaderboard and re-evaluation: a real week 1 run, submitted, verified, ranked and measured from its weights."""

import csv
import io
import json
import shutil
import subprocess
import sys
import types
import zipfile
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from esc_course.course import leaderboard as lb
from esc_course.course.reevaluate import reevaluate, supports
from esc_course.course.submit import build_bundle
from esc_course.data.heldout import save_heldout
from esc_course.data.toy import xor
from labs import week01_xor

ROOT = Path(__file__).resolve().parents[1]
QUICK = dict(quick=True, restarts=0, value_steps=10)  # the lab's quick mode, without the parts ranking ignores
T0, T1, T2 = "2026-03-02T09:00:00+09:00", "2026-03-02T10:00:00+09:00", "2026-03-02T11:00:00+09:00"


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("xor")
    result = week01_xor.run(week01_xor.Config(**QUICK), out=out)
    assert result.metrics["mlp_accuracy"] == 1.0 and (out / "model.safetensors").is_file()
    return out


@pytest.fixture(scope="module")
def cheat_run(run, tmp_path_factory) -> Path:
    """The same results.json (claiming 100 %), with the weights of a model that was never trained: all zeros,
    so every logit is 0 and the model predicts one class, right on 2 of XOR's 4 points."""
    out = tmp_path_factory.mktemp("cheat")
    shutil.copytree(run, out, dirs_exist_ok=True)
    state = load_file(run / "model.safetensors")
    save_file({k: torch.zeros_like(v) for k, v in state.items()}, out / "model.safetensors")
    return out


@pytest.fixture(scope="module")
def folder(run, cheat_run, tmp_path_factory) -> Path:
    subs = tmp_path_factory.mktemp("submissions")
    old = build_bundle(group="team-a", members="Kim,Lee", lab="xor", run_dir=run, out_dir=subs, created=T0)
    old.rename(subs / "early-week01_xor-team-a.zip")  # the group's first try, superseded by its later one
    build_bundle(group="team-a", members="Kim,Lee", lab="xor", run_dir=run, out_dir=subs, created=T2)
    build_bundle(group="team-b", members="Park", lab="xor", run_dir=run, out_dir=subs, created=T1)
    build_bundle(group="team-c", members="Choi", lab="xor", run_dir=cheat_run, out_dir=subs, created=T0)
    tampered = build_bundle(group="team-d", members="Jung", lab="xor", run_dir=run, out_dir=subs, created=T0)
    with zipfile.ZipFile(tampered) as zf:
        files = {n: zf.read(n) for n in zf.namelist()}
    files["figures/loss_curves.png"] += b"edited"
    with zipfile.ZipFile(tampered, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return subs


def ranked(board) -> list[str]:
    return [e.group for e in board.boards["xor"].ranked]


def rejected(board) -> dict[str, str]:
    return {e.bundle.name: e.reason for e in board.rejected}


def test_claimed_metrics_rank_with_ties_broken_by_submission_time(folder):
    board = lb.collect(folder)
    assert ranked(board) == ["team-c", "team-b", "team-a"]  # all claim 1.0: the earliest first
    assert [e.rank for e in board.boards["xor"].ranked] == [1, 2, 3]
    assert board.boards["xor"].metric == "mlp_accuracy" and board.boards["xor"].mode == "max"
    reasons = rejected(board)
    assert set(reasons) == {"early-week01_xor-team-a.zip", "week01_xor-team-d.zip"}
    assert "superseded by week01_xor-team-a.zip" in reasons["early-week01_xor-team-a.zip"]
    assert "checksums" in reasons["week01_xor-team-d.zip"] and "figures/loss_curves.png" in reasons[
        "week01_xor-team-d.zip"]


def test_reevaluation_measures_the_weights_and_exposes_a_false_claim(folder):
    board = lb.collect(folder, reevaluate=True)
    entries = {e.group: e for e in board.boards["xor"].ranked}
    assert ranked(board) == ["team-b", "team-a", "team-c"]  # ranked by what was measured
    assert entries["team-a"].measured == 1.0 and lb.check_of(entries["team-a"], board) == "ok"
    assert entries["team-c"].claimed == 1.0 and entries["team-c"].measured == 0.5
    assert lb.check_of(entries["team-c"], board) == "MISMATCH"
    table = lb.text(board)
    assert "re-measured from the weights" in table and "MISMATCH" in table
    board = lb.collect(folder, reevaluate=True, metric="mlp_loss", mode="min")  # measured, not in results.json
    assert ranked(board) == ["team-b", "team-a", "team-c"]  # lowest loss first; the all-zero weights last
    assert all(e.claimed is None and lb.check_of(e, board) == "not claimed" for e in board.boards["xor"].ranked)
    assert "not claimed" in lb.text(board) and "not claimed" in lb.csv_text(board)


def test_reevaluation_on_the_organisers_held_out_data(folder, run, tmp_path):
    x, y = xor(samples_per_corner=25, noise=0.25, seed=1)
    save_heldout(tmp_path, "xor", x, y)
    model = week01_xor.build_model({"hidden": 8, "activation": "tanh"})
    model.load_state_dict(load_file(run / "model.safetensors"))
    with torch.no_grad():
        expected = ((model(x).squeeze(-1) > 0).long() == y).float().mean().item()  # computed here, by hand
    assert 0.5 < expected < 1.0  # the noisy clouds are harder than the four corners
    board = lb.collect(folder, reevaluate=True, data_dir=tmp_path)
    entries = {e.group: e for e in board.boards["xor"].ranked}
    assert entries["team-a"].measured == pytest.approx(expected)
    assert lb.check_of(entries["team-a"], board) == "held-out" and "held-out data" in lb.text(board)
    with pytest.raises(FileNotFoundError, match="missing/xor.safetensors"):
        lb.collect(folder, reevaluate=True, data_dir=tmp_path / "missing")


def test_a_bundle_without_weights_cannot_be_reevaluated(run, tmp_path):
    no_weights = tmp_path / "run"
    shutil.copytree(run, no_weights)
    (no_weights / "model.safetensors").unlink()
    build_bundle(group="team-e", members="Han", lab="xor", run_dir=no_weights, out_dir=tmp_path / "subs")
    assert ranked(lb.collect(tmp_path / "subs")) == ["team-e"]
    board = lb.collect(tmp_path / "subs", reevaluate=True)
    assert board.boards["xor"].ranked == []
    assert "no weights/model.safetensors to re-evaluate" in rejected(board)["week01_xor-team-e.zip"]


def test_a_lab_without_the_protocol_is_reported_per_bundle(folder, monkeypatch):
    monkeypatch.delattr(week01_xor, "evaluate_weights")
    board = lb.collect(folder, reevaluate=True)
    assert ranked(board) == []
    assert "lab 'xor' cannot re-evaluate weights yet" in rejected(board)["week01_xor-team-b.zip"]


def fake_run(folder: Path, accuracy: float, loss: float) -> Path:
    folder.mkdir(parents=True)
    (folder / "results.json").write_text(json.dumps({
        "lab": "xor", "config": {"seed": 0}, "env": {}, "figures": [],
        "metrics": {"mlp_accuracy": accuracy, "value_mlp_final_loss": loss}}))
    return folder


def test_another_metric_and_direction_can_be_ranked(tmp_path):
    subs = tmp_path / "subs"
    for group, acc, loss, when in [("g1", 0.75, 0.30, T2), ("g2", 1.0, 0.10, T1), ("g3", 1.0, 0.20, T0)]:
        build_bundle(group=group, members="A", lab="xor", run_dir=fake_run(tmp_path / group, acc, loss),
                     out_dir=subs, created=when)
    assert ranked(lb.collect(subs)) == ["g3", "g2", "g1"]  # 1.0 (earlier), 1.0, 0.75
    board = lb.collect(subs, metric="value_mlp_final_loss", mode="min")
    assert ranked(board) == ["g2", "g3", "g1"]
    assert "value_mlp_final_loss (lower is better)" in lb.text(board)
    assert ranked(lb.collect(subs, lab="xor", metric="value_mlp_final_loss")) == ["g1", "g3", "g2"]  # max
    board = lb.collect(subs, metric="no_such_metric")
    assert ranked(board) == [] and all("no finite value of 'no_such_metric'" in r for r in rejected(board).values())
    with pytest.raises(ValueError, match="mode 'best'"):
        lb.collect(subs, mode="best")
    with pytest.raises(ValueError, match="valid labs"):
        lb.collect(subs, lab="no-such-lab")


def test_markdown_and_csv_are_written_and_safe_for_spreadsheets(tmp_path):
    subs = tmp_path / "subs"
    build_bundle(group="g1", members="=HYPERLINK(\"http://x\"),a|b", lab="xor",
                 run_dir=fake_run(tmp_path / "r1", 1.0, 0.1), out_dir=subs, created=T0)
    (subs / "broken.zip").write_bytes(b"not a zip")
    md, table = lb.write(lb.collect(subs), tmp_path / "out")
    text = md.read_text()
    assert "## xor: mlp_accuracy (higher is better)" in text and "| 1 | g1 |" in text
    assert "a\\|b" in text and "| broken.zip |" in text
    rows = list(csv.DictReader(io.StringIO(table.read_text())))
    assert [(r["rank"], r["group"], r["status"]) for r in rows] == [("1", "g1", "ranked"), ("", "", "rejected")]
    assert rows[0]["members"].startswith("'=HYPERLINK")  # not a formula when opened in a spreadsheet
    assert "not a zip archive" in rows[1]["reason"]


def test_the_protocol_refuses_what_does_not_fit(run):
    weights = (run / "model.safetensors").read_bytes()
    assert supports(week01_xor) and not supports(types.ModuleType("labs.other"))
    with pytest.raises(ValueError, match="defines no build_model and evaluate_weights"):
        reevaluate(types.ModuleType("labs.other"), {}, weights)
    with pytest.raises(ValueError, match="do not fit .*shape mismatch"):
        reevaluate(week01_xor, {"hidden": 4}, weights)  # trained with hidden=8
    with pytest.raises(ValueError, match="hidden=1000000000"):
        reevaluate(week01_xor, {"hidden": 10**9}, weights)  # a bundle's config must not exhaust memory
    with pytest.raises(ValueError, match="valid"):
        reevaluate(week01_xor, {"activation": "os.system"}, weights)
    assert reevaluate(week01_xor, {"hidden": 8, "activation": "tanh"}, weights)["mlp_accuracy"] == 1.0


def test_round_trip_through_the_command_line(run, tmp_path):
    """The lab's quick run (the ``run`` fixture, as `esc-course lab run xor --quick --out DIR` writes it), then
    submit, verify, leaderboard --reevaluate: what a group and the organisers type."""
    def cli(*args):
        res = subprocess.run([sys.executable, "-m", "esc_course.cli", *args], capture_output=True, text=True,
                             cwd=ROOT, timeout=300)
        assert res.returncode == 0, res.stdout + res.stderr
        return res.stdout

    subs = tmp_path / "subs"
    out = cli("submit", "--group", "team-a", "--members", "Kim,Lee", "--lab", "xor", "--run", str(run),
              "--notebook", str(ROOT / "notebooks" / "week01_xor.ipynb"), "--out", str(subs))
    bundle = subs / "week01_xor-team-a.zip"
    assert str(bundle) in out and "weights/model.safetensors" in out and "notebook/week01_xor.ipynb" in out
    assert "verdict: VALID" in cli("verify", str(bundle))
    out = cli("leaderboard", str(subs), "--reevaluate")
    row = next(line for line in out.splitlines() if line.startswith("1 "))
    assert row.split()[:6] == ["1", "team-a", "Kim,", "Lee", "1", "1"] and " ok " in row
    assert (subs / "leaderboard.md").is_file() and (subs / "leaderboard.csv").is_file()
