"""Held-out data: the organisers' test set for a lab, one safetensors file ``<data_dir>/<lab>.safetensors``.

    save_heldout("heldout/", "xor", x, y)      # the organisers write it (tensors x: inputs, y: targets)
    x, y = load_heldout("heldout/", "xor")     # a lab's evaluate_weights reads it (esc-course leaderboard --data)

Tensors only: reading the file unpickles and runs nothing.
"""

from __future__ import annotations

from pathlib import Path


def heldout_path(data_dir: Path | str, lab: str) -> Path:
    return Path(data_dir) / f"{lab}.safetensors"


def save_heldout(data_dir: Path | str, lab: str, x, y) -> Path:
    """Write the organisers' held-out data for ``lab`` as ``data_dir/<lab>.safetensors`` (tensors x, y)."""
    from safetensors.torch import save

    from esc_course.files import write_bytes

    if x.shape[0] != y.shape[0] or x.shape[0] == 0:
        raise ValueError(f"x and y must hold the same non-zero number of samples, got {tuple(x.shape)} and "
                         f"{tuple(y.shape)}")
    return write_bytes(heldout_path(data_dir, lab), save({"x": x.contiguous(), "y": y.contiguous()}))


def load_heldout(data_dir: Path | str, lab: str):
    """``(x, y)`` from ``data_dir/<lab>.safetensors``; a missing file or tensor is an error naming the path."""
    from safetensors.torch import load_file

    path = heldout_path(data_dir, lab)
    if not path.is_file():
        raise FileNotFoundError(f"no held-out data for lab {lab!r}: expected {path} with tensors 'x' and 'y' "
                                f"(write it with esc_course.data.heldout.save_heldout)")
    tensors = load_file(path)
    missing = {"x", "y"} - set(tensors)
    if missing:
        raise ValueError(f"{path}: missing tensors {sorted(missing)}; expected 'x' (inputs) and 'y' (targets)")
    return tensors["x"], tensors["y"]
