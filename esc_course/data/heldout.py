"""Held-out data: the organisers' test set for a lab, kept apart from what the students train and tune on.

A held-out set is a safetensors file ``<data_dir>/<lab>.safetensors`` with tensors ``x`` (inputs) and ``y``
(targets). A lab's ``evaluate_weights(model, config, data_dir)`` reads it with ``load_heldout(data_dir, lab)``;
``esc-course leaderboard --reevaluate --data DIR`` ranks the bundles on it (esc_course.course.reevaluate).
"""

from __future__ import annotations

from pathlib import Path


def save_heldout(data_dir: Path | str, lab: str, x, y) -> Path:
    """Write the organisers' held-out data for ``lab`` as ``data_dir/<lab>.safetensors`` (tensors x, y)."""
    from safetensors.torch import save

    from esc_course.files import write_bytes

    if x.shape[0] != y.shape[0] or x.shape[0] == 0:
        raise ValueError(f"x and y must hold the same non-zero number of samples, got {tuple(x.shape)} and "
                         f"{tuple(y.shape)}")
    return write_bytes(Path(data_dir) / f"{lab}.safetensors", save({"x": x.contiguous(), "y": y.contiguous()}))


def load_heldout(data_dir: Path | str, lab: str):
    """``(x, y)`` from ``data_dir/<lab>.safetensors``; a missing file or tensor is an error naming the path."""
    from safetensors.torch import load_file

    path = Path(data_dir) / f"{lab}.safetensors"
    if not path.is_file():
        raise FileNotFoundError(f"no held-out data for lab {lab!r}: expected {path} with tensors 'x' and 'y' "
                                f"(write it with esc_course.data.heldout.save_heldout)")
    tensors = load_file(path)
    missing = {"x", "y"} - set(tensors)
    if missing:
        raise ValueError(f"{path}: missing tensors {sorted(missing)}; expected 'x' (inputs) and 'y' (targets)")
    return tensors["x"], tensors["y"]
