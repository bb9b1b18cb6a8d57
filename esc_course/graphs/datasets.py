"""Graph data: Zachary's karate club (embedded), small examples of each kind of graph, and a stochastic block model.

Zachary's karate club: 34 members of a university karate club observed from 1970 to 1972; an edge joins two members
who interacted consistently outside the club, weighted by the number of contexts (0-7) they interacted in. The
club split in two after a dispute between the instructor ("Mr. Hi", member 0 here) and the administrator ("Officer",
member 33). Source: W. W. Zachary, "An Information Flow Model for Conflict and Fission in Small Groups",
Journal of Anthropological Research 33(4), 452-473 (1977): matrix C (the weighted edges) and the "club after
fission" column of Table 1 (the real split). Members are numbered from 0 here, from 1 in the paper; this is the same
copy networkx's ``karate_club_graph()`` ships (its "weight" and "club" attributes), which the tests check.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from esc_course.graphs.graph import adjacency, complete_graph


@dataclass(frozen=True)
class GraphData:
    """A graph as an edge list, with optional node labels and features.

    edges (E, 2) long; weights (E,) float or None; labels (N,) long or None; features (N, F) or None.
    """

    name: str
    num_nodes: int
    edges: torch.Tensor
    weights: torch.Tensor | None = None
    directed: bool = False
    labels: torch.Tensor | None = None
    features: torch.Tensor | None = None
    label_names: tuple[str, ...] = ()

    def adjacency(self, *, weighted: bool = True) -> torch.Tensor:
        """The (N, N) adjacency matrix; ``weighted=False`` puts 1 on every edge."""
        weights = self.weights if weighted else None
        return adjacency(self.edges, self.num_nodes, weights=weights, directed=self.directed)


# (member, member, number of contexts of interaction) for the 78 friendships, members numbered from 0.
_KARATE_EDGES = (
    (0, 1, 4), (0, 2, 5), (0, 3, 3), (0, 4, 3), (0, 5, 3), (0, 6, 3), (0, 7, 2), (0, 8, 2), (0, 10, 2), (0, 11, 3),
    (0, 12, 1), (0, 13, 3), (0, 17, 2), (0, 19, 2), (0, 21, 2), (0, 31, 2), (1, 2, 6), (1, 3, 3), (1, 7, 4),
    (1, 13, 5), (1, 17, 1), (1, 19, 2), (1, 21, 2), (1, 30, 2), (2, 3, 3), (2, 7, 4), (2, 8, 5), (2, 9, 1), (2, 13, 3),
    (2, 27, 2), (2, 28, 2), (2, 32, 2), (3, 7, 3), (3, 12, 3), (3, 13, 3), (4, 6, 2), (4, 10, 3), (5, 6, 5),
    (5, 10, 3), (5, 16, 3), (6, 16, 3), (8, 30, 3), (8, 32, 3), (8, 33, 4), (9, 33, 2), (13, 33, 3), (14, 32, 3),
    (14, 33, 2), (15, 32, 3), (15, 33, 4), (18, 32, 1), (18, 33, 2), (19, 33, 1), (20, 32, 3), (20, 33, 1),
    (22, 32, 2), (22, 33, 3), (23, 25, 5), (23, 27, 4), (23, 29, 3), (23, 32, 5), (23, 33, 4), (24, 25, 2),
    (24, 27, 3), (24, 31, 2), (25, 31, 7), (26, 29, 4), (26, 33, 2), (27, 33, 4), (28, 31, 2), (28, 33, 2),
    (29, 32, 4), (29, 33, 2), (30, 32, 3), (30, 33, 3), (31, 32, 4), (31, 33, 4), (32, 33, 5),
)
# Members who joined the instructor's club after the fission; the others joined the officer's.
_MR_HI = (0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 16, 17, 19, 21)
KARATE_INSTRUCTOR, KARATE_ADMINISTRATOR = 0, 33


def karate_club() -> GraphData:
    """Zachary's karate club: 34 members, 78 weighted friendships, labels 0 = Mr. Hi's club, 1 = the Officer's."""
    table = torch.tensor(_KARATE_EDGES, dtype=torch.long)
    labels = torch.ones(34, dtype=torch.long)
    labels[list(_MR_HI)] = 0
    return GraphData(name="karate_club", num_nodes=34, edges=table[:, :2], weights=table[:, 2].float(),
                     labels=labels, label_names=("Mr. Hi", "Officer"))


def example_graphs() -> dict[str, GraphData]:
    """One small graph of each kind the course names: undirected, weighted, directed and complete (5 nodes each).

    The directed one has a dangling node (4: edges in, none out), the case PageRank must handle."""
    ring = torch.tensor([(0, 1), (1, 2), (2, 3), (3, 4), (4, 0), (0, 2)])
    directed = torch.tensor([(0, 1), (1, 2), (2, 0), (2, 3), (3, 4), (0, 4), (1, 3)])  # node 4: no way out
    full = complete_graph(5).nonzero()
    return {
        "undirected": GraphData("undirected", 5, ring),
        "weighted": GraphData("weighted", 5, ring, weights=torch.tensor([3.0, 1.0, 2.0, 4.0, 1.0, 5.0])),
        "directed": GraphData("directed", 5, directed, directed=True),
        "complete": GraphData("complete", 5, full[full[:, 0] < full[:, 1]]),
    }


def stochastic_block_model(sizes: Sequence[int], probs, *, seed: int = 0) -> GraphData:
    """An undirected random graph with planted groups: nodes u in block i and v in block j are joined
    independently with probability probs[i][j] (Holland, Laskey and Leinhardt 1983). No self-loops.

    Args:
        sizes: nodes per block, e.g. (100, 100, 100).
        probs: (k, k) symmetric edge probabilities; a larger diagonal means denser groups.
    Returns a GraphData with labels = block of each node (nodes ordered block by block).
    """
    sizes = [int(s) for s in sizes]
    if not sizes or any(s < 1 for s in sizes):
        raise ValueError(f"sizes must be positive block sizes, got {sizes!r}")
    p = torch.as_tensor(probs, dtype=torch.float64)
    k = len(sizes)
    if p.shape != (k, k) or not torch.equal(p, p.T) or (p < 0).any() or (p > 1).any():
        raise ValueError(f"probs must be a symmetric ({k}, {k}) matrix of probabilities in [0, 1] (one row and column "
                         f"per block), got {p.tolist()}")
    labels = torch.repeat_interleave(torch.arange(k), torch.tensor(sizes))
    gen = torch.Generator().manual_seed(seed)
    n = len(labels)
    draw = torch.rand(n, n, generator=gen, dtype=torch.float64) < p[labels][:, labels]
    edges = torch.triu(draw, diagonal=1).nonzero()  # each pair drawn once, u < v
    return GraphData(name=f"sbm_{k}x{'-'.join(map(str, sizes))}", num_nodes=n, edges=edges, labels=labels,
                     label_names=tuple(f"block {i}" for i in range(k)))


def planted_partition(num_blocks: int, p_in: float, p_out: float) -> torch.Tensor:
    """(k, k) block probabilities with ``p_in`` on the diagonal and ``p_out`` elsewhere."""
    if not (0 <= p_out <= 1 and 0 <= p_in <= 1):
        raise ValueError(f"p_in and p_out must be probabilities in [0, 1], got p_in={p_in}, p_out={p_out}")
    probs = torch.full((num_blocks, num_blocks), float(p_out), dtype=torch.float64)
    return probs.fill_diagonal_(float(p_in))


def noisy_class_features(labels: torch.Tensor, dim: int, signal: float, *, seed: int = 0) -> torch.Tensor:
    """(N, dim) node features: a random unit direction per class times ``signal``, plus standard normal noise.

    With a small ``signal`` one node's features say little about its class; averaging over neighbours of the
    same class (what a graph convolution does) cancels the noise. This is what makes the graph useful.
    """
    gen = torch.Generator().manual_seed(seed)
    k = int(labels.max()) + 1
    means = torch.randn(k, dim, generator=gen)
    means = signal * means / means.norm(dim=1, keepdim=True)
    return means[labels.cpu()] + torch.randn(len(labels), dim, generator=gen)
