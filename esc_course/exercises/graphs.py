"""Week 9 exercises: PageRank by power iteration, the GCN's normalized adjacency, one graph convolution."""

from __future__ import annotations

import torch

from esc_course.exercises._cases import rand, randn
from esc_course.exercises.core import Case, Exercise
from esc_course.graphs.graph import normalized_adjacency
from esc_course.graphs.importance import pagerank as package_pagerank


def pagerank(adjacency, damping=0.85, tol=1e-10):
    """PageRank scores (n,) summing to 1, as networkx: adjacency (n, n) with A[i, j] the weight of the edge
    i -> j; the surfer follows an out-edge (by weight) with probability damping, else jumps to a uniform node;
    a dangling node (no out-edges) spreads its score uniformly. Power iteration until the L1 change < tol."""
    # BEGIN SOLUTION
    a = adjacency.double()  # float64: a float32 iteration may never get its change under tol = 1e-10
    n = a.shape[0]
    out = a.sum(dim=1)
    walk = a / out.clamp_min(1e-300)[:, None]  # row-stochastic; dangling rows stay 0
    dangling = (out == 0).double()
    x = torch.full((n,), 1.0 / n, dtype=torch.float64)
    for _ in range(10_000):
        new = damping * (x @ walk + (x @ dangling) / n) + (1 - damping) / n
        change = (new - x).abs().sum()
        x = new
        if change < tol:
            break
    return x.to(adjacency.dtype)
    # END SOLUTION


def _graph(n, edges, dtype=torch.float64):
    a = torch.zeros(n, n, dtype=dtype)
    for i, j, *w in edges:
        a[i, j] = w[0] if w else 1.0
    return a


def _pagerank_cases() -> list[Case]:
    def case(name, a, damping=0.85, hint=""):
        expected = package_pagerank(a, alpha=damping, tol=1e-12).to(a.dtype)
        return Case(name, (a, damping, 1e-10), expected, hint, rtol=1e-6, atol=1e-8)
    damp = ("감쇠 계수(damping factor) d: 확률 d 로 나가는 간선(out-edge)을 따르고, 1 - d 로 아무 노드로나 "
            "순간이동합니다 (teleport): x <- d (x P + dangling) + (1 - d) / n.")
    dangle = ("나가는 간선이 없는 노드(dangling node)의 점수는 버리지 말고 모든 노드에 고르게 나눕니다 "
              "(spread uniformly, as networkx): 그래야 합이 1 입니다.")
    return [
        case("4 nodes, every node has out-edges", _graph(4, [(0, 1), (0, 2), (1, 2), (2, 0), (3, 2)]), hint=damp),
        case("dangling node 2 (no out-edges)", _graph(4, [(0, 1), (0, 2), (1, 2), (3, 0)]), hint=dangle),
        case("damping 0.5", _graph(5, [(0, 1), (1, 2), (2, 3), (3, 4), (4, 0), (2, 0)]), 0.5, damp),
        case("weighted edges", _graph(3, [(0, 1, 3.0), (0, 2, 1.0), (1, 2, 1.0), (2, 0, 2.0), (2, 1, 0.5)]),
             hint="간선의 가중치(weight)에 비례해 나갑니다: P = A / A.sum(1, keepdim=True)."),
        case("single node", torch.zeros(1, 1, dtype=torch.float64), hint=dangle),
        case("two components, undirected", _graph(5, [(0, 1), (1, 0), (1, 2), (2, 1), (3, 4), (4, 3)])),
        case("float32 adjacency (return float32)",
             (rand(6, 6, seed=1) > 0.6).float(), hint="입력과 같은 dtype 으로 돌려주세요 (compute in float64, "
             "return adjacency.dtype)."),
    ]


def gcn_normalize(adjacency):
    """The GCN's renormalized adjacency (Kipf and Welling 2017): A_hat = D^-1/2 (A + I) D^-1/2, D the degrees
    of A + I; adjacency (n, n) symmetric."""
    # BEGIN SOLUTION
    a = adjacency + torch.eye(adjacency.shape[0], dtype=adjacency.dtype)
    d_inv_sqrt = a.sum(dim=1).pow(-0.5)
    return d_inv_sqrt[:, None] * a * d_inv_sqrt[None, :]
    # END SOLUTION


def _undirected(n, edges, dtype=torch.float32):
    a = _graph(n, edges, dtype)
    return torch.maximum(a, a.T)


def _gcn_norm_cases() -> list[Case]:
    def case(name, a, hint=""):
        return Case(name, (a,), normalized_adjacency(a, self_loops=True, kind="sym"), hint)
    loops = "자기 루프(self-loop)를 더합니다: A + I, 그리고 그 차수(degree)로 정규화합니다."
    return [
        case("path 0-1-2", _undirected(3, [(0, 1), (1, 2)]), loops),
        case("star: degrees differ (symmetric D^-1/2 on both sides)", _undirected(4, [(0, 1), (0, 2), (0, 3)]),
             "양쪽에 D^-1/2 를 곱합니다 (symmetric): D^-1 (A + I) 는 행(row) 정규화(random walk)입니다."),
        case("isolated node 3", _undirected(4, [(0, 1), (1, 2)]), loops),
        case("weighted, float64", _undirected(3, [(0, 1, 2.0), (1, 2, 0.5)], torch.float64)),
    ]


def gcn_layer(adjacency, x, weight):
    """One graph convolution layer: relu(A_hat @ x @ weight) with A_hat = D^-1/2 (A + I) D^-1/2; adjacency (n, n)
    symmetric, x (n, in) node features, weight (in, out)."""
    # BEGIN SOLUTION
    a = adjacency + torch.eye(adjacency.shape[0], dtype=adjacency.dtype)
    d_inv_sqrt = a.sum(dim=1).pow(-0.5)
    a_hat = d_inv_sqrt[:, None] * a * d_inv_sqrt[None, :]
    return torch.relu(a_hat @ x @ weight)
    # END SOLUTION


def _gcn_layer_cases() -> list[Case]:
    def case(name, a, x, w, hint=""):
        expected = torch.relu(normalized_adjacency(a, self_loops=True, kind="sym") @ x @ w)
        return Case(name, (a, x, w), expected, hint, rtol=1e-5, atol=1e-6)
    prop = ("이웃의 특징(feature)을 모읍니다: A_hat @ x (정규화된 인접 행렬, self-loop 포함), 그다음 @ weight, "
            "마지막에 relu.")
    return [
        case("path of 4, features 3 -> 2", _undirected(4, [(0, 1), (1, 2), (2, 3)]), randn(4, 3, seed=1),
             randn(3, 2, seed=2), prop),
        case("star of 5, features 2 -> 4", _undirected(5, [(0, 1), (0, 2), (0, 3), (0, 4)]), randn(5, 2, seed=3),
             randn(2, 4, seed=4), prop),
        case("one node", torch.zeros(1, 1), randn(1, 3, seed=5), randn(3, 3, seed=6),
             "노드 하나면 A_hat = [[1]]: relu(x @ weight)."),
        case("float64, zero features", _undirected(3, [(0, 1), (1, 2)], torch.float64),
             torch.zeros(3, 2, dtype=torch.float64), randn(2, 2, seed=7, dtype=torch.float64)),
    ]


EXERCISES = [
    Exercise("week09.pagerank", pagerank,
             "PageRank 를 거듭제곱 반복(power iteration)으로: 감쇠 계수(damping), dangling 노드는 고르게 나눔, 합 1 "
             "(networkx 와 같게).",
             "PageRank by power iteration: damping, dangling nodes spread uniformly, scores summing to 1 (as "
             "networkx).",
             _pagerank_cases, "x <- d (x P + (x . dangling) / n) + (1 - d) / n 를 L1 변화가 tol 아래가 될 때까지."),
    Exercise("week09.gcn_normalize", gcn_normalize,
             "GCN 의 정규화된 인접 행렬(normalized adjacency): D^-1/2 (A + I) D^-1/2.",
             "The GCN's normalized adjacency D^-1/2 (A + I) D^-1/2.",
             _gcn_norm_cases, "a = A + I; d = a.sum(1) ** -0.5; d[:, None] * a * d[None, :]"),
    Exercise("week09.gcn_layer", gcn_layer,
             "그래프 합성곱층(graph convolution layer) 하나: relu(A_hat @ x @ weight).",
             "One graph convolution layer: relu(A_hat @ x @ weight).",
             _gcn_layer_cases, "A_hat 을 만들고 (gcn_normalize 처럼), 이웃을 모은 뒤 weight 를 곱하고 relu."),
]
