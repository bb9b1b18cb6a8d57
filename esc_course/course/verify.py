"""Verify a submission bundle before anything in it is extracted, loaded or trusted.

    report = verify_bundle("submissions/week01_xor-team-a.zip")
    print(report.text())        # one verdict per check
    report.ok                   # False if any check failed

The checks read the zip's central directory and stream-decompress each member into memory, with a cap, to hash it;
nothing is written to disk and nothing from the bundle is executed, imported or unpickled:

    archive        a readable zip, not encrypted, the archive itself of bounded size
    members        a bounded number of members (counted from the end record before the directory is parsed)
    paths          no absolute paths, drive letters, backslashes, '..', empty or '.' parts, control characters
    links          no symlinks, hardlinks or other special files (the unix mode in the zip's external attributes)
    duplicates     no name twice, also not after case folding and Unicode normalisation (Windows and macOS)
    declared_size  per member and in total, compression ratio, only stored/deflate
    actual_size    streamed inflate with a cap (declared sizes are not trusted): the real size must equal the
                   declared one, the ratio stays bounded, the CRC matches, members do not overlap (a zip-bomb trick)
    pickle         no pickle files by name (.pt, .pth, .pkl, .ckpt, ...) or by content (pickle, torch.save, npy)
    file_types     only the bundle layout (results.json, figures/*.png, notebook/*.ipynb, weights/*.safetensors),
                   PNGs that are PNGs, safetensors whose header is valid
    manifest       manifest.json present, bounded, valid JSON, valid schema (esc_course.course.bundle)
    checksums      every member listed in the manifest with the right size and SHA-256, and nothing else
    results        results.json agrees with the manifest (lab, metrics, seed)
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import stat
import struct
import unicodedata
import zipfile
import zlib
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from esc_course.course.bundle import MANIFEST, RESULTS, kind_of, manifest_problems
from esc_course.exercises.bundle import summary_text as exercise_summary

CHECKS = ("archive", "members", "paths", "links", "duplicates", "declared_size", "actual_size", "pickle",
          "file_types", "manifest", "checksums", "results")
PICKLE_SUFFIXES = {".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".bin", ".joblib", ".dill", ".npy", ".npz", ".sav",
                   ".mar"}
_CHUNK = 1 << 16  # bytes per read and per inflate step: memory stays bounded whatever the member claims
_HEAD = 1 << 16  # bytes of each member kept for the content checks
_SAFETENSORS_HEAD = 8 + (16 << 20)  # a safetensors header (JSON) may be large for models with many tensors
_DTYPE_BYTES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
                "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8, "C64": 8}


class BundleError(ValueError):
    """A bundle failed verification; the message lists the failed checks."""


@dataclass(frozen=True)
class Limits:
    """Bounds a bundle must stay within. A club bundle (results, a few PNGs, a notebook, small weights) is far below."""

    max_archive_bytes: int = 512 << 20  # the .zip file itself
    max_members: int = 200
    max_member_bytes: int = 256 << 20  # uncompressed, one member
    max_total_bytes: int = 512 << 20  # uncompressed, all members
    max_ratio: float = 100.0  # uncompressed / compressed; deflate reaches ~1000 on zeros, real files stay below ~20
    ratio_min_bytes: int = 1 << 20  # a high ratio on a small member is harmless (a few KB of zeros)
    max_json_bytes: int = 32 << 20  # manifest.json and results.json are parsed in memory


@dataclass
class Check:
    name: str
    ok: bool | None  # None: not run, because an earlier check failed
    detail: str

    @property
    def verdict(self) -> str:
        return {True: "PASS", False: "FAIL", None: "SKIP"}[self.ok]


@dataclass
class Report:
    path: Path
    checks: list[Check]
    manifest: dict[str, Any] | None = None  # set only when the manifest check passed
    results: dict[str, Any] | None = None  # the bundle's results.json, when the results check passed

    def __post_init__(self):
        self.checks.sort(key=lambda c: CHECKS.index(c.name))  # always listed in the same order

    @property
    def ok(self) -> bool:
        return all(c.ok is True for c in self.checks)

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if c.ok is False]

    def check(self, name: str) -> Check:
        return next(c for c in self.checks if c.name == name)

    @property
    def reason(self) -> str:
        return "; ".join(f"{c.name}: {c.detail}" for c in self.failed)

    def text(self) -> str:
        width = max(len(c.name) for c in self.checks)
        lines = [f"{self.path}"] + [f"  {c.verdict}  {c.name:<{width}}  {c.detail}" for c in self.checks]
        verdict = "VALID" if self.ok else f"REJECTED ({', '.join(c.name for c in self.failed)})"
        exercises = exercise_summary((self.manifest or {}).get("exercises"))  # self-reported, never re-run
        return "\n".join(lines + ([f"  {exercises} (self-reported)"] if exercises else []) + [f"  verdict: {verdict}"])


@dataclass
class _Scan:
    """What streaming one member found: its real size, hashes, first bytes and (for JSON) its whole text."""

    name: str
    size: int = 0
    sha256: str = ""
    head: bytes = b""
    data: bytes | None = None
    span: tuple[int, int] = (0, 0)  # bytes of the archive it occupies: local header to end of its data
    error: str = ""
    ratio: float = 0.0


def verify_bundle(path: Path | str, limits: Limits = Limits(), known_labs: Collection[str] | None = None) -> Report:
    """Run every check on the bundle at ``path``; nothing is extracted or written. ``known_labs`` (the lab names,
    e.g. ``esc_course.lab.registry()``) also checks that the manifest's lab is one of them."""
    path = Path(path)
    problem, count = _archive_problem(path, limits)
    if problem:
        return Report(path, [Check("archive", False, problem)] + _skipped(CHECKS[1:], "the archive is unreadable"))
    checks = [Check("archive", True, f"a zip of {path.stat().st_size} bytes")]
    if count > limits.max_members:  # refused before zipfile builds an object per member
        checks.append(Check("members", False, f"the archive declares {count} members, more than the limit of "
                                              f"{limits.max_members}"))
        return Report(path, checks + _skipped(CHECKS[2:], "too many members to look at"))
    with zipfile.ZipFile(path) as zf, open(path, "rb") as fp:
        infos = zf.infolist()
        checks += [_members(infos, limits), _paths(infos), _links(infos), _duplicates(infos),
                   _declared(infos, limits, path.stat().st_size)]
        if not all(c.ok for c in checks):
            rest = ("actual_size", "pickle", "file_types", "manifest", "checksums", "results")
            checks.append(_pickle(infos, None))  # by name only: the contents are not read
            return Report(path, checks + _skipped([c for c in rest if c != "pickle"], "an earlier check failed"))
        scans = {s.name: s for s in _scan_all(fp, infos, limits)}
    checks += [_actual(scans, infos, limits), _pickle(infos, scans), _file_types(scans)]
    manifest, check = _manifest(scans, known_labs)
    checks.append(check)
    if manifest is None:
        return Report(path, checks + _skipped(("checksums", "results"), "no valid manifest"))
    checks.append(_checksums(manifest, scans))
    results, check = _results(manifest, scans)
    checks.append(check)
    return Report(path, checks, manifest=manifest, results=results)


def _skipped(names, why: str) -> list[Check]:
    return [Check(n, None, f"not run: {why}") for n in names]


# ---- the archive and its directory (no member is read yet)

def _archive_problem(path: Path, limits: Limits) -> tuple[str | None, int]:
    """Why the file is not an acceptable zip (or None), and the member count its end record declares."""
    if not path.is_file() or path.is_symlink():
        return f"{path} is not a regular file", 0
    size = path.stat().st_size
    if size > limits.max_archive_bytes:
        return f"the archive has {size} bytes, more than the limit of {limits.max_archive_bytes}", 0
    with open(path, "rb") as fp:
        count = _end_record_count(fp, size)
    if count is None:
        return "not a zip archive (no end-of-central-directory record)", 0
    if count > limits.max_members:
        return None, count
    try:
        with zipfile.ZipFile(path) as zf:
            encrypted = [i.filename for i in zf.infolist() if i.flag_bits & 0x1]
    except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError, EOFError) as err:
        return f"not a readable zip archive ({err})", count
    return (f"encrypted members: {encrypted[:5]}" if encrypted else None), count


def _end_record_count(fp: BinaryIO, size: int) -> int | None:
    """Members counted in the end-of-central-directory record, read before zipfile parses the directory
    (so a bundle that claims millions of members is refused without building millions of objects)."""
    tail_size = min(size, 22 + 0xFFFF)  # the record is 22 bytes plus a comment of at most 64 KiB
    fp.seek(size - tail_size)
    tail = fp.read(tail_size)
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < 22:
        return None
    count = struct.unpack("<H", tail[at + 10:at + 12])[0]
    if count == 0xFFFF:  # zip64: the real count sits in the zip64 end record
        loc = tail.rfind(b"PK\x06\x07", 0, at)
        if loc < 0:
            return None
        fp.seek(struct.unpack("<Q", tail[loc + 8:loc + 16])[0])
        record = fp.read(56)
        if record[:4] != b"PK\x06\x06":
            return None
        count = struct.unpack("<Q", record[32:40])[0]
    return count


def _members(infos, limits: Limits) -> Check:
    n = len(infos)
    if n > limits.max_members:
        return Check("members", False, f"{n} members, more than the limit of {limits.max_members}")
    return Check("members", n > 0, f"{n} members (limit {limits.max_members})" if n else "the archive is empty")


def _path_problem(name: str) -> str | None:
    if not name:
        return "an empty name"
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        return "an absolute path"
    if "\\" in name:
        return "a backslash (a Windows path separator)"
    parts = name.split("/")
    if ".." in parts:
        return "a '..' part (it would escape the folder)"
    if any(p in ("", ".") for p in parts[:-1]) or parts[-1] == ".":
        return "an empty or '.' part"
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        return "a control character"
    if len(name) > 255:
        return f"a name of {len(name)} characters"
    return None


def _paths(infos) -> Check:
    bad = [f"{i.filename!r} has {p}" for i in infos if (p := _path_problem(i.filename))]
    if bad:
        return Check("paths", False, "; ".join(bad[:5]) + (f" (and {len(bad) - 5} more)" if len(bad) > 5 else ""))
    return Check("paths", True, "every name is relative and stays inside the bundle")


def _links(infos) -> Check:
    bad = []
    for info in infos:
        mode = info.external_attr >> 16  # unix st_mode, when the creating system stored one
        kind = stat.S_IFMT(mode)
        if kind == stat.S_IFLNK:
            bad.append(f"{info.filename!r} is a symlink")
        elif kind not in (0, stat.S_IFREG, stat.S_IFDIR):
            # a zip cannot hold a hardlink as such; tools that try mark it with a non-regular type: refused too
            bad.append(f"{info.filename!r} is a link or special file (mode {oct(mode)})")
    if bad:
        return Check("links", False, "; ".join(bad[:5]))
    return Check("links", True, "no symlinks, hardlinks or special files")


def _duplicates(infos) -> Check:
    seen: dict[str, str] = {}
    bad = []
    for info in infos:
        key = unicodedata.normalize("NFC", info.filename).casefold()
        if key in seen:
            same = seen[key] == info.filename
            bad.append(f"{info.filename!r} twice" if same else f"{info.filename!r} and {seen[key]!r} collide")
        seen.setdefault(key, info.filename)
    if bad:
        return Check("duplicates", False, "; ".join(bad[:5]))
    return Check("duplicates", True, "every name is unique (also ignoring case)")


def _declared(infos, limits: Limits, archive_size: int) -> Check:
    bad = []
    for info in infos:
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            bad.append(f"{info.filename!r} uses compression method {info.compress_type} (only stored and deflate)")
        if info.file_size > limits.max_member_bytes:
            bad.append(f"{info.filename!r} declares {info.file_size} bytes (limit {limits.max_member_bytes})")
        if info.compress_size > archive_size:
            bad.append(f"{info.filename!r} declares {info.compress_size} compressed bytes, more than the archive")
        if _ratio(info.file_size, info.compress_size) > limits.max_ratio and info.file_size > limits.ratio_min_bytes:
            bad.append(f"{info.filename!r} declares a compression ratio of "
                       f"{_ratio(info.file_size, info.compress_size):.0f} (limit {limits.max_ratio:.0f})")
    total = sum(i.file_size for i in infos)
    if total > limits.max_total_bytes:
        bad.append(f"{total} bytes declared in total (limit {limits.max_total_bytes})")
    if bad:
        return Check("declared_size", False, "; ".join(bad[:5]))
    return Check("declared_size", True, f"{total} bytes declared in total")


def _ratio(size: int, compressed: int) -> float:
    return size / max(compressed, 1)


# ---- streaming the members (in memory, capped)

def _scan_all(fp: BinaryIO, infos, limits: Limits) -> list[_Scan]:
    scans, total = [], 0
    for info in infos:
        # never inflate more than declared + 1 byte (to see it lie), nor past what is left of the total budget
        cap = min(info.file_size, limits.max_member_bytes, max(limits.max_total_bytes - total, 0)) + 1
        scans.append(_scan(fp, info, cap, limits))
        total += scans[-1].size
    return scans


def _scan(fp: BinaryIO, info: zipfile.ZipInfo, cap: int, limits: Limits) -> _Scan:
    scan = _Scan(info.filename)
    digest, crc = hashlib.sha256(), 0
    keep = _SAFETENSORS_HEAD if info.filename.endswith(".safetensors") else _HEAD
    whole = info.filename in (MANIFEST, RESULTS)
    parts: list[bytes] = []
    head = bytearray()  # grown in place: up to 16 MiB of a safetensors header, so no bytes += per chunk
    try:
        start, data_start = info.header_offset, _data_offset(fp, info)
        scan.span = (start, data_start + info.compress_size)
        for chunk in _inflate(fp, info, data_start, cap):
            digest.update(chunk)
            crc = zlib.crc32(chunk, crc)
            if len(head) < keep:
                head += chunk[:keep - len(head)]
            if whole and scan.size + len(chunk) <= limits.max_json_bytes:
                parts.append(chunk)
            scan.size += len(chunk)
    except (_TooBig, ValueError, zlib.error, EOFError, OSError) as err:
        scan.error = str(err) or type(err).__name__
    scan.head = bytes(head)
    scan.sha256 = digest.hexdigest()
    scan.ratio = _ratio(scan.size, info.compress_size)
    if not scan.error and crc != info.CRC:
        scan.error = "CRC-32 mismatch (the member is corrupt)"
    if whole and not scan.error and scan.size <= limits.max_json_bytes:
        scan.data = b"".join(parts)
    return scan


class _TooBig(Exception):
    pass


def _data_offset(fp: BinaryIO, info: zipfile.ZipInfo) -> int:
    """Where the member's data starts, from its local header; the header's name must match the directory's."""
    fp.seek(info.header_offset)
    header = fp.read(30)
    if len(header) != 30 or header[:4] != b"PK\x03\x04":
        raise ValueError("no local file header where the directory points")
    flags, name_len, extra_len = struct.unpack("<H", header[6:8])[0], *struct.unpack("<HH", header[26:30])
    raw = fp.read(name_len)
    name = raw.decode("utf-8" if flags & 0x800 else "cp437", errors="replace")
    if name != info.orig_filename:
        raise ValueError(f"the local header names it {name!r} (a zip-confusion trick)")
    return info.header_offset + 30 + name_len + extra_len


def _inflate(fp: BinaryIO, info: zipfile.ZipInfo, data_start: int, cap: int) -> Iterator[bytes]:
    """Yield the member's uncompressed bytes chunk by chunk; raise _TooBig past ``cap`` bytes.

    zipfile would stop at the declared size; this decompresses the raw stream itself, so a member that
    inflates to more than it declares is seen, and at most ``cap`` bytes are ever produced.
    """
    fp.seek(data_start)
    left, produced = info.compress_size, 0
    inflater = zlib.decompressobj(-zlib.MAX_WBITS) if info.compress_type == zipfile.ZIP_DEFLATED else None
    pending = b""
    while True:
        if not pending and left > 0:
            pending = fp.read(min(_CHUNK, left))
            if not pending:
                raise EOFError("the archive ends inside the member")
            left -= len(pending)
        if inflater is None:
            out, pending = pending, b""
        else:
            out = inflater.decompress(pending, _CHUNK)  # at most _CHUNK bytes out per step
            pending = inflater.unconsumed_tail
        produced += len(out)
        if produced > cap:
            raise _TooBig(f"inflates to more than {cap - 1} bytes")
        if out:
            yield out
        done = inflater.eof if inflater is not None else left <= 0
        if done or (not out and not pending and left <= 0):
            break
    if inflater is not None and not inflater.eof:
        raise EOFError("the deflate stream is truncated")


def _actual(scans: dict[str, _Scan], infos, limits: Limits) -> Check:
    bad = [f"{s.name!r}: {s.error}" for s in scans.values() if s.error]
    bad += [f"{i.filename!r} is {scans[i.filename].size} bytes, declared {i.file_size}"
            for i in infos if scans[i.filename].size != i.file_size and not scans[i.filename].error]
    bad += [f"{s.name!r} inflates {s.ratio:.0f}-fold (limit {limits.max_ratio:.0f})"
            for s in scans.values() if s.ratio > limits.max_ratio and s.size > limits.ratio_min_bytes]
    spans = sorted((s.span, s.name) for s in scans.values())
    for ((_, end), a), ((start, _), b) in zip(spans, spans[1:]):
        if start < end:
            bad.append(f"{a!r} and {b!r} overlap in the archive (a zip-bomb trick)")
    if bad:
        return Check("actual_size", False, "; ".join(bad[:5]))
    total = sum(s.size for s in scans.values())
    return Check("actual_size", True, f"{total} bytes after streaming every member with a cap; sizes and CRCs match")


# ---- what the members are

def pickle_reason(name: str, head: bytes) -> str | None:
    """Why a file (by name and first bytes) is or may hold a pickle, or None. Used on bundles and on --weights."""
    suffix = os.path.splitext(name)[1].lower()
    if suffix in PICKLE_SUFFIXES:
        return f"{suffix} files are pickles (or hold them), which run code when loaded"
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return f"its content is a pickle (protocol {head[1]})"
    if head[:4] == b"PK\x03\x04":
        return "its content is a zip archive (torch.save writes a zip holding a pickle)"
    if head[:6] == b"\x93NUMPY":
        return "its content is a NumPy array file, which may hold pickled objects"
    return None


def _pickle(infos, scans: dict[str, _Scan] | None) -> Check:
    bad = []
    for info in infos:
        head = scans[info.filename].head if scans is not None else b""
        reason = pickle_reason(info.filename, head)
        if reason:
            bad.append(f"{info.filename!r}: {reason}")
    if bad:
        return Check("pickle", False, "; ".join(bad[:5]))
    how = "by name and content" if scans is not None else "by name (contents not read)"
    return Check("pickle", True, f"no pickle files, {how}")


def safetensors_problem(head: bytes, size: int) -> str | None:
    """What is wrong with a safetensors file of ``size`` bytes whose first bytes are ``head``, or None.

    The format: an 8-byte little-endian header length N, N bytes of JSON {name: {dtype, shape, data_offsets}},
    then the tensors' bytes, contiguous (https://github.com/huggingface/safetensors#format).
    """
    if len(head) < 8:
        return "too short for a safetensors header"
    n = int.from_bytes(head[:8], "little")
    if n < 2 or 8 + n > size or 8 + n > len(head):
        return f"its header length {n} does not fit a file of {size} bytes"
    try:
        header = json.loads(head[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return "its header is not JSON"
    if not isinstance(header, dict):
        return "its header is not a JSON object"
    spans = []
    for key, t in header.items():
        if key == "__metadata__":
            if not isinstance(t, dict) or not all(isinstance(v, str) for v in t.values()):
                return "__metadata__ must map strings to strings"
            continue
        problem = _tensor_problem(key, t)
        if problem:
            return problem
        spans.append(tuple(t["data_offsets"]))
    position = 0
    for begin, end in sorted(spans):
        if begin != position:
            return "its tensors' data overlap or leave gaps"
        position = end
    return None if position == size - 8 - n else f"its tensors cover {position} bytes, the file holds {size - 8 - n}"


def _tensor_problem(key: str, t: Any) -> str | None:
    if not isinstance(t, dict) or set(t) != {"dtype", "shape", "data_offsets"}:
        return f"tensor {key!r} must have exactly dtype, shape and data_offsets"
    shape, offsets = t["shape"], t["data_offsets"]
    if t["dtype"] not in _DTYPE_BYTES:
        return f"tensor {key!r} has dtype {t['dtype']!r}, not one of {', '.join(_DTYPE_BYTES)}"
    ints = lambda v: isinstance(v, list) and all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in v)  # noqa: E731
    if not ints(shape) or not ints(offsets) or len(offsets) != 2 or offsets[0] > offsets[1]:
        return f"tensor {key!r} has a bad shape {shape!r} or data_offsets {offsets!r}"
    if offsets[1] - offsets[0] != math.prod(shape) * _DTYPE_BYTES[t["dtype"]]:
        return f"tensor {key!r}: shape {shape} of {t['dtype']} does not match its {offsets[1] - offsets[0]} bytes"
    return None


def _file_types(scans: dict[str, _Scan]) -> Check:
    bad = []
    for s in scans.values():
        if s.name == MANIFEST:
            continue
        kind = kind_of(s.name)
        if kind is None:
            bad.append(f"{s.name!r} is not part of a bundle's layout (results.json, figures/*.png, "
                       f"notebook/*.ipynb, weights/*.safetensors)")
        elif kind == "figure" and not s.head.startswith(b"\x89PNG\r\n\x1a\n"):
            bad.append(f"{s.name!r} is not a PNG image")
        elif kind == "weights" and (problem := safetensors_problem(s.head, s.size)):
            bad.append(f"{s.name!r}: {problem}")
    if bad:
        return Check("file_types", False, "; ".join(bad[:5]))
    return Check("file_types", True, "only results, PNG figures, a notebook and safetensors weights")


def _json(scan: _Scan | None, what: str) -> tuple[Any, str | None]:
    if scan is None:
        return None, f"no {what}"
    if scan.data is None:
        return None, f"{what} is unreadable or larger than the JSON limit"
    try:
        return json.loads(scan.data.decode("utf-8")), None
    except (UnicodeDecodeError, ValueError) as err:
        return None, f"{what} is not valid JSON ({err})"


def _manifest(scans: dict[str, _Scan], known_labs: Collection[str] | None) -> tuple[dict | None, Check]:
    manifest, error = _json(scans.get(MANIFEST), MANIFEST)
    if error:
        return None, Check("manifest", False, error)
    problems = manifest_problems(manifest, known_labs)
    if problems:
        return None, Check("manifest", False, "; ".join(problems[:6]))
    return manifest, Check("manifest", True, f"group {manifest['group']!r}, lab {manifest['lab']!r}, "
                                             f"{len(manifest['members'])} members, created {manifest['created']}")


def _checksums(manifest: dict, scans: dict[str, _Scan]) -> Check:
    files, bad = manifest["files"], []
    for name, s in scans.items():
        if name == MANIFEST:
            continue
        entry = files.get(name)
        if entry is None:
            bad.append(f"{name!r} is not listed in the manifest")
        elif s.error:
            bad.append(f"{name!r} could not be read ({s.error})")
        elif s.size != entry["size"] or s.sha256 != entry["sha256"]:
            bad.append(f"{name!r}: SHA-256 {s.sha256[:12]}... differs from the manifest's {entry['sha256'][:12]}... "
                       f"(tampered or corrupted)")
    bad += [f"{name!r} is listed in the manifest but missing" for name in files if name not in scans]
    if bad:
        return Check("checksums", False, "; ".join(bad[:5]))
    return Check("checksums", True, f"{len(files)} files match their SHA-256")


def _results(manifest: dict, scans: dict[str, _Scan]) -> tuple[dict | None, Check]:
    results, error = _json(scans.get(RESULTS), RESULTS)
    if error:
        return None, Check("results", False, error)
    if not isinstance(results, dict) or not isinstance(results.get("metrics"), dict):
        return None, Check("results", False, f"{RESULTS} has no metrics")
    bad = []
    if results.get("lab") != manifest["lab"]:
        bad.append(f"{RESULTS} is from lab {results.get('lab')!r}, the manifest says {manifest['lab']!r}")
    claimed = {k: v for k, v in results["metrics"].items() if k in manifest["metrics"]}
    if claimed != manifest["metrics"]:
        bad.append(f"the manifest's metrics differ from {RESULTS}'s")
    seed = (results.get("config") or {}).get("seed") if isinstance(results.get("config"), dict) else None
    if manifest["seed"] is not None and seed != manifest["seed"]:
        bad.append(f"seed {manifest['seed']} in the manifest, {seed!r} in {RESULTS}")
    if bad:
        return None, Check("results", False, "; ".join(bad))
    return results, Check("results", True, f"{RESULTS} agrees with the manifest "
                                           f"({manifest['metric']['name']} = {manifest['metric']['value']})")


# ---- reading and extracting a verified bundle

def read_member(path: Path | str, name: str, sha256: str, limits: Limits = Limits()) -> bytes:
    """The bytes of one member of a verified bundle, streamed with the same caps and checked against ``sha256``."""
    with zipfile.ZipFile(path) as zf, open(path, "rb") as fp:
        info = zf.getinfo(name)
        chunks = list(_inflate(fp, info, _data_offset(fp, info), min(info.file_size, limits.max_member_bytes) + 1))
    data = b"".join(chunks)
    if hashlib.sha256(data).hexdigest() != sha256:
        raise BundleError(f"{path}: {name!r} changed since it was verified (SHA-256 differs)")
    return data


def extract_verified(path: Path | str, dest: Path | str, limits: Limits = Limits()) -> Path:
    """Verify the bundle, then write its members into a new folder ``dest/<bundle name>/`` and return it.

    Nothing is written unless every check passes; each member is re-hashed as it is written.
    """
    path, dest = Path(path), Path(dest)
    report = verify_bundle(path, limits)
    if not report.ok:
        raise BundleError(f"{path}: not extracted: {report.reason}")
    target = dest / path.stem
    if target.exists():
        raise BundleError(f"{target} already exists; remove it or extract elsewhere")
    target.mkdir(parents=True)
    root = target.resolve()
    files = {MANIFEST: None, **report.manifest["files"]}
    for name, entry in files.items():
        out = (root / name).resolve()
        if root not in out.parents:  # cannot happen after the paths check; kept as the last line of defence
            raise BundleError(f"{name!r} would land outside {root}")
        out.parent.mkdir(parents=True, exist_ok=True)
        data = (read_member(path, name, entry["sha256"], limits) if entry is not None
                else json.dumps(report.manifest, indent=2, ensure_ascii=False).encode("utf-8"))
        with open(out, "xb") as f:  # "x": never through an existing file or link
            f.write(data)
    return target


__all__ = ["CHECKS", "BundleError", "Check", "Limits", "Report", "extract_verified", "pickle_reason",
           "read_member", "safetensors_problem", "verify_bundle"]
