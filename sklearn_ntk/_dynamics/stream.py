"""Streaming the Nyström reductions over row blocks: in process or on a dask cluster."""

from __future__ import annotations

import sys

import numpy as np

from ..linalg.nystrom import NystromBasis, accumulate_block

__all__ = ["is_dask", "default_block_size", "nystrom_reductions", "blocked_apply"]


def is_dask(a):
    """Whether ``a`` is a ``dask.array.Array`` (without importing dask)."""
    return type(a).__module__.startswith("dask.") and hasattr(a, "to_delayed")


def default_block_size(n_columns, n_rows):
    """Rows per block so that one ``block x n_columns`` float64 array is about 32 MiB."""
    return int(max(1, min(max(n_rows, 1), 2**22 // max(int(n_columns), 1))))


def _progress(iterable, total, enabled, desc):
    if enabled == "auto":
        enabled = total > 1 and hasattr(sys.stderr, "isatty") and sys.stderr.isatty()
    if not enabled:
        return iterable
    try:
        from tqdm.auto import tqdm
    except ImportError:  # progress is optional
        return iterable
    return tqdm(iterable, total=total, desc=desc, leave=False)


class _CentreKernel:
    """Picklable ``Xb -> (dyn(Xb, C), nngp(Xb, C))`` for one set of centres."""

    def __init__(self, pair, centres):
        self.pair, self.centres = pair, centres

    def __call__(self, Xb):
        return self.pair(Xb, self.centres)


def nystrom_reductions(pair, X, Y, w, centres, *, with_cross, block_size, progress="auto"):
    """Normalisers of the centre kernels and the summed reductions over all rows of ``X``.

    Parameters
    ----------
    pair : KernelPair
    X : ndarray or dask array of shape (n, d)
    Y : ndarray or dask array of shape (n, k)
    w : ndarray or dask array of shape (n,)
    centres : ndarray of shape (m, d)
    with_cross : bool
        Also accumulate the NTK/NNGP cross sum (``kind="ntk"`` covariances).
    block_size : int
        Rows per block (ignored for dask arrays: their row chunks are the blocks).
    progress : bool or "auto"

    Returns
    -------
    basis_dyn, basis_nngp (or None), sums
    """
    k_dyn, k_nngp = pair(centres)
    norm_dyn = NystromBasis(k_dyn)
    norm_nngp = NystromBasis(k_nngp) if with_cross else None
    blocks = _CentreKernel(pair, centres)
    if is_dask(X):
        sums = _dask_sums(blocks, X, Y, w, norm_dyn, norm_nngp)
        return norm_dyn, norm_nngp, sums.finish(norm_dyn, norm_nngp)
    n = X.shape[0]
    starts = range(0, n, block_size)
    sums = None
    for s in _progress(starts, len(starts), progress, "Nystroem fit"):
        e = min(n, s + block_size)
        part = accumulate_block(blocks, X[s:e], Y[s:e], w[s:e], norm_dyn, norm_nngp)
        sums = part if sums is None else sums + part
    return norm_dyn, norm_nngp, sums.finish(norm_dyn, norm_nngp)


def _dask_sums(blocks, X, Y, w, norm_dyn, norm_nngp):
    import dask
    import dask.array as da

    X = X.rechunk({1: -1})
    chunks = X.chunks[0]
    Y = da.asarray(Y).rechunk((chunks, -1))
    w = da.asarray(w).rechunk((chunks,))
    parts = [
        dask.delayed(accumulate_block)(blocks, xb, yb, wb, norm_dyn, norm_nngp)
        for xb, yb, wb in zip(X.to_delayed()[:, 0], Y.to_delayed()[:, 0], w.to_delayed(),
                              strict=True)
    ]
    while len(parts) > 1:  # pairwise tree reduction on the cluster
        parts = [dask.delayed(_add)(*parts[i:i + 2]) if i + 1 < len(parts) else parts[i]
                 for i in range(0, len(parts), 2)]
    return parts[0].compute()


def _add(a, b):
    return a + b


def blocked_apply(fn, X, n_out, block_size):
    """``fn(X[block])`` stacked over row blocks; a dask array maps over its chunks lazily."""
    if is_dask(X):
        X = X.rechunk({1: -1})
        return X.map_blocks(fn, dtype=np.float64, chunks=(X.chunks[0], (n_out,)))
    n = X.shape[0]
    out = np.empty((n, n_out))
    for s in range(0, n, block_size):
        e = min(n, s + block_size)
        out[s:e] = fn(X[s:e])
    return out
