"""Tests of NTKRegressor, NTKGaussianProcess and NTKClassifier (issue 3)."""

import json
import pathlib
import pickle
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import make_blobs
from sklearn.exceptions import NotFittedError
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import RBF, DotProduct
from sklearn.kernel_ridge import KernelRidge
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_ntk.dynamics import FactorizationCache
from sklearn_ntk.estimators import NTKClassifier, NTKGaussianProcess, NTKRegressor
from sklearn_ntk.exceptions import UnstableLearningRateWarning

DATA = pathlib.Path(__file__).parent / "data"
ESTIMATORS = [NTKRegressor, NTKGaussianProcess, NTKClassifier]


def _ntk_kernel(**kw):
    from sklearn_ntk.kernels import NTKKernel

    return NTKKernel(**kw)


def _data(n=40, d=3, k=None, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = np.sin(X[:, 0]) + 0.5 * X[:, 1]
    if k is not None:
        y = np.column_stack([y * (j + 1) + j for j in range(k)])
    return X, y


# --------------------------------------------------------------------------- regression math
@pytest.mark.parametrize("kernel", [None, RBF(1.3)], ids=["NTKKernel", "RBF"])
def test_t_inf_is_kernel_ridge_regression(kernel):
    X, y = _data()
    Xt, _ = _data(n=10, seed=1)
    reg = NTKRegressor(kernel=kernel, alpha=0.05).fit(X, y)
    k = reg.kernel_
    krr = KernelRidge(alpha=0.05, kernel="precomputed").fit(k(X), y)
    np.testing.assert_allclose(reg.predict(Xt), krr.predict(k(Xt, X)), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(reg.dual_coef_, krr.dual_coef_, rtol=1e-8)


def test_t_zero_predicts_zero_and_gp_prior():
    X, y = _data(n=15)
    Xt, _ = _data(n=6, seed=2)
    assert np.all(NTKRegressor(t=0.0).fit(X, y).predict(Xt) == 0.0)
    gp = NTKGaussianProcess(t=0.0).fit(X, y)
    mean, cov = gp.predict(Xt, return_cov=True)
    prior = _ntk_kernel(kind="nngp")(Xt)
    assert np.all(mean == 0.0)
    np.testing.assert_allclose(cov, prior, rtol=1e-12)
    _, std = gp.predict(Xt, return_std=True)
    np.testing.assert_allclose(std, np.sqrt(np.diag(prior)), rtol=1e-12)


def test_finite_t_matches_explicit_euler_integration():
    """df/dt = -eta/n Theta (f - y) on the train set, test outputs driven by Theta(x, X)."""
    X, y = _data(n=12)
    Xt, _ = _data(n=5, seed=3)
    kernel = RBF(1.0)
    eta, t = 2.0, 6.0
    K, Ktd = kernel(X), kernel(Xt, X)
    f, ft = np.zeros(12), np.zeros(5)
    n_steps = 200_000
    h = t / n_steps
    for _ in range(n_steps):  # explicit Euler; O(h) error
        r = f - y
        f, ft = f - h * eta / 12 * K @ r, ft - h * eta / 12 * Ktd @ r
    got = NTKRegressor(kernel=kernel, t=t, learning_rate=eta).fit(X, y).predict(Xt)
    np.testing.assert_allclose(got, ft, rtol=1e-4, atol=1e-5)


def test_three_outputs_follow_nk_normalisation():
    """Loss 1/(2nk): 3 outputs at learning rate eta move like 1 output at eta/3."""
    X, Y = _data(k=3)
    Xt, _ = _data(n=7, seed=4)
    multi = NTKRegressor(kernel=RBF(), t=20.0, learning_rate=1.5).fit(X, Y).predict(Xt)
    for j in range(3):
        single = NTKRegressor(kernel=RBF(), t=20.0, learning_rate=0.5).fit(X, Y[:, j])
        np.testing.assert_allclose(multi[:, j], single.predict(Xt), rtol=1e-10)


def test_staged_predict_and_training_loss():
    X, y = _data()
    Xt, _ = _data(n=9, seed=5)
    times = [0.0, 0.5, 3.0, 40.0, np.inf]
    reg = NTKRegressor(kernel=RBF(), alpha=1e-3).fit(X, y)
    staged = list(reg.staged_predict(Xt, times))
    assert len(staged) == len(times)
    for t, pred in zip(times, staged, strict=True):
        single = clone(reg).set_params(t=t).fit(X, y)
        np.testing.assert_allclose(pred, single.predict(Xt), rtol=1e-9, atol=1e-12)
        loss = 0.5 * np.mean((single.predict(X) - y) ** 2)
        np.testing.assert_allclose(reg.training_loss(t), loss, rtol=1e-9, atol=1e-15)
    with pytest.raises(ValueError, match="times must be non-negative"):
        list(reg.staged_predict(Xt, [1.0, -1.0]))
    with pytest.raises(ValueError, match="t must not be NaN"):
        reg.training_loss(np.nan)
    losses = reg.training_loss(times)
    assert np.all(np.diff(losses) < 0)
    assert reg.train_spectrum_.shape == (40,) and np.all(reg.train_spectrum_ >= 1e-3 - 1e-12)


def test_1d_and_2d_targets_shapes():
    X, y = _data()
    for cls in (NTKRegressor, NTKGaussianProcess):
        m = cls(kernel=RBF(), t=5.0).fit(X, y)
        assert m.predict(X[:4]).shape == (4,)
        assert m.dual_coef_.shape == (40,)
        m2 = cls(kernel=RBF(), t=5.0).fit(X, y[:, None])
        assert m2.predict(X[:4]).shape == (4, 1)
        np.testing.assert_allclose(m2.predict(X[:4])[:, 0], m.predict(X[:4]))
    gp = NTKGaussianProcess(kernel=RBF(), t=5.0).fit(X, np.column_stack([y, 2 * y]))
    mean, std = gp.predict(X[:4], return_std=True)
    assert mean.shape == (4, 2) and std.shape == (4, 2)
    _, cov = gp.predict(X[:4], return_cov=True)
    assert cov.shape == (4, 4, 2)
    assert gp.sample_y(X[:4], 3).shape == (4, 2, 3)


def test_dynamics_gd_and_unstable_warning():
    X, y = _data(n=20)
    flow = NTKRegressor(kernel=RBF(), t=30.0, learning_rate=0.1).fit(X, y)
    gd = NTKRegressor(kernel=RBF(), t=300.0, learning_rate=0.01, dynamics="gd").fit(X, y)
    # a small step size approaches the flow at the same eta * t
    np.testing.assert_allclose(gd.predict(X), flow.predict(X), rtol=1e-2, atol=1e-3)
    lam_max = np.linalg.eigvalsh(RBF()(X))[-1]
    eta_max = 2 * 20 / lam_max
    with pytest.warns(UnstableLearningRateWarning, match="largest stable learning_rate"):
        NTKRegressor(kernel=RBF(), t=5.0, learning_rate=1.1 * eta_max, dynamics="gd").fit(X, y)


def test_krylov_solver_matches_eigh():
    X, y = _data(n=300, d=4)
    Xt, _ = _data(n=20, d=4, seed=6)
    a = NTKRegressor(kernel=RBF(2.0), t=50.0, solver="eigh").fit(X, y)
    b = NTKRegressor(kernel=RBF(2.0), t=50.0, solver="lanczos").fit(X, y)
    assert b._dyn._eig is None
    ref = a.predict(Xt)
    np.testing.assert_allclose(b.predict(Xt), ref, rtol=1e-6, atol=1e-9 * np.abs(ref).max())


def test_singular_train_kernel_at_t_inf_is_finite():
    X, y = _data(n=10)
    X = np.vstack([X, X[:3]])
    y = np.concatenate([y, y[:3] + 1.0])
    with pytest.warns(RuntimeWarning, match="minimum-norm"):
        reg = NTKRegressor(kernel=RBF()).fit(X, y)
    pred = reg.predict(X)
    assert np.isfinite(pred).all()
    np.testing.assert_allclose(pred[:3], y[:3] + 0.5, rtol=1e-6)  # averages duplicates


# --------------------------------------------------------------------------- neural-tangents
def test_gaussian_process_matches_neural_tangents():
    path = DATA / "nt_predict_reference.npz"
    if not path.exists():
        pytest.skip("neural-tangents reference data not generated")
    d = np.load(path)
    meta = json.loads((DATA / "nt_predict_reference.json").read_text())
    gets = meta["axes"]["get"]
    for net, cfg in meta["nets"].items():
        kernel = _ntk_kernel(depth=cfg["depth"], activation=cfg["activation"],
                             weight_std=cfg["weight_std"], bias_std=cfg["bias_std"])
        for k in (1, 3):
            y = d[f"y_k{k}"] if k == 3 else d[f"y_k{k}"][:, 0]
            for ia, alpha in enumerate(d["alpha"]):
                for il, lr in enumerate(d["learning_rate"]):
                    for ig, get in enumerate(gets):
                        for it, t in enumerate(d["t"]):
                            if not d[f"{net}_k{k}_finite"][ia, il, ig, it]:
                                continue
                            gp = NTKGaussianProcess(kernel.set_params(kind=get), t=t,
                                                    learning_rate=lr, alpha=alpha,
                                                    ).fit(d["X_train"], y)
                            mean, cov = gp.predict(d["X_test"], return_cov=True)
                            ref_m = d[f"{net}_k{k}_mean"][ia, il, ig, it]
                            ref_c = d[f"{net}_k{k}_cov"][ia, il, ig, it]
                            mean = mean.reshape(ref_m.shape)
                            cov = cov if cov.ndim == 2 else cov[:, :, 0]
                            tol_m = 1e-6 * max(np.abs(ref_m).max(), 1e-300)
                            assert np.abs(mean - ref_m).max() <= tol_m, (net, k, get, t)
                            assert np.abs(cov - ref_c).max() <= 1e-6 * np.abs(ref_c).max()


# --------------------------------------------------------------------------- Gaussian process
def test_nngp_ensemble_at_t_inf_is_gp_posterior():
    X, y = _data(n=25)
    Xt, _ = _data(n=8, seed=7)
    kernel = _ntk_kernel(kind="nngp", depth=1)
    ours = NTKGaussianProcess(kernel=kernel, kind="nngp", alpha=0.01).fit(X, y)
    ref = GaussianProcessRegressor(kernel=kernel, alpha=0.01, optimizer=None).fit(X, y)
    m1, c1 = ours.predict(Xt, return_cov=True)
    m2, c2 = ref.predict(Xt, return_cov=True)
    np.testing.assert_allclose(m1, m2, rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(c1, c2, rtol=1e-6, atol=1e-9)


def test_sample_y_distribution():
    X, y = _data(n=10)
    Xt, _ = _data(n=3, seed=8)
    gp = NTKGaussianProcess(t=2.0).fit(X, y)
    mean, cov = gp.predict(Xt, return_cov=True)
    s1 = gp.sample_y(Xt, 20000, random_state=0)
    np.testing.assert_array_equal(gp.sample_y(Xt, 5, random_state=1),
                                  gp.sample_y(Xt, 5, random_state=1))
    assert s1.shape == (3, 20000)
    scale = np.sqrt(np.diag(cov)).max()
    np.testing.assert_allclose(s1.mean(axis=1), mean, atol=0.05 * scale)
    np.testing.assert_allclose(np.cov(s1), cov, atol=0.05 * scale**2)
    with pytest.raises(ValueError, match="n_samples"):
        gp.sample_y(Xt, 0)


def test_gp_return_std_and_cov_exclusive():
    X, y = _data(n=10)
    gp = NTKGaussianProcess(kernel=RBF()).fit(X, y)
    with pytest.raises(RuntimeError, match="At most one"):
        gp.predict(X, return_std=True, return_cov=True)
    with pytest.raises(ValueError, match="kind"):
        NTKGaussianProcess(kind="gp").fit(X, y)


# --------------------------------------------------------------------------- classifier
def test_classifier_one_hot_dynamics_and_labels():
    X, yc = make_blobs(n_samples=60, centers=3, n_features=2, random_state=0)
    labels = np.array(["ant", "bee", "cat"])[yc]
    clf = NTKClassifier(t=2000.0).fit(X, labels)
    np.testing.assert_array_equal(clf.classes_, ["ant", "bee", "cat"])
    assert clf.score(X, labels) > 0.9
    scores = clf.decision_function(X[:5])
    assert scores.shape == (5, 3)
    onehot = (labels[:, None] == clf.classes_[None, :]).astype(float)
    reg = NTKRegressor(t=2000.0).fit(X, onehot)
    np.testing.assert_allclose(scores, reg.predict(X[:5]), rtol=1e-12)
    np.testing.assert_array_equal(clf.predict(X[:5]), clf.classes_[scores.argmax(1)])
    staged = list(clf.staged_decision_function(X[:5], [0.0, 2000.0]))
    np.testing.assert_allclose(staged[1], scores, rtol=1e-9)
    assert np.all(staged[0] == 0)


def test_classifier_binary_decision_function():
    X, yc = make_blobs(n_samples=40, centers=2, n_features=2, random_state=1)
    clf = NTKClassifier(kernel=RBF(), alpha=0.1).fit(X, yc + 5)
    dec = clf.decision_function(X)
    assert dec.shape == (40,)
    np.testing.assert_array_equal(clf.predict(X), np.where(dec > 0, 6, 5))


# --------------------------------------------------------------------------- validation
@pytest.mark.parametrize("cls", ESTIMATORS)
@pytest.mark.parametrize(
    "params, err, match",
    [
        ({"t": -1.0}, ValueError, "t must be >= 0"),
        ({"t": np.nan}, ValueError, "t must not be NaN"),
        ({"t": "long"}, TypeError, "t must be a real number"),
        ({"learning_rate": 0.0}, ValueError, "learning_rate must be > 0"),
        ({"learning_rate": -2.0}, ValueError, "learning_rate must be > 0"),
        ({"learning_rate": np.inf}, ValueError, "learning_rate must be finite"),
        ({"alpha": -1e-3}, ValueError, "alpha must be >= 0"),
        ({"alpha": np.nan}, ValueError, "alpha must not be NaN"),
        ({"kernel": "rbf"}, TypeError, "kernel must be None"),
        ({"dynamics": "sgd"}, ValueError, "dynamics must be"),
        ({"solver": "lu"}, ValueError, "solver must be"),
    ],
)
def test_parameter_validation(cls, params, err, match):
    X, y = _data(n=10)
    if cls is NTKClassifier:
        y = (y > 0).astype(int)
    with pytest.raises(err, match=match):
        cls(**params).fit(X, y)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_data_validation(cls):
    X, y = _data(n=10)
    if cls is NTKClassifier:
        y = (y > 0).astype(int)
    m = cls(kernel=RBF())
    with pytest.raises(NotFittedError):
        m.predict(X)
    Xn = X.copy()
    Xn[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        m.fit(Xn, y)
    Xi = X.copy()
    Xi[1, 1] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        m.fit(Xi, y)
    if cls is not NTKClassifier:
        yn = y.astype(float)
        yn[2] = np.inf
        with pytest.raises(ValueError, match="infinity"):
            m.fit(X, yn)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        m.fit(X, y[:-1])
    m.fit(X, y)
    with pytest.raises(ValueError, match="features"):
        m.predict(X[:, :2])


def test_classifier_rejects_continuous_targets():
    X, y = _data(n=10)
    with pytest.raises(ValueError, match="Unknown label type"):
        NTKClassifier().fit(X, y)


def test_user_arrays_not_modified():
    X, y = _data(n=20)
    X0, y0 = X.copy(), y.copy()
    for cls in (NTKRegressor, NTKGaussianProcess):
        m = cls(alpha=0.1, t=3.0).fit(X, y)
        m.predict(X, **({"return_cov": True} if cls is NTKGaussianProcess else {}))
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(y, y0)


# --------------------------------------------------------------------------- sklearn plumbing
def test_pandas_feature_names():
    pd = pytest.importorskip("pandas")
    X, y = _data(n=20)
    df = pd.DataFrame(X, columns=["a", "b", "c"])
    reg = NTKRegressor(t=5.0).fit(df, pd.Series(y))
    np.testing.assert_array_equal(reg.feature_names_in_, ["a", "b", "c"])
    np.testing.assert_allclose(reg.predict(df), NTKRegressor(t=5.0).fit(X, y).predict(X))
    with pytest.raises(ValueError, match="feature names"):
        reg.predict(df.rename(columns={"a": "z"}))


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_clone_and_pickle_roundtrip(cls):
    X, y = _data(n=20)
    if cls is NTKClassifier:
        y = (y > 0).astype(int)
    m = cls(kernel=_ntk_kernel(depth=3, activation="erf"), t=7.0, alpha=0.01)
    c = clone(m)
    assert c.get_params()["kernel"].get_params() == m.get_params()["kernel"].get_params()
    m.fit(X, y)
    if hasattr(m, "staged_predict"):
        list(m.staged_predict(X[:2], [1.0, 2.0]))
    m2 = pickle.loads(pickle.dumps(m))
    np.testing.assert_array_equal(m2.predict(X), m.predict(X))
    if cls is NTKGaussianProcess:  # the factorisation is recomputed after unpickling
        np.testing.assert_allclose(m2.predict(X, return_std=True)[1],
                                   m.predict(X, return_std=True)[1], rtol=1e-9, atol=1e-12)
    if hasattr(m, "staged_predict"):
        for a, b in zip(m.staged_predict(X, [1.0, np.inf]), m2.staged_predict(X, [1.0, np.inf]),
                        strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


def test_grid_search_in_pipeline_and_cache_is_exact():
    X, y = _data(n=60, d=4)
    grid = {
        "ntkregressor__t": [3.0, np.inf],
        "ntkregressor__alpha": [1e-3, 0.1],
        "ntkregressor__learning_rate": [0.5, 1.0],
        "ntkregressor__kernel__depth": [1, 2],
        "ntkregressor__kernel__weight_std": [1.0, 1.5],
    }
    cv = KFold(3, shuffle=True, random_state=0)
    results = []
    cache = FactorizationCache()
    for c in (cache, None):
        pipe = make_pipeline(StandardScaler(), NTKRegressor(kernel=_ntk_kernel(), cache=c))
        gs = GridSearchCV(pipe, grid, cv=cv).fit(X, y)
        results.append(gs.cv_results_["mean_test_score"])
    assert cache.hits > 0 and cache.misses > 0
    np.testing.assert_array_equal(results[0], results[1])
    assert np.isfinite(results[0]).all()


def test_cross_val_score_parallel():
    X, y = _data(n=40)
    scores = cross_val_score(NTKRegressor(alpha=0.01), X, y, cv=3, n_jobs=2)
    ref = cross_val_score(NTKRegressor(alpha=0.01), X, y, cv=3, n_jobs=1)
    np.testing.assert_allclose(scores, ref, rtol=1e-10)


def test_cache_keys_on_kernel_values_not_on_parameters():
    """A shared cache never stands for another kernel: same numbers as without it."""
    cache = FactorizationCache()
    X, y = _data(n=30)
    fits = []
    for kernel in (RBF(1.0), RBF(1.0 + 1e-12), RBF(1.0) + DotProduct(1.0),
                   RBF(1.0) + DotProduct(2.0)):
        got = NTKRegressor(kernel=kernel, t=5.0, cache=cache).fit(X, y).predict(X[:5])
        ref = NTKRegressor(kernel=kernel, t=5.0).fit(X, y).predict(X[:5])
        np.testing.assert_array_equal(got, ref)
        fits.append(got)
    assert not np.allclose(fits[2], fits[3])
    X2 = X.copy()
    X2[0, 0] += 1e-3
    got = NTKRegressor(kernel=RBF(1.0), t=5.0, cache=cache).fit(X2, y).predict(X[:5])
    np.testing.assert_array_equal(got, NTKRegressor(kernel=RBF(1.0), t=5.0).fit(X2, y)
                                  .predict(X[:5]))
    assert not np.allclose(got, fits[0], rtol=1e-9, atol=0)


def test_cache_follows_a_redefined_callable_activation():
    """A callable redefined under the same name (a notebook cell run again) is re-evaluated."""
    cache = FactorizationCache()
    X, y = _data(n=25)
    preds = []
    for scale in (1.0, 2.0):
        def act(z, scale=scale):
            return np.tanh(scale * z)

        kernel = _ntk_kernel(activation=act, depth=1)
        got = NTKRegressor(kernel=kernel, t=5.0, cache=cache).fit(X, y).predict(X[:4])
        np.testing.assert_array_equal(got, NTKRegressor(kernel=kernel, t=5.0).fit(X, y)
                                      .predict(X[:4]))
        preds.append(got)
    assert not np.allclose(preds[0], preds[1], rtol=1e-6)


def test_invalid_parameters_are_rejected_even_with_a_warm_cache():
    cache = FactorizationCache()
    X, y = _data(n=20)
    NTKRegressor(kernel=_ntk_kernel(depth=1), t=3.0, cache=cache).fit(X, y)
    with pytest.raises((TypeError, ValueError)):
        NTKRegressor(kernel=_ntk_kernel(depth=True), t=3.0, cache=cache).fit(X, y)
    with pytest.raises(TypeError, match="FactorizationCache"):
        NTKRegressor(cache=True).fit(X, y)


def test_cache_is_bounded_read_only_and_survives_clone():
    X, y = _data(n=50)
    cache = FactorizationCache(max_bytes=60_000)  # room for a few 50x50 matrices only
    for s in np.linspace(0.5, 2.0, 10):
        NTKRegressor(kernel=RBF(s), t=3.0, cache=cache).fit(X, y).predict(X)
    assert 1 <= len(cache._data) and cache._bytes <= 60_000
    for value in cache._data.values():
        assert all(not a.flags.writeable for a in value)
    est = NTKRegressor(cache=cache)
    assert clone(est).cache is cache
    assert pickle.loads(pickle.dumps(cache))._bytes == 0
    with pytest.raises(ValueError, match="max_bytes"):
        FactorizationCache(-1)


def test_default_kernel_is_ntk_kernel():
    X, y = _data(n=10)
    reg = NTKRegressor().fit(X, y)
    assert type(reg.kernel_).__name__ == "NTKKernel"
    assert reg.kernel is None


def test_no_warnings_on_regular_fit():
    X, y = _data(n=30)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        NTKRegressor(t=10.0).fit(X, y).predict(X)
        NTKGaussianProcess(t=np.inf, alpha=1e-6).fit(X, y).predict(X, return_std=True)


def test_nested_kernel_params_with_default_kernel():
    """kernel=None stands for NTKKernel(): kernel__depth works in set_params and grid search."""
    from sklearn.model_selection import GridSearchCV

    from sklearn_ntk import NTKKernel, NTKRegressor

    est = NTKRegressor().set_params(kernel__depth=4, t=5.0)
    assert est.kernel == NTKKernel(depth=4) and est.t == 5.0
    assert NTKRegressor().kernel is None  # a fresh estimator is untouched
    rng = np.random.RandomState(0)
    X, y = rng.normal(size=(30, 3)), rng.normal(size=30)
    grid = GridSearchCV(NTKRegressor(alpha=0.1), {"kernel__depth": [0, 2]}, cv=3).fit(X, y)
    assert grid.best_estimator_.kernel.depth in (0, 2)
