"""A graph convolutional network (Kipf and Welling 2017, "Semi-Supervised Classification with Graph Convolutional
Networks", ICLR), written over the normalized adjacency A_hat = D~^-1/2 (A + I) D~^-1/2.

One layer is  H' = A_hat H W + b : every node averages its neighbours' (and its own) features, weighted by
1 / sqrt(d_u d_v), then a shared linear map. Stacking L layers mixes information over L hops. The model is
transductive: it holds the graph (A_hat) and classifies the nodes of that graph, trained on the few labelled ones
(``NodeClassifier`` turns "which nodes" into the batch).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from esc_course.models.activations import get_activation


class GraphConv(nn.Module):
    """H' = A_hat (H W) + b, for node features H (N, in_features) -> (N, out_features).

    ``a_hat`` is passed to ``forward``: dense (N, N) or a torch.sparse matrix. H W comes first: layers usually
    narrow (34 -> 4 on the karate club), so the N x N product then works on the narrower matrix.
    """

    def __init__(self, in_features: int, out_features: int, *, bias: bool = True):
        super().__init__()
        if in_features < 1 or out_features < 1:
            raise ValueError(f"GraphConv sizes must be positive, got in_features={in_features}, "
                             f"out_features={out_features}")
        self.linear = nn.Linear(in_features, out_features, bias=False)
        nn.init.xavier_uniform_(self.linear.weight)  # the GCN paper's Glorot initialization
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None

    def forward(self, h: torch.Tensor, a_hat: torch.Tensor) -> torch.Tensor:
        out = a_hat @ self.linear(h)
        return out + self.bias if self.bias is not None else out


class GCN(nn.Module):
    """GraphConv -> activation -> dropout, repeated per hidden size, then an output GraphConv (class logits).

    Args:
        a_hat: the (N, N) normalized adjacency with self-loops (``normalized_adjacency(A)``), kept as a buffer.
        in_features: features per node (N for one-hot "featureless" nodes: x = I).
        hidden: sizes of the hidden layers; the last one is the node embedding ``embed`` returns.
        out_features: number of classes.
        activation: any name in ``esc_course.models.ACTIVATIONS``.
        dropout: on the input of every layer, as in the paper (0.5 there).
    Input x (N, in_features) -> logits (N, out_features).
    """

    def __init__(self, a_hat: torch.Tensor, in_features: int, hidden: Sequence[int] = (16,), out_features: int = 2,
                 *, activation: str = "relu", dropout: float = 0.5):
        super().__init__()
        if a_hat.ndim != 2 or a_hat.shape[0] != a_hat.shape[1]:
            raise ValueError(f"a_hat must be a square (N, N) matrix, got shape {tuple(a_hat.shape)}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        sizes = [in_features, *hidden]
        self.hidden = nn.ModuleList(GraphConv(i, o) for i, o in zip(sizes[:-1], sizes[1:]))
        self.out = GraphConv(sizes[-1], out_features)
        self.act = get_activation(activation)
        self.dropout = dropout
        self.register_buffer("a_hat", a_hat)
        self.in_features, self.out_features = in_features, out_features

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(N, hidden[-1]) the last hidden layer's output: the learned node embedding."""
        if x.shape != (self.a_hat.shape[0], self.in_features):
            raise ValueError(f"GCN expects node features of shape ({self.a_hat.shape[0]}, {self.in_features}) "
                             f"(one row per node of its graph), got {tuple(x.shape)}")
        h = x
        for layer in self.hidden:
            h = self.act(layer(F.dropout(h, self.dropout, self.training), self.a_hat))
        return h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(x)
        return self.out(F.dropout(h, self.dropout, self.training), self.a_hat)


class NodeClassifier(nn.Module):
    """Scores chosen nodes of one graph: ``forward(idx (B,)) -> model(features)[idx]`` (B, classes).

    A GCN sees the whole graph in every forward pass, yet is trained on the labelled nodes only (semi-supervised,
    transductive). Making the nodes' *indices* the batch says exactly that: ``fit`` gets ``(labelled indices,
    their labels)`` for training and ``(other indices, their labels)`` for evaluation, with the plain
    cross-entropy and accuracy. Any model from node features to per-node logits fits (an MLP that ignores the
    graph, for comparison).
    """

    def __init__(self, model: nn.Module, features: torch.Tensor):
        super().__init__()
        self.model = model
        self.register_buffer("features", features)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.model(self.features)[idx]


def labelled_per_class(labels: torch.Tensor, per_class: int, *, seed: int = 0) -> torch.Tensor:
    """Indices of ``per_class`` randomly drawn nodes of every class (the semi-supervised training set)."""
    gen = torch.Generator().manual_seed(seed)
    picks = []
    for c in torch.unique(labels).tolist():
        members = (labels == c).nonzero().reshape(-1).cpu()
        if len(members) < per_class:
            raise ValueError(f"class {c} has {len(members)} nodes, fewer than per_class={per_class}")
        picks.append(members[torch.randperm(len(members), generator=gen)[:per_class]])
    return torch.cat(picks).sort().values.to(labels.device)
