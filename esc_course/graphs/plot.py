"""Drawing graphs with matplotlib only: node size by importance, colour by cluster, edges by weight.

Every function returns a Figure built with ``esc_course.viz.new_figure`` or draws on an axes it is given;
matplotlib is imported inside the functions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from esc_course.graphs.graph import edge_list, is_symmetric


def node_sizes(values: torch.Tensor, smallest: float = 40.0, largest: float = 600.0) -> torch.Tensor:
    """Marker areas (points^2) growing linearly with ``values`` from ``smallest`` to ``largest``."""
    v = torch.as_tensor(values, dtype=torch.float64).cpu()
    span = (v.max() - v.min()).clamp_min(1e-12)
    return smallest + (largest - smallest) * (v - v.min()) / span


def draw_graph(ax, adj: torch.Tensor, pos: torch.Tensor, *, sizes=None, colors=None, cmap: str = "coolwarm",
               vmin: float | None = None, vmax: float | None = None, labels: bool = True, edge_labels: bool = False,
               ring=None, title: str = "") -> None:
    """Draw a graph on ``ax``: nodes at ``pos`` (N, 2), edges as lines (arrows when the graph is directed), line
    width by weight. ``sizes`` are marker areas, ``colors`` numbers mapped through ``cmap`` (e.g. cluster ids),
    ``ring`` a bool mask of nodes to circle in black (e.g. labelled or misplaced ones)."""
    from matplotlib.collections import LineCollection

    adj, pos = adj.detach().cpu(), pos.detach().cpu().to(torch.float64)
    n = len(adj)
    sizes = torch.full((n,), 200.0) if sizes is None else torch.as_tensor(sizes, dtype=torch.float64).cpu()
    directed = not is_symmetric(adj)
    edges, weights = edge_list(adj, directed=directed)
    keep = edges[:, 0] != edges[:, 1]  # self-loops are not drawn
    edges, weights = edges[keep], weights[keep]
    varied = len(weights) > 0 and bool(weights.max() != weights.min())
    widths = 0.6 + 2.4 * weights / weights.max() if varied else torch.full((len(weights),), 1.0)
    if directed:
        for (u, v), w in zip(edges.tolist(), widths.tolist()):
            bend = 0.15 if adj[v, u] != 0 else 0.0  # two opposite arrows get bent apart
            ax.annotate("", xy=pos[v].tolist(), xytext=pos[u].tolist(),
                        arrowprops=dict(arrowstyle="-|>", color="0.45", lw=w, shrinkA=float(sizes[u]) ** 0.5 / 2,
                                        shrinkB=float(sizes[v]) ** 0.5 / 2 + 1,
                                        connectionstyle=f"arc3,rad={bend}"), zorder=1)
    else:
        segments = pos[edges].tolist()
        ax.add_collection(LineCollection(segments, colors="0.55", linewidths=widths.tolist(), zorder=1))
    if edge_labels:
        for (u, v), w in zip(edges.tolist(), weights.tolist()):
            mid = (pos[u] + pos[v]) / 2
            ax.text(float(mid[0]), float(mid[1]), f"{w:g}", fontsize=8, color="darkred", ha="center", va="center",
                    bbox=dict(boxstyle="round,pad=0.1", fc="white", ec="none", alpha=0.8), zorder=4)
    c = "#8fb3d9" if colors is None else torch.as_tensor(colors, dtype=torch.float64).cpu().tolist()
    ax.scatter(pos[:, 0].tolist(), pos[:, 1].tolist(), s=sizes.tolist(), c=c, cmap=None if colors is None else cmap, vmin=vmin,
               vmax=vmax, edgecolors="0.2", linewidths=0.6, zorder=2)
    if ring is not None:
        mask = torch.as_tensor(ring, dtype=torch.bool).cpu()
        ax.scatter(pos[mask, 0].tolist(), pos[mask, 1].tolist(), s=(sizes[mask] * 2.2 + 60).tolist(), facecolors="none",
                   edgecolors="black", linewidths=1.6, zorder=3)
    if labels:
        draw_labels(ax, pos, sizes, largest_font=7.0 if n > 10 else 9.0)
    ax.set(title=title, xticks=[], yticks=[])
    ax.set_aspect("equal")
    ax.margins(0.08)


def label_font(size: float, text: str, largest: float = 9.0) -> float:
    """The font size (points) at which ``text`` fits inside a marker of area ``size`` (points^2); a digit is about
    0.62 of the font size wide, and the label may take 85 % of the marker's diameter."""
    return min(largest, 0.85 * size ** 0.5 / (0.62 * max(1, len(text))))


def draw_labels(ax, pos: torch.Tensor, sizes: torch.Tensor, largest_font: float = 9.0, smallest_font: float = 5.5):
    """Node ids inside their markers, shrunk to fit; a marker too small for a readable label gets it beside it.
    A thin white outline keeps black text readable on any fill colour."""
    from matplotlib import patheffects

    halo = [patheffects.withStroke(linewidth=1.8, foreground="white")]
    for i, (x, y) in enumerate(pos.tolist()):
        text, size = str(i), float(sizes[i])
        font = label_font(size, text, largest_font)
        if font >= smallest_font:
            ax.text(x, y, text, fontsize=font, ha="center", va="center", zorder=5, path_effects=halo)
        else:  # beside the marker: offset by its radius (points), up and to the right
            ax.annotate(text, (x, y), xytext=(size ** 0.5 / 2 + 1, size ** 0.5 / 2 + 1), textcoords="offset points",
                        fontsize=smallest_font + 0.5, ha="left", va="bottom", zorder=5, path_effects=halo)


def group_legend(ax, names: Sequence[str], cmap: str = "coolwarm", **kwargs) -> None:
    """A colour key for nodes coloured by a 0/1 group id through ``cmap`` (vmin=0, vmax=1)."""
    import matplotlib
    from matplotlib.lines import Line2D

    colours = matplotlib.colormaps[cmap]
    span = max(1, len(names) - 1)
    handles = [Line2D([], [], marker="o", ls="", markersize=8, markerfacecolor=colours(i / span),
                      markeredgecolor="0.2", label=name) for i, name in enumerate(names)]
    ax.legend(handles=handles, fontsize=8, **kwargs)


def graph_kinds_figure(graphs: Mapping[str, torch.Tensor], positions: Mapping[str, torch.Tensor]):
    """Each example graph drawn (top row) above its adjacency matrix (bottom row)."""
    from esc_course.viz import new_figure

    fig, axes = new_figure(len(graphs), 2, size=(3.0, 3.0))
    cols = len(graphs)
    for i, (name, adj) in enumerate(graphs.items()):
        draw_graph(axes[i], adj, positions[name], edge_labels=name == "weighted", title=f"{name} graph")
        ax = axes[cols + i]
        ax.imshow(adj.cpu().numpy(), cmap="Blues", vmin=0)
        top = float(adj.max())
        for (u, v), w in zip(*[t.tolist() for t in edge_list(adj, directed=True)]):
            ax.text(v, u, f"{w:g}", ha="center", va="center", fontsize=9, color="white" if w > 0.5 * top else "black")
        ax.set(title=f"adjacency A ({'not ' if not is_symmetric(adj) else ''}symmetric)", xlabel="to v",
               ylabel="from u", xticks=range(len(adj)), yticks=range(len(adj)))
    return fig


def importance_figure(adj: torch.Tensor, pos: torch.Tensor, measures: Mapping[str, torch.Tensor], groups,
                      names: Sequence[str] = ("group 0", "group 1")):
    """One panel per importance measure: node size by the measure, colour by group (keyed by ``names``)."""
    from esc_course.viz import new_figure

    cols = min(2, len(measures))
    fig, axes = new_figure(cols, -(-len(measures) // cols), size=(4.6, 4.4))
    for ax, (name, values) in zip(axes, measures.items()):
        top = int(torch.as_tensor(values).argmax())
        draw_graph(ax, adj, pos, sizes=node_sizes(values, smallest=90.0, largest=700.0), colors=groups, vmin=0,
                   vmax=1, title=f"{name}: size = score (largest: member {top})")
        group_legend(ax, names, loc="lower left", title="club", title_fontsize=8)
    for ax in axes[len(measures):]:
        ax.set_visible(False)
    return fig


def spectral_figure(adj: torch.Tensor, pos: torch.Tensor, fiedler: torch.Tensor, truth: torch.Tensor,
                    split: torch.Tensor, eigenvalues: torch.Tensor, names: Sequence[str] = ("group 0", "group 1")):
    """Laplacian spectrum, the Fiedler vector per node coloured by the true group, and the graph coloured by the
    spectral split with the nodes it puts on the wrong side circled."""
    from esc_course.viz import new_figure

    fig, axes = new_figure(3, size=(4.0, 3.6))
    values = eigenvalues.cpu()
    axes[0].plot(range(len(values)), values.tolist(), "o-", ms=3)
    axes[0].set(title="normalized Laplacian eigenvalues", xlabel="index", ylabel="eigenvalue")
    axes[0].grid(alpha=0.3)
    f, t = fiedler.cpu(), truth.cpu()
    order = torch.argsort(f)
    colors = ["tab:blue" if int(t[i]) == 0 else "tab:red" for i in order]
    axes[1].bar(range(len(f)), f[order].tolist(), color=colors)
    axes[1].axhline(0, color="k", lw=0.8)
    axes[1].set(title="Fiedler vector (sorted); colour = real club", xlabel="members, sorted", ylabel="value")
    for c, name in zip(("tab:blue", "tab:red"), names):
        axes[1].bar([0], [0], color=c, label=name)
    axes[1].legend(fontsize=8)
    flip = (split != t).float().mean() > 0.5  # ids are arbitrary: match the split's ids to the truth's
    matched = 1 - split.cpu() if flip else split.cpu()
    wrong = matched != t
    draw_graph(axes[2], adj, pos, colors=matched, vmin=0, vmax=1, ring=wrong,
               title=f"spectral split ({int(wrong.sum())} circled on the wrong side)")
    group_legend(axes[2], [f"{name}'s side" for name in names], loc="lower left", title="split",
                 title_fontsize=8)
    return fig


def embedding_figure(snapshots: Mapping[int, torch.Tensor], labels: torch.Tensor, labelled: torch.Tensor,
                     names: Sequence[str] = ("group 0", "group 1")):
    """The 2-D node embedding at several epochs: colour = true group, black rings = the labelled nodes."""
    from esc_course.viz import new_figure

    fig, axes = new_figure(len(snapshots), size=(2.8, 2.8))
    y = labels.cpu()
    for ax, (epoch, emb) in zip(axes, snapshots.items()):
        e = emb.cpu()
        for c, name in enumerate(names):
            ax.scatter(e[y == c, 0].tolist(), e[y == c, 1].tolist(), s=22, c=f"C{3 * c}", label=name, edgecolors="0.2", linewidths=0.4)
        ax.scatter(e[labelled, 0].tolist(), e[labelled, 1].tolist(), s=140, facecolors="none", edgecolors="k", linewidths=1.5,
                   label="labelled")
        ax.set(title=f"epoch {epoch}", xlabel="embedding h_1", ylabel="embedding h_2")
        ax.tick_params(labelsize=7)
    handles, texts = axes[0].get_legend_handles_labels()
    fig.legend(handles, texts, loc="outside lower center", ncols=len(texts), fontsize=8)
    return fig


def convergence_figure(residuals: Mapping[str, torch.Tensor], alpha: float):
    """L1 change per power-iteration step (log scale) next to the alpha^k rate it must follow."""
    from esc_course.viz import new_figure

    fig, axes = new_figure(1, size=(5.0, 3.6))
    ax = axes[0]
    longest = 0
    for name, r in residuals.items():
        r = r.cpu()
        ax.semilogy(range(1, len(r) + 1), r.tolist(), label=name)
        longest = max(longest, len(r))
    k = torch.arange(1, longest + 1, dtype=torch.float64)
    ax.semilogy(k.tolist(), (2 * alpha**k).tolist(), "k--", lw=1, label=f"2 * alpha^k (alpha={alpha})")
    ax.set(title="PageRank power iteration", xlabel="iteration k", ylabel="L1 change ||x_k - x_(k-1)||")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def block_matrix_figure(adj: torch.Tensor, labels: torch.Tensor, title: str = "adjacency, nodes sorted by block"):
    """The adjacency matrix with nodes ordered by block: dense squares on the diagonal are the planted groups."""
    from esc_course.viz import new_figure

    fig, axes = new_figure(1, size=(4.2, 4.0))
    order = torch.argsort(labels.cpu(), stable=True)
    axes[0].imshow((adj.cpu()[order][:, order] != 0).float().numpy(), cmap="Greys", interpolation="nearest")
    axes[0].set(title=title, xlabel="node", ylabel="node")
    return fig
