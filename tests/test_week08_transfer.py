"""Week 8 (transfer learning): the quick run shows the slides' phenomena, over several seeds; weights files the lab
or the test saved, torchvision backbones built with weights=None, an ImageFolder, and the offline message."""

import json

import pytest
import torch

from esc_course.checkpoint import save_weights
from esc_course.models import transfer as tl
from labs import week08_transfer as W

SEEDS = (0, 1, 2)
_RUNS = {}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Quick runs by seed (each run once per module); seed 0 also writes its folder."""
    def get(seed):
        if seed not in _RUNS:
            out = tmp_path_factory.mktemp(f"transfer{seed}")
            _RUNS[seed] = (W.run(W.Config(quick=True, seed=seed), out=out), out)
        return _RUNS[seed]

    return get


@pytest.mark.parametrize("seed", SEEDS)
def test_finetuning_beats_training_from_scratch_with_little_data(runs, seed):
    m = runs(seed)[0].metrics
    assert m["smallest_size"] == 15
    assert m["finetune_gain_little"] > 0.1  # measured 0.26 to 0.45 over seeds 0-5
    assert m["similar_full_finetune_little"] > m["scratch_little"] + 0.1
    assert m["similar_partial_finetune_little"] > m["scratch_little"] + 0.1


@pytest.mark.parametrize("seed", SEEDS)
def test_features_of_a_similar_source_transfer_and_those_of_a_different_one_do_not(runs, seed):
    m = runs(seed)[0].metrics
    assert m["source_accuracy_similar"] > 0.6 and m["source_accuracy_different"] > 0.6  # both were learned
    # a linear classifier on top: the shapes' features separate new shapes; the digits' features barely do
    assert m["similar_linear_probe_little"] > m["different_linear_probe_little"] + 0.1
    assert m["similar_linear_probe_lot"] > m["different_linear_probe_lot"] + 0.1


@pytest.mark.parametrize("seed", SEEDS)
def test_with_more_data_fine_tuning_beats_the_linear_probe(runs, seed):
    m = runs(seed)[0].metrics
    best_finetune = max(m["similar_partial_finetune_lot"], m["similar_full_finetune_lot"])
    assert best_finetune > m["similar_linear_probe_lot"]
    assert m["different_full_finetune_lot"] > m["different_linear_probe_lot"] + 0.05  # different: train more layers
    assert m["scratch_lot"] > m["scratch_little"] + 0.05


def test_tables_cases_and_files(runs):
    result, out = runs(0)
    table = result.tables["results"]
    assert {(r["size"], r["source"], r["strategy"]) for r in table} == {
        (n, s, k) for n in (15, 300) for s in ("similar", "different") for k in W.STRATEGIES[:-1]
    } | {(n, "none", "scratch") for n in (15, 300)}
    cases = result.tables["cases"]
    assert [(c["similarity"], c["data"].split(" (")[0]) for c in cases] == [
        ("similar", "little"), ("similar", "a lot"), ("different", "little"), ("different", "a lot")]
    assert cases[0]["slides_advice"] == "Use linear classifier on top layer"
    assert cases[3]["advice_strategy"] == "full_finetune"
    for c in cases:
        assert c["best_accuracy"] >= max(c["advice_accuracy"], c["scratch_accuracy"])
    # discriminative learning rates: the head at lr, each earlier stage lr_decay times slower
    rates = [g["lr"] for g in result.tables["lr_groups"]]
    assert rates[-1] == result.config["lr"] and rates == sorted(rates)
    assert rates[-2] == pytest.approx(rates[-1] * result.config["lr_decay"])
    # the pretrained backbones were saved as safetensors in the run folder and listed
    files = sorted(p.name for p in out.glob("*.safetensors"))
    assert files == ["backbone_different.safetensors", "backbone_similar.safetensors"]
    assert [r["file"] for r in result.tables["sources"]] == ["backbone_similar.safetensors",
                                                             "backbone_different.safetensors"]
    data = json.loads((out / "results.json").read_text())
    assert set(data["figures"]) == {"accuracy_vs_size.png", "examples.png", "pretraining.png"}
    assert "pretrain_similar" in data["history"]
    # the probes train a few dozen parameters, fine-tuning all of them
    by = {(r["source"], r["strategy"]): r["trainable_params"] for r in table if r["size"] == 15}
    assert by["similar", "linear_probe"] < by["similar", "partial_finetune"] < by["similar", "full_finetune"]
    assert by["similar", "full_finetune"] == by["none", "scratch"]


def test_a_saved_backbone_transfers_from_its_file(runs):
    _, out = runs(0)
    cfg = W.Config(quick=True, weights=str(out / "backbone_similar.safetensors"), sizes=(15,))
    result = W.run(cfg)
    m = result.metrics
    assert result.tables["sources"] == [] and "pretraining" not in result.figures  # nothing was pretrained
    assert m["backbone_similar_full_finetune_little"] > m["scratch_little"] + 0.1
    assert result.tables["cases"][0]["similarity"] == "unknown"


def _image_folder(root, per_class=12):
    """A small ImageFolder of PNGs: three shape classes, as the club's practice data would come."""
    from PIL import Image

    from esc_course.data.shapes import SHAPE_CLASSES, shapes

    x, y = shapes(200, size=16, seed=5)
    for k in (3, 4, 5):
        folder = root / SHAPE_CLASSES[k]
        folder.mkdir(parents=True)
        for i, img in enumerate(x[y == k][:per_class]):
            Image.fromarray((img.permute(1, 2, 0) * 255).round().byte().numpy()).save(folder / f"{i}.png")
    return root


def test_the_club_practice_data_as_an_image_folder(runs, tmp_path):
    _, out = runs(0)
    root = _image_folder(tmp_path / "practice")
    cfg = W.Config(quick=True, data_dir=str(root), weights=str(out / "backbone_similar.safetensors"), sizes=(6, 30))
    result = W.run(cfg)
    assert result.metrics["smallest_size"] == 6
    assert result.metrics["largest_size"] < 36  # the folder's own test split (20 % of each class) is held out
    assert {r["source"] for r in result.tables["results"]} == {"backbone_similar", "none"}
    assert all(0.0 <= r["accuracy"] <= 1.0 for r in result.tables["results"])


def test_a_torchvision_backbone_from_a_file_the_test_saved(tmp_path):
    torch.manual_seed(0)
    model = tl.backbone("mobilenet_v3_small", weights=None)  # no download: random weights, saved here
    path = save_weights(model, tmp_path / "mobilenet.safetensors")
    cfg = W.Config(quick=True, backbone="mobilenet_v3_small", weights=str(path), image_size=32, sizes=(15,),
                   finetune_steps=2, probe_epochs=5)
    result = W.run(cfg)
    stages = {r["strategy"]: r["trainable_params"] for r in result.tables["results"]}
    assert stages["full_finetune"] == stages["scratch"] > stages["partial_finetune"] > stages["linear_probe"]
    assert [g["stage"] for g in result.tables["lr_groups"]][-2:] == ["classifier.0", "classifier.3"]


def test_torchvision_weights_offline_say_where_the_file_belongs(torch_home):
    with pytest.raises(tl.WeightsUnavailableError, match="resnet18-f37072fd.pth") as err:
        W.run(W.Config(quick=True, backbone="resnet18", weights="DEFAULT"))
    assert str(torch_home / "hub" / "checkpoints") in str(err.value)


@pytest.mark.parametrize("overrides, match", [
    (dict(weights="DEFAULT"), "no published pretrained weights"),
    (dict(weights="missing/backbone.safetensors"), "no such file"),
    (dict(backbone="vgg99"), "valid backbones"),
    (dict(repeats=0), "--repeats=0"),
    (dict(sizes=(2,)), "at least the number of classes"),
    (dict(partial_from="layer9"), "--partial_from='layer9'.*valid: stem.0, stem.1, stages.0"),
])
def test_bad_settings_are_clear_errors(overrides, match):
    with pytest.raises((ValueError, FileNotFoundError), match=match):
        W.run(W.Config(quick=True, pretrain_steps=1, finetune_steps=1, probe_epochs=1, **overrides))


def test_command_line_overrides_reach_the_config():
    from esc_course import lab

    cfg = lab.make_config("transfer", ["--backbone=resnet18", "--weights=DEFAULT", "--data-dir=practice",
                                        "--sizes=10,100", "--widths=8,16"], quick=True)
    assert (cfg.backbone, cfg.weights, cfg.data_dir, cfg.sizes, cfg.widths) == (
        "resnet18", "DEFAULT", "practice", (10, 100), (8, 16))
    assert W.image_size(cfg) == 64 and W.image_size(W.Config()) == 16


def test_the_claims_the_notebook_states_hold(runs):
    """The notebook prints slide_claims for its run; on the quick run (seeds 0-2) every claim holds."""
    for seed in SEEDS:
        result = runs(seed)[0]
        table = W.TransferResult(result.tables["runs"], result.tables["results"], result.tables["cases"],
                                 result.tables["lr_groups"])
        claims = W.slide_claims(table)
        assert len(claims) == 4
        assert all(c["holds"] for c in claims), (seed, [c for c in claims if not c["holds"]])


def test_each_training_run_checkpoints_into_its_own_named_folder(runs):
    _, out = runs(0)
    folders = {p.name for p in (out / "checkpoints").iterdir()}
    assert {"pretrain-similar", "pretrain-different", "none-scratch-n15-r0", "similar-full_finetune-n300-r0",
            "different-partial_finetune-n15-r0"} <= folders
    assert not any("linear_probe" in f for f in folders)  # the probes train a Linear layer, not through fit


def test_a_study_resumes_its_finished_runs(tmp_path):
    data = W.transfer_data()
    kwargs = dict(widths=(4, 8, 8), sizes=(15,), repeats=1, finetune_steps=3, probe_epochs=2,
                  checkpoint_dir=tmp_path / "ckpt")
    pre = W.pretrain_study(data.sources, widths=(4, 8, 8), steps=3, folder=tmp_path)
    first = W.transfer_study(pre.files, data.target, **kwargs)
    again = W.transfer_study(pre.files, data.target, **kwargs)
    assert [r["accuracy"] for r in again.runs] == [r["accuracy"] for r in first.runs]
    assert (tmp_path / "ckpt" / "similar-full_finetune-n15-r0" / "last.safetensors").is_file()
