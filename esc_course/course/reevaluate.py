"""Re-evaluation: measure a bundle's metric from its weights instead of trusting the number it claims.

A lab opts in by defining two functions (the protocol) and saving its headline model's weights; the CLI passes them
here in an ``esc_course.course.bundle.LabSpec`` (``esc_course.lab.spec(name)``), so nothing here imports a lab:

    def build_model(config: dict) -> torch.nn.Module
        The lab's headline model for a run's config (the "config" of its results.json), freshly initialised.
        The config comes from a student's bundle: read only the fields the model needs, check their types and
        ranges, and raise ValueError on anything else (a huge width must not exhaust the organisers' memory).

    def evaluate_weights(model, config: dict, data_dir: Path | None = None) -> dict[str, float]
        The lab's metrics for ``model`` (its weights already loaded), on the organisers' held-out data in
        ``data_dir`` when given (``esc_course.data.heldout.load_heldout(data_dir, lab)``), else on the lab's own
        embedded test split.
        Keys are results.json metric names (at least the headline), so claimed and measured values compare.

    run(cfg, out): esc_course.checkpoint.save_weights(headline_model, out / "model.safetensors") when ``out`` is
    given; ``esc-course submit`` puts that file into the bundle as weights/model.safetensors.

Weights travel as safetensors only: loading them reads tensors, never code (no pickle, no torch.load).
Held-out data is a safetensors file ``<data_dir>/<lab>.safetensors`` with tensors ``x`` (inputs) and ``y`` (targets),
written and read by esc_course.data.heldout (held-out data lives with the data).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

PROTOCOL = ("build_model", "evaluate_weights")


def supports(lab: Any) -> bool:
    """Whether ``lab`` (a LabSpec, or anything with the protocol's two functions) implements re-evaluation."""
    return all(callable(getattr(lab, name, None)) for name in PROTOCOL)


def reevaluate(lab: Any, config: dict, weights: bytes, data_dir: Path | str | None = None) -> dict:
    """Load safetensors ``weights`` into ``lab.build_model(config)`` and return ``lab.evaluate_weights``'s metrics
    (``lab``: a LabSpec, or anything with the protocol's two functions)."""
    import torch
    from safetensors import torch as safetensors_torch

    from esc_course.checkpoint import CheckpointError, load_model_state

    name = getattr(lab, "stem", None) or getattr(lab, "__name__", "the lab")
    if not supports(lab):
        raise ValueError(f"{name} cannot re-evaluate weights: it defines no {' and '.join(PROTOCOL)}")
    state = safetensors_torch.load(weights)  # tensors only: nothing is unpickled or executed
    model = lab.build_model(dict(config))
    try:
        load_model_state(model, state, "weights/model.safetensors")  # names the missing or mis-shaped keys
    except CheckpointError as err:
        raise ValueError(f"the weights do not fit {name}'s model for this config: {err}") from None
    model.eval()
    with torch.no_grad():
        metrics = lab.evaluate_weights(model, dict(config), Path(data_dir) if data_dir is not None else None)
    return {k: float(v) for k, v in metrics.items()}
