"""The compiled convolutional-chain evaluator equals the array reference evaluator."""

import numpy as np
import pytest

from sklearn_ntk import layers as nl
from sklearn_ntk.activations import LeakyReLU
from sklearn_ntk.arch.plan import compile_network
from sklearn_ntk.backends import conv, reference

CHAINS = {
    "gap_same": ([nl.Conv((3, 3)), "relu", nl.Conv((2, 3)), "erf", nl.GlobalAvgPool(), nl.Dense()],
                 (4, 5, 2)),
    "gsp_stride_valid": ([nl.Conv((2, 2), strides=(2, 1), padding="valid"), "gelu",
                          nl.Conv((3, 3), padding="circular", weight_std=2.0), LeakyReLU(0.2),
                          nl.GlobalSumPool(), nl.Dense(), "abs", nl.Dense(bias_std=0.0)],
                         (5, 4, 1)),
    "flatten_dense_first": ([nl.Dense(), "relu", nl.Conv((3, 3), strides=(2, 2)), "sin",
                             nl.Flatten(), nl.Dense(), "sign", nl.Dense()], (4, 5, 2)),
    "seq_3d": ([nl.Conv((2, 2, 3)), "relu", nl.GlobalAvgPool(), nl.Dense()], (3, 2, 4, 2)),
    "mlp": ([nl.Dense(), "relu", nl.Dense(weight_std=0.5), "erf", nl.Dense()], (6,)),
    "seq_1d": ([nl.Conv((3,), padding="circular"), "relu", nl.Flatten(), nl.Dense()], (7, 3)),
}


@pytest.mark.parametrize("name", sorted(CHAINS))
def test_compiled_chain_equals_reference(name):
    layers, shape = CHAINS[name]
    d = int(np.prod(shape))
    rng = np.random.default_rng(0)
    X = rng.standard_normal((5, d))
    X[0] = 0.0
    X[3] = X[1]
    Y = rng.standard_normal((3, d))
    Y[2] = X[4]
    plan = compile_network(layers, shape)
    w2, b2 = 1.7, 0.09
    tables = conv.encode(plan, w2, b2)
    assert tables is not None  # this network must take the compiled path
    for Yv in (None, Y):
        ref_nngp, ref_ntk = reference.kernel_matrices(plan, X, Yv, w2, b2)
        nngp, ntk = conv.pairs(plan, tables, X, Yv)
        np.testing.assert_allclose(nngp, ref_nngp[0], rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(ntk, ref_ntk[0], rtol=1e-12, atol=1e-15)
    d_nngp, d_ntk, _ = conv.self_pass(plan, tables, X)
    ref = reference.diag_kernels(plan, X, w2, b2)
    np.testing.assert_allclose(d_nngp, ref[0][0], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(d_ntk, ref[1][0], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize(
    "layers",
    [
        [nl.Conv((2, 2)), "relu", nl.AvgPool((2, 2)), nl.Flatten(), nl.Dense()],
        [nl.Conv((2, 2)), "tanh", nl.Flatten(), nl.Dense()],
        [nl.Conv((2, 2)), nl.LayerNorm(), "relu", nl.Flatten(), nl.Dense()],
        [nl.Conv((2, 2)), nl.Residual("relu", nl.Conv((2, 2))), nl.Flatten(), nl.Dense()],
    ],
)
def test_other_networks_use_the_reference(layers):
    assert conv.encode(compile_network(layers, (3, 3, 1)), 1.0, 0.1) is None
