"""Graph representations (esc_course.graphs.graph), data sets and layouts, checked against networkx and closed forms."""

import ast
import subprocess
import sys
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
import torch

from esc_course.graphs import (
    GraphData,
    adjacency,
    complete_graph,
    degree,
    degree_matrix,
    edge_list,
    example_graphs,
    from_networkx,
    karate_club,
    laplacian,
    noisy_class_features,
    normalized_adjacency,
    planted_partition,
    spectral_layout,
    spring_layout,
    stochastic_block_model,
    symmetrize,
    to_networkx,
)

ROOT = Path(__file__).resolve().parents[1]


def nx_matrix(graph, weight="weight"):
    return torch.tensor(nx.to_numpy_array(graph, nodelist=sorted(graph), weight=weight), dtype=torch.float32)


def weighted_graph(seed=0, n=25, m=60):
    g = nx.gnm_random_graph(n, m, seed=seed)
    rng = np.random.default_rng(seed)
    for u, v in g.edges():
        g[u][v]["weight"] = float(rng.integers(1, 4))
    return g


# --- adjacency from an edge list ---------------------------------------------------------------------------------

def test_undirected_adjacency_matches_networkx():
    g = weighted_graph()
    edges = torch.tensor(list(g.edges()))
    weights = torch.tensor([d["weight"] for _, _, d in g.edges(data=True)])
    a = adjacency(edges, g.number_of_nodes(), weights=weights)
    assert torch.equal(a, a.T)
    assert torch.equal(a, nx_matrix(g))
    assert torch.equal(adjacency(edges, g.number_of_nodes()), nx_matrix(g, weight=None))


def test_directed_adjacency_is_not_symmetrized():
    a = adjacency([(0, 1), (1, 2)], directed=True)
    assert a.tolist() == [[0, 1, 0], [0, 0, 1], [0, 0, 0]]
    d = nx.DiGraph([(0, 1), (1, 2)])
    assert torch.equal(a, nx_matrix(d))


def test_repeated_edges_add_and_self_loops_count_once():
    a = adjacency([(0, 1), (0, 1), (2, 2)], weights=[1.0, 2.5, 4.0])
    assert a[0, 1] == a[1, 0] == 3.5
    assert a[2, 2] == 4.0  # not 8: the reverse of a self-loop is itself


def test_isolated_nodes_need_num_nodes():
    a = adjacency([(0, 1)], num_nodes=4)
    assert a.shape == (4, 4) and a[2:].abs().sum() == 0
    assert adjacency(torch.zeros(0, 2, dtype=torch.long), num_nodes=3).shape == (3, 3)


@pytest.mark.parametrize("kwargs, match", [
    (dict(edges=[(0, 1, 2)]), "shape \\(E, 2\\)"),
    (dict(edges=[(0, -1)]), ">= 0"),
    (dict(edges=[(0, 5)], num_nodes=3), "num_nodes must be an integer >= 6"),
    (dict(edges=[(0, 1)], weights=[1.0, 2.0]), "one value per edge"),
    (dict(edges=[(0, 1)], weights=[float("nan")]), "finite"),
])
def test_bad_edge_lists_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        adjacency(**kwargs)


def test_edge_list_inverts_adjacency():
    g = weighted_graph(1)
    a = nx_matrix(g)
    edges, weights = edge_list(a)
    assert len(edges) == g.number_of_edges() and bool((edges[:, 0] <= edges[:, 1]).all())
    assert torch.equal(adjacency(edges, len(a), weights=weights), a)
    d = torch.tensor([[0, 2.0, 0], [0, 0, 1.0], [3.0, 0, 0]])
    de, dw = edge_list(d)  # not symmetric: every entry is its own edge
    assert torch.equal(adjacency(de, 3, weights=dw, directed=True), d)


# --- degrees, normalized adjacency, Laplacian ----------------------------------------------------------------------

def test_degrees_match_networkx():
    g = weighted_graph(2)
    a = nx_matrix(g)
    nodes = sorted(g)
    assert degree(a, weighted=False).tolist() == [g.degree(v) for v in nodes]
    assert degree(a).tolist() == [g.degree(v, weight="weight") for v in nodes]
    d = nx.gnp_random_graph(20, 0.15, seed=3, directed=True)
    ad = nx_matrix(d)
    assert degree(ad, "out").tolist() == [d.out_degree(v) for v in sorted(d)]
    assert degree(ad, "in").tolist() == [d.in_degree(v) for v in sorted(d)]
    assert degree(ad, "both").tolist() == [d.degree(v) for v in sorted(d)]
    assert torch.equal(degree_matrix(a), torch.diag(degree(a)))
    with pytest.raises(ValueError, match="direction must be one of out, in, both"):
        degree(a, "sideways")


def test_normalized_adjacency_is_the_renormalized_gcn_matrix():
    a = nx_matrix(nx.karate_club_graph(), weight=None).double()
    a_hat = normalized_adjacency(a)
    tilde = a + torch.eye(len(a))
    d = tilde.sum(1)
    expected = tilde / torch.sqrt(d[:, None] * d[None, :])  # D~^-1/2 (A + I) D~^-1/2, entry by entry
    torch.testing.assert_close(a_hat, expected)
    values, vectors = torch.linalg.eigh(a_hat)
    assert values.max() == pytest.approx(1.0, abs=1e-9) and values.min() > -1.0  # self-loops keep it above -1
    top = vectors[:, -1].abs()
    torch.testing.assert_close(top / top.norm(), d.sqrt() / d.sqrt().norm())


def test_random_walk_normalization_rows_sum_to_one_except_dangling():
    a = adjacency([(0, 1), (1, 2), (0, 2)], num_nodes=4, directed=True)
    p = normalized_adjacency(a, self_loops=False, kind="rw")
    assert p.sum(1).tolist() == [1.0, 1.0, 0.0, 0.0]  # nodes 2 and 3 have no way out
    assert torch.isfinite(normalized_adjacency(a, self_loops=False)).all()
    with pytest.raises(ValueError, match="'sym' or 'rw'"):
        normalized_adjacency(a, kind="left")


def test_laplacian_closed_forms():
    g = weighted_graph(4)
    a = nx_matrix(g).double()
    lap = laplacian(a)
    torch.testing.assert_close(lap, torch.diag(a.sum(1)) - a)
    assert lap.sum(1).abs().max() < 1e-12
    x = torch.randn(len(a), dtype=torch.float64)
    edges, w = edge_list(a)
    quad = (w * (x[edges[:, 0]] - x[edges[:, 1]]) ** 2).sum()  # x^T L x = sum over edges w_uv (x_u - x_v)^2
    torch.testing.assert_close(x @ lap @ x, quad)
    values = torch.linalg.eigvalsh(lap)
    zeros = int((values.abs() < 1e-9).sum())
    assert values.min() > -1e-9 and zeros == nx.number_connected_components(g)
    sym = laplacian(a, "sym")
    deg = a.sum(1)
    inv = torch.where(deg > 0, deg.rsqrt(), torch.zeros_like(deg))
    torch.testing.assert_close(sym, torch.diag((deg > 0).double()) - inv[:, None] * a * inv[None, :])
    assert torch.linalg.eigvalsh(sym).max() <= 2 + 1e-9
    rw = laplacian(a, "rw")
    torch.testing.assert_close(rw[deg > 0], (lap / deg.clamp_min(1e-12)[:, None])[deg > 0])
    with pytest.raises(ValueError, match="valid kinds: unnormalized, sym, rw"):
        laplacian(a, "signless")


def test_directed_laplacian_uses_out_degrees_and_symmetrize():
    a = adjacency([(0, 1), (1, 2), (2, 0), (0, 2)], directed=True)
    lap = laplacian(a)
    assert lap.sum(1).abs().max() == 0 and lap.diagonal().tolist() == [2.0, 1.0, 1.0]
    s = symmetrize(a)
    assert torch.equal(s, s.T) and s[0, 2] == 1.0 and s[0, 1] == 0.5


def test_complete_graph_matches_networkx():
    assert torch.equal(complete_graph(6), nx_matrix(nx.complete_graph(6)))
    with pytest.raises(ValueError, match="positive integer"):
        complete_graph(0)


# --- networkx conversion -------------------------------------------------------------------------------------------

def test_networkx_round_trip():
    g = weighted_graph(5)
    a, nodes = from_networkx(g)
    assert nodes == list(g) and torch.equal(a, nx_matrix(g))
    back = to_networkx(a)
    assert not back.is_directed() and nx.utils.graphs_equal(back, g)
    d = nx.gnp_random_graph(15, 0.2, seed=1, directed=True)
    ad, _ = from_networkx(d, weight=None)
    assert to_networkx(ad).is_directed() and set(to_networkx(ad).edges()) == set(d.edges())


def test_from_networkx_keeps_node_order_and_rejects_multigraphs():
    g = nx.Graph([("b", "a"), ("a", "c")])
    a, nodes = from_networkx(g)
    assert nodes == ["b", "a", "c"] and a[0, 1] == 1 and a[1, 2] == 1 and a[0, 2] == 0
    with pytest.raises(ValueError, match="multigraphs"):
        from_networkx(nx.MultiGraph([(0, 1), (0, 1)]))
    with pytest.raises(TypeError, match="networkx Graph"):
        from_networkx([(0, 1)])


def test_networkx_is_imported_only_inside_the_conversions():
    for path in sorted((ROOT / "esc_course" / "graphs").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        allowed = {id(n) for f in ast.walk(tree) if isinstance(f, ast.FunctionDef)
                   and f.name in ("to_networkx", "from_networkx") for n in ast.walk(f)}
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            if any(n.split(".")[0] == "networkx" for n in names):
                assert id(node) in allowed, f"{path.name}:{node.lineno} imports networkx outside the conversions"


def test_importing_the_package_and_lab_does_not_load_networkx():
    code = ("import sys, esc_course.graphs, labs.week09_graphs; "
            "assert 'networkx' not in sys.modules; assert 'matplotlib' not in sys.modules")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


# --- data sets -----------------------------------------------------------------------------------------------------

def test_karate_club_is_zacharys_graph_and_split():
    club = karate_club()
    g = nx.karate_club_graph()
    assert club.num_nodes == 34 and len(club.edges) == 78
    assert torch.equal(club.adjacency(), nx_matrix(g))
    mr_hi = [g.nodes[v]["club"] == "Mr. Hi" for v in range(34)]
    assert club.labels.tolist() == [0 if m else 1 for m in mr_hi]
    assert club.label_names == ("Mr. Hi", "Officer")
    assert club.labels[0] == 0 and club.labels[33] == 1 and int((club.labels == 0).sum()) == 17
    assert torch.equal(club.adjacency(weighted=False), nx_matrix(g, weight=None))


def test_example_graphs_are_the_four_kinds():
    graphs = {name: g.adjacency() for name, g in example_graphs().items()}
    assert list(graphs) == ["undirected", "weighted", "directed", "complete"]
    assert torch.equal(graphs["undirected"], graphs["undirected"].T)
    assert set(graphs["undirected"].unique().tolist()) == {0.0, 1.0}
    assert graphs["weighted"].max() > 1 and torch.equal(graphs["weighted"], graphs["weighted"].T)
    assert not torch.equal(graphs["directed"], graphs["directed"].T)
    assert int((graphs["directed"].sum(1) == 0).sum()) == 1  # one dangling node for PageRank
    assert torch.equal(graphs["complete"], complete_graph(5))


def test_stochastic_block_model_has_the_planted_densities():
    sizes, p_in, p_out = [150, 150, 150], 0.1, 0.02
    g = stochastic_block_model(sizes, planted_partition(3, p_in, p_out), seed=0)
    a = g.adjacency()
    assert isinstance(g, GraphData) and g.num_nodes == 450 and torch.equal(a, a.T) and a.diagonal().sum() == 0
    same = g.labels[:, None] == g.labels[None, :]
    pairs_in = same.sum() - 450
    inside = a[same].sum() / pairs_in
    across = a[~same].sum() / (~same).sum()
    assert abs(float(inside) - p_in) < 0.1 * p_in and abs(float(across) - p_out) < 0.1 * p_out
    again = stochastic_block_model(sizes, planted_partition(3, p_in, p_out), seed=0)
    other = stochastic_block_model(sizes, planted_partition(3, p_in, p_out), seed=1)
    assert torch.equal(again.edges, g.edges) and not torch.equal(other.adjacency(), a)


@pytest.mark.parametrize("sizes, probs", [([10, 10], [[0.5, 0.1]]), ([10, 0], [[0.5, 0.1], [0.1, 0.5]]),
                                          ([10, 10], [[0.5, 0.2], [0.1, 0.5]]), ([10, 10], [[1.5, 0], [0, 1]])])
def test_stochastic_block_model_rejects_bad_arguments(sizes, probs):
    with pytest.raises(ValueError, match="sizes|probs"):
        stochastic_block_model(sizes, probs)


def test_noisy_class_features_carry_the_signal():
    labels = torch.arange(4).repeat_interleave(500)
    x = noisy_class_features(labels, dim=8, signal=2.0, seed=0)
    means = torch.stack([x[labels == c].mean(0) for c in range(4)])
    assert x.shape == (2000, 8)
    torch.testing.assert_close(means.norm(dim=1), torch.full((4,), 2.0), atol=0.15, rtol=0)
    noise = x - means[labels]
    assert abs(float(noise.std()) - 1.0) < 0.05


# --- layouts -------------------------------------------------------------------------------------------------------

def test_spring_layout_pulls_neighbours_together():
    a = karate_club().adjacency(weighted=False)
    pos = spring_layout(a, seed=0)
    assert pos.shape == (34, 2) and torch.isfinite(pos).all() and pos.abs().max() <= 1 + 1e-6
    assert torch.equal(pos, spring_layout(a, seed=0))
    dist = torch.cdist(pos, pos)
    off = ~torch.eye(34, dtype=torch.bool)
    assert dist[a > 0].mean() < 0.6 * dist[(a == 0) & off].mean()


def test_spectral_layout_separates_two_cliques():
    a = torch.block_diag(complete_graph(5), complete_graph(5))
    a[4, 5] = a[5, 4] = 1  # one bridge
    pos = spectral_layout(a)
    assert pos.shape == (10, 2)
    left, right = pos[:5, 0], pos[5:, 0]
    assert bool((left < 0).all() & (right > 0).all()) or bool((left > 0).all() & (right < 0).all())
