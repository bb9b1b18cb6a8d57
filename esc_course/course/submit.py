"""A group's submission bundle: one zip per group and lab, with a manifest that pins every file by SHA-256.

    build_bundle(group="team-a", members=["Kim", "Lee"], lab="xor", run_dir="runs/my-xor",
                 notebook="notebooks/week01_xor.ipynb", out_dir="submissions")  # -> week01_xor-team-a.zip

Layout of a bundle (nothing else is allowed in one; ``esc_course.course.verify`` checks it):

    manifest.json               who, which lab, when, provenance, the claimed metrics, a SHA-256 per file
    results.json                the lab run's results.json, as the run wrote it
    figures/<name>.png          the run's figures
    notebook/<name>.ipynb       the group's notebook (optional)
    weights/model.safetensors   the headline model's weights (optional; safetensors only, never a pickle)
    exercises/exercises.py      the student's exercise code and exercises/results.json, its self-reported checks
                                (optional; esc_course.exercises.bundle)

A run that is missing or failed (``error.txt``, no results.json, no headline metric) is refused with the reason.
"""

from __future__ import annotations

import json
import tempfile
import zipfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from esc_course.course.bundle import (
    BUNDLE_FORMAT,
    FILE_NAME,
    FORMAT_VERSION,
    GROUP_PATTERN,
    MANIFEST,
    RESULTS,
    WEIGHTS,
    finite_number,
    kind_of,
    manifest_problems,
    sha256_file,
)
from esc_course.exercises import bundle as exercise_bundle


class SubmitError(ValueError):
    """A bundle cannot be built; the message says why and what to do."""


def find_run(lab: str, runs_root: Path | str = "runs") -> Path:
    """The newest run folder of ``lab`` under ``runs_root`` (what ``esc-course lab run`` writes by default)."""
    import esc_course.lab

    info = esc_course.lab.get_info(lab)
    root = Path(runs_root)
    # `lab run NAME --out runs/x` writes runs/x/, `lab run NAME` writes runs/<time>/NAME/; a failed run has error.txt
    found = [p.parent for pattern in ("*/results.json", "*/*/results.json") for p in root.glob(pattern)]
    found = [p for p in found if _lab_of(p) == info.name] + [p.parent for p in root.glob(f"*/{info.name}/error.txt")]
    if not found:
        raise SubmitError(f"no run of lab {info.name!r} found under {root}/; run `esc-course lab run {info.name} "
                          f"--out DIR` and pass --run DIR")
    return max(found, key=lambda p: max(f.stat().st_mtime for f in p.iterdir()))


def _lab_of(run_dir: Path) -> str | None:
    try:
        return json.loads((run_dir / RESULTS).read_text(encoding="utf-8")).get("lab")
    except (OSError, ValueError, AttributeError):
        return None


def check_run(run_dir: Path | str, lab: str) -> dict[str, Any]:
    """The run's results.json, after checking that the run exists, finished and is a run of ``lab``."""
    import esc_course.lab

    info = esc_course.lab.get_info(lab)
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise SubmitError(f"--run {run_dir}: no such folder; run `esc-course lab run {info.name} --out {run_dir}`")
    error = run_dir / "error.txt"
    if error.exists():
        last = (error.read_text(encoding="utf-8", errors="replace").strip().splitlines() or ["(empty)"])[-1]
        raise SubmitError(f"--run {run_dir}: the run failed ({last}); fix it and run the lab again "
                          f"(full traceback in {error})")
    path = run_dir / RESULTS
    if not path.is_file():
        raise SubmitError(f"--run {run_dir}: no {RESULTS} (the run did not finish); run the lab again")
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as err:
        raise SubmitError(f"{path}: not valid JSON ({err}); run the lab again") from None
    if not isinstance(results, dict) or not isinstance(results.get("metrics"), dict):
        raise SubmitError(f"{path}: has no 'metrics' (not a lab's results.json)")
    if results.get("lab") != info.name:
        raise SubmitError(f"--run {run_dir} is a run of lab {results.get('lab')!r}, not of {info.name!r}")
    metric, _ = esc_course.lab.headline(esc_course.lab.load(info.name))
    value = results["metrics"].get(metric)
    if not finite_number(value):
        raise SubmitError(f"{path}: the headline metric {metric!r} is {value!r}, not a finite number "
                          f"(the run diverged or is incomplete)")
    return results


def collect_files(run_dir: Path, results: dict, notebook: Path | str | None = None,
                  weights: Path | str | None = None) -> dict[str, Path]:
    """Bundle member name -> source file: results, the figures the run lists, the notebook, the weights."""
    files = {RESULTS: run_dir / RESULTS}
    for fig in results.get("figures", []):
        source = run_dir / str(fig)
        if not FILE_NAME.match(source.name) or source.suffix != ".png" or not source.is_file():
            raise SubmitError(f"{run_dir / RESULTS} lists figure {fig!r}, which is missing or not a plain .png name")
        files[f"figures/{source.name}"] = source
    if notebook is not None:
        files[f"notebook/{_checked_notebook(Path(notebook))}"] = Path(notebook)
    if weights is None and (run_dir / "model.safetensors").is_file():
        weights = run_dir / "model.safetensors"  # the lab saved its headline model's weights
    if weights is not None:
        _check_weights(Path(weights))
        files[WEIGHTS] = Path(weights)
    return files


def _checked_notebook(path: Path) -> str:
    if path.suffix != ".ipynb" or not path.is_file():
        raise SubmitError(f"--notebook {path}: expected an existing .ipynb file")
    if not FILE_NAME.match(path.name):
        raise SubmitError(f"--notebook {path}: rename it to letters, digits, '.', '_' and '-' only "
                          f"(e.g. week01_xor.ipynb)")
    try:
        cells = json.loads(path.read_text(encoding="utf-8")).get("cells")
    except (ValueError, AttributeError):
        cells = None
    if not isinstance(cells, list):
        raise SubmitError(f"--notebook {path}: not a Jupyter notebook (no 'cells' list in its JSON)")
    return path.name


def _check_weights(path: Path) -> None:
    from esc_course.course.verify import pickle_reason, safetensors_problem

    if not path.is_file():
        raise SubmitError(f"--weights {path}: no such file")
    with open(path, "rb") as f:
        head = f.read(8 + (16 << 20))
    reason = pickle_reason(path.name, head)
    problem = reason or (None if path.suffix == ".safetensors" else "not a .safetensors file")
    problem = problem or safetensors_problem(head, path.stat().st_size)
    if problem:
        raise SubmitError(f"--weights {path}: {problem}; weights are accepted only as safetensors (pickled files "
                          f"can run code when loaded): safetensors.torch.save_file(model.state_dict(), "
                          f"'model.safetensors')")


def make_manifest(*, group: str, members: list[str], lab: str, results: dict, files: dict[str, Path],
                  created: str | None = None, exercises: dict | None = None) -> dict[str, Any]:
    """The manifest for ``files``; ``created`` is an ISO-8601 time with zone (default: now, UTC)."""
    import esc_course.lab
    from esc_course import __version__

    info = esc_course.lab.get_info(lab)
    metric, mode = esc_course.lab.headline(esc_course.lab.load(info.name))
    env = results.get("env") if isinstance(results.get("env"), dict) else {}
    config = results.get("config") if isinstance(results.get("config"), dict) else {}
    seed = config.get("seed", env.get("seed"))
    manifest = {
        "format": BUNDLE_FORMAT,
        "format_version": FORMAT_VERSION,
        "group": group,
        "members": members,
        "lab": info.name,
        "week": info.week,
        "created": created or datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "package_version": __version__,
        "git_commit": env.get("git_commit"),
        "environment": env,
        "seed": seed if isinstance(seed, int) and not isinstance(seed, bool) else None,
        "quick": bool(config.get("quick", False)),
        "metric": {"name": metric, "mode": mode, "value": results["metrics"][metric]},
        "metrics": {k: v for k, v in results["metrics"].items() if v is None or finite_number(v)},
        "files": {name: {"kind": kind_of(name), "size": path.stat().st_size, "sha256": sha256_file(path)}
                  for name, path in sorted(files.items())},
    }
    if exercises is not None:
        manifest["exercises"] = exercises
    problems = manifest_problems(manifest)
    if problems:
        raise SubmitError("cannot build a valid manifest: " + "; ".join(problems))
    return manifest


def parse_members(text: str) -> list[str]:
    members = [m.strip() for m in text.split(",") if m.strip()]
    if not members:
        raise SubmitError(f"--members {text!r}: give the group's members separated by commas, e.g. 'Kim,Lee,Park'")
    if len(set(members)) != len(members):
        raise SubmitError(f"--members {text!r}: a member is listed twice")
    return members


def bundle_name(lab: str, group: str) -> str:
    """``week01_xor-team-a.zip``: one bundle per group and week."""
    import esc_course.lab

    return f"{esc_course.lab.get_info(lab).module.rsplit('.', 1)[-1]}-{group}.zip"


def build_bundle(*, group: str, members: list[str] | str, lab: str, run_dir: Path | str | None = None,
                 notebook: Path | str | None = None, weights: Path | str | None = None,
                 out_dir: Path | str = ".", created: str | None = None,
                 exercises: Path | str | None = None) -> Path:
    """Check the run, write ``out_dir/<weekNN_lab>-<group>.zip`` atomically and return its path.

    Raises SubmitError (naming the argument and what is valid) when the group name, the members, the run, the
    notebook or the weights are not acceptable. A bundle of the same group and week is replaced. ``exercises``
    (a .py file or notebook) adds the student's exercise code and its check results (this runs that code).
    """
    if not isinstance(group, str) or not GROUP_PATTERN.match(group):
        raise SubmitError(f"--group {group!r}: use 1-64 letters, digits, '_' or '-', starting with a letter or "
                          f"digit (it becomes part of the file name)")
    members = parse_members(members) if isinstance(members, str) else list(members)
    run_dir = Path(run_dir) if run_dir is not None else find_run(lab)
    results = check_run(run_dir, lab)
    files = collect_files(run_dir, results, notebook, weights)
    with tempfile.TemporaryDirectory() as tmp:
        entry = None
        if exercises is not None:
            try:
                extra, entry = exercise_bundle.prepare(exercises, tmp)
            except (FileNotFoundError, ValueError) as err:
                raise SubmitError(f"--exercises {exercises}: {err}") from None
            files.update(extra)
        manifest = make_manifest(group=group, members=members, lab=lab, results=results, files=files,
                                 created=created, exercises=entry)
        out = Path(out_dir) / bundle_name(lab, group)
        _write_zip(out, manifest, files)
    return out


def _write_zip(out: Path, manifest: dict, files: dict[str, Path]) -> None:
    """Write the zip through esc_course.files.atomic_write: never a half-written bundle, the usual file mode."""
    from esc_course.files import atomic_write

    stamp = datetime.fromisoformat(manifest["created"]).astimezone(timezone.utc).timetuple()[:6]
    with atomic_write(out) as tmp, zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        entries = [(MANIFEST, json.dumps(manifest, indent=2, ensure_ascii=False).encode("utf-8"))]
        entries += [(name, path.read_bytes()) for name, path in sorted(files.items())]
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # unix: the mode below is a plain file's
            info.external_attr = 0o100644 << 16
            zf.writestr(info, data)
