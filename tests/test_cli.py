import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def cli(*args, cwd=None, env=None):
    return subprocess.run([sys.executable, "-m", "esc_course.cli", *args], capture_output=True, text=True,
                          cwd=cwd or ROOT, env={**os.environ, **(env or {})}, timeout=300)


def test_help_does_not_import_torch():
    code = "import sys; from esc_course.cli import build_parser; build_parser(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.stdout.strip() == "False"
    res = cli("--help")
    assert res.returncode == 0 and "doctor" in res.stdout and "lab" in res.stdout


def test_doctor():
    res = cli("doctor")
    assert res.returncode == 0
    assert "torch" in res.stdout and "CUDA available" in res.stdout


def test_doctor_reports_missing_cuda_instead_of_crashing():
    res = cli("doctor", "--device=cuda", env={"CUDA_VISIBLE_DEVICES": ""})
    assert res.returncode == 0 and "CUDA is not available" in res.stdout


def test_lab_list():
    res = cli("lab", "list")
    assert res.returncode == 0 and "xor" in res.stdout


def test_lab_run_xor_quick(tmp_path):
    res = cli("lab", "run", "xor", "--quick", "--out", str(tmp_path / "xor"), "--epochs=250")
    assert res.returncode == 0, res.stderr
    data = json.loads((tmp_path / "xor" / "results.json").read_text())
    assert data["metrics"]["mlp_accuracy"] == 1.0
    assert data["config"]["epochs"] == 250
    assert (tmp_path / "xor" / "decision_boundaries.png").exists()
    assert "mlp_accuracy" in res.stdout


def test_lab_run_all_writes_index_and_summary(tmp_path, monkeypatch, capsys):
    """`lab run all` over a registry cut down to two labs (every lab's quick run is tested in test_labs.py),
    one of which fails: the other still runs, the failure is recorded, and the exit code says so."""
    from esc_course import cli as cli_module
    from esc_course import lab

    real = lab.registry()
    broken = tmp_path / "broken"
    monkeypatch.setattr(lab, "registry", lambda: {"xor": real["xor"],
                                                  "broken": lab.LabInfo("broken", "labs.no_such_module", 99, "x")})
    code = cli_module.main(["lab", "run", "all", "--quick", "--out", str(tmp_path)])
    out = capsys.readouterr()
    assert code == 1
    index = (tmp_path / "index.html").read_text()
    assert "xor/decision_boundaries.png" in index and "FAILED" in index
    assert (tmp_path / "xor" / "results.json").exists() and (broken / "error.txt").exists()
    assert "headline" in out.out and "seconds" in out.out and "broken FAILED" in out.err


def test_bad_override_and_unknown_lab_are_clear_errors(tmp_path):
    res = cli("lab", "run", "xor", "--quick", "--epochz=3", "--out", str(tmp_path / "x"))
    assert res.returncode == 2 and "--epochz" in res.stderr and "--epochs=" in res.stderr
    assert not (tmp_path / "x").exists()
    res = cli("lab", "run", "nope", "--quick")
    assert res.returncode == 2 and "valid labs" in res.stderr


def test_python_dash_m_lab(tmp_path):
    res = subprocess.run([sys.executable, "-m", "labs.week01_xor", "--quick", f"--out={tmp_path}", "--restarts=1"],
                         capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert res.returncode == 0, res.stderr
    assert json.loads((tmp_path / "results.json").read_text())["config"]["restarts"] == 1
