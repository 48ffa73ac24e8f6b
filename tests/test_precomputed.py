"""``kernel="precomputed"``: equal to the kernel-object estimators, pairwise in model selection."""

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, KFold, cross_val_predict
from sklearn.utils import get_tags

from sklearn_ntk import FactorizationCache, NTKClassifier, NTKGaussianProcess, NTKRegressor
from sklearn_ntk.kernels import NTKKernel

KERNEL = NTKKernel(depth=2)


def _data(n=40, n_test=9, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    Xt = rng.normal(size=(n_test, 3))
    y = np.column_stack([np.sin(X[:, 0]), X[:, 1] * X[:, 2]])
    return X, Xt, y, KERNEL(X), KERNEL(Xt, X)


def _close(a, b, tol=1e-12):
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape
    assert np.abs(a - b).max() <= tol * max(1.0, np.abs(b).max())


@pytest.mark.parametrize("t", [0.0, 25.0, np.inf])
@pytest.mark.parametrize("dynamics", ["flow", "gd"])
def test_regressor_equals_kernel_object(t, dynamics):
    X, Xt, y, G, Gt = _data()
    w = np.r_[np.zeros(5), np.linspace(0.5, 2.0, len(X) - 5)]  # zero weights drop rows
    params = dict(t=t, alpha=1e-3, learning_rate=0.5, dynamics=dynamics)
    for target in (y, y[:, 0]):
        ref = NTKRegressor(KERNEL, **params).fit(X, target, sample_weight=w)
        pre = NTKRegressor("precomputed", **params).fit(G, target, sample_weight=w)
        _close(pre.predict(Gt), ref.predict(Xt))
        _close(list(pre.staged_predict(Gt, [1.0, 10.0, np.inf])),
               list(ref.staged_predict(Xt, [1.0, 10.0, np.inf])))
        _close(pre.training_loss([3.0, np.inf]), ref.training_loss([3.0, np.inf]))
    assert pre.n_features_in_ == len(X) and pre.X_fit_.tolist() == list(range(5, len(X)))


@pytest.mark.parametrize("n_classes", [2, 3])
def test_classifier_equals_kernel_object(n_classes):
    X, Xt, _, G, Gt = _data(n=45)
    labels = np.array(["a", "b", "c"])[np.arange(len(X)) % n_classes]
    ref = NTKClassifier(KERNEL, t=50.0, class_weight="balanced").fit(X, labels)
    pre = NTKClassifier("precomputed", t=50.0, class_weight="balanced").fit(G, labels)
    _close(pre.decision_function(Gt), ref.decision_function(Xt))
    assert pre.predict(Gt).tolist() == ref.predict(Xt).tolist()
    # probabilities need the ensemble variance, which one matrix cannot give: hidden
    assert not hasattr(pre, "predict_proba") and not hasattr(pre, "predict_log_proba")
    with pytest.raises(AttributeError) as info:
        pre.predict_proba(Gt)
    assert "NNGP kernel" in str(info.value.__cause__)


@pytest.mark.parametrize("kind", [None, "nngp"])
def test_gaussian_process_mean_equals_and_covariance_is_refused(kind):
    X, Xt, y, _, _ = _data()
    kernel = KERNEL if kind is None else clone(KERNEL).set_params(kind="nngp")
    G, Gt = kernel(X), kernel(Xt, X)
    ref = NTKGaussianProcess(kernel, t=30.0, alpha=1e-4).fit(X, y[:, 0])
    pre = NTKGaussianProcess("precomputed", t=30.0, alpha=1e-4, kind=kind).fit(G, y[:, 0])
    _close(pre.predict(Gt), ref.predict(Xt))
    for call in (lambda: pre.predict(Gt, return_std=True),
                 lambda: pre.predict(Gt, return_cov=True),
                 lambda: pre.sample_y(Gt)):
        with pytest.raises(ValueError, match=r"NNGP kernel K\(X, X\).*test diagonal"):
            call()


def _grid(estimator, cache):
    grid = [{"t": [3.0, 30.0, 300.0], "alpha": [1e-4, 1e-2]}, {"t": [np.inf], "alpha": [1e-3, 1.0]}]
    est = clone(estimator).set_params(cache=cache)
    return GridSearchCV(est, grid, cv=KFold(3, shuffle=True, random_state=0))


def test_grid_search_on_a_precomputed_gram_equals_the_kernel_grid():
    X, _, y, G, _ = _data(n=60)
    y = y[:, 0] + 0.1 * np.random.default_rng(1).normal(size=len(X))
    ref = _grid(NTKRegressor(KERNEL), None).fit(X, y)
    cache = FactorizationCache()
    pre = _grid(NTKRegressor("precomputed"), cache).fit(G, y)
    assert pre.best_params_ == ref.best_params_
    np.testing.assert_allclose(pre.cv_results_["mean_test_score"],
                               ref.cv_results_["mean_test_score"], rtol=1e-10, atol=1e-12)
    # one eigendecomposition per split serves every finite t and alpha (t=inf: Cholesky)
    # plus the refit on all rows
    assert cache.misses == 3 + 1 and cache.hits == 3 * (6 - 1)
    # the refit predicts from the test x train kernel of all training rows
    _close(pre.predict(G[:5]), ref.predict(X[:5]))


def test_cross_val_predict_slices_rows_and_columns():
    X, _, y, G, _ = _data(n=30)
    cv = KFold(3, shuffle=True, random_state=2)
    ref = cross_val_predict(NTKRegressor(KERNEL, t=10.0), X, y, cv=cv)
    pre = cross_val_predict(NTKRegressor("precomputed", t=10.0), G, y, cv=cv)
    _close(pre, ref)
    assert get_tags(NTKRegressor("precomputed")).input_tags.pairwise
    assert not get_tags(NTKRegressor()).input_tags.pairwise


def test_invariances_that_the_sklearn_checks_cannot_run():
    """Sample order and subset invariance, one-sample fits (sklearn's set n_components=1)."""
    X, Xt, y, G, Gt = _data(n=25)
    est = NTKRegressor("precomputed", t=20.0, alpha=1e-3)
    params = est.get_params()
    full = est.fit(G, y).predict(Gt)
    assert est.get_params() == params
    perm = np.random.default_rng(3).permutation(len(Xt))
    _close(est.predict(Gt[perm]), full[perm])
    _close(est.predict(Gt[:4]), full[:4])
    one = NTKRegressor("precomputed", t=np.inf).fit(G[:1, :1], y[:1, 0])
    _close(one.predict(Gt[:, :1]), Gt[:, 0] / G[0, 0] * y[0, 0])


def test_the_fitted_estimator_owns_its_copy():
    X, Xt, y, G, Gt = _data(n=20)
    G0, Gt0 = G.copy(), Gt.copy()
    est = NTKRegressor("precomputed", t=15.0).fit(G, y)
    before = est.predict(Gt)
    np.testing.assert_array_equal(G, G0)
    np.testing.assert_array_equal(Gt, Gt0)
    G *= 2.0  # the user's matrix changes after fit: nothing fitted may change with it
    _close(list(est.staged_predict(Gt, [15.0])), [before])
    again = pickle.loads(pickle.dumps(est))
    _close(list(again.staged_predict(Gt, [15.0])), [before])


def test_clear_errors():
    X, Xt, y, G, Gt = _data(n=12)
    est = NTKRegressor("precomputed")
    with pytest.raises(ValueError, match=r"square \(n_train, n_train\).*12 x 3"):
        est.fit(X, y)
    with pytest.raises(ValueError, match="not symmetric"):
        est.fit(G + np.triu(np.ones_like(G), 1), y)
    bad = G.copy()
    bad[0, 1] = bad[1, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        est.fit(bad, y)
    with pytest.raises(ValueError, match="n_components=5 needs a kernel object"):
        NTKRegressor("precomputed", n_components=5).fit(G, y)
    with pytest.raises(TypeError, match="'precomputed'"):
        NTKRegressor("linear").fit(G, y)
    est.fit(G, y)
    with pytest.raises(ValueError, match=r"X has 11 features.*\(n_test, n_train\) kernel"):
        est.predict(Gt[:, :11])
    bad_t = Gt.copy()
    bad_t[0, 0] = np.inf
    with pytest.raises(ValueError, match="infinity|inf"):
        est.predict(bad_t)


def test_the_user_guide_snippet_runs_and_equals_the_kernel_object_search(capsys):
    from pathlib import Path

    text = (Path(__file__).parents[1] / "docs" / "user_guide.rst").read_text()
    section = text[text.index(".. _fast_grid_search:"):text.index(".. _large_n:")]
    lines = []
    for line in section.split(".. code-block:: python\n")[1].splitlines()[1:]:
        if line and not line.startswith("   "):
            break
        lines.append(line[3:])
    code = "\n".join(lines)
    scope = {}
    exec(compile(code, "user_guide.rst", "exec"), scope)
    search = scope["search"]
    assert str(search.best_params_) in capsys.readouterr().out
    ref = GridSearchCV(NTKRegressor(NTKKernel(depth=3)), scope["grid"], cv=3)
    ref.fit(scope["Z_train"], scope["y"][:200])
    assert ref.best_params_ == search.best_params_
    np.testing.assert_allclose(search.cv_results_["mean_test_score"],
                               ref.cv_results_["mean_test_score"], rtol=1e-10)


def test_matrix_free_solver_on_the_held_matrix_and_no_dask():
    X, Xt, y, G, Gt = _data(n=30)
    ref = NTKRegressor("precomputed", t=20.0, alpha=1e-3, solver="eigh").fit(G, y)
    fast = NTKRegressor("precomputed", t=20.0, alpha=1e-3, solver="lanczos").fit(G, y)
    assert fast._dyn.method == "lanczos" and fast._dyn.kernel_train is fast._gram  # held once
    np.testing.assert_allclose(fast.predict(Gt), ref.predict(Gt), rtol=1e-6, atol=1e-9)
    da = pytest.importorskip("dask.array")
    with pytest.raises(ValueError, match="in-memory kernel matrix, not a dask array"):
        NTKRegressor("precomputed").fit(da.from_array(G, chunks=10), y)
    with pytest.raises(ValueError, match="not a dask array"):
        ref.predict(da.from_array(Gt, chunks=5))


def test_low_memory_plans_keep_the_held_matrix(monkeypatch):
    """Where a kernel object would be repacked or evaluated on the fly, the user's matrix (already
    in memory) is used as it is."""
    import sklearn_ntk.dynamics as dynamics_mod

    X, Xt, y, G, Gt = _data(n=30)
    ref = NTKRegressor("precomputed", t=20.0, alpha=1e-3).fit(G, y).predict(Gt)

    def only_packed(n_bytes, what, hint=None):
        if "packed" not in what:
            raise MemoryError(f"{what} needs {n_bytes} bytes")

    monkeypatch.setattr(dynamics_mod, "check_memory", only_packed)
    est = NTKRegressor("precomputed", t=20.0, alpha=1e-3).fit(G, y)
    assert est._dyn.operator is None and est._dyn.kernel_train is est._gram
    np.testing.assert_allclose(est.predict(Gt), ref, rtol=1e-6, atol=1e-9)
