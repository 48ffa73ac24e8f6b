"""Graph inputs for networks with :class:`~sklearn_ntk.layers.Aggregate` layers.

A sample is one graph, given as an ``(adjacency, node_features)`` pair:

* ``adjacency`` -- array-like or scipy sparse matrix of shape ``(N, N)``, ``adjacency[i, j]`` the
  weight of the edge ``i -> j`` (symmetric for an undirected graph), used as given: include
  self-loops in it to keep every node's own features;
* ``node_features`` -- array-like of shape ``(N, C)``; ``N`` may differ between graphs, ``C`` may not.

A ``networkx`` graph can stand in for the pair as ``(graph, "attribute")``: the adjacency is the
graph's (sparse, with its ``"weight"`` edge attribute, 1 by default) and the node features are the
node attribute of that name, in the order of ``graph.nodes``.

``X`` is a sequence of such pairs (a list, or the 1-D object array of :func:`graph_array`). The
kernels accept any of these; scikit-learn's own estimators (``GaussianProcessRegressor``) turn a
list of pairs into a numeric array and fail, so give them ``graph_array(X)``.
"""

from __future__ import annotations

import hashlib
import numbers

import numpy as np
import scipy.sparse as sp

__all__ = ["graph_array", "gntk_layers", "gntk_adjacency", "check_graphs", "is_graph_input",
           "graph_key"]

#: sparse adjacencies of graphs with more nodes than this stay sparse (smaller ones are densified)
SPARSE_MIN_NODES = 128


def _is_networkx(obj):
    return type(obj).__module__.split(".")[0] == "networkx"


def _is_pair(item):
    if isinstance(item, np.ndarray) and item.dtype == object and item.shape == (2,):
        return True
    return isinstance(item, (tuple, list)) and len(item) == 2


def is_graph_input(X):
    """Whether ``X`` looks like a sequence of graphs (rather than a 2-D numeric array)."""
    if isinstance(X, np.ndarray):
        return X.dtype == object and X.shape[:1] != (0,)
    if isinstance(X, (list, tuple)) and len(X) > 0:
        return _is_pair(X[0])
    return False


def _items(X, name):
    if isinstance(X, np.ndarray):
        if X.dtype != object:
            raise TypeError(
                f"{name} is a numeric array, but this network has Aggregate layers: {name} must be "
                "a sequence of (adjacency, node_features) pairs, one per graph"
            )
        if X.ndim == 2 and X.shape[1] == 2:  # np.asarray(pairs, dtype=object) of ragged pairs
            return [tuple(row) for row in X]
        if X.ndim != 1:
            raise ValueError(f"{name}: an object array of graphs must be 1-D, got shape {X.shape}")
        return list(X)
    if isinstance(X, (list, tuple)):
        return list(X)
    raise TypeError(
        f"{name} must be a sequence of (adjacency, node_features) pairs, got {type(X).__name__}"
    )


def _from_networkx(G, attr, where):
    if not isinstance(attr, str):
        raise TypeError(f"{where}: a networkx graph must come with the name of a node attribute, "
                        f"e.g. (G, 'x'), got {attr!r}")
    import networkx as nx

    nodes = list(G.nodes)
    if not nodes:
        raise ValueError(f"{where}: the graph has no nodes")
    rows = []
    for v in nodes:
        if attr not in G.nodes[v]:
            raise ValueError(f"{where}: node {v!r} has no attribute {attr!r}")
        rows.append(np.atleast_1d(np.asarray(G.nodes[v][attr], dtype=np.float64)))
    A = nx.to_scipy_sparse_array(G, nodelist=nodes, weight="weight", format="csr", dtype=np.float64)
    return A, rows


def _adjacency(A, where):
    if sp.issparse(A):
        A = sp.csr_array(A, dtype=np.float64)
        if A.ndim != 2 or A.shape[0] != A.shape[1]:
            raise ValueError(f"{where}: the adjacency must be square, got shape {A.shape}")
        if not np.isfinite(A.data).all():
            raise ValueError(f"{where}: the adjacency contains NaN or infinity")
        if A.shape[0] <= SPARSE_MIN_NODES:
            return A.toarray()
        A.sum_duplicates()
        return A
    try:
        A = np.asarray(A, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{where}: the adjacency must be a numeric (N, N) array: {exc}") from None
    if A.ndim != 2 or A.shape[0] != A.shape[1]:
        raise ValueError(f"{where}: the adjacency must be a square (N, N) array, got shape {A.shape}")
    if not np.isfinite(A).all():
        raise ValueError(f"{where}: the adjacency contains NaN or infinity")
    return A


def _graph(item, where):
    if not _is_pair(item):
        raise TypeError(f"{where} must be an (adjacency, node_features) pair, got {type(item).__name__}")
    A, H = item[0], item[1]
    if _is_networkx(A):
        A, H = _from_networkx(A, H, where)
    A = _adjacency(A, where)
    try:
        H = np.asarray(H, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{where}: node_features must be a numeric (N, C) array: {exc}") from None
    if H.ndim != 2:
        raise ValueError(f"{where}: node_features must be 2-D (N, C), got shape {H.shape}")
    if H.shape[0] != A.shape[0] or H.shape[0] == 0 or H.shape[1] == 0:
        raise ValueError(
            f"{where}: the adjacency is {A.shape} but node_features is {H.shape}; they need the "
            "same number N >= 1 of nodes and C >= 1 features"
        )
    if not np.isfinite(H).all():
        raise ValueError(f"{where}: node_features contain NaN or infinity")
    return A, H


def check_graphs(X, name="X"):
    """Validate a sequence of graphs; return a list of ``(adjacency, features)`` float64 pairs.

    Adjacencies come back dense, or as ``scipy.sparse.csr_array`` for sparse ones of more than
    ``SPARSE_MIN_NODES`` nodes (never densified). The caller's arrays are never written to.
    """
    items = _items(X, name)
    if not items:
        raise ValueError(f"{name} holds no graphs")
    graphs = [_graph(item, f"{name}[{i}]") for i, item in enumerate(items)]
    widths = {H.shape[1] for _, H in graphs}
    if len(widths) != 1:
        raise ValueError(f"{name}: every graph needs the same number of node features, got {sorted(widths)}")
    return graphs


def graph_array(graphs):
    """A 1-D object array of validated ``(adjacency, node_features)`` pairs (copies).

    scikit-learn's estimators validate ``X`` with ``numpy.asarray``, which fails on a list of
    pairs of arrays of different shapes; a 1-D object array passes through unchanged (as for
    ``GaussianProcessRegressor`` with a :class:`~sklearn_ntk.NetworkKernel` of a graph network).

    Parameters
    ----------
    graphs : sequence of (adjacency, node_features) pairs
        See :ref:`graph-networks`; ``(networkx_graph, "attribute")`` pairs are converted.

    Returns
    -------
    ndarray of shape (n_graphs,) and dtype object
    """
    checked = check_graphs(graphs, "X")
    out = np.empty(len(checked), dtype=object)
    for i, (A, H) in enumerate(checked):
        out[i] = (A.copy(), H.copy())
    return out


def graph_key(X):
    """Exact hash of a sequence of graphs (for caches keyed by the data)."""
    h = hashlib.blake2b(digest_size=20)
    for A, H in check_graphs(X):
        parts = (A.data, A.indices, A.indptr) if sp.issparse(A) else (A,)
        for arr in parts + (H,):
            arr = np.ascontiguousarray(arr)
            h.update(str((arr.shape, arr.dtype.str)).encode())
            h.update(memoryview(arr).cast("B"))
        h.update(b"|" if not sp.issparse(A) else b"s")
    return h.hexdigest()


# --------------------------------------------------------------------------------------------------
# the GNTK of Du et al. (2019) in these layers
# --------------------------------------------------------------------------------------------------
def gntk_layers(n_blocks=2, n_mlp_layers=2, jumping_knowledge=False):
    """The layers of the graph neural tangent kernel (GNTK) of Du et al. (2019).

    Each of the ``n_blocks`` BLOCKs is one aggregation (``Aggregate()``: sum over the node's
    neighbours and itself, given the adjacency of :func:`gntk_adjacency`) followed by
    ``n_mlp_layers`` fully-connected ReLU layers (``Dense(), "relu"``); the READOUT sums over the
    nodes (``GlobalSumPool()``) and a final ``Dense()`` is the linear output layer. With
    ``jumping_knowledge`` the readout sums the node sums of every block (the concatenation of
    per-block readouts of the paper: each block's sum gets its own ``Dense()`` readout and their
    kernels add, ``FanOut`` / ``parallel`` / ``FanInSum``).

    Use ``NetworkKernel(gntk_layers(...), weight_std=sqrt(2), bias_std=0)`` for the paper's
    constants: :math:`c_\\sigma = 2` is ``weight_std**2``, no biases. The paper's input kernel is
    :math:`\\langle h_u, h_{u'} \\rangle` where ours is :math:`\\langle h_u, h_{u'}\\rangle / C`
    followed by the first ``Dense`` (:math:`\\sigma_w^2`); without biases the ReLU network is
    positively homogeneous, so both kernels agree up to the constant factor, which changes no
    prediction of a kernel machine whose regularisation is rescaled alike. The neighbourhood scaling
    :math:`c_u` (1 for sum, :math:`1/(|\\mathcal N(u)| + 1)` for mean aggregation) goes into the
    adjacency: see :func:`gntk_adjacency`.

    Parameters
    ----------
    n_blocks : int, default=2
        Number of BLOCK operations :math:`L` (aggregation + MLP).
    n_mlp_layers : int, default=2
        Number of fully-connected ReLU layers :math:`R` per block.
    jumping_knowledge : bool, default=False
        Read out the node sums of every block, not only of the last one.

    Returns
    -------
    list
        Layers for :class:`~sklearn_ntk.NetworkKernel` (whose inputs are then graphs).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_ntk import NetworkKernel
    >>> from sklearn_ntk.graphs import gntk_adjacency, gntk_layers
    >>> k = NetworkKernel(gntk_layers(2, 2), weight_std=np.sqrt(2), bias_std=0.0)
    >>> path = np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]], dtype=float)
    >>> X = [(gntk_adjacency(path), np.ones((3, 1))), (gntk_adjacency(np.zeros((2, 2))), np.ones((2, 1)))]
    >>> k(X).shape
    (2, 2)
    """
    from . import layers as nl

    for name, value in (("n_blocks", n_blocks), ("n_mlp_layers", n_mlp_layers)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    block = [nl.Aggregate()] + [nl.Dense(), "relu"] * int(n_mlp_layers)
    if not jumping_knowledge:
        return block * int(n_blocks) + [nl.GlobalSumPool(), nl.Dense()]
    tail = block + [nl.GlobalSumPool(), nl.Dense()]  # the last block and its readout
    for _ in range(int(n_blocks) - 1):
        readout = nl.serial(nl.GlobalSumPool(), nl.Dense())
        tail = block + [nl.FanOut(2), nl.parallel(readout, nl.serial(*tail)), nl.FanInSum()]
    return tail


def gntk_adjacency(adjacency, average=False):
    """The aggregation matrix of the GNTK: neighbours plus self-loops, summed or averaged.

    Returns :math:`(A + I)\\,\\mathrm{diag}(c)` with :math:`c_u = 1` (``average=False``) or
    :math:`c_u = 1 / \\sum_v (A + I)_{vu}` (the mean over the node's in-neighbours and itself), so
    that ``Aggregate()`` computes :math:`h_u \\leftarrow c_u \\sum_{v \\in \\mathcal N(u) \\cup \\{u\\}} h_v`.
    Sparse input stays sparse.

    Parameters
    ----------
    adjacency : array-like or sparse matrix of shape (N, N)
        Without self-loops (any present are kept and get one more).
    average : bool, default=False

    Returns
    -------
    ndarray or scipy.sparse.csr_array of shape (N, N)
    """
    if sp.issparse(adjacency):
        A = sp.csr_array(adjacency, dtype=np.float64) + sp.eye_array(adjacency.shape[0], format="csr")
        if average:
            A = (A @ sp.diags_array(1.0 / np.asarray(A.sum(axis=0)).ravel())).tocsr()
        return A
    A = np.array(adjacency, dtype=np.float64)
    if A.ndim != 2 or A.shape[0] != A.shape[1]:
        raise ValueError(f"adjacency must be a square (N, N) array, got shape {A.shape}")
    A += np.eye(A.shape[0])
    if average:
        A /= A.sum(axis=0, keepdims=True)
    return A
