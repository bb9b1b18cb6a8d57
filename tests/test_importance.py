"""Node importance (esc_course.graphs.importance) against networkx and closed forms."""

import networkx as nx
import numpy as np
import pytest
import torch

from esc_course.graphs import (
    ConvergenceError,
    betweenness_centrality,
    closeness_centrality,
    degree_centrality,
    from_networkx,
    pagerank,
    pagerank_exact,
    pagerank_residuals,
    shortest_path_lengths,
)


def values(d, n):
    return torch.tensor([d[i] for i in range(n)], dtype=torch.float64)


def close(ours, theirs, atol=1e-10):
    torch.testing.assert_close(ours, theirs, atol=atol, rtol=0)


def weighted(seed, integer=True, n=30, m=70):
    """A random weighted graph; integer weights 1..3 make many shortest paths tie (sigma > 1)."""
    g = nx.gnm_random_graph(n, m, seed=seed)
    rng = np.random.default_rng(seed)
    for u, v in g.edges():
        g[u][v]["weight"] = float(rng.integers(1, 4)) if integer else float(rng.uniform(0.5, 3.0))
    return g


def directed_with_dangling(seed=3):
    g = nx.gnp_random_graph(30, 0.08, seed=seed, directed=True)
    assert any(g.out_degree(v) == 0 for v in g)  # the case PageRank must handle
    return g


GRAPHS = {
    "karate": lambda: nx.karate_club_graph(),
    "weighted_ties": lambda: weighted(0),
    "weighted_float": lambda: weighted(1, integer=False),
    "directed": directed_with_dangling,
    "disconnected": lambda: nx.disjoint_union(nx.path_graph(5), nx.cycle_graph(6)),
}


def adj(g, weight="weight"):
    return from_networkx(g, weight=weight, dtype=torch.float64)[0]


@pytest.mark.parametrize("name", GRAPHS)
def test_degree_centrality_matches_networkx(name):
    g = GRAPHS[name]()
    direction = "both" if g.is_directed() else "out"
    close(degree_centrality(adj(g), direction), values(nx.degree_centrality(g), len(g)))
    if g.is_directed():
        close(degree_centrality(adj(g), "in"), values(nx.in_degree_centrality(g), len(g)))
        close(degree_centrality(adj(g), "out"), values(nx.out_degree_centrality(g), len(g)))


@pytest.mark.parametrize("name", GRAPHS)
def test_shortest_paths_match_networkx(name):
    g = GRAPHS[name]()
    n = len(g)
    for is_weighted in (False, True):
        ours = shortest_path_lengths(adj(g), weighted=is_weighted)
        ref = dict(nx.all_pairs_dijkstra_path_length(g, weight="weight" if is_weighted else None))
        expected = torch.full((n, n), float("inf"), dtype=torch.float64)
        for s, row in ref.items():
            for t, d in row.items():
                expected[s, t] = d
        close(ours, expected)


@pytest.mark.parametrize("name", GRAPHS)
@pytest.mark.parametrize("wf_improved", [True, False])
def test_closeness_matches_networkx(name, wf_improved):
    g = GRAPHS[name]()
    close(closeness_centrality(adj(g), wf_improved=wf_improved),
          values(nx.closeness_centrality(g, wf_improved=wf_improved), len(g)))
    close(closeness_centrality(adj(g), weighted=True, wf_improved=wf_improved),
          values(nx.closeness_centrality(g, distance="weight", wf_improved=wf_improved), len(g)))


def test_closeness_out_direction_is_closeness_of_the_reversed_graph():
    g = directed_with_dangling()
    close(closeness_centrality(adj(g), direction="out"), values(nx.closeness_centrality(g.reverse()), len(g)))
    with pytest.raises(ValueError, match="'in' or 'out'"):
        closeness_centrality(adj(g), direction="both")


@pytest.mark.parametrize("name", GRAPHS)
@pytest.mark.parametrize("normalized", [True, False])
def test_betweenness_matches_networkx(name, normalized):
    g = GRAPHS[name]()
    close(betweenness_centrality(adj(g), normalized=normalized),
          values(nx.betweenness_centrality(g, normalized=normalized), len(g)), atol=1e-9)
    close(betweenness_centrality(adj(g), weighted=True, normalized=normalized),
          values(nx.betweenness_centrality(g, normalized=normalized, weight="weight"), len(g)), atol=1e-9)


def test_betweenness_closed_forms():
    n = 7
    path = adj(nx.path_graph(n))
    # on a path, node i lies on every shortest path between its i left and n - 1 - i right nodes
    expected = torch.tensor([i * (n - 1 - i) for i in range(n)], dtype=torch.float64)
    close(betweenness_centrality(path, normalized=False), expected)
    star = adj(nx.star_graph(5))  # the center joins all 5 * 4 / 2 pairs of leaves
    close(betweenness_centrality(star, normalized=False), torch.tensor([10.0, 0, 0, 0, 0, 0], dtype=torch.float64))
    close(betweenness_centrality(star), torch.tensor([1.0, 0, 0, 0, 0, 0], dtype=torch.float64))


def test_betweenness_runs_in_source_chunks(monkeypatch):
    import esc_course.graphs.importance as importance

    g = weighted(2)
    whole = betweenness_centrality(adj(g), weighted=True)
    monkeypatch.setattr(importance, "_source_chunks", lambda n, budget=0: 7)  # 30 sources in 5 chunks
    close(betweenness_centrality(adj(g), weighted=True), whole, atol=1e-12)


def test_karate_brokers_are_the_instructor_and_the_administrator():
    a = adj(nx.karate_club_graph(), weight=None)
    assert set(torch.argsort(betweenness_centrality(a), descending=True)[:2].tolist()) == {0, 33}
    assert set(torch.argsort(degree_centrality(a), descending=True)[:2].tolist()) == {0, 33}


# --- PageRank ------------------------------------------------------------------------------------------------------

def google_reference(g, alpha, weight="weight", personalization=None, dangling=None):
    """networkx's Google matrix (numpy only) and its stationary distribution: the left eigenvector of 1."""
    m = nx.google_matrix(g, alpha=alpha, weight=weight, personalization=personalization, dangling=dangling,
                         nodelist=sorted(g))
    w, v = np.linalg.eig(np.asarray(m).T)
    x = np.real(v[:, np.argmax(np.real(w))])
    return torch.tensor(x / x.sum(), dtype=torch.float64)


@pytest.mark.parametrize("name", GRAPHS)
@pytest.mark.parametrize("alpha", [0.85, 0.5])
def test_pagerank_matches_networkx(name, alpha):
    g = GRAPHS[name]()
    ref = google_reference(g, alpha)
    close(pagerank(adj(g), alpha, tol=1e-13), ref, atol=1e-10)
    close(pagerank_exact(adj(g), alpha), ref, atol=1e-10)
    unweighted = google_reference(g, alpha, weight=None)
    close(pagerank(adj(g, weight=None), alpha, tol=1e-13), unweighted, atol=1e-10)


def test_pagerank_with_personalization_and_dangling_distribution():
    g = directed_with_dangling()
    n = len(g)
    rng = np.random.default_rng(0)
    p, d = rng.uniform(0, 1, n), rng.uniform(0, 1, n)
    d[:5] = 0.0
    ref = google_reference(g, 0.85, personalization=dict(enumerate(p)), dangling=dict(enumerate(d)))
    ours = pagerank(adj(g), personalization=torch.tensor(p), dangling=torch.tensor(d), tol=1e-13)
    close(ours, ref, atol=1e-10)
    close(pagerank_exact(adj(g), personalization=torch.tensor(p), dangling=torch.tensor(d)), ref, atol=1e-10)


def test_pagerank_power_iteration_converges_at_rate_alpha():
    g = directed_with_dangling()
    alpha = 0.85
    scores, changes = pagerank_residuals(adj(g), alpha, tol=1e-12)
    k = torch.arange(1, len(changes) + 1, dtype=torch.float64)
    assert bool((changes <= 2 * alpha ** (k - 1) + 1e-15).all())  # the map is an alpha-contraction in L1
    assert changes[-1] < 1e-12 and float(scores.sum()) == pytest.approx(1.0, abs=1e-12)
    assert float((scores - pagerank_exact(adj(g), alpha)).abs().max()) < 1e-11


def test_pagerank_simple_closed_forms():
    n = 6
    cycle = adj(nx.cycle_graph(n, create_using=nx.DiGraph))
    close(pagerank(cycle), torch.full((n,), 1 / n, dtype=torch.float64))  # symmetry: all equal
    only_dangling = torch.zeros(4, 4, dtype=torch.float64)  # no edges: every node jumps uniformly
    close(pagerank(only_dangling), torch.full((4,), 0.25, dtype=torch.float64))


def test_pagerank_errors_are_named():
    a = adj(nx.karate_club_graph())
    with pytest.raises(ConvergenceError, match="max_iter=3"):
        pagerank(a, max_iter=3)
    with pytest.raises(ValueError, match="alpha"):
        pagerank(a, alpha=1.0)
    with pytest.raises(ValueError, match="personalization must be 34 non-negative"):
        pagerank(a, personalization=torch.ones(5))
    with pytest.raises(ValueError, match="non-negative edge weights"):
        pagerank(-a)
    with pytest.raises(ValueError, match="square"):
        pagerank(torch.ones(3, 4))
