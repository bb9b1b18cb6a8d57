"""Spectral clustering, k-means, modularity and agreement (esc_course.graphs.clustering)."""

import networkx as nx
import numpy as np
import pytest
import torch

from esc_course.graphs import (
    agreement,
    complete_graph,
    fiedler_vector,
    from_networkx,
    karate_club,
    kmeans,
    laplacian,
    laplacian_eigenvectors,
    modularity,
    planted_partition,
    spectral_bisection,
    spectral_clustering,
    stochastic_block_model,
)


def communities(labels):
    labels = torch.as_tensor(labels)
    return [set((labels == c).nonzero().reshape(-1).tolist()) for c in labels.unique().tolist()]


# --- modularity ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("resolution", [1.0, 0.5])
def test_modularity_matches_networkx_on_the_karate_club(weighted, resolution):
    club = karate_club()
    g = nx.karate_club_graph()
    ours = modularity(club.adjacency(weighted=weighted), club.labels, resolution=resolution)
    ref = nx.community.modularity(g, communities(club.labels), weight="weight" if weighted else None,
                                  resolution=resolution)
    assert ours == pytest.approx(ref, abs=1e-12)


def test_modularity_matches_networkx_on_a_directed_graph():
    g = nx.gnp_random_graph(40, 0.1, seed=2, directed=True)
    a = from_networkx(g)[0]
    labels = torch.arange(40) % 4
    assert modularity(a, labels) == pytest.approx(nx.community.modularity(g, communities(labels)), abs=1e-12)


def test_modularity_closed_forms_and_errors():
    two = torch.block_diag(complete_graph(4), complete_graph(4))
    split = torch.tensor([0] * 4 + [1] * 4)
    assert modularity(two, split) == pytest.approx(0.5)  # two equal disconnected groups: 1 - 2 * (1/2)^2
    assert modularity(two, torch.zeros(8)) == pytest.approx(0.0)  # one group: nothing beyond chance
    with pytest.raises(ValueError, match="one entry per node"):
        modularity(two, torch.zeros(3))
    with pytest.raises(ValueError, match="without edges"):
        modularity(torch.zeros(3, 3), torch.zeros(3))


# --- agreement -----------------------------------------------------------------------------------------------------

def test_agreement_ignores_cluster_names():
    truth = torch.tensor([0, 0, 0, 1, 1, 2, 2])
    assert agreement(torch.tensor([2, 2, 2, 0, 0, 1, 1]), truth) == 1.0
    assert agreement(torch.tensor([1, 1, 0, 0, 0, 2, 2]), truth) == pytest.approx(6 / 7)
    assert agreement(1 - truth.clamp(max=1), truth.clamp(max=1)) == 1.0
    with pytest.raises(ValueError, match="same shape"):
        agreement(truth[:3], truth)
    with pytest.raises(ValueError, match="at most 8"):
        agreement(torch.arange(9), torch.arange(9))


# --- eigenvectors --------------------------------------------------------------------------------------------------

def test_laplacian_eigenvectors_solve_the_normalized_cut_problem():
    a = karate_club().adjacency(weighted=False).double()
    deg = a.sum(1)
    lap = laplacian(a)
    values, vectors = laplacian_eigenvectors(a, 4, kind="rw")
    residual = lap @ vectors - deg[:, None] * vectors * values[None, :]  # L v = lambda D v
    assert residual.abs().max() < 1e-10
    ref = np.linalg.eigvalsh(laplacian(a, "sym").numpy())[:4]
    np.testing.assert_allclose(values.numpy(), ref, atol=1e-10)
    assert values[0] == pytest.approx(0.0, abs=1e-10)
    fiedler = fiedler_vector(a)
    assert float(deg @ fiedler) == pytest.approx(0.0, abs=1e-10)  # D-orthogonal to the constant vector
    _, plain = laplacian_eigenvectors(a, 2, kind="unnormalized")
    torch.testing.assert_close(lap @ plain[:, 1], plain[:, 1] * torch.linalg.eigvalsh(lap)[1])
    with pytest.raises(ValueError, match="valid kinds"):
        laplacian_eigenvectors(a, 2, kind="signless")
    with pytest.raises(ValueError, match="k must be an integer in \\[1, 34\\]"):
        laplacian_eigenvectors(a, 40)


def test_fiedler_vector_sign_is_fixed():
    a = karate_club().adjacency(weighted=False)
    v = fiedler_vector(a)
    assert v[v.abs().argmax()] > 0
    flipped = a.flip(0).flip(1)  # the same graph with its nodes numbered backwards: the same vector, same sign
    torch.testing.assert_close(fiedler_vector(flipped).flip(0), v)
    assert torch.equal(spectral_bisection(flipped).flip(0), spectral_bisection(a))


def test_bisection_of_two_cliques_with_a_bridge_is_exact():
    a = torch.block_diag(complete_graph(6), complete_graph(6))
    a[5, 6] = a[6, 5] = 1
    truth = torch.tensor([0] * 6 + [1] * 6)
    for normalized in (True, False):
        assert agreement(spectral_bisection(a, normalized=normalized), truth) == 1.0


def test_spectral_split_of_the_karate_club_matches_the_real_split():
    club = karate_club()
    split = spectral_bisection(club.adjacency(weighted=False))
    assert agreement(split, club.labels) >= 32 / 34
    matched = split if (split == club.labels).float().mean() > 0.5 else 1 - split
    assert set((matched != club.labels).nonzero().reshape(-1).tolist()) <= {2, 8}  # the two borderline members
    assert agreement(spectral_bisection(club.adjacency()), club.labels) >= 33 / 34  # weights help


def test_directed_graphs_are_clustered_through_their_undirected_version():
    a = torch.block_diag(complete_graph(5), complete_graph(5)).triu()  # one direction per edge
    a[4, 5] = 1
    assert agreement(spectral_bisection(a), torch.tensor([0] * 5 + [1] * 5)) == 1.0


@pytest.mark.parametrize("seed", [0, 1])
def test_spectral_clustering_recovers_planted_blocks(seed):
    g = stochastic_block_model([60] * 4, planted_partition(4, 0.3, 0.02), seed=seed)
    labels = spectral_clustering(g.adjacency(), 4, seed=seed)
    assert labels.shape == (240,) and set(labels.tolist()) == {0, 1, 2, 3}
    assert agreement(labels, g.labels) >= 0.95
    assert modularity(g.adjacency(), labels) > 0.5


def test_spectral_clustering_finds_little_in_a_structureless_graph():
    g = stochastic_block_model([240], [[0.05]], seed=0)  # one block: an Erdos-Renyi graph
    planted = stochastic_block_model([60] * 4, planted_partition(4, 0.17, 0.01), seed=0)  # same mean degree
    q_random = modularity(g.adjacency(), spectral_clustering(g.adjacency(), 4))
    q_planted = modularity(planted.adjacency(), spectral_clustering(planted.adjacency(), 4))
    assert q_planted > q_random + 0.2


# --- k-means -------------------------------------------------------------------------------------------------------

def test_kmeans_finds_separated_blobs():
    gen = torch.Generator().manual_seed(0)
    centers = torch.tensor([[0.0, 0.0], [6.0, 0.0], [0.0, 6.0]])
    truth = torch.arange(3).repeat_interleave(50)
    x = centers[truth] + 0.7 * torch.randn(150, 2, generator=gen)  # 4 standard deviations to the middle
    labels, found = kmeans(x, 3, seed=0)
    assert agreement(labels, truth) == 1.0
    order = torch.cdist(found.float(), centers).argmin(1)
    assert sorted(order.tolist()) == [0, 1, 2]
    assert torch.cdist(found.float(), centers).min(1).values.max() < 0.5
    again, _ = kmeans(x, 3, seed=0)
    assert torch.equal(labels, again)
    inertia = ((x.double() - found[labels]) ** 2).sum()
    shuffled = labels[torch.randperm(150, generator=gen)]
    means = torch.stack([x[shuffled == c].double().mean(0) for c in range(3)])
    assert inertia < ((x.double() - means[shuffled]) ** 2).sum()
    with pytest.raises(ValueError, match="k in \\[1, N\\]"):
        kmeans(x, 0)
