"""Node positions for drawing a graph, in torch: a force-directed (spring) layout and a spectral layout."""

from __future__ import annotations

import torch

from esc_course.graphs.clustering import laplacian_eigenvectors
from esc_course.graphs.graph import check_adjacency


def _fit_box(pos: torch.Tensor) -> torch.Tensor:
    """Center at 0 and scale so the farthest coordinate is 1."""
    pos = pos - pos.mean(0)
    return pos / pos.abs().max().clamp_min(1e-12)


def spring_layout(adj: torch.Tensor, *, iterations: int = 200, k: float | None = None, seed: int = 0
                  ) -> torch.Tensor:
    """(N, 2) positions by Fruchterman and Reingold's force-directed placement (1991).

    Every pair of nodes repels with force k^2 / d, every edge pulls its ends together with force d^2 / k
    (``k``: the ideal edge length, 1 / sqrt(N) by default, which fills a unit box); each step moves a node along its net force by at most
    a temperature that cools linearly to 0, so the layout settles. Edge weights are ignored; the result depends
    on ``seed`` (the random start) only.
    """
    check_adjacency(adj)
    n = len(adj)
    gen = torch.Generator().manual_seed(seed)
    pos = torch.rand(n, 2, generator=gen, dtype=torch.float64)
    if n < 2:
        return pos.float() * 0
    linked = ((adj != 0) | (adj.T != 0)).to(torch.float64).cpu()
    k = 1.0 / n**0.5 if k is None else float(k)
    temperature = 0.1
    for step in range(iterations):
        delta = pos[:, None, :] - pos[None, :, :]  # (N, N, 2): from node j to node i
        dist = delta.norm(dim=-1).clamp_min(0.01)
        force = k * k / dist**2 - linked * dist / k  # repulsion minus attraction, per unit of delta
        move = (delta * force[..., None]).sum(1)
        length = move.norm(dim=1, keepdim=True).clamp_min(0.01)
        pos = pos + move / length * length.clamp_max(temperature * (1 - step / iterations))
    return _fit_box(pos).float()


def spectral_layout(adj: torch.Tensor) -> torch.Tensor:
    """(N, 2) positions from the second and third eigenvectors of the normalized Laplacian: nodes that are well
    connected land close together (the same eigenvectors spectral clustering uses)."""
    check_adjacency(adj)
    if len(adj) < 3:
        raise ValueError(f"a spectral layout needs at least 3 nodes, got {len(adj)}")
    vectors = laplacian_eigenvectors(adj, 3, kind="rw")[1]
    return _fit_box(vectors[:, 1:3]).float()
