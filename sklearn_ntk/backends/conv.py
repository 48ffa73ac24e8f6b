"""Compiled evaluator of convolutional chains: ``[Conv|Dense -> phi] x L -> GAP|GSP|Flatten -> MLP``.

An optimisation of :mod:`sklearn_ntk.backends.reference` (tested equal to it) for the networks
that matter most in practice: a chain of Conv / Dense layers and closed-form activations, one
global reduction (GlobalAvgPool, GlobalSumPool or Flatten) and a fully-connected tail.

Each pair of samples is pushed through the whole network inside one compiled function, with its
pixel-pair state (``P x P`` values, or ``P`` for Flatten networks, which only need the pixel
diagonal) in per-thread scratch buffers: the convolution is applied one spatial axis at a time
(separable), the activation reads the per-position variances of the two samples from the self pass
(computed once per sample by the reference evaluator), and ``k(X)`` only computes the upper
triangle. Memory is ``O(n m + threads * P^2)``.

The plan is encoded as small integer / float tables (one row per op); :func:`encode` returns
``None`` for any network outside this family, which then runs on the reference evaluator.
"""

from __future__ import annotations

import numba
import numpy as np

from . import fused

__all__ = ["encode", "pairs", "self_pass"]

_jit = numba.njit(cache=True, fastmath=False, error_model="numpy")
_pjit = numba.njit(cache=True, fastmath=False, parallel=True, error_model="numpy")

OP_CONV, OP_ACT, OP_GAP, OP_GSP, OP_FLATTEN = 0, 1, 2, 3, 4
_MAX_K = 16


def _chain(node):
    """The leaf ops of a plan node that is a plain serial chain, else ``None``."""
    from ..arch.plan import Op, SerialNode

    if isinstance(node, Op):
        return [node]
    if not isinstance(node, SerialNode):
        return None
    ops = []
    for child in node.children:
        sub = _chain(child)
        if sub is None:
            return None
        ops.extend(sub)
    return ops


def encode(plan, w2, b2):
    """Tables of the compiled interpreter, or ``None`` if the network is outside its family."""
    ops = _chain(plan.root)
    if ops is None or len(plan.spatial) > 3:
        return None
    n_ops = len(ops)
    iops = np.zeros((n_ops, 4), dtype=np.int64)  # kind, hist slot, full, act code | pointwise
    fops = np.zeros((n_ops, 4))  # w2, b2, scale | p0, p1
    dims = np.ones((n_ops, 3, 3), dtype=np.int64)  # per axis: n_in, n_out, k
    act_ops, reduced = [], False
    max_out = 1
    for op in ops:
        if op.kind == "conv":
            max_out = max(max_out, max(a[4] for a in op.params["axes"]))
    tabs = -np.ones((n_ops, 3, max_out, _MAX_K), dtype=np.int64)
    for r, op in enumerate(ops):
        iops[r, 2] = op.full
        if op.kind in ("conv", "dense"):
            iops[r, 0] = OP_CONV
            w = w2 if op.params["w2"] is None else op.params["w2"]
            b = b2 if op.params["b2"] is None else op.params["b2"]
            fops[r, :3] = (w, b, 1.0)
            if op.kind == "conv":
                if reduced or not _conv_tables(op, dims[r], tabs[r], fops[r]):
                    return None
            else:
                iops[r, 3] = 1  # pointwise
        elif op.kind == "act":
            act = op.params["act"]
            if act._code is None:
                return None
            iops[r, 0] = OP_ACT
            iops[r, 1] = len(act_ops)
            iops[r, 3] = act._code
            fops[r, :2] = act._code_params()
            act_ops.append(op)
        elif op.kind in ("gap", "gsp", "flatten"):
            if reduced:
                return None
            reduced = True
            iops[r, 0] = {"gap": OP_GAP, "gsp": OP_GSP, "flatten": OP_FLATTEN}[op.kind]
        else:
            return None
    return iops, fops, dims, tabs, act_ops


def _conv_tables(op, dims, tabs, fops):
    """Fill the per-axis index tables of a Conv: input index of (output, offset), -1 if padding."""
    axes = op.params["axes"]
    circular = op.params["padding"] == "circular"
    if len(axes) > 3 or any(a[0] > _MAX_K for a in axes):
        return False
    for ax, (k, s, lo, n_in, n_out) in enumerate(axes):
        dims[ax] = (n_in, n_out, k)
        for o in range(n_out):
            for d in range(k):
                i = o * s - lo + d
                if circular:
                    i %= n_in
                tabs[ax, o, d] = i if 0 <= i < n_in else -1
    for ax in range(len(axes), 3):
        dims[ax] = (1, 1, 1)
        tabs[ax, 0, 0] = 0
    fops[2] = 1.0 / np.prod([a[0] for a in axes])
    return True


# --------------------------------------------------------------------------------------------------
# compiled interpreter
# --------------------------------------------------------------------------------------------------
@_jit
def _runs(tab, n_out, d, runs):
    """Group the outputs of offset ``d`` into runs read from consecutive inputs.

    Fills ``runs[r] = (first output, length, first input)``; returns the number of runs.
    """
    n_runs = 0
    o = 0
    while o < n_out:
        i = tab[o, d]
        if i < 0:
            o += 1
            continue
        length = 1
        while o + length < n_out and tab[o + length, d] == i + length:
            length += 1
        runs[n_runs, 0] = o
        runs[n_runs, 1] = length
        runs[n_runs, 2] = i
        n_runs += 1
        o += length
    return n_runs


@_jit
def _conv_axis(src_n, src_t, dst_n, dst_t, A, n_in, B, n_out, k, tab, full):
    """Sum over the filter offsets along one axis (both pixels shifted alike when ``full``).

    The state is laid out as ``(A, n, B)`` per pixel (``(A, n, B, A, n, B)`` when ``full``);
    every inner loop adds a contiguous run of the source to a contiguous run of the destination.
    """
    row_out = A * n_out * B
    row_in = A * n_in * B
    size = row_out * row_out if full else row_out
    for e in range(size):
        dst_n[e] = 0.0
        dst_t[e] = 0.0
    runs = np.empty((n_out, 3), dtype=np.int64)
    for d in range(k):
        n_runs = _runs(tab, n_out, d, runs)
        for a1 in range(A):
            for r1 in range(n_runs):
                for o1 in range(runs[r1, 1]):
                    base_out = (a1 * n_out + runs[r1, 0] + o1) * B
                    base_in = (a1 * n_in + runs[r1, 2] + o1) * B
                    if not full:
                        for b in range(B):
                            dst_n[base_out + b] += src_n[base_in + b]
                            dst_t[base_out + b] += src_t[base_in + b]
                        continue
                    for b1 in range(B):
                        r_out = (base_out + b1) * row_out
                        r_in = (base_in + b1) * row_in
                        for a2 in range(A):
                            for r2 in range(n_runs):
                                so = r_out + (a2 * n_out + runs[r2, 0]) * B
                                si = r_in + (a2 * n_in + runs[r2, 2]) * B
                                for e in range(runs[r2, 1] * B):
                                    dst_n[so + e] += src_n[si + e]
                                    dst_t[so + e] += src_t[si + e]


@_jit
def _run_pair(i, j, same, X, Y, C, full0, P0, iops, fops, dims, tabs, hx, hy, bufs, record):
    """The whole network for the pair (X[i], Y[j]); returns (nngp, ntk).

    With ``record`` (the self pass, ``j == i``) the variances at every activation are written to
    ``hx`` before they are read.
    """
    n0, t0, n1, t1 = bufs[0], bufs[1], bufs[2], bufs[3]
    # input state x_p . y_q / C
    if full0:
        for p in range(P0):
            for q in range(P0):
                s = 0.0
                for c in range(C):
                    s += X[i, p * C + c] * Y[j, q * C + c]
                n0[p * P0 + q] = s / C
                t0[p * P0 + q] = 0.0
    else:
        for p in range(P0):
            s = 0.0
            for c in range(C):
                s += X[i, p * C + c] * Y[j, p * C + c]
            n0[p] = s / C
            t0[p] = 0.0
    P = P0
    full = full0
    spatial = True
    sn = 0.0
    st = 0.0
    for r in range(iops.shape[0]):
        kind = iops[r, 0]
        if kind == 0:  # Conv / Dense
            w2 = fops[r, 0]
            b2 = fops[r, 1]
            if spatial:
                if iops[r, 3] == 0:
                    for ax in range(3):
                        A = 1
                        for ax2 in range(ax):
                            A *= dims[r, ax2, 1]
                        B = 1
                        for ax2 in range(ax + 1, 3):
                            B *= dims[r, ax2, 0]
                        n_in = dims[r, ax, 0]
                        n_out = dims[r, ax, 1]
                        if n_in == n_out and dims[r, ax, 2] == 1 and tabs[r, ax, n_out - 1, 0] == n_in - 1:
                            continue  # a 1-wide filter with stride 1: nothing to sum
                        _conv_axis(n0, t0, n1, t1, A, n_in, B, n_out, dims[r, ax, 2], tabs[r, ax], full)
                        n0, n1 = n1, n0
                        t0, t1 = t1, t0
                    P = dims[r, 0, 1] * dims[r, 1, 1] * dims[r, 2, 1]
                size = P * P if full else P
                scale = fops[r, 2]
                for e in range(size):
                    s = w2 * scale * n0[e] + b2
                    n0[e] = s
                    t0[e] = s + w2 * scale * t0[e]
            else:
                sn = w2 * sn + b2
                st = sn + w2 * st
        elif kind == 1:  # activation
            h = iops[r, 1]
            code = iops[r, 3]
            p0 = fops[r, 0]
            p1 = fops[r, 1]
            if record:
                if not spatial:
                    hx[h, i, 0] = sn
                else:
                    step = P + 1 if full else 1
                    for p in range(P):
                        hx[h, i, p] = n0[p * step]
            if not spatial:
                t, td = fused._moments(code, p0, p1, hx[h, i, 0], hy[h, j, 0], sn, same)
                sn = t
                st = td * st
            elif full:
                for p in range(P):
                    a = hx[h, i, p]
                    for q in range(P):
                        e = p * P + q
                        t, td = fused._moments(code, p0, p1, a, hy[h, j, q], n0[e], same and p == q)
                        n0[e] = t
                        t0[e] = td * t0[e]
            else:
                for p in range(P):
                    t, td = fused._moments(code, p0, p1, hx[h, i, p], hy[h, j, p], n0[p], same)
                    n0[p] = t
                    t0[p] = td * t0[p]
        else:  # GAP, GSP, Flatten
            sn = 0.0
            st = 0.0
            if full and kind != 4:
                for e in range(P * P):
                    sn += n0[e]
                    st += t0[e]
                if kind == 2:
                    sn /= P * P
                    st /= P * P
            else:
                step = P + 1 if full else 1
                for p in range(P):
                    sn += n0[p * step]
                    st += t0[p * step]
                if kind != 3:
                    sn /= P
                    st /= P
            spatial = False
    return sn, st


@_pjit
def _pairs(X, Y, sym, C, full0, P0, size, iops, fops, dims, tabs, hx, hy, nngp, ntk):
    n = X.shape[0]
    m = Y.shape[0]
    n_tasks = (n + 1) // 2 if sym else n
    for task in numba.prange(n_tasks):
        bufs = np.empty((4, size))
        first = np.int64(task)
        for rep in range(2 if sym else 1):
            i = first if rep == 0 else np.int64(n - 1) - first
            if rep == 1 and i == first:
                break
            j0 = i if sym else 0
            for j in range(j0, m):
                s, t = _run_pair(
                    i, j, sym and i == j, X, Y, C, full0, P0, iops, fops, dims, tabs, hx, hy, bufs,
                    False,
                )
                nngp[i, j] = s
                ntk[i, j] = t
                if sym:
                    nngp[j, i] = s
                    ntk[j, i] = t


@_pjit
def _self(X, C, full0, P0, size, iops, fops, dims, tabs, hx, nngp, ntk):
    for i in numba.prange(X.shape[0]):
        bufs = np.empty((4, size))
        s, t = _run_pair(i, i, True, X, X, C, full0, P0, iops, fops, dims, tabs, hx, hx, bufs, True)
        nngp[i] = s
        ntk[i] = t


def _sizes(plan, tables):
    iops, _, dims, _, _ = tables
    P0 = int(np.prod(plan.spatial)) if plan.spatial else 1
    sizes = [P0]
    for r in range(iops.shape[0]):
        if iops[r, 0] == OP_CONV:
            sizes.append(int(np.prod(dims[r, :, 0])))
            sizes.append(int(np.prod(dims[r, :, 1])))
    P_max = max(sizes)
    full0 = bool(plan.input_full and plan.spatial)
    return P0, P_max, (P_max * P_max if full0 else P_max), full0


def self_pass(plan, tables, X):
    """``(nngp, ntk, history)`` of the pairs ``(x, x)``; ``history`` feeds :func:`pairs`."""
    iops, fops, dims, tabs, act_ops = tables
    P0, P_max, size, full0 = _sizes(plan, tables)
    n = X.shape[0]
    hx = np.zeros((max(len(act_ops), 1), n, P_max))
    nngp = np.empty(n)
    ntk = np.empty(n)
    _self(X, plan.input_shape[-1], full0, P0, size, iops, fops, dims, tabs, hx, nngp, ntk)
    return nngp, ntk, hx


def pairs(plan, tables, X, Y=None):
    """``(nngp, ntk)`` of every pair (``Y is None``: k(X), upper triangle computed)."""
    iops, fops, dims, tabs, _ = tables
    P0, _, size, full0 = _sizes(plan, tables)
    sym = Y is None
    Yv = X if sym else Y
    hx = self_pass(plan, tables, X)[2]
    hy = hx if sym else self_pass(plan, tables, Yv)[2]
    nngp = np.empty((X.shape[0], Yv.shape[0]))
    ntk = np.empty_like(nngp)
    C = plan.input_shape[-1]
    _pairs(X, Yv, sym, C, full0, P0, size, iops, fops, dims, tabs, hx, hy, nngp, ntk)
    return nngp, ntk
