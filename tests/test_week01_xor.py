import pytest

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
