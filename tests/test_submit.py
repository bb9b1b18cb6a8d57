"""Submission bundles: what goes in, the manifest, and every refusal (a missing or failed run, bad names, pickles)."""

import hashlib
import json
import os
import pickle
import stat
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save as save_safetensors

from esc_course import __version__
from esc_course.course.submit import SubmitError, build_bundle, find_run, manifest_problems
from esc_course.course.verify import verify_bundle
from esc_course.files import file_mode

ROOT = Path(__file__).resolve().parents[1]
PNG = b"\x89PNG\r\n\x1a\n" + bytes(64)


def make_run(folder: Path, lab: str = "xor", accuracy=1.0, weights: bool = True) -> Path:
    """A run folder shaped like what `esc-course lab run` writes (results.json, PNGs, model.safetensors)."""
    folder.mkdir(parents=True, exist_ok=True)
    results = {"lab": lab, "config": {"seed": 7, "quick": True, "hidden": 8, "activation": "tanh"},
               "env": {"git_commit": "0123abc", "torch": "2.x", "seed": 7},
               "metrics": {"mlp_accuracy": accuracy, "perceptron_accuracy": 0.75, "value_mlp_final_loss": None},
               "history": {}, "tables": {}, "seconds": 2.0, "figures": ["boundary.png", "loss.png"]}
    (folder / "results.json").write_text(json.dumps(results))
    for fig in results["figures"]:
        (folder / fig).write_bytes(PNG + fig.encode())
    if weights:
        (folder / "model.safetensors").write_bytes(save_safetensors({"w": np.ones((2, 2), np.float32)}))
    return folder


@pytest.fixture
def run(tmp_path) -> Path:
    return make_run(tmp_path / "run")


@pytest.fixture
def notebook(tmp_path) -> Path:
    path = tmp_path / "week01_xor.ipynb"
    path.write_text(json.dumps({"cells": [{"cell_type": "markdown", "source": "# XOR"}], "nbformat": 4,
                                "nbformat_minor": 5, "metadata": {}}))
    return path


def test_bundle_holds_the_run_the_notebook_and_the_weights_with_a_hash_each(run, notebook, tmp_path):
    out = build_bundle(group="team-a", members="Kim, Lee ,Park", lab="xor", run_dir=run, notebook=notebook,
                       out_dir=tmp_path / "subs", created="2026-03-02T10:00:00+09:00")
    assert out == tmp_path / "subs" / "week01_xor-team-a.zip"
    with zipfile.ZipFile(out) as zf:
        names = zf.namelist()
        manifest = json.loads(zf.read("manifest.json"))
        contents = {n: zf.read(n) for n in names}
    assert sorted(names) == ["figures/boundary.png", "figures/loss.png", "manifest.json",
                             "notebook/week01_xor.ipynb", "results.json", "weights/model.safetensors"]
    sources = {"results.json": run / "results.json", "figures/boundary.png": run / "boundary.png",
               "figures/loss.png": run / "loss.png", "notebook/week01_xor.ipynb": notebook,
               "weights/model.safetensors": run / "model.safetensors"}
    assert set(manifest["files"]) == set(sources)
    for name, source in sources.items():
        assert contents[name] == source.read_bytes()
        assert manifest["files"][name]["sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()
        assert manifest["files"][name]["size"] == source.stat().st_size
    assert manifest["group"] == "team-a" and manifest["members"] == ["Kim", "Lee", "Park"]
    assert manifest["lab"] == "xor" and manifest["week"] == 1 and manifest["created"] == "2026-03-02T10:00:00+09:00"
    assert manifest["package_version"] == __version__ and manifest["git_commit"] == "0123abc"
    assert manifest["environment"]["torch"] == "2.x" and manifest["seed"] == 7 and manifest["quick"] is True
    assert manifest["metric"] == {"name": "mlp_accuracy", "mode": "max", "value": 1.0}
    assert manifest["metrics"]["perceptron_accuracy"] == 0.75
    assert manifest_problems(manifest) == []
    assert verify_bundle(out).ok
    assert [p.name for p in out.parent.iterdir()] == [out.name]  # no temporary file left behind
    assert stat.S_IMODE(out.stat().st_mode) == file_mode() != 0o600  # readable like every output (was mkstemp's)


def test_resubmitting_replaces_the_groups_bundle(run, tmp_path):
    first = build_bundle(group="g1", members="A", lab="xor", run_dir=run, out_dir=tmp_path)
    make_run(run, accuracy=0.75)
    second = build_bundle(group="g1", members="A", lab="xor", run_dir=run, out_dir=tmp_path)
    assert first == second and verify_bundle(second).manifest["metric"]["value"] == 0.75


def test_weights_can_be_given_and_must_be_safetensors(tmp_path):
    run = make_run(tmp_path / "run", weights=False)
    out = build_bundle(group="g", members="A", lab="xor", run_dir=run, out_dir=tmp_path / "a")
    assert "weights/model.safetensors" not in verify_bundle(out).manifest["files"]
    mine = tmp_path / "mine.safetensors"
    mine.write_bytes(save_safetensors({"layer.weight": np.zeros((3, 2), np.float32)}))
    out = build_bundle(group="g", members="A", lab="xor", run_dir=run, weights=mine, out_dir=tmp_path / "b")
    with zipfile.ZipFile(out) as zf:
        assert zf.read("weights/model.safetensors") == mine.read_bytes()


def _pickled(path: Path) -> Path:
    path.write_bytes(pickle.dumps({"weight": [1.0, 2.0]}, protocol=4))
    return path


@pytest.mark.parametrize("make,words", [
    (lambda d: _pickled(d / "model.pt"), ".pt files are pickles"),
    (lambda d: _pickled(d / "model.safetensors"), "pickle (protocol 4)"),  # a pickle renamed
    (lambda d: (d / "model.safetensors").write_bytes(b"PK\x03\x04" + bytes(60)) and d / "model.safetensors",
     "torch.save"),
    (lambda d: (d / "w.npz").write_bytes(b"x") and d / "w.npz", ".npz files"),
    (lambda d: (d / "w.h5").write_bytes(b"x") and d / "w.h5", "not a .safetensors file"),
    (lambda d: (d / "w.safetensors").write_bytes(bytes(20)) and d / "w.safetensors", "header length"),
    (lambda d: d / "missing.safetensors", "no such file"),
])
def test_weights_that_are_not_safetensors_are_refused(run, tmp_path, make, words):
    weights = make(tmp_path)
    with pytest.raises(SubmitError, match="--weights") as err:
        build_bundle(group="g", members="A", lab="xor", run_dir=run, weights=weights, out_dir=tmp_path / "out")
    assert words in str(err.value)
    assert "safetensors.torch.save_file" in str(err.value) or not weights.exists()  # says how to save them
    assert not (tmp_path / "out").exists()


def _failed_run(run: Path) -> None:
    (run / "error.txt").write_text("Traceback (most recent call last):\n  ...\nRuntimeError: loss is nan at epoch 3\n")


def _no_results(run: Path) -> None:
    (run / "results.json").unlink()


def _edit_results(**changes):
    def edit(run: Path) -> None:
        data = json.loads((run / "results.json").read_text())
        data.update(changes)
        (run / "results.json").write_text(json.dumps(data))
    return edit


@pytest.mark.parametrize("spoil,words", [
    (_failed_run, "the run failed (RuntimeError: loss is nan at epoch 3)"),
    (_no_results, "no results.json (the run did not finish)"),
    (lambda run: (run / "results.json").write_text("{"), "not valid JSON"),
    (_edit_results(lab="cnn"), "is a run of lab 'cnn', not of 'xor'"),
    (_edit_results(metrics={"mlp_accuracy": None}), "'mlp_accuracy' is None, not a finite number"),
    (_edit_results(metrics={"other": 1.0}), "'mlp_accuracy' is None"),
    (_edit_results(figures=["gone.png"]), "lists figure 'gone.png', which is missing"),
    (_edit_results(figures=["../../etc/passwd"]), "not a plain .png name"),
])
def test_a_missing_or_failed_run_is_refused_with_the_reason(run, tmp_path, spoil, words):
    spoil(run)
    with pytest.raises(SubmitError) as err:
        build_bundle(group="g", members="A", lab="xor", run_dir=run, out_dir=tmp_path / "out")
    assert words in str(err.value)
    assert not (tmp_path / "out").exists()  # nothing written


@pytest.mark.parametrize("kwargs,words", [
    (dict(run_dir="does/not/exist"), "no such folder"),
    (dict(group="../team"), "--group '../team'"),
    (dict(group=""), "--group ''"),
    (dict(members=" , "), "--members"),
    (dict(members="Kim,Kim"), "listed twice"),
    (dict(lab="no-such-lab"), "valid labs"),
])
def test_bad_arguments_name_the_argument_and_what_is_valid(run, tmp_path, kwargs, words):
    args = {**dict(group="g", members="A", lab="xor", run_dir=run, out_dir=tmp_path / "out"), **kwargs}
    with pytest.raises(ValueError) as err:
        build_bundle(**args)
    assert words in str(err.value)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("content,name,words", [
    ("{}", "nb.ipynb", "no 'cells'"),
    ("not json", "nb.ipynb", "no 'cells'"),
    ("{}", "nb.py", "expected an existing .ipynb"),
    ('{"cells": []}', "my notebook.ipynb", "rename it"),
])
def test_a_bad_notebook_is_refused(run, tmp_path, content, name, words):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(SubmitError, match="--notebook") as err:
        build_bundle(group="g", members="A", lab="xor", run_dir=run, notebook=path, out_dir=tmp_path / "out")
    assert words in str(err.value)


def test_find_run_takes_the_newest_run_of_the_lab(tmp_path):
    runs = tmp_path / "runs"
    old = make_run(runs / "20260101-000000" / "xor")
    other = make_run(runs / "mine", lab="cnn")
    new = make_run(runs / "my-xor")
    past = time.time() - 3600
    for p in [*old.iterdir()]:
        os.utime(p, (past, past))
    assert find_run("xor", runs) == new
    assert other != find_run("xor", runs)
    failed = runs / "20260301-000000" / "xor"
    failed.mkdir(parents=True)
    _failed_run(failed)  # the newest run failed: submitting it must say so, not pick an older one silently
    assert find_run("xor", runs) == failed
    with pytest.raises(SubmitError, match="no run of lab 'xor'"):
        find_run("xor", tmp_path / "empty")


def test_submit_command_writes_the_bundle_and_reports_refusals(run, tmp_path):
    base = [sys.executable, "-m", "esc_course.cli", "submit", "--lab", "xor", "--members", "Kim,Lee"]
    res = subprocess.run(base + ["--group", "team-a", "--run", str(run), "--out", str(tmp_path / "subs")],
                         capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "week01_xor-team-a.zip" in res.stdout and "mlp_accuracy = 1.0" in res.stdout
    assert verify_bundle(tmp_path / "subs" / "week01_xor-team-a.zip").ok
    _failed_run(run)
    res = subprocess.run(base + ["--group", "team-b", "--run", str(run), "--out", str(tmp_path / "subs")],
                         capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert res.returncode == 2 and "the run failed" in res.stderr
    assert not (tmp_path / "subs" / "week01_xor-team-b.zip").exists()
