"""Graph representations as dense tensors: adjacency, degree, normalized adjacency, Laplacian.

A graph on N nodes is its (N, N) adjacency matrix ``A``: ``A[u, v]`` is the weight of the edge u -> v (1 for an
unweighted edge, 0 for none). An undirected graph has a symmetric ``A``; a directed one need not. Everything else in
``esc_course.graphs`` takes such a matrix, so the four kinds of graph (undirected, weighted, directed, complete) share
one code path. Dense matrices are the clearest form for the graphs of this course (tens to a few thousand nodes);
``A @ X`` works the same with a ``torch.sparse`` matrix for larger ones.

networkx is optional: it is imported only inside ``to_networkx`` / ``from_networkx``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

EdgeList = torch.Tensor | Sequence[Sequence[int]]


def _edge_tensor(edges: EdgeList) -> torch.Tensor:
    e = torch.as_tensor(edges, dtype=torch.long) if not isinstance(edges, torch.Tensor) else edges.long()
    if e.numel() == 0:
        return e.reshape(0, 2)
    if e.ndim != 2 or e.shape[1] != 2:
        raise ValueError(f"edges must have shape (E, 2) (one (u, v) pair per row), got {tuple(e.shape)}")
    if (e < 0).any():
        raise ValueError(f"edges must hold node indices >= 0, got {int(e.min())}")
    return e


def adjacency(edges: EdgeList, num_nodes: int | None = None, *, weights: torch.Tensor | Sequence[float] | None = None,
              directed: bool = False, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The (N, N) adjacency matrix of an edge list.

    Args:
        edges: (E, 2) node indices, one edge u -> v per row (u -- v when undirected).
        num_nodes: N; by default one more than the largest index (isolated nodes need it given).
        weights: (E,) edge weights, 1 for every edge by default. A repeated edge adds up its weights.
        directed: if False, every edge is also put in as v -> u, so A is symmetric (a self-loop appears once).
    """
    e = _edge_tensor(edges)
    largest = int(e.max()) + 1 if len(e) else 0
    n = largest if num_nodes is None else num_nodes
    if isinstance(n, bool) or not isinstance(n, int) or n < largest:
        raise ValueError(f"num_nodes must be an integer >= {largest} (the largest node index + 1), got {num_nodes!r}")
    w = torch.ones(len(e), dtype=dtype) if weights is None else torch.as_tensor(weights, dtype=dtype).reshape(-1)
    if w.shape != (len(e),):
        raise ValueError(f"weights must have one value per edge ({len(e)}), got shape {tuple(w.shape)}")
    if not torch.isfinite(w).all():
        raise ValueError("weights must be finite numbers")
    a = torch.zeros(n, n, dtype=dtype, device=w.device)
    a.index_put_((e[:, 0].to(w.device), e[:, 1].to(w.device)), w, accumulate=True)
    if not directed:
        off = e[:, 0] != e[:, 1]  # a self-loop is one entry on the diagonal, not two
        a.index_put_((e[off, 1].to(w.device), e[off, 0].to(w.device)), w[off], accumulate=True)
    return a


def edge_list(adj: torch.Tensor, directed: bool | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The inverse of ``adjacency``: (edges (E, 2), weights (E,)); undirected edges once, with u <= v."""
    check_adjacency(adj)
    directed = not is_symmetric(adj) if directed is None else directed
    mask = adj != 0
    if not directed:
        mask = torch.triu(mask)
    edges = mask.nonzero()
    return edges, adj[edges[:, 0], edges[:, 1]]


def check_adjacency(adj: torch.Tensor, name: str = "adj") -> torch.Tensor:
    """Raise a ValueError unless ``adj`` is a square matrix of finite numbers; return it."""
    if not isinstance(adj, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor (N, N), got {type(adj).__name__}")
    if adj.ndim != 2 or adj.shape[0] != adj.shape[1]:
        raise ValueError(f"{name} must be a square (N, N) adjacency matrix, got shape {tuple(adj.shape)}")
    if adj.is_floating_point() and not torch.isfinite(adj).all():
        raise ValueError(f"{name} must hold finite edge weights")
    return adj


def is_symmetric(adj: torch.Tensor) -> bool:
    """True for an undirected graph (A equals its transpose)."""
    return bool(torch.equal(adj, adj.T))


def symmetrize(adj: torch.Tensor) -> torch.Tensor:
    """(A + A^T) / 2: the undirected graph behind a directed one (unchanged when A is already symmetric)."""
    check_adjacency(adj)
    return (adj + adj.T) / 2


_DIRECTIONS = ("out", "in", "both")


def degree(adj: torch.Tensor, direction: str = "out", *, weighted: bool = True) -> torch.Tensor:
    """(N,) degrees: row sums ("out"), column sums ("in") or their sum ("both", what networkx calls a DiGraph's
    degree). ``weighted=False`` counts edges instead of adding weights (a self-loop counts once).
    For an undirected graph "out" and "in" are the same: the number (or total weight) of a node's edges."""
    check_adjacency(adj)
    if direction not in _DIRECTIONS:
        raise ValueError(f"direction must be one of {', '.join(_DIRECTIONS)}, got {direction!r}")
    a = adj if weighted else (adj != 0).to(adj.dtype if adj.is_floating_point() else torch.float32)
    if direction == "out":
        return a.sum(1)
    if direction == "in":
        return a.sum(0)
    return a.sum(0) + a.sum(1)


def degree_matrix(adj: torch.Tensor, direction: str = "out", *, weighted: bool = True) -> torch.Tensor:
    """The diagonal degree matrix D = diag(degree)."""
    return torch.diag(degree(adj, direction, weighted=weighted))


def _inverse(x: torch.Tensor, power: float) -> torch.Tensor:
    """x ** -power where x > 0, else 0 (an isolated node keeps a zero row instead of an inf)."""
    safe = torch.where(x > 0, x, torch.ones_like(x))
    return torch.where(x > 0, safe.pow(-power), torch.zeros_like(x))


def normalized_adjacency(adj: torch.Tensor, *, self_loops: bool = True, kind: str = "sym") -> torch.Tensor:
    """The normalized adjacency a graph convolution or a random walk uses.

    kind="sym": D^-1/2 A D^-1/2 (for a directed graph D_out^-1/2 A D_in^-1/2); eigenvalues in [-1, 1].
    kind="rw":  D^-1 A, each row sums to 1 (the random walk's transition matrix; a node without out-edges keeps
    a zero row). ``self_loops=True`` uses A + I and its degrees: the renormalization trick of the GCN
    (Kipf and Welling 2017, sec. 2.2), which keeps a node's own features and the spectrum away from -1.
    """
    check_adjacency(adj)
    if kind not in ("sym", "rw"):
        raise ValueError(f"kind must be 'sym' or 'rw', got {kind!r}")
    a = adj.float() if not adj.is_floating_point() else adj
    if self_loops:
        a = a + torch.eye(len(a), dtype=a.dtype, device=a.device)
    d_out, d_in = a.sum(1), a.sum(0)
    if kind == "rw":
        return _inverse(d_out, 1.0)[:, None] * a
    return _inverse(d_out, 0.5)[:, None] * a * _inverse(d_in, 0.5)[None, :]


LAPLACIANS = ("unnormalized", "sym", "rw")


def laplacian(adj: torch.Tensor, kind: str = "unnormalized") -> torch.Tensor:
    """The graph Laplacian: "unnormalized" L = D - A, "sym" I - D^-1/2 A D^-1/2, "rw" I - D^-1 A.

    D holds the (weighted) out-degrees, so for a directed graph L = D_out - A (its rows sum to 0). For an
    undirected graph L is symmetric positive semi-definite: x^T L x = sum over edges w_uv (x_u - x_v)^2, and the
    number of zero eigenvalues is the number of connected components. An isolated node gets a zero row.
    """
    check_adjacency(adj)
    if kind not in LAPLACIANS:
        raise ValueError(f"unknown Laplacian kind {kind!r}; valid kinds: {', '.join(LAPLACIANS)}")
    a = adj.float() if not adj.is_floating_point() else adj
    if kind == "unnormalized":
        return torch.diag(a.sum(1)) - a
    eye = torch.eye(len(a), dtype=a.dtype, device=a.device) * (a.sum(1) > 0)  # an isolated node keeps a zero row
    return eye - normalized_adjacency(a, self_loops=False, kind=kind)


def complete_graph(n: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The complete graph K_n: every pair of distinct nodes joined (all ones, zero diagonal)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    return torch.ones(n, n, dtype=dtype) - torch.eye(n, dtype=dtype)


def to_networkx(adj: torch.Tensor, *, directed: bool | None = None, weighted: bool = True):
    """A networkx Graph (or DiGraph when ``directed``, by default when A is not symmetric) with nodes 0..N-1 and
    the weights as the edges' "weight" attribute. Needs networkx (``pip install networkx``)."""
    import networkx as nx

    check_adjacency(adj)
    directed = not is_symmetric(adj) if directed is None else directed
    graph = nx.DiGraph() if directed else nx.Graph()
    graph.add_nodes_from(range(len(adj)))
    edges, weights = edge_list(adj.detach().cpu(), directed=directed)
    for (u, v), w in zip(edges.tolist(), weights.tolist()):
        graph.add_edge(u, v, **({"weight": w} if weighted else {}))
    return graph


def from_networkx(graph, *, weight: str | None = "weight", dtype: torch.dtype = torch.float32
                  ) -> tuple[torch.Tensor, list]:
    """(adjacency (N, N), nodes): the graph's adjacency in the order of ``list(graph)``.

    Edges without the ``weight`` attribute (or all edges, with ``weight=None``) count 1. A Graph gives a symmetric
    matrix, a DiGraph a directed one. Needs networkx only because ``graph`` is one.
    """
    import networkx as nx

    if not isinstance(graph, nx.Graph):
        raise TypeError(f"graph must be a networkx Graph or DiGraph, got {type(graph).__name__}")
    if graph.is_multigraph():
        raise ValueError("multigraphs are not supported: merge parallel edges first (e.g. nx.Graph(multigraph))")
    nodes = list(graph)
    index = {node: i for i, node in enumerate(nodes)}
    pairs = [(index[u], index[v]) for u, v in graph.edges()]
    weights = [1.0 if weight is None else float(d.get(weight, 1.0)) for _, _, d in graph.edges(data=True)]
    adj = adjacency(torch.tensor(pairs, dtype=torch.long).reshape(-1, 2), len(nodes), weights=weights,
                    directed=graph.is_directed(), dtype=dtype)
    return adj, nodes
