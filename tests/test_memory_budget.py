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


@pytest.mark.parametrize("name", list(OPERATIONS))
def test_peak_allocation_within_the_checked_budget(name, monkeypatch):
    operation = OPERATIONS[name]
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((N, 4)), rng.standard_normal(N)
    operation(X[:20], y[:20])  # compile and import outside the trace
    checked = []
    for module in (ntk_mod, dynamics_mod):
        real = module.check_memory

        def spy(n_bytes, what, *args, _real=real, **kwargs):
            checked.append(n_bytes)
            return _real(n_bytes, what, *args, **kwargs)

        monkeypatch.setattr(module, "check_memory", spy)
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        result = operation(X, y)
        peak = tracemalloc.get_traced_memory()[1] - start
    finally:
        tracemalloc.stop()
    del result
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
