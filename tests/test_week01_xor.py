import pytest

from esc_course.data.toy import xor
from labs import week01_xor


@pytest.mark.parametrize("seed", range(5))
def test_mlp_solves_xor_and_perceptron_cannot(seed):
    result = week01_xor.run(week01_xor.Config(quick=True, seed=seed))
    m = result.metrics
    assert m["mlp_accuracy"] == 1.0
    assert m["perceptron_accuracy"] <= 0.75  # one straight line gets at most 3 of the 4 points
    assert m["value_mlp_accuracy"] == 1.0


def test_backprop_example_matches_the_slides():
    grads = week01_xor.backprop_example()
    assert grads == {"f": -12.0, "df_dx": -4.0, "df_dy": -4.0, "df_dz": 3.0}


def test_overrides_reach_the_run():
    result = week01_xor.run(week01_xor.Config(quick=True, hidden=4, activation="relu", restarts=2))
    assert [r["model"] for r in result.tables["models"]] == ["perceptron", "mlp_2_2_1", "mlp_2_4_1"]
    assert len(result.tables["mlp_2_2_1_restarts"]) == 2
    assert result.config["activation"] == "relu" and result.config["epochs"] == week01_xor.QUICK["epochs"]


def test_studies_stand_alone_and_name_their_checkpoints(tmp_path):
    x, y = xor()
    models = week01_xor.model_study(x, y, hidden=4, epochs=20, checkpoint_dir=tmp_path)
    restarts = week01_xor.restart_study(x, y, restarts=2, epochs=20, checkpoint_dir=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "model-mlp_2_2_1", "model-mlp_2_4_1", "model-perceptron", "restart-seed1000", "restart-seed1001"]
    assert models.wide == "mlp_2_4_1" and [r["model"] for r in models.rows][:2] == ["perceptron", "mlp_2_2_1"]
    again = week01_xor.model_study(x, y, hidden=4, epochs=20, checkpoint_dir=tmp_path)  # resumes: same numbers
    assert again.rows == models.rows
    assert week01_xor.restart_study(x, y, restarts=2, epochs=20, checkpoint_dir=tmp_path).rows == restarts.rows
    assert restarts.solved == sum(r["accuracy"] == 1.0 for r in restarts.rows)
    for fig in (week01_xor.decision_boundary_figure(models), week01_xor.loss_curve_figure(models),
                week01_xor.restart_figure(restarts)):
        assert fig.axes


def test_study_arguments_are_checked():
    x, y = xor()
    with pytest.raises(ValueError, match="restarts=-1: expected an integer >= 0"):
        week01_xor.restart_study(x, y, restarts=-1)
    none = week01_xor.restart_study(x, y, restarts=0)
    assert none.rows == [] and none.solved_share == 0.0 and week01_xor.restart_figure(none).axes
    with pytest.raises(ValueError, match="epochs=-1"):
        week01_xor.model_study(x, y, epochs=-1)
    with pytest.raises(ValueError, match="steps=0"):
        week01_xor.value_mlp_study(steps=0)


def test_the_claims_the_notebook_states_hold():
    """Week 1's notebook, on the quick run: the perceptron gets at most 3 of 4 points and, trained with
    cross-entropy, gives every point probability ~0.5 (loss ln 2); gradcheck passes x*x and catches the wrong
    backward; sigmoid's and tanh's derivatives vanish at ±5, ReLU's is 1 for x > 0; the run's captions match."""
    import math

    import torch

    from esc_course.models.activations import activation_curves
    from esc_course.scratch import gradcheck

    cfg = week01_xor.Config(quick=True)
    result = week01_xor.run(cfg)
    perceptron = result.tables["models"][0]
    assert perceptron["model"] == "perceptron" and perceptron["points_right"] <= 3
    assert perceptron["p_max"] - perceptron["p_min"] < 0.05
    assert perceptron["final_loss"] == pytest.approx(math.log(2), abs=1e-3)
    assert result.metrics["mlp_2_2_1_solved_share"] == sum(r["solved"] for r in result.tables["mlp_2_2_1_restarts"]) \
        / len(result.tables["mlp_2_2_1_restarts"])
    assert set(result.captions) == set(result.figures) | {"models", "mlp_2_2_1_restarts", "universal_approximation",
                                                         "affine_backward", "gates"}
    assert f"{perceptron['points_right']} of 4" in result.captions["models"]

    w = torch.randn(5, generator=torch.Generator().manual_seed(0))

    class WrongSquare(torch.autograd.Function):
        @staticmethod
        def forward(ctx, v):
            ctx.save_for_backward(v)
            return v * v

        @staticmethod
        def backward(ctx, grad):
            (v,) = ctx.saved_tensors
            return grad * v

    assert gradcheck(lambda v: v * v, [w]).passed and not gradcheck(WrongSquare.apply, [w]).passed

    curves = activation_curves(["sigmoid", "tanh", "relu"])
    for name, limit in (("sigmoid", 0.01), ("tanh", 0.001)):
        _, _, d = curves[name]
        assert d[0] < limit and d[-1] < limit
    assert curves["sigmoid"][2].max() == pytest.approx(0.25)
    xs, _, d = curves["relu"]
    assert torch.all(d[xs > 0] == 1)


@pytest.fixture(scope="module")
def quick_run():
    return week01_xor.run(week01_xor.Config(quick=True))


def test_universal_approximation_error_falls_as_width_grows(quick_run):
    """Issue 18 item 2, on the quick run: one hidden layer fits better the wider it is (averaged over a smooth
    function, a step and sin(4πx)); the smooth function is fitted almost exactly by the widest net."""
    m, widths = quick_run.metrics, quick_run.config["ua_widths"]
    mse = [m[f"universal_mse_w{w}"] for w in widths]
    assert mse[-1] < 0.5 * mse[0]
    half = len(mse) // 2
    assert max(mse[half:]) < min(mse[:half])  # every wider net beats every narrower one
    assert m[f"universal_mse_smooth_w{widths[-1]}"] < 1e-3 < m["universal_mse_smooth_w1"]
    rows = quick_run.tables["universal_approximation"]
    deep = rows[-1]
    assert deep["net"] == "1-12-12-1" and deep["params"] == rows[-2]["params"] == 3 * widths[-1] + 1
    assert {"universal_error", "universal_fits"} <= set(quick_run.figures)


def test_affine_backward_by_hand_and_the_gate_patterns(quick_run):
    """Issue 18 item 5: dL/dX = G W^T, dL/dW = X^T G, dL/db = sum of G equal autograd's; add distributes, multiply
    swaps, max routes (a = 3, b = -4, upstream gradient 2)."""
    m = quick_run.metrics
    assert m["affine_backward_max_abs_diff"] < 1e-12
    assert [r["shape"] for r in quick_run.tables["affine_backward"]] == [(4, 3), (3, 2), (2,)]
    assert (m["gate_add_grad_a"], m["gate_add_grad_b"]) == (2.0, 2.0)
    assert (m["gate_multiply_grad_a"], m["gate_multiply_grad_b"]) == (2.0 * -4.0, 2.0 * 3.0)
    assert (m["gate_max_grad_a"], m["gate_max_grad_b"]) == (2.0, 0.0)
    assert week01_xor.gate_study(a=-1.0, b=5.0)[2]["grad_b"] == 2.0  # the router follows the larger input
    with pytest.raises(ValueError, match="widths="):
        week01_xor.universal_study(widths=(0,))
    with pytest.raises(ValueError, match="functions="):
        week01_xor.universal_study(functions=("cubic",))
    with pytest.raises(ValueError, match="n_in=0"):
        week01_xor.affine_backward_study(n_in=0)
