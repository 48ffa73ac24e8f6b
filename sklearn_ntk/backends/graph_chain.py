r"""Compiled evaluator of graph chains: ``[Dense | Aggregate | phi]* -> GlobalSum/AvgPool -> MLP``.

An optimisation of :mod:`sklearn_ntk.backends.graph` (tested equal to it) for serial networks of
Dense layers, Aggregate layers and closed-form activations on nodes, one node readout
(GlobalSumPool or GlobalAvgPool) and a fully-connected tail -- the GNTK family.

Every pair of graphs runs through the whole network inside one compiled function, with its
:math:`N_1 \times N_2` node-pair state in per-thread buffers; the rows of the output are
blocks of tasks taken from a queue by GIL-free threads
(:func:`~sklearn_ntk.backends.threads.run_tasks`). The adjacencies are stored in compressed
sparse rows (dense ones too), so an Aggregate costs :math:`O(E_1 N_2 + N_1 E_2)`
(:math:`O(N_1 N_2 (N_1 + N_2))` for dense graphs) and a sparse adjacency is never densified.
The per-node variances come from a self pass computed once per graph; ``k(X)`` computes the upper
triangle only. :func:`encode` returns ``None`` for any network outside this family.
"""

from __future__ import annotations

import numba
import numpy as np
import scipy.sparse as sp

from .._validation import check_memory
from . import fused
from .threads import run_tasks, thread_count, threads_for

__all__ = ["encode", "pack", "pairs", "self_pass"]

_jit = numba.njit(cache=True, fastmath=False, error_model="numpy")
_nogil = numba.njit(cache=True, fastmath=False, error_model="numpy", nogil=True)
_ijit = numba.njit(cache=True, fastmath=False, error_model="numpy", inline="always")

OP_DENSE, OP_ACT, OP_AGG, OP_GAP, OP_GSP = 0, 1, 2, 3, 4


def encode(plan, w2, b2):
    """``(iops, fops, n_acts)`` tables of the compiled interpreter, or ``None``."""
    from .conv import _chain

    ops = _chain(plan.root)
    if ops is None:
        return None
    iops = np.zeros((len(ops), 3), dtype=np.int64)  # kind, hist slot, act code
    fops = np.zeros((len(ops), 2))  # w2, b2 | p0, p1
    n_acts, reduced = 0, False
    for r, op in enumerate(ops):
        if op.kind == "dense":
            iops[r, 0] = OP_DENSE
            fops[r] = (w2 if op.params["w2"] is None else op.params["w2"],
                       b2 if op.params["b2"] is None else op.params["b2"])
        elif op.kind == "act" and op.params["act"]._code is not None:
            act = op.params["act"]
            iops[r] = (OP_ACT, n_acts, act._code)
            fops[r] = act._code_params()
            n_acts += 1
        elif op.kind == "aggregate" and not reduced:
            iops[r, 0] = OP_AGG
        elif op.kind in ("gap", "gsp") and not reduced:
            iops[r, 0] = OP_GAP if op.kind == "gap" else OP_GSP
            reduced = True
        else:
            return None
    return iops, fops, n_acts


def _csr_parts(A):
    """``(row counts, indices, data)`` of an adjacency, dense or sparse, in row-major order.

    A dense one is read with :func:`numpy.nonzero` (what a CSR conversion keeps, without building
    the sparse object: ~10x faster for small graphs); a sparse one goes through ``csr_array``.
    """
    if isinstance(A, np.ndarray):
        rows, cols = np.nonzero(A)
        return np.bincount(rows, minlength=A.shape[0]), cols, A[rows, cols]
    A = sp.csr_array(A)
    return np.diff(A.indptr), A.indices, A.data


def pack(graphs):
    """Concatenate the graphs: features (transposed, ``(C, nodes)``), CSR adjacencies, offsets."""
    parts = [_csr_parts(A) for A, _ in graphs]
    sizes = np.array([A.shape[0] for A, _ in graphs], dtype=np.int64)
    node_off = np.concatenate([[0], np.cumsum(sizes)])
    counts = np.concatenate([c for c, _, _ in parts])
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    indices = np.concatenate([ix for _, ix, _ in parts]).astype(np.int64)
    data = np.concatenate([d for _, _, d in parts]).astype(np.float64)
    HT = np.ascontiguousarray(np.concatenate([H for _, H in graphs]).T, dtype=np.float64)
    return HT, node_off, indptr, indices, data


@_ijit
def _agg_left(sn, st, tn, tt, n1, n2, r0, indptr, indices, data):
    """``(tn, tt) = A1^T (sn, st)``: node ``j`` receives ``A1[i, j] x[i]`` from every edge ``i -> j``.

    Both states in one pass over the edges; rows of ``n2`` contiguous node pairs (vectorised).
    """
    for e in range(n1 * n2):
        tn[e] = 0.0
        tt[e] = 0.0
    m = np.uint64(n2)  # unsigned offsets: no negative-index wraparound, the q loop vectorises
    for i in range(n1):
        si = np.uint64(i) * m
        for k in range(indptr[r0 + i], indptr[r0 + i + 1]):
            dj = np.uint64(indices[k]) * m
            a = data[k]
            for q in range(m):
                tn[dj + q] += a * sn[si + q]
                tt[dj + q] += a * st[si + q]


@_ijit
def _transpose(sn, st, tn, tt, n1, n2):
    """``(tn, tt)`` (n2 x n1) = ``(sn, st)`` (n1 x n2) transposed."""
    for p in range(n1):
        for q in range(n2):
            tn[q * n1 + p] = sn[p * n2 + q]
            tt[q * n1 + p] = st[p * n2 + q]


@_ijit
def _aggregate(sn, st, tn, tt, n1, n2, r1, ip1, ix1, d1, r2, ip2, ix2, d2):
    """``x <- A1^T x A2`` in place for both states ``sn`` and ``st`` (``tn``, ``tt``: scratch),
    as ``(A2^T (A1^T x)^T)^T`` (contiguous inner loops)."""
    _agg_left(sn, st, tn, tt, n1, n2, r1, ip1, ix1, d1)
    _transpose(tn, tt, sn, st, n1, n2)
    _agg_left(sn, st, tn, tt, n2, n1, r2, ip2, ix2, d2)
    _transpose(tn, tt, sn, st, n2, n1)


@_ijit
def _angle_nodes(code, p0, p1, h, ha, sa, hb, sb, ox, oy, n1, n2, same, sn, st, va, vb, vq, keep):
    """Angle activation over the node-pair state, one flat vectorised loop over all node pairs.

    ``ha[h]``/``sa[h]`` (``hb[h]``/``sb[h]``): the variances of the nodes of the first (second)
    graph's batch at activation ``h`` and their square roots; ``ox``/``oy`` the offsets of the
    two graphs. The operands of every node pair are first gathered into ``va``, ``vb``, ``vq``
    (variances, product of roots), so that the closed form runs over ``n1 * n2`` contiguous
    entries rather than ``n1`` short rows. With ``same`` the node pairs (p, p) are redone by the
    exact scalar branch from their inputs kept in ``keep``.
    """
    relu, diff2, even = fused._angle_params(code, p0, p1)
    for p in range(n1):
        a = ha[h, ox + p]
        s = sa[h, ox + p]
        e0 = p * n2
        for q in range(n2):
            va[e0 + q] = a
            vb[e0 + q] = hb[h, oy + q]
            vq[e0 + q] = s * sb[h, oy + q]
    n_diag = n1 if same else 0
    for p in range(n_diag):  # the diagonal's inputs, before the flat loop overwrites them
        keep[0, p] = sn[p * n2 + p]
        keep[1, p] = st[p * n2 + p]
    for e in range(n1 * n2):  # no array slices in here: their reference counts are atomic
        t, td = fused._angle_core(relu, diff2, even, va[e], vb[e], vq[e], sn[e])[4:]
        sn[e] = t
        st[e] = td * st[e]
    for p in range(n_diag):
        d = p * n2 + p
        t, td = fused._moments(code, p0, p1, ha[h, ox + p], hb[h, oy + p], keep[0, p], True)
        sn[d] = t
        st[d] = td * keep[1, p]


@_ijit
def _gram(HTx, ox, n1, HTy, oy, n2, sn, st):
    """``sn = Hx Hy^T / C`` (node features stored transposed, ``(C, nodes)``), ``st = 0``.

    Rows of ``n2`` contiguous node pairs, accumulated over the features in order.
    """
    C = HTx.shape[0]
    for e in range(n1 * n2):
        sn[e] = 0.0
        st[e] = 0.0
    m = np.uint64(n2)  # unsigned offsets: no negative-index wraparound, the q loop vectorises
    for p in range(n1):
        e0 = np.uint64(p) * m
        for c in range(C):
            x = HTx[c, ox + p]
            for q in range(m):
                sn[e0 + q] += x * HTy[c, np.uint64(oy) + q]
        for q in range(m):
            sn[e0 + q] /= C


@_jit
def _run_pair(i, j, same, gx, gy, iops, fops, hx, hy, shx, shy, bufs, record):
    """The whole network for the pair of graphs (i of gx, j of gy); returns (nngp, ntk).

    ``shx``/``shy``: square roots of the variance histories (not read while ``record``ing them).
    """
    Hx, offx, ipx, ixx, dx = gx
    Hy, offy, ipy, ixy, dy = gy
    n1 = offx[i + 1] - offx[i]
    n2 = offy[j + 1] - offy[j]
    sn, st, tn, tt, tq, keep = bufs  # states; scratch of Aggregate and _angle_nodes
    _gram(Hx, offx[i], n1, Hy, offy[j], n2, sn, st)
    size = n1 * n2
    spatial = True
    vn = 0.0
    vt = 0.0
    for r in range(iops.shape[0]):
        kind = iops[r, 0]
        w2 = fops[r, 0]
        b2 = fops[r, 1]
        if kind == OP_DENSE:
            if spatial:
                for e in range(size):
                    s = w2 * sn[e] + b2
                    sn[e] = s
                    st[e] = s + w2 * st[e]
            else:
                vn = w2 * vn + b2
                vt = vn + w2 * vt
        elif kind == OP_ACT:
            h = iops[r, 1]
            if not spatial:
                if record:
                    hx[h, offx[i]] = vn
                t, td = fused._moments(iops[r, 2], w2, b2, hx[h, offx[i]], hy[h, offy[j]], vn, same)
                vn = t
                vt = td * vt
                continue
            if record:
                for p in range(n1):
                    hx[h, offx[i] + p] = sn[p * n2 + p]
            elif fused._is_angle(iops[r, 2]):
                _angle_nodes(iops[r, 2], w2, b2, h, hx, shx, hy, shy, offx[i], offy[j],
                             n1, n2, same, sn, st, tn, tt, tq, keep)
                continue
            for p in range(n1):
                a = hx[h, offx[i] + p]
                for q in range(n2):
                    e = p * n2 + q
                    t, td = fused._moments(iops[r, 2], w2, b2, a, hy[h, offy[j] + q], sn[e],
                                           same and p == q)
                    sn[e] = t
                    st[e] = td * st[e]
        elif kind == OP_AGG:
            _aggregate(sn, st, tn, tt, n1, n2, offx[i], ipx, ixx, dx, offy[j], ipy, ixy, dy)
        else:
            vn = 0.0
            vt = 0.0
            for e in range(size):
                vn += sn[e]
                vt += st[e]
            if kind == OP_GAP:
                vn /= size
                vt /= size
            spatial = False
    return vn, vt


@_jit
def _task_buffers(size, offsets):
    """One thread's buffers: five of ``size`` node pairs, two rows of the largest graph's nodes.

    Separate arrays made once per block of tasks (a slice per pair costs atomic reference
    counts when threads share it).
    """
    nodes = np.max(offsets[1:] - offsets[:-1])
    return (np.empty(size), np.empty(size), np.empty(size), np.empty(size), np.empty(size),
            np.empty((2, nodes)))


@_nogil
def _pair_tasks(t0, t1, gx, gy, n, m, sym, size, iops, fops, hx, hy, shx, shy, nngp, ntk):
    """Tasks ``t0 .. t1 - 1`` of the pair pass on the calling thread, without the GIL.

    Task ``t`` is row ``t`` of the output (``j >= i`` only for ``k(X)``, paired with row
    ``n - 1 - t`` so that every task has about the same work).
    """
    bufs = _task_buffers(size, gx[1])
    for task in range(t0, t1):
        first = np.int64(task)
        for rep in range(2 if sym else 1):
            i = first if rep == 0 else np.int64(n - 1) - first
            if rep == 1 and i == first:
                break
            for j in range(i if sym else 0, m):
                same = sym and i == j
                s, t = _run_pair(i, j, same, gx, gy, iops, fops, hx, hy, shx, shy, bufs, False)
                nngp[i, j] = s
                ntk[i, j] = t
                if sym:
                    nngp[j, i] = s
                    ntk[j, i] = t


@_nogil
def _self_tasks(t0, t1, gx, size, iops, fops, hx, nngp, ntk):
    """Graphs ``t0 .. t1 - 1`` with themselves (recording their variances), without the GIL."""
    bufs = _task_buffers(size, gx[1])
    for i in range(t0, t1):
        s, t = _run_pair(i, i, True, gx, gx, iops, fops, hx, hx, hx, hx, bufs, True)
        nngp[i] = s
        ntk[i] = t


def _buffers(size):
    """Check that every thread's five node-pair buffers of ``size`` values fit in memory."""
    check_memory(thread_count() * 5 * 8 * size, "the node-pair states of the largest graphs")
    return size


def _max_nodes(packed):
    return int(np.diff(packed[1]).max())


def _work(tables, nodes_x, nodes_y):
    """Node pairs times operations: the estimate :func:`~sklearn_ntk.backends.threads.threads_for` reads."""
    return int(nodes_x) * int(nodes_y) * tables[0].shape[0]


def self_pass(tables, packed):
    """``(nngp, ntk, history)`` of every graph with itself; ``history`` feeds :func:`pairs`."""
    iops, fops, n_acts = tables
    n = packed[1].shape[0] - 1
    hx = np.zeros((max(n_acts, 1), packed[0].shape[1]))
    nngp, ntk = np.empty(n), np.empty(n)
    sizes = np.diff(packed[1])
    size = _buffers(_max_nodes(packed) ** 2)

    def tasks(t0, t1):
        _self_tasks(t0, t1, packed, size, iops, fops, hx, nngp, ntk)

    with threads_for(_work(tables, sizes @ sizes, 1)):  # mostly serial: O(n) of the work
        run_tasks(tasks, n)
    return nngp, ntk, hx


def pairs(tables, gx, gy=None):
    """``(nngp, ntk)`` between the packed graphs (``gy is None``: k(X), upper triangle)."""
    iops, fops, _ = tables
    sym = gy is None
    hx = self_pass(tables, gx)[2]
    hy = hx if sym else self_pass(tables, gy)[2]
    gy = gx if sym else gy
    n, m = gx[1].shape[0] - 1, gy[1].shape[0] - 1
    nngp, ntk = np.empty((n, m)), np.empty((n, m))
    size = _buffers(_max_nodes(gx) * _max_nodes(gy))
    shx = np.sqrt(hx)
    shy = shx if sym else np.sqrt(hy)

    def tasks(t0, t1):
        _pair_tasks(t0, t1, gx, gy, n, m, sym, size, iops, fops, hx, hy, shx, shy, nngp, ntk)

    with threads_for(_work(tables, gx[1][-1], gy[1][-1]) // (2 if sym else 1)):
        run_tasks(tasks, (n + 1) // 2 if sym else n)
    return nngp, ntk
