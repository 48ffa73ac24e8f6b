"""The compiled per-layer pass of numerical activations (tiered row tables, one pass per layer).

Its values must not depend on the thread count, must equal the flat per-pair path used for
gradients, and pairs that need more than the first tier's terms must still be exact.
"""

import numba
import numpy as np
import pytest
from scipy import special

from sklearn_ntk import NTKKernel
from sklearn_ntk.activations import Activation, Custom, get_activation
from sklearn_ntk.backends import hermite

from .test_kernel_numerical import NumericalErf


class ShiftedTanh(Activation):
    """tanh(x - 0.5): neither part of it is constant or linear (every order is needed)."""

    name = "shifted_tanh"

    def numpy_fn(self, x):
        return np.tanh(x - 0.5)

    def derivatives(self, x, order=1):
        t = np.tanh(x - 0.5)
        d1 = 1.0 - t * t
        return [t, d1, -2.0 * t * d1, -2.0 * d1 * (1.0 - 3.0 * t * t)][: order + 1]


def _projections(act, var, K):
    """Hermite coefficients of phi and phi' by plain projection on the graded rule (reference)."""
    out = np.empty((2, var.size, K))
    for r, v in enumerate(var):
        z, w = hermite._scale_rule(int(hermite._scale_group(np.array([v]))[0]))
        H = hermite._hermite(z, K) * w[:, None]
        f = act.derivatives(np.sqrt(v) * z, 1)
        out[0, r], out[1, r] = f[0] @ H, f[1] @ H
    return out


def _cs_rel(ours, ref, diag=None):
    """Error relative to sqrt(k(x, x) k(y, y)) (``diag``: both diagonals, default ref's)."""
    dx, dy = (np.diag(ref), np.diag(ref)) if diag is None else diag
    scale = np.sqrt(np.outer(np.abs(dx), np.abs(dy)))
    return np.max(np.abs(ours - ref) / scale)


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs two numba threads")
def test_values_do_not_depend_on_thread_count():
    X = np.random.default_rng(0).standard_normal((320, 4))  # large enough for a parallel pass
    k = NTKKernel(depth=2, activation="tanh")
    old = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        serial = k.ntk_and_nngp(X)
        numba.set_num_threads(2)
        parallel = k.ntk_and_nngp(X)
    finally:
        numba.set_num_threads(old)
    for a, b in zip(serial, parallel, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "activation, parity",
    [
        ("tanh", [1, 0]),
        ("sigmoid", [1, 0]),  # 1/2 + tanh(x/2)/2: constant plus odd
        ("silu", [0, 1]),  # x/2 plus even
        (NumericalErf(), [1, 0]),
        # softplus (x/2 plus even), its derivative the logistic (1/2 plus odd)
        (Custom(lambda x: np.logaddexp(0.0, x), derivative=special.expit), [0, 1]),
        # phi' by central differences is not exactly odd plus a constant: all of its orders
        (Custom(lambda x: np.logaddexp(0.0, x)), [0, -1]),
        (ShiftedTanh(), [-1, -1]),
    ],
)
def test_coefficients_parity_and_stein(activation, parity):
    """Where phi is a constant or linear function plus an odd or even one, the coefficients of
    the other parity (beyond order one) are exactly zero, and the projections agree that they
    vanish; phi' by Stein's identity (variances >= 1e-2) equals its own projection."""
    act = get_activation(activation)
    # a block with a variance below 1e-2 projects phi' directly; the others use Stein
    for var in (np.array([1e-4, 5e-3, 0.02, 0.3, 1.0, 2.5, 40.0]), np.array([0.02, 0.3, 1.0])):
        table = hermite.row_table(act, var)
        np.testing.assert_array_equal(table.parity, parity)
        K = int(table.nterms.min())
        ref = _projections(act, var, K)
        energy = table.M[[0, 1], [0, 1]]
        for j in range(2):
            scale = np.sqrt(energy[j])[:, None]
            err = np.abs(table.C[j, :, :K] - ref[j]) / scale
            assert err.max() < 1e-12, (j, err.max())
            if parity[j] >= 0:  # the vanishing orders are stored as exact zeros
                gone = table.C[j, :, 3 - parity[j] : K : 2]
                assert np.all(gone == 0.0)
                assert np.max(np.abs(ref[j][:, 3 - parity[j] : K : 2]) / scale) < 1e-13


@pytest.mark.parametrize("activation", ["tanh", "silu", "sigmoid", ShiftedTanh()])
def test_layer_pass_equals_flat_pair_path(activation):
    """k(X) (compiled per-layer pass) against the gradient's flat per-pair path, and k(X, Y)."""
    X = np.random.default_rng(1).standard_normal((40, 3)) * np.logspace(-1, 1, 40)[:, None]
    k = NTKKernel(depth=3, activation=activation, weight_std=2.0)
    K = k(X)
    K_flat, _ = k(X, eval_gradient=True)
    assert _cs_rel(K, K_flat) < 1e-12  # both series stop at 1e-13 of the same scale
    d = np.diag(K)
    assert _cs_rel(k(X, X[:7]), K[:, :7], (d, d[:7])) < 1e-12


def test_pairs_beyond_the_first_tier_stay_exact(monkeypatch):
    """Near-duplicate rows (correlation ~1 - 1e-7) need more terms than the first tier holds."""
    rng = np.random.default_rng(2)
    base = rng.standard_normal((6, 3)) * 3.0
    X = np.concatenate([base, base + 1e-3 * rng.standard_normal(base.shape)])
    calls = []
    hard = hermite._hard_pairs
    monkeypatch.setattr(hermite, "_hard_pairs", lambda *a: calls.append(a[2].size) or hard(*a))
    kw = dict(depth=2, weight_std=1.5, bias_std=0.2)
    ntk, nngp = NTKKernel(activation=NumericalErf(), **kw).ntk_and_nngp(X)
    assert calls, "no pair left the first tier"
    ntk_ref, nngp_ref = NTKKernel(activation="erf", **kw).ntk_and_nngp(X)
    assert _cs_rel(nngp, nngp_ref) < 1e-10
    assert _cs_rel(ntk, ntk_ref) < 1e-10


@pytest.mark.parametrize("activation", ["tanh", "silu", ShiftedTanh()])
@pytest.mark.parametrize("grad", [False, True])
def test_interpolated_tables_equal_exact_ones(activation, grad):
    """Many distinct variances (two decades and eight, a zero row): the interpolated first tier
    equals the exact table to round-off of each coefficient's scale."""
    act = get_activation(activation)
    rng = np.random.default_rng(3)
    for var in (rng.uniform(0.1, 3.0, 600), np.concatenate([[0.0], 10.0 ** rng.uniform(-4, 4, 2000)])):
        var = np.unique(var)
        order = 3 if grad else 1
        table = hermite._interpolated_table(act, var, order)
        assert table is not None
        C, nterms, R, M, parity = table
        Ce, ne, Re, Me, pe = hermite.coefficient_table(act, var, order, 0)
        np.testing.assert_array_equal(parity, pe)
        np.testing.assert_array_equal(nterms, ne)
        scale = np.sqrt(np.einsum("jjr->jr", Me))
        for j in range(order + 1):
            ok = scale[j] > 0
            assert np.max(np.abs(C[j, ok] - Ce[j, ok]) / scale[j, ok, None]) < 2e-13
        assert np.max(np.abs(M - Me) / (scale[:, None] * scale[None, :] + 1e-300)) < 2e-13


def test_interpolation_falls_back_where_it_is_not_exact(monkeypatch):
    """An interpolant that misses its check points is refused: the table is computed row by row."""
    act = get_activation("tanh")
    var = np.unique(np.random.default_rng(4).uniform(0.1, 3.0, 600))
    assert hermite._interpolated_table(act, var, 1) is not None
    monkeypatch.setattr(hermite, "_NODES", 3)  # far too few nodes for 1e-13
    assert hermite._interpolated_table(act, var, 1) is None
    table = hermite.row_table(act, var)  # and row_table then takes the exact path
    exact = hermite.coefficient_table(act, var, 1, 0)
    np.testing.assert_array_equal(table.C, exact[0])
