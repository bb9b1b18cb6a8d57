"""Node importance (centrality): degree, closeness, betweenness and PageRank, on an adjacency matrix.

Each measure answers a different question about a node:
- degree: how many neighbours does it have?
- closeness: how few steps does it take to reach it from everyone else?
- betweenness: on how many shortest paths between other nodes does it lie (a broker, a bridge)?
- PageRank: how often does a random surfer, who follows edges and now and then jumps anywhere, visit it?

The definitions and normalizations follow networkx's (the tests check them against it). Distances: with
``weighted=True`` an edge's weight is its length (a larger weight is a longer road), as in networkx's
``distance=`` / ``weight=`` arguments; otherwise every edge has length 1. Computations run in float64.
"""

from __future__ import annotations

import torch

from esc_course.graphs.graph import check_adjacency, degree, is_symmetric, normalized_adjacency


class ConvergenceError(RuntimeError):
    """An iterative method did not reach its tolerance within its iteration budget."""


def _work(adj: torch.Tensor) -> torch.Tensor:
    check_adjacency(adj)
    a = adj.to(torch.float64)
    if (a < 0).any():
        raise ValueError("adj must have non-negative edge weights for importance measures")
    return a


def degree_centrality(adj: torch.Tensor, direction: str = "out") -> torch.Tensor:
    """Degree / (N - 1): the share of the other nodes a node is joined to (edge weights ignored).

    For a directed graph use direction="both" for networkx's ``degree_centrality`` (in + out), "in" or "out"
    for ``in_degree_centrality`` / ``out_degree_centrality``.
    """
    a = _work(adj)
    n = len(a)
    return degree(a, direction, weighted=False) / max(n - 1, 1)


def shortest_path_lengths(adj: torch.Tensor, *, weighted: bool = False) -> torch.Tensor:
    """(N, N) distances d[s, t] from s to t along edges (inf where t cannot be reached).

    Unweighted: breadth-first search from every node at once, one matrix product per level.
    Weighted: Floyd-Warshall, N relaxations d = min(d, d[:, k] + d[k, :]) over every intermediate node k.
    """
    a = _work(adj)
    n = len(a)
    dist = torch.full((n, n), float("inf"), dtype=torch.float64, device=a.device)
    dist.fill_diagonal_(0.0)
    edge = (a != 0) & ~torch.eye(n, dtype=torch.bool, device=a.device)
    if weighted:
        dist = torch.where(edge, a, dist)
        for k in range(n):
            dist = torch.minimum(dist, dist[:, k : k + 1] + dist[k : k + 1, :])
        return dist
    frontier = torch.eye(n, dtype=torch.float64, device=a.device)  # frontier[s, v]: v first reached at this level
    step = edge.to(torch.float64)
    for level in range(1, n):
        reached = (frontier @ step > 0) & torch.isinf(dist)
        if not reached.any():
            break
        dist[reached] = float(level)
        frontier = reached.to(torch.float64)
    return dist


def closeness_centrality(adj: torch.Tensor, *, weighted: bool = False, direction: str = "in",
                         wf_improved: bool = True) -> torch.Tensor:
    """(r - 1) / (sum of distances to the node from the r - 1 nodes that reach it), per node.

    ``wf_improved`` multiplies by (r - 1) / (N - 1) (Wasserman and Faust 1994), so a node reached by few others
    in a disconnected graph does not look central. direction="in" (networkx's choice for directed graphs) uses
    distances *to* the node, "out" distances *from* it; the two agree for an undirected graph.
    """
    if direction not in ("in", "out"):
        raise ValueError(f"direction must be 'in' or 'out', got {direction!r}")
    dist = shortest_path_lengths(adj, weighted=weighted)
    d = dist.T if direction == "in" else dist  # row u: distances from every other node to u
    reach = torch.isfinite(d)
    r = reach.sum(1).to(torch.float64)  # nodes that reach u, u included
    total = torch.where(reach, d, torch.zeros_like(d)).sum(1)
    closeness = torch.where(total > 0, (r - 1) / torch.where(total > 0, total, torch.ones_like(total)),
                            torch.zeros_like(total))
    n = len(d)
    if wf_improved and n > 1:
        closeness = closeness * (r - 1) / (n - 1)
    return closeness


def _source_chunks(n: int, budget: int = 2**22) -> int:
    """How many sources to process together so a (sources, N, N) tensor stays under ``budget`` elements."""
    return max(1, min(n, budget // max(n * n, 1)))


def betweenness_centrality(adj: torch.Tensor, *, weighted: bool = False, normalized: bool = True) -> torch.Tensor:
    """Sum over pairs s != t (both != v) of the share of shortest s-t paths that pass through v.

    Brandes' algorithm (Brandes 2001, "A faster algorithm for betweenness centrality"): from each source s,
    count the shortest paths sigma_s(v) forwards over the shortest-path DAG, then accumulate the dependencies
    delta_s(v) = sum over DAG children w of sigma_s(v) / sigma_s(w) * (1 + delta_s(w)) backwards. Here both passes
    are matrix products over a batch of sources at once (the DAG of source s is the mask
    M_s[v, w] = edge v->w and d(s, v) + len(v, w) = d(s, w)), which is how GraphBLAS writes Brandes.

    normalized=True divides by (N - 1)(N - 2) (the number of ordered pairs without v); otherwise an undirected
    graph's sum is halved (each pair was counted from both ends), as networkx does.
    """
    a = _work(adj)
    n = len(a)
    dist = shortest_path_lengths(a, weighted=weighted)
    edge = (a != 0) & ~torch.eye(n, dtype=torch.bool, device=a.device)
    length = torch.where(edge, a if weighted else torch.ones_like(a), torch.zeros_like(a))
    scores = torch.zeros(n, dtype=torch.float64, device=a.device)
    chunk = _source_chunks(n)
    for start in range(0, n, chunk):
        sources = torch.arange(start, min(start + chunk, n), device=a.device)
        d = dist[sources]  # (B, N)
        tol = 1e-9 * torch.clamp(d[:, None, :].abs(), min=1.0)
        dag = (edge[None] & torch.isfinite(d)[:, :, None]
               & ((d[:, :, None] + length[None] - d[:, None, :]).abs() <= tol)).to(torch.float64)  # (B, N, N)
        sigma = torch.zeros_like(d)
        sigma[torch.arange(len(sources)), sources] = 1.0
        layer, depth = sigma, 0
        while True:  # sigma_s(w) = number of DAG paths s -> w, added one hop at a time
            layer = torch.bmm(layer[:, None, :], dag)[:, 0]
            if not layer.any():
                break
            sigma, depth = sigma + layer, depth + 1
        inv = torch.where(sigma > 0, 1.0 / torch.where(sigma > 0, sigma, torch.ones_like(sigma)), torch.zeros_like(sigma))
        delta = torch.zeros_like(d)
        for _ in range(depth):  # the DAG has no path longer than depth hops, so this many sweeps are exact
            delta = sigma * torch.bmm(dag, ((1.0 + delta) * inv)[:, :, None])[:, :, 0]
        delta[torch.arange(len(sources)), sources] = 0.0
        scores += delta.sum(0)
    if normalized:
        return scores / ((n - 1) * (n - 2)) if n > 2 else scores
    return scores / 2 if is_symmetric(a) else scores


def _pagerank_inputs(adj: torch.Tensor, personalization, dangling):
    a = _work(adj)
    n = len(a)
    if n == 0:
        raise ValueError("adj has no nodes")

    def distribution(values, name):
        if values is None:
            return torch.full((n,), 1.0 / n, dtype=torch.float64, device=a.device)
        v = torch.as_tensor(values, dtype=torch.float64, device=a.device).reshape(-1)
        if v.shape != (n,) or (v < 0).any() or v.sum() <= 0:
            raise ValueError(f"{name} must be {n} non-negative numbers with a positive sum, got shape "
                             f"{tuple(v.shape)}")
        return v / v.sum()

    p = distribution(personalization, "personalization")
    d = p if dangling is None else distribution(dangling, "dangling")
    walk = normalized_adjacency(a, self_loops=False, kind="rw")  # (N, N) row-stochastic except dangling rows
    is_dangling = (a.sum(1) == 0).to(torch.float64)
    return walk, is_dangling, p, d


def pagerank_residuals(adj: torch.Tensor, alpha: float = 0.85, *, personalization=None, dangling=None,
                       tol: float = 1e-10, max_iter: int = 1000) -> tuple[torch.Tensor, torch.Tensor]:
    """PageRank by power iteration: (scores (N,), L1 change per iteration (iterations,)).

    The surfer follows an out-edge (chosen by weight) with probability ``alpha`` and jumps to a node drawn from
    ``personalization`` (uniform by default) otherwise. A dangling node (no out-edges) would leak probability, so
    its mass jumps as ``dangling`` says (the personalization by default), as networkx does:
        x <- alpha * (x P + (x . m) d) + (1 - alpha) p,    m = dangling indicator.
    The change shrinks like alpha^k; iteration stops when its L1 norm is below ``tol``.
    """
    if not 0.0 <= alpha < 1.0:
        raise ValueError(f"alpha (the damping factor) must be in [0, 1), got {alpha!r}")
    if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 1:
        raise ValueError(f"max_iter must be a positive integer, got {max_iter!r}")
    walk, is_dangling, p, d = _pagerank_inputs(adj, personalization, dangling)
    x = p.clone()
    changes = []
    for _ in range(max_iter):
        new = alpha * (x @ walk + (x @ is_dangling) * d) + (1.0 - alpha) * p
        change = (new - x).abs().sum()
        changes.append(change)
        x = new
        if change < tol:  # one host sync per iteration: cheap next to an (N, N) product
            return x, torch.stack(changes)
    raise ConvergenceError(f"PageRank did not converge to tol={tol} in max_iter={max_iter} iterations "
                           f"(last L1 change {float(changes[-1]):.3g}); raise max_iter or lower alpha")


def pagerank(adj: torch.Tensor, alpha: float = 0.85, *, personalization=None, dangling=None, tol: float = 1e-10,
             max_iter: int = 1000) -> torch.Tensor:
    """(N,) PageRank scores (they sum to 1) by power iteration; see ``pagerank_residuals``."""
    return pagerank_residuals(adj, alpha, personalization=personalization, dangling=dangling, tol=tol,
                              max_iter=max_iter)[0]


def pagerank_exact(adj: torch.Tensor, alpha: float = 0.85, *, personalization=None, dangling=None) -> torch.Tensor:
    """PageRank as the solution of its linear system, the reference the power iteration is measured against.

    The fixed point x = alpha x G + (1 - alpha) p, with G = P + m d^T (dangling rows replaced by d), is
    (I - alpha G^T) x^T = (1 - alpha) p: one dense solve in float64, O(N^3).
    """
    if not 0.0 <= alpha < 1.0:
        raise ValueError(f"alpha (the damping factor) must be in [0, 1), got {alpha!r}")
    walk, is_dangling, p, d = _pagerank_inputs(adj, personalization, dangling)
    google = walk + is_dangling[:, None] * d[None, :]
    eye = torch.eye(len(p), dtype=torch.float64, device=p.device)
    x = torch.linalg.solve(eye - alpha * google.T, (1.0 - alpha) * p)
    return x / x.sum()
