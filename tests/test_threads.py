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
        seen.append(threads.thread_count())
        with threads.threads_for(threads.SERIAL_WORK):  # a larger block inside stays serial
            seen.append(threads.thread_count())
    with threads.threads_for(threads.SERIAL_WORK):
        seen.append(threads.thread_count())
    with pytest.raises(RuntimeError), threads.threads_for(1):
        raise RuntimeError("inside")
    assert seen == [1, 1, 2]
    assert threads.thread_count() == 2 and numba.get_num_threads() == 2


def test_fork_after_kernel_evaluations_works():
    """No kernel code launches numba's threading layer: a process that evaluated kernels
    (closed form, numerical, gradient, network) can fork a child that evaluates one too (a
    launched GNU-OpenMP layer terminates such children). In a fresh interpreter, so that
    other tests' numba.set_num_threads calls do not count."""
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent("""
        import multiprocessing as mp, numpy as np
        from sklearn_ntk import NetworkKernel, NTKKernel, layers as nl
        X = np.random.default_rng(0).standard_normal((700, 16))
        NTKKernel()(X); NTKKernel(activation="tanh")(X[:300], eval_gradient=True)
        NetworkKernel([nl.Conv((3, 3), padding="same"), "relu", nl.AvgPool((2, 2)),
                       nl.GlobalAvgPool(), nl.Dense()], input_shape=(4, 4, 1))(X[:40])
        def child(q):
            q.put(float(NTKKernel()(X).sum()))
        ctx = mp.get_context("fork")
        q = ctx.Queue()
        p = ctx.Process(target=child, args=(q,))
        p.start()
        print(abs(q.get(timeout=120) - NTKKernel()(X).sum()) < 1e-6)
        p.join(30)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "True", out.stderr[-2000:]


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


def test_borrowed_view_shares_the_memory():
    @numba.njit
    def fill(a):
        view = threads.borrowed(a)
        for i in range(view.shape[0]):
            row = view[i]
            row[:] = i
        return view.shape

    a = np.zeros((3, 4))
    assert fill(a) == (3, 4)
    np.testing.assert_array_equal(a, np.repeat(np.arange(3.0), 4).reshape(3, 4))


@pytest.mark.parametrize("n", [1, 2, 7, 30])
def test_conv_chain_task_queue_identical_on_one_and_two_threads(n):
    """The compiled convolutional chain's rows come from a queue: every entry once, any count
    of threads, odd and even n (rows t and n - 1 - t share a task in k(X))."""
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("needs two numba threads")
    from sklearn_ntk.arch.plan import compile_network
    from sklearn_ntk.backends import conv

    rng = np.random.default_rng(n)
    X, Y = rng.standard_normal((n, 12)), rng.standard_normal((5, 12))
    results = []
    for readout in (nl.GlobalAvgPool(), nl.Flatten()):
        plan = compile_network([nl.Conv((3, 2)), "relu", nl.Conv((2, 2)), "erf", readout,
                                nl.Dense()], (3, 4, 1))
        tables = conv.encode(plan, 1.7, 0.05)
        before = numba.get_num_threads()
        for n_threads in (1, 2):
            numba.set_num_threads(n_threads)
            try:
                results.append([conv.pairs(plan, tables, X, Yv, grad=g)
                                for Yv, g in ((None, False), (Y, False), (None, True))]
                               + [conv.self_pass(plan, tables, X, grad=True)])
            finally:
                numba.set_num_threads(before)
    for one, two in ((results[0], results[1]), (results[2], results[3])):
        for a, b in zip(one, two, strict=True):
            for x, y in zip(a, b, strict=True):
                assert np.all(np.isfinite(x))
                np.testing.assert_array_equal(x, y)


def test_run_tasks_covers_every_task_once_and_reraises():
    """Blocks of tasks from the queue: every task exactly once, on 1 and 2 threads, from a
    helper thread (served alone), and a task's error reaches the caller."""
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("needs two numba threads")
    import threading
    old = numba.get_num_threads()
    try:
        for count in (1, 2):
            numba.set_num_threads(count)
            for n_tasks in (0, 1, 7, 100):
                seen = np.zeros(n_tasks, dtype=int)
                names = set()

                def fn(t0, t1, seen=seen, names=names):
                    seen[t0:t1] += 1
                    names.add(threading.current_thread().name)

                threads.run_tasks(fn, n_tasks)
                assert np.all(seen == 1)
                assert names <= {threading.current_thread().name} | {
                    t.name for t in threading.enumerate() if t.name.startswith(threads._HELPER)
                }
        numba.set_num_threads(2)
        inner = []
        threads._helpers(1).submit(
            threads.run_tasks, lambda a, b: inner.append(threading.current_thread().name), 9
        ).result()
        assert len(set(inner)) == 1 and inner[0].startswith(threads._HELPER)

        def boom(t0, t1):
            raise ZeroDivisionError("in a task")

        with pytest.raises(ZeroDivisionError, match="in a task"):
            threads.run_tasks(boom, 40)
    finally:
        numba.set_num_threads(old)
