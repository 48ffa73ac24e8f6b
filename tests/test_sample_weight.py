"""Sample weights: integer weights equal repeated rows, zero weights equal dropped rows."""

import numpy as np
import pytest
import sklearn
from sklearn.gaussian_process.kernels import RBF
from sklearn.model_selection import cross_validate
from sklearn.utils.class_weight import compute_sample_weight

from sklearn_ntk.dynamics import KernelDynamics
from sklearn_ntk.estimators import NTKClassifier, NTKGaussianProcess, NTKRegressor
from sklearn_ntk.kernels import NTKKernel


def _data(n=25, d=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    return X, np.sin(X[:, 0]) + 0.5 * X[:, 1]


def _close(a, b, rel=1e-8):
    a, b = np.asarray(a), np.asarray(b)
    assert np.abs(a - b).max() <= rel * max(np.abs(b).max(), 1e-300), np.abs(a - b).max()


W_INT = np.array([1, 2, 3, 1, 1, 4, 1, 2, 1, 1, 1, 1, 2, 1, 1, 3, 1, 1, 1, 2, 1, 1, 5, 1, 1])


@pytest.mark.parametrize("n_components", [None, 1000])
@pytest.mark.parametrize("t", [4.0, 60.0, np.inf])
def test_integer_weights_equal_repeated_rows(t, n_components):
    X, y = _data()
    Xt, _ = _data(n=6, seed=1)
    rep = np.repeat(np.arange(len(X)), W_INT)
    kw = dict(kernel=NTKKernel(depth=2), t=t, alpha=1e-3, n_components=n_components)
    a = NTKRegressor(**kw).fit(X, y, sample_weight=W_INT)
    b = NTKRegressor(**kw).fit(X[rep], y[rep])
    _close(a.predict(Xt), b.predict(Xt))
    _close(a.training_loss([1.0, 10.0]), b.training_loss([1.0, 10.0]))
    ga = NTKGaussianProcess(**kw).fit(X, y, sample_weight=W_INT).predict(Xt, return_cov=True)
    gb = NTKGaussianProcess(**kw).fit(X[rep], y[rep]).predict(Xt, return_cov=True)
    _close(ga[0], gb[0])
    _close(ga[1], gb[1], rel=1e-7)


def test_integer_weights_equal_repeated_rows_gd_and_alpha_zero():
    X, y = _data()
    rep = np.repeat(np.arange(len(X)), W_INT)
    kw = dict(kernel=RBF(1.0), t=30.0, learning_rate=2.0, dynamics="gd")
    _close(NTKRegressor(**kw).fit(X, y, sample_weight=W_INT).predict(X),
           NTKRegressor(**kw).fit(X[rep], y[rep]).predict(X))
    # t = inf, alpha = 0: repeated rows are singular (minimum-norm), the weights are not
    a = NTKRegressor(kernel=RBF(1.0)).fit(X, y, sample_weight=W_INT).predict(X)
    with pytest.warns(RuntimeWarning, match="minimum-norm"):
        b = NTKRegressor(kernel=RBF(1.0)).fit(X[rep], y[rep]).predict(X)
    _close(a, b, rel=1e-6)


@pytest.mark.parametrize("n_components", [None, 1000])
def test_zero_weights_equal_dropped_rows(n_components):
    X, y = _data()
    w = np.linspace(0.5, 2.0, len(X))
    w[[0, 3, 7, 20]] = 0.0
    keep = w > 0
    Xt, _ = _data(n=6, seed=2)
    for t in (5.0, np.inf):
        kw = dict(kernel=NTKKernel(), t=t, n_components=n_components)
        a = NTKRegressor(**kw).fit(X, y, sample_weight=w)
        b = NTKRegressor(**kw).fit(X[keep], y[keep], sample_weight=w[keep])
        _close(a.predict(Xt), b.predict(Xt))
        ga = NTKGaussianProcess(**kw).fit(X, y, sample_weight=w).predict(Xt, return_std=True)
        gb = NTKGaussianProcess(**kw).fit(X[keep], y[keep], sample_weight=w[keep])
        _close(ga[1], gb.predict(Xt, return_std=True)[1], rel=1e-7)


def test_weights_matter_and_scale_invariance():
    X, y = _data()
    Xt, _ = _data(n=6, seed=3)
    w = np.linspace(0.2, 3.0, len(X))
    kw = dict(kernel=RBF(), t=20.0, alpha=0.01)
    plain = NTKRegressor(**kw).fit(X, y).predict(Xt)
    weighted = NTKRegressor(**kw).fit(X, y, sample_weight=w).predict(Xt)
    assert np.abs(plain - weighted).max() > 1e-3
    # the loss is normalised by sum(w): with alpha = 0 the weights' scale does not matter
    _close(NTKRegressor(kernel=RBF(), t=20.0).fit(X, y, sample_weight=3 * w).predict(Xt),
           NTKRegressor(kernel=RBF(), t=20.0).fit(X, y, sample_weight=w).predict(Xt))
    # against the explicit weighted closed form D h(D K D) D y
    K = RBF()(X)
    d = np.sqrt(w)
    lam, V = np.linalg.eigh(d[:, None] * K * d[None, :] + 0.01 * np.eye(len(X)))
    s = 20.0 / w.sum()
    h = -np.expm1(-lam * s) / lam
    ref = RBF()(Xt, X) @ (d * (V @ (h * (V.T @ (d * y)))))
    _close(weighted, ref)


def test_class_weight_is_sample_weight():
    X, y = _data(n=30)
    labels = np.where(y > 0.3, "a", "b")
    a = NTKClassifier(t=30.0, class_weight="balanced").fit(X, labels)
    sw = compute_sample_weight("balanced", labels)
    b = NTKClassifier(t=30.0).fit(X, labels, sample_weight=sw)
    _close(a.decision_function(X), b.decision_function(X))
    c = NTKClassifier(t=30.0, class_weight={"a": 1.0, "b": 5.0}).fit(X, labels)
    assert np.abs(c.decision_function(X) - b.decision_function(X)).max() > 1e-3


def test_sample_weight_validation():
    X, y = _data(n=10)
    for bad, match in ((-np.ones(10), ">= 0"), (np.ones(9), "shape"),
                       (np.full(10, np.nan), "NaN"), (np.zeros(10), "zero")):
        with pytest.raises(ValueError, match=match):
            NTKRegressor().fit(X, y, sample_weight=bad)


def test_metadata_routing_of_sample_weight():
    X, y = _data(n=30)
    w = np.linspace(0.5, 2.0, 30)
    with sklearn.config_context(enable_metadata_routing=True):
        est = NTKRegressor(kernel=RBF(), t=10.0).set_fit_request(sample_weight=True)
        est.set_score_request(sample_weight=False)
        got = cross_validate(est, X, y, cv=3, params={"sample_weight": w},
                             return_estimator=True)
    X_tr, y_tr, w_tr = X[10:], y[10:], w[10:]  # the last fold's training rows
    ref = NTKRegressor(kernel=RBF(), t=10.0).fit(X_tr, y_tr, sample_weight=w_tr)
    np.testing.assert_allclose(got["estimator"][0].dual_coef_, ref.dual_coef_, rtol=1e-12)
    unweighted = NTKRegressor(kernel=RBF(), t=10.0).fit(X_tr, y_tr)
    assert not np.allclose(got["estimator"][0].dual_coef_, unweighted.dual_coef_)


def test_kernel_dynamics_rejects_zero_weights_and_uses_sum_of_weights():
    K = RBF()(_data(n=5)[0])
    with pytest.raises(ValueError, match="> 0"):
        KernelDynamics(K, np.ones(5), sample_weight=[1, 0, 1, 1, 1])
    dyn = KernelDynamics(K, np.ones(5), sample_weight=np.full(5, 2.0), learning_rate=1.0)
    assert dyn.scale == pytest.approx(1.0 / 10.0)
