"""Week 3 lab: quick mode learns the digits, the table shows the slides' pattern, the data options work, the
studies are callable one by one, and the claims the notebook states hold."""

import pytest
import torch

import labs.week03_cnn as lab
from esc_course.data.real import DataNotFoundError
from esc_course.models import count_parameters
from esc_course.models.cnn import SmallVGG


@pytest.fixture(scope="module")
def quick():
    return lab.run(lab.Config(quick=True, device="cpu"))


@pytest.mark.slow
def test_quick_mode_learns_the_digits(quick):
    m = quick.metrics
    assert m["test_accuracy"] >= 0.95
    assert m["params"] == count_parameters(SmallVGG(in_channels=1, num_classes=10, batch_norm=True))
    assert m["scratch_conv_max_error"] < 1e-5 and m["slide_example_correct"] == 1.0
    assert quick.seconds < 60
    vgg = quick.history["vgg"]
    assert vgg["train_loss"][-1] < 0.5 * vgg["train_loss"][0]
    assert [r["model"] for r in quick.tables["models"]] == list(lab.MODELS)   # quick mode trains all five
    assert {"convolution_example", "filters", "feature_maps", "confusion_matrix", "misclassified",
            "training_curves"} <= set(quick.figures)


@pytest.mark.slow
def test_the_table_shows_conv_compute_and_fc_parameters(quick):
    rows = {r["model"]: r for r in quick.tables["complexity"]}
    assert {"vgg", "lenet5", "AlexNet", "VGG-16", "VGG-19", "GoogLeNet", "NiN", "ResNet-18"} <= set(rows)
    for name in ("AlexNet", "VGG-16"):  # the slides: FC layers hold the parameters, conv layers the compute
        assert rows[name]["fc_params_pct"] > 85 and rows[name]["conv_macs_pct"] > 90
    assert rows["ResNet-18"]["fc_params_pct"] < 5  # global average pooling: one small FC layer
    assert rows["vgg"]["fc_params_pct"] < 2 and rows["lenet5"]["fc_params_pct"] > 80
    kinds = {r["kind"] for r in quick.tables["layer_types"]}
    assert {"conv", "fc", "norm"} <= kinds
    assert quick.tables["slide_example"][0] == {"row": 0, "col0": 4.0, "col1": 3.0, "col2": 4.0}


def test_the_slides_missing_rows_match_the_slides_table():
    from esc_course.models.complexity import complexity_table

    rows = {r["model"]: r for r in complexity_table({}, ("VGG-19", "GoogLeNet", "NiN"))}
    # the slides (002): VGG-19 144 M / 13.9 % conv / 19647 M MACs; NIN 7.6 M / 100 % conv; GoogLeNet 6.9 M / 85.1 %
    assert rows["VGG-19"]["params_M"] == pytest.approx(143.7, abs=0.1) and rows["VGG-19"]["fc_params_pct"] > 85
    assert rows["VGG-19"]["macs_M"] == pytest.approx(19647, rel=0.01)
    assert rows["NiN"]["params_M"] == pytest.approx(7.6, abs=0.05) and rows["NiN"]["conv_params_pct"] == 100
    assert rows["GoogLeNet"]["params_M"] == pytest.approx(6.6, abs=0.1) and rows["GoogLeNet"]["conv_macs_pct"] > 99
    assert 80 < rows["GoogLeNet"]["conv_params_pct"] < 90


def test_an_image_folder_from_data_dir(tmp_path):
    from test_data_real import write_pngs

    write_pngs(tmp_path, per_class=8)
    result = lab.run(lab.Config(data_dir=str(tmp_path), epochs=1, compare=(), image_size=12, device="cpu",
                                batch_size=8))
    assert result.config["data_dir"] == str(tmp_path)
    assert set(result.metrics) >= {"test_accuracy", "params"}
    cm_fig = result.figures["confusion_matrix"]
    assert cm_fig.axes[0].get_xticklabels()[0].get_text() == "cat"


def test_mnist_format_files_from_data_dir(tmp_path):
    from test_data_real import fake_mnist

    fake_mnist(tmp_path, n_train=80, n_test=20)
    result = lab.run(lab.Config(dataset="mnist", data_dir=str(tmp_path), model="lenet5", compare=(), epochs=1, batch_size=32,
                                device="cpu"))
    assert result.metrics["params"] == 61_706  # the classic LeNet-5 on 28x28
    assert result.tables["complexity"][0]["input"] == "1x28x28"


def test_missing_data_says_how_to_get_it(tmp_path):
    with pytest.raises(DataNotFoundError, match="esc-course data fetch cifar10"):
        lab.run(lab.Config(dataset="cifar10", data_dir=str(tmp_path), device="cpu"))


def test_unknown_model_lists_the_valid_ones():
    with pytest.raises(ValueError, match="valid models: lenet5, vgg"):
        lab.run(lab.Config(model="alexnet", epochs=1, compare=(), device="cpu"))


def test_scratch_conv_check_is_exact():
    assert lab.scratch_conv_check(0) < 1e-5
    assert lab.scratch_conv_check(1) < 1e-5


def test_the_claims_the_notebook_states_hold(quick):
    cost = lab.complexity_study()
    assert [r["model"] for r in cost.rows][:5] == list(lab.MODELS)  # every CNN is counted, trained or not
    assert cost.row("nin")["fc_params_pct"] == 0                     # NiN: no FC layer at all
    for name in ("vgg", "resnet", "ResNet-18"):                       # global average pooling: a small FC layer
        assert cost.row(name)["fc_params_pct"] < 5, name
    assert cost.rows == quick.tables["complexity"]                   # the lab's table is the study's
    conv = lab.convolution_study()
    assert conv.slide_correct and conv.scratch_max_error < 1e-5


def test_training_study_checkpoints_each_model_in_its_own_folder(tmp_path):
    from esc_course.data.vision import loaders

    data = loaders("digits", batch_size=64, val_fraction=0.2, device="cpu", seed=0)
    first = lab.training_study(data, models=("lenet5", "separable"), epochs=1, device="cpu", checkpoint_dir=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train-lenet5", "train-separable"]
    assert isinstance(first, lab.TrainingResult) and first.first == "lenet5"
    again = lab.training_study(data, models=("lenet5", "separable"), epochs=1, device="cpu", checkpoint_dir=tmp_path)
    assert [r["test_accuracy"] for r in again.rows] == [r["test_accuracy"] for r in first.rows]  # resumed, done
    preds = lab.prediction_study(first.models["lenet5"], data)
    assert preds.accuracy == pytest.approx(first.accuracy("lenet5"))
    assert int(preds.confusion.sum()) == len(preds.y) and preds.errors == int((preds.pred != preds.y).sum())
    with pytest.raises(ValueError, match="models=.*valid models: lenet5, vgg"):
        lab.training_study(data, models=("alexnet",), epochs=1, device="cpu")


def test_quick_run_with_out_writes_captions_and_checkpoints(tmp_path):
    import json

    result = lab.run(lab.Config(quick=True, device="cpu", compare=(), epochs=1), out=tmp_path)
    saved = json.loads((tmp_path / "results.json").read_text())
    assert set(result.figures) <= set(saved["captions"])
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["train-vgg"]


def test_pooling_makes_the_features_less_sensitive_to_a_shift(quick):
    rows = quick.tables["invariance"]
    assert [r["shift"] for r in rows] == [1, 2, 3]
    for r in rows:  # each pooling stage changes less than the stage before it, at every shift
        assert r["conv_change"] > r["max_pooled_change"] > r["global_pooled_change"], r
    assert rows[0]["agreement"] > rows[-1]["agreement"]      # 3 pixels of an 8-pixel digit: the class changes
    assert rows[0]["output_change"] < rows[0]["conv_change"]  # after 1 pixel the output moves least
    m = quick.metrics
    assert m["shift1_conv_change"] == rows[0]["conv_change"] and 0 <= m["shift3_agreement"] <= 1


def test_shift_images_moves_right_and_rejects_bad_shifts():
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    assert lab.shift_images(x, 1)[0, 0, 0].tolist() == [0.0, 0.0, 1.0, 2.0]
    with pytest.raises(ValueError, match="pixels=4"):
        lab.shift_images(x, 4)
