"""The lab contract, for every lab in the registry: quick run, results.json, figures, CLI-style overrides."""

import json

import pytest

from esc_course import lab

LABS = list(lab.registry())


def test_registry_finds_the_labs():
    assert "xor" in LABS
    assert lab.get_info("week01_xor").name == "xor"
    with pytest.raises(ValueError, match="valid labs: .*xor"):
        lab.get_info("no-such-lab")


@pytest.mark.parametrize("name", LABS)
def test_quick_run_writes_results(name, tmp_path):
    module = lab.load(name)
    cfg = lab.make_config(name, [], quick=True)
    assert cfg.quick and cfg.device == "auto"
    result = module.run(cfg, out=tmp_path)
    metric, mode = lab.headline(module)
    assert mode in ("max", "min")
    assert metric in result.metrics
    data = json.loads((tmp_path / "results.json").read_text())
    for key in ("lab", "config", "metrics", "history", "tables", "env", "seconds"):
        assert key in data
    assert data["lab"] == name
    assert data["config"]["quick"] is True
    assert data["env"]["torch"] and data["env"]["seed"] == cfg.seed and data["env"]["device"]
    for fig in data["figures"]:
        assert (tmp_path / fig).stat().st_size > 1000
    assert result.seconds < 120, f"quick mode of {name} must stay fast on a 2-core CPU"


@pytest.mark.parametrize("name", LABS)
def test_config_fields_are_documented_and_typed(name):
    import dataclasses

    module = lab.load(name)
    fields = {f.name for f in dataclasses.fields(module.Config)}
    assert {"seed", "device", "quick"} <= fields
    assert isinstance(module.QUICK, dict) and set(module.QUICK) <= fields


def test_run_one_validates_every_setting_before_it_writes(tmp_path):
    """A bad override or a refused resume raises from the runner and leaves ``out`` as it was (nothing created);
    a run records its settings for --resume, and a finished run leaves no checkpoints folder."""
    from esc_course.config import ConfigError

    out = tmp_path / "run"
    with pytest.raises(ConfigError, match="--epochz"):
        lab.run_one("xor", ["--epochz=3"], quick=True, out=out)
    assert not out.exists()
    (out / lab.CHECKPOINTS).mkdir(parents=True)
    (out / lab.CHECKPOINTS / lab.RUN_SETTINGS).write_text(json.dumps({"lab": "xor", "argv": [], "quick": True,
                                                                      "config": {"epochs": 1}}))
    with pytest.raises(FileExistsError, match="--resume"):
        lab.run_one("xor", [], quick=True, out=out)
    with pytest.raises(ValueError, match="epochs: 1 then"):
        lab.run_one("xor", [], quick=True, out=out, resume=True)
    assert sorted(p.name for p in out.rglob("*")) == [lab.CHECKPOINTS, lab.RUN_SETTINGS]
    assert lab.resume_settings(out) == ([], True)
