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


def test_the_runner_checks_every_setting_before_it_writes_anything(tmp_path):
    from esc_course.config import ConfigError

    runs = tmp_path / "runs"
    out = runs / "20261202-150000" / "xor"  # where `esc-course lab run xor` writes
    with pytest.raises(ConfigError, match="--epochz"):
        lab.run_one("xor", ["--epochz=3"], quick=True, out=out)
    assert not out.exists()
    saved = out / lab.CHECKPOINTS / lab.RUN_SETTINGS  # what a killed run leaves for --resume
    saved.parent.mkdir(parents=True)
    cfg = lab.make_config("xor", ["--epochs=7"], quick=True)
    saved.write_text(json.dumps({"lab": "xor", "argv": ["--epochs=7"], "quick": True,
                                 "config": dataclasses_asdict(cfg)}))
    with pytest.raises(FileExistsError, match="--resume"):
        lab.run_one("xor", ["--epochs=7"], quick=True, out=out)
    with pytest.raises(ValueError, match="epochs: 7 then, 8 now"):
        lab.run_one("xor", ["--epochs=8"], quick=True, out=out, resume=True)
    assert sorted(p.name for p in out.rglob("*")) == [lab.CHECKPOINTS, lab.RUN_SETTINGS]
    assert lab.resume_settings(out) == (["--epochs=7"], True)
    assert lab.unfinished_run("xor", root=runs) == lab.unfinished_run("all", root=runs) == out.parent
    assert lab.unfinished_run("cnn", root=runs) is None


def dataclasses_asdict(cfg):
    import dataclasses

    from esc_course.runs import jsonable

    return jsonable(dataclasses.asdict(cfg))
