"""How many threads a compiled kernel evaluation uses: one when the work is small.

Starting a parallel region costs tens of microseconds on a quiet machine, and on a busy one (a
``GridSearchCV(n_jobs=...)`` beside it, any other process) each region waits for a time slice
of every thread: about 8 ms per region measured on two busy cores, against 0.5 ms for a whole
150-row kernel on one thread. Small evaluations therefore run on the calling thread alone; the
results do not depend on the thread count (every entry is computed by the same code).
"""

from __future__ import annotations

import contextlib

import numba

__all__ = ["SERIAL_WORK", "n_rows", "threads_for"]

SERIAL_WORK = 1 << 18  # entries x layers below which one thread is used (~0.5 ms of work)


@contextlib.contextmanager
def threads_for(work):
    """Run the block on one numba thread when ``work`` (entries x layers) is below SERIAL_WORK."""
    threads = numba.get_num_threads()
    if threads == 1 or work >= SERIAL_WORK:
        yield
        return
    numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(threads)


def n_rows(A):
    """Number of rows of an array-like, for a work estimate (a large number when unknown)."""
    shape = getattr(A, "shape", None)
    if shape:
        return int(shape[0])
    try:
        return len(A)
    except TypeError:
        return SERIAL_WORK
