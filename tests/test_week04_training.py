"""Week 4's phenomena: a deep sigmoid net does not learn, bad inits vanish/saturate/explode, norms match torch and
rescue a deep ReLU net, BN tolerates a larger learning rate and smooths the loss along the gradient."""

import math

import pytest
import torch

from labs import week04_training as lab


@pytest.fixture(scope="module")
def result():
    return lab.run(lab.Config(quick=True, device="cpu"))


def _rows(table, **match):
    return [r for r in table if all(r[k] == v for k, v in match.items())]


@pytest.mark.parametrize("activation, scheme, verdict", [
    ("tanh", "normal_0.01", "vanishes"), ("relu", "normal_0.01", "vanishes"),
    ("tanh", "normal_1", "saturates"), ("relu", "normal_1", "explodes"),
    ("tanh", "xavier", "healthy"), ("relu", "he", "healthy"), ("relu", "xavier", "shrinks"),
])
def test_initialization_verdicts_on_random_data(activation, scheme, verdict):
    rows, hists = lab.init_forward_backward(activation, scheme, depth=10, width=128, samples=256, seed=0)
    summary = lab.init_verdict(rows)
    assert summary["verdict"] == verdict
    assert len(rows) == 10 and len(hists["act"]) == len(hists["grad"]) == 10
    if verdict == "vanishes":
        assert summary["last_act_std"] < 1e-5 and summary["grad_growth"] < 1e-5
    if verdict == "explodes":
        assert summary["last_act_std"] > 1e5
    if verdict == "saturates":
        assert summary["last_saturated"] > 0.8   # |tanh| > 0.95 almost everywhere
    if verdict == "healthy":
        assert 0.1 < summary["last_act_std"] < 10 and 0.1 < summary["grad_growth"] < 10


def test_deep_sigmoid_net_does_not_learn_and_relu_family_does(result):
    acc = {r["activation"]: r for r in result.tables["activations"]}
    assert acc["sigmoid"]["test_accuracy"] < 0.3
    assert acc["sigmoid"]["init_grad_first_to_last"] < 0.01      # the first layer gets almost no gradient
    for name in ("tanh", "relu", "elu", "maxout"):
        assert acc[name]["test_accuracy"] > 0.8, name
        assert acc[name]["init_grad_first_to_last"] > 0.3, name


def test_unit_statistics(result):
    units = result.tables["units"]
    assert max(r["dead"] for r in _rows(units, activation="relu")) > 0           # some ReLUs died
    for name in ("tanh", "sigmoid", "leaky_relu", "elu", "prelu", "maxout"):       # these cannot have zero gain
        assert all(r["dead"] == 0 for r in _rows(units, activation=name)), name
    assert all(r["saturated"] == 0 for r in _rows(units, activation="maxout"))
    relu_sat = sum(r["saturated"] for r in _rows(units, activation="relu")) / len(_rows(units, activation="relu"))
    assert 0.2 < relu_sat < 0.8                                                    # about half the inputs are < 0


def test_good_inits_train_and_bad_ones_do_not(result):
    rows = {(r["activation"], r["init"]): r for r in result.tables["init"]}
    assert rows[("relu", "normal_1")]["diverged"] or rows[("relu", "normal_1")]["test_accuracy"] < 0.2
    for key in [("tanh", "normal_0.01"), ("relu", "normal_0.01"), ("tanh", "normal_1")]:
        assert rows[key]["test_accuracy"] < 0.2, key
    assert rows[("tanh", "xavier")]["test_accuracy"] > 0.5 and rows[("relu", "he")]["test_accuracy"] > 0.4


def test_from_scratch_norms_match_torch(result):
    for r in result.tables["norm_check"]:
        for key in ("train_max_diff", "eval_max_diff", "grad_max_diff"):
            assert r[key] < 1e-4, (r["layer"], key)
        if r["layer"].startswith("BatchNorm"):
            assert r["running_mean_max_diff"] < 1e-5 and r["running_var_max_diff"] < 1e-5


def test_norms_rescue_the_deep_relu_net(result):
    acc = {r["norm"]: r["test_accuracy"] for r in result.tables["norm"]}
    assert acc["none"] < 0.5
    for kind in ("batch", "layer", "group"):
        assert acc[kind] > acc["none"] + 0.3, kind


def test_slides_2x2_example():
    ex = lab.batch_norm_2x2()
    assert ex["slides_mean"] == 6.0 and ex["slides_std"] == pytest.approx(6.37704, abs=1e-5)
    # the slides print 1.31141 for the 15; (15 - 6) / 6.37704 is 1.41131
    assert torch.allclose(torch.tensor(ex["slides_x_hat"]),
                          torch.tensor([[-0.62725, 0.0], [1.41131, -0.78406]]), atol=1e-5)
    assert ex["batch_norm_x_hat"] == [[-1.0, 1.0], [1.0, -1.0]]


def test_batch_norm_tolerates_a_larger_learning_rate(result):
    m = result.metrics
    top = max(result.config["vgg_lrs"])
    assert m["bn_accuracy_at_top_lr"] > m["plain_accuracy_at_top_lr"] + 0.2, top
    assert m["bn_accuracy"] > 0.85
    assert m["noisy_bn_accuracy"] > 0.6      # shifted, rescaled BN outputs every step, and it still learns


def test_batch_norm_smooths_the_landscape(result):
    m = result.metrics
    assert m["bn_mean_loss_range"] < 0.5 * m["plain_mean_loss_range"]
    assert m["bn_mean_grad_change_max"] < 0.5 * m["plain_mean_grad_change_max"]
    assert m["bn_mean_beta"] < m["plain_mean_beta"]
    steps = result.tables["landscape_steps"]
    assert len(_rows(steps, network="bn")) == len(_rows(steps, network="plain")) > 3


def test_results_table_and_figures(result):
    experiments = {r["experiment"] for r in result.tables["accuracy"]}
    assert experiments == {"activation", "init", "norm", "vgg"}
    assert len(result.tables["accuracy"]) == 7 + 8 + 4 + 2 * len(result.config["vgg_lrs"]) + 1
    assert {"landscape", "init_histograms", "init_stats", "units", "bn_learning_rates"} <= set(result.figures)
    assert all(math.isfinite(v) for k, v in result.metrics.items() if "relu_normal_1" not in k)


def test_with_norm_replaces_layers_and_rejects_unknown_names():
    from esc_course.models import MLP
    from esc_course.scratch.norm import LayerNorm

    model = lab.with_norm(MLP(64, hidden=(16, 16), out_features=10, batch_norm=True), "layer")
    assert sum(isinstance(m, LayerNorm) for m in model) == 2
    out = model(torch.randn(3, 64))
    assert out.shape == (3, 10) and torch.isfinite(out).all()
    with pytest.raises(ValueError, match="valid norms: none, batch, layer, group"):
        lab.with_norm(MLP(4, hidden=(4,), batch_norm=True), "instance")


@pytest.fixture(scope="module")
def digits():
    from esc_course.data.vision import loaders

    return loaders("digits", batch_size=64, val_fraction=0.25, device="cpu", seed=0)


def test_a_run_that_diverges_says_so(digits):
    # exercise 1 of the notebook: He init makes the deep Maxout MLP diverge at lr 0.02
    r = lab.activation_study(digits, activations=("maxout", "relu"), depth=6, init="he", epochs=2, device="cpu")
    assert set(r.diverged()) == {"maxout"} and "loss became nan at epoch" in r.diverged()["maxout"]
    row = next(x for x in r.rows if x["activation"] == "maxout")
    assert row["diverged"] is True and row["test_accuracy"] is None and row["final_train_loss"] is None
    assert all(u["activation"] == "relu" for u in r.units)       # no unit statistics for a diverged net
    assert set(lab.activation_figure(r).axes[0].get_legend_handles_labels()[1]) == {"relu"}


def test_studies_checkpoint_each_experiment_in_its_own_folder_and_resume(digits, tmp_path):
    kw = dict(norms=("none", "batch"), depth=3, epochs=2, device="cpu", checkpoint_dir=tmp_path)
    first = lab.norm_study(digits, **kw)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["norm-batch", "norm-none"]
    assert lab.norm_study(digits, **kw).rows == first.rows          # resumed from the finished checkpoints
    assert lab.norm_study(digits, **{**kw, "checkpoint_dir": None}).rows == first.rows   # and the same as fresh


def test_rerunning_a_study_gives_the_same_numbers(digits):
    a = lab.learning_rate_study(digits, lrs=(0.03,), widths=(4, 8, 8), epochs=1, device="cpu")
    b = lab.learning_rate_study(digits, lrs=(0.03,), widths=(4, 8, 8), epochs=1, device="cpu")
    assert a.rows == b.rows     # each run re-seeds its shuffling: no dependence on the runs made before


def test_the_measuring_loop_trains_as_fit_does_and_measures_every_k_steps(digits):
    plain = lab.train(lab.small_vgg((4, 8, 8), True, 0, "cpu"), digits, lr=0.03, epochs=2, device="cpu")
    measured = lab.train_measuring(lab.small_vgg((4, 8, 8), True, 0, "cpu"), digits, lr=0.03, epochs=2,
                                   step_sizes=[0.015, 0.03], every=4, device="cpu")
    steps_per_epoch = len(digits.train)
    assert [r["step"] for r in measured.measurements] == list(range(0, 2 * steps_per_epoch, 4))
    assert measured.run.test_accuracy == plain.test_accuracy        # measuring leaves training as it was
    assert measured.run.history["train_loss"] == pytest.approx(plain.history["train_loss"], rel=1e-5)
    assert measured.run.history["val_accuracy"] == plain.history["val_accuracy"]
    assert all(r["loss_range"] >= 0 and r["beta"] > 0 for r in measured.measurements)
    with pytest.raises(ValueError, match="every must be >= 1"):
        lab.train_measuring(lab.small_vgg((4, 8, 8), True, 0, "cpu"), digits, lr=0.03, epochs=1, step_sizes=[0.1],
                            every=0, device="cpu")


def test_bad_study_arguments_name_the_argument(digits):
    with pytest.raises(ValueError, match="lrs="):
        lab.learning_rate_study(digits, lrs=(), device="cpu")
    with pytest.raises(ValueError, match="activations="):
        lab.init_study(digits, activations=("sigmoid",), device="cpu")
    with pytest.raises(ValueError, match="unknown init scheme 'kaiming'"):
        lab.activation_study(digits, activations=("relu",), init="kaiming", device="cpu")


def test_the_claims_the_notebook_states_hold(result):
    rows = {(r["activation"], r["init"]): r for r in result.tables["init"]}
    for act in ("tanh", "relu"):   # N(0, 0.01^2): activations and gradients vanish (ten-thousandfold or more)
        r = rows[(act, "normal_0.01")]
        assert r["verdict"] == "vanishes" and r["last_act_std"] < 1e-4 and r["grad_growth"] < 1e-4
    sat = rows[("tanh", "normal_1")]   # saturated, and the gradient GROWS on its way back; no learning
    assert sat["verdict"] == "saturates" and sat["last_saturated"] > 0.5 and sat["grad_growth"] > 10
    assert sat["test_accuracy"] < 0.2
    boom = rows[("relu", "normal_1")]
    assert boom["verdict"] == "explodes" and boom["diverged"] and boom["test_accuracy"] is None
    assert rows[("tanh", "xavier")]["verdict"] == rows[("relu", "he")]["verdict"] == "healthy"
    assert rows[("relu", "xavier")]["verdict"] == "shrinks"
    assert not any(r["diverged"] for r in result.tables["activations"])   # quick: nothing to report as diverged
    relu = next(r for r in result.tables["activations"] if r["activation"] == "relu")
    assert 0.3 < relu["mean_saturated"] < 0.7                             # "about half"
    m = result.metrics
    for key in ("loss_range", "grad_change_max", "beta"):                 # "bn is smaller" on all three
        assert m[f"bn_mean_{key}"] < m[f"plain_mean_{key}"], key
    assert 0.1 + 0.3 < m["noisy_bn_accuracy"] < m["bn_accuracy"]          # far above chance, behind BN in quick


def test_standardized_inputs_train_faster_and_at_larger_learning_rates(result):
    rows = {(r["inputs"], r["lr"]): r for r in result.tables["input_normalization"]}
    small = [lr for lr in lab.Config().input_lrs if lr <= 0.03]
    for lr in small:  # the same network and steps: standardized inputs reach a lower training loss
        assert rows[("standardized", lr)]["final_train_loss"] < rows[("raw", lr)]["final_train_loss"], lr
    m = result.metrics
    assert m["standardized_input_largest_stable_lr"] > m["raw_input_largest_stable_lr"]


def test_sigmoid_outputs_give_same_sign_weight_gradients(result):
    m = result.metrics
    # dL/dW[i, :] = delta_i * h: one sign per row when the layer's inputs are all positive
    assert m["sigmoid_raw_second_layer_same_sign"] == 1.0 and m["sigmoid_standardized_second_layer_same_sign"] == 1.0
    assert m["tanh_standardized_second_layer_same_sign"] < 0.05       # zero-centred outputs: mixed signs
    assert m["tanh_raw_first_layer_same_sign"] == 1.0                  # raw pixels are all >= 0
    assert m["tanh_standardized_first_layer_same_sign"] < 0.05


def test_batch_norm_gamma_and_beta_learn_the_identity(result):
    fit = lab.bn_identity_study(steps=200)
    assert fit.max_error < 0.15 and fit.losses[-1] < 0.01 * fit.losses[0]
    assert result.metrics["bn_identity_max_error"] == fit.max_error
    assert [r["target_std"] for r in result.tables["bn_identity"]] == [2.0, 0.5, 4.0]
    with pytest.raises(ValueError, match="means="):
        lab.bn_identity_study(means=(1.0,), stds=(1.0, 2.0))
