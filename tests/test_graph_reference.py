"""Graph networks (Aggregate) against neural-tangents 0.6.5 reference values.

The data were made by ``benchmarks/nt_reference/make_graph_reference.py``: seven directed, weighted
graphs of 1 to 7 nodes (one with zero features, one duplicate), six networks, NTK and NNGP.
"""

import json

import numpy as np
import pytest
import scipy.sparse as sp

from sklearn_ntk import NetworkKernel
from sklearn_ntk.graphs import gntk_adjacency, gntk_layers
from tests.network_helpers import DATA, build

META = json.loads((DATA / "nt_graph_reference.json").read_text())
ARRAYS = np.load(DATA / "nt_graph_reference.npz")
GRAPHS = [(ARRAYS[f"A_{i}"], ARRAYS[f"H_{i}"]) for i in range(META["n_graphs"])]
RTOL = 1e-7


def kernel(name, kind="ntk"):
    net = META["networks"][name]
    return NetworkKernel(build(net["layers"]), weight_std=net["weight_std"],
                         bias_std=net["bias_std"], kind=kind)


def close(a, b):
    scale = np.abs(b).max()
    np.testing.assert_allclose(a, b, rtol=RTOL, atol=RTOL * scale)


@pytest.mark.parametrize("name", sorted(META["networks"]))
def test_kernel_matches_neural_tangents(name):
    ntk_ref, nngp_ref = ARRAYS[f"{name}_ntk"], ARRAYS[f"{name}_nngp"]
    k = kernel(name)
    ntk, nngp = k.ntk_and_nngp(GRAPHS)
    close(ntk, ntk_ref)
    close(nngp, nngp_ref)
    close(k(GRAPHS), ntk_ref)
    close(kernel(name, "nngp")(GRAPHS), nngp_ref)
    close(k.diag(GRAPHS), np.diag(ntk_ref))
    # k(X, Y) with Y a different set (no symmetry shortcut)
    close(k(GRAPHS[:3], GRAPHS[2:]), ntk_ref[:3, 2:])


@pytest.mark.parametrize("name", ["agg_sum", "agg_layernorm"])
def test_sparse_adjacency_same_numbers(name, monkeypatch):
    """Sparse adjacencies (kept sparse: the threshold lowered to 0) give the dense numbers."""
    monkeypatch.setattr("sklearn_ntk.graphs.SPARSE_MIN_NODES", 0)
    sparse = [(sp.csr_matrix(A), H) for A, H in GRAPHS]
    close(kernel(name)(sparse), ARRAYS[f"{name}_ntk"])
    close(kernel(name)(sparse[:2], GRAPHS[3:]), ARRAYS[f"{name}_ntk"][:2, 3:])


def test_reference_is_informative():
    """The directed graphs make A^T and A differ: using A instead would change the numbers."""
    k = kernel("agg_sum")
    flipped = [(A.T, H) for A, H in GRAPHS]
    assert np.abs(k(flipped) - ARRAYS["agg_sum_ntk"]).max() > 1e-3 * np.abs(ARRAYS["agg_sum_ntk"]).max()


@pytest.mark.parametrize("name, args", [("gntk_2blocks", (2, 2, False)), ("gntk_jk", (2, 1, True))])
def test_gntk_helper_is_the_reference_network(name, args):
    net = META["networks"][name]
    k = NetworkKernel(gntk_layers(*args), weight_std=net["weight_std"], bias_std=net["bias_std"])
    ntk, nngp = k.ntk_and_nngp(GRAPHS)
    close(ntk, ARRAYS[f"{name}_ntk"])
    close(nngp, ARRAYS[f"{name}_nngp"])


def test_gntk_mean_aggregation():
    """gntk_adjacency(average=True) averages over the in-neighbours and the node itself."""
    A = np.array([[0, 1, 1], [1, 0, 0], [1, 0, 0]], dtype=float)
    M = gntk_adjacency(A, average=True)
    H = np.arange(6.0).reshape(3, 2)
    np.testing.assert_allclose(M.T @ H, [[H.mean(0)[0], H.mean(0)[1]], H[:2].mean(0), H[[0, 2]].mean(0)])
    np.testing.assert_allclose(gntk_adjacency(sp.csr_matrix(A), average=True).toarray(), M)
    np.testing.assert_allclose(gntk_adjacency(A), A + np.eye(3))
