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

# the closed forms of fused._moments (the same Python function), compiled inline into the
# activation loop so that the activation switch is hoisted out of it
_moments = numba.njit(cache=True, inline="always", error_model="numpy")(fused._moments.py_func)
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
    runs, n_runs, covers = _run_tables(tabs, dims)
    return iops, fops, dims, runs, n_runs, covers, act_ops


def _run_tables(tabs, dims):
    """Group, per op, axis and filter offset, the outputs into runs read from consecutive inputs.

    ``runs[r, ax, d, k] = (first output, length, first input)``, ``n_runs[r, ax, d]`` runs;
    ``n_runs[r, ax, 0] = -1`` marks an identity axis (1-wide filter, stride 1);
    ``covers[r, ax] = 1`` says that the first offset's runs cover every output.
    """
    n_ops, _, max_out, max_k = tabs.shape
    runs = np.zeros((n_ops, 3, max_k, max_out, 3), dtype=np.int64)
    n_runs = np.zeros((n_ops, 3, max_k), dtype=np.int64)
    covers = np.zeros((n_ops, 3), dtype=np.int64)
    for r in range(n_ops):
        for ax in range(3):
            n_in, n_out, k = dims[r, ax]
            if k == 1 and n_in == n_out and all(tabs[r, ax, o, 0] == o for o in range(n_out)):
                n_runs[r, ax, 0] = -1
                continue
            for d in range(k):
                o = 0
                while o < n_out:
                    i = tabs[r, ax, o, d]
                    if i < 0:
                        o += 1
                        continue
                    length = 1
                    while o + length < n_out and tabs[r, ax, o + length, d] == i + length:
                        length += 1
                    runs[r, ax, d, n_runs[r, ax, d]] = (o, length, i)
                    n_runs[r, ax, d] += 1
                    o += length
            # an offset whose runs cover every output goes first (it assigns instead of adding)
            cover = [int(runs[r, ax, d, : n_runs[r, ax, d], 1].sum()) for d in range(k)]
            if n_out in cover:
                d0 = cover.index(n_out)
                order = [d0] + [d for d in range(k) if d != d0]
                runs[r, ax, :k] = runs[r, ax, order].copy()
                n_runs[r, ax, :k] = n_runs[r, ax, order].copy()
                n_runs[r, ax, k:] = 0
                covers[r, ax] = 1
    return runs, n_runs, covers


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
def _add(dst, so, src, si, length, assign):
    """``dst[so:so + length] (+)= src[si:si + length]`` (unsigned indices: vectorisable)."""
    d = dst[so : so + length]
    s = src[si : si + length]
    if assign:
        for e in range(np.uint64(length)):
            d[e] = s[e]
    else:
        for e in range(np.uint64(length)):
            d[e] += s[e]


@_jit
def _conv_axis(src_n, src_t, dst_n, dst_t, A, n_in, B, n_out, k, runs, n_runs_d, cover, full):
    """Sum over the filter offsets along one axis (both pixels shifted alike when ``full``).

    The state is laid out as ``(A, n, B)`` per pixel (``(A, n, B, A, n, B)`` when ``full``);
    every inner loop adds a contiguous run of the source to a contiguous run of the destination.
    """
    row_out = A * n_out * B
    row_in = A * n_in * B
    size = row_out * row_out if full else row_out
    if not cover:
        for e in range(size):
            dst_n[e] = 0.0
            dst_t[e] = 0.0
    for d in range(k):
        assign = cover and d == 0
        n_runs = n_runs_d[d]
        for a1 in range(A):
            for r1 in range(n_runs):
                for o1 in range(runs[d, r1, 1]):
                    base_out = (a1 * n_out + runs[d, r1, 0] + o1) * B
                    base_in = (a1 * n_in + runs[d, r1, 2] + o1) * B
                    if not full and B == 1:
                        if assign:
                            dst_n[base_out] = src_n[base_in]
                            dst_t[base_out] = src_t[base_in]
                        else:
                            dst_n[base_out] += src_n[base_in]
                            dst_t[base_out] += src_t[base_in]
                        continue
                    if not full:
                        _add(dst_n, base_out, src_n, base_in, B, assign)
                        _add(dst_t, base_out, src_t, base_in, B, assign)
                        continue
                    for b1 in range(B):
                        r_out = (base_out + b1) * row_out
                        r_in = (base_in + b1) * row_in
                        for a2 in range(A):
                            for r2 in range(n_runs):
                                so = r_out + (a2 * n_out + runs[d, r2, 0]) * B
                                si = r_in + (a2 * n_in + runs[d, r2, 2]) * B
                                _add(dst_n, so, src_n, si, runs[d, r2, 1] * B, assign)
                                _add(dst_t, so, src_t, si, runs[d, r2, 1] * B, assign)


@_jit
def _input(i, j, X, Y, C, full, P, n0, t0):
    """The input state ``x_p . y_q / C`` (every pair of positions, or the diagonal)."""
    for p in range(P):
        for q in range(P if full else 1):
            q2 = q if full else p
            s = 0.0
            for c in range(C):
                s += X[i, p * C + c] * Y[j, q2 * C + c]
            e = p * P + q if full else p
            n0[e] = s / C
            t0[e] = 0.0


@_jit
def _conv(r, dims, runs, n_runs, covers, full, bufs, cur):
    """Separable convolution of the state ``bufs[cur], bufs[cur + 1]``; returns the new ``cur``."""
    for ax in range(3):
        A = 1
        for ax2 in range(ax):
            A *= dims[r, ax2, 1]
        B = 1
        for ax2 in range(ax + 1, 3):
            B *= dims[r, ax2, 0]
        n_in = dims[r, ax, 0]
        n_out = dims[r, ax, 1]
        if n_runs[r, ax, 0] < 0:
            continue  # a 1-wide filter with stride 1: nothing to sum
        nxt = 2 - cur
        _conv_axis(bufs[cur], bufs[cur + 1], bufs[nxt], bufs[nxt + 1], A, n_in, B, n_out,
                   dims[r, ax, 2], runs[r, ax], n_runs[r, ax], covers[r, ax], full)
        cur = nxt
    return cur


@_jit
def _affine(n0, t0, size, w2, b2, scale):
    """Dense/Conv weights and bias: Sigma' = w2 s Sigma + b2, Theta' = Sigma' + w2 s Theta."""
    for e in range(size):
        s = w2 * scale * n0[e] + b2
        n0[e] = s
        t0[e] = s + w2 * scale * t0[e]


@_jit
def _activation(code, p0, p1, va, vb, same, full, P, n0, t0):
    """Sigma' = T(a, b, Sigma), Theta' = Tdot(a, b, Sigma) Theta at every stored entry."""
    for p in range(P):
        a = va[p]
        for q in range(P if full else 1):
            e = p * P + q if full else p
            b = vb[q] if full else vb[p]
            t, td = _moments(code, p0, p1, a, b, n0[e], same and (p == q or not full))
            n0[e] = t
            t0[e] = td * t0[e]


@_jit
def _reduce(kind, full, P, n0, t0):
    """GlobalAvgPool (mean of all pairs), GlobalSumPool (their sum), Flatten (diagonal mean)."""
    sn = 0.0
    st = 0.0
    if full and kind != OP_FLATTEN:
        for e in range(P * P):
            sn += n0[e]
            st += t0[e]
        norm = P * P if kind == OP_GAP else 1
    else:
        step = P + 1 if full else 1
        for p in range(P):
            sn += n0[p * step]
            st += t0[p * step]
        norm = 1 if kind == OP_GSP else P
    return sn / norm, st / norm


@_jit
def _run_pair(i, j, same, X, Y, C, full, P0, iops, fops, dims, runs, n_runs, covers, hx, hy, bufs, record):
    """The whole network for the pair (X[i], Y[j]); returns (nngp, ntk).

    With ``record`` (the self pass, ``j == i``) the variances at every activation are written to
    ``hx`` before they are read.
    """
    cur = 0
    _input(i, j, X, Y, C, full, P0, bufs[0], bufs[1])
    P = P0
    spatial = True
    sn = 0.0
    st = 0.0
    for r in range(iops.shape[0]):
        kind = iops[r, 0]
        if kind == OP_CONV and spatial:
            if iops[r, 3] == 0:
                cur = _conv(r, dims, runs, n_runs, covers, full, bufs, cur)
                P = dims[r, 0, 1] * dims[r, 1, 1] * dims[r, 2, 1]
            _affine(bufs[cur], bufs[cur + 1], P * P if full else P, fops[r, 0], fops[r, 1], fops[r, 2])
        elif kind == OP_CONV:
            sn = fops[r, 0] * sn + fops[r, 1]
            st = sn + fops[r, 0] * st
        elif kind == OP_ACT:
            h = iops[r, 1]
            if record:
                if spatial:
                    step = P + 1 if full else 1
                    for p in range(P):
                        hx[h, i, p] = bufs[cur, p * step]
                else:
                    hx[h, i, 0] = sn
            if spatial:
                _activation(iops[r, 3], fops[r, 0], fops[r, 1], hx[h, i], hy[h, j], same, full, P,
                            bufs[cur], bufs[cur + 1])
            else:
                t, td = fused._moments(iops[r, 3], fops[r, 0], fops[r, 1], hx[h, i, 0], hy[h, j, 0],
                                       sn, same)
                sn = t
                st = td * st
        else:
            sn, st = _reduce(kind, full, P, bufs[cur], bufs[cur + 1])
            spatial = False
    if spatial:  # no spatial axes at all: the input was a plain vector (one "position")
        return bufs[cur, 0], bufs[cur + 1, 0]
    return sn, st


@_pjit
def _pairs(X, Y, sym, C, full0, P0, size, iops, fops, dims, runs, n_runs, covers, hx, hy, nngp, ntk):
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
                    i, j, sym and i == j, X, Y, C, full0, P0, iops, fops, dims, runs, n_runs, covers, hx, hy, bufs,
                    False,
                )
                nngp[i, j] = s
                ntk[i, j] = t
                if sym:
                    nngp[j, i] = s
                    ntk[j, i] = t


@_pjit
def _self(X, C, full0, P0, size, iops, fops, dims, runs, n_runs, covers, hx, nngp, ntk):
    for i in numba.prange(X.shape[0]):
        bufs = np.empty((4, size))
        s, t = _run_pair(i, i, True, X, X, C, full0, P0, iops, fops, dims, runs, n_runs, covers, hx, hx, bufs, True)
        nngp[i] = s
        ntk[i] = t


def _sizes(plan, tables):
    iops, dims = tables[0], tables[2]
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
    iops, fops, dims, runs, n_runs, covers, act_ops = tables
    P0, P_max, size, full0 = _sizes(plan, tables)
    n = X.shape[0]
    hx = np.zeros((max(len(act_ops), 1), n, P_max))
    nngp = np.empty(n)
    ntk = np.empty(n)
    _self(X, plan.input_shape[-1], full0, P0, size, iops, fops, dims, runs, n_runs, covers, hx, nngp, ntk)
    return nngp, ntk, hx


def pairs(plan, tables, X, Y=None):
    """``(nngp, ntk)`` of every pair (``Y is None``: k(X), upper triangle computed)."""
    iops, fops, dims, runs, n_runs, covers, _ = tables
    P0, _, size, full0 = _sizes(plan, tables)
    sym = Y is None
    Yv = X if sym else Y
    hx = self_pass(plan, tables, X)[2]
    hy = hx if sym else self_pass(plan, tables, Yv)[2]
    nngp = np.empty((X.shape[0], Yv.shape[0]))
    ntk = np.empty_like(nngp)
    C = plan.input_shape[-1]
    _pairs(X, Yv, sym, C, full0, P0, size, iops, fops, dims, runs, n_runs, covers, hx, hy, nngp, ntk)
    return nngp, ntk
