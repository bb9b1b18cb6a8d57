"""seed_everything(seed, deterministic=True): two quick runs of every lab give identical results.json metrics on CPU."""

import json
import re

import pytest
import torch

from esc_course import lab, seed

LABS = list(lab.registry())
TIMING = re.compile(r"(^|_)(seconds|time|ms|per_s|per_second|throughput|speed|wall)(_|$)")  # measured, not computed


def run_deterministic(name, out):
    module = lab.load(name)
    seed.seed_everything(0, deterministic=True)  # the labs' own seed_everything(seed) calls leave it on
    cfg = lab.make_config(name, ["--device=cpu"], quick=True)
    module.run(cfg, out=out)
    assert torch.are_deterministic_algorithms_enabled()
    return json.loads((out / "results.json").read_text())


@pytest.mark.slow
@pytest.mark.parametrize("name", LABS)
def test_two_quick_runs_give_identical_metrics(name, tmp_path):
    try:
        first = run_deterministic(name, tmp_path / "a")
        second = run_deterministic(name, tmp_path / "b")
    finally:
        seed.seed_everything(0, deterministic=False)  # deterministic mode off again for the other tests
    assert first["env"]["deterministic"] is True
    metrics = {k: v for k, v in first["metrics"].items() if not TIMING.search(k)}
    assert metrics, f"{name} has no metrics to compare"
    assert metrics == {k: second["metrics"][k] for k in metrics}
    curves = lambda h: {run: {k: v for k, v in cols.items() if k != "seconds"}  # noqa: E731
                        for run, cols in h.items() if isinstance(cols, dict)}
    assert curves(first["history"]) == curves(second["history"])
