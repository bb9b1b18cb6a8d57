"""The graph convolutional network (esc_course.graphs.gcn): the layer's formula, shapes, and that it learns."""

import pytest
import torch
import torch.nn.functional as F

from esc_course.graphs import (
    GCN,
    GraphConv,
    NodeClassifier,
    karate_club,
    labelled_per_class,
    noisy_class_features,
    normalized_adjacency,
    planted_partition,
    stochastic_block_model,
)
from esc_course.models import MLP
from esc_course.seed import seed_everything
from esc_course.train import fit


def karate_a_hat():
    return normalized_adjacency(karate_club().adjacency(weighted=False))


def test_graph_conv_is_a_hat_x_w_plus_b():
    torch.manual_seed(0)
    a_hat = karate_a_hat()
    layer = GraphConv(5, 3)
    with torch.no_grad():
        layer.bias.normal_()
    x = torch.randn(34, 5)
    expected = a_hat @ x @ layer.linear.weight.T + layer.bias  # Kipf and Welling 2017, eq. 2 before sigma
    torch.testing.assert_close(layer(x, a_hat), expected)
    torch.testing.assert_close(layer(x, a_hat.to_sparse()), expected)  # a sparse A_hat gives the same
    assert GraphConv(5, 3, bias=False).bias is None


def test_graph_conv_without_edges_is_a_linear_layer():
    torch.manual_seed(0)
    eye = normalized_adjacency(torch.zeros(6, 6))  # only the self-loops: A_hat = I
    torch.testing.assert_close(eye, torch.eye(6))
    layer = GraphConv(4, 2)
    x = torch.randn(6, 4)
    torch.testing.assert_close(layer(x, eye), x @ layer.linear.weight.T + layer.bias)


def test_graph_conv_averages_neighbours():
    a_hat = normalized_adjacency(torch.ones(4, 4) - torch.eye(4))  # complete graph K4: every degree is 4 with I
    torch.testing.assert_close(a_hat, torch.full((4, 4), 0.25))
    layer = GraphConv(1, 1, bias=False)
    with torch.no_grad():
        layer.linear.weight.fill_(1.0)
    x = torch.tensor([[1.0], [2.0], [3.0], [6.0]])
    torch.testing.assert_close(layer(x, a_hat), torch.full((4, 1), 3.0))  # everyone gets the mean


def test_gcn_shapes_and_finite_outputs():
    torch.manual_seed(0)
    gcn = GCN(karate_a_hat(), 34, (8, 2), 3, activation="tanh", dropout=0.5)
    x = torch.eye(34)
    out = gcn(x)
    assert out.shape == (34, 3) and torch.isfinite(out).all()
    assert gcn.embed(x).shape == (34, 2)
    out.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in gcn.parameters())
    gcn.eval()
    torch.testing.assert_close(gcn(x), gcn(x))  # no dropout in eval mode


def test_gcn_rejects_bad_shapes():
    with pytest.raises(ValueError, match="square"):
        GCN(torch.ones(3, 4), 4)
    with pytest.raises(ValueError, match="dropout"):
        GCN(torch.eye(3), 4, dropout=1.0)
    with pytest.raises(ValueError, match=r"\(34, 34\).*got \(34, 5\)"):
        GCN(karate_a_hat(), 34)(torch.randn(34, 5))
    with pytest.raises(ValueError, match="positive"):
        GraphConv(0, 3)


def test_node_classifier_scores_the_chosen_nodes():
    torch.manual_seed(0)
    gcn = GCN(karate_a_hat(), 34, (4,), 2, dropout=0.0)
    net = NodeClassifier(gcn, torch.eye(34))
    idx = torch.tensor([3, 0, 33])
    torch.testing.assert_close(net(idx), gcn(torch.eye(34))[idx])
    assert {name for name, _ in net.named_buffers()} == {"features", "model.a_hat"}  # both move with .to(device)


def test_labelled_per_class():
    labels = torch.tensor([0] * 10 + [1] * 6 + [2] * 8)
    picks = labelled_per_class(labels, 3, seed=0)
    assert len(picks) == 9 and len(set(picks.tolist())) == 9
    assert torch.bincount(labels[picks]).tolist() == [3, 3, 3]
    assert torch.equal(picks, labelled_per_class(labels, 3, seed=0))
    with pytest.raises(ValueError, match="class 1 has 6 nodes"):
        labelled_per_class(labels, 7)


def train(model, features, labels, train_idx, test_idx, epochs, lr=0.01):
    net = NodeClassifier(model, features)
    opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=5e-4)
    history = fit(net, [(train_idx, labels[train_idx])], [(test_idx, labels[test_idx])], loss_fn=F.cross_entropy,
                  optimizer=opt, epochs=epochs, device="cpu", progress=False)
    return history


@pytest.mark.parametrize("seed", range(4))
def test_gcn_learns_the_karate_split_from_two_labelled_members(seed):
    seed_everything(seed)
    club = karate_club()
    train_idx, test_idx = torch.tensor([0, 33]), torch.arange(1, 33)
    gcn = GCN(karate_a_hat(), 34, (4, 2), 2, activation="tanh", dropout=0.0)
    history = train(gcn, torch.eye(34), club.labels, train_idx, test_idx, epochs=100)
    assert history["train_loss"][-1] < 0.5 * history["train_loss"][0]
    assert history["val_accuracy"][-1] >= 0.9  # 32 members never labelled; measured 31 of 32 right on every seed


@pytest.mark.parametrize("seed", range(2))
def test_gcn_beats_features_alone_on_a_stochastic_block_model(seed):
    k, size = 4, 100
    g = stochastic_block_model([size] * k, planted_partition(k, 5 / (size - 1), 3 / (size * (k - 1))), seed=seed)
    features = noisy_class_features(g.labels, 16, 1.5, seed=seed)
    train_idx = labelled_per_class(g.labels, 5, seed=seed)
    test = torch.ones(len(g.labels), dtype=torch.bool)
    test[train_idx] = False
    test_idx = test.nonzero().reshape(-1)
    seed_everything(seed)
    gcn = train(GCN(normalized_adjacency(g.adjacency()), 16, (16,), k), features, g.labels, train_idx, test_idx, 100)
    seed_everything(seed)
    mlp = train(MLP(16, hidden=(16,), out_features=k, dropout=0.5), features, g.labels, train_idx, test_idx, 100)
    gcn_acc, mlp_acc = gcn["val_accuracy"][-1], mlp["val_accuracy"][-1]
    assert gcn_acc >= 0.7 and gcn_acc >= mlp_acc + 0.15, (gcn_acc, mlp_acc)
