"""Operators and matrix-free solvers of the exact path; round-off null modes; memory plans."""

import warnings

import numpy as np
import pytest
from sklearn.base import clone

import sklearn_ntk.dynamics as dynamics_mod
from sklearn_ntk.dynamics import KernelDynamics, plan_exact
from sklearn_ntk.estimators import NTKGaussianProcess, NTKRegressor
from sklearn_ntk.exceptions import SingularKernelWarning
from sklearn_ntk.kernels import NTKKernel
from sklearn_ntk.linalg.cg import conjugate_gradient
from sklearn_ntk.linalg.operators import (
    BlockKernelOperator,
    DenseOperator,
    PackedOperator,
    ScaledOperator,
    packed_kernel,
)


def _data(n=200, d=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    return X, np.column_stack([np.sin(X[:, 0]), X[:, 1] * X[:, 2]])


# ------------------------------------------------------------------ operators
@pytest.mark.parametrize("block", [1, 7, 50, 500])
def test_packed_and_blocked_operators_equal_dense(block):
    X, _ = _data(n=50)
    kernel = NTKKernel(depth=2)
    K = kernel(X)
    V = np.random.default_rng(1).normal(size=(50, 3))
    packed = PackedOperator(packed_kernel(lambda s, e: kernel(X[s:e], X[:e]), 50, block), 50)
    blocked = BlockKernelOperator(lambda s, e: kernel(X[s:e], X), 50, block, kernel.diag(X))
    for op in (packed, blocked, DenseOperator(K)):
        np.testing.assert_allclose(op.matmat(V), K @ V, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(op.diagonal(), np.diag(K), rtol=1e-12)
    assert packed.nbytes == 50 * 51 // 2 * 8
    d = np.linspace(0.5, 2, 50)
    np.testing.assert_allclose(ScaledOperator(packed, d).matmat(V), (d[:, None] * K * d) @ V,
                               rtol=1e-12)


# ------------------------------------------------------------------ Lanczos / CG vs eigh / Cholesky
@pytest.mark.parametrize("dyn_kind", ["flow", "gd"])
def test_lanczos_and_cg_equal_eigh_and_cholesky_over_time_scales(dyn_kind):
    """eta t lambda_max / n from 1 to 1e5, all from one Krylov basis, and t = inf by CG."""
    X, y = _data(n=200)
    K = NTKKernel(depth=3)(X)
    n = len(X)
    lam_max = np.linalg.eigvalsh(K)[-1]
    eta = 0.5 * n * 2 / lam_max if dyn_kind == "gd" else 1.0  # a stable gd step
    times = np.round(np.geomspace(1, 1e5, 11) * n * 2 / (eta * lam_max))
    times = np.append(times, np.inf)
    ref = KernelDynamics(K, y, learning_rate=eta, alpha=1e-6, dynamics=dyn_kind)
    fast = KernelDynamics(K, y, learning_rate=eta, alpha=1e-6, dynamics=dyn_kind,
                          method="lanczos")
    got = fast.mean(times)
    want = ref.mean(times)
    assert fast._eig is None and fast._chol is None
    for g, w in zip(got, want, strict=True):
        assert np.abs(g - w).max() <= 1e-6 * np.abs(w).max()
    np.testing.assert_allclose(fast.training_loss(times[[0, 5, -1]]),
                               ref.training_loss(times[[0, 5, -1]]), rtol=1e-6, atol=1e-12)


def test_lanczos_on_packed_operator_in_the_estimator(monkeypatch):
    """When the dense kernel does not fit, the estimator stores one packed triangle."""
    X, y = _data(n=150)
    Xt, _ = _data(n=9, seed=3)

    def fake_check(n_bytes, what, hint=None):
        if "packed" not in what:
            raise MemoryError(f"{what} needs {n_bytes} bytes; only a little is available")

    monkeypatch.setattr(dynamics_mod, "check_memory", fake_check)
    reg = NTKRegressor(NTKKernel(depth=2), t=40.0, alpha=1e-4).fit(X, y)
    assert isinstance(reg._dyn.operator, PackedOperator)
    monkeypatch.undo()
    ref = NTKRegressor(NTKKernel(depth=2), t=40.0, alpha=1e-4, solver="eigh").fit(X, y)
    np.testing.assert_allclose(reg.predict(Xt), ref.predict(Xt), rtol=1e-6, atol=1e-9)
    staged = list(reg.staged_predict(Xt, [1.0, np.inf]))
    ref_staged = list(ref.staged_predict(Xt, [1.0, np.inf]))
    np.testing.assert_allclose(staged, ref_staged, rtol=1e-6, atol=1e-9)


def test_memory_error_names_size_and_suggests_n_components(monkeypatch):
    def fake_check(n_bytes, what, hint=None):
        raise MemoryError(f"{what} needs {n_bytes / 2**30:.2f} GiB but only 0.01 GiB is "
                          f"available; {hint}")

    monkeypatch.setattr(dynamics_mod, "check_memory", fake_check)
    with pytest.raises(MemoryError, match=r"needs .* GiB.*n_components=5000"):
        plan_exact(60_000)
    X, y = _data(n=30)
    with pytest.raises(MemoryError, match="n_components"):
        NTKGaussianProcess().fit(X, y)
    NTKRegressor(n_components=10).fit(X, y)  # the Nystroem path needs no n x n memory


def test_memory_error_keeps_every_limit_and_the_hint(monkeypatch):
    """The tightest limit (here RLIMIT_AS, listed after MemAvailable) stays in the message."""
    import sklearn_ntk._validation as val

    limits = {"MemAvailable": 20 * 2**30, "cgroup limit": None, "RLIMIT_AS": 2**30}
    monkeypatch.setattr(val, "memory_limits", lambda: dict(limits))
    with pytest.raises(MemoryError) as info:
        plan_exact(9000, needs_factorisation=True)
    msg = str(info.value)
    assert msg.startswith("the exact dynamics on n=9000 samples (eigendecomposition) needs "
                          "3.02 GiB but only 1.00 GiB is available (MemAvailable 20.00 GiB; "
                          "RLIMIT_AS 1.00 GiB); pass n_components=900 "), msg
    assert msg.count("(") == msg.count(")") and "\n" not in msg


def test_plan_choices():
    assert plan_exact(100) == "eigh"
    assert plan_exact(100, solver="lanczos") == "lanczos-dense"
    assert plan_exact(100, needs_factorisation=True, solver="lanczos") == "eigh"


def test_cg_reports_non_convergence():
    A = np.diag(np.linspace(1e-8, 1.0, 100))
    assert conjugate_gradient(DenseOperator(A), np.ones((100, 1)), max_iter=3) is None


# ------------------------------------------------------------------ round-off null modes
@pytest.mark.parametrize("dyn_kind", ["flow", "gd"])
def test_huge_t_with_duplicate_rows_is_bounded_and_tends_to_min_norm(dyn_kind):
    X, _ = _data(n=20)
    X = np.vstack([X, X[:5]])
    y = np.sin(X[:, 0]) + np.arange(len(X)) * 0.01  # conflicting targets on duplicates
    Xt, _ = _data(n=6, seed=4)
    kernel = NTKKernel(depth=2)
    K, Kt = kernel(X), kernel(Xt, X)
    with pytest.warns(SingularKernelWarning):
        limit = KernelDynamics(K, y, dynamics=dyn_kind).mean(np.inf, Kt)
    dyn = KernelDynamics(K, y, dynamics=dyn_kind)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        big = dyn.mean([1e20, 1e100, 1e300], Kt)
    for b in big:
        np.testing.assert_allclose(b, limit, rtol=1e-6, atol=1e-9)
    gp = NTKGaussianProcess(kernel, t=1e300, dynamics=dyn_kind).fit(X, y)
    mean, std = gp.predict(Xt, return_std=True)
    assert np.isfinite(std).all() and std.max() < 10
    np.testing.assert_allclose(mean, limit, rtol=1e-6, atol=1e-9)


def test_null_modes_filtered_in_lanczos_too():
    X, _ = _data(n=20)
    X = np.vstack([X, X[:5]])
    y = np.sin(X[:, 0]) + np.arange(len(X)) * 0.01
    K = NTKKernel(depth=2)(X)
    a = KernelDynamics(K, y, method="lanczos").mean([1e20, 1e300])
    b = KernelDynamics(K, y).mean([1e20, 1e300])
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)


# ------------------------------------------------------------------ training_loss and set_params
def test_training_loss_follows_predicts_rule_after_set_params():
    X, y = _data(n=40)
    reg = NTKRegressor(t=5.0).fit(X, y)
    before_pred, before_loss = reg.predict(X), reg.training_loss()
    reg.set_params(t=500.0)  # no refit: predict and training_loss both keep t=5
    np.testing.assert_array_equal(reg.predict(X), before_pred)
    assert reg.training_loss() == before_loss
    assert reg.training_loss(500.0) < before_loss
    refit = clone(reg).fit(X, y)
    assert refit.training_loss() == pytest.approx(reg.training_loss(500.0), rel=1e-10)


# ------------------------------------------------------------------ kernel rows on the fly
def test_plan_memory_arithmetic_chooses_blocks_then_refuses(monkeypatch):
    """n = 10,000: eigh 4 GB, dense 1.6 GB, packed 0.44 GB, blocks 0.08 GB basis + 128 MiB."""
    import sklearn_ntk._validation as val
    from sklearn_ntk.exceptions import PerformanceWarning

    n = 10_000
    blocks = dynamics_mod.exact_memory_bytes(n, "blocks")
    assert blocks == 8 * n * 1001 + 4 * 2**25
    assert dynamics_mod.exact_memory_bytes(n, "packed") == int(0.55 * 8 * n * n)
    monkeypatch.setattr(val, "available_memory_bytes", lambda: 500 * 2**20)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert plan_exact(n) == "lanczos-packed"
    monkeypatch.setattr(val, "available_memory_bytes", lambda: blocks + 1)
    with pytest.warns(PerformanceWarning, match=r"evaluates the whole kernel again.*"
                                                r"n_components=1000"):
        assert plan_exact(n) == "lanczos-blocks"
    monkeypatch.setattr(val, "available_memory_bytes", lambda: blocks - 1)
    with pytest.raises(MemoryError, match=r"on the fly\) needs 0\.20 GiB but only 0\.20 GiB.*"
                                          r"n_components=1000"):
        plan_exact(n)
    with pytest.raises(MemoryError, match=r"eigendecomposition\) needs 3\.73 GiB.*n_components"):
        plan_exact(n, needs_factorisation=True)


@pytest.mark.parametrize("weighted", [False, True])
def test_blocks_on_the_fly_equal_the_dense_path(monkeypatch, weighted):
    from sklearn_ntk.exceptions import PerformanceWarning

    X, y = _data(n=150)
    Xt, _ = _data(n=9, seed=3)
    w = np.linspace(0.5, 2.0, len(X)) if weighted else None

    def fake_check(n_bytes, what, hint=None):
        if "on the fly" not in what:
            raise MemoryError(f"{what} needs {n_bytes} bytes; only a little is available")

    monkeypatch.setattr(dynamics_mod, "check_memory", fake_check)
    reg = NTKRegressor(NTKKernel(depth=2), t=40.0, alpha=1e-4, batch_size=32)
    with pytest.warns(PerformanceWarning, match="block by block"):
        reg.fit(X, y, sample_weight=w)
    assert isinstance(reg._dyn.operator, BlockKernelOperator)
    monkeypatch.undo()
    ref = NTKRegressor(NTKKernel(depth=2), t=40.0, alpha=1e-4, solver="eigh")
    ref.fit(X, y, sample_weight=w)
    np.testing.assert_allclose(reg.predict(Xt), ref.predict(Xt), rtol=1e-6, atol=1e-9)
    staged = list(reg.staged_predict(Xt, [1.0, 1e4, np.inf]))
    ref_staged = list(ref.staged_predict(Xt, [1.0, 1e4, np.inf]))
    np.testing.assert_allclose(staged, ref_staged, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(reg._dyn.operator.diagonal(), np.diag(NTKKernel(depth=2)(X)),
                               rtol=1e-12)
