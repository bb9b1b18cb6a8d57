"""Week 9 lab: the quick run shows each phenomenon (exact PageRank, spectral split, GCN learning the club's split)."""

import pytest
import torch

from esc_course import lab
from esc_course.config import quick_variant
from esc_course.graphs import karate_club
from labs import week09_graphs


@pytest.fixture(scope="module")
def quick():
    return week09_graphs.run(week09_graphs.Config(quick=True))


def test_pagerank_power_iteration_reaches_the_exact_solution(quick):
    m = quick.metrics
    assert m["pagerank_max_error"] < 1e-9
    rows = {r["graph"]: r for r in quick.tables["pagerank"]}
    assert rows["directed_example"]["dangling_nodes"] == 1
    assert rows["karate"]["top_node"] == 33 and rows["karate"]["iterations"] < 200


def test_importance_names_the_clubs_leaders(quick):
    top = {r["measure"]: r["top_5_members"].split() for r in quick.tables["top_members"]}
    for measure in ("degree", "betweenness", "pagerank"):
        assert set(top[measure][:2]) == {"0", "33"}, measure  # the instructor and the administrator
    members = quick.tables["karate_importance"]
    assert len(members) == 34 and members[0]["club"] == "Mr. Hi" and members[33]["club"] == "Officer"
    assert quick.metrics["top_betweenness_member"] == 0


def test_spectral_split_matches_the_real_split(quick):
    m = quick.metrics
    assert m["spectral_agreement"] >= 32 / 34
    assert m["modularity_real_split"] == pytest.approx(0.3582, abs=1e-4)  # networkx's value for the real split
    assert m["modularity_spectral_split"] >= m["modularity_real_split"] - 0.01


def test_gcn_learns_the_split_from_two_labelled_members(quick):
    m = quick.metrics
    assert m["gcn_accuracy"] >= 0.9 and m["gcn_accuracy_min"] >= 0.9
    assert len(quick.tables["karate_gcn"]) == week09_graphs.QUICK["seeds"]
    h = quick.history["karate_gcn"]
    assert h["train_loss"][-1] < 0.5 * h["train_loss"][0]


def test_gcn_beats_graph_alone_and_features_alone_on_the_block_model(quick):
    m = quick.metrics
    assert m["sbm_gcn_accuracy"] >= 0.7
    assert m["sbm_gcn_accuracy"] >= m["sbm_mlp_accuracy"] + 0.15
    assert m["sbm_gcn_accuracy"] > m["sbm_spectral_agreement"]


def test_embedding_separates_the_groups_over_training():
    cfg = quick_variant(week09_graphs.Config(quick=True), week09_graphs.QUICK)
    club = karate_club()
    result = week09_graphs.karate_gcn_study(club, epochs=cfg.karate_epochs, seeds=1, seed=0)
    snaps, labelled = result.snapshots, result.labelled
    acc, wrong = result.rows[0]["accuracy"], [int(m) for m in result.rows[0]["wrong_members"].split()]
    assert sorted(snaps) == week09_graphs.snapshot_epochs(cfg.karate_epochs) and labelled.tolist() == [0, 33]

    def separation(emb):  # distance between the group centres over the spread inside the groups
        y = club.labels
        centres = torch.stack([emb[y == c].mean(0) for c in (0, 1)])
        spread = torch.cat([emb[y == c] - centres[c] for c in (0, 1)]).norm(dim=1).mean()
        return float((centres[0] - centres[1]).norm() / spread)

    first, last = snaps[0], snaps[cfg.karate_epochs]
    assert first.shape == last.shape == (34, 2)
    assert separation(last) > 2 * separation(first)
    assert acc >= 0.9 and wrong == [8]  # member 8 (9 in Zachary's paper), the one his own model also misplaced


def test_figures_and_tables(quick):
    assert set(quick.figures) == {"graph_kinds", "karate_importance", "pagerank_convergence", "spectral_split",
                                  "gcn_embedding", "gcn_training", "sbm_adjacency", "sbm_training"}
    kinds = {r["graph"]: r for r in quick.tables["graph_kinds"]}
    assert [kinds[k]["symmetric"] for k in ("undirected", "weighted", "directed", "complete")] == [True, True,
                                                                                                   False, True]
    assert all(r["laplacian_row_sums_zero"] for r in kinds.values())
    assert quick.config["quick"] is True and quick.lab == "graphs"


def test_overrides_reach_the_run():
    result = week09_graphs.run(week09_graphs.Config(quick=True, seeds=1, sbm_blocks=3, sbm_block_size=60,
                                                    karate_epochs=40))
    assert len(result.tables["karate_gcn"]) == 1 and len(result.tables["sbm"]) == 1
    assert len(result.history["karate_gcn"]["train_loss"]) == 40
    assert result.config["sbm_epochs"] == week09_graphs.QUICK["sbm_epochs"]
    assert result.metrics["gcn_accuracy_std"] == 0.0


def test_embedding_snapshots_survive_a_resumed_fit(tmp_path):
    import torch.nn.functional as F

    from esc_course.graphs import GCN, NodeClassifier, normalized_adjacency
    from esc_course.train import fit

    club = karate_club()
    labelled = torch.tensor([0, 33])

    def run(epochs, resume):
        torch.manual_seed(0)
        gcn = GCN(normalized_adjacency(club.adjacency(weighted=False)), 34, (4, 2), 2, activation="tanh", dropout=0.0)
        net = NodeClassifier(gcn, torch.eye(34))
        hook = week09_graphs.EmbeddingSnapshots(gcn, torch.eye(34), [5, 15])
        fit(net, [(labelled, club.labels[labelled])], loss_fn=F.cross_entropy, epochs=epochs, device="cpu",
            optimizer=torch.optim.Adam(net.parameters(), lr=0.01), checkpoint_dir=tmp_path, resume=resume,
            on_epoch=hook, progress=False)
        return hook.snapshots

    first = run(10, resume=False)
    assert sorted(first) == [5]
    resumed = run(20, resume=True)  # a new process: new model and hook, state from the checkpoint
    assert sorted(resumed) == [5, 15] and torch.equal(resumed[5], first[5])


def test_the_karate_activation_is_a_setting():
    """Exercise 3 asks for the GCN with ReLU: the study takes the activation, the Config carries it."""
    club = karate_club()
    relu = week09_graphs.karate_gcn_study(club, activation="relu", hidden=16, epochs=30, seeds=1)
    tanh = week09_graphs.karate_gcn_study(club, activation="tanh", hidden=16, epochs=30, seeds=1)
    assert relu.snapshots[30].min() >= 0 and tanh.snapshots[30].min() < 0  # ReLU embeddings are never negative
    assert lab.make_config("graphs", ["--karate_activation=relu"]).karate_activation == "relu"
    with pytest.raises(ValueError, match="relu"):
        week09_graphs.karate_gcn_study(club, activation="swishy", epochs=1, seeds=1)


def test_the_claims_the_notebook_states_hold(quick):
    """Sentences of notebooks/week09_graphs.ipynb that state results (the deterministic ones hold in every mode)."""
    top = {r["measure"]: r["top_5_members"].split() for r in quick.tables["top_members"]}
    assert top["closeness"][:3] == ["0", "2", "33"]  # "closeness ranks 0, 2, 33"
    spectral = {r["partition"]: r for r in quick.tables["spectral_split"]}
    assert spectral["normalized (L_rw), unweighted"]["wrong_side"] == "2 8"  # "the two wrong: 2 and 8"
    assert spectral["normalized (L_rw), weighted"]["wrong_side"] == "8"  # "with weights member 2 is right too"
    assert quick.metrics["modularity_spectral_split"] > quick.metrics["modularity_real_split"]
    assert all("8" in r["wrong_members"].split() for r in quick.tables["karate_gcn"])  # "member 8 is wrong"


def test_each_training_run_checkpoints_into_its_own_named_folder(tmp_path):
    result = week09_graphs.run(week09_graphs.Config(quick=True, seeds=1, sbm_block_size=40, sbm_epochs=5,
                                                    karate_epochs=5), out=tmp_path)
    folders = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert folders == ["karate-gcn-seed0", "sbm-gcn-seed0", "sbm-mlp-seed0"]
    again = week09_graphs.run(week09_graphs.Config(quick=True, seeds=1, sbm_block_size=40, sbm_epochs=5,
                                                   karate_epochs=5), out=tmp_path)  # resumes the finished runs
    assert again.tables["sbm"] == result.tables["sbm"] and again.tables["karate_gcn"] == result.tables["karate_gcn"]
    assert set(result.captions) >= set(result.figures)


def test_node_labels_fit_inside_their_nodes(quick):
    """Every id drawn inside a node is narrower than the node's marker; ids of nodes too small sit beside them."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = quick.figures["karate_importance"]
    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw(renderer)
    inside = beside = 0
    for ax in fig.axes:
        nodes = ax.collections[1]  # 0: the edges, 1: the node markers
        diameters = (nodes.get_sizes() ** 0.5) * fig.dpi / 72  # marker area in points^2 -> diameter in pixels
        for text in ax.texts:
            if not text.get_text().isdigit():
                continue
            width = text.get_window_extent(renderer).width
            member = int(text.get_text())
            if type(text).__name__ == "Annotation":
                beside += 1
            else:
                inside += 1
                assert width <= diameters[member], (ax.get_title(), member, width, diameters[member])
    assert inside + beside == 4 * 34 and inside > 3 * 34


@pytest.mark.slow
def test_the_trained_claims_hold_in_full_mode():
    """Full-mode settings: every seed misplaces member 8 only, and the GCN beats the MLP and spectral clustering."""
    from esc_course.config import settings

    cfg = settings(week09_graphs, quick=False)
    gcn = week09_graphs.karate_gcn_study(karate_club(), hidden=cfg.karate_hidden, epochs=cfg.karate_epochs,
                                         seeds=cfg.seeds, seed=cfg.seed)
    assert gcn.wrong_counts() == {8: cfg.seeds}
    sbm = week09_graphs.sbm_study(week09_graphs.sbm_data(seeds=range(cfg.seed, cfg.seed + cfg.seeds)),
                                  epochs=cfg.sbm_epochs)
    gcn_mean = sbm.summary("gcn_accuracy")[0]
    assert gcn_mean > sbm.summary("mlp_accuracy")[0] + 0.15 and gcn_mean > sbm.summary("spectral_agreement")[0]
