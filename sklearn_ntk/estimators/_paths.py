"""The two fitting paths of the estimators: exact (strategy from ``plan_exact``) and Nyström."""

from __future__ import annotations

import numpy as np

from ..dynamics import (
    KernelDynamics,
    NystromDynamics,
    is_dask,
    nystrom_reductions,
    plan_exact,
)
from ..linalg.operators import BlockKernelOperator, PackedOperator, packed_kernel
from ._precomputed import PrecomputedPair

__all__ = ["build_exact", "eigh_with_cache", "fit_nystrom"]


def build_exact(pair, X, Y, w, *, solver, needs_covariance, block_size, learning_rate, alpha,
                kind, dynamics):
    """The exact :class:`~sklearn_ntk.dynamics.KernelDynamics` on the storage that fits."""
    n = X.shape[0]
    n_kernels = 2 if needs_covariance and kind == "ntk" else 1
    plan = plan_exact(n, solver=solver, needs_factorisation=needs_covariance,
                      n_kernels=n_kernels)
    common = dict(learning_rate=learning_rate, alpha=alpha, kind=kind, dynamics=dynamics,
                  sample_weight=w, check_input=False)
    if isinstance(pair, PrecomputedPair) and plan != "eigh":
        plan = "lanczos-dense"  # the user's matrix is already held: no other storage helps
    if plan == "lanczos-packed":
        packed = packed_kernel(lambda s, e: pair(X[s:e], X[:e])[0], n, block_size)
        return KernelDynamics(PackedOperator(packed, n), Y, **common)
    if plan == "lanczos-blocks":
        return KernelDynamics(blocks_operator(pair, X, block_size), Y, **common)
    theta, nngp = pair(X)
    return KernelDynamics(theta, Y, nngp_train=nngp if n_kernels == 2 else None,
                          method="lanczos" if plan == "lanczos-dense" else "auto", **common)


def blocks_operator(pair, X, block_size):
    """The train kernel as row blocks evaluated at every product (nothing ``n x n`` stored)."""
    n = X.shape[0]
    diag = np.concatenate([np.diagonal(pair(X[s:s + block_size])[0])
                           for s in range(0, n, block_size)])
    return BlockKernelOperator(lambda s, e: pair(X[s:e], X)[0], n, block_size, diag)


def eigh_with_cache(dyn, cache):
    """Give a factorising solver its eigendecomposition, through an explicit cache if any."""
    if dyn.method == "lanczos" or dyn._eig is not None:
        return
    if cache is None:
        dyn.eigh()
        return
    w = dyn.sample_weight
    key = cache.key(dyn.kernel_train, tag="" if w is None else cache.key(w[None, :]))
    hit = cache.get(key)
    if hit is not None:
        dyn.set_eigh(*hit)
    else:
        dyn.eigh()
        cache.put(key, tuple(np.copy(a, order="K") for a in dyn.eigh_unregularised()))


def fit_nystrom(pair, X, Y, w, n_components, rng, *, block_size, progress, learning_rate,
                alpha, kind, dynamics):
    """Draw centres, stream the reductions and build the rank-m dynamics.

    Returns
    -------
    centres, indices, basis, basis_nngp, NystromDynamics
    """
    n = X.shape[0]
    pool = np.arange(n) if is_dask(w) else np.flatnonzero(w > 0)  # centres carry weight
    m = min(int(n_components), len(pool))
    idx = pool if m >= len(pool) else np.sort(rng.choice(pool, m, replace=False))
    centres = X[idx]
    if is_dask(centres):
        centres = np.asarray(centres.compute(), dtype=np.float64)
    elif centres.dtype != object:  # graphs (1-D object arrays) stay as they are
        centres = np.asarray(centres, dtype=np.float64)
    with_cross = pair.need_nngp and kind == "ntk"
    Y = Y if is_dask(Y) else np.asarray(Y, dtype=np.float64)
    basis, basis_nngp, sums = nystrom_reductions(pair, X, Y, w, centres, with_cross=with_cross,
                                                 block_size=block_size, progress=progress)
    dyn = NystromDynamics(sums, n, sums.proj.shape[1], learning_rate=learning_rate, alpha=alpha,
                          kind=kind, dynamics=dynamics)
    return centres, idx, basis, basis_nngp, dyn
