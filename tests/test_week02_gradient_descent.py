"""Week 2's phenomena, asserted on the quick run: the losses match torch, the slides' three step sizes behave as
the slides say, and per step the full batch wins while per sample seen stochastic gradient descent does."""

import pytest

from labs import week02_gradient_descent as lab


@pytest.fixture(scope="module")
def result():
    return lab.run(lab.Config(quick=True))


def test_losses_match_torch_and_cross_entropy_is_kl_plus_entropy(result):
    m = result.metrics
    assert m["loss_max_abs_diff_vs_torch"] < 1e-12
    assert m["cross_entropy_minus_kl_plus_entropy"] < 1e-12 and m["soft_label_entropy"] > 0.1
    names = {r["loss"] for r in result.tables["losses_vs_torch"]}
    assert {"mse", "huber", "cross_entropy", "binary_cross_entropy", "kl_divergence"} <= names
    softmax = [r["value"] for r in result.tables["output_activations"] if r["output"] == "softmax"]
    assert sum(softmax) == pytest.approx(1.0) and softmax == sorted(softmax, reverse=True)


def test_step_sizes_too_small_right_too_large(result):
    m = result.metrics
    start = result.tables["gradient_descent"][0]["start_loss"]
    assert result.tables["gradient_descent"][0]["steps"] == 20
    assert m["gd_final_loss_lr0.01"] > 0.2 * start and m["gd_overshoots_lr0.01"] == 0   # too small: creeps
    assert m["gd_final_loss_lr0.3"] < 1e-10 and m["gd_distance_lr0.3"] < 1e-6            # right
    assert m["gd_final_loss_lr0.6"] > 1e3 * start and m["gd_overshoots_lr0.6"] == 20     # too large: diverges
    verdicts = [r["verdict"] for r in result.tables["gradient_descent"]]
    assert verdicts[0].startswith("too small") and verdicts[1].startswith("right")
    assert verdicts[2].startswith("too large")


def test_batch_vs_minibatch_vs_stochastic(result):
    m, n = result.metrics, result.config["samples"]
    # equal samples seen (one epoch): more updates win
    assert m["stochastic_loss_after_1_epoch"] < m["minibatch_loss_after_1_epoch"] < m["batch_loss_after_1_epoch"]
    # equal number of updates: exact gradients win, noisy ones hover above the minimum
    assert m[f"batch_loss_after_{n}_steps"] < m[f"stochastic_loss_after_{n}_steps"]
    assert m[f"batch_loss_after_{n}_steps"] < 1.1 * m["noise_floor"]
    curves = result.history
    assert curves["regression_stochastic"]["steps"][1] == n and curves["regression_batch"]["steps"][1] == 1
    assert set(result.figures) == {"gd_contours", "gd_loss", "batch_vs_minibatch", "loss_functions"}


def test_quick_mode_is_fast(result):
    assert result.seconds < 20  # ~2 s on an idle 2-core CPU; generous for a loaded machine


def test_overrides_reach_the_run():
    r = lab.run(lab.Config(quick=True, gd_lrs=(0.1, 0.55), gd_steps=5, samples=64, epochs=1))
    assert [row["lr"] for row in r.tables["gradient_descent"]] == [0.1, 0.55]
    assert r.tables["gradient_descent"][0]["steps"] == 5 and "gd_final_loss_lr0.55" in r.metrics
    assert r.tables["batch_sizes"][0]["batch_size"] == 64
