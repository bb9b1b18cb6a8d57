"""Bundle verification: every kind of bad entry is refused by the right check, before anything is extracted."""

import hashlib
import json
import pickle
import struct
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save as save_safetensors

from esc_course.course.submit import build_bundle
from esc_course.course.verify import (
    CHECKS,
    BundleError,
    Limits,
    extract_verified,
    read_member,
    safetensors_problem,
    verify_bundle,
)
from esc_course.lab import registry, spec

ROOT = Path(__file__).resolve().parents[1]
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64  # the signature is what verify looks at
REG = 0o100644 << 16  # a regular file's unix mode, as zip external attributes
XOR = spec("xor")


def weights_bytes() -> bytes:
    return save_safetensors({"0.weight": np.ones((8, 2), np.float32), "0.bias": np.zeros(8, np.float32)})


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> Path:
    """A valid bundle built by submit from a small run folder written by the test."""
    run = tmp_path_factory.mktemp("run")
    results = {"lab": "xor", "config": {"seed": 3, "quick": True, "hidden": 8}, "env": {"git_commit": "abc"},
               "metrics": {"mlp_accuracy": 1.0, "perceptron_accuracy": 0.75}, "history": {}, "tables": {},
               "seconds": 1.0, "figures": ["boundary.png"]}
    (run / "results.json").write_text(json.dumps(results))
    (run / "boundary.png").write_bytes(PNG)
    (run / "model.safetensors").write_bytes(weights_bytes())
    out = tmp_path_factory.mktemp("bundles")
    return build_bundle(group="team-a", members="Kim,Lee", lab=XOR, run_dir=run, out_dir=out,
                        created="2026-03-02T10:00:00+09:00")


def members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def write_zip(path: Path, entries, compression=zipfile.ZIP_DEFLATED) -> Path:
    """entries: (name or ZipInfo, bytes) pairs, written as given (duplicates and odd names included)."""
    import warnings

    with warnings.catch_warnings(), zipfile.ZipFile(path, "w", compression=compression) as zf:
        warnings.simplefilter("ignore")  # zipfile warns about duplicate names: they are the point here
        for name, data in entries:
            info = name if isinstance(name, zipfile.ZipInfo) else zipfile.ZipInfo(name, (2026, 3, 2, 10, 0, 0))
            if not isinstance(name, zipfile.ZipInfo):
                info.external_attr, info.compress_type = REG, compression
            zf.writestr(info, data)
    return path


def resign(files: dict[str, bytes], **changes) -> dict[str, bytes]:
    """Recompute the manifest's hashes for ``files`` (what a careful forger would do), then apply ``changes``."""
    manifest = json.loads(files["manifest.json"])
    for name, data in files.items():
        if name in manifest["files"]:
            manifest["files"][name].update(size=len(data), sha256=hashlib.sha256(data).hexdigest())
    manifest.update(changes)
    return {**files, "manifest.json": json.dumps(manifest).encode()}


def deflate(data: bytes) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    return c.compress(data) + c.flush()


def raw_zip(path: Path, entries) -> Path:
    """A zip written byte by byte, so that headers can lie. entries: dicts with name, data and optionally
    method (0 stored, 8 deflate), file_size (declared), offset (point the directory at another header)."""
    out, central = bytearray(), bytearray()
    for e in entries:
        name, data, method = e["name"].encode(), e["data"], e.get("method", 8)
        comp = deflate(data) if method == 8 else data
        crc, size = zlib.crc32(data), e.get("file_size", len(data))
        offset = e.get("offset", len(out))
        if "offset" not in e:
            out += struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 20, 0, method, 0, 0x21, crc, len(comp), size,
                               len(name), 0) + name + comp
        central += struct.pack("<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 0x031E, 20, 0, method, 0, 0x21, crc,
                               e.get("compress_size", len(comp)), size, len(name), 0, 0, 0, 0, REG, offset) + name
    start = len(out)
    out += central + struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, len(entries), len(entries), len(central),
                                 start, 0)
    path.write_bytes(bytes(out))
    return path


def failed(report) -> dict[str, str]:
    return {c.name: c.detail for c in report.checks if c.ok is False}


def test_a_bundle_built_by_submit_passes_every_check(good):
    report = verify_bundle(good)
    assert report.ok, report.text()
    assert [c.name for c in report.checks] == list(CHECKS)
    assert all(c.verdict == "PASS" for c in report.checks)
    assert report.manifest["group"] == "team-a" and report.results["metrics"]["mlp_accuracy"] == 1.0
    assert "verdict: VALID" in report.text()


def test_a_tampered_file_fails_its_checksum(good, tmp_path):
    files = members(good)
    results = json.loads(files["results.json"])
    results["metrics"]["mlp_accuracy"] = 1.0
    results["metrics"]["perceptron_accuracy"] = 1.0  # a better number, with the manifest left as it was
    files["results.json"] = json.dumps(results).encode()
    report = verify_bundle(write_zip(tmp_path / "tampered.zip", files.items()))
    assert not report.ok
    assert set(failed(report)) == {"checksums", "results"}  # and it no longer agrees with the manifest
    assert "'results.json'" in failed(report)["checksums"] and "tampered" in failed(report)["checksums"]
    assert "REJECTED (checksums, results)" in report.text()


def test_one_changed_byte_in_a_figure_fails_its_checksum(good, tmp_path):
    files = members(good)
    png = bytearray(files["figures/boundary.png"])
    png[-1] ^= 1
    files["figures/boundary.png"] = bytes(png)
    report = verify_bundle(write_zip(tmp_path / "tampered.zip", files.items()))
    assert set(failed(report)) == {"checksums"} and "'figures/boundary.png'" in failed(report)["checksums"]


def test_changed_weights_fail_their_checksum(good, tmp_path):
    files = members(good)
    files["weights/model.safetensors"] = save_safetensors({"0.weight": np.zeros((8, 2), np.float32),
                                                           "0.bias": np.zeros(8, np.float32)})
    report = verify_bundle(write_zip(tmp_path / "w.zip", files.items()))
    assert set(failed(report)) == {"checksums"} and "weights/model.safetensors" in failed(report)["checksums"]


def test_results_that_disagree_with_the_manifest_are_refused_even_when_rehashed(good, tmp_path):
    files = members(good)
    results = json.loads(files["results.json"])
    results["metrics"]["perceptron_accuracy"] = 1.0
    files["results.json"] = json.dumps(results).encode()
    report = verify_bundle(write_zip(tmp_path / "r.zip", resign(files).items()))
    assert set(failed(report)) == {"results"} and "metrics differ" in failed(report)["results"]


def _info(name: str, mode: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, (2026, 3, 2, 10, 0, 0))
    info.create_system, info.external_attr = 3, mode << 16
    return info


# (what is added to a valid bundle, the check that must fail, words its reason must contain)
BAD_ENTRIES = {
    "absolute path": ([("/etc/cron.d/evil", b"x")], "paths", "absolute path"),
    "windows drive": ([("C:/Windows/evil.txt", b"x")], "paths", "absolute path"),
    "parent dir": ([("../evil.txt", b"x")], "paths", "'..'"),
    "nested parent": ([("figures/../../evil.png", PNG)], "paths", "'..'"),
    "backslash": ([("figures\\..\\..\\evil.png", PNG)], "paths", "backslash"),
    "control char": ([("figures/a\nb.png", PNG)], "paths", "control character"),
    "symlink": ([(_info("figures/link.png", 0o120777), b"/etc/passwd")], "links", "symlink"),
    "special file": ([(_info("figures/dev.png", 0o020644), b"")], "links", "special file"),
    "duplicate": ([("results.json", b"{}")], "duplicates", "'results.json' twice"),
    "case collision": ([("Results.json", b"{}")], "duplicates", "collide"),
    "pickle by name": ([("weights/model.pt", pickle.dumps({"w": [1.0]}))], "pickle", ".pt files are pickles"),
    "pickle checkpoint": ([("weights/last.ckpt", b"x")], "pickle", ".ckpt files"),
    "pickle by content": ([("figures/innocent.png", pickle.dumps([1, 2, 3], protocol=4))], "pickle",
                          "pickle (protocol 4)"),
    "torch.save zip": ([("weights/model2.safetensors", b"PK\x03\x04" + b"\x00" * 40)], "pickle", "torch.save"),
    "numpy file": ([("figures/a.png", b"\x93NUMPY\x01\x00")], "pickle", "NumPy"),
    "unlisted file": ([("notes.txt", b"hello")], "file_types", "not part of a bundle's layout"),
    "script": ([("figures/run.py", b"import os; os.system('rm -rf ~')")], "file_types", "layout"),
    "directory entry": ([("figures/sub/", b"")], "file_types", "layout"),
    "fake png": ([("figures/fake.png", b"GIF89a")], "file_types", "not a PNG"),
    "broken safetensors": ([("weights/extra.safetensors", b"\x10\x00\x00\x00\x00\x00\x00\x00{bad json}      ")],
                           "file_types", "header is not JSON"),
}


@pytest.mark.parametrize("case", list(BAD_ENTRIES))
def test_each_kind_of_bad_entry_is_refused_with_its_reason_and_nothing_is_written(case, good, tmp_path,
                                                                                  monkeypatch):
    extra, check, words = BAD_ENTRIES[case]
    bundle = write_zip(tmp_path / "bad.zip", [*members(good).items(), *extra])
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)  # relative names would land here (or in tmp_path, for '..') if anything were written
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    report = verify_bundle(bundle)
    assert not report.ok and [c.name for c in report.checks] == list(CHECKS)
    assert check in failed(report), report.text()
    assert words in failed(report)[check], failed(report)[check]
    with pytest.raises(BundleError, match=check):
        extract_verified(bundle, tmp_path / "out")
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before  # nothing extracted anywhere
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "out").exists()


def test_a_zip_bomb_is_refused_by_its_compression_ratio(good, tmp_path):
    bomb = write_zip(tmp_path / "bomb.zip", [*members(good).items(), ("figures/zeros.png", bytes(8 << 20))])
    assert bomb.stat().st_size < 100_000  # 8 MiB of zeros deflate to a few KB
    report = verify_bundle(bomb)
    assert "compression ratio" in failed(report)["declared_size"]
    assert report.check("actual_size").ok is None  # nothing was inflated


def test_a_member_that_lies_about_its_size_is_caught_while_streaming(tmp_path):
    """The directory declares 100 bytes; the data inflates to 8 MiB. zipfile would stop at 100 bytes and
    trust the header; verify inflates the raw stream itself and stops as soon as it passes the declared size."""
    bomb = raw_zip(tmp_path / "liar.zip", [{"name": "results.json", "data": bytes(8 << 20), "file_size": 100}])
    report = verify_bundle(bomb)
    assert report.check("declared_size").ok  # the declared numbers look harmless
    assert "inflates to more than 100 bytes" in failed(report)["actual_size"]


def test_declared_sizes_above_the_limits_are_refused_without_inflating(tmp_path):
    bundle = raw_zip(tmp_path / "big.zip", [{"name": "results.json", "data": b"{}", "file_size": 600 << 20}])
    report = verify_bundle(bundle)
    detail = failed(report)["declared_size"]
    assert "declares 629145600 bytes" in detail and "in total" in detail
    assert report.check("actual_size").ok is None


def test_a_member_smaller_than_declared_is_refused(tmp_path):
    bundle = raw_zip(tmp_path / "short.zip", [{"name": "results.json", "data": b"{}", "file_size": 50}])
    assert "is 2 bytes, declared 50" in failed(verify_bundle(bundle))["actual_size"]


def test_overlapping_members_are_refused(tmp_path):
    """Two directory entries whose data overlap (the trick behind non-recursive zip bombs, Fifield 2019)."""
    inner_data = b'{"a": 1}'
    inner = struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 20, 0, 0, 0, 0x21, zlib.crc32(inner_data),
                        len(inner_data), len(inner_data), len(b"results.json"), 0) + b"results.json" + inner_data
    outer_name = "figures/outer.png"
    bundle = raw_zip(tmp_path / "overlap.zip", [
        {"name": outer_name, "data": inner, "method": 0},  # its stored data hold a whole second member
        {"name": "results.json", "data": inner_data, "method": 0, "offset": 30 + len(outer_name)},
    ])
    assert "overlap" in failed(verify_bundle(bundle))["actual_size"]


def test_a_local_header_that_names_another_file_is_refused(tmp_path):
    bundle = raw_zip(tmp_path / "confused.zip", [{"name": "results.json", "data": b"{}"},
                                                 {"name": "evil.json", "data": b"{}", "offset": 0}])
    assert "local header names it 'results.json'" in failed(verify_bundle(bundle))["actual_size"]


def test_too_many_members_are_refused_before_the_directory_is_parsed(tmp_path):
    bundle = write_zip(tmp_path / "many.zip", [(f"figures/{i}.png", PNG) for i in range(30)])
    report = verify_bundle(bundle, Limits(max_members=20))
    assert "declares 30 members, more than the limit of 20" in failed(report)["members"]
    assert all(c.ok is None for c in report.checks[2:])


@pytest.mark.parametrize("method,words", [(zipfile.ZIP_BZIP2, "compression method 12"),
                                          (zipfile.ZIP_LZMA, "compression method 14")])
def test_only_stored_and_deflate_are_accepted(good, tmp_path, method, words):
    bundle = write_zip(tmp_path / "m.zip", members(good).items(), compression=method)
    assert words in failed(verify_bundle(bundle))["declared_size"]


def test_an_encrypted_member_is_refused(good, tmp_path):
    data = bytearray(good.read_bytes())
    for sig in (b"PK\x03\x04", b"PK\x01\x02"):  # set the 'encrypted' flag bit in every header
        at = data.find(sig)
        while at >= 0:
            flag_at = at + (6 if sig == b"PK\x03\x04" else 8)
            data[flag_at] |= 1
            at = data.find(sig, at + 4)
    (tmp_path / "e.zip").write_bytes(bytes(data))
    assert "encrypted" in failed(verify_bundle(tmp_path / "e.zip"))["archive"]


def test_not_a_zip_and_a_missing_file_are_refused(tmp_path):
    (tmp_path / "x.zip").write_bytes(b"#!/bin/sh\necho hi\n")
    report = verify_bundle(tmp_path / "x.zip")
    assert "not a zip archive" in failed(report)["archive"] and all(c.ok is None for c in report.checks[1:])
    assert "not a regular file" in failed(verify_bundle(tmp_path / "missing.zip"))["archive"]


@pytest.mark.parametrize("change,words", [
    (lambda m: m.pop("members"), "missing key 'members'"),
    (lambda m: m.update(members="Kim"), "'members' is str, expected list"),
    (lambda m: m.update(lab="no-such-lab"), "lab 'no-such-lab' is not one of"),
    (lambda m: m.update(group="../../team"), "not a plain name"),
    (lambda m: m.update(created="yesterday"), "not an ISO-8601 time"),
    (lambda m: m.update(format_version=2), "version 2"),
    (lambda m: m.update(extra=1), "unknown key 'extra'"),
    (lambda m: m["metric"].update(value=float("nan")), "not a finite number"),
    (lambda m: m["metric"].update(value=0.99), "differs from metrics"),
    (lambda m: m["files"]["results.json"].update(sha256="abc"), "not 64 lowercase hex digits"),
    (lambda m: m["files"].update({"run.py": {"kind": "results", "size": 1, "sha256": "0" * 64}}),
     "not an allowed name"),
])
def test_a_manifest_that_breaks_the_schema_is_refused(good, tmp_path, change, words):
    files = members(good)
    manifest = json.loads(files["manifest.json"])
    change(manifest)
    files["manifest.json"] = json.dumps(manifest).encode()
    report = verify_bundle(write_zip(tmp_path / "m.zip", files.items()), known_labs=registry())
    assert words in failed(report)["manifest"]
    assert report.check("checksums").ok is None  # nothing is checked against a manifest that is not valid


def test_a_missing_or_unreadable_manifest_is_refused(good, tmp_path):
    files = members(good)
    no_manifest = {k: v for k, v in files.items() if k != "manifest.json"}
    assert "no manifest.json" in failed(verify_bundle(write_zip(tmp_path / "a.zip", no_manifest.items())))["manifest"]
    files["manifest.json"] = b"{not json"
    assert "not valid JSON" in failed(verify_bundle(write_zip(tmp_path / "b.zip", files.items())))["manifest"]


def test_a_listed_file_that_is_missing_fails_the_checksums(good, tmp_path):
    files = {k: v for k, v in members(good).items() if not k.startswith("figures/")}
    report = verify_bundle(write_zip(tmp_path / "m.zip", files.items()))
    assert "'figures/boundary.png' is listed in the manifest but missing" in failed(report)["checksums"]


def test_safetensors_headers_are_checked_against_the_format():
    data = weights_bytes()
    assert safetensors_problem(data, len(data)) is None
    assert "does not fit" in safetensors_problem(data[:20], 20)
    assert "cover" in safetensors_problem(data + b"\x00" * 4, len(data) + 4)  # trailing bytes nobody owns
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    header["0.bias"]["shape"] = [9]  # 9 floats claimed in 8 floats' bytes
    text = json.dumps(header).encode()
    forged = len(text).to_bytes(8, "little") + text + data[8 + n:]
    assert "does not match" in safetensors_problem(forged, len(forged))


def test_extract_writes_only_verified_members_inside_the_target(good, tmp_path):
    target = extract_verified(good, tmp_path / "out")
    assert target == tmp_path / "out" / good.stem
    written = sorted(p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file())
    assert written == sorted(members(good))
    manifest = json.loads((target / "manifest.json").read_text())
    for name, entry in manifest["files"].items():
        assert hashlib.sha256((target / name).read_bytes()).hexdigest() == entry["sha256"]
    with pytest.raises(BundleError, match="already exists"):
        extract_verified(good, tmp_path / "out")


def test_read_member_checks_the_hash(good):
    manifest = verify_bundle(good).manifest
    data = read_member(good, "results.json", manifest["files"]["results.json"]["sha256"])
    assert json.loads(data)["lab"] == "xor"
    with pytest.raises(BundleError, match="changed since it was verified"):
        read_member(good, "results.json", "0" * 64)


def test_verify_command_prints_a_verdict_per_check_and_fails_on_any_failure(good, tmp_path):
    bad = write_zip(tmp_path / "bad.zip", [*members(good).items(), ("../evil.txt", b"x")])
    cmd = [sys.executable, "-m", "esc_course.cli", "verify"]
    res = subprocess.run(cmd + [str(good)], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.count("PASS") == len(CHECKS) and "verdict: VALID" in res.stdout
    res = subprocess.run(cmd + [str(good), str(bad)], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert res.returncode == 1
    assert "FAIL  paths" in res.stdout and "REJECTED" in res.stdout and "'..'" in res.stdout
    assert not (tmp_path.parent / "evil.txt").exists()
    res = subprocess.run(cmd + [str(good), str(bad), "--extract", str(tmp_path / "x")], capture_output=True,
                         text=True, cwd=ROOT, timeout=120)
    assert res.returncode == 1 and f"extracted to {tmp_path / 'x' / good.stem}" in res.stdout
    assert [p.name for p in (tmp_path / "x").iterdir()] == [good.stem]  # only the valid bundle


def test_verification_imports_no_torch_and_executes_nothing(good, tmp_path):
    marker = tmp_path / "ran"
    payload = f"import pathlib; pathlib.Path({str(marker)!r}).write_text('ran')".encode()

    class Evil:  # unpickling this would create the marker file
        def __reduce__(self):
            return (exec, (payload.decode(),))

    bundle = write_zip(tmp_path / "evil.zip", [*members(good).items(), ("weights/model.pkl", pickle.dumps(Evil())),
                                               ("figures/x.png", pickle.dumps(Evil()))])
    code = (f"import sys; from esc_course.course.verify import verify_bundle; r = verify_bundle({str(bundle)!r}); "
            f"print(r.ok, 'torch' in sys.modules)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert res.stdout.split() == ["False", "False"], res.stderr
    assert not marker.exists()

