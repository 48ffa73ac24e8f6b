r"""Graph networks (:class:`~sklearn_ntk.layers.Aggregate`) on the array reference evaluator.

The state of a pair of graphs with :math:`N_1` and :math:`N_2` nodes carries the node-by-node
covariances, shape ``(K, p, N_1, N_2)``; every layer rule is the one of
:mod:`sklearn_ntk.arch.rules` (``Aggregate`` multiplies by :math:`A_1^\top` on the left and
:math:`A_2` on the right). Pairs are grouped by their sizes ``(N_1, N_2)`` so that each group is a
batch of equally shaped states (one ``matmul`` per Aggregate for dense adjacencies; sparse ones are
applied pair by pair and never densified).

As for arrays, a *self pass* pushes each graph with itself through the network once (the kernel's
diagonal and, at the input of every activation / LayerNorm, the per-node variances), then a *pair
pass* reads those variances for every pair. Cost per pair: :math:`O(L N_1 N_2 (N_1 + N_2))` dense.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .._validation import check_memory
from ..arch.rules import Context, KernelState, apply
from .reference import _BLOCK_BYTES, moments

__all__ = ["self_pass", "kernel_matrices", "diag_kernels"]


def _aggregator(A1, A2):
    """``x -> A1^T x A2`` on states ``(K, p, N1, N2)``; ``A1``/``A2`` stacks or lists of pairs."""
    if isinstance(A1, np.ndarray) and isinstance(A2, np.ndarray):
        A1t = np.swapaxes(A1, -1, -2)

        def dense(x):
            return np.matmul(np.matmul(A1t, x), A2)

        return dense

    def sparse(x):
        out = np.empty_like(x)
        for t, (a1, a2) in enumerate(zip(A1, A2, strict=True)):
            for k in range(x.shape[0]):
                left = np.asarray(a1.T @ x[k, t])
                out[k, t] = np.asarray(a2.T @ left.T).T
        return out

    return sparse


def _stack(graphs, idx):
    """Adjacencies (a dense stack, or a list when any is sparse) and stacked node features."""
    adj = [graphs[i][0] for i in idx]
    if not any(sp.issparse(a) for a in adj):
        adj = np.stack(adj)
    return adj, np.stack([graphs[i][1] for i in idx])


def _run(plan, gx, gy, rows, cols, same, w2, b2, grad, variances):
    """Push the pairs ``(gx[rows], gy[cols])`` (all of one size pair) through the network."""
    n1, n2 = gx[rows[0]][0].shape[0], gy[cols[0]][0].shape[0]
    check_memory(8 * (3 if grad else 1) * rows.size * n1 * n2 * 8,
                 f"the node-pair states of graphs with {n1} and {n2} nodes")
    A1, H1 = _stack(gx, rows)
    A2, H2 = _stack(gy, cols)
    gram = np.matmul(H1, np.swapaxes(H2, -1, -2)) / H1.shape[-1]
    K = 3 if grad else 1
    nngp = np.zeros((K,) + gram.shape)
    nngp[0] = gram
    state = KernelState(nngp, np.zeros_like(nngp), plan.spatial, True, same)
    ctx = Context(w2, b2, grad, moments, variances)
    ctx.aggregate = _aggregator(A1, A2)
    return apply(plan.root, state, ctx)


def _step(n1, n2, K):
    return max(1, _BLOCK_BYTES // (K * 8 * n1 * n2 * 2))


def self_pass(plan, graphs, w2, b2, grad):
    """Every graph with itself: ``(nngp, ntk)`` of shape ``(K, n)`` and the variance histories.

    ``history[i][op.index]`` is the ``(K, N_i)`` per-node variance of graph ``i`` at the input of
    every activation and LayerNorm.
    """
    n = len(graphs)
    K = 3 if grad else 1
    sizes = np.array([A.shape[0] for A, _ in graphs])
    nngp, ntk = np.empty((K, n)), np.empty((K, n))
    history = [dict() for _ in range(n)]
    for size in np.unique(sizes):
        members = np.flatnonzero(sizes == size)
        step = _step(size, size, K)
        for start in range(0, members.size, step):
            idx = members[start : start + step]
            rec = {}

            def variances(op, state, rec=rec):
                v = state.nngp if op.kind == "attention" else state.pixel_diagonal()
                rec[op.index] = v
                return v, v

            out = _run(plan, graphs, graphs, idx, idx, np.ones(idx.size, dtype=bool), w2, b2,
                       grad, variances)
            nngp[:, idx], ntk[:, idx] = out.nngp, out.ntk
            for t, i in enumerate(idx):
                history[i] = {key: v[:, t] for key, v in rec.items()}
    return nngp, ntk, history


def _pairs(n, m, sym):
    if sym:
        return np.triu_indices(n)
    rows, cols = np.divmod(np.arange(n * m), m)
    return rows, cols


def kernel_matrices(plan, gx, gy, w2, b2, grad=False):
    """NNGP and NTK of all pairs of graphs, each ``(K, n, m)`` (``gy is None``: symmetric k(X))."""
    sym = gy is None
    _, _, hx = self_pass(plan, gx, w2, b2, grad)
    hy = hx if sym else self_pass(plan, gy, w2, b2, grad)[2]
    gy = gx if sym else gy
    n, m = len(gx), len(gy)
    K = 3 if grad else 1
    nngp, ntk = np.empty((K, n, m)), np.empty((K, n, m))
    rows, cols = _pairs(n, m, sym)
    sx = np.array([A.shape[0] for A, _ in gx])
    sy = np.array([A.shape[0] for A, _ in gy])
    order = np.lexsort((sy[cols], sx[rows]))
    rows, cols = rows[order], cols[order]
    key = sx[rows] * (sy.max() + 1) + sy[cols]
    bounds = np.flatnonzero(np.diff(key)) + 1
    for grp_r, grp_c in zip(np.split(rows, bounds), np.split(cols, bounds), strict=True):
        step = _step(sx[grp_r[0]], sy[grp_c[0]], K)
        for start in range(0, grp_r.size, step):
            r, c = grp_r[start : start + step], grp_c[start : start + step]
            same = (r == c) if sym else np.zeros(r.size, dtype=bool)

            def variances(op, state, r=r, c=c):
                va = np.stack([hx[i][op.index] for i in r], axis=1)
                vb = np.stack([hy[j][op.index] for j in c], axis=1)
                return va, vb

            out = _run(plan, gx, gy, r, c, same, w2, b2, grad, variances)
            nngp[:, r, c], ntk[:, r, c] = out.nngp, out.ntk
            if sym:
                nngp[:, c, r], ntk[:, c, r] = out.nngp, out.ntk
    return nngp, ntk


def diag_kernels(plan, graphs, w2, b2, grad=False):
    """``(nngp, ntk)`` of every graph with itself, each of shape ``(K, n)``."""
    nngp, ntk, _ = self_pass(plan, graphs, w2, b2, grad)
    return nngp, ntk
