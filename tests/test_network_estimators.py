"""NetworkKernel unmodified in the estimators of this package and of scikit-learn."""

import numpy as np
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.kernel_ridge import KernelRidge
from sklearn.model_selection import GridSearchCV
from sklearn.svm import SVC

from sklearn_ntk import NetworkKernel, NTKClassifier, NTKGaussianProcess, NTKRegressor
from sklearn_ntk import layers as nl


def _digits(n=40):
    X, y = load_digits(return_X_y=True)
    return X[:n] / 16.0, y[:n]


def _cnn(**kw):
    return NetworkKernel(
        [("conv", nl.Conv((3, 3))), "relu", nl.GlobalAvgPool(), nl.Dense()],
        input_shape=(8, 8, 1), **kw,
    )


def test_ntk_estimators_and_gp():
    X, y = _digits()
    yr = (y % 3).astype(float)
    k = _cnn()
    reg = NTKRegressor(kernel=k, t=50.0).fit(X[:30], yr[:30])
    assert reg.predict(X[30:]).shape == (10,)
    gp = NTKGaussianProcess(kernel=k, t=np.inf, alpha=1e-3).fit(X[:30], yr[:30])
    mean, std = gp.predict(X[30:], return_std=True)
    assert np.all(np.isfinite(mean)) and np.all(std > 0)
    clf = NTKClassifier(kernel=k, t=1000.0).fit(X[:30], y[:30] % 2)
    assert clf.score(X[:30], y[:30] % 2) > 0.9


def test_sklearn_gpr_optimises_hyperparameters_kernel_ridge_svc():
    X, y = _digits(30)
    small = X.reshape(-1, 8, 8)[:, ::2, ::2].reshape(-1, 16)  # 4 x 4 images: fast gradients
    yr = np.sin(X[:, 20:30].sum(1))
    k4 = NetworkKernel([nl.Conv((3, 3)), "relu", nl.GlobalAvgPool(), nl.Dense()], input_shape=(4, 4, 1))
    gpr = GaussianProcessRegressor(kernel=k4, alpha=1e-2, normalize_y=True).fit(small, yr)
    assert gpr.kernel_.theta.shape == (2,)
    assert gpr.log_marginal_likelihood(gpr.kernel_.theta) >= gpr.log_marginal_likelihood(
        k4.theta
    ) - 1e-8
    KernelRidge(kernel=_cnn(), alpha=0.1).fit(X, yr).predict(X[:3])
    svc = SVC(kernel=_cnn()).fit(X, y % 2)
    assert svc.score(X, y % 2) > 0.8


def test_grid_search_over_architectures_and_a_layer_parameter():
    X, y = _digits(36)
    flat = NetworkKernel([nl.Conv((3, 3)), "relu", nl.Flatten(), nl.Dense()], input_shape=(8, 8, 1))
    search = GridSearchCV(
        NTKRegressor(t=100.0),
        {"kernel": [_cnn(), flat]},
        cv=2,
    ).fit(X, (y % 2).astype(float))
    assert len(search.cv_results_["params"]) == 2
    search = GridSearchCV(
        NTKRegressor(kernel=_cnn(), t=100.0),
        {"kernel__layers__conv__filter_shape": [(2, 2), (3, 3)], "kernel__weight_std": [1.0, 1.5]},
        cv=2,
    ).fit(X, (y % 2).astype(float))
    best = search.best_estimator_.kernel
    assert best.layers[0][1].filter_shape == search.best_params_["kernel__layers__conv__filter_shape"]
    assert clone(search.estimator).kernel.layers[0][1].filter_shape == (3, 3)
