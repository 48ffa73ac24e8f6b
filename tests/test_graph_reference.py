"""Graph networks (Aggregate) against neural-tangents 0.6.5 reference values.

The data were made by ``benchmarks/nt_reference/make_graph_reference.py``: seven directed, weighted
graphs of 1 to 7 nodes (one with zero features, one duplicate), six networks, NTK and NNGP.
"""

import json

import numpy as np
import pytest
import scipy.sparse as sp

from sklearn_ntk import NetworkKernel
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
