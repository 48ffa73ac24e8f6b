"""How kernel evaluations use threads: one when the work is small, a queue of blocks otherwise.

Starting a parallel region costs tens of microseconds on a quiet machine, and on a busy one (a
``GridSearchCV(n_jobs=...)`` beside it, any other process) each region waits for a time slice
of every thread: about 8 ms per region measured on two busy cores, against 0.5 ms for a whole
150-row kernel on one thread. Small evaluations therefore run on the calling thread alone; the
results do not depend on the thread count (every entry is computed by the same code).

Larger evaluations run blocks of rows taken from a queue by :func:`thread_count` threads
(:func:`run_tasks`) rather than in one parallel region: a region splits the rows in fixed shares
and waits for its slowest thread while the others spin, so on a busy machine two threads were
slower than one; from a queue a thread that is held up leaves its remaining blocks to the others.
The compiled block functions release the GIL. Inside them, every slice of an array made in
Python (``hx[h, i]``) would add and drop a reference with an atomic operation, which threads
sharing the array contend for; :func:`borrowed` views of the arguments avoid that.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
from numba.extending import intrinsic
from numba.np.ufunc import parallel as _numba_parallel

__all__ = ["BLOCKS_PER_THREAD", "SERIAL_WORK", "borrowed", "n_rows", "run_tasks",
           "single_threaded_blas", "thread_count", "threads_for"]

SERIAL_WORK = 1 << 18  # entries x layers below which one thread is used (~0.5 ms of work)
BLOCKS_PER_THREAD = 8  # blocks of tasks in the queue per thread (balance on a busy machine)


_LOCAL = threading.local()  # .serial: inside a threads_for section of small work


def thread_count():
    """Threads a kernel evaluation may use: ``numba.get_num_threads()``, or one inside a
    :func:`threads_for` section of small work.

    Read without launching numba's threading layer when nothing has launched it yet: no kernel
    code runs in a numba parallel region, and a launched GNU-OpenMP layer makes every later
    ``fork()`` of the process terminate its child. ``numba.set_num_threads`` launches it, and is
    then followed.
    """
    if getattr(_LOCAL, "serial", False):
        return 1
    if _numba_parallel._is_initialized:
        return numba.get_num_threads()
    return int(numba.config.NUMBA_NUM_THREADS)


@contextlib.contextmanager
def threads_for(work):
    """Run the block on one thread when ``work`` (entries x layers) is below SERIAL_WORK (for the
    calling thread only: other threads evaluating kernels at the same time are not affected)."""
    if work >= SERIAL_WORK or getattr(_LOCAL, "serial", False):
        yield
        return
    _LOCAL.serial = True
    try:
        yield
    finally:
        _LOCAL.serial = False


def n_rows(A):
    """Number of rows of an array-like, for a work estimate (a large number when unknown)."""
    shape = getattr(A, "shape", None)
    if shape:
        return int(shape[0])
    try:
        return len(A)
    except TypeError:
        return SERIAL_WORK


def run_tasks(fn, n_tasks):
    """``fn(t0, t1)`` over blocks of tasks ``0 .. n_tasks - 1``, from a queue served by
    :func:`thread_count` threads: the calling thread and helpers from a pool kept for the
    process (starting threads at every call cost about a millisecond per kernel evaluation).
    The calling thread alone when that is one, or when it is itself one of the helpers."""
    threads = min(thread_count(), n_tasks)
    if threads <= 1 or threading.current_thread().name.startswith(_HELPER):
        if n_tasks > 0:
            fn(0, n_tasks)
        return
    bounds = np.linspace(0, n_tasks, min(n_tasks, BLOCKS_PER_THREAD * threads) + 1).astype(np.int64)
    blocks = iter(zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True))
    lock = threading.Lock()

    def drain():
        while True:
            with lock:
                block = next(blocks, None)
            if block is None:
                return
            fn(*block)

    futures = [_helpers(threads - 1).submit(drain) for _ in range(threads - 1)]
    try:
        drain()
    finally:
        for future in futures:
            future.result()


_HELPER = "sklearn_ntk-helper"
_POOL = {}  # (process id, helpers) -> ThreadPoolExecutor
_POOL_LOCK = threading.Lock()


def _helpers(count):
    """The process's pool of ``count`` helper threads (a new one after a fork or a change of
    the thread count)."""
    key = (os.getpid(), count)
    with _POOL_LOCK:
        pool = _POOL.get(key)
        if pool is None:
            _POOL.clear()  # pools of another process or size: their threads are not ours to join
            pool = _POOL[key] = ThreadPoolExecutor(max_workers=count, thread_name_prefix=_HELPER)
        return pool


@intrinsic
def borrowed(typingctx, arr):
    """In compiled code: a view of the array ``arr`` that does not count references.

    Slicing it costs no atomic reference-count updates (a compiled task function slices its
    argument arrays once per pair of samples, on every thread). Only for arrays that the
    Python caller keeps alive until the compiled call returns, i.e. the arguments of a task
    function run by :func:`run_tasks`.
    """

    def codegen(context, builder, signature, args):
        src = context.make_array(arr)(context, builder, value=args[0])
        view = context.make_array(arr)(context, builder)
        context.populate_array(view, data=src.data, shape=src.shape, strides=src.strides,
                               itemsize=src.itemsize, meminfo=None, parent=None)
        return view._getvalue()

    return arr(arr), codegen


@functools.lru_cache(maxsize=1)
def _blas_controller():
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def single_threaded_blas():
    """A context in which BLAS runs on one thread (for many small or concurrent products,
    where a multithreaded BLAS only adds contention)."""
    return _blas_controller().limit(limits=1, user_api="blas")
