"""Aggregate layer: compiled evaluator == reference evaluator, refused networks, bad graph inputs."""

import pickle

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone

from sklearn_ntk import NetworkKernel
from sklearn_ntk import layers as nl
from sklearn_ntk.activations import LeakyReLU
from sklearn_ntk.arch.plan import GRAPH_SHAPE, compile_network
from sklearn_ntk.backends import graph as reference
from sklearn_ntk.backends import graph_chain
from sklearn_ntk.graphs import check_graphs


def random_graphs(n, seed, sizes=(1, 2, 3, 5, 8)):
    rng = np.random.default_rng(seed)
    out = []
    for N in rng.choice(sizes, n):
        A = (rng.random((N, N)) < 0.4) * rng.uniform(0.2, 1.5, (N, N))
        out.append((A, rng.standard_normal((N, 3)) * rng.choice([0.0, 0.5, 2.0])))
    return out


CHAINS = {
    "sum": [nl.Dense(), "relu", nl.Aggregate(), nl.Dense(), "erf", nl.GlobalSumPool(), nl.Dense()],
    "avg_tail": [nl.Aggregate(), nl.Dense(weight_std=0.7, bias_std=0.0), LeakyReLU(0.1),
                 nl.Aggregate(), nl.Aggregate(), nl.Dense(), "relu", nl.GlobalAvgPool(),
                 nl.Dense(), "gelu", nl.Dense()],
}


@pytest.mark.parametrize("name", sorted(CHAINS))
def test_compiled_chain_equals_reference(name):
    gx, gy = check_graphs(random_graphs(9, 1)), check_graphs(random_graphs(4, 2))
    plan = compile_network(CHAINS[name], GRAPH_SHAPE + (3,))
    w2, b2 = 1.3**2, 0.2**2
    tables = graph_chain.encode(plan, w2, b2)
    assert tables is not None
    for y in (None, gy):
        nngp, ntk = reference.kernel_matrices(plan, gx, y, w2, b2)
        packed_y = None if y is None else graph_chain.pack(y)
        c_nngp, c_ntk = graph_chain.pairs(tables, graph_chain.pack(gx), packed_y)
        np.testing.assert_allclose(c_nngp, nngp[0], rtol=1e-12, atol=1e-12 * np.abs(nngp).max())
        np.testing.assert_allclose(c_ntk, ntk[0], rtol=1e-12, atol=1e-12 * np.abs(ntk).max())
    d_nngp, d_ntk, _ = graph_chain.self_pass(tables, graph_chain.pack(gx))
    np.testing.assert_allclose(d_ntk, np.diag(reference.kernel_matrices(plan, gx, None, w2, b2)[1][0]),
                               rtol=1e-12)


def test_kernel_properties():
    k = NetworkKernel(CHAINS["sum"], weight_std=1.2)
    gx = random_graphs(7, 3)
    K = k(gx)
    np.testing.assert_allclose(K, K.T, rtol=1e-12)
    assert np.linalg.eigvalsh(K).min() > -1e-9 * np.abs(K).max()
    np.testing.assert_allclose(k.diag(gx), np.diag(K), rtol=1e-12)
    np.testing.assert_allclose(k(gx[:3], gx[3:]), K[:3, 3:], rtol=1e-12)
    assert not k.requires_vector_input
    assert NetworkKernel([nl.Dense()]).requires_vector_input
    k2 = pickle.loads(pickle.dumps(clone(k)))
    assert k2 == k and repr(nl.Aggregate()) == "Aggregate()"
    np.testing.assert_allclose(k2(gx), K, rtol=1e-12)


def test_node_readout_without_aggregate():
    """Dense/ReLU on nodes and a sum readout (no Aggregate) still takes graphs."""
    k = NetworkKernel([nl.Dense(), "relu", nl.GlobalSumPool(), nl.Dense()])
    K = k(random_graphs(4, 4))
    assert K.shape == (4, 4) and np.isfinite(K).all()


def test_refused_networks():
    g = random_graphs(2, 5)
    with pytest.raises(TypeError, match="numeric array, but this network has Aggregate"):
        NetworkKernel([nl.Dense(), nl.Aggregate(), nl.Dense()])(np.ones((2, 3)))
    with pytest.raises(ValueError, match="Aggregate\\(\\) needs node features"):
        NetworkKernel([nl.Aggregate(), nl.GlobalSumPool(), nl.Aggregate(), nl.Dense()])(g)
    with pytest.raises(ValueError, match="graph nodes have no grid"):
        NetworkKernel([nl.Aggregate(), nl.Conv((3,)), nl.GlobalSumPool(), nl.Dense()])(g)
    with pytest.raises(ValueError, match="graph nodes have no grid"):
        NetworkKernel([nl.Aggregate(), nl.Dense(), nl.Flatten(), nl.Dense()])(g)
    with pytest.raises(ValueError, match="spatial axes"):
        NetworkKernel([nl.Aggregate(), nl.Dense()])(g)
    with pytest.raises(ValueError, match="input_shape must be None"):
        NetworkKernel([nl.Aggregate(), nl.GlobalSumPool(), nl.Dense()], input_shape=(3,))(g)


def test_bad_graph_inputs():
    k = NetworkKernel([nl.Aggregate(), nl.Dense(), nl.GlobalSumPool(), nl.Dense()])
    good = (np.eye(2), np.ones((2, 3)))
    with pytest.raises(TypeError, match="numeric array"):
        k(np.ones((3, 4)))
    with pytest.raises(ValueError, match="square"):
        k([good, (np.ones((2, 3)), np.ones((2, 3)))])
    with pytest.raises(ValueError, match="same number N"):
        k([good, (np.eye(3), np.ones((2, 3)))])
    with pytest.raises(ValueError, match="same number of node features"):
        k([good, (np.eye(2), np.ones((2, 4)))])
    with pytest.raises(ValueError, match="NaN"):
        k([good, (np.eye(2), np.array([[np.nan, 0, 0], [0, 0, 0]]))])
    with pytest.raises(ValueError, match="NaN"):
        k([good, (sp.csr_matrix(np.array([[np.inf, 0], [0, 1]])), np.ones((2, 3)))])
    with pytest.raises(ValueError, match="2-D"):
        k([good, (np.eye(2), np.ones(2))])
    with pytest.raises(TypeError, match="pair"):
        k([good, np.eye(2)])
    with pytest.raises(ValueError, match="match"):
        k([good], [(np.eye(2), np.ones((2, 4)))])


def test_memory_guard_names_the_graph_sizes(monkeypatch):
    monkeypatch.setattr("sklearn_ntk._validation.available_memory_bytes", lambda: 10**6)
    big = [(sp.eye(400, format="csr"), np.ones((400, 3)))]
    k = NetworkKernel([nl.Aggregate(), nl.Dense(), "relu", nl.GlobalSumPool(), nl.Dense()])
    with pytest.raises(MemoryError, match="node-pair states"):
        k(big)
    with pytest.raises(MemoryError, match="400 and 400 nodes"):
        k(big, eval_gradient=True)


def test_pack_dense_and_sparse_adjacencies_agree():
    """A dense adjacency is packed as its CSR conversion would be (explicit zeros dropped)."""
    gs = random_graphs(6, 5)
    dense = graph_chain.pack(gs)
    sparse = graph_chain.pack([(sp.csr_array(A), H) for A, H in gs])
    for a, b in zip(dense, sparse, strict=True):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    assert dense[2][-1] == sum(np.count_nonzero(A) for A, _ in gs)
