"""Numerical activations (Hermite series per pair, graded 2-D rule where a series is too long).

The references are independent of the numerical path: activations with a closed form (erf, GELU)
written as plain ``Activation`` subclasses take the numerical path, and must reproduce the closed
forms, at row norms 1e-3 .. 1e4, ``weight_std`` up to 20 and depth up to 5.
"""

import math

import numpy as np
import pytest
from scipy import special

from sklearn_ntk import NTKKernel
from sklearn_ntk.activations import CODE_ERF, Activation, Custom, get_activation
from sklearn_ntk.backends import hermite
from sklearn_ntk.backends.fused import _moments_grad, numeric_moments


class NumericalErf(Activation):
    """erf without its closed-form code: integrated numerically."""

    name = "numerical_erf"

    def numpy_fn(self, x):
        return special.erf(x)

    def derivatives(self, x, order=1):
        g = 2.0 / math.sqrt(math.pi) * np.exp(-x * x)
        return [special.erf(x), g, -2.0 * x * g, (4.0 * x * x - 2.0) * g][: order + 1]


class NumericalGELU(Activation):
    """GELU without its closed-form code (grows linearly, like SiLU)."""

    name = "numerical_gelu"

    def numpy_fn(self, x):
        return x * special.ndtr(x)

    def derivatives(self, x, order=1):
        pdf = np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)
        cdf = special.ndtr(x)
        return [x * cdf, cdf + x * pdf, pdf * (2.0 - x * x), x * pdf * (x * x - 4.0)][: order + 1]


def _rows(n, d, seed, lo=-3, hi=4):
    """Rows with norms log-spaced from 10**lo to 10**hi in random directions."""
    X = np.random.default_rng(seed).standard_normal((n, d))
    return X * (np.logspace(lo, hi, n) / np.linalg.norm(X, axis=1))[:, None]


def _cs_rel(ours, ref):
    """Error relative to the Cauchy-Schwarz scale sqrt(k(x, x) k(y, y)) of each entry."""
    scale = np.sqrt(np.outer(np.abs(np.diag(ref)), np.abs(np.diag(ref))))
    return np.max(np.abs(ours - ref) / scale)


@pytest.mark.parametrize("weight_std,depth", [(1.0, 5), (20.0, 1), (20.0, 5), (5.0, 3)])
@pytest.mark.parametrize("pair", [(NumericalErf, "erf"), (NumericalGELU, "gelu")])
def test_numerical_path_reproduces_closed_forms(pair, weight_std, depth):
    numerical, closed = pair
    X = _rows(9, 3, seed=depth)
    kw = dict(depth=depth, weight_std=weight_std, bias_std=0.3)
    ntk, nngp = NTKKernel(activation=numerical(), **kw).ntk_and_nngp(X)
    ntk_ref, nngp_ref = NTKKernel(activation=closed, **kw).ntk_and_nngp(X)
    assert _cs_rel(nngp, nngp_ref) < 1e-8
    assert _cs_rel(ntk, ntk_ref) < 1e-8


@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "silu", NumericalErf()])
def test_symmetric_at_large_norms(activation):
    """k(X) == k(X, X) and the diagonal equals diag(X), with a row of norm 1e4 (weight_std 20)."""
    X = _rows(7, 3, seed=4)
    k = NTKKernel(depth=2, activation=activation, weight_std=20.0)
    K = k(X)
    assert np.all(np.isfinite(K))
    np.testing.assert_array_equal(K, K.T)
    assert _cs_rel(k(X, X), K) < 1e-10
    np.testing.assert_allclose(np.diag(K), k.diag(X), rtol=1e-12)


def test_gradient_reproduces_closed_form():
    X = _rows(6, 2, seed=5, lo=-1, hi=2)
    kw = dict(depth=2, weight_std=3.0, bias_std=0.5)
    K, dK = NTKKernel(activation=NumericalErf(), **kw)(X, eval_gradient=True)
    K_ref, dK_ref = NTKKernel(activation="erf", **kw)(X, eval_gradient=True)
    np.testing.assert_allclose(K, K_ref, rtol=1e-9)
    np.testing.assert_allclose(dK, dK_ref, rtol=1e-7, atol=1e-9 * np.abs(dK_ref).max())


def test_numeric_moments_partials_match_closed_form():
    """The flat API used by the layer evaluator: values and Price partials of erf."""
    a = np.array([0.3, 2.0, 400.0, 1e6, 5.0])
    b = np.array([1.1, 0.01, 900.0, 3.0, 5.0])
    rho = np.array([0.2, -0.7, 0.995, 0.9, 1.0])
    c = rho * np.sqrt(a * b)
    same = np.array([False, False, False, False, True])
    ours = numeric_moments(NumericalErf(), a, b, c, same, grad=True)
    for p in range(len(a)):
        ref = _moments_grad(CODE_ERF, 0.0, 0.0, a[p], b[p], c[p], bool(same[p]))
        scale = np.abs(ref).max()
        for k in range(8):
            assert abs(ours[k][p] - ref[k]) <= 1e-9 * scale, (p, k)


@pytest.mark.parametrize("name", ["tanh", "silu"])
def test_series_and_direct_rule_agree(name):
    """Two independent algorithms on pairs from smooth to step-like variances."""
    act = get_activation(name)
    rng = np.random.default_rng(6)
    a = 10.0 ** rng.uniform(-3, 6, 12)
    b = 10.0 ** rng.uniform(-3, 6, 12)
    rho = rng.uniform(-0.9, 0.9, 12)
    t, td = numeric_moments(act, a, b, rho * np.sqrt(a * b), np.zeros(12, dtype=bool))
    direct = hermite._direct(act, a, b, rho, (0, 1), (0, 1), 1)
    for series, ref, j in ((t, direct[0], 0), (td, direct[1], 1)):
        m = hermite.diagonal_moments(act, np.concatenate([a, b]), 1)[j, j]
        scale = np.sqrt(m[:12] * m[12:])
        assert np.max(np.abs(series - ref) / scale) < 1e-10


def test_step_limit_at_huge_variance():
    """tanh(sqrt(a) z) -> sign(z): E[tanh(u) tanh(v)] -> 2/pi asin(rho) (error O(1/a))."""
    a = np.full(4, 1e12)
    rho = np.array([0.3, -0.8, 0.97, 0.999])
    t, _ = numeric_moments(get_activation("tanh"), a, a, rho * a, np.zeros(4, dtype=bool))
    np.testing.assert_allclose(t, 2.0 / np.pi * np.arcsin(rho), rtol=0, atol=1e-9)


def test_callable_producing_nan_is_refused():
    X = _rows(4, 2, seed=7, lo=-1, hi=1)
    with pytest.raises(ValueError, match="not finite at x ="):
        NTKKernel(activation=np.sqrt)(X)
    with pytest.raises(ValueError, match="elementwise"):
        NTKKernel(activation=Custom(lambda x: np.sum(x)))(X)
