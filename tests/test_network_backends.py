"""The compiled convolutional-chain evaluator equals the array reference evaluator."""

import numpy as np
import pytest

from sklearn_ntk import layers as nl
from sklearn_ntk.activations import LeakyReLU
from sklearn_ntk.arch.plan import compile_network
from sklearn_ntk.backends import conv, reference

from .test_kernel_numerical import NumericalErf, NumericalGELU

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
    for Yv, grad in ((None, False), (Y, False), (None, True)):
        ref_nngp, ref_ntk = reference.kernel_matrices(plan, X, Yv, w2, b2, grad=grad)
        nngp, ntk = conv.pairs(plan, tables, X, Yv, grad=grad)
        assert nngp.shape == ref_nngp.shape
        # values and the tangents d/dlog sigma_b, d/dlog sigma_w (each relative to its scale)
        for ours, ref in ((nngp, ref_nngp), (ntk, ref_ntk)):
            for k in range(ref.shape[0]):
                scale = np.abs(ref[k]).max()
                np.testing.assert_allclose(ours[k], ref[k], rtol=1e-11, atol=1e-13 * scale)
    d_nngp, d_ntk, _ = conv.self_pass(plan, tables, X)
    ref = reference.diag_kernels(plan, X, w2, b2)
    np.testing.assert_allclose(d_nngp[0], ref[0][0], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(d_ntk[0], ref[1][0], rtol=1e-12, atol=1e-15)


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


def test_reference_blocks_of_pairs_give_the_same_kernel(monkeypatch):
    """k(X, Y) is evaluated block by block (bounded memory); the block size changes nothing."""
    layers = [nl.Conv((2, 2)), "relu", nl.AvgPool((2, 2), padding="same"), nl.GlobalAvgPool(),
              nl.Dense()]
    plan = compile_network(layers, (3, 3, 1))
    rng = np.random.default_rng(1)
    X, Y = rng.standard_normal((6, 9)), rng.standard_normal((4, 9))
    big = [reference.kernel_matrices(plan, X, Yv, 1.3, 0.1, grad=True) for Yv in (None, Y)]
    monkeypatch.setattr(reference, "_BLOCK_BYTES", 1)  # one pair per block
    assert reference._pairs_per_block(plan, 3) == 1
    for (nngp, ntk), Yv in zip(big, (None, Y), strict=True):
        small = reference.kernel_matrices(plan, X, Yv, 1.3, 0.1, grad=True)
        np.testing.assert_array_equal(small[0], nngp)
        np.testing.assert_array_equal(small[1], ntk)


def test_memory_error_before_allocation(monkeypatch):
    import sklearn_ntk._validation as val
    from sklearn_ntk import NetworkKernel

    monkeypatch.setattr(val, "available_memory_bytes", lambda: 1000)
    k = NetworkKernel([nl.Conv((2,)), "relu", nl.GlobalAvgPool(), nl.Dense()], input_shape=(3, 1))
    with pytest.raises(MemoryError, match="GiB"):
        k(np.ones((20, 3)))
    assert k.diag(np.ones((20, 3))).shape == (20,)  # O(n): not refused


def test_memory_guard_counts_the_pixel_pair_states(monkeypatch):
    """Large images: one pixel-pair state alone exceeds the memory; refused before allocating."""
    import sklearn_ntk._validation as val
    from sklearn_ntk import NetworkKernel

    monkeypatch.setattr(val, "available_memory_bytes", lambda: 2**26)  # 64 MiB
    X = np.ones((2, 48 * 48))  # P^2 = 5.3e6 pixel pairs: 42 MB per state buffer
    for layers in ([nl.Conv((3, 3)), "relu", nl.GlobalAvgPool(), nl.Dense()],
                   [nl.Conv((3, 3)), "relu", nl.AvgPool((2, 2)), nl.Flatten(), nl.Dense()]):
        with pytest.raises(MemoryError, match="GiB"):
            NetworkKernel(layers, input_shape=(48, 48, 1))(X)


FC_ACTIVATIONS = ["relu", "erf", "gelu", "sin", "sign", LeakyReLU(0.2), "tanh", "silu"]


@pytest.mark.parametrize("act", FC_ACTIVATIONS, ids=str)
@pytest.mark.parametrize("depth", [0, 1, 3])
def test_fused_fully_connected_path_equals_reference(act, depth):
    """NTKKernel's fused recursion (which NetworkKernel uses for ``[Dense, phi] * L + [Dense]``)
    equals the layer-by-layer array evaluator run on the same plan: values, both tangents, k(X, Y)
    and diag, closed-form and numerical activations, a zero row and a duplicated row."""
    from sklearn_ntk import NTKKernel

    rng = np.random.default_rng(7)
    X = rng.standard_normal((6, 4)) * np.array([1.0, 0.0, 3.0, 0.3, 1.0, 10.0])[:, None]
    X[4] = X[2]
    Y = rng.standard_normal((3, 4))
    w, b = 1.4, 0.2
    plan = compile_network([nl.Dense(), act] * depth + [nl.Dense()], (4,))
    fused = NTKKernel(depth=depth, activation=act, weight_std=w, bias_std=b)
    # numerical activations (tanh, SiLU): the fused path evaluates the same series by pair tiers
    rtol = 1e-9 if act in ("tanh", "silu") else 1e-12
    ref_nngp, ref_ntk = reference.kernel_matrices(plan, X, None, w * w, b * b, grad=True)
    for kind, ref in (("ntk", ref_ntk), ("nngp", ref_nngp)):
        fused.kind = kind
        K, G = fused(X, eval_gradient=True)
        scale = np.abs(ref[0]).max()
        np.testing.assert_allclose(K, ref[0], rtol=rtol, atol=rtol * scale)
        for k in (1, 2):  # d/dlog sigma_b, d/dlog sigma_w
            np.testing.assert_allclose(G[..., k - 1], ref[k], rtol=rtol,
                                       atol=rtol * np.abs(ref[k]).max())
        cross = reference.kernel_matrices(plan, X, Y, w * w, b * b)[0 if kind == "nngp" else 1][0]
        np.testing.assert_allclose(fused(X, Y), cross, rtol=rtol, atol=rtol * scale)
        diag = reference.diag_kernels(plan, X, w * w, b * b)[0 if kind == "nngp" else 1][0]
        np.testing.assert_allclose(fused.diag(X), diag, rtol=rtol, atol=rtol * scale)



def test_flatten_networks_carry_only_the_pixel_diagonal(monkeypatch):
    """Flatten needs only Sigma(x_p, y_p): such networks hold O(P) values per pair (never the
    P x P pixel pairs), on the compiled path and on the reference path alike; pooling networks
    hold every pixel pair up to their last pooling layer."""
    import sklearn_ntk._validation as val
    from sklearn_ntk import NetworkKernel

    flat = [[nl.Conv((3, 3)), "relu", nl.Conv((3, 3)), "erf", nl.Flatten(), nl.Dense()],
            [nl.Conv((3, 3)), nl.LayerNorm(), "relu", nl.Flatten(), nl.Dense()]]
    for layers in flat:
        plan = compile_network(layers, (48, 48, 1))
        assert not plan.input_full and not any(op.full for op in plan.ops)
    pooled = compile_network([nl.Conv((3, 3)), "relu", nl.AvgPool((2, 2)), nl.Conv((3, 3)), "relu",
                              nl.Flatten(), nl.Dense()], (8, 8, 1))
    assert pooled.input_full
    assert [op.full for op in pooled.ops] == [True, True, True, False, False, False, False]
    # 48 x 48 images: one pixel-pair state would be 42 MB; the pixel diagonal fits in 64 MiB
    monkeypatch.setattr(val, "available_memory_bytes", lambda: 2**26)
    X = np.random.default_rng(2).standard_normal((3, 48 * 48))
    for layers in flat:
        K = NetworkKernel(layers, input_shape=(48, 48, 1))(X)
        assert K.shape == (3, 3) and np.all(np.isfinite(K))


@pytest.mark.parametrize("numerical, closed", [(NumericalErf, "erf"), (NumericalGELU, "gelu")])
def test_numerical_activations_on_pixel_pairs_equal_closed_forms(numerical, closed):
    """Activations without a closed form run on spatial states (every pixel pair, the pixel
    diagonal, the exact ``same`` entries of a sample with itself) through the numerical
    expectations; erf and GELU written as plain activations must reproduce their closed forms:
    values, gradients, k(X, Y), diag."""
    from sklearn_ntk import NetworkKernel

    rng = np.random.default_rng(0)
    X = rng.standard_normal((5, 24))
    X[3] = X[1]
    X[4] = 0.0
    Y = 3.0 * rng.standard_normal((3, 24))
    for readout in (nl.GlobalAvgPool(), nl.Flatten()):
        kernels = [NetworkKernel([nl.Conv((3, 3)), act, nl.AvgPool((2, 2), padding="same"),
                                  nl.Conv((2, 2)), act, readout, nl.Dense()],
                                 input_shape=(3, 4, 2), weight_std=1.5, bias_std=0.2)
                   for act in (numerical(), closed)]
        (K_num, G_num), (K, G) = (k(X, eval_gradient=True) for k in kernels)
        np.testing.assert_allclose(K_num, K, rtol=1e-10)
        np.testing.assert_allclose(G_num, G, rtol=1e-10, atol=1e-10 * np.abs(G).max())
        np.testing.assert_allclose(kernels[0](X, Y), kernels[1](X, Y), rtol=1e-10)
        np.testing.assert_allclose(kernels[0].diag(X), kernels[1].diag(X), rtol=1e-10)
