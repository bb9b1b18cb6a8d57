"""Plots that return a matplotlib Figure (no pyplot state, so they work headless and in notebooks alike).

The figures are :class:`ShownFigure` objects: a plain matplotlib Figure that also tells IPython how to draw it
as a PNG (``_repr_png_``). A Figure made without pyplot is never registered with the inline backend, so a plain
Jupyter kernel, Colab or VS Code would show it as the text ``<Figure size ... with 3 Axes>``; with ``_repr_png_``
every front end that IPython drives shows the image, with no ``%matplotlib`` line and no backend setting.

matplotlib is imported inside the functions: importing esc_course does not load it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence

import torch


@functools.cache
def figure_class() -> type:
    """The package's Figure class (made on first use, so importing this module loads no matplotlib)."""
    import io

    from matplotlib.figure import Figure

    class ShownFigure(Figure):
        """A matplotlib Figure that IPython displays as an image (``image/png``) wherever it shows a value."""

        def _repr_png_(self) -> bytes:
            buf = io.BytesIO()
            self.savefig(buf, format="png", bbox_inches="tight", facecolor="white")
            return buf.getvalue()

    ShownFigure.__module__ = __name__
    ShownFigure.__qualname__ = "ShownFigure"
    return ShownFigure


def new_figure(ncols: int = 1, nrows: int = 1, size: tuple[float, float] = (4.2, 3.6)):
    """A Figure (shown as an image by IPython, see :func:`figure_class`) and its axes (always a flat list),
    sized per panel."""
    fig = figure_class()(figsize=(size[0] * ncols, size[1] * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, [ax for row in axes for ax in row]


@torch.no_grad()
def decision_boundary(ax, predict: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, y: torch.Tensor,
                      title: str = "", margin: float = 0.5, steps: int = 200) -> None:
    """Shade the plane by ``predict`` (probability of class 1, or class scores) and scatter the data."""
    x, y = x.detach().cpu(), y.detach().cpu()
    lo, hi = x.min(0).values - margin, x.max(0).values + margin
    gx, gy = torch.meshgrid(torch.linspace(lo[0], hi[0], steps), torch.linspace(lo[1], hi[1], steps), indexing="xy")
    grid = torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1)
    z = predict(grid).detach().cpu()
    if z.ndim == 2 and z.shape[1] > 1:
        z = z.argmax(1).float()
    z = z.reshape(steps, steps)
    ax.contourf(gx, gy, z, levels=20, cmap="RdBu_r", alpha=0.6, vmin=0, vmax=1)
    ax.contour(gx, gy, z, levels=[0.5], colors="k", linewidths=1.2)
    ax.scatter(x[:, 0], x[:, 1], c=y, cmap="RdBu_r", edgecolors="k", s=60, vmin=0, vmax=1)
    ax.set(title=title, xlabel="$x_1$", ylabel="$x_2$")


def history_figure(histories: Mapping[str, Mapping[str, Sequence[float]]], keys: Sequence[str] = ("train_loss",),
                   log_y: bool = False, title: str = ""):
    """One panel per key, one line per run: ``histories`` maps run name -> History (or its to_dict())."""
    fig, axes = new_figure(len(keys))
    for ax, key in zip(axes, keys):
        for name, h in histories.items():
            if key in h:
                ax.plot(range(1, len(h[key]) + 1), h[key], label=name)
        ax.set(xlabel="epoch", ylabel=key, title=title or key)
        if log_y:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return fig


def activations_figure(curves: Mapping[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]):
    """Each activation (solid) and its derivative (dashed), one panel each."""
    n = len(curves)
    cols = min(4, n)
    fig, axes = new_figure(cols, -(-n // cols), size=(3.2, 2.6))
    for ax, (name, (x, y, dy)) in zip(axes, curves.items()):
        ax.plot(x, y, label="f(x)")
        ax.plot(x, dy, "--", label="f'(x)")
        ax.axhline(0, color="gray", lw=0.5)
        ax.axvline(0, color="gray", lw=0.5)
        ax.set(title=name)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig


def table_text(rows: Sequence[Mapping], columns: Sequence[str] | None = None, digits: int = 4) -> str:
    """A plain-text table of ``rows`` (list of dicts), for terminals and notebooks."""
    if not rows:
        return "(empty table)"
    columns = list(columns or dict.fromkeys(k for r in rows for k in r))

    def fmt(v):
        if isinstance(v, float):
            return f"{v:.{digits}g}"
        return "" if v is None else str(v)

    cells = [[fmt(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    line = lambda vals: "  ".join(v.ljust(w) for v, w in zip(vals, widths))  # noqa: E731
    return "\n".join([line(columns), line(["-" * w for w in widths])] + [line(r) for r in cells])


class Table:
    """Rows (a list of dicts) shown as a table: HTML in a notebook (``_repr_html_``), plain text elsewhere.

    ``Table(result.rows)`` as the last line of a cell shows it; ``print(Table(rows))`` prints the text form.
    """

    def __init__(self, rows: Sequence[Mapping], columns: Sequence[str] | None = None, digits: int = 4,
                 caption: str = ""):
        self.rows, self.digits, self.caption = list(rows), digits, caption
        self.columns = list(columns or dict.fromkeys(k for r in self.rows for k in r))

    def __str__(self) -> str:
        return table_text(self.rows, self.columns, self.digits)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        return table_html(self.rows, self.columns, self.digits, self.caption)


def table_html(rows: Sequence[Mapping], columns: Sequence[str] | None = None, digits: int = 4,
               caption: str = "") -> str:
    """``rows`` as an HTML ``<table>`` (values escaped; numbers right-aligned), for notebooks and the report."""
    import html

    if not rows:
        return "<p><em>(empty table)</em></p>"
    columns = list(columns or dict.fromkeys(k for r in rows for k in r))

    def cell(v) -> str:
        if isinstance(v, bool) or v is None or not isinstance(v, (int, float)):
            return f"<td>{html.escape('' if v is None else str(v))}</td>"
        text = f"{v:.{digits}g}" if isinstance(v, float) else str(v)
        return f'<td style="text-align:right">{html.escape(text)}</td>'

    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    body = "".join("<tr>" + "".join(cell(r.get(c)) for c in columns) + "</tr>" for r in rows)
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return f'<table class="esc-table">{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
