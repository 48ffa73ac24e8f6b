"""The vectorised row loops of the fused FC kernel against a pair-by-pair scalar recursion."""

import numpy as np
import pytest

from sklearn_ntk import NTKKernel
from sklearn_ntk.activations import LeakyReLU
from sklearn_ntk.backends import fused

ANGLE = ["relu", "abs", LeakyReLU(0.3), "sign"]
VECTOR = ANGLE + ["erf"]  # the activations with a vectorised row loop


def _inputs():
    rng = np.random.RandomState(3)
    X = rng.normal(size=(9, 5))
    X[2] = 0.0  # a zero row
    X[4] = X[1]  # a duplicate
    X[5] = -X[0]  # rho = -1
    X[6] = X[3] * (1.0 + 1e-9)  # nearly parallel
    X[7] *= 1e-8
    X[8] *= 1e8
    Y = np.vstack([X[[1, 5, 2]], rng.normal(size=(4, 5))])
    return X, Y


def _scalar_kernel(k, X, Y):
    """The recursion pair by pair with the scalar closed forms (``same`` where the rows coincide)."""
    act, w2, b2 = k._resolved()
    p0, p1 = act._code_params()
    sym = Y is None
    Y = X if sym else Y
    d = X.shape[1]
    out = np.empty((X.shape[0], Y.shape[0], 2))
    for i, x in enumerate(X):
        for j, y in enumerate(Y):
            same = sym and i == j
            a, b = w2 * (x @ x) / d + b2, w2 * (y @ y) / d + b2
            s = a if same else w2 * (x @ y) / d + b2
            th = s
            for _ in range(k.depth):
                t, td = fused._moments(act._code, p0, p1, a, b, s, same)
                s, th = fused._dense(t, td, th, w2, b2)
                ta, _ = fused._moments(act._code, p0, p1, a, a, a, True)
                tb, _ = fused._moments(act._code, p0, p1, b, b, b, True)
                a, b = w2 * ta + b2, w2 * tb + b2
            out[i, j] = th, s
    return out


@pytest.mark.parametrize("act", VECTOR, ids=str)
@pytest.mark.parametrize("sym", [True, False])
def test_vectorised_rows_match_scalar_recursion(act, sym):
    X, Y = _inputs()
    k = NTKKernel(depth=4, activation=act, weight_std=1.3, bias_std=0.2)
    want = _scalar_kernel(k, X, None if sym else Y)
    ntk, nngp = k.ntk_and_nngp(X, None if sym else Y)
    for got, ref in ((ntk, want[..., 0]), (nngp, want[..., 1])):
        np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-300)
    assert np.array_equal(k(X, None if sym else Y), ntk)  # the single-output loop is the same
    if sym:  # the diagonal takes the exact same-row branch, duplicates agree with it
        np.testing.assert_array_equal(np.diag(ntk), k.diag(X))
        np.testing.assert_allclose(ntk[1, 4], ntk[1, 1], rtol=1e-13)


@pytest.mark.parametrize("act", VECTOR, ids=str)
def test_rectangular_rows_match_symmetric(act):
    X, _ = _inputs()
    k = NTKKernel(depth=3, activation=act, bias_std=0.0)  # no bias: zero rows stay zero
    np.testing.assert_allclose(k(X, X), k(X), rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("act", ANGLE, ids=str)
@pytest.mark.parametrize("kind", ["ntk", "nngp"])
def test_vectorised_gradient_rows_match_scalar_pairs(act, kind):
    X, _ = _inputs()
    X = X[:8]  # the 1e8 row makes the tangents of its pairs reach 1e16: keep the scale moderate
    k = NTKKernel(depth=3, activation=act, weight_std=1.3, bias_std=0.2, kind=kind)
    K, dK = k(X, eval_gradient=True)
    act_, w2, b2 = k._resolved()
    p0, p1 = act_._code_params()
    hx, dhx, _, _ = k._histories(act_, w2, b2, X, grad=True)
    gram = fused.gram_matrix(X)
    r0 = 3 if kind == "ntk" else 0
    for i in range(X.shape[0]):
        for j in range(i, X.shape[0]):
            r = fused._pair_grad(i, j, act_._code, p0, p1, w2, b2, 3, gram, hx, dhx)
            np.testing.assert_allclose(K[i, j], r[r0], rtol=1e-12, atol=1e-300)
            np.testing.assert_allclose(dK[i, j], r[r0 + 1 : r0 + 3], rtol=1e-11, atol=1e-14)
            np.testing.assert_array_equal(dK[j, i], dK[i, j])


def test_erf_rows_with_huge_variances_take_the_rescaled_closed_form():
    """A variance beyond 2**128 sends the whole row to the scalar closed form (which rescales)."""
    X, Y = _inputs()
    X[0] *= 1e100  # |x|^2 / d ~ 1e200: products of two such variances overflow unless rescaled
    Y = np.vstack([X[:2], Y])
    k = NTKKernel(depth=2, activation="erf", weight_std=1.3, bias_std=0.2)
    want = _scalar_kernel(k, X, Y)
    ntk, nngp = k.ntk_and_nngp(X, Y)
    assert np.all(np.isfinite(ntk))
    np.testing.assert_allclose(ntk, want[..., 0], rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(nngp, want[..., 1], rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("threads", [1, 2])
def test_gram_blocks_on_worker_threads_equal_one_product(monkeypatch, threads):
    """Blocks of the Gram matrix taken from a queue by worker threads (one BLAS thread each)
    fill every entry exactly once: equal to one product, triangle and rectangle."""
    import numba

    monkeypatch.setattr(fused, "_PARALLEL_GRAM_FLOPS", 0.0)
    monkeypatch.setattr(numba, "get_num_threads", lambda: threads)
    rng = np.random.default_rng(3)
    X, Y = rng.standard_normal((300, 7)), rng.standard_normal((41, 7))
    g = fused.gram_matrix(X, block_bytes=8 * 300 * 9)  # blocks of 9 rows
    iu = np.triu_indices(300)
    np.testing.assert_allclose(g[iu], (X @ X.T)[iu] / 7, rtol=1e-13, atol=1e-15)
    gxy = fused.gram_matrix(X, Y, block_bytes=8 * 41 * 5)
    np.testing.assert_allclose(gxy, X @ Y.T / 7, rtol=1e-13, atol=1e-15)
