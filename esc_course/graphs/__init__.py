"""Graphs in plain PyTorch: representations, node importance, clustering and a graph convolutional network.

    graph.py       edge list -> adjacency, degree, normalized adjacency, Laplacian; to/from networkx
    importance.py  degree, closeness, betweenness (Brandes), PageRank (power iteration and exact solve)
    clustering.py  spectral bisection / clustering, k-means, modularity, agreement with a known split
    gcn.py         GraphConv and GCN (Kipf and Welling 2017), NodeClassifier for semi-supervised node labels
    datasets.py    Zachary's karate club (embedded), example graphs, stochastic block model
    layout.py      spring and spectral layouts;  plot.py  drawings (matplotlib, imported on use)

networkx is never needed; ``to_networkx`` / ``from_networkx`` import it when called.
"""

from esc_course.graphs.clustering import (
    agreement,
    fiedler_vector,
    kmeans,
    laplacian_eigenvectors,
    modularity,
    spectral_bisection,
    spectral_clustering,
)
from esc_course.graphs.datasets import (
    GraphData,
    example_graphs,
    karate_club,
    noisy_class_features,
    planted_partition,
    stochastic_block_model,
)
from esc_course.graphs.gcn import (
    GCN,
    GraphConv,
    NodeClassifier,
    labelled_per_class,
)
from esc_course.graphs.graph import (
    adjacency,
    complete_graph,
    degree,
    degree_matrix,
    edge_list,
    from_networkx,
    is_symmetric,
    laplacian,
    normalized_adjacency,
    symmetrize,
    to_networkx,
)
from esc_course.graphs.importance import (
    ConvergenceError,
    betweenness_centrality,
    closeness_centrality,
    degree_centrality,
    pagerank,
    pagerank_exact,
    pagerank_residuals,
    shortest_path_lengths,
)
from esc_course.graphs.layout import spectral_layout, spring_layout

__all__ = [
    "GCN", "ConvergenceError", "GraphConv", "GraphData", "NodeClassifier", "adjacency", "agreement", "betweenness_centrality",
    "closeness_centrality", "complete_graph", "degree", "degree_centrality", "degree_matrix", "edge_list",
    "example_graphs", "fiedler_vector", "from_networkx", "is_symmetric", "karate_club", "kmeans", "labelled_per_class", "laplacian",
    "laplacian_eigenvectors", "modularity", "noisy_class_features",
    "normalized_adjacency", "pagerank", "pagerank_exact", "pagerank_residuals", "planted_partition",
    "shortest_path_lengths", "spectral_bisection", "spectral_clustering", "spectral_layout",
    "spring_layout", "stochastic_block_model", "symmetrize", "to_networkx",
]
