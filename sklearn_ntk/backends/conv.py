"""Compiled evaluator of convolutional chains: ``[Conv|Dense -> phi] x L -> GAP|GSP|Flatten -> MLP``.

An optimisation of :mod:`sklearn_ntk.backends.reference` (tested equal to it) for the networks
that matter most in practice: a chain of Conv / Dense layers and closed-form activations, one
global reduction (GlobalAvgPool, GlobalSumPool or Flatten) and a fully-connected tail.

Each pair of samples is pushed through the whole network inside one compiled function, with its
pixel-pair state (``P x P`` values, or ``P`` for Flatten networks, which only need the pixel
diagonal) in scratch buffers: the convolution is applied one spatial axis at a time
(separable), the activation reads the per-position variances of the two samples from the self pass
(computed once per sample), and ``k(X)`` only computes the upper triangle.
Rows of the output are tasks, run in blocks taken from a queue by GIL-free threads
(:func:`~sklearn_ntk.backends.threads.run_tasks`), one set of scratch buffers per block; memory is
``O(n m + threads * P^2)``. With ``grad`` every state entry carries its two
forward-mode tangents (d/dlog sigma_b, d/dlog sigma_w) as extra components: linear maps act on
each component alike, Dense/Conv and the activations add their own terms (the partials of the
closed forms, ``fused._moments_grad``).

The plan is encoded as small integer / float tables (one row per op); :func:`encode` returns
``None`` for any network outside this family, which then runs on the reference evaluator.
"""

from __future__ import annotations

import numba
import numpy as np

from . import fused
from .threads import borrowed, run_tasks, thread_count

__all__ = ["encode", "pairs", "self_pass", "working_bytes"]

_jit = numba.njit(cache=True, fastmath=False, error_model="numpy")
_nogil = numba.njit(cache=True, fastmath=False, error_model="numpy", nogil=True)
_ijit = numba.njit(cache=True, fastmath=False, error_model="numpy", inline="always")

OP_CONV, OP_ACT, OP_GAP, OP_GSP, OP_FLATTEN = 0, 1, 2, 3, 4

# the closed forms of fused._moments (the same Python function), compiled inline into the
# activation loop so that the activation switch is hoisted out of it
_moments = numba.njit(cache=True, inline="always", error_model="numpy")(fused._moments.py_func)
_moments_grad = numba.njit(cache=True, inline="always", error_model="numpy")(
    fused._moments_grad.py_func
)
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
    # kind, hist slot, full, act code | pointwise, weight_std free, bias_std free
    iops = np.zeros((n_ops, 6), dtype=np.int64)
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
            iops[r, 4] = op.params["w2"] is None
            iops[r, 5] = op.params["b2"] is None
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

    One component of the state, laid out as ``(A, n, B)`` per pixel (``(A, n, B, A, n, B)`` when
    ``full``); every inner loop adds a contiguous run of the source to a contiguous run of the
    destination.
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
    size = P * P if full else P
    n0[:, :size] = 0.0
    t0[:, :size] = 0.0
    for p in range(P):
        for q in range(P if full else 1):
            q2 = q if full else p
            s = 0.0
            for c in range(C):
                s += X[i, p * C + c] * Y[j, q2 * C + c]
            n0[0, p * P + q if full else p] = s / C


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
        for c in range(bufs.shape[1]):  # a linear map: the same for the value and its tangents
            _conv_axis(bufs[cur, c], bufs[cur + 1, c], bufs[nxt, c], bufs[nxt + 1, c], A, n_in, B,
                       n_out, dims[r, ax, 2], runs[r, ax], n_runs[r, ax], covers[r, ax], full)
        cur = nxt
    return cur


@_jit
def _affine(n0, t0, size, w2, b2, scale, w_free, b_free):
    """Dense/Conv: Sigma' = w2 s Sigma + b2, Theta' = Sigma' + w2 s Theta, with tangents.

    Component 1 is d/dlog sigma_b (adds 2 b2 when the bias is the kernel's), component 2
    d/dlog sigma_w (adds 2 w2 s Sigma, resp. 2 w2 s Theta, when the weight is the kernel's).
    """
    ws = w2 * scale
    grad = n0.shape[0] > 1
    for e in range(size):
        sv = ws * n0[0, e]
        tv = ws * t0[0, e]
        n0[0, e] = sv + b2
        t0[0, e] = sv + b2 + tv
        if grad:
            db = ws * n0[1, e] + (2.0 * b2 if b_free else 0.0)
            dw = ws * n0[2, e] + (2.0 * sv if w_free else 0.0)
            n0[1, e] = db
            n0[2, e] = dw
            t0[1, e] = db + ws * t0[1, e]
            t0[2, e] = dw + ws * t0[2, e] + (2.0 * tv if w_free else 0.0)


@_jit
def _activation(code, p0, p1, va, vb, same, full, P, n0, t0):
    """Sigma' = T(a, b, Sigma), Theta' = Tdot(a, b, Sigma) Theta at every stored entry."""
    if n0.shape[0] > 1:
        _activation_grad(code, p0, p1, va, vb, same, full, P, n0, t0)
        return
    nv, tv, a_, b_ = n0[0], t0[0], va[0], vb[0]
    if fused._is_angle(code):
        _angle_activation(code, p0, p1, a_, b_, same, full, P, nv, tv)
        return
    for p in range(P):
        a = a_[p]
        for q in range(P if full else 1):
            e = p * P + q if full else p
            b = b_[q] if full else b_[p]
            t, td = _moments(code, p0, p1, a, b, nv[e], same and (p == q or not full))
            nv[e] = t
            tv[e] = td * tv[e]


@_jit
def _angle_activation(code, p0, p1, a_, b_, same, full, P, nv, tv):
    """:func:`_activation` for angle activations: vectorised rows, then the exact ``same`` entries."""
    sa = np.sqrt(a_)
    sb = np.sqrt(b_)
    keep = np.empty((2, P))
    for p in range(P):  # the entries a sample pairs with itself, before they are overwritten
        e = p * P + p if full else p
        keep[0, p] = nv[e]
        keep[1, p] = tv[e]
    if full:
        for p in range(P):
            row = slice(p * P, p * P + P)
            ap, sap = a_[p : p + 1], sa[p : p + 1]
            fused.angle_activation(code, p0, p1, ap, sap, b_, sb, nv[row], tv[row])
    else:
        fused.angle_activation(code, p0, p1, a_, sa, b_, sb, nv, tv)
    if not same:
        return
    for p in range(P):
        e = p * P + p if full else p
        t, td = _moments(code, p0, p1, a_[p], b_[p], keep[0, p], True)
        nv[e] = t
        tv[e] = td * keep[1, p]


@_jit
def _activation_grad(code, p0, p1, va, vb, same, full, P, n0, t0):
    """:func:`_activation` with the tangents (components 1, 2) through the closed forms' partials."""
    if fused._is_angle(code):
        _angle_activation_grad(code, p0, p1, va, vb, same, full, P, n0, t0)
        return
    for p in range(P):
        for q in range(P if full else 1):
            e = p * P + q if full else p
            qq = q if full else p
            r = _moments_grad(
                code, p0, p1, va[0, p], vb[0, qq], n0[0, e], same and (p == q or not full)
            )
            _chain_entry(r, va, vb, p, qq, e, n0, t0)


@_ijit
def _chain_entry(r, va, vb, p, q, e, n0, t0):
    """Apply the moments and partials ``r`` of :func:`fused._moments_grad` to entry ``e``."""
    t, td, ta, tb, tc, tda, tdb, tdc = r
    for k in range(1, 3):
        da = va[k, p]
        db = vb[k, q]
        dc = n0[k, e]
        n0[k, e] = ta * da + tb * db + tc * dc
        t0[k, e] = (tda * da + tdb * db + tdc * dc) * t0[0, e] + td * t0[k, e]
    n0[0, e] = t
    t0[0, e] = td * t0[0, e]


@_jit
def _angle_activation_grad(code, p0, p1, va, vb, same, full, P, n0, t0):
    """:func:`_activation_grad` for angle activations: branch-free loops over the entries
    (:func:`fused._angle_partials`), then the exact ``same`` entries by the scalar branch."""
    relu, diff2, even = fused._angle_params(code, p0, p1)
    sa = np.sqrt(va[0])
    sb = np.sqrt(vb[0])
    keep = np.empty((6, P))
    for p in range(P):  # the entries a sample pairs with itself, before they are overwritten
        e = p * P + p if full else p
        for k in range(3):
            keep[k, p] = n0[k, e]
            keep[3 + k, p] = t0[k, e]
    if full:
        for p in range(P):
            a, s = va[0, p], sa[p]
            for q in range(P):
                e = np.uint64(p * P) + np.uint64(q)  # unsigned: no wraparound, the loop vectorises
                r = fused._angle_partials(relu, diff2, even, a, vb[0, q], s * sb[q], n0[0, e])
                _chain_entry(r, va, vb, p, q, e, n0, t0)
    else:
        for p in range(P):
            r = fused._angle_partials(relu, diff2, even, va[0, p], vb[0, p], sa[p] * sb[p], n0[0, p])
            _chain_entry(r, va, vb, p, p, p, n0, t0)
    if not same:
        return
    for p in range(P):
        e = p * P + p if full else p
        for k in range(3):
            n0[k, e] = keep[k, p]
            t0[k, e] = keep[3 + k, p]
        r = _moments_grad(code, p0, p1, va[0, p], vb[0, p], n0[0, e], True)
        _chain_entry(r, va, vb, p, p, e, n0, t0)


@_jit
def _reduce(kind, full, P, n0, t0, out):
    """GlobalAvgPool (mean of all pairs), GlobalSumPool (their sum), Flatten (diagonal mean).

    Writes the reduced NNGP / NTK components to ``out[0, 0, :]`` / ``out[1, 0, :]``.
    """
    for k in range(n0.shape[0]):
        sn = 0.0
        st = 0.0
        if full and kind != OP_FLATTEN:
            for e in range(P * P):
                sn += n0[k, e]
                st += t0[k, e]
            norm = P * P if kind == OP_GAP else 1
        else:
            step = P + 1 if full else 1
            for p in range(P):
                sn += n0[k, p * step]
                st += t0[k, p * step]
            norm = 1 if kind == OP_GSP else P
        out[0, k, 0] = sn / norm
        out[1, k, 0] = st / norm


@_jit
def _record(hx, h, i, n0, full, P):
    """The self pass: store the per-position variances (and tangents) at an activation."""
    step = P + 1 if full else 1
    for k in range(n0.shape[0]):
        for p in range(P):
            hx[h, i, k, p] = n0[k, p * step]


@_jit
def _run_pair(i, j, same, X, Y, C, full, P0, iops, fops, dims, runs, n_runs, covers, hx, hy, bufs,
              tail, record):
    """The whole network for the pair (X[i], Y[j]); the result is left in ``tail[:, :, 0]``.

    With ``record`` (the self pass, ``j == i``) the variances at every activation are written to
    ``hx`` before they are read. After the global readout the state lives in ``tail`` (one
    "position", diagonal layout).
    """
    cur = 0
    _input(i, j, X, Y, C, full, P0, bufs[0], bufs[1])
    n0, t0 = bufs[0], bufs[1]
    P = P0
    reduced = False
    for r in range(iops.shape[0]):
        kind = iops[r, 0]
        if kind == OP_CONV:
            if iops[r, 3] == 0:
                cur = _conv(r, dims, runs, n_runs, covers, full, bufs, cur)
                P = dims[r, 0, 1] * dims[r, 1, 1] * dims[r, 2, 1]
                n0, t0 = bufs[cur], bufs[cur + 1]
            _affine(n0, t0, P * P if full else P, fops[r, 0], fops[r, 1], fops[r, 2],
                    iops[r, 4] == 1, iops[r, 5] == 1)
        elif kind == OP_ACT:
            h = iops[r, 1]
            if record:
                _record(hx, h, i, n0, full, P)
            _activation(iops[r, 3], fops[r, 0], fops[r, 1], hx[h, i], hy[h, j], same, full, P,
                        n0, t0)
        else:
            _reduce(kind, full, P, n0, t0, tail)
            n0, t0 = tail[0], tail[1]
            P = 1
            full = False
            reduced = True
    if not reduced:  # a plain vector input (one "position"): copy the result out
        for k in range(n0.shape[0]):
            tail[0, k, 0] = n0[k, 0]
            tail[1, k, 0] = t0[k, 0]


@_nogil
def _pair_tasks(t0, t1, X, Y, sym, C, full0, P0, size, iops, fops, dims, runs, n_runs, covers, hx,
                hy, out):
    """Tasks ``t0 .. t1 - 1`` of the pair pass on the calling thread, without the GIL.

    Task ``t`` is row ``t`` of the output (``j >= i`` only for ``k(X)``, paired with row
    ``n - 1 - t`` so that every task has about the same work); one set of scratch buffers serves
    the whole block of tasks.
    """
    X, Y, iops, fops, dims = borrowed(X), borrowed(Y), borrowed(iops), borrowed(fops), borrowed(dims)
    runs, n_runs, covers = borrowed(runs), borrowed(n_runs), borrowed(covers)
    hx, hy, out = borrowed(hx), borrowed(hy), borrowed(out)
    n = X.shape[0]
    m = Y.shape[0]
    K = out.shape[1]
    bufs = np.empty((4, K, size))
    tail = np.empty((2, K, 1))
    for task in range(t0, t1):
        first = np.int64(task)
        for rep in range(2 if sym else 1):
            i = first if rep == 0 else np.int64(n - 1) - first
            if rep == 1 and i == first:
                break
            for j in range(i if sym else 0, m):
                _run_pair(i, j, sym and i == j, X, Y, C, full0, P0, iops, fops, dims, runs,
                          n_runs, covers, hx, hy, bufs, tail, False)
                for a in range(2):
                    for k in range(K):
                        out[a, k, i, j] = tail[a, k, 0]
                        if sym:
                            out[a, k, j, i] = tail[a, k, 0]


@_nogil
def _self_tasks(t0, t1, X, C, full0, P0, size, iops, fops, dims, runs, n_runs, covers, hx, out):
    """Samples ``t0 .. t1 - 1`` with themselves (recording their variances), without the GIL."""
    X, iops, fops, dims = borrowed(X), borrowed(iops), borrowed(fops), borrowed(dims)
    runs, n_runs, covers = borrowed(runs), borrowed(n_runs), borrowed(covers)
    hx, out = borrowed(hx), borrowed(out)
    K = out.shape[1]
    bufs = np.empty((4, K, size))
    tail = np.empty((2, K, 1))
    for i in range(t0, t1):
        _run_pair(i, i, True, X, X, C, full0, P0, iops, fops, dims, runs, n_runs, covers, hx, hx,
                  bufs, tail, True)
        for a in range(2):
            for k in range(K):
                out[a, k, i] = tail[a, k, 0]


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


def working_bytes(plan, tables, n_comp):
    """Scratch memory of all threads (for the memory guard)."""
    return thread_count() * 4 * n_comp * 8 * _sizes(plan, tables)[2]


def self_pass(plan, tables, X, grad=False):
    """``(nngp, ntk, history)`` of the pairs ``(x, x)``; ``history`` feeds :func:`pairs`.

    ``nngp`` and ``ntk`` have shape ``(K, n)`` (``K = 3`` with ``grad``: value, d/dlog sigma_b,
    d/dlog sigma_w).
    """
    iops, fops, dims, runs, n_runs, covers, act_ops = tables
    P0, P_max, size, full0 = _sizes(plan, tables)
    n, K = X.shape[0], 3 if grad else 1
    hx = np.zeros((max(len(act_ops), 1), n, K, P_max))
    out = np.empty((2, K, n))
    C = plan.input_shape[-1]

    def tasks(t0, t1):
        _self_tasks(t0, t1, X, C, full0, P0, size, iops, fops, dims, runs, n_runs, covers, hx, out)

    run_tasks(tasks, n)
    return out[0], out[1], hx


def pairs(plan, tables, X, Y=None, grad=False):
    """``(nngp, ntk)`` of every pair, each ``(K, n, m)`` (``Y is None``: k(X), upper triangle)."""
    iops, fops, dims, runs, n_runs, covers, _ = tables
    P0, _, size, full0 = _sizes(plan, tables)
    sym = Y is None
    Yv = X if sym else Y
    hx = self_pass(plan, tables, X, grad)[2]
    hy = hx if sym else self_pass(plan, tables, Yv, grad)[2]
    out = np.empty((2, 3 if grad else 1, X.shape[0], Yv.shape[0]))
    C = plan.input_shape[-1]
    n = X.shape[0]

    def tasks(t0, t1):
        _pair_tasks(t0, t1, X, Yv, sym, C, full0, P0, size, iops, fops, dims, runs, n_runs, covers,
                    hx, hy, out)

    run_tasks(tasks, (n + 1) // 2 if sym else n)
    return out[0], out[1]
