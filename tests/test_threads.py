"""Small kernel evaluations run on one thread; results do not depend on the thread count."""

import numba
import numpy as np
import pytest

from sklearn_ntk import NetworkKernel, NTKKernel
from sklearn_ntk import layers as nl
from sklearn_ntk.backends import threads


def test_threads_for_serial_below_threshold_and_restores():
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("needs two numba threads")
    numba.set_num_threads(2)
    seen = []
    with threads.threads_for(threads.SERIAL_WORK - 1):
        seen.append(numba.get_num_threads())
    with threads.threads_for(threads.SERIAL_WORK):
        seen.append(numba.get_num_threads())
    with pytest.raises(RuntimeError), threads.threads_for(1):
        raise RuntimeError("inside")
    assert seen == [1, 2]
    assert numba.get_num_threads() == 2


def test_n_rows_of_array_likes():
    assert threads.n_rows(np.zeros((7, 2))) == 7
    assert threads.n_rows([[1.0], [2.0]]) == 2
    assert threads.n_rows(3.0) == threads.SERIAL_WORK


@pytest.mark.parametrize("serial", [0, 1 << 40])
def test_kernels_identical_serial_and_parallel(monkeypatch, serial):
    """The same numbers whether the evaluation runs on one thread or on all of them."""
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((60, 16)), rng.standard_normal((9, 16))
    kernels = [NTKKernel(depth=3), NTKKernel(depth=2, activation="tanh"),
               NetworkKernel([nl.Conv((3, 3), padding="same"), "relu", nl.GlobalAvgPool(),
                              nl.Dense()], input_shape=(4, 4, 1))]
    base = [(k(X), k(X, Y), k(X, eval_gradient=True)[1], k.diag(X)) for k in kernels]
    monkeypatch.setattr(threads, "SERIAL_WORK", serial)
    for k, ref in zip(kernels, base, strict=True):
        got = (k(X), k(X, Y), k(X, eval_gradient=True)[1], k.diag(X))
        for a, b in zip(got, ref, strict=True):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("serial", [0, 1 << 40])
def test_graph_kernel_identical_serial_and_parallel(monkeypatch, serial):
    """The compiled graph chain (self pass and pairs) gives the same numbers on any thread count."""
    rng = np.random.default_rng(1)
    gs = []
    for N in rng.integers(1, 9, 14):
        A = np.triu(rng.random((N, N)) < 0.4, 1).astype(float)
        gs.append((A + A.T + np.eye(N), rng.standard_normal((N, 3))))
    k = NetworkKernel([nl.Aggregate(), nl.Dense(), "relu", nl.Aggregate(), nl.Dense(), "relu",
                       nl.GlobalSumPool(), nl.Dense()], bias_std=0.3)
    ref = (k(gs), k(gs[:5], gs[5:]), k.diag(gs))
    monkeypatch.setattr(threads, "SERIAL_WORK", serial)
    for a, b in zip((k(gs), k(gs[:5], gs[5:]), k.diag(gs)), ref, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("n_tasks", [1, 3, 17, 100])
def test_graph_task_queue_runs_every_task_once(n_threads, n_tasks):

    if numba.config.NUMBA_NUM_THREADS < n_threads:
        pytest.skip("needs two numba threads")
    seen = np.zeros(n_tasks, dtype=int)

    def fn(t0, t1):
        assert 0 <= t0 < t1 <= n_tasks
        seen[t0:t1] += 1

    before = numba.get_num_threads()
    numba.set_num_threads(n_threads)
    try:
        threads.run_tasks(fn, n_tasks)
    finally:
        numba.set_num_threads(before)
    np.testing.assert_array_equal(seen, 1)
