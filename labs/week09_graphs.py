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
    GraphData,
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
    karate_activation: str = "tanh"  # karate GCN's activation (any name in esc_course.models.ACTIVATIONS)
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


def sub_folder(checkpoint_dir: Path | str | None, name: str) -> dict:
    """``fit``'s checkpoint arguments for one experiment: its own stable folder ``checkpoint_dir / name``,
    resumed when it holds a checkpoint; nothing when ``checkpoint_dir`` is None."""
    if checkpoint_dir is None:
        return {}
    return {"checkpoint_dir": Path(checkpoint_dir) / name, "resume": True}


def mean_std(values: list[float]) -> tuple[float, float]:
    t = torch.tensor(values, dtype=torch.float64)
    return float(t.mean()), float(t.std()) if len(t) > 1 else 0.0


def members_text(idx) -> str:
    return " ".join(map(str, idx))


# -- 1. kinds of graphs ---------------------------------------------------------------------------------------

@dataclass
class GraphKindsResult:
    graphs: dict[str, torch.Tensor]     # name -> adjacency matrix (N, N)
    positions: dict[str, torch.Tensor]  # name -> (N, 2) spring-layout positions for the drawing
    rows: list[dict]                    # per graph: nodes, nonzero entries, symmetric, degrees, Laplacian rows


def graph_kinds_study(graphs: dict[str, GraphData], *, layout_iterations: int = 200,
                      seed: int = 0) -> GraphKindsResult:
    """The example graphs (``example_graphs()``) as adjacency matrices: what tells undirected, weighted, directed
    and complete graphs apart (symmetry, in/out degree), and that every Laplacian row sums to zero."""
    adjs = {name: g.adjacency() for name, g in graphs.items()}
    rows = []
    for name, a in adjs.items():
        lap = laplacian(a)
        rows.append({"graph": name, "nodes": len(a), "nonzero_entries": int((a != 0).sum()),
                     "symmetric": bool(torch.equal(a, a.T)), "out_degree": degree(a, "out").tolist(),
                     "in_degree": degree(a, "in").tolist(),
                     "laplacian_row_sums_zero": bool(lap.sum(1).abs().max() < 1e-6)})
    positions = {name: spring_layout(a, iterations=layout_iterations, seed=seed) for name, a in adjs.items()}
    return GraphKindsResult(adjs, positions, rows)


def graph_kinds_figure(result: GraphKindsResult):
    """Each example graph drawn (top row) above its adjacency matrix (bottom row)."""
    from esc_course.graphs.plot import graph_kinds_figure as draw

    return draw(result.graphs, result.positions)


# -- 2. node importance on the karate club -------------------------------------------------------------------

@dataclass
class ImportanceResult:
    adjacency: torch.Tensor            # (34, 34) unweighted
    positions: torch.Tensor            # (34, 2) spring layout, shared by every karate drawing
    groups: torch.Tensor               # (34,) the club each member joined
    measures: dict[str, torch.Tensor]  # measure -> (34,) scores
    members: list[dict]                # per member: club and every score
    top: list[dict]                    # per measure: the five highest-ranked members
    names: tuple[str, ...] = ("Mr. Hi", "Officer")  # the clubs' names

    def top_members(self, measure: str, k: int = 5) -> list[int]:
        return torch.argsort(self.measures[measure], descending=True)[:k].tolist()


def importance(adj: torch.Tensor, alpha: float, tol: float) -> dict[str, torch.Tensor]:
    """The four importance measures of every node (unweighted distances; PageRank over the edges)."""
    return {"degree": degree_centrality(adj), "closeness": closeness_centrality(adj),
            "betweenness": betweenness_centrality(adj),
            "pagerank": pagerank_residuals(adj, alpha, tol=tol)[0]}


def importance_study(club: GraphData, *, alpha: float = 0.85, tol: float = 1e-10, layout_iterations: int = 200,
                     seed: int = 0) -> ImportanceResult:
    """Degree, closeness, betweenness (fractions, unitless) and PageRank (a probability per member) of every
    member of the club (``karate_club()``), on the unweighted friendship graph."""
    adj, truth = club.adjacency(weighted=False), club.labels
    measures = importance(adj, alpha, tol)
    members = [{"member": i, "club": club.label_names[int(truth[i])],
                **{name: float(v[i]) for name, v in measures.items()}} for i in range(club.num_nodes)]
    result = ImportanceResult(adj, spring_layout(adj, iterations=layout_iterations, seed=seed), truth, measures,
                              members, [], tuple(club.label_names))
    result.top = [{"measure": name, "top_5_members": members_text(result.top_members(name))} for name in measures]
    return result


def importance_figure(result: ImportanceResult):
    """One panel per measure: node size by the measure, colour by the club the member joined."""
    from esc_course.graphs.plot import importance_figure as draw

    return draw(result.adjacency, result.positions, result.measures, result.groups, result.names)


# -- 3. PageRank by power iteration ---------------------------------------------------------------------------

@dataclass
class PageRankResult:
    rows: list[dict]                    # per graph: iterations, max |power - exact|, dangling nodes, top node
    residuals: dict[str, torch.Tensor]  # graph -> L1 change per iteration
    alpha: float

    @property
    def max_error(self) -> float:
        return max(r["max_abs_error"] for r in self.rows)


def pagerank_study(graphs: dict[str, torch.Tensor], *, alpha: float = 0.85, tol: float = 1e-10) -> PageRankResult:
    """Power iteration against the exact linear solve on each adjacency matrix: iterations until the L1 change
    is below ``tol``, and the largest absolute difference of the scores (probabilities)."""
    rows, curves = [], {}
    for name, a in graphs.items():
        scores, changes = pagerank_residuals(a, alpha, tol=tol)
        exact = pagerank_exact(a, alpha)
        rows.append({"graph": name, "nodes": len(a), "dangling_nodes": int((a.sum(1) == 0).sum()),
                     "iterations": len(changes), "max_abs_error": float((scores - exact).abs().max()),
                     "top_node": int(exact.argmax()), "top_score": float(exact.max())})
        curves[name] = changes
    return PageRankResult(rows, curves, alpha)


def pagerank_figure(result: PageRankResult):
    """L1 change per power-iteration step (log scale) next to the alpha^k rate."""
    from esc_course.graphs.plot import convergence_figure

    return convergence_figure(result.residuals, result.alpha)


# -- 4. spectral split of the club ----------------------------------------------------------------------------

@dataclass
class SpectralResult:
    rows: list[dict]            # the real split and three spectral splits: agreement, modularity, wrong side
    adjacency: torch.Tensor     # (34, 34) unweighted
    positions: torch.Tensor     # (34, 2)
    truth: torch.Tensor         # (34,) the real split
    fiedler: torch.Tensor       # (34,) the Fiedler vector of L_rw
    split: torch.Tensor         # (34,) the normalized unweighted spectral split
    eigenvalues: torch.Tensor   # the normalized Laplacian's eigenvalues, ascending
    names: tuple[str, ...]      # the clubs' names

    def row(self, partition: str) -> dict:
        return next(r for r in self.rows if r["partition"] == partition)


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
                     "modularity": modularity(adj_unweighted, split), "wrong_side": members_text(wrong)})
    return rows


def spectral_study(club: GraphData, *, layout_iterations: int = 200, seed: int = 0) -> SpectralResult:
    """The club split in two by the sign of the Fiedler vector (normalized and unnormalized Laplacian, with and
    without weights), each compared with the real split: agreement (fraction of members) and modularity Q."""
    adj, adj_w, truth = club.adjacency(weighted=False), club.adjacency(), club.labels
    return SpectralResult(spectral_split(adj, adj_w, truth), adj,
                          spring_layout(adj, iterations=layout_iterations, seed=seed), truth, fiedler_vector(adj),
                          spectral_bisection(adj), laplacian_eigenvectors(adj, len(adj), kind="sym")[0],
                          tuple(club.label_names))


def spectral_figure(result: SpectralResult):
    """The Laplacian spectrum, the sorted Fiedler vector coloured by club, the split with the misplaced circled."""
    from esc_course.graphs.plot import spectral_figure as draw

    return draw(result.adjacency, result.positions, result.fiedler, result.truth, result.split, result.eigenvalues,
                result.names)


# -- 5. a GCN on the club -------------------------------------------------------------------------------------

def train_nodes(model, features, labels, train_idx, test_idx, *, epochs: int, lr: float, weight_decay: float,
                device, on_epoch=None, checkpoint: dict | None = None) -> tuple[History, float, torch.Tensor]:
    """Semi-supervised node classification: fit on the labelled nodes, score the others.

    Returns (History, accuracy on test_idx, predicted class of every node)."""
    net = NodeClassifier(model, features)
    opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=weight_decay)
    history = fit(net, [(train_idx, labels[train_idx])], [(test_idx, labels[test_idx])], loss_fn=F.cross_entropy,
                  optimizer=opt, epochs=epochs, device=device, progress=False, on_epoch=on_epoch,
                  **(checkpoint or {}))
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


@dataclass
class KarateGCNResult:
    rows: list[dict]                      # per seed: accuracy on the 32 unlabelled members, the members it missed
    history: dict                         # the first seed's History.to_dict()
    snapshots: dict[int, torch.Tensor]    # the first seed's (34, 2) embedding at a few epochs (0 = untrained)
    labelled: torch.Tensor                # the two labelled members (0 and 33)
    labels: torch.Tensor                  # (34,) the real split
    names: tuple[str, ...]

    def accuracies(self) -> list[float]:
        return [r["accuracy"] for r in self.rows]

    def wrong_counts(self) -> dict[int, int]:
        """member -> in how many seeds the GCN put it on the wrong side."""
        counts: dict[int, int] = {}
        for r in self.rows:
            for m in r["wrong_members"].split():
                counts[int(m)] = counts.get(int(m), 0) + 1
        return counts


def karate_gcn_study(club: GraphData, *, hidden: int = 4, activation: str = "tanh", epochs: int = 300,
                     lr: float = 0.01, weight_decay: float = 5e-4, seeds: int = 5, seed: int = 0, device="cpu",
                     checkpoint_dir: Path | None = None) -> KarateGCNResult:
    """A GCN 34 -> ``hidden`` -> 2 (the embedding, ``activation``) -> 2 classes on featureless members (X = I),
    trained (full-batch Adam) on members 0 and 33 only; accuracy (fraction) on the other 32, for ``seeds``
    initializations. The first seed records the 2-D embedding at a few epochs."""
    if seeds < 1:
        raise ValueError(f"seeds must be a positive integer (repeats), got {seeds}")
    device = get_device(device)
    adj, labels, n = club.adjacency(weighted=False), club.labels, club.num_nodes
    train_idx = torch.tensor([KARATE_INSTRUCTOR, KARATE_ADMINISTRATOR])
    test_idx = torch.tensor([i for i in range(n) if i not in (KARATE_INSTRUCTOR, KARATE_ADMINISTRATOR)])
    features = torch.eye(n)  # featureless: each member is only "who they are", the graph does the rest
    rows, history, snapshots = [], {}, {}
    for s in range(seed, seed + seeds):
        seed_everything(s)
        gcn = GCN(normalized_adjacency(adj), n, (hidden, 2), 2, activation=activation, dropout=0.0)
        snaps = EmbeddingSnapshots(gcn, features, snapshot_epochs(epochs) if s == seed else [])
        snaps(0)
        hist, acc, pred = train_nodes(gcn, features, labels, train_idx, test_idx, epochs=epochs, lr=lr,
                                      weight_decay=weight_decay, device=device, on_epoch=snaps,
                                      checkpoint=sub_folder(checkpoint_dir, f"karate-gcn-seed{s}"))
        wrong = test_idx[(pred[test_idx] != labels[test_idx]).nonzero().reshape(-1)].tolist()
        rows.append({"seed": s, "accuracy": acc, "wrong_members": members_text(wrong)})
        if s == seed:
            history, snapshots = hist.to_dict(), snaps.snapshots
    return KarateGCNResult(rows, history, snapshots, train_idx, labels, tuple(club.label_names))


def embedding_figure(result: KarateGCNResult):
    """The first seed's 2-D embedding at a few epochs: colour = club, black rings = the two labelled members."""
    from esc_course.graphs.plot import embedding_figure as draw

    return draw(result.snapshots, result.labels, result.labelled, result.names)


def training_figure(histories: dict[str, dict], title: str):
    """Training loss (on the labelled nodes) and accuracy on the unlabelled nodes per epoch, one line per model."""
    from esc_course.viz import history_figure

    fig = history_figure(histories, keys=("train_loss", "val_accuracy"))
    loss_ax, acc_ax = fig.axes
    loss_ax.set(title="training loss (labelled nodes)", ylabel="cross-entropy")
    acc_ax.set(title="accuracy (unlabelled nodes)", ylabel="accuracy")
    fig.suptitle(title)
    return fig


def karate_training_figure(result: KarateGCNResult):
    """The first seed's training loss and accuracy on the 32 unlabelled members per epoch."""
    return training_figure({"karate GCN": result.history}, "karate GCN")


# -- 6. the stochastic block model ----------------------------------------------------------------------------

@dataclass
class SBMGraph:
    """One generated block-model graph with noisy features and a few labelled nodes per group."""

    seed: int
    adjacency: torch.Tensor  # (N, N)
    labels: torch.Tensor     # (N,) planted group
    features: torch.Tensor   # (N, feature_dim)
    train_idx: torch.Tensor  # labelled nodes
    test_idx: torch.Tensor   # the others (scored)


def sbm_probabilities(blocks: int, block_size: int, degree_in: float, degree_out: float) -> torch.Tensor:
    """Block probabilities giving the expected degrees inside and across groups."""
    p_in = degree_in / (block_size - 1)
    p_out = degree_out / (block_size * (blocks - 1))
    return planted_partition(blocks, min(p_in, 1.0), min(p_out, 1.0))


def sbm_data(*, blocks: int = 4, block_size: int = 250, degree_in: float = 5.0, degree_out: float = 3.0,
             feature_dim: int = 16, signal: float = 1.5, labels_per_class: int = 5,
             seeds=range(5)) -> list[SBMGraph]:
    """One block-model graph per seed: ``blocks`` groups of ``block_size`` nodes, on average ``degree_in``
    neighbours inside the own group and ``degree_out`` in all others; features = the group's direction times
    ``signal`` + N(0, I) noise; ``labels_per_class`` labelled nodes per group."""
    if blocks < 2 or block_size < 2:
        raise ValueError(f"blocks and block_size must be at least 2, got blocks={blocks}, block_size={block_size}")
    graphs = []
    for s in seeds:
        graph = stochastic_block_model([block_size] * blocks,
                                       sbm_probabilities(blocks, block_size, degree_in, degree_out), seed=s)
        labels = graph.labels
        train_idx = labelled_per_class(labels, labels_per_class, seed=s)
        test_mask = torch.ones(len(labels), dtype=torch.bool)
        test_mask[train_idx] = False
        graphs.append(SBMGraph(s, graph.adjacency(), labels, noisy_class_features(labels, feature_dim, signal, seed=s),
                               train_idx, test_mask.nonzero().reshape(-1)))
    return graphs


@dataclass
class SBMResult:
    rows: list[dict]            # per graph: mean degree, GCN and MLP accuracy, spectral clustering agreement
    histories: dict[str, dict]  # the first graph's "sbm_gcn" and "sbm_mlp" History.to_dict()
    first: SBMGraph             # the first graph (for the drawing)
    labels_per_class: int

    def summary(self, key: str) -> tuple[float, float]:
        """Mean and standard deviation over the graphs of a column (e.g. "gcn_accuracy")."""
        return mean_std([r[key] for r in self.rows])


def sbm_model(name: str, graph: SBMGraph, classes: int, hidden: int, dropout: float) -> torch.nn.Module:
    """"gcn": graph convolutions over the graph's normalized adjacency; "mlp": the same widths, no graph."""
    dim = graph.features.shape[1]
    if name == "gcn":
        return GCN(normalized_adjacency(graph.adjacency), dim, (hidden,), classes, dropout=dropout)
    return MLP(dim, hidden=(hidden,), out_features=classes, dropout=dropout)


def sbm_study(graphs: list[SBMGraph], *, hidden: int = 16, dropout: float = 0.5, epochs: int = 200,
              lr: float = 0.01, weight_decay: float = 5e-4, device="cpu",
              checkpoint_dir: Path | None = None) -> SBMResult:
    """On each graph (``sbm_data``): a GCN (graph + features) and an MLP (features only) trained on the labelled
    nodes, scored by accuracy (fraction) on the others, and spectral clustering (graph only, no labels) scored by
    its agreement with the planted groups."""
    if not graphs:
        raise ValueError("graphs must hold at least one SBMGraph (sbm_data(seeds=...) with one seed or more)")
    device = get_device(device)
    rows, histories = [], {}
    for g in graphs:
        k = int(g.labels.max()) + 1
        row = {"seed": g.seed, "mean_degree": float(g.adjacency.sum(1).mean())}
        for name in ("gcn", "mlp"):
            seed_everything(g.seed)  # initial weights and dropout masks depend on the graph's seed only
            model = sbm_model(name, g, k, hidden, dropout)
            history, acc, _ = train_nodes(model, g.features, g.labels, g.train_idx, g.test_idx, epochs=epochs, lr=lr,
                                          weight_decay=weight_decay, device=device,
                                          checkpoint=sub_folder(checkpoint_dir, f"sbm-{name}-seed{g.seed}"))
            row[f"{name}_accuracy"] = acc
            if g is graphs[0]:
                histories[f"sbm_{name}"] = history.to_dict()
        clusters = spectral_clustering(g.adjacency, k, seed=g.seed)
        row["spectral_agreement"] = agreement(clusters, g.labels)  # unsupervised: ids matched to groups afterwards
        rows.append(row)
    return SBMResult(rows, histories, graphs[0], len(graphs[0].train_idx) // (int(graphs[0].labels.max()) + 1))


def sbm_adjacency_figure(result: SBMResult):
    from esc_course.graphs.plot import block_matrix_figure

    return block_matrix_figure(result.first.adjacency, result.first.labels)


def sbm_training_figure(result: SBMResult):
    """The first graph's training loss and test accuracy per epoch, GCN against MLP."""
    return training_figure({"GCN (graph + features)": result.histories["sbm_gcn"],
                            "MLP (features only)": result.histories["sbm_mlp"]},
                           f"SBM, {result.labels_per_class} labels/group")


# -- the whole lab --------------------------------------------------------------------------------------------

def run(cfg: Config, out: Path | None = None) -> LabResult:
    cfg = quick_variant(cfg, QUICK)
    seed_everything(cfg.seed)
    device = get_device(cfg.device)
    started = time.perf_counter()
    ckpt = Path(out) / "checkpoints" if out is not None else None

    kinds = graph_kinds_study(example_graphs(), layout_iterations=cfg.layout_iterations, seed=cfg.seed)
    club = karate_club()
    imp = importance_study(club, alpha=cfg.alpha, tol=cfg.pagerank_tol, layout_iterations=cfg.layout_iterations,
                           seed=cfg.seed)
    pr = pagerank_study({"karate": club.adjacency(weighted=False), "karate_weighted": club.adjacency(),
                         "directed_example": kinds.graphs["directed"]}, alpha=cfg.alpha, tol=cfg.pagerank_tol)
    spectral = spectral_study(club, layout_iterations=cfg.layout_iterations, seed=cfg.seed)
    gcn = karate_gcn_study(club, hidden=cfg.karate_hidden, activation=cfg.karate_activation,
                           epochs=cfg.karate_epochs, lr=cfg.lr, weight_decay=cfg.weight_decay, seeds=cfg.seeds,
                           seed=cfg.seed, device=device, checkpoint_dir=ckpt)
    sbm = sbm_study(sbm_data(blocks=cfg.sbm_blocks, block_size=cfg.sbm_block_size, degree_in=cfg.sbm_degree_in,
                             degree_out=cfg.sbm_degree_out, feature_dim=cfg.sbm_feature_dim, signal=cfg.sbm_signal,
                             labels_per_class=cfg.sbm_labels_per_class, seeds=range(cfg.seed, cfg.seed + cfg.seeds)),
                    hidden=cfg.sbm_hidden, dropout=cfg.sbm_dropout, epochs=cfg.sbm_epochs, lr=cfg.lr,
                    weight_decay=cfg.weight_decay, device=device, checkpoint_dir=ckpt)

    gcn_mean, gcn_std = mean_std(gcn.accuracies())
    normalized = spectral.row("normalized (L_rw), unweighted")
    metrics = {
        "pagerank_max_error": pr.max_error,
        "pagerank_iterations": pr.rows[0]["iterations"],
        "spectral_agreement": normalized["agreement"],
        "modularity_real_split": spectral.row("real split")["modularity"],
        "modularity_spectral_split": normalized["modularity"],
        "top_betweenness_member": int(imp.measures["betweenness"].argmax()),
        "gcn_accuracy": gcn_mean, "gcn_accuracy_std": gcn_std,
        "gcn_accuracy_min": min(gcn.accuracies()),
    }
    for key in ("gcn_accuracy", "mlp_accuracy", "spectral_agreement"):
        metrics[f"sbm_{key}"], metrics[f"sbm_{key}_std"] = sbm.summary(key)
    tables = {"graph_kinds": kinds.rows, "karate_importance": imp.members, "top_members": imp.top,
              "pagerank": pr.rows, "spectral_split": spectral.rows, "karate_gcn": gcn.rows, "sbm": sbm.rows}
    figs = {"graph_kinds": graph_kinds_figure(kinds), "karate_importance": importance_figure(imp),
            "pagerank_convergence": pagerank_figure(pr), "spectral_split": spectral_figure(spectral),
            "gcn_embedding": embedding_figure(gcn), "gcn_training": karate_training_figure(gcn),
            "sbm_adjacency": sbm_adjacency_figure(sbm), "sbm_training": sbm_training_figure(sbm)}
    captions = {
        "graph_kinds": "Undirected, weighted, directed and complete example graphs above their adjacency matrices.",
        "karate_importance": "Zachary's karate club with node size by each importance measure, colour by the club "
                             "each member joined.",
        "pagerank_convergence": f"L1 change per PageRank power-iteration step against 2 alpha^k (alpha={cfg.alpha:g}).",
        "spectral_split": "Spectral splits of the club against the real one (agreement, modularity): the "
                          "normalized Laplacian spectrum, the sorted Fiedler vector by club, misplaced members circled.",
        "gcn_embedding": "The karate GCN's 2-D node embedding at several epochs, trained on members 0 and 33 only.",
        "gcn_training": "Training loss and accuracy on the 32 unlabelled members per epoch of the karate GCN.",
        "sbm_adjacency": "Adjacency matrix of one stochastic block model graph, nodes sorted by planted group.",
        "sbm_training": "Training loss and test accuracy per epoch of the GCN and the MLP on the block model.",
        "top_members": "The five highest-ranked members by each importance measure.",
        "pagerank": "Power-iteration PageRank against the exact solve: iterations and largest error.",
        "karate_gcn": "GCN accuracy on the 32 unlabelled members per seed, and the members it misplaced.",
        "sbm": "Block model per seed: GCN, MLP and spectral clustering accuracy.",
    }
    result = LabResult(lab="graphs", config=asdict(cfg), metrics=metrics, history={"karate_gcn": gcn.history,
                       **sbm.histories}, tables=tables, figures=figs, captions=captions, device=str(device))
    return finish(result, out, started)


if __name__ == "__main__":
    from esc_course.lab import main

    raise SystemExit(main("graphs"))
