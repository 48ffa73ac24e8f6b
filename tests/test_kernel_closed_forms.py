"""Each activation's Gaussian expectations against an independent adaptive 2-D integration.

The reference integrates E[f(u) g(v)] with scipy's adaptive ``dblquad`` over the Cholesky factor
of the covariance; nothing in it is shared with the package.
"""

import numpy as np
import pytest
from scipy import integrate, special

from sklearn_ntk import NTKKernel
from sklearn_ntk.activations import ABReLU, Custom, LeakyReLU, get_activation
from sklearn_ntk.backends.fused import _moments, numeric_moments

CASES = [(1.0, 1.0, 0.3), (2.0, 0.5, -0.6), (0.7, 1.3, 0.9), (3.0, 2.0, 2.2)]


def gauss2(f, g, a, b, c):
    """E[f(u) g(v)] for (u, v) ~ N(0, [[a, c], [c, b]]) by nested adaptive quadrature in polar
    coordinates of the whitened variables; the kinks of ReLU-like functions lie on rays, so the
    angular integral is split there and every piece is smooth."""
    l11 = np.sqrt(a)
    l21 = c / l11
    l22 = np.sqrt(max(b - l21 * l21, 0.0))

    def radial(phi):
        cu, cv = l11 * np.cos(phi), l21 * np.cos(phi) + l22 * np.sin(phi)

        def inner(r):
            return r * np.exp(-0.5 * r * r) * f(r * cu) * g(r * cv)

        return integrate.quad(inner, 0.0, 13.0, epsabs=1e-14, epsrel=1e-12, limit=200)[0]

    kinks = [np.pi / 2, 3 * np.pi / 2]
    ang = np.arctan2(-l21, l22) % np.pi
    kinks += [ang, ang + np.pi]
    edges = np.unique(np.clip([0.0, *kinks, 2 * np.pi], 0.0, 2 * np.pi))
    total = 0.0
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        if hi - lo > 1e-12:
            total += integrate.quad(radial, lo, hi, epsabs=1e-14, epsrel=1e-12, limit=200)[0]
    return total / (2 * np.pi)


def relu(x):
    return np.maximum(x, 0.0)


def step(x):
    return (x > 0).astype(float)


FUNCS = {
    "relu": (relu, step),
    "leaky": (lambda x: np.where(x > 0, x, 0.2 * x), lambda x: np.where(x > 0, 1.0, 0.2)),
    "ab": (lambda x: np.where(x > 0, 1.2 * x, -0.4 * x), lambda x: np.where(x > 0, 1.2, -0.4)),
    "abs": (np.abs, np.sign),
    "erf": (special.erf, lambda x: 2 / np.sqrt(np.pi) * np.exp(-x * x)),
    "gelu": (
        lambda x: x * special.ndtr(x),
        lambda x: special.ndtr(x) + x * np.exp(-0.5 * x * x) / np.sqrt(2 * np.pi),
    ),
    "sin": (np.sin, np.cos),
    "identity": (lambda x: x, lambda x: 1.0 + 0 * x),
    "sign": (np.sign, lambda x: 0.0 * x),
}
OBJECTS = {
    "relu": get_activation("relu"),
    "leaky": LeakyReLU(0.2),
    "ab": ABReLU(-0.4, 1.2),
    "abs": get_activation("abs"),
    "erf": get_activation("erf"),
    "gelu": get_activation("gelu"),
    "sin": get_activation("sin"),
    "identity": get_activation("identity"),
    "sign": get_activation("sign"),
}


@pytest.mark.parametrize("name", sorted(FUNCS))
@pytest.mark.parametrize("case", CASES)
def test_closed_form_matches_quadrature(name, case):
    a, b, c = case
    f, df = FUNCS[name]
    act = OBJECTS[name]
    p0, p1 = act._code_params()
    t, td = _moments(act._code, p0, p1, a, b, c, False)
    assert t == pytest.approx(gauss2(f, f, a, b, c), rel=1e-7, abs=1e-9)
    assert td == pytest.approx(gauss2(df, df, a, b, c), rel=1e-7, abs=1e-9)


@pytest.mark.parametrize("name", ["relu", "abs", "erf", "gelu", "sin", "sign"])
def test_closed_form_on_the_diagonal(name):
    """same=True (exact zero angle) agrees with the generic formula at c = a = b."""
    act = OBJECTS[name]
    p0, p1 = act._code_params()
    for a in (1e-6, 0.3, 2.0, 50.0):
        t_same, td_same = _moments(act._code, p0, p1, a, a, a, True)
        f, df = FUNCS[name]
        h = 24.0 / 200000
        z = -12.0 + h * (np.arange(200000) + 0.5)  # midpoints: no node exactly at a kink
        w = np.exp(-0.5 * z * z) / np.sqrt(2 * np.pi) * h
        u = np.sqrt(a) * z
        assert t_same == pytest.approx(np.sum(f(u) ** 2 * w), rel=1e-6)
        if name not in (
            "relu",
            "abs",
            "sign",
        ):  # derivative discontinuous at 0: skip the crude rule
            assert td_same == pytest.approx(np.sum(df(u) ** 2 * w), rel=1e-6)


def softplus(x):
    return np.logaddexp(0.0, x)


NUMERIC = {
    "tanh": (np.tanh, lambda x: 1 - np.tanh(x) ** 2),
    "sigmoid": (special.expit, lambda x: special.expit(x) * (1 - special.expit(x))),
    "silu": (
        lambda x: x * special.expit(x),
        lambda x: special.expit(x) * (1 + x * (1 - special.expit(x))),
    ),
    "softplus": (softplus, special.expit),
}


@pytest.mark.parametrize("name", sorted(NUMERIC))
def test_numeric_moments_match_adaptive_quadrature(name):
    f, df = NUMERIC[name]
    act = Custom(softplus) if name == "softplus" else get_activation(name)
    a = np.array([c[0] for c in CASES])
    b = np.array([c[1] for c in CASES])
    c = np.array([c[2] for c in CASES])
    t, td = numeric_moments(act, a, b, c, np.zeros(len(CASES), dtype=bool))
    for i, (ai, bi, ci) in enumerate(CASES):
        assert t[i] == pytest.approx(gauss2(f, f, ai, bi, ci), rel=1e-8)
        assert td[i] == pytest.approx(gauss2(df, df, ai, bi, ci), rel=1e-7)


def _reference_kernel(f, df, X, depth, sw, sb):
    """Independent layer-by-layer recursion with adaptive quadrature (tiny inputs only)."""
    n, d = X.shape
    s = sw**2 * X @ X.T / d + sb**2
    th = s.copy()
    for _ in range(depth):
        t = np.empty_like(s)
        td = np.empty_like(s)
        for i in range(n):
            for j in range(i, n):
                if i == j:
                    h = 24.0 / 400000
                    z = -12.0 + h * (np.arange(400000) + 0.5)
                    w = np.exp(-0.5 * z * z) / np.sqrt(2 * np.pi) * h
                    u = np.sqrt(s[i, i]) * z
                    t[i, i], td[i, i] = np.sum(f(u) ** 2 * w), np.sum(df(u) ** 2 * w)
                else:
                    t[i, j] = t[j, i] = gauss2(f, f, s[i, i], s[j, j], s[i, j])
                    td[i, j] = td[j, i] = gauss2(df, df, s[i, i], s[j, j], s[i, j])
        s_new = sw**2 * t + sb**2
        th = s_new + sw**2 * td * th
        s = s_new
    return th, s


@pytest.mark.parametrize("name,depth", [("tanh", 3), ("sigmoid", 2), ("silu", 2), ("softplus", 1)])
def test_numeric_kernel_depth_le_3_accurate_to_1e6(name, depth):
    f, df = NUMERIC[name]
    act = Custom(softplus) if name == "softplus" else name
    X = np.array([[0.3, -1.2], [1.5, 0.4], [-0.7, -0.9]])
    ntk_ref, nngp_ref = _reference_kernel(f, df, X, depth, 1.4, 0.3)
    ntk, nngp = NTKKernel(depth=depth, activation=act, weight_std=1.4, bias_std=0.3).ntk_and_nngp(X)
    np.testing.assert_allclose(nngp, nngp_ref, rtol=1e-6)
    np.testing.assert_allclose(ntk, ntk_ref, rtol=1e-6)
