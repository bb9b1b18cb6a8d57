"""Week 9: graphs: representations, node importance, clustering and a graph convolutional network.

A graph is its adjacency matrix: undirected graphs have a symmetric one, weighted graphs carry numbers instead of
ones, directed graphs need not be symmetric, a complete graph is all ones off the diagonal. On Zachary's karate club
(34 members who split into two clubs) the lab ranks members by degree, closeness, betweenness and PageRank (power
iteration, checked against the exact linear-system solution), splits the club in two with the Laplacian's Fiedler
vector and compares the split with the real one, then trains a graph convolutional network (Kipf and Welling 2017)
that learns the split from one labelled member per side. A stochastic block model with noisy node features shows
why a GCN helps: neither the graph alone (spectral clustering) nor the features alone (an MLP) do as well.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from esc_course.config import quick_variant
from esc_course.device import get_device
from esc_course.graphs import (
    GCN,
    NodeClassifier,
    agreement,
    betweenness_centrality,
    closeness_centrality,
    degree,
    degree_centrality,
    example_graphs,
    fiedler_vector,
    karate_club,
    labelled_per_class,
    laplacian,
    laplacian_eigenvectors,
    modularity,
    noisy_class_features,
    normalized_adjacency,
    pagerank_exact,
    pagerank_residuals,
    planted_partition,
    spectral_bisection,
    spectral_clustering,
    spring_layout,
    stochastic_block_model,
)
from esc_course.graphs.datasets import KARATE_ADMINISTRATOR, KARATE_INSTRUCTOR
from esc_course.models import MLP
from esc_course.runs import LabResult, finish
from esc_course.seed import seed_everything
from esc_course.train import History, fit

HEADLINE = "gcn_accuracy"


@dataclass
class Config:
    alpha: float = 0.85            # PageRank damping: probability of following an edge (else a random jump)
    pagerank_tol: float = 1e-10    # power iteration stops when the L1 change of the scores is below this
    karate_hidden: int = 4         # karate GCN: width of the first hidden layer; the second is the 2-D embedding
    karate_epochs: int = 300       # full-batch Adam steps on the two labelled members
    lr: float = 0.01               # Adam step size for every GCN and MLP (Kipf and Welling 2017)
    weight_decay: float = 5e-4     # L2 penalty (Kipf and Welling 2017)
    seeds: int = 5                 # repeats for mean and spread: new initializations (and new SBM graphs)
    sbm_blocks: int = 4            # groups planted in the stochastic block model
    sbm_block_size: int = 250      # nodes per group
    sbm_degree_in: float = 5.0     # expected neighbours of a node inside its own group
    sbm_degree_out: float = 3.0    # expected neighbours of a node in all other groups together
    sbm_feature_dim: int = 16      # node features: the class direction times sbm_signal plus N(0, I) noise
    sbm_signal: float = 1.5        # length of the class direction (the noise has std 1 per dimension)
    sbm_labels_per_class: int = 5  # labelled nodes per group; the other nodes are scored
    sbm_hidden: int = 16           # hidden width of the SBM's GCN and MLP
    sbm_dropout: float = 0.5       # dropout of the SBM's GCN and MLP (Kipf and Welling 2017)
    sbm_epochs: int = 200          # full-batch Adam steps on the SBM
    layout_iterations: int = 200   # spring-layout steps for the drawings
    seed: int = 0
    device: str = "auto"
    quick: bool = False            # small, fast variant for CPU CI and weak laptops


QUICK = dict(karate_epochs=100, seeds=2, sbm_block_size=100, sbm_epochs=100)


def graph_kinds() -> tuple[dict[str, torch.Tensor], list[dict]]:
    """The four example graphs' adjacency matrices and a table of what tells them apart."""
    graphs = {name: g.adjacency() for name, g in example_graphs().items()}
    rows = []
    for name, a in graphs.items():
        lap = laplacian(a)
        rows.append({"graph": name, "nodes": len(a), "nonzero_entries": int((a != 0).sum()),
                     "symmetric": bool(torch.equal(a, a.T)), "out_degree": degree(a, "out").tolist(),
                     "in_degree": degree(a, "in").tolist(),
                     "laplacian_row_sums_zero": bool(lap.sum(1).abs().max() < 1e-6)})
    return graphs, rows


def importance(adj: torch.Tensor, alpha: float, tol: float) -> dict[str, torch.Tensor]:
    """The four importance measures of every node (unweighted distances; PageRank over the edges)."""
    return {"degree": degree_centrality(adj), "closeness": closeness_centrality(adj),
            "betweenness": betweenness_centrality(adj),
            "pagerank": pagerank_residuals(adj, alpha, tol=tol)[0]}


def pagerank_check(graphs: dict[str, torch.Tensor], alpha: float, tol: float):
    """Power iteration against the exact solve on each graph: (table rows, residual curves)."""
    rows, curves = [], {}
    for name, a in graphs.items():
        scores, changes = pagerank_residuals(a, alpha, tol=tol)
        exact = pagerank_exact(a, alpha)
        rows.append({"graph": name, "nodes": len(a), "dangling_nodes": int((a.sum(1) == 0).sum()),
                     "iterations": len(changes), "max_abs_error": float((scores - exact).abs().max()),
                     "top_node": int(exact.argmax()), "top_score": float(exact.max())})
        curves[name] = changes
    return rows, curves


def spectral_split(adj_unweighted: torch.Tensor, adj_weighted: torch.Tensor, truth: torch.Tensor) -> list[dict]:
    """Two-way spectral splits of the club against the real split; the real split's modularity for reference."""
    rows = [{"partition": "real split", "agreement": 1.0, "modularity": modularity(adj_unweighted, truth),
             "wrong_side": ""}]
    variants = {"normalized (L_rw), unweighted": (adj_unweighted, True),
                "unnormalized (L = D - A), unweighted": (adj_unweighted, False),
                "normalized (L_rw), weighted": (adj_weighted, True)}
    for name, (a, normalized) in variants.items():
        split = spectral_bisection(a, normalized=normalized)
        matched = 1 - split if (split != truth).float().mean() > 0.5 else split
        wrong = (matched != truth).nonzero().reshape(-1).tolist()
        rows.append({"partition": name, "agreement": agreement(split, truth),
                     "modularity": modularity(adj_unweighted, split), "wrong_side": " ".join(map(str, wrong))})
    return rows


def train_nodes(model, features, labels, train_idx, test_idx, *, epochs: int, cfg: Config, device,
                on_epoch=None) -> tuple[History, float, torch.Tensor]:
    """Semi-supervised node classification: fit on the labelled nodes, score the others.

    Returns (History, accuracy on test_idx, predicted class of every node)."""
    net = NodeClassifier(model, features)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    history = fit(net, [(train_idx, labels[train_idx])], [(test_idx, labels[test_idx])], loss_fn=F.cross_entropy,
                  optimizer=opt, epochs=epochs, device=device, progress=False, on_epoch=on_epoch)
    net.eval()
    with torch.no_grad():
        pred = net(torch.arange(len(labels), device=device)).argmax(1).cpu()
    accuracy = float((pred[test_idx] == labels[test_idx]).float().mean())
    return history, accuracy, pred


def snapshot_epochs(epochs: int) -> list[int]:
    """When to record the embedding: before training, early, middle and at the end."""
    return sorted({0, *(max(1, round(epochs * f)) for f in (0.05, 0.15, 0.4)), epochs})


class EmbeddingSnapshots:
    """``on_epoch`` hook: the GCN's 2-D embedding at the chosen epochs (epoch 0 = before training).

    It has state_dict/load_state_dict, so a lab run that is killed and resumed (``--resume``) keeps the snapshots
    taken before the interruption."""

    def __init__(self, gcn: GCN, features: torch.Tensor, epochs: list[int]):
        self.gcn, self.features, self.epochs = gcn, features, set(epochs)
        self.snapshots: dict[int, torch.Tensor] = {}

    def __call__(self, epoch: int, history=None) -> None:
        if epoch in self.epochs:
            was_training = self.gcn.training
            with torch.no_grad():
                self.snapshots[epoch] = self.gcn.eval().embed(self.features.to(self.gcn.a_hat.device)).cpu()
            self.gcn.train(was_training)

    def state_dict(self) -> dict:
        return {"snapshots": {str(k): v for k, v in self.snapshots.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.snapshots = {int(k): v for k, v in state["snapshots"].items()}


def karate_gcn(club, cfg: Config, device, seed: int, record: bool):
    """One GCN run on the club from members 0 and 33; with ``record`` the 2-D embedding at a few epochs.

    Returns (History, accuracy on the 32 others, members it got wrong, {epoch: (34, 2) embedding}, labelled)."""
    seed_everything(seed)
    adj = club.adjacency(weighted=False)
    labels, n = club.labels, club.num_nodes
    train_idx = torch.tensor([KARATE_INSTRUCTOR, KARATE_ADMINISTRATOR])
    test_idx = torch.tensor([i for i in range(n) if i not in (KARATE_INSTRUCTOR, KARATE_ADMINISTRATOR)])
    gcn = GCN(normalized_adjacency(adj), n, (cfg.karate_hidden, 2), 2, activation="tanh", dropout=0.0)
    features = torch.eye(n)  # featureless: each member is only "who they are", the graph does the rest
    snaps = EmbeddingSnapshots(gcn, features, snapshot_epochs(cfg.karate_epochs) if record else [])
    snaps(0)
    history, acc, pred = train_nodes(gcn, features, labels, train_idx, test_idx, epochs=cfg.karate_epochs, cfg=cfg,
                                     device=device, on_epoch=snaps)
    wrong = (pred[test_idx] != labels[test_idx]).nonzero().reshape(-1)
    return history, acc, test_idx[wrong].tolist(), snaps.snapshots, train_idx


def sbm_probabilities(cfg: Config) -> torch.Tensor:
    """Block probabilities giving the configured expected degrees inside and across groups."""
    p_in = cfg.sbm_degree_in / (cfg.sbm_block_size - 1)
    p_out = cfg.sbm_degree_out / (cfg.sbm_block_size * (cfg.sbm_blocks - 1))
    return planted_partition(cfg.sbm_blocks, min(p_in, 1.0), min(p_out, 1.0))


def sbm_run(cfg: Config, device, seed: int):
    """GCN (graph + features) vs MLP (features only) vs spectral clustering (graph only) on one generated SBM."""
    graph = stochastic_block_model([cfg.sbm_block_size] * cfg.sbm_blocks, sbm_probabilities(cfg), seed=seed)
    adj, labels = graph.adjacency(), graph.labels
    features = noisy_class_features(labels, cfg.sbm_feature_dim, cfg.sbm_signal, seed=seed)
    train_idx = labelled_per_class(labels, cfg.sbm_labels_per_class, seed=seed)
    test_mask = torch.ones(len(labels), dtype=torch.bool)
    test_mask[train_idx] = False
    test_idx = test_mask.nonzero().reshape(-1)
    k, h = cfg.sbm_blocks, cfg.sbm_hidden
    models = {"gcn": GCN(normalized_adjacency(adj), cfg.sbm_feature_dim, (h,), k, dropout=cfg.sbm_dropout),
              "mlp": MLP(cfg.sbm_feature_dim, hidden=(h,), out_features=k, dropout=cfg.sbm_dropout)}
    row, histories = {"seed": seed, "mean_degree": float(adj.sum(1).mean())}, {}
    for name, model in models.items():
        seed_everything(seed)
        history, acc, _ = train_nodes(model, features, labels, train_idx, test_idx, epochs=cfg.sbm_epochs, cfg=cfg,
                                      device=device)
        row[f"{name}_accuracy"], histories[f"sbm_{name}"] = acc, history.to_dict()
    clusters = spectral_clustering(adj, k, seed=seed)
    row["spectral_agreement"] = agreement(clusters, labels)  # unsupervised: ids matched to groups afterwards
    return row, histories, (adj, labels)


def mean_std(values: list[float]) -> tuple[float, float]:
    t = torch.tensor(values, dtype=torch.float64)
    return float(t.mean()), float(t.std()) if len(t) > 1 else 0.0


def run(cfg: Config, out: Path | None = None) -> LabResult:
    cfg = quick_variant(cfg, QUICK)
    seed_everything(cfg.seed)
    device = get_device(cfg.device)
    started = time.perf_counter()

    kinds, kinds_rows = graph_kinds()
    club = karate_club()
    adj, adj_w, truth = club.adjacency(weighted=False), club.adjacency(), club.labels
    measures = importance(adj, cfg.alpha, cfg.pagerank_tol)
    members = [{"member": i, "club": club.label_names[int(truth[i])],
                **{name: float(v[i]) for name, v in measures.items()}} for i in range(club.num_nodes)]
    top = [{"measure": name, "top_5_members": " ".join(map(str, torch.argsort(v, descending=True)[:5].tolist()))}
           for name, v in measures.items()]
    pr_rows, pr_curves = pagerank_check({"karate": adj, "karate_weighted": adj_w, "directed_example":
                                         kinds["directed"]}, cfg.alpha, cfg.pagerank_tol)
    spectral_rows = spectral_split(adj, adj_w, truth)

    gcn_rows, histories, snaps, labelled = [], {}, {}, None
    for s in range(cfg.seeds):
        history, acc, wrong, shots, labelled = karate_gcn(club, cfg, device, cfg.seed + s, record=s == 0)
        gcn_rows.append({"seed": cfg.seed + s, "accuracy": acc, "wrong_members": " ".join(map(str, wrong))})
        if s == 0:
            histories["karate_gcn"], snaps = history.to_dict(), shots
    sbm_rows, sbm_graph = [], None
    for s in range(cfg.seeds):
        row, hist, graph = sbm_run(cfg, device, cfg.seed + s)
        sbm_rows.append(row)
        if s == 0:
            histories.update(hist)
            sbm_graph = graph

    gcn_mean, gcn_std = mean_std([r["accuracy"] for r in gcn_rows])
    metrics = {
        "pagerank_max_error": max(r["max_abs_error"] for r in pr_rows),
        "pagerank_iterations": pr_rows[0]["iterations"],
        "spectral_agreement": spectral_rows[1]["agreement"],
        "modularity_real_split": spectral_rows[0]["modularity"],
        "modularity_spectral_split": spectral_rows[1]["modularity"],
        "top_betweenness_member": int(measures["betweenness"].argmax()),
        "gcn_accuracy": gcn_mean, "gcn_accuracy_std": gcn_std,
        "gcn_accuracy_min": min(r["accuracy"] for r in gcn_rows),
    }
    for key in ("gcn_accuracy", "mlp_accuracy", "spectral_agreement"):
        metrics[f"sbm_{key}"], metrics[f"sbm_{key}_std"] = mean_std([r[key] for r in sbm_rows])
    tables = {"graph_kinds": kinds_rows, "karate_importance": members, "top_members": top, "pagerank": pr_rows,
              "spectral_split": spectral_rows, "karate_gcn": gcn_rows, "sbm": sbm_rows}
    pos = spring_layout(adj, iterations=cfg.layout_iterations, seed=cfg.seed)
    figs = figures(kinds, adj, pos, measures, truth, pr_curves, cfg, snaps, labelled, histories, sbm_graph,
                   club.label_names)
    result = LabResult(lab="graphs", config=asdict(cfg), metrics=metrics, history=histories, tables=tables,
                       figures=figs, device=str(device))
    return finish(result, out, started)


def figures(kinds, adj, pos, measures, truth, pr_curves, cfg, snaps, labelled, histories, sbm_graph, names):
    """The example graphs, importance, PageRank convergence, the spectral split, the GCN's embedding and curves,
    and the SBM."""
    from esc_course.graphs.plot import (
        block_matrix_figure,
        convergence_figure,
        embedding_figure,
        graph_kinds_figure,
        importance_figure,
        spectral_figure,
    )
    from esc_course.viz import history_figure

    positions = {name: spring_layout(a, iterations=cfg.layout_iterations, seed=cfg.seed) for name, a in kinds.items()}
    eigenvalues = laplacian_eigenvectors(adj, len(adj), kind="sym")[0]
    curves = {"karate GCN": histories["karate_gcn"]}
    sbm_curves = {"GCN (graph + features)": histories["sbm_gcn"], "MLP (features only)": histories["sbm_mlp"]}
    return {
        "graph_kinds": graph_kinds_figure(kinds, positions),
        "karate_importance": importance_figure(adj, pos, measures, truth),
        "pagerank_convergence": convergence_figure(pr_curves, cfg.alpha),
        "spectral_split": spectral_figure(adj, pos, fiedler_vector(adj), truth, spectral_bisection(adj), eigenvalues,
                                          names),
        "gcn_embedding": embedding_figure(snaps, truth, labelled, names),
        "gcn_training": history_figure(curves, keys=("train_loss", "val_accuracy"), title="karate club GCN"),
        "sbm_adjacency": block_matrix_figure(*sbm_graph),
        "sbm_training": history_figure(sbm_curves, keys=("train_loss", "val_accuracy"),
                                       title=f"SBM, {cfg.sbm_labels_per_class} labels per group"),
    }


if __name__ == "__main__":
    from esc_course.lab import main

    raise SystemExit(main("graphs"))
