"""What the user wrote is what is computed: ensemble kind, warnings' locations, optimiser bounds."""

import os
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.gaussian_process import GaussianProcessClassifier, GaussianProcessRegressor
from sklearn.gaussian_process.kernels import ConstantKernel, WhiteKernel
from sklearn.model_selection import GridSearchCV

from sklearn_ntk import (
    NTKClassifier,
    NTKGaussianProcess,
    NTKKernel,
    NTKRegressor,
    SingularKernelWarning,
    UnstableLearningRateWarning,
)


def _data(n=20, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    return X, np.sin(X[:, 0]) + 0.1 * rng.normal(size=n)


# --------------------------------------------------------------------------- ensemble kind
def test_gp_follows_the_kernels_kind():
    X, y = _data()
    Xt, _ = _data(6, seed=1)
    nngp = NTKKernel(depth=1, kind="nngp")
    gp = NTKGaussianProcess(kernel=nngp, alpha=0.01).fit(X, y)
    assert gp.get_params()["kind"] is None
    post = GaussianProcessRegressor(kernel=nngp, alpha=0.01, optimizer=None).fit(X, y)
    m1, c1 = gp.predict(Xt, return_cov=True)
    m2, c2 = post.predict(Xt, return_cov=True)  # readout-only ensemble at t=inf: the posterior
    np.testing.assert_allclose(m1, m2, rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(c1, c2, rtol=1e-6, atol=1e-9)
    # the same as asking the estimator for the readout-only ensemble of the default network
    ref = NTKGaussianProcess(kernel=None, kind="nngp", t=30.0).fit(X, y)
    own = NTKGaussianProcess(kernel=NTKKernel(kind="nngp"), t=30.0).fit(X, y)
    np.testing.assert_allclose(own.predict(Xt, return_std=True), ref.predict(Xt, return_std=True),
                               rtol=1e-12)
    ntk = NTKGaussianProcess(kernel=NTKKernel(), t=30.0).fit(X, y)
    assert not np.allclose(ntk.predict(Xt), own.predict(Xt), rtol=1e-3)


def test_gp_follows_a_kind_nested_in_a_composite_kernel():
    X, y = _data()
    Xt, _ = _data(5, seed=2)
    kernel = ConstantKernel(2.0, "fixed") * NTKKernel(depth=1, kind="nngp")
    gp = NTKGaussianProcess(kernel=kernel, alpha=0.05).fit(X, y)
    post = GaussianProcessRegressor(kernel=kernel, alpha=0.05, optimizer=None).fit(X, y)
    np.testing.assert_allclose(gp.predict(Xt, return_cov=True)[1],
                               post.predict(Xt, return_cov=True)[1], rtol=1e-6, atol=1e-9)
    with pytest.raises(ValueError, match="kind='ntk' contradicts the kernel's kind='nngp'"):
        NTKGaussianProcess(kernel=kernel, kind="ntk").fit(X, y)


@pytest.mark.parametrize("kind, kernel_kind", [("ntk", "nngp"), ("nngp", "ntk")])
def test_contradicting_kinds_raise(kind, kernel_kind):
    X, y = _data()
    gp = NTKGaussianProcess(kernel=NTKKernel(kind=kernel_kind), kind=kind)
    with pytest.raises(ValueError, match=f"kind={kind!r} contradicts the kernel's "
                                         f"kind={kernel_kind!r}.*kind=None"):
        gp.fit(X, y)
    # agreeing kinds are fine
    NTKGaussianProcess(kernel=NTKKernel(kind=kind), kind=kind).fit(X, y)
    with pytest.raises(ValueError, match="kind must be None, 'ntk' or 'nngp'"):
        NTKGaussianProcess(kind="gp").fit(X, y)


def test_kind_none_and_the_default_kernel_through_set_params_and_clone():
    X, y = _data()
    gp = NTKGaussianProcess(kind="nngp", t=10.0)
    gp.set_params(kernel__depth=3)  # kernel=None stands for the default network of this kind
    assert gp.kernel.kind == "nngp" and gp.kernel.depth == 3
    gp.fit(X, y)
    ref = NTKGaussianProcess(kernel=NTKKernel(depth=3, kind="nngp"), t=10.0).fit(X, y)
    np.testing.assert_allclose(gp.predict(X[:4], return_std=True),
                               ref.predict(X[:4], return_std=True), rtol=1e-12)
    default = NTKGaussianProcess()
    assert clone(default).get_params()["kind"] is None
    assert NTKGaussianProcess().fit(X, y).kernel_.kind == "ntk"
    assert NTKGaussianProcess(kind="nngp").fit(X, y).kernel_.kind == "nngp"
    # a grid over the kernel's kind needs nothing else
    search = GridSearchCV(NTKGaussianProcess(kernel=NTKKernel(), t=10.0),
                          {"kernel__kind": ["ntk", "nngp"]}, cv=2).fit(X, y)
    assert search.best_params_["kernel__kind"] in ("ntk", "nngp")


def _covariance_from_the_two_kernels(theta, nngp, X, y, Xt, t, alpha):
    """The ensemble covariance from the dynamics kernel ``theta`` and the prior ``nngp``."""
    from sklearn_ntk.dynamics import KernelDynamics

    dyn = KernelDynamics(theta(X), y[:, None], alpha=alpha, nngp_train=nngp(X))
    return dyn.covariance(t, theta(Xt, X), nngp(Xt), nngp(Xt, X))


@pytest.mark.parametrize("kernel, prior", [
    # the NTK ensemble of a network whose output is scaled by sqrt(2): both kernels times 2
    pytest.param(ConstantKernel(2.0, "fixed") * NTKKernel(depth=1),
                 ConstantKernel(2.0, "fixed") * NTKKernel(depth=1, kind="nngp"), id="scaled"),
    # a fully trained network plus a readout-only one: their priors add
    pytest.param(NTKKernel(depth=1) + NTKKernel(depth=2, kind="nngp"),
                 NTKKernel(depth=1, kind="nngp") + NTKKernel(depth=2, kind="nngp"), id="sum"),
])
def test_a_composite_ntk_kernel_keeps_the_nngp_as_its_prior(kernel, prior):
    """Not the NTK itself: ``1.0 * NTKKernel()`` once gave a 2.5 times larger std."""
    X, y = _data()
    Xt, _ = _data(5, seed=3)
    gp = NTKGaussianProcess(kernel=kernel, t=30.0, alpha=1e-3).fit(X, y)
    np.testing.assert_allclose(gp.predict(Xt, return_cov=True)[1],
                               _covariance_from_the_two_kernels(kernel, prior, X, y, Xt, 30.0,
                                                                1e-3), rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(NTKGaussianProcess(kernel=kernel, t=0.0).fit(X, y).predict(
        Xt, return_std=True)[1], np.sqrt(prior.diag(Xt)), rtol=1e-12)
    # the Nystroem path with every row a centre is the exact kernel
    full = NTKGaussianProcess(kernel=kernel, t=30.0, alpha=1e-3, n_components=len(X),
                              random_state=0).fit(X, y)
    np.testing.assert_allclose(full.predict(Xt, return_std=True)[1],
                               gp.predict(Xt, return_std=True)[1], rtol=1e-6)


def test_a_unit_factor_changes_nothing():
    X, y = _data()
    Xt, _ = _data(5, seed=3)
    plain = NTKGaussianProcess(kernel=NTKKernel(), t=30.0).fit(X, y)
    scaled = NTKGaussianProcess(kernel=ConstantKernel(1.0, "fixed") * NTKKernel(), t=30.0)
    for a, b in zip(plain.predict(Xt, return_std=True), scaled.fit(X, y).predict(
            Xt, return_std=True), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10)
    yc = (y > 0).astype(int)
    np.testing.assert_allclose(
        NTKClassifier(kernel=NTKKernel(), t=30.0).fit(X, yc).predict_proba(Xt),
        NTKClassifier(kernel=1.0 * NTKKernel(), t=30.0).fit(X, yc).predict_proba(Xt),
        rtol=1e-9)


# --------------------------------------------------------------------------- warnings' location
def _duplicated(n=8):
    X, y = _data(n)
    return np.vstack([X, X[:2]]), np.concatenate([y, y[:2]])


def _only(record, category):
    hits = [w for w in record if issubclass(w.category, category)]
    assert hits, f"no {category.__name__} emitted"
    return hits


def test_singular_kernel_warning_points_at_the_callers_line():
    X, y = _duplicated()
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        reg = NTKRegressor().fit(X, y)
        list(reg.staged_predict(X[:3], [np.inf]))
        NTKGaussianProcess(alpha=0.0).fit(X, y).predict(X[:3], return_std=True)
    for w in _only(record, SingularKernelWarning):
        assert os.path.samefile(w.filename, __file__), w.filename


def test_unstable_learning_rate_warning_points_at_the_callers_line():
    X, y = _data()
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        NTKRegressor(t=10.0, learning_rate=1e4, dynamics="gd").fit(X, y)
        NTKRegressor(t=10.0, learning_rate=1e4, dynamics="gd").fit(X, y).training_loss([1.0])
    for w in _only(record, UnstableLearningRateWarning):
        assert os.path.samefile(w.filename, __file__), w.filename


def test_warnings_in_grid_search_point_at_scikit_learn_not_at_this_package():
    X, y = _duplicated(12)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        GridSearchCV(NTKRegressor(), {"alpha": [0.0]}, cv=2).fit(X, y)
        GridSearchCV(NTKRegressor(t=10.0, dynamics="gd"), {"learning_rate": [1e4]},
                     cv=2, error_score="raise").fit(X, y)
    for category in (SingularKernelWarning, UnstableLearningRateWarning):
        for w in _only(record, category):
            parts = os.path.normpath(w.filename).split(os.sep)
            assert "sklearn_ntk" not in parts, w.filename
            assert "sklearn" in parts or os.path.samefile(w.filename, __file__), w.filename


# --------------------------------------------------------------------------- optimiser bounds
def _standardised(X):
    return (X - X.mean(0)) / X.std(0)


def test_default_bounds_keep_the_kernel_scale_optimisable():
    kernel = NTKKernel(depth=2, kind="nngp")
    low, high = kernel.hyperparameter_weight_std.bounds[0]
    # the NNGP of a depth-2 ReLU network scales like weight_std ** 6
    assert (high / low) ** 6 <= 1e12


@pytest.mark.parametrize("kernel", [
    pytest.param(NTKKernel(kind="nngp"), id="nngp"),
    # the constant factor duplicates the scale set by weight_std, which drifts to its bound
    pytest.param(ConstantKernel() * NTKKernel(kind="nngp"), id="constant-times-nngp",
                 marks=pytest.mark.filterwarnings("ignore:The optimal value found")),
])
def test_gaussian_process_classifier_improves_the_marginal_likelihood(kernel):
    X, y = load_breast_cancer(return_X_y=True)
    X, y = _standardised(X[:80]), y[:80]
    gpc = GaussianProcessClassifier(kernel, random_state=0).fit(X, y)
    start = gpc.log_marginal_likelihood(kernel.theta)
    assert gpc.log_marginal_likelihood_value_ > start + 20  # about -45 -> -15


@pytest.mark.slow
def test_gaussian_process_classifier_with_a_constant_factor_is_not_stuck():
    """The report: with weight_std_bounds=(1e-2, 1e2) the first step lands on the corner."""
    X, y = load_breast_cancer(return_X_y=True)
    X, y = _standardised(X[::3]), y[::3]
    kernel = ConstantKernel() * NTKKernel(kind="nngp")
    gpc = GaussianProcessClassifier(kernel, random_state=0).fit(X, y)
    start = gpc.log_marginal_likelihood(kernel.theta)
    assert gpc.log_marginal_likelihood_value_ > start + 40  # about -89 -> -33 (stuck at -89)


def test_gaussian_process_regressor_improves_the_marginal_likelihood():
    X, y = load_diabetes(return_X_y=True)
    X, y = _standardised(X[:80]), (y[:80] - y[:80].mean()) / y[:80].std()
    kernel = NTKKernel(kind="nngp") + WhiteKernel()
    gpr = GaussianProcessRegressor(kernel, random_state=0).fit(X, y)
    start = gpr.log_marginal_likelihood(kernel.theta)
    assert gpr.log_marginal_likelihood_value_ > start + 3  # about -108.2 -> -103.3
    assert np.all(np.abs(gpr.kernel_.theta - kernel.theta) > 0.1)  # every parameter moved
