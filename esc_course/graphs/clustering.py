"""Network clustering: spectral clustering from the Laplacian's eigenvectors, modularity, and agreement.

The Laplacian's quadratic form x^T L x = sum over edges w_uv (x_u - x_v)^2 is small when x changes little along
edges, so its eigenvectors with the smallest eigenvalues vary slowly inside densely knit groups and change between
them. The second one (the Fiedler vector) splits a graph in two by its sign: the relaxed minimum (normalized) cut
(Shi and Malik 2000). For k groups, k-means on the rows of the first k eigenvectors (Ng, Jordan and Weiss 2001).
A directed graph is clustered through its undirected version (A + A^T) / 2.
"""

from __future__ import annotations

import itertools

import torch

from esc_course.graphs.graph import LAPLACIANS, check_adjacency, laplacian, symmetrize
from esc_course.metrics import confusion_matrix


def _sign_fixed(vectors: torch.Tensor) -> torch.Tensor:
    """Eigenvectors are defined up to sign: flip each column so its largest-magnitude entry is positive."""
    idx = vectors.abs().argmax(0)
    signs = torch.sign(vectors[idx, torch.arange(vectors.shape[1])])
    return vectors * torch.where(signs == 0, torch.ones_like(signs), signs)


def laplacian_eigenvectors(adj: torch.Tensor, k: int, *, kind: str = "rw") -> tuple[torch.Tensor, torch.Tensor]:
    """The k smallest eigenvalues (k,) and unit eigenvectors (N, k) of a Laplacian, in float64.

    kind="unnormalized": L = D - A (ratio cut); "sym": L_sym = I - D^-1/2 A D^-1/2; "rw": L_rw = I - D^-1 A
    (normalized cut: L v = lambda D v), computed as D^-1/2 u from L_sym's symmetric eigenproblem.
    """
    check_adjacency(adj)
    n = len(adj)
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= n:
        raise ValueError(f"k must be an integer in [1, {n}] (the number of nodes), got {k!r}")
    if kind not in LAPLACIANS:
        raise ValueError(f"unknown Laplacian kind {kind!r}; valid kinds: {', '.join(LAPLACIANS)}")
    a = symmetrize(adj.to(torch.float64))
    values, vectors = torch.linalg.eigh(laplacian(a, "unnormalized" if kind == "unnormalized" else "sym"))
    values, vectors = values[:k], vectors[:, :k]
    if kind == "rw":
        deg = a.sum(1)
        vectors = vectors / torch.where(deg > 0, deg, torch.ones_like(deg)).sqrt()[:, None]
        vectors = vectors / vectors.norm(dim=0).clamp_min(1e-300)
    return values, _sign_fixed(vectors)


def fiedler_vector(adj: torch.Tensor, *, normalized: bool = True) -> torch.Tensor:
    """(N,) the eigenvector of the second-smallest eigenvalue of L_rw (normalized) or L = D - A."""
    return laplacian_eigenvectors(adj, 2, kind="rw" if normalized else "unnormalized")[1][:, 1]


def spectral_bisection(adj: torch.Tensor, *, normalized: bool = True) -> torch.Tensor:
    """(N,) labels 0/1: the sign of the Fiedler vector (0 where it is negative)."""
    return (fiedler_vector(adj, normalized=normalized) >= 0).long()


def kmeans(x: torch.Tensor, k: int, *, iters: int = 100, n_init: int = 10, seed: int = 0
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """Lloyd's k-means with k-means++ seeding (Arthur and Vassilvitskii 2007), best of ``n_init`` runs by the
    within-cluster sum of squares. x (N, D) -> (labels (N,), centers (k, D))."""
    if x.ndim != 2 or not 1 <= k <= len(x):
        raise ValueError(f"kmeans needs x of shape (N, D) and k in [1, N], got x {tuple(x.shape)}, k={k!r}")
    gen = torch.Generator().manual_seed(seed)
    x = x.to(torch.float64)
    best = (float("inf"), None, None)
    for _ in range(n_init):
        centers = x[torch.randint(len(x), (1,), generator=gen)]
        for _ in range(1, k):  # next center drawn with probability proportional to squared distance
            d2 = torch.cdist(x, centers).min(1).values.pow(2)
            probs = d2 / d2.sum() if d2.sum() > 0 else torch.full_like(d2, 1.0 / len(d2))
            centers = torch.cat([centers, x[torch.multinomial(probs.cpu(), 1, generator=gen).to(x.device)]])
        for _ in range(iters):
            labels = torch.cdist(x, centers).argmin(1)
            counts = torch.bincount(labels, minlength=k).to(x.dtype)
            sums = torch.zeros_like(centers).index_add_(0, labels, x)
            new = torch.where(counts[:, None] > 0, sums / counts.clamp_min(1)[:, None], centers)
            if torch.equal(new, centers):
                break
            centers = new
        labels = torch.cdist(x, centers).argmin(1)
        inertia = float((x - centers[labels]).pow(2).sum())
        if inertia < best[0]:
            best = (inertia, labels, centers)
    return best[1], best[2]


def spectral_clustering(adj: torch.Tensor, k: int, *, normalized: bool = True, seed: int = 0,
                        n_init: int = 10) -> torch.Tensor:
    """(N,) cluster labels in [0, k): k-means on the rows of the first k Laplacian eigenvectors.

    With normalized=True the rows are the eigenvectors of L_sym scaled to unit length (Ng, Jordan and Weiss
    2001), which keeps low-degree nodes from crowding the origin.
    """
    rows = laplacian_eigenvectors(adj, k, kind="sym" if normalized else "unnormalized")[1]
    if normalized:
        rows = rows / rows.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return kmeans(rows, k, n_init=n_init, seed=seed)[0]


def modularity(adj: torch.Tensor, labels: torch.Tensor, *, resolution: float = 1.0) -> float:
    """Newman's modularity Q of a partition: the share of edge weight inside groups minus what a random graph with
    the same degrees would put there (Newman 2006, "Modularity and community structure in networks").

    Undirected: Q = 1/(2m) sum_ij [A_ij - resolution * k_i k_j / (2m)] [c_i = c_j], m the total edge weight.
    Directed:   Q = 1/m    sum_ij [A_ij - resolution * k_i^out k_j^in / m] [c_i = c_j].
    """
    check_adjacency(adj)
    a = adj.to(torch.float64)
    labels = torch.as_tensor(labels, device=a.device).long().reshape(-1)
    if labels.shape != (len(a),):
        raise ValueError(f"labels must have one entry per node ({len(a)}), got shape {tuple(labels.shape)}")
    total = a.sum()  # 2m for an undirected graph, m for a directed one
    if total <= 0:
        raise ValueError("modularity is undefined for a graph without edges")
    same = (labels[:, None] == labels[None, :]).to(torch.float64)
    expected = a.sum(1)[:, None] * a.sum(0)[None, :] / total
    return float(((a - resolution * expected) * same).sum() / total)


def agreement(labels: torch.Tensor, truth: torch.Tensor) -> float:
    """Share of nodes whose cluster matches their true group, under the best matching of cluster ids to groups
    (cluster ids are arbitrary: a split with the sides swapped is the same split). At most 8 groups."""
    labels = torch.as_tensor(labels).long().reshape(-1).cpu()
    truth = torch.as_tensor(truth).long().reshape(-1).cpu()
    if labels.shape != truth.shape:
        raise ValueError(f"labels and truth must have the same shape, got {tuple(labels.shape)} and "
                         f"{tuple(truth.shape)}")
    k = int(max(labels.max(), truth.max())) + 1
    if k > 8:
        raise ValueError(f"agreement tries every matching of ids, so at most 8 groups; got {k}")
    counts = confusion_matrix(labels, truth, k)  # rows: true group, columns: cluster id
    rows = torch.arange(k)
    best = max(int(counts[rows, torch.tensor(perm)].sum()) for perm in itertools.permutations(range(k)))
    return best / len(truth)
