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

import hashlib
import json
import math
import os
import re
import tempfile
import zipfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from esc_course.exercises import bundle as exercise_bundle

BUNDLE_FORMAT = "esc-course-bundle"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
RESULTS = "results.json"
WEIGHTS = "weights/model.safetensors"
# A group name ends up in a file name, so it is a plain slug.
GROUP_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
# Where each kind of file lives in a bundle: folder, suffix. A file name is a slug too.
FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
KINDS = {"results": ("", ".json"), "figure": ("figures/", ".png"), "notebook": ("notebook/", ".ipynb"),
         "weights": ("weights/", ".safetensors"), **exercise_bundle.KINDS}
MAX_MEMBER_NAME = 100  # characters in one member's name


class SubmitError(ValueError):
    """A bundle cannot be built; the message says why and what to do."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def kind_of(name: str) -> str | None:
    """The kind of a bundle member from its name (``figures/a.png`` -> "figure"), or None if none fits."""
    if name == RESULTS:
        return "results"
    folder, _, base = name.rpartition("/")
    for kind, (prefix, suffix) in KINDS.items():
        if kind != "results" and folder + "/" == prefix and base.endswith(suffix) and FILE_NAME.match(base):
            return kind
    return None


def find_run(lab: str, runs_root: Path | str = "runs") -> Path:
    """The newest run folder of ``lab`` under ``runs_root`` (what ``esc-course lab run`` writes by default)."""
    import labs

    info = labs.get_info(lab)
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
    import labs

    info = labs.get_info(lab)
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
    metric, _ = labs.headline(labs.load(info.name))
    value = results["metrics"].get(metric)
    if not _finite_number(value):
        raise SubmitError(f"{path}: the headline metric {metric!r} is {value!r}, not a finite number "
                          f"(the run diverged or is incomplete)")
    return results


def _finite_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


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
    import labs
    from esc_course import __version__

    info = labs.get_info(lab)
    metric, mode = labs.headline(labs.load(info.name))
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
        "metrics": {k: v for k, v in results["metrics"].items() if v is None or _finite_number(v)},
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
    import labs

    return f"{labs.get_info(lab).module.rsplit('.', 1)[-1]}-{group}.zip"


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
    """Write the zip to a temporary file beside ``out`` and rename it: never a half-written bundle."""
    out.parent.mkdir(parents=True, exist_ok=True)
    stamp = datetime.fromisoformat(manifest["created"]).astimezone(timezone.utc).timetuple()[:6]
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            entries = [(MANIFEST, json.dumps(manifest, indent=2, ensure_ascii=False).encode("utf-8"))]
            entries += [(name, path.read_bytes()) for name, path in sorted(files.items())]
            for name, data in entries:
                info = zipfile.ZipInfo(name, date_time=stamp)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.create_system = 3  # unix: the mode below is a plain file's
                info.external_attr = 0o100644 << 16
                zf.writestr(info, data)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# ---- the manifest's schema (checked by verify before a bundle is trusted, and here before one is written)

_TOP = {"format": str, "format_version": int, "group": str, "members": list, "lab": str, "week": int,
        "created": str, "package_version": str, "git_commit": (str, type(None)), "environment": dict,
        "seed": (int, type(None)), "quick": bool, "metric": dict, "metrics": dict, "files": dict}
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def manifest_problems(manifest: Any) -> list[str]:
    """What is wrong with a manifest (an empty list when it is valid): keys, types and values."""
    if not isinstance(manifest, dict):
        return [f"the manifest is a JSON {type(manifest).__name__}, not an object"]
    problems = [f"missing key {k!r}" for k in _TOP if k not in manifest]
    problems += [f"unknown key {k!r}" for k in manifest if k not in _TOP and k != "exercises"]  # exercises: optional
    for key, tp in _TOP.items():
        if key in manifest and (not isinstance(manifest[key], tp) or isinstance(manifest[key], bool) and tp is int):
            problems.append(f"{key!r} is {type(manifest[key]).__name__}, expected {_type_names(tp)}")
    if problems:
        return problems
    if manifest["format"] != BUNDLE_FORMAT or manifest["format_version"] != FORMAT_VERSION:
        problems.append(f"format {manifest['format']!r} version {manifest['format_version']!r}, expected "
                        f"{BUNDLE_FORMAT!r} version {FORMAT_VERSION}")
    if not GROUP_PATTERN.match(manifest["group"]):
        problems.append(f"group {manifest['group']!r} is not a plain name (letters, digits, '_', '-')")
    members = manifest["members"]
    if not members or not all(isinstance(m, str) and 0 < len(m) <= MAX_MEMBER_NAME for m in members):
        problems.append(f"members must be a non-empty list of names (1-{MAX_MEMBER_NAME} characters each)")
    elif len(set(members)) != len(members):
        problems.append("a member is listed twice")
    problems += _lab_problems(manifest["lab"])
    problems += _created_problems(manifest["created"])
    problems += _metric_problems(manifest["metric"], manifest["metrics"])
    problems += _files_problems(manifest["files"])
    if "exercises" in manifest:
        problems += exercise_bundle.entry_problems(manifest["exercises"])
    return problems


def _type_names(tp) -> str:
    return " or ".join(t.__name__.replace("NoneType", "null") for t in (tp if isinstance(tp, tuple) else (tp,)))


def _lab_problems(lab: str) -> list[str]:
    import labs

    known = labs.registry()  # reads file names only: no lab is imported
    return [] if lab in known else [f"lab {lab!r} is not one of {', '.join(known)}"]


def _created_problems(created: str) -> list[str]:
    try:
        when = datetime.fromisoformat(created)
    except ValueError:
        return [f"created {created!r} is not an ISO-8601 time"]
    return [] if when.tzinfo is not None else [f"created {created!r} has no time zone"]


def _metric_problems(metric: dict, metrics: dict) -> list[str]:
    problems = []
    if set(metric) != {"name", "mode", "value"}:
        problems.append(f"metric must have exactly name, mode and value, has {sorted(metric)}")
    elif not isinstance(metric["name"], str) or metric["mode"] not in ("max", "min"):
        problems.append("metric name must be a string and mode 'max' or 'min'")
    elif not _finite_number(metric["value"]):
        problems.append(f"metric value {metric['value']!r} is not a finite number")
    elif metrics.get(metric["name"]) != metric["value"]:
        problems.append(f"metric {metric['name']!r} = {metric['value']!r} differs from metrics "
                        f"({metrics.get(metric['name'])!r})")
    bad = [k for k, v in metrics.items() if v is not None and not _finite_number(v)]
    if bad:
        problems.append(f"metrics {bad} are not numbers")
    return problems


def _files_problems(files: dict) -> list[str]:
    problems = []
    if RESULTS not in files:
        problems.append(f"files does not list {RESULTS}")
    for name, entry in files.items():
        if not isinstance(entry, dict) or set(entry) != {"kind", "size", "sha256"}:
            problems.append(f"files[{name!r}] must have exactly kind, size and sha256")
            continue
        if kind_of(name) is None or entry["kind"] != kind_of(name):
            problems.append(f"files[{name!r}]: not an allowed name, or kind {entry['kind']!r} does not fit it")
        if not isinstance(entry["size"], int) or isinstance(entry["size"], bool) or entry["size"] < 0:
            problems.append(f"files[{name!r}]: size {entry['size']!r} is not a byte count")
        if not isinstance(entry["sha256"], str) or not _SHA256.match(entry["sha256"]):
            problems.append(f"files[{name!r}]: sha256 {entry['sha256']!r} is not 64 lowercase hex digits")
    return problems
