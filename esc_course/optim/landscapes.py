"""2-D test functions for optimizers, ``trajectory`` (the path an optimizer takes on one), and contour plots.

    path = trajectory("rosenbrock", "adam", steps=300, lr=0.05)     # (steps + 1, 2) tensor of (x, y)

The landscapes:
- ``bowl``: the slides' gradient-descent example, minimum 0 at (1, 1), started at (0, 0). The slides do not print
  the formula; this is f = (x - 1)² + 2 (y - 1)². The factor 2 matters: its curvatures are 2 and 4, so plain
  gradient descent converges for η < 2/4 = 0.5 and diverges above. The slides' three step sizes then show what
  they show: η = 0.01 too small, η = 0.3 right, η = 0.6 too large (the y-coordinate overshoots by a growing
  factor |1 - 4η| = 1.4 each step). On the round bowl (x - 1)² + (y - 1)², η = 0.6 would still converge.
- ``rosenbrock`` (1960): a curved, flat-bottomed valley, minimum 0 at (1, 1).
- ``beale``: flat plateaus and steep walls, minimum 0 at (3, 0.5).
- ``saddle``: x² - y², a saddle point at (0, 0) with zero gradient, unbounded below along y.
- ``ill_conditioned``: (x² + 20 y²) / 2, condition number 20 (the slides' "poor conditioning"): plain SGD zig-zags
  across the narrow direction while crawling along the long one. It is axis-aligned, which per-coordinate methods
  (AdaGrad, RMSProp, Adam) undo exactly.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch

from esc_course.optim.optimizers import get_optimizer

Fn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Landscape:
    """A function f(x, y) of two tensors (elementwise), with where to start, its minimum and a plot window."""

    name: str
    fn: Fn
    formula: str
    start: tuple[float, float]
    minimum: tuple[float, float] | None  # the global minimiser; None when unbounded below
    xlim: tuple[float, float]
    ylim: tuple[float, float]
    log_levels: bool = False  # contour levels spaced on a log scale (for functions spanning many decades)

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.fn(x, y)


def bowl(x, y):
    return (x - 1) ** 2 + 2 * (y - 1) ** 2


def rosenbrock(x, y):
    return (1 - x) ** 2 + 100 * (y - x**2) ** 2


def beale(x, y):
    return (1.5 - x + x * y) ** 2 + (2.25 - x + x * y**2) ** 2 + (2.625 - x + x * y**3) ** 2


def saddle(x, y):
    return x**2 - y**2


def ill_conditioned(x, y):
    return (x**2 + 20 * y**2) / 2


LANDSCAPES: dict[str, Landscape] = {
    "bowl": Landscape("bowl", bowl, "(x-1)² + 2(y-1)²", (0.0, 0.0), (1.0, 1.0), (-0.5, 2.5), (-0.5, 2.5)),
    "rosenbrock": Landscape("rosenbrock", rosenbrock, "(1-x)² + 100(y-x²)²", (-1.5, 2.0), (1.0, 1.0),
                            (-2.0, 2.0), (-1.0, 3.0), log_levels=True),
    "beale": Landscape("beale", beale, "Beale", (1.0, 1.5), (3.0, 0.5), (-1.0, 4.0), (-1.5, 2.0), log_levels=True),
    "saddle": Landscape("saddle", saddle, "x² - y²", (-1.0, 1e-3), None, (-1.5, 1.5), (-1.5, 1.5)),
    "ill_conditioned": Landscape("ill_conditioned", ill_conditioned, "(x² + 20y²)/2", (-4.5, 1.0), (0.0, 0.0),
                                 (-5.0, 5.0), (-1.6, 1.6)),
}


def get_landscape(fn: str | Landscape | Fn) -> Landscape | Fn:
    """A Landscape by name (or the Landscape / callable itself); an unknown name lists the valid ones."""
    if isinstance(fn, str):
        if fn not in LANDSCAPES:
            raise ValueError(f"unknown landscape {fn!r}; valid landscapes: {', '.join(LANDSCAPES)}")
        return LANDSCAPES[fn]
    if not callable(fn):
        raise TypeError(f"fn must be a landscape name, a Landscape or a callable f(x, y), got {fn!r}")
    return fn


def trajectory(fn: str | Landscape | Fn, optimizer_name: str, start: tuple[float, float] | None = None,
               steps: int = 100, **hparams) -> torch.Tensor:
    """The points an optimizer from esc_course.optim visits on f(x, y): a (steps + 1, 2) float64 tensor.

    ``start`` defaults to the landscape's own; ``hparams`` go to the optimizer (lr, momentum, betas, ...).
    If the point stops being finite (a diverging run), the path ends at the last finite point.
    """
    return trajectories(fn, {optimizer_name: (optimizer_name, hparams)}, start, steps)[optimizer_name]


def trajectories(fn: str | Landscape | Fn, runs: Mapping[str, tuple[str, dict]],
                 start: tuple[float, float] | None = None, steps: int = 100) -> dict[str, torch.Tensor]:
    """Several optimizers on one function at once: ``runs`` maps label -> (optimizer name, hparams).

    Each optimizer moves its own point; one forward and backward pass serves them all (f of a stack of points,
    summed: each point's gradient depends on that point only). Returns label -> (N, 2) path as ``trajectory``.
    """
    f = get_landscape(fn)
    if start is None:
        if not isinstance(f, Landscape):
            raise ValueError("start is required when fn is a plain callable")
        start = f.start
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be a non-negative integer, got {steps!r}")
    points = {label: torch.tensor(start, dtype=torch.float64, requires_grad=True) for label in runs}
    opts = [get_optimizer(name, [points[label]], **hparams) for label, (name, hparams) in runs.items()]
    path = [torch.stack(list(points.values())).detach()]  # per step: (runs, 2)
    for _ in range(steps):
        stacked = torch.stack(list(points.values()))
        loss = f(stacked[:, 0], stacked[:, 1]).sum()
        for opt in opts:
            opt.zero_grad()
        loss.backward()
        for opt in opts:
            opt.step()
        path.append(torch.stack(list(points.values())).detach())
    paths = torch.stack(path, dim=1)  # (runs, steps + 1, 2)
    return {label: _finite_prefix(p) for label, p in zip(runs, paths)}


def _finite_prefix(path: torch.Tensor) -> torch.Tensor:
    """The path up to (not including) its first point that is not finite."""
    bad = (~torch.isfinite(path).all(dim=1)).nonzero()
    return path[: int(bad[0])] if len(bad) else path


def values(fn: str | Landscape | Fn, path: torch.Tensor) -> torch.Tensor:
    """f at every point of a path: (N,)."""
    f = get_landscape(fn)
    return f(path[:, 0], path[:, 1])


def _grid(land: Landscape, steps: int = 150):
    xs = torch.linspace(*land.xlim, steps, dtype=torch.float64)
    ys = torch.linspace(*land.ylim, steps, dtype=torch.float64)
    gx, gy = torch.meshgrid(xs, ys, indexing="xy")
    return gx, gy, land(gx, gy)


def draw(ax, land: str | Landscape, paths: Mapping[str, torch.Tensor], title: str | None = None,
         legend: bool = True) -> None:
    """Contours of a landscape, its minimum as a star, and each path as a line with dots, on ``ax``; with
    ``legend``, a legend of the paths beside the axes (so it covers none of them)."""
    import numpy as np

    land = get_landscape(land)
    gx, gy, z = _grid(land)
    if land.log_levels:
        low = float(z.min())
        levels = np.logspace(math.log10(max(1e-3, float(z[z > low].min() - low))), math.log10(float(z.max() - low)),
                             25)
        ax.contour(gx.numpy(), gy.numpy(), (z - low).numpy(), levels=levels, cmap="viridis", linewidths=0.7)
    else:
        ax.contour(gx.numpy(), gy.numpy(), z.numpy(), levels=25, cmap="viridis", linewidths=0.7)
    if land.minimum is not None:
        ax.plot(*land.minimum, marker="*", color="k", markersize=12, linestyle="none")
    for name, path in paths.items():
        p = path.numpy()
        ax.plot(p[:, 0], p[:, 1], marker=".", markersize=3, linewidth=1.2, label=name)
    ax.plot(*land.start, marker="o", color="k", markersize=5, linestyle="none")
    ax.set(xlim=land.xlim, ylim=land.ylim, xlabel="x", ylabel="y", title=title or f"{land.name}: {land.formula}")
    if paths and legend:
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))


def landscapes_figure(paths: Mapping[str, Mapping[str, torch.Tensor]], ncols: int = 3):
    """One contour panel per landscape: ``paths`` maps landscape name -> {label: path}. The optimizers share one
    legend, in the empty last panel when there is one, else below the panels, so that no legend covers a path."""
    from esc_course.viz import new_figure

    n = len(paths)
    cols = min(ncols, n)
    fig, axes = new_figure(cols, -(-n // cols), size=(4.4, 3.8))
    for ax, (name, runs) in zip(axes, paths.items()):
        draw(ax, name, runs, legend=False)
    for ax in axes[n:]:
        ax.set_axis_off()
    handles, labels = axes[0].get_legend_handles_labels() if n else ([], [])
    if handles:
        if len(axes) > n:
            axes[n].legend(handles, labels, loc="center", fontsize=10, title="optimizer", frameon=False)
        else:
            fig.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 8), fontsize=9)
    return fig


# ------------------------------------------------------------------------ a landscape with several minima
def himmelblau(x, y):
    """Himmelblau (1972): four minima of value 0 (HIMMELBLAU_MINIMA), a local maximum near (-0.27, -0.92) and
    four saddles between them: non-convex, so where gradient descent ends depends on where it starts."""
    return (x**2 + y - 11) ** 2 + (x + y**2 - 7) ** 2


HIMMELBLAU_MINIMA = ((3.0, 2.0), (-2.805118, 3.131312), (-3.779310, -3.283186), (3.584428, -1.848126))

# Kept out of LANDSCAPES (whose every entry week 6 races its optimizers on): landscapes with more than one minimum.
MULTI_MINIMA: dict[str, Landscape] = {
    "himmelblau": Landscape("himmelblau", himmelblau, "(x² + y - 11)² + (x + y² - 7)²", (0.0, 0.0),
                            HIMMELBLAU_MINIMA[0], (-5.0, 5.0), (-5.0, 5.0), log_levels=True),
}
