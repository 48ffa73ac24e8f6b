"""The array reference evaluator: runs any compiled architecture layer by layer on NumPy arrays.

It is the oracle for the optimised paths and the natural place for a GPU backend (every rule in
:mod:`sklearn_ntk.arch.rules` is a handful of array operations).

Evaluation happens in two passes:

1. the *self pass* pushes the pairs ``(x, x)`` of every sample through the network once, giving
   ``diag`` of the kernel and, at the input of every activation / LayerNorm, the per-position
   variances :math:`\\Sigma(x_p, x_p)` (the "variance history");
2. the *pair pass* pushes blocks of pairs ``(x_i, y_j)`` through the network, reading the two
   members' variances from their histories. Only one block of pixel-pair states exists at a time,
   so memory is :math:`O(n m + \\text{block}\\cdot P^2)`.

The activation moments are the closed forms and numerical expectations of
:mod:`sklearn_ntk.backends.fused`, applied elementwise to flat arrays.
"""

from __future__ import annotations

import numba
import numpy as np

from ..arch.rules import Context, KernelState, apply
from . import fused
from .threads import run_tasks

__all__ = ["moments", "self_pass", "pair_pass", "kernel_matrices", "diag_kernels", "working_bytes"]

_BLOCK_BYTES = 48 * 2**20  # target size of one array of a block's pair states


@numba.njit(cache=True, nogil=True)
def _closed_values(i0, i1, code, p0, p1, a, b, c, same, t, td):
    for i in range(i0, i1):
        t[i], td[i] = fused._moments(code, p0, p1, a[i], b[i], c[i], same[i])


@numba.njit(cache=True, nogil=True)
def _closed_grad(i0, i1, code, p0, p1, a, b, c, same, out):
    for i in range(i0, i1):
        r = fused._moments_grad(code, p0, p1, a[i], b[i], c[i], same[i])
        for k in range(8):
            out[k, i] = r[k]


def moments(act, a, b, c, same, grad):
    """Activation moments on flat arrays: ``(T, Tdot)`` or the eight arrays with the partials."""
    a, b, c = (np.ascontiguousarray(v, dtype=np.float64) for v in (a, b, c))
    same = np.ascontiguousarray(same, dtype=np.bool_)
    if act._code is None:
        return fused.numeric_moments(act, a, b, c, same, grad=grad)
    p0, p1 = act._code_params()
    if grad:
        out = np.empty((8, a.shape[0]))
        run_tasks(lambda i0, i1: _closed_grad(i0, i1, act._code, p0, p1, a, b, c, same, out),
                  a.shape[0])
        return tuple(out)
    t = np.empty(a.shape[0])
    td = np.empty(a.shape[0])
    run_tasks(lambda i0, i1: _closed_values(i0, i1, act._code, p0, p1, a, b, c, same, t, td),
              a.shape[0])
    return t, td


def _input_state(plan, X, Y, rows, cols, same, n_comp):
    """The input 'kernel' x_p . y_q / C of the pairs (rows, cols); the NTK starts at zero."""
    C = plan.input_shape[-1]
    P = int(np.prod(plan.spatial)) if plan.spatial else 0
    if P:
        Xr = X.reshape(X.shape[0], P, C)[rows]
        Yc = Y.reshape(Y.shape[0], P, C)[cols]
        if plan.input_full:
            gram = np.einsum("ipc,iqc->ipq", Xr, Yc)
        else:
            gram = np.einsum("ipc,ipc->ip", Xr, Yc)
    else:
        gram = np.einsum("ic,ic->i", X[rows], Y[cols])
    gram /= C
    nngp = np.zeros((n_comp,) + gram.shape)
    nngp[0] = gram
    return KernelState(nngp, np.zeros_like(nngp), plan.spatial, plan.input_full, same)


def self_pass(plan, X, w2, b2, grad):
    """Push every pair ``(x, x)`` through the network (in blocks of samples).

    Returns
    -------
    final : KernelState
        The output state of the pairs (non-spatial): ``nngp``, ``ntk`` of shape ``(K, n)``.
    history : dict
        ``op.index -> (K, n[, P])`` per-position variances at the input of every activation and
        LayerNorm.
    """
    n = X.shape[0]
    step = _pairs_per_block(plan, 3 if grad else 1)
    parts = [_self_block(plan, X[i : i + step], w2, b2, grad) for i in range(0, n, step)]
    if len(parts) == 1:
        return parts[0]
    final = KernelState(
        np.concatenate([p[0].nngp for p in parts], axis=1),
        np.concatenate([p[0].ntk for p in parts], axis=1),
        (),
        False,
        np.ones(n, dtype=bool),
    )
    history = {k: np.concatenate([p[1][k] for p in parts], axis=1) for k in parts[0][1]}
    return final, history


def _self_block(plan, X, w2, b2, grad):
    history = {}

    def variances(op, state):
        v = state.nngp if op.kind == "attention" else state.pixel_diagonal()
        history[op.index] = v
        return v, v

    n = X.shape[0]
    idx = np.arange(n)
    ctx = Context(w2, b2, grad, moments, variances)
    state = _input_state(plan, X, X, idx, idx, np.ones(n, dtype=bool), 3 if grad else 1)
    return apply(plan.root, state, ctx), history


def pair_pass(plan, X, Y, hist_x, hist_y, rows, cols, same, w2, b2, grad):
    """Push the pairs ``(X[rows], Y[cols])`` through the network; returns the final state."""

    def variances(op, state):
        return hist_x[op.index][:, rows], hist_y[op.index][:, cols]

    ctx = Context(w2, b2, grad, moments, variances)
    state = _input_state(plan, X, Y, rows, cols, same, 3 if grad else 1)
    return apply(plan.root, state, ctx)


def working_bytes(plan, n_comp, n_pairs):
    """Memory of one block of pair states and its temporaries (for the memory guard).

    ``n_pairs`` is the number of pairs (or samples of a self pass) evaluated: a block never holds
    more of them."""
    P = int(np.prod(plan.spatial)) if plan.spatial else 1
    per_pair = n_comp * 8 * (P * P if plan.input_full else P) * 2
    return 8 * per_pair * max(1, min(_pairs_per_block(plan, n_comp), n_pairs))


def _pairs_per_block(plan, n_comp):
    P = int(np.prod(plan.spatial)) if plan.spatial else 1
    per_pair = n_comp * 8 * (P * P if plan.input_full else P) * 2
    return max(1, _BLOCK_BYTES // per_pair)


def kernel_matrices(plan, X, Y, w2, b2, grad=False):
    """NNGP and NTK for all pairs (``Y is None``: the symmetric k(X), upper triangle mirrored).

    Returns
    -------
    nngp, ntk : ndarray of shape (K, n, m)
        ``K = 3`` with ``grad`` (value, d/dlog sigma_b, d/dlog sigma_w), else 1.
    """
    sym = Y is None
    _, hx = self_pass(plan, X, w2, b2, grad)
    hy = hx if sym else self_pass(plan, Y, w2, b2, grad)[1]
    Yv = X if sym else Y
    n, m = X.shape[0], Yv.shape[0]
    K = 3 if grad else 1
    nngp = np.empty((K, n, m))
    ntk = np.empty((K, n, m))
    if sym:
        rows, cols = np.triu_indices(n)
    else:
        rows, cols = np.divmod(np.arange(n * m), m)
    step = _pairs_per_block(plan, K)
    for start in range(0, rows.shape[0], step):
        r, c = rows[start : start + step], cols[start : start + step]
        same = (r == c) if sym else np.zeros(r.shape[0], dtype=bool)
        out = pair_pass(plan, X, Yv, hx, hy, r, c, same, w2, b2, grad)
        nngp[:, r, c] = out.nngp
        ntk[:, r, c] = out.ntk
        if sym:
            nngp[:, c, r] = out.nngp
            ntk[:, c, r] = out.ntk
    return nngp, ntk


def diag_kernels(plan, X, w2, b2, grad=False):
    """``(nngp, ntk)`` of every pair ``(x, x)``, each of shape ``(K, n)``, from the self pass."""
    final, _ = self_pass(plan, X, w2, b2, grad)
    return final.nngp, final.ntk
