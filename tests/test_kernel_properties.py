"""Property-based and extreme-input tests of NTKKernel."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from sklearn_ntk import NTKKernel
from sklearn_ntk.activations import LeakyReLU

CLOSED = ["relu", "abs", "erf", "gelu", "sin", "identity", "sign", LeakyReLU(0.3)]

finite = st.floats(-5, 5, allow_nan=False, allow_infinity=False)


def _matrix(n_max=6, d_max=4):
    return st.integers(1, d_max).flatmap(
        lambda d: st.integers(1, n_max).flatmap(
            lambda n: arrays(np.float64, (n, d), elements=finite)
        )
    )


kernel_params = st.fixed_dictionaries(
    {
        "depth": st.integers(0, 4),
        "activation": st.sampled_from(CLOSED),
        "weight_std": st.floats(0.3, 2.5),
        "bias_std": st.floats(0.0, 1.5),
        "kind": st.sampled_from(["ntk", "nngp"]),
    }
)


@settings(max_examples=60, deadline=None)
@given(X=_matrix(), params=kernel_params)
def test_symmetric_psd_and_diag(X, params):
    k = NTKKernel(**params)
    K = k(X)
    assert np.all(np.isfinite(K))
    np.testing.assert_array_equal(K, K.T)
    np.testing.assert_allclose(np.diag(K), k.diag(X), rtol=1e-12, atol=1e-300)
    scale = max(np.abs(K).max(), 1e-300)
    assert np.linalg.eigvalsh(K).min() >= -1e-9 * scale


@settings(max_examples=40, deadline=None)
@given(data=st.data(), params=kernel_params)
def test_cross_is_transpose(data, params):
    d = data.draw(st.integers(1, 4))
    X = data.draw(arrays(np.float64, (data.draw(st.integers(1, 5)), d), elements=finite))
    Y = data.draw(arrays(np.float64, (data.draw(st.integers(1, 5)), d), elements=finite))
    k = NTKKernel(**params)
    np.testing.assert_allclose(k(X, Y), k(Y, X).T, rtol=1e-12, atol=1e-14)
    # k(X, X) agrees with k(X) up to the round-off of the angle between distinct evaluations
    KX = k(X)
    np.testing.assert_allclose(k(X, X), KX, rtol=1e-6, atol=1e-6 * np.abs(KX).max())


@settings(max_examples=40, deadline=None)
@given(
    X=_matrix(),
    alpha=st.floats(0.01, 100),
    depth=st.integers(0, 4),
    kind=st.sampled_from(["ntk", "nngp"]),
)
def test_relu_without_bias_is_positively_homogeneous(X, alpha, depth, kind):
    k = NTKKernel(depth=depth, activation="relu", weight_std=1.4, bias_std=0.0, kind=kind)
    K = k(X)
    np.testing.assert_allclose(k(alpha * X), alpha**2 * K, rtol=1e-9, atol=1e-12 * alpha**2)
    np.testing.assert_allclose(k(alpha * X, X), alpha * K, rtol=1e-6, atol=1e-9 * alpha)


def test_zero_rows_give_the_limit_not_nan():
    X = np.array([[0.0, 0.0], [1.0, 2.0], [0.0, 0.0]])
    for act in CLOSED + ["tanh"]:
        for b in (0.0, 0.5):
            K = NTKKernel(depth=3, activation=act, bias_std=b)(X)
            assert np.all(np.isfinite(K)), act
    # ReLU, sigma_b = 0: the zero input has zero output and zero gradient: its row is exactly 0
    K = NTKKernel(depth=3, activation="relu", bias_std=0.0)(X)
    np.testing.assert_array_equal(K[0], 0.0)
    # and the limit x -> 0 is continuous
    eps = np.array([[1e-12, 0.0], [1.0, 2.0]])
    np.testing.assert_allclose(
        NTKKernel(depth=3, bias_std=0.3)(eps), NTKKernel(depth=3, bias_std=0.3)(X[:2]), atol=1e-10
    )


def test_duplicate_rows_identical_to_diagonal():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(6, 7))
    X[4] = X[1]
    for act in CLOSED:
        K = NTKKernel(depth=5, activation=act, weight_std=1.7, bias_std=0.3)(X)
        np.testing.assert_allclose(K[1, 4], K[1, 1], rtol=1e-12)


@pytest.mark.parametrize("act", CLOSED + ["tanh", "silu"])
def test_norms_from_1e_minus8_to_1e8(act):
    rng = np.random.RandomState(1)
    n = (
        9 if act in CLOSED else 5
    )  # numerical expectations at norm 1e8 need the finest grid: keep small
    X = rng.normal(size=(n, 3))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    X *= np.logspace(-8, 8, n)[:, None]
    k = NTKKernel(depth=3, activation=act, weight_std=1.2, bias_std=0.1)
    K = k(X)
    assert np.all(np.isfinite(K)) and np.all(np.isfinite(k.diag(X)))
    np.testing.assert_allclose(np.diag(K), k.diag(X), rtol=1e-12)


@pytest.mark.parametrize("act", CLOSED)
@pytest.mark.parametrize("sw", [0.5, 1.0, 2.0])
def test_depth_100_finite(act, sw):
    X = np.random.RandomState(2).normal(size=(5, 3))
    K, G = NTKKernel(depth=100, activation=act, weight_std=sw, bias_std=0.05)(X, eval_gradient=True)
    assert np.all(np.isfinite(K)) and np.all(np.isfinite(G))


def test_one_feature_and_depth_zero_is_linear():
    X = np.array([[1.0], [-2.0], [3.0]])
    K = NTKKernel(depth=0, weight_std=1.5, bias_std=0.5)(X)
    np.testing.assert_allclose(K, 2.25 * X @ X.T + 0.25)


def test_relu_depth1_textbook_formula():
    """Two-layer ReLU NTK written out by hand (arc-cosine kernels of degree 0 and 1)."""
    rng = np.random.RandomState(3)
    X = rng.normal(size=(5, 4))
    sw, sb = 1.3, 0.4
    s = sw**2 * X @ X.T / 4 + sb**2
    nrm = np.sqrt(np.outer(np.diag(s), np.diag(s)))
    cos = np.clip(s / nrm, -1, 1)
    th = np.arccos(cos)
    np.fill_diagonal(th, 0.0)
    nngp = sw**2 * nrm * (np.sin(th) + (np.pi - th) * cos) / (2 * np.pi) + sb**2
    ntk = nngp + sw**2 * (np.pi - th) / (2 * np.pi) * s
    got_ntk, got_nngp = NTKKernel(depth=1, weight_std=sw, bias_std=sb).ntk_and_nngp(X)
    np.testing.assert_allclose(got_nngp, nngp, rtol=1e-12)
    np.testing.assert_allclose(got_ntk, ntk, rtol=1e-12)
