"""The Nystroem path (``n_components``): exact rank-m dynamics, streamed over row blocks."""

import pickle
import tracemalloc
import warnings

import numpy as np
import pytest
from sklearn.gaussian_process.kernels import RBF

from sklearn_ntk.dynamics import KernelDynamics
from sklearn_ntk.estimators import NTKClassifier, NTKGaussianProcess, NTKRegressor
from sklearn_ntk.kernels import NTKKernel


def _data(n=50, d=3, k=None, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = np.sin(X[:, 0]) + 0.5 * X[:, 1]
    if k is not None:
        y = np.column_stack([y * (j + 1) - j for j in range(k)])
    return X, y


def _close(a, b, rel=1e-6):
    a, b = np.asarray(a), np.asarray(b)
    assert np.abs(a - b).max() <= rel * max(np.abs(b).max(), 1e-300), np.abs(a - b).max()


# ------------------------------------------------------------------ n_components >= n is exact
@pytest.mark.parametrize("t", [0.0, 3.0, 200.0, np.inf])
@pytest.mark.parametrize("alpha", [0.0, 1e-2])
def test_full_rank_equals_exact_mean(t, alpha):
    X, y = _data(k=2)
    Xt, _ = _data(n=9, seed=1)
    kernel = NTKKernel(depth=2)
    exact = NTKRegressor(kernel, t=t, alpha=alpha).fit(X, y)
    nys = NTKRegressor(kernel, t=t, alpha=alpha, n_components=len(X), random_state=0).fit(X, y)
    assert nys.n_components_ == len(X)
    _close(nys.predict(Xt), exact.predict(Xt))
    times = [0.5, 40.0, np.inf]
    for a, b in zip(nys.staged_predict(Xt, times), exact.staged_predict(Xt, times), strict=True):
        _close(a, b)
    _close(nys.training_loss(times), exact.training_loss(times))


@pytest.mark.parametrize("kind", ["ntk", "nngp"])
@pytest.mark.parametrize("t", [2.0, np.inf])
def test_full_rank_equals_exact_gp_covariance(kind, t):
    X, y = _data(n=40)
    Xt, _ = _data(n=7, seed=2)
    kw = dict(kernel=NTKKernel(depth=1, kind=kind), t=t, alpha=1e-3, kind=kind)
    exact = NTKGaussianProcess(**kw).fit(X, y)
    nys = NTKGaussianProcess(n_components=10_000, **kw).fit(X, y)
    m1, c1 = exact.predict(Xt, return_cov=True)
    m2, c2 = nys.predict(Xt, return_cov=True)
    _close(m2, m1)
    _close(c2, c1)
    _close(nys.predict(Xt, return_std=True)[1], exact.predict(Xt, return_std=True)[1])


def test_full_rank_equals_exact_gd_and_classifier():
    X, y = _data(n=30)
    kw = dict(kernel=RBF(1.5), t=25.0, learning_rate=3.0, dynamics="gd", alpha=1e-4)
    _close(NTKRegressor(n_components=30, **kw).fit(X, y).predict(X),
           NTKRegressor(**kw).fit(X, y).predict(X))
    labels = (y > 0).astype(int) + (y > 1)
    a = NTKClassifier(t=50.0, n_components=30).fit(X, labels).decision_function(X)
    b = NTKClassifier(t=50.0).fit(X, labels).decision_function(X)
    _close(a, b)


# ------------------------------------------------------------------ rank m < n: the right maths
def test_rank_m_equals_dense_dynamics_of_the_nystroem_kernel():
    """Against KernelDynamics on the explicit n x n Nystroem kernel K_nm K_mm^+ K_mn."""
    X, y = _data(n=60, k=2)
    Xt, _ = _data(n=8, seed=3)
    kernel = NTKKernel(depth=2, activation="erf")
    m = 12
    reg = NTKRegressor(kernel, t=30.0, alpha=1e-3, n_components=m, random_state=5).fit(X, y)
    C = X[reg.component_indices_]
    Kmm_pinv = np.linalg.pinv(kernel(C), rcond=1e-13, hermitian=True)
    K_nys = kernel(X, C) @ Kmm_pinv @ kernel(C, X)
    K_test = kernel(Xt, C) @ Kmm_pinv @ kernel(C, X)
    ref = KernelDynamics(K_nys, y, alpha=1e-3)
    for t in (30.0, np.inf):
        got = NTKRegressor(kernel, t=t, alpha=1e-3, n_components=m, random_state=5).fit(X, y)
        _close(got.predict(Xt), ref.mean(t, K_test))
    _close(reg.training_loss([1.0, 30.0]), ref.training_loss([1.0, 30.0]))
    assert reg.train_spectrum_.shape[0] <= m


@pytest.mark.parametrize("batch_size", [1, 7, 64, 1000])
def test_streaming_any_block_size_equals_one_block(batch_size):
    X, y = _data(n=64, k=3)
    Xt, _ = _data(n=5, seed=4)
    kw = dict(kernel=NTKKernel(depth=3), t=11.0, n_components=20, random_state=0)
    ref = NTKRegressor(batch_size=64, **kw).fit(X, y)
    got = NTKRegressor(batch_size=batch_size, **kw).fit(X, y)
    np.testing.assert_allclose(got.predict(Xt), ref.predict(Xt), rtol=1e-10, atol=1e-12)
    gp_kw = dict(kw, kernel=NTKKernel(depth=1))
    a = NTKGaussianProcess(batch_size=batch_size, **gp_kw).fit(X, y).predict(Xt, return_std=True)
    b = NTKGaussianProcess(batch_size=64, **gp_kw).fit(X, y).predict(Xt, return_std=True)
    np.testing.assert_allclose(a[1], b[1], rtol=1e-9, atol=1e-12)


def test_centres_uniform_seeded_and_approximation_improves_with_m():
    X, y = _data(n=400, d=2)
    Xt, yt = _data(n=100, d=2, seed=9)
    kw = dict(kernel=NTKKernel(depth=1), alpha=1e-3)
    a = NTKRegressor(n_components=30, random_state=1, **kw).fit(X, y)
    b = NTKRegressor(n_components=30, random_state=1, **kw).fit(X, y)
    np.testing.assert_array_equal(a.component_indices_, b.component_indices_)
    c = NTKRegressor(n_components=30, random_state=2, **kw).fit(X, y)
    assert not np.array_equal(a.component_indices_, c.component_indices_)
    exact = NTKRegressor(**kw).fit(X, y).predict(Xt)
    errs = [np.abs(NTKRegressor(n_components=m, random_state=0, **kw).fit(X, y).predict(Xt)
                   - exact).max() for m in (5, 40, 200)]
    assert errs[0] > errs[1] > errs[2]


def test_pickle_is_small_and_memory_is_not_n_squared():
    X, y = _data(n=2000, d=4)
    NTKRegressor(n_components=4).fit(X[:20], y[:20]).predict(X[:2])  # imports, JIT: not counted
    tracemalloc.start()
    reg = NTKRegressor(t=5.0, n_components=40, batch_size=200, random_state=0).fit(X, y)
    pred = reg.predict(X)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 0.05 * 2000**2 * 8  # an n x n array would be 32 MB
    blob = pickle.dumps(reg)
    assert len(blob) < 100_000
    np.testing.assert_array_equal(pickle.loads(blob).predict(X), pred)


def test_exact_pickle_is_linear_in_n():
    X, y = _data(n=200)
    reg = NTKRegressor(t=5.0).fit(X, y)
    list(reg.staged_predict(X[:3], [1.0, 2.0]))  # the solver exists now
    blob = pickle.dumps(reg)
    assert len(blob) < 200 * (3 + 1 + 4) * 8 + 20_000  # X_fit_, y, dual_coef_: no n x n
    again = pickle.loads(blob)
    np.testing.assert_array_equal(again.predict(X), reg.predict(X))
    for a, b in zip(again.staged_predict(X, [1.0, np.inf]), reg.staged_predict(X, [1.0, np.inf]),
                    strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_covariance_pickles_are_linear_in_n():
    """The GP and the classifier after covariances were computed (NNGP train kernel, its
    projection): still no n x n array in the pickle, and the same numbers after loading."""
    X, y = _data(n=200)
    gp = NTKGaussianProcess(t=5.0, alpha=1e-3).fit(X, y)
    std = gp.predict(X[:4], return_std=True)[1]
    gp.predict(X[:3], return_cov=True)
    clf = NTKClassifier(t=5.0, alpha=1e-3).fit(X, (y > 0).astype(int))
    proba = clf.predict_proba(X[:4])
    for est, again in [(gp, lambda e: e.predict(X[:4], return_std=True)[1]),
                       (clf, lambda e: e.predict_proba(X[:4]))]:
        blob = pickle.dumps(est)
        assert len(blob) < 200 * (3 + 2 + 2 * 2) * 8 + 20_000  # X_fit_, targets, dual_coef_
        np.testing.assert_allclose(again(pickle.loads(blob)), std if est is gp else proba,
                                   rtol=1e-9, atol=1e-12)


def test_nystroem_parameter_validation():
    X, y = _data(n=10)
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="n_components"):
            NTKRegressor(n_components=bad).fit(X, y)
    with pytest.raises(ValueError, match="batch_size"):
        NTKRegressor(batch_size=0).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        NTKRegressor(n_components=5, random_state=0, progress=False).fit(X, y).predict(X)


def test_kernel_and_feature_coordinates_accumulate_the_same_sums():
    """Well-conditioned centres accumulate K^T W K and map once; both routes agree."""
    from sklearn_ntk._dynamics.nystrom import KernelPair
    from sklearn_ntk.linalg.nystrom import NystromBasis, accumulate_block

    X, y = _data(n=80, k=2)
    kernel = NTKKernel(depth=2)
    C = X[:15]
    pair = KernelPair(kernel, "ntk", need_nngp=True)
    K_dyn, K_nngp = pair(C)
    w = np.linspace(0.5, 2.0, 80)
    sums = {}
    for max_cond in (0.0, 1e12):
        bd, bn = NystromBasis(K_dyn, max_cond), NystromBasis(K_nngp, max_cond)
        assert bd.direct == (max_cond > 0)
        part = accumulate_block(lambda Xb: pair(Xb, C), X, y, w, bd, bn)
        sums[max_cond] = part.finish(bd, bn)
    a, b = sums[0.0], sums[1e12]
    for name in ("gram", "proj", "cross"):
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=1e-9,
                                   atol=1e-11 * np.abs(getattr(a, name)).max())


def test_progress_bar_on_request_only(capsys):
    pytest.importorskip("tqdm")
    X, y = _data(n=40)
    NTKRegressor(n_components=5, batch_size=10, random_state=0, progress=True).fit(X, y)
    assert "Nystroem fit" in capsys.readouterr().err
    NTKRegressor(n_components=5, batch_size=10, random_state=0).fit(X, y)  # "auto": no terminal
    NTKRegressor(n_components=5, batch_size=10, random_state=0, progress=False).fit(X, y)
    assert capsys.readouterr().err == ""
    with pytest.raises(ValueError, match="progress"):
        NTKRegressor(progress="yes").fit(X, y)
