"""NTKKernel against the scikit-learn kernel contract and in scikit-learn's estimators."""

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import ConstantKernel, WhiteKernel
from sklearn.kernel_ridge import KernelRidge
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.svm import SVC

from sklearn_ntk import NTKKernel
from sklearn_ntk.activations import Custom, LeakyReLU

from .kernel_contract import (
    SKLEARN_KERNEL_TESTS,
    check_fresh_writable_float64,
    check_gradient_relative,
    check_inputs_untouched,
    check_pickle_and_clone,
)


def softplus(x):
    return np.logaddexp(0.0, x)


CONFIGS = [
    NTKKernel(),
    NTKKernel(depth=0, weight_std=1.3, bias_std=0.5),
    NTKKernel(depth=3, activation="erf", weight_std=1.5, bias_std=0.2, kind="nngp"),
    NTKKernel(depth=2, activation=LeakyReLU(0.2), weight_std=0.8, bias_std=1.1),
    NTKKernel(depth=1, activation="tanh", weight_std=1.2, bias_std=0.3),
    NTKKernel(depth=2, activation="gelu", weight_std=1.1, bias_std=0.4),
    NTKKernel(depth=2, activation="sin", weight_std=0.9, bias_std=0.3),
    ConstantKernel(2.0) * NTKKernel(depth=2, activation="abs") + WhiteKernel(0.1),
]
GRAD_CONFIGS = [
    NTKKernel(depth=d, activation=a, weight_std=1.3, bias_std=0.4, kind=kind)
    for d, a in [
        (1, "relu"),
        (3, "relu"),
        (3, LeakyReLU(0.2)),
        (2, "abs"),
        (3, "erf"),
        (2, "gelu"),
        (3, "sin"),
        (2, "identity"),
        (3, "sign"),
        (2, "tanh"),
        (1, "sigmoid"),
        (2, "silu"),
    ]
    for kind in ("ntk", "nngp")
]


@pytest.mark.parametrize("kernel", CONFIGS, ids=repr)
@pytest.mark.parametrize("check", SKLEARN_KERNEL_TESTS, ids=lambda f: f.__name__)
def test_sklearn_kernel_tests(check, kernel):
    if check.__name__ == "test_kernel_theta" and not isinstance(kernel, NTKKernel):
        pytest.skip("sklearn applies test_kernel_theta to basic kernels only")
    white_sensitive = ("test_auto_vs_cross", "test_kernel_versus_pairwise")
    if check.__name__ in white_sensitive and "WhiteKernel" in repr(kernel):
        pytest.skip("WhiteKernel: k(X) != k(X, X) by design")
    check(kernel)


@pytest.mark.parametrize("kernel", GRAD_CONFIGS, ids=repr)
def test_gradient_exact(kernel):
    X = np.random.RandomState(1).normal(0, 1, (6, 3))
    check_gradient_relative(kernel, X)


def test_gradient_custom_callable_activation():
    kernel = NTKKernel(depth=2, activation=Custom(softplus), weight_std=1.2, bias_std=0.3)
    X = np.random.RandomState(1).normal(0, 1, (5, 2))
    check_gradient_relative(kernel, X, rtol=1e-4)


def test_gradient_with_duplicate_rows_and_fixed_bias():
    X = np.random.RandomState(2).normal(0, 1, (5, 3))
    X[3] = X[1]
    kernel = NTKKernel(depth=3, bias_std=0.0)  # bias_std = 0 is fixed automatically
    assert kernel.theta.shape == (1,)
    K, G = kernel(X, eval_gradient=True)
    assert G.shape == (5, 5, 1) and np.all(np.isfinite(G))
    np.testing.assert_allclose(G[1, 3], G[1, 1], rtol=1e-12)  # duplicates behave like the diagonal
    check_gradient_relative(kernel, X)


@pytest.mark.parametrize("kernel", CONFIGS[:4], ids=repr)
def test_generic_contract(kernel):
    rng = np.random.RandomState(0)
    X, Y = rng.normal(size=(7, 3)), rng.normal(size=(4, 3))
    check_fresh_writable_float64(kernel, X)
    check_pickle_and_clone(kernel, X)
    check_inputs_untouched(kernel, X, Y)
    np.testing.assert_allclose(kernel(X, Y), kernel(Y, X).T, rtol=1e-12)
    assert not kernel.is_stationary()


def test_repr_and_equality():
    k = NTKKernel(depth=3, activation=LeakyReLU(0.1), weight_std=1.5, bias_std=0.2)
    assert repr(k) == (
        "NTKKernel(depth=3, activation=LeakyReLU(negative_slope=0.1), weight_std=1.5, "
        "bias_std=0.2, kind='ntk')"
    )
    assert k == NTKKernel(depth=3, activation=LeakyReLU(0.1), weight_std=1.5, bias_std=0.2)
    assert k != NTKKernel(depth=3, activation=LeakyReLU(0.2), weight_std=1.5, bias_std=0.2)
    assert k != NTKKernel(depth=2, activation=LeakyReLU(0.1), weight_std=1.5, bias_std=0.2)
    k2 = k.clone_with_theta(np.log([0.3, 2.0]))
    assert (k2.bias_std, k2.weight_std) == pytest.approx((0.3, 2.0))
    assert k.bias_std == 0.2  # the original is untouched


def test_ntk_and_nngp_one_pass_matches_kinds():
    X = np.random.RandomState(0).normal(size=(6, 2))
    ntk, nngp = NTKKernel(depth=2).ntk_and_nngp(X)
    np.testing.assert_array_equal(ntk, NTKKernel(depth=2)(X))
    np.testing.assert_array_equal(nngp, NTKKernel(depth=2, kind="nngp")(X))
    dn, dk = NTKKernel(depth=2).diag_ntk_and_nngp(X)
    np.testing.assert_allclose(dn, np.diag(ntk), rtol=1e-14)
    np.testing.assert_allclose(dk, np.diag(nngp), rtol=1e-14)
    # NTK dominates the NNGP (Theta = Sigma + positive terms) for ReLU
    assert np.all(np.diag(ntk) > np.diag(nngp))


# ----------------------------------------------------------------------------- in sklearn estimators
def _regression_data(n=40, d=3, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.uniform(-2, 2, (n, d))
    y = np.sin(X[:, 0]) + 0.5 * X[:, 1] * X[:, 2] + 0.05 * rng.normal(size=n)
    return X, y


def test_gpr_optimizer_learns_hyperparameters():
    X, y = _regression_data()
    kernel = ConstantKernel(1.0) * NTKKernel(depth=2, weight_std=1.0, bias_std=0.1) + WhiteKernel(
        0.1
    )
    before = GaussianProcessRegressor(kernel=kernel, optimizer=None).fit(X, y)
    gpr = GaussianProcessRegressor(kernel=kernel, n_restarts_optimizer=0, random_state=0).fit(X, y)
    learned = gpr.kernel_.k1.k2
    assert (learned.weight_std, learned.bias_std) != pytest.approx((1.0, 0.1), rel=1e-3)
    assert gpr.log_marginal_likelihood_value_ > before.log_marginal_likelihood_value_ + 1.0
    assert gpr.score(X, y) > 0.9


def test_kernel_ridge_and_svc():
    X, y = _regression_data()
    krr = KernelRidge(kernel=NTKKernel(depth=2), alpha=1e-2).fit(X, y)
    assert krr.score(X, y) > 0.9
    K = NTKKernel(depth=2)(X)
    np.testing.assert_allclose(
        krr.predict(X[:5]), K[:5] @ np.linalg.solve(K + 1e-2 * np.eye(len(X)), y), rtol=1e-8
    )
    labels = (y > np.median(y)).astype(int)
    svc = SVC(kernel=NTKKernel(depth=1, activation="erf"), C=10.0).fit(X, labels)
    assert svc.score(X, labels) > 0.8
    assert cross_val_score(SVC(kernel=NTKKernel()), X, labels, cv=3).mean() > 0.6


def test_grid_search_over_depth_and_activation():
    X, y = _regression_data(n=30)
    grid = GridSearchCV(
        KernelRidge(kernel=NTKKernel(), alpha=1e-2),
        {"kernel__depth": [0, 1, 3], "kernel__activation": ["relu", "erf", LeakyReLU(0.1)]},
        cv=3,
    ).fit(X, y)
    assert grid.best_params_["kernel__depth"] in (1, 3)  # the target is not linear
    assert len(grid.cv_results_["params"]) == 9


# ----------------------------------------------------------------------------- bad input
GOOD = np.ones((3, 2))


@pytest.mark.parametrize(
    "X, Y, exc, match",
    [
        (np.array([[1.0, np.nan]]), None, ValueError, "NaN"),
        (np.array([[1.0, np.inf]]), None, ValueError, "infinity"),
        (np.array([[1.0 + 1j, 2.0]]), None, ValueError, "omplex"),
        (np.ones(3), None, ValueError, "2D array"),
        (np.ones((2, 2, 2)), None, ValueError, "dim 3"),
        (GOOD, np.ones((2, 3)), ValueError, "features"),
        (np.ones((0, 2)), None, ValueError, "0 sample"),
        (np.ones((2, 0)), None, ValueError, "0 feature"),
        ([["a", "b"]], None, TypeError, "numbers"),
        (sp.csr_matrix(GOOD), None, TypeError, "parse"),
        (GOOD, sp.csr_matrix(GOOD), TypeError, "parse"),
        (None, None, TypeError, "None"),
    ],
)
def test_bad_input(X, Y, exc, match):
    with pytest.raises(exc, match=match):
        NTKKernel()(X, Y)


@pytest.mark.parametrize(
    "params, exc, match",
    [
        ({"depth": -1}, ValueError, "depth"),
        ({"depth": 1.5}, ValueError, "depth"),
        ({"kind": "gp"}, ValueError, "kind"),
        ({"weight_std": 0.0}, ValueError, "weight_std"),
        ({"bias_std": -1.0}, ValueError, "bias_std"),
        ({"weight_std": "big"}, TypeError, "weight_std"),
        ({"activation": "relu6"}, ValueError, "Unknown activation"),
        ({"activation": 3}, TypeError, "activation"),
    ],
)
def test_bad_parameters(params, exc, match):
    with pytest.raises(exc, match=match):
        NTKKernel(**params)(GOOD)


def test_gradient_only_for_y_none():
    with pytest.raises(ValueError, match="Y is None"):
        NTKKernel()(GOOD, GOOD, eval_gradient=True)


def test_float32_and_int_inputs_compute_in_float64():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(5, 3))
    k = NTKKernel(depth=3)
    K32 = k(X.astype(np.float32))
    assert K32.dtype == np.float64
    np.testing.assert_allclose(K32, k(X.astype(np.float32).astype(np.float64)), rtol=1e-15)
    Xi = rng.randint(-3, 4, size=(5, 3))
    np.testing.assert_array_equal(k(Xi), k(Xi.astype(float)))
    assert k.diag(X.astype(np.float32)).dtype == np.float64


def test_memory_error_before_allocation(monkeypatch):
    import sklearn_ntk._validation as val

    monkeypatch.setattr(val, "available_memory_bytes", lambda: 1000)
    with pytest.raises(MemoryError, match="GiB"):
        NTKKernel()(np.ones((20, 2)))
    NTKKernel().diag(np.ones((20, 2)))  # O(n): not refused
