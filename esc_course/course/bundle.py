"""The submission bundle's format: its members, the manifest's schema and the checks of both; and ``LabSpec``,
what the course tools need of a lab.

Shared by ``submit`` (which writes bundles) and ``verify`` (which checks them before anything is trusted), so
neither imports the other's internals. Layout of a bundle (nothing else is allowed in one):

    manifest.json               who, which lab, when, provenance, the claimed metrics, a SHA-256 per file
    results.json                the lab run's results.json, as the run wrote it
    figures/<name>.png          the run's figures
    notebook/<name>.ipynb       the group's notebook (optional)
    weights/model.safetensors   the headline model's weights (optional; safetensors only, never a pickle)

The course tools never import a lab, not even through esc_course.lab: the caller (the CLI, with
``esc_course.lab.spec``) passes a ``LabSpec`` holding the headline metric, its mode and the re-evaluation functions.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime
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
LAB_NAME = re.compile(r"^[a-z0-9_]{1,64}$")


@dataclass(frozen=True)
class LabSpec:
    """What submitting, verifying and ranking need to know of a lab (``esc_course.lab.spec(name)`` builds it)."""

    name: str  # "xor"
    stem: str  # "week01_xor": the bundle's file name starts with it
    week: int
    metric: str  # the headline metric of results.json
    mode: str = "max"  # "max": higher is better, "min": lower is better
    build_model: Callable | None = None  # re-evaluation (esc_course.course.reevaluate): config -> fresh model
    evaluate_weights: Callable | None = None  # (model, config, data_dir) -> metrics

    def __post_init__(self):
        if self.mode not in ("max", "min"):
            raise ValueError(f"LabSpec mode {self.mode!r}: expected 'max' or 'min'")


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


def finite_number(value: Any) -> bool:
    """A real, finite int or float (not a bool, NaN or infinity): what a metric value must be."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


# ---- the manifest's schema (checked by verify before a bundle is trusted, and by submit before one is written)

_TOP = {"format": str, "format_version": int, "group": str, "members": list, "lab": str, "week": int,
        "created": str, "package_version": str, "git_commit": (str, type(None)), "environment": dict,
        "seed": (int, type(None)), "quick": bool, "metric": dict, "metrics": dict, "files": dict}
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def manifest_problems(manifest: Any, known_labs: Collection[str] | None = None) -> list[str]:
    """What is wrong with a manifest (an empty list when it is valid): keys, types and values. ``known_labs``
    (the lab names, e.g. ``esc_course.lab.registry()``) also checks the lab; without it, only that it is a name."""
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
    problems += _lab_problems(manifest["lab"], known_labs)
    problems += _created_problems(manifest["created"])
    problems += _metric_problems(manifest["metric"], manifest["metrics"])
    problems += _files_problems(manifest["files"])
    if "exercises" in manifest:
        problems += exercise_bundle.entry_problems(manifest["exercises"])
    return problems


def _type_names(tp) -> str:
    return " or ".join(t.__name__.replace("NoneType", "null") for t in (tp if isinstance(tp, tuple) else (tp,)))


def _lab_problems(lab: str, known_labs: Collection[str] | None) -> list[str]:
    if known_labs is None:
        return [] if LAB_NAME.match(lab) else [f"lab {lab!r} is not a lab name (lowercase letters, digits, '_')"]
    return [] if lab in known_labs else [f"lab {lab!r} is not one of {', '.join(known_labs)}"]


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
    elif not finite_number(metric["value"]):
        problems.append(f"metric value {metric['value']!r} is not a finite number")
    elif metrics.get(metric["name"]) != metric["value"]:
        problems.append(f"metric {metric['name']!r} = {metric['value']!r} differs from metrics "
                        f"({metrics.get(metric['name'])!r})")
    bad = [k for k, v in metrics.items() if v is not None and not finite_number(v)]
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
