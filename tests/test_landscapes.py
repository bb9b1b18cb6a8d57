"""2-D test functions and trajectories: minima, closed-form gradient-descent paths, the saddle and the valley."""

import pytest
import torch

from esc_course.optim.landscapes import LANDSCAPES, draw, landscapes_figure, trajectories, trajectory, values


@pytest.mark.parametrize("name", [n for n, land in LANDSCAPES.items() if land.minimum is not None])
def test_minimum_has_value_zero_and_zero_gradient(name):
    land = LANDSCAPES[name]
    p = torch.tensor(land.minimum, dtype=torch.float64, requires_grad=True)
    f = land(p[0], p[1])
    (grad,) = torch.autograd.grad(f, p)
    assert f.item() == pytest.approx(0.0, abs=1e-12)
    assert grad.abs().max() < 1e-9
    # and it is a minimum: nearby points are higher
    for dx, dy in [(1e-2, 0), (-1e-2, 0), (0, 1e-2), (0, -1e-2)]:
        assert land(p[0] + dx, p[1] + dy) > f


def test_saddle_has_zero_gradient_but_is_no_minimum():
    land = LANDSCAPES["saddle"]
    p = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(land(p[0], p[1]), p)
    assert grad.abs().max() == 0
    assert land(torch.tensor(0.1), torch.tensor(0.0)) > 0 > land(torch.tensor(0.0), torch.tensor(0.1))


@pytest.mark.parametrize("lr", [0.01, 0.3, 0.6])
def test_gradient_descent_on_the_bowl_follows_the_closed_form(lr):
    """f = (x-1)² + 2(y-1)²: each GD step multiplies x - 1 by (1 - 2η) and y - 1 by (1 - 4η)."""
    path = trajectory("bowl", "sgd", start=(0.0, 0.0), steps=20, lr=lr)
    assert path.shape == (21, 2) and path[0].tolist() == [0.0, 0.0]
    t = torch.arange(21, dtype=torch.float64)
    torch.testing.assert_close(path[:, 0], 1 - (1 - 2 * lr) ** t)
    torch.testing.assert_close(path[:, 1], 1 - (1 - 4 * lr) ** t)


def test_the_slides_step_sizes_are_too_small_right_and_too_large():
    final = {lr: values("bowl", trajectory("bowl", "sgd", steps=20, lr=lr))[-1].item() for lr in (0.01, 0.3, 0.6)}
    start = values("bowl", torch.zeros(1, 2, dtype=torch.float64)).item()
    assert final[0.01] > 0.2 * start      # too small: still far after 20 steps
    assert final[0.3] < 1e-10             # right: converged
    assert final[0.6] > 1e3 * start       # too large: diverged


def test_diverging_run_ends_at_the_last_finite_point():
    path = trajectory("bowl", "sgd", steps=600, lr=1.5)  # |1 - 4η| = 5: float64 overflows after ~440 steps
    assert 400 < len(path) < 601 and torch.isfinite(path).all()


def test_saddle_traps_sgd_but_not_adaptive_methods():
    def escape(name):
        return trajectory("saddle", name, steps=150, lr=0.01)[-1, 1].abs().item()

    stuck = escape("sgd")
    assert stuck < 0.05  # the gradient along y is ~0 near the saddle: SGD barely moves away
    for name in ("adagrad", "rmsprop", "adam"):
        assert escape(name) > 10 * stuck, name  # per-coordinate scaling blows the tiny y-gradient up


def test_momentum_goes_further_down_rosenbrocks_valley():
    def distance(name):
        return torch.linalg.vector_norm(trajectory("rosenbrock", name, steps=300, lr=1e-3)[-1] - 1.0).item()

    assert distance("momentum") < 0.5 * distance("sgd")
    assert distance("nesterov") < 0.5 * distance("sgd")


def test_callables_names_and_errors():
    path = trajectory(lambda x, y: (x - 2) ** 2 + y**2, "adam", start=(0.0, 1.0), steps=500, lr=0.05)
    assert torch.allclose(path[-1], torch.tensor([2.0, 0.0], dtype=torch.float64), atol=1e-2)
    with pytest.raises(ValueError, match="valid landscapes: bowl, rosenbrock"):
        trajectory("himmelblau", "sgd")
    with pytest.raises(ValueError, match="valid optimizers"):
        trajectory("bowl", "lbfgs")
    with pytest.raises(ValueError, match="start is required"):
        trajectory(lambda x, y: x * y, "sgd")
    with pytest.raises(ValueError, match="steps"):
        trajectory("bowl", "sgd", steps=-1)


def test_contour_figures():
    paths = {name: {"sgd": trajectory(name, "sgd", steps=5, lr=1e-3)} for name in LANDSCAPES}
    fig = landscapes_figure(paths)
    panels = [ax for ax in fig.axes if ax.axison]
    assert len(panels) == len(LANDSCAPES) and all(ax.get_legend() is None for ax in panels)
    legends = [ax.get_legend() for ax in fig.axes if not ax.axison and ax.get_legend() is not None]
    assert len(legends) == 1 and [t.get_text() for t in legends[0].get_texts()] == ["sgd"]  # one legend, off the data
    fig = landscapes_figure({name: paths[name] for name in list(LANDSCAPES)[:3]})  # no free panel: below them
    assert len(fig.legends) == 1 and all(ax.get_legend() is None for ax in fig.axes)
    from esc_course.viz import new_figure

    fig, (ax,) = new_figure()
    draw(ax, "bowl", {})
    assert ax.get_title().startswith("bowl")


def test_trajectories_at_once_equal_separate_runs():
    runs = {"sgd": ("sgd", {"lr": 1e-3}), "adam": ("adam", {"lr": 0.1}), "fast": ("sgd", {"lr": 0.01})}
    together = trajectories("rosenbrock", runs, steps=60)  # sgd at 0.01 diverges on Rosenbrock: cut short
    for label, (name, hp) in runs.items():
        alone = trajectory("rosenbrock", name, steps=60, **hp)
        torch.testing.assert_close(together[label], alone, atol=0, rtol=0)
    assert len(together["fast"]) < 61 and len(together["adam"]) == 61
