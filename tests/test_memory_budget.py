"""The memory guard budgets whole operations: the peak of what numpy allocates during a kernel
evaluation or a fit stays within the largest amount the guard checked for it.

Allocations are traced with ``tracemalloc`` (numpy reports its buffers to it); the guard's
checks are recorded, not changed.
"""

import tracemalloc

import numpy as np
import pytest

import sklearn_ntk.dynamics as dynamics_mod
import sklearn_ntk.kernels.ntk as ntk_mod
from sklearn_ntk import NTKGaussianProcess, NTKKernel, NTKRegressor

N = 800
OPERATIONS = {
    "kernel": lambda X, y: NTKKernel(depth=3)(X),
    "ntk_and_nngp": lambda X, y: NTKKernel(depth=3).ntk_and_nngp(X),
    "gradient": lambda X, y: NTKKernel(depth=3)(X, eval_gradient=True),
    "numerical kernel": lambda X, y: NTKKernel(depth=2, activation="tanh")(X),
    "regressor fit": lambda X, y: NTKRegressor(t=10.0).fit(X, y),
    "gaussian process fit": lambda X, y: NTKGaussianProcess(t=10.0).fit(X, y),
}


def _traced(run, modules, monkeypatch):
    """Peak of the bytes numpy allocates while ``run()`` runs, and every amount the memory guard
    of ``modules`` was asked to check (recorded, not changed)."""
    checked = []
    for module in modules:
        real = module.check_memory

        def spy(n_bytes, what, *args, _real=real, **kwargs):
            checked.append(n_bytes)
            return _real(n_bytes, what, *args, **kwargs)

        monkeypatch.setattr(module, "check_memory", spy)
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        run()
        peak = tracemalloc.get_traced_memory()[1] - start
    finally:
        tracemalloc.stop()
    return peak, checked


@pytest.mark.parametrize("name", list(OPERATIONS))
def test_peak_allocation_within_the_checked_budget(name, monkeypatch):
    operation = OPERATIONS[name]
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((N, 4)), rng.standard_normal(N)
    operation(X[:20], y[:20])  # compile and import outside the trace
    peak, checked = _traced(lambda: operation(X, y), (ntk_mod, dynamics_mod), monkeypatch)
    assert checked, "the guard was not consulted"
    # slack: O(n) vectors and bounded row-block temporaries, 10% of one n x n array here
    assert peak <= max(checked) + 0.1 * 8 * N * N, (peak / (8 * N * N), max(checked) / (8 * N * N))


def test_all_finite_checks_blocks_when_the_sum_overflows():
    from sklearn_ntk._validation import all_finite

    a = np.full((7, 5), 1e308)  # every entry finite, the sum is not
    assert all_finite(a) and all_finite(a, block_bytes=1)
    for bad in (np.inf, -np.inf, np.nan):
        b = a.copy()
        b[6, 4] = bad
        assert not all_finite(b) and not all_finite(b, block_bytes=1)
        assert not all_finite(np.zeros((3, 3, 2)) + np.where(np.arange(2) == 1, bad, 0.0))
    assert all_finite(np.zeros((0, 3))) and not all_finite(np.float64(np.nan))


@pytest.mark.parametrize("kind", ["ntk", "nngp"])
@pytest.mark.parametrize("t", [10.0, np.inf])
def test_full_covariance_peak_within_the_checked_budget(kind, t, monkeypatch):
    """predict(return_cov=True) on m = 800 points used to peak at ~5.9 m^2 doubles while only
    the m x m prior (1 m^2) was checked."""
    import sklearn_ntk.estimators.gaussian_process as gp_mod

    rng = np.random.default_rng(1)
    gp = NTKGaussianProcess(NTKKernel(kind=kind), t=t).fit(
        rng.standard_normal((100, 4)), rng.standard_normal(100))
    Xt = rng.standard_normal((N, 4))
    gp.predict(Xt[:20], return_cov=True)
    result = []
    peak, checked = _traced(
        lambda: result.append(gp.predict(Xt, return_cov=True)[1]), (ntk_mod, gp_mod), monkeypatch
    )
    cov = result[0]
    assert np.array_equal(cov, cov.T)
    assert peak <= max(checked) + 0.1 * 8 * N * N, (peak / (8 * N * N), max(checked) / (8 * N * N))


def test_covariance_that_does_not_fit_is_refused_before_computing(monkeypatch):
    import sklearn_ntk._validation as val
    from sklearn_ntk import NTKGaussianProcess

    rng = np.random.default_rng(2)
    X, y = rng.standard_normal((50, 3)), rng.standard_normal(50)
    gp = NTKGaussianProcess(t=10.0).fit(X, y)
    gp2 = NTKGaussianProcess(t=10.0).fit(X, np.c_[y, y])
    Xt = rng.standard_normal((400, 3))
    # the prior k(Xt) (1.2 MiB) fits; the covariance (3 x 1.2 MiB + rows) does not
    monkeypatch.setattr(val, "available_memory_bytes", lambda: 4 * 2**20)
    with pytest.raises(MemoryError, match=r"the covariance of 400 test points needs .* GiB "):
        gp.predict(Xt, return_cov=True)
    with pytest.raises(MemoryError, match="sample_y on 400 test points"):
        gp.sample_y(Xt)
    mean, std = gp.predict(Xt, return_std=True)  # the variances alone need O(m n)
    assert np.all(np.isfinite(std))
    monkeypatch.setattr(val, "available_memory_bytes", lambda: 6 * 2**20)
    gp.predict(Xt, return_cov=True)
    with pytest.raises(MemoryError, match="return_std=True"):  # two targets: a copy per target
        gp2.predict(Xt, return_cov=True)
