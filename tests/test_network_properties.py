"""Property tests of NetworkKernel (hypothesis): symmetry, PSD, k(X, Y) = k(Y, X)^T, diag,
invariance of GAP networks to circular shifts (and its absence for Flatten networks)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sklearn_ntk import NetworkKernel
from sklearn_ntk import layers as nl

SHAPE = (3, 4, 2)
NETS = {
    "gap": [nl.Conv((3, 3), padding="circular"), "relu", nl.Conv((2, 2), padding="circular"),
            "erf", nl.GlobalAvgPool(), nl.Dense()],
    "flatten": [nl.Conv((3, 3), padding="circular"), "relu", nl.Conv((2, 2), padding="circular"),
                "erf", nl.Flatten(), nl.Dense()],
    "pool_res": [nl.Conv((2, 2)), nl.Residual("gelu", nl.Conv((3, 3))), "relu",
                 nl.AvgPool((2, 2), strides=(1, 2), padding="same"), nl.GlobalSumPool(), nl.Dense()],
}


def _kernel(name, w, b):
    return NetworkKernel(NETS[name], input_shape=SHAPE, weight_std=w, bias_std=b)


@settings(max_examples=8, deadline=None)
@given(
    name=st.sampled_from(sorted(NETS)),
    seed=st.integers(0, 2**16),
    w=st.floats(0.5, 2.0),
    b=st.floats(0.0, 1.0),
    scale=st.floats(1e-2, 1e2),
)
def test_symmetric_psd_cross_and_diag(name, seed, w, b, scale):
    rng = np.random.default_rng(seed)
    X = scale * rng.standard_normal((5, 24))
    X[4] = X[0]
    Y = rng.standard_normal((3, 24))
    k = _kernel(name, w, b)
    for kind in ("ntk", "nngp"):
        k.kind = kind
        K = k(X)
        assert np.array_equal(K, K.T)
        eig = np.linalg.eigvalsh(K)
        assert eig.min() >= -1e-10 * eig.max()
        np.testing.assert_allclose(k(X, Y), k(Y, X).T, rtol=1e-12, atol=1e-14 * eig.max())
        np.testing.assert_allclose(k.diag(X), np.diag(K), rtol=1e-12)
        np.testing.assert_allclose(K[4], K[0], rtol=1e-12)  # a duplicated image


def _shift(X, dh, dw):
    imgs = X.reshape((-1,) + SHAPE)
    return np.roll(imgs, (dh, dw), axis=(1, 2)).reshape(X.shape[0], -1)


@pytest.mark.parametrize("kind", ["ntk", "nngp"])
def test_gap_invariant_to_circular_shifts_flatten_not(kind):
    X = np.random.default_rng(0).standard_normal((4, 24))
    Y = np.random.default_rng(1).standard_normal((3, 24))
    Xs = _shift(X, 1, 2)
    gap = _kernel("gap", 1.3, 0.2).set_params(kind=kind)
    np.testing.assert_allclose(gap(Xs, Y), gap(X, Y), rtol=1e-12)
    np.testing.assert_allclose(gap(Xs), gap(X), rtol=1e-12)
    flat = _kernel("flatten", 1.3, 0.2).set_params(kind=kind)
    # shifting both arguments keeps a Flatten network's kernel (circular padding) ...
    np.testing.assert_allclose(flat(Xs, _shift(Y, 1, 2)), flat(X, Y), rtol=1e-12)
    # ... shifting one of them changes it
    assert np.abs(flat(Xs, Y) - flat(X, Y)).max() > 1e-3 * np.abs(flat(X, Y)).max()
