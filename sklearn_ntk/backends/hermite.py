"""Gaussian expectations of activations without a closed form, by Hermite (Mehler) expansion.

For a centred Gaussian pair :math:`(u, v)` with variances :math:`a, b` and correlation
:math:`\\rho = c/\\sqrt{ab}`, Mehler's formula gives, with the normalised probabilists' Hermite
polynomials :math:`h_k` and :math:`z \\sim \\mathcal{N}(0, 1)`,

.. math::

    \\mathbb{E}[f(u)\\,g(v)] = \\sum_{k \\ge 0} \\rho^k\\, f_k(a)\\, g_k(b), \\qquad
    f_k(a) = \\mathbb{E}[f(\\sqrt{a}\\, z)\\, h_k(z)].

The coefficients depend on one variance only: they are computed once per row of the kernel
(:func:`coefficient_table`), and each pair costs a short series (in the compiled per-layer pass
:func:`layer_values` the first terms of a row's pairs side by side, :func:`_row_heads`, then each
pair's tail, :func:`_series_tail`; :func:`_series` for flat lists of pairs). The rows
first get the 96 coefficients most pairs need; the rows of the pairs whose series has not converged
there get 128 or 256, then 1024 (:func:`_hard_pairs`). The tail after
``K`` terms is bounded by Cauchy-Schwarz, :math:`|\\rho|^K \\sqrt{R_K(a) R_K(b)}` with the tail energies
:math:`R_K(a) = \\sum_{k \\ge K} f_k(a)^2 = \\mathbb{E}[f(\\sqrt a z)^2] - \\sum_{k<K} f_k(a)^2`, so every
pair stops as soon as its own bound is met. Pairs whose series would be too long (large variances,
where the activation is nearly a step, together with :math:`|\\rho|` near one) are integrated
directly by a two-dimensional composite Gauss-Legendre rule graded towards the activation's
transition (:func:`_direct`).

Most activations are a constant or linear function plus an odd or an even one (tanh, erf, the
logistic, SiLU, GELU, softplus): their coefficients of the other parity beyond order one vanish.
That is detected on the quadrature nodes, those coefficients are stored as exact zeros, and the
per-pair series take one order in two (:func:`_law`). The coefficients of :math:`\\phi'` follow from
those of :math:`\\phi` by Stein's identity
:math:`\\mathbb{E}[\\phi'(\\sqrt a z) h_k(z)] = \\sqrt{(k+1)/a}\\;\\mathbb{E}[\\phi(\\sqrt a z) h_{k+1}(z)]`
(for variances where the division does not magnify round-off). With many distinct variances the
first tier is interpolated in the log-variance between Chebyshev nodes, and checked against exact
values between them (:func:`_interpolated_table`).

The one-dimensional integrals use composite Gauss-Legendre panels: uniform on :math:`|z| \\le 13`
and graded geometrically towards :math:`z = 0` down to the scale :math:`1/\\sqrt{a}` of the
activation's transition, so that they are accurate for any variance.

Derivatives with respect to the covariance entries follow from Price's theorem:
:math:`\\partial_c \\mathbb{E}[\\phi\\phi] = \\mathbb{E}[\\phi'\\phi']`,
:math:`\\partial_a \\mathbb{E}[f(u) g(v)] = \\tfrac12 \\mathbb{E}[f''(u) g(v)]`.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import numba
import numpy as np

from .threads import run_tasks, single_threaded_blas

__all__ = ["RowTable", "row_table", "pair_moments", "moments_rows", "coefficient_table"]

_Z_MAX = 13.0  # |h_k(z)| N(z) <= exp(-z^2/4): below 1e-18 beyond this, for every k
_GL_ORDER = 16
_DIRECT_ORDER = 10
_TOL = 1e-13  # per-series truncation, relative to the Cauchy-Schwarz scale sqrt(E_f(a) E_g(b))
_CHUNK = 1 << 21  # evaluation points per chunk of the direct 2-D rule

_jit = numba.njit(cache=True, fastmath=False, error_model="numpy")
_nogil = numba.njit(cache=True, fastmath=False, error_model="numpy", nogil=True)
_inline = numba.njit(cache=True, fastmath=False, error_model="numpy", inline="always")


# --------------------------------------------------------------------------------------------------
# one-dimensional rules
# --------------------------------------------------------------------------------------------------
def _panel_rule(breaks, order=_GL_ORDER):
    """Composite Gauss-Legendre nodes and weights on the panels between sorted ``breaks``."""
    x, w = np.polynomial.legendre.leggauss(order)
    lo, hi = breaks[:-1, None], breaks[1:, None]
    z = 0.5 * (lo + hi) + 0.5 * (hi - lo) * x
    return z.ravel(), (0.5 * (hi - lo) * w).ravel()


def _graded_breaks(eps, width):
    """Breakpoints on [0, _Z_MAX]: geometric from ``eps`` up to 1, then uniform of ``width``."""
    inner = []
    edge = 1.0
    while edge > eps:
        inner.append(edge)
        edge *= 0.5
    inner = np.array([0.0] + inner[::-1])
    outer = np.arange(1.0 + width, _Z_MAX + 1e-9, width)
    return np.concatenate([inner, outer])


@functools.lru_cache(maxsize=64)
def _scale_rule(group, width=None, order=_GL_ORDER):
    """Nodes and Gaussian weights for E[f(z)] when f varies on the scale 2**-group (pure).

    ``width`` of the uniform panels beyond |z| = 1 (default 1, or 0.5 for sharp functions);
    smaller widths resolve Hermite polynomials of higher degree.
    """
    if width is None:
        width = 1.0 if group <= 0 else 0.5
    half = _graded_breaks(2.0 ** (-group - 1), width)
    breaks = np.concatenate([-half[:0:-1], half])
    z, w = _panel_rule(breaks, order)
    w = w * np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)
    z.setflags(write=False)
    w.setflags(write=False)
    return z, w


def _scale_group(var):
    """Integer g with sqrt(var) <= 2**g (at least 0): the resolution a variance needs."""
    with np.errstate(divide="ignore"):
        g = np.ceil(0.5 * np.log2(np.maximum(var, 1.0)))
    return g.astype(np.int64)


def _hermite(z, K):
    """Normalised probabilists' Hermite polynomials h_0..h_{K-1} at ``z`` -> (len(z), K)."""
    H = np.empty((z.shape[0], K))
    H[:, 0] = 1.0
    if K > 1:
        H[:, 1] = z
    for k in range(1, K - 1):
        H[:, k + 1] = (z * H[:, k] - math.sqrt(k) * H[:, k - 1]) / math.sqrt(k + 1)
    return H


def _weighted_hermite(group, K, width=None):
    """``h_k(z_q) w_q`` for the rule of ``group`` (kept: the common sizes, a few MB each, and the
    two latest of the longest tier, ~10 MB each, which a marginal-likelihood fit asks for at
    every evaluation)."""
    if K > _SHARP_TERMS + 4:
        return _cached_long_matrix(group, K, width)
    return _cached_hermite_matrix(group, K, width)


def _hermite_matrix(group, K, width):
    """Even and odd columns of ``h_k(z_q) w_q`` on the rule's nodes ``z_q > 0`` (the rule is
    symmetric and ``h_k(-z) = (-1)^k h_k(z)``, so each coefficient is a sum over half the nodes)."""
    z, w = _scale_rule(group, width)
    half = z.shape[0] // 2
    Hw = _hermite(z[half:], K) * w[half:, None]
    even, odd = np.ascontiguousarray(Hw[:, 0::2]), np.ascontiguousarray(Hw[:, 1::2])
    even.setflags(write=False)
    odd.setflags(write=False)
    return even, odd


_cached_hermite_matrix = functools.lru_cache(maxsize=8)(_hermite_matrix)
_cached_long_matrix = functools.lru_cache(maxsize=2)(_hermite_matrix)


def _buckets(groups, tier):
    """Rows sharing one rule: smooth rows (group <= 0) and the rest at the finest group needed.

    ``tier`` 0 computes the first ``_HEAD_TERMS`` coefficients (enough for most pairs), 1 the
    standard numbers of terms and 2 ``_LONG_TERMS`` on a finer rule; tiers 1 and 2 are computed
    only for the rows of pairs whose series did not converge in the tier before.
    """
    if tier == 2:
        return [(int(groups.max()), _LONG_TERMS, _LONG_WIDTH, np.arange(groups.size))]
    out = []
    smooth = groups <= 0
    if smooth.any():
        out.append((0, _HEAD_TERMS if tier == 0 else _SMOOTH_TERMS, None, np.flatnonzero(smooth)))
    if not smooth.all():
        terms = _HEAD_TERMS if tier == 0 else _SHARP_TERMS
        out.append((int(groups.max()), terms, None, np.flatnonzero(~smooth)))
    return out


_EVAL_BLOCK = 1 << 16  # activation values per block of rows (0.5 MB temporaries: few Python calls)
_HEAD_TERMS = 96  # first tier (a multiple of 4, like every number of terms)
_SMOOTH_TERMS = 128
_SHARP_TERMS = 256
_LONG_TERMS = 1024
_LONG_WIDTH = 0.25


def _evaluate(act, x, order):
    """``act.derivatives`` with a check that a user function is finite where the kernel needs it."""
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):  # checked just below
        out = list(act.derivatives(x, order))
    for k, f in enumerate(out):
        f = np.asarray(f, dtype=float)
        if f.ndim == 0 and k > 0:  # a constant derivative (of a linear piece)
            f = np.full(x.shape, float(f))
        if f.shape != x.shape:
            raise ValueError(
                f"activation {act!r} returned an array of shape {f.shape} for input of shape "
                f"{x.shape}; it must be elementwise"
            )
        if not np.all(np.isfinite(f)):
            bad = x[~np.isfinite(f)].ravel()[0]
            what = "it" if k == 0 else f"its derivative of order {k}"
            raise ValueError(
                f"activation {act!r}: {what} is not finite at x = {bad!r}; the kernel integrates "
                "the activation against a Gaussian, so it must be finite on the whole real line"
            )
        out[k] = f
    return out


# --------------------------------------------------------------------------------------------------
# per-row tables
# --------------------------------------------------------------------------------------------------
def diagonal_moments(act, var, order):
    """``M[i, j, r] = E[phi^(i)(u) phi^(j)(u)]`` for ``u ~ N(0, var[r])`` (one-dimensional)."""
    var = np.asarray(var, dtype=float)
    n_sets = order + 1
    M = np.empty((n_sets, n_sets, var.shape[0]))
    for group, _, width, idx in _buckets(_scale_group(var), 1):
        z, w = _scale_rule(group, width)
        step = max(1, _EVAL_BLOCK // z.shape[0])
        for r0 in range(0, idx.shape[0], step):
            rows = idx[r0 : r0 + step]
            f = _evaluate(act, np.sqrt(var[rows])[:, None] * z[None, :], order)
            with single_threaded_blas():
                for i in range(n_sets):
                    for j in range(i, n_sets):
                        M[i, j, rows] = M[j, i, rows] = (f[i] * f[j]) @ w
    return M


def coefficient_table(act, var, order, tier=1, tails=True):
    """Hermite coefficients of ``phi^(j)(sqrt(v) z)`` for every variance ``v`` and ``j <= order``.

    Returns
    -------
    C : ndarray (order + 1, len(var), K)
        Coefficients (zero beyond each row's number of terms).
    nterms : ndarray of int (len(var),)
        Number of coefficients computed for each row.
    R : ndarray (order + 1, len(var), K + 1) or None
        Tail energies ``R[j, r, k] = sum_{i >= k} C[j, r, i]**2`` (floored at round-off);
        ``None`` with ``tails=False`` (the exact points of an interpolated table need none).
    M : ndarray (order + 1, order + 1, len(var))
        One-dimensional moments ``E[phi^(i)(u) phi^(j)(u)]`` (the pair with itself).
    parity : ndarray of int (order + 1,)
        For each ``phi^(j)``: 1 where its coefficients of even order ``k >= 2`` vanish for every
        row (its even part is a constant: ``phi^(j)`` is odd up to a constant), 0 where those
        of odd order ``k >= 3`` vanish (its odd part is linear), -1 otherwise.

    ``tier``: 0 for the first ``_HEAD_TERMS`` coefficients, 1 for 128 (smooth rows) or 256, 2 for
    ``_LONG_TERMS`` on a finer rule (see :func:`_buckets`).
    """
    var = np.asarray(var, dtype=float)
    buckets = _buckets(_scale_group(var), tier)
    K = max(b[1] for b in buckets)
    n_sets = order + 1
    C = np.zeros((n_sets, var.shape[0], K))
    nterms = np.empty(var.shape[0], dtype=np.int64)
    M = np.empty((n_sets, n_sets, var.shape[0]))
    blocks = []
    for group, kg, width, idx in buckets:
        nterms[idx] = kg
        step = max(1, _EVAL_BLOCK // _scale_rule(group, width)[0].shape[0])
        # the Hermite matrices once per bucket, with the orders Stein's identity needs beyond kg
        hermite = _weighted_hermite(group, kg + 4, width)
        blocks += [(group, kg, width, hermite, idx[r0 : r0 + step]) for r0 in range(0, idx.size, step)]
    found = np.ones((len(blocks), n_sets, 2), dtype=bool)  # (even part constant, odd part linear)

    with single_threaded_blas():  # (threads gain nothing here: the blocks hold the GIL)
        for b, block in enumerate(blocks):
            found[b] = _table_block(act, var, order, *block, C, M)
    found = found.all(axis=0)
    parity = np.where(found[:, 0], 1, np.where(found[:, 1], 0, -1))
    return C, nterms, _tail_energies(C, nterms, M) if tails else None, M, parity


_PARITY_TOL = 1e-13  # relative deviation below which a part of phi^(j) is taken as exact


def _table_block(act, var, order, group, kg, width, hermite, rows, C, M):
    """The coefficients and moments of ``rows`` (one block of :func:`coefficient_table`).

    Returns, per set ``j``, whether the even part of ``phi^(j)(sqrt(v) z)`` is constant and
    whether its odd part is linear on the nodes (to round-off): the coefficients of that
    parity beyond order one are then exactly zero and are not computed. Where every variance
    of the block is at least ``_STEIN_VAR``, the coefficients of the odd derivatives follow
    from those of the even ones by Stein's identity
    :math:`\\mathbb{E}[\\phi'(\\sqrt a z) h_k(z)] = \\sqrt{(k+1)/a}\\,\\mathbb{E}[\\phi(\\sqrt a z) h_{k+1}(z)]`
    instead of a second projection.
    """
    z, w = _scale_rule(group, width)
    half = z.shape[0] // 2
    zp = z[half:]
    nodes = np.concatenate([zp, -zp])
    stein = bool(var[rows].min() >= _STEIN_VAR)
    root = np.sqrt(var[rows])
    even, odd = hermite  # kg + 4 orders: Stein needs the coefficients of phi one order further
    kc = kg + 4
    f = _evaluate(act, root[:, None] * nodes[None, :], order)
    found = np.empty((order + 1, 2), dtype=np.bool_)
    Cb = np.zeros((order + 1, rows.shape[0], kc))
    Mb = np.empty((order + 1, order + 1, rows.shape[0]))
    _block_coefficients(tuple(f), zp / zp[-1], even, odd, w[half:], root, stein, Cb, Mb, found)
    C[:, rows, :kg] = Cb[:, :, :kg]
    M[:, :, rows] = Mb
    return found


_STEIN_VAR = 1e-2  # below, Stein's identity divides round-off by sqrt(var) > 10: project directly


@_nogil
def _block_coefficients(F, zratio, even, odd, w, root, stein, C, M, found):
    """The compiled part of :func:`_table_block`.

    ``F[i][r]``: ``phi^(i)`` of row ``r`` at the nodes ``z > 0`` then at ``-z``; ``even``/``odd``:
    the weighted Hermite polynomials of even/odd order at ``z > 0``; ``w``: the Gaussian weights
    at ``z > 0`` (the rule is symmetric); ``root``: the rows' standard deviations. Fills ``C``
    (sets, rows, terms), ``M`` and ``found``; with ``stein`` the odd sets by Stein's identity.
    """
    n_sets = len(F)
    nr, nodes = F[0].shape
    half = nodes // 2
    K = C.shape[2]
    sym = np.empty((nr, half))
    anti = np.empty((nr, half))
    for i in range(n_sets):
        Fi = F[i]
        even_const = True
        odd_linear = True
        for r in range(nr):
            big = 0.0
            for q in range(half):
                sv = Fi[r, q] + Fi[r, half + q]
                av = Fi[r, q] - Fi[r, half + q]
                sym[r, q] = sv
                anti[r, q] = av
                big = max(big, abs(sv) + abs(av))  # >= max |phi| at +-z
            tol = 0.5 * big * _PARITY_TOL
            top_s = sym[r, half - 1]
            top_a = anti[r, half - 1]
            worst_s = 0.0
            worst_a = 0.0
            for q in range(half):
                worst_s = max(worst_s, abs(sym[r, q] - top_s))
                worst_a = max(worst_a, abs(anti[r, q] - top_a * zratio[q]))
            even_const &= worst_s <= tol
            odd_linear &= worst_a <= tol
        found[i, 0] = even_const
        found[i, 1] = odd_linear
        if stein and i % 2 == 1:  # phi^(i) from phi^(i-1), one order further
            for r in range(nr):
                for k in range(K - 1):
                    C[i, r, k] = math.sqrt(k + 1.0) * C[i - 1, r, k + 1] / root[r]
        else:
            ce = sym @ (np.ascontiguousarray(even[:, :1]) if even_const else even)
            co = anti @ (np.ascontiguousarray(odd[:, :1]) if odd_linear else odd)
            for r in range(nr):
                for k in range(ce.shape[1]):
                    C[i, r, 2 * k] = ce[r, k]
                for k in range(co.shape[1]):
                    C[i, r, 2 * k + 1] = co[r, k]
        for j in range(i, n_sets):
            Fj = F[j]
            for r in range(nr):
                a0 = 0.0
                a1 = 0.0
                for q in range(0, half - 1, 2):  # two partial sums: no single chain of adds
                    a0 += (Fi[r, q] * Fj[r, q] + Fi[r, half + q] * Fj[r, half + q]) * w[q]
                    q1 = q + 1
                    a1 += (Fi[r, q1] * Fj[r, q1] + Fi[r, half + q1] * Fj[r, half + q1]) * w[q1]
                if half % 2:
                    q = half - 1
                    a0 += (Fi[r, q] * Fj[r, q] + Fi[r, half + q] * Fj[r, half + q]) * w[q]
                M[i, j, r] = a0 + a1
                M[j, i, r] = a0 + a1


def _tail_energies(C, nterms, M):
    """R[j, r, k] = sum_{i >= k} C[j, r, i]^2 plus an estimate of the energy beyond the last term.

    The energy beyond the computed terms is ``E - sum C^2`` where that difference is well above
    round-off; below it (coefficients that have decayed to nothing) it is estimated from the last
    eight coefficients as ``2 K max(c_k^2)`` (a bound for the slowest decay, ~k^-3/2, of a step).
    """
    n_sets, n_rows, K = C.shape
    R = np.empty((n_sets, n_rows, K + 1))
    _tail_rows(C, nterms, M, R)
    return R


@_jit
def _tail_rows(C, nterms, M, R):
    """The loops of :func:`_tail_energies` (no temporaries)."""
    n_sets, n_rows, K = C.shape
    for j in range(n_sets):
        for r in range(n_rows):
            energy = M[j, j, r]
            acc = 0.0
            for k in range(K - 1, -1, -1):
                acc += C[j, r, k] * C[j, r, k]
                R[j, r, k] = acc
            last = 0.0
            for k in range(max(0, nterms[r] - 8), nterms[r]):
                last = max(last, C[j, r, k] * C[j, r, k])
            missing = energy - acc
            beyond = missing
            if not missing > 1e-14 * energy:
                beyond = min(2.0 * nterms[r] * last, 1e-14 * energy)
            for k in range(K):
                R[j, r, k] += beyond
            R[j, r, K] = beyond


# --------------------------------------------------------------------------------------------------
# per-pair series
# --------------------------------------------------------------------------------------------------
@_inline
def _one_series(C, R, sa, i, sb, j, K, rho, scale, first, step):
    """``sum_k C[sa, i, k] C[sb, j, k] rho^k`` over the orders 0, 1, then ``first``,
    ``first + step``, ... below ``K`` (the orders where both factors can be non-zero, see
    :func:`_orders`), stopped by the tail bound; returns ``(value, converged)``."""
    acc = C[sa, i, 0] * C[sb, j, 0] + C[sa, i, 1] * C[sb, j, 1] * rho
    if first >= K:  # the factors' parities leave no term beyond order one: exact
        return acc, True
    rho2 = rho * rho
    rk = rho2 * rho if first == 3 else rho2
    p = rho2 if step == 2 else rho
    k = first
    n = 0
    while k < K:
        acc += C[sa, i, k] * C[sb, j, k] * rk
        rk *= p
        k += step
        n += 1
        if (n & 3) == 0:
            e = min(k, K)  # R decreases: the bound at K also bounds the tail from K + 1
            if abs(rk) * math.sqrt(R[sa, i, e] * R[sb, j, e]) <= scale:
                return acc, True
    e = min(k, K)
    return acc, abs(rk) * math.sqrt(R[sa, i, e] * R[sb, j, e]) <= scale


@_nogil
def _series_pairs(p0, p1, C, R, nterms, ia, ib, rho, sets_a, sets_b, firsts, steps, factors, tol,
                  out, ok):
    """Pairs ``p0 .. p1 - 1`` of :func:`_series`, without the GIL."""
    S = sets_a.shape[0]
    for p in range(p0, p1):
        i = ia[p]
        j = ib[p]
        K = min(nterms[i], nterms[j])
        good = True
        for s in range(S):
            sa = sets_a[s]
            sb = sets_b[s]
            scale = tol * math.sqrt(R[sa, i, 0] * R[sb, j, 0])
            val, conv = _one_series(C, R, sa, i, sb, j, K, rho[p], scale, firsts[s], steps[s])
            out[s, p] = factors[s] * val
            good = good and conv
        ok[p] = good


def _series(C, R, nterms, ia, ib, rho, sets_a, sets_b, firsts, steps, factors, tol, out, ok):
    """Every requested series for every pair; ``ok[p]`` is False where one did not converge."""
    args = (C, R, nterms, ia, ib, rho, sets_a, sets_b, firsts, steps, factors, tol, out, ok)
    run_tasks(lambda p0, p1: _series_pairs(p0, p1, *args), ia.shape[0])


def _orders(parity, sets_a, sets_b):
    """``(firsts, steps)`` of each series ``(sets_a[s], sets_b[s])`` beyond order one: the odd
    orders (3, 2) where both factors keep only those, the even ones (2, 2), none where their
    parities differ (a first order beyond any table), every order (2, 1) otherwise."""
    firsts = np.full(sets_a.shape[0], 2, dtype=np.int64)
    steps = np.ones(sets_a.shape[0], dtype=np.int64)
    if parity is None:
        return firsts, steps
    for s, (a, b) in enumerate(zip(sets_a, sets_b, strict=True)):
        pa, pb = int(parity[a]), int(parity[b])
        if pa < 0 or pb < 0:
            continue
        steps[s] = 2
        firsts[s] = (3 if pa == 1 else 2) if pa == pb else np.iinfo(np.int64).max // 2
    return firsts, steps


_HEAD = 14  # entries of every pair's series taken side by side over a row's pairs (SIMD)


@_inline
def _row_heads(i, j0, PX, SY, sx, sy, s, first0, first1, step0, step1, tol, lanes):
    """The first ``_HEAD`` entries of the T and Tdot series of the pairs ``(i, j >= j0)``,
    side by side: short loops over the pairs, one entry at a time, that run as SIMD.

    ``SY[q, t, j]``: the columns' packed tables (see :func:`_packed`). Leaves in ``lanes[:, j]``
    rho, T, Tdot, the next powers of rho of both, whether each series is still above its tail
    bound (1.0) after the head, and the steps of the powers. Every pair takes the same head
    whatever its neighbours.
    """
    m = s.shape[1]
    c00, c01, c10, c11 = PX[i, 0, 0], PX[i, 0, 1], PX[i, 1, 0], PX[i, 1, 1]
    sxi = sx[i]
    u0 = np.uint64(j0)  # unsigned columns: no negative-index wraparound, contiguous loads
    for jj in range(m - j0):
        j = u0 + np.uint64(jj)
        q = sxi * sy[j]
        rho = s[i, j] / q if q > 0.0 else 0.0
        rho = 1.0 if rho > 1.0 else (-1.0 if rho < -1.0 else rho)
        rho2 = rho * rho
        lanes[0, j] = rho
        lanes[1, j] = c00 * SY[0, 0, j] + c10 * SY[0, 1, j] * rho
        lanes[2, j] = c01 * SY[1, 0, j] + c11 * SY[1, 1, j] * rho
        lanes[3, j] = rho2 * rho if first0 == 3 else rho2
        lanes[4, j] = rho2 * rho if first1 == 3 else rho2
        lanes[7, j] = rho2 if step0 == 2 else rho
        lanes[8, j] = rho2 if step1 == 2 else rho
    for t in range(2, _HEAD):
        a0 = PX[i, t, 0]
        a1 = PX[i, t, 1]
        for jj in range(m - j0):
            j = u0 + np.uint64(jj)
            rk0 = lanes[3, j]
            rk1 = lanes[4, j]
            lanes[1, j] += a0 * SY[0, t, j] * rk0
            lanes[2, j] += a1 * SY[1, t, j] * rk1
            lanes[3, j] = rk0 * lanes[7, j]
            lanes[4, j] = rk1 * lanes[8, j]
    e00, e01 = tol * PX[i, 0, 2], tol * PX[i, 0, 3]
    eh0, eh1 = PX[i, _HEAD, 2], PX[i, _HEAD, 3]
    for jj in range(m - j0):
        j = u0 + np.uint64(jj)
        live0 = abs(lanes[3, j]) * eh0 * SY[2, _HEAD, j] > e00 * SY[2, 0, j]
        live1 = abs(lanes[4, j]) * eh1 * SY[3, _HEAD, j] > e01 * SY[3, 0, j]
        lanes[5, j] = 1.0 if live0 else 0.0
        lanes[6, j] = 1.0 if live1 else 0.0


@_inline
def _series_tail(PA, a, PB, b, T, tol, step0, step1, lanes):
    """The rest of one pair's series after the head (entries ``_HEAD ..``), each series
    stopped by its own tail bound; returns ``(T, Tdot, converged)``."""
    acc0, acc1, rk0, rk1 = lanes[1, b], lanes[2, b], lanes[3, b], lanes[4, b]
    live0 = lanes[5, b] > 0.0
    live1 = lanes[6, b] > 0.0
    p0, p1 = lanes[7, b], lanes[8, b]
    scale0 = tol * PA[a, 0, 2] * PB[2, 0, b]
    scale1 = tol * PA[a, 0, 3] * PB[3, 0, b]
    for t0 in range(_HEAD, T, 4):
        if not (live0 or live1):
            return acc0, acc1, True
        m0 = 1.0 if live0 else 0.0  # masks rather than branches: a live flag is hard to predict
        m1 = 1.0 if live1 else 0.0
        for t in range(t0, t0 + 4):
            acc0 += PA[a, t, 0] * PB[0, t, b] * rk0 * m0
            acc1 += PA[a, t, 1] * PB[1, t, b] * rk1 * m1
            rk0 *= p0
            rk1 *= p1
        t = t0 + 4
        live0 = live0 & (abs(rk0) * PA[a, t, 2] * PB[2, t, b] > scale0)
        live1 = live1 & (abs(rk1) * PA[a, t, 3] * PB[3, t, b] > scale1)
    return acc0, acc1, not (live0 or live1)


@_jit
def _row_layer(i, PX, ix, sx, SY, iy, sy, M, law, sym, s, th, w2, b2, tol, bad, nbad, lanes):
    """One row of :func:`_layer_tasks`: T and Tdot of its pairs by series (a head side by side,
    :func:`_row_heads`, then each pair's tail alone, :func:`_series_tail`), then the Dense layer."""
    m = s.shape[1]
    r = ix[i]
    T, first0, first1, step0, step1 = law[0], law[1], law[2], law[3], law[4]
    j0 = i if sym else 0
    _row_heads(i, j0, PX, SY, sx, sy, s, first0, first1, step0, step1, tol, lanes)
    for j in range(j0, m):
        rho = lanes[0, j]
        if (sym and j == i) or (r == iy[j] and rho >= 1.0 - 1e-15):
            t, td = M[0, 0, r], M[1, 1, r]
        else:
            t, td, ok = _series_tail(PX, i, SY, j, T, tol, step0, step1, lanes)
            if not ok:
                bad[i, j] = True
                nbad[i] += 1
                continue
        s_new = w2 * t + b2
        th[i, j] = s_new + w2 * td * th[i, j]
        s[i, j] = s_new


@_nogil
def _layer_tasks(t0, t1, args):
    """Tasks ``t0 .. t1 - 1`` of :func:`layer_values` without the GIL: row ``t`` and, with
    ``sym``, row ``n - 1 - t`` (every task then has the same work)."""
    n = args[9].shape[0]
    sym = args[8]
    lanes = np.empty((9, args[9].shape[1]))
    for task in range(t0, t1):
        _row_layer(task, *args, lanes)
        other = n - 1 - task
        if sym and other != task:
            _row_layer(other, *args, lanes)


def _law(table):
    """``(T, first0, first1, step0, step1)``: the packed entries of the T and Tdot series.

    Entry ``t`` holds the term of order ``t`` for ``t < 2``, then of order
    ``first + step * (t - 2)``: a step of 2 takes the orders of one parity only where those of
    the other vanish (see :func:`coefficient_table`). ``T`` entries, with tail energies up to
    entry ``T``, fit in the table's terms."""
    K = int(table.nterms.min())  # the terms every row has (all of them in the first tier)
    firsts, steps, lengths = [], [], []
    for j in range(2):
        par = -1 if table.parity is None else int(table.parity[j])
        first, step = (3, 2) if par == 1 else (2, 2) if par == 0 else (2, 1)
        # entries t < T need order <= K - 1; the tail bound at t = T needs order <= K
        lengths.append(2 + (K - first) // step)
        firsts.append(first)
        steps.append(step)
    T = 2 + 4 * ((min(lengths) - 2) // 4)
    return np.array([T, firsts[0], firsts[1], steps[0], steps[1]], dtype=np.int64)


@_nogil
def _pack_rows(C, SR, rows, law):
    """The packed T and Tdot tables of ``rows`` (see :func:`_packed`)."""
    T, first0, first1, step0, step1 = law[0], law[1], law[2], law[3], law[4]
    P = np.empty((rows.shape[0], T + 1, 4))
    for p in range(rows.shape[0]):
        r = rows[p]
        for t in range(T + 1):
            k0 = t if t < 2 else first0 + step0 * (t - 2)
            k1 = t if t < 2 else first1 + step1 * (t - 2)
            P[p, t, 0] = C[0, r, k0] if t < T else 0.0
            P[p, t, 1] = C[1, r, k1] if t < T else 0.0
            P[p, t, 2] = SR[0, r, k0]
            P[p, t, 3] = SR[1, r, k1]
    return P


def _packed(table, rows, law):
    """The T and Tdot tables of ``rows`` in kernel order, one contiguous block per row.

    ``P[r, t] = (c0, c1, sqrt(R0), sqrt(R1))`` at the orders of entry ``t`` (see :func:`_law`);
    :func:`layer_values` transposes the columns' copy to planes ``[q, t, j]``, contiguous over
    the pairs of a row that advance side by side.
    """
    return _pack_rows(table.C, np.sqrt(table.R[:2]), rows, law)


def layer_values_bytes(n, m):
    """Memory :func:`layer_values` allocates beyond its arguments: packed tables, flags, and the
    longer tables of the rows of pairs whose series need more terms (:func:`_hard_pairs`)."""
    return 32 * (_SHARP_TERMS + 1) * (n + m) + n * m


def layer_values(act, table, var_x, var_y, s, th, w2, b2, sym):
    """One activation + Dense layer for every pair of a kernel matrix, in place.

    ``s``/``th``: Sigma and Theta of the pairs (n, m), overwritten with the next layer's (only
    the upper triangle j >= i with ``sym``); ``table``: the :class:`RowTable` of the variances
    ``var_x`` of the rows followed (unless ``sym``) by ``var_y`` of the columns. Pairs whose
    series does not converge in the table's terms take :func:`_hard_pairs`.
    """
    n, m = s.shape
    ix = table.index[:n]
    iy = ix if sym else table.index[n:]
    sx, sy = np.sqrt(var_x), np.sqrt(var_y)
    law = _law(table)
    PX = _packed(table, ix, law)
    PY = np.ascontiguousarray(np.transpose(PX if sym else _packed(table, iy, law), (2, 1, 0)))
    bad = np.zeros((n, m), dtype=np.bool_)
    nbad = np.zeros(n, dtype=np.int64)  # per row: the pairs are then found without a full scan
    args = (PX, ix, sx, PY, iy, sy, table.M, law, sym, s, th, w2, b2, _TOL, bad, nbad)
    run_tasks(lambda t0, t1: _layer_tasks(t0, t1, args), (n + 1) // 2 if sym else n)
    hit = np.flatnonzero(nbad)
    if hit.size:
        rows, cols = np.nonzero(bad[hit])
        rows = hit[rows]
        a, b = ix[rows], iy[cols]
        c = s[rows, cols]
        with np.errstate(divide="ignore", invalid="ignore"):
            q = sx[rows] * sy[cols]
            rho = np.clip(np.where(q > 0, c / np.where(q > 0, q, 1.0), 0.0), -1.0, 1.0)
        out = _hard_pairs(act, table, a, b, rho)
        s_new = w2 * out[0] + b2
        th[rows, cols] = s_new + w2 * out[1] * th[rows, cols]
        s[rows, cols] = s_new


# --------------------------------------------------------------------------------------------------
# direct two-dimensional rule for the pairs a series cannot serve
# --------------------------------------------------------------------------------------------------
def _direct(act, a, b, rho, sets_a, sets_b, order):
    """E[phi^(i)(u) phi^(j)(v)] for each (i, j) in zip(sets_a, sets_b), by nested 1-D rules.

    u = sqrt(a) z, v = sqrt(b) (rho z + s w), s = sqrt(1 - rho^2). The outer rule in z is graded
    towards z = 0 at the scale of the transitions; the inner one integrates over y = rho z + s w
    on panels of one standard deviation s of the Gaussian's window around rho z, joined (where the
    window reaches |y| < 1) by breakpoints graded towards y = 0 at the scale of v's transition.
    """
    out = np.empty((len(sets_a), a.shape[0]))
    with single_threaded_blas():
        for p in range(a.shape[0]):
            out[:, p] = _direct_pair(act, a[p], b[p], rho[p], sets_a, sets_b, order)
    return out


def _inner_rule(m, s, breaks_y):
    """Nodes y (q, P) and weights of E[g(m + s w)] for the rows of ``m`` (shape (q, 1))."""
    xg, wg = np.polynomial.legendre.leggauss(_DIRECT_ORDER)
    window = m + s * np.linspace(-_Z_MAX, _Z_MAX, 27)[None, :]
    if breaks_y is not None:
        extra = np.clip(breaks_y[None, :], window[:, :1], window[:, -1:])
        window = np.sort(np.concatenate([window, extra], 1), 1)
    left, right = window[:, :-1, None], window[:, 1:, None]
    y = 0.5 * (left + right) + 0.5 * (right - left) * xg
    t = (y - m[:, :, None]) / s
    wy = 0.5 * (right - left) * wg * np.exp(-0.5 * t * t) / (s * math.sqrt(2.0 * math.pi))
    return y.reshape(m.shape[0], -1), wy.reshape(m.shape[0], -1)


def _direct_pair(act, a, b, rho, sets_a, sets_b, order):
    group = int(_scale_group(np.array([max(a, b)]))[0])
    z, wz = _scale_rule(group, 1.0, _DIRECT_ORDER)
    fu = _evaluate(act, math.sqrt(a) * z, order)
    s = math.sqrt(max(0.0, (1.0 - rho) * (1.0 + rho)))
    sb = math.sqrt(b)
    if s * sb < 1e-6:  # v is a function of z alone up to (s sqrt(b))^2 / 2 < 1e-12
        gv = _evaluate(act, sb * rho * z, order)
        return np.array([(fu[i] * gv[j]) @ wz for i, j in zip(sets_a, sets_b, strict=True)])
    half = _graded_breaks(0.5 / max(1.0, sb), 1.0)
    half = half[half <= 1.0]
    grade = np.concatenate([-half[:0:-1], half])  # transition of phi(sqrt(b) y) at y = 0
    m = rho * z
    near = np.abs(m) < 1.0 + _Z_MAX * s
    acc = np.zeros(len(sets_a))
    for sel, breaks_y in ((near, grade), (~near, None)):
        idx = np.flatnonzero(sel)
        step = max(1, _CHUNK // ((grade.size + 27) * _DIRECT_ORDER))
        for q0 in range(0, idx.size, step):
            q = idx[q0 : q0 + step]
            y, wy = _inner_rule(m[q, None], s, breaks_y)
            gv = _evaluate(act, sb * y, order)
            for k, (i, j) in enumerate(zip(sets_a, sets_b, strict=True)):
                inner = np.einsum("qn,qn->q", gv[j], wy)
                acc[k] += (fu[i][q] * inner) @ wz[q]
    return acc


# --------------------------------------------------------------------------------------------------
# driver
# --------------------------------------------------------------------------------------------------
# (set of u, set of v, factor) of T, Tdot and with ``grad`` Ta, Tb, Tda, Tdb, Tdc
_VALUE_SERIES = ((0, 0, 1.0), (1, 1, 1.0))
_GRAD_SERIES = ((2, 0, 0.5), (0, 2, 0.5), (3, 1, 0.5), (1, 3, 0.5), (2, 2, 1.0))


class RowTable(NamedTuple):
    """Series coefficients of the distinct variances of a set of rows (see :func:`row_table`)."""

    var: np.ndarray  # distinct variances
    index: np.ndarray  # row -> position in ``var``
    C: np.ndarray
    nterms: np.ndarray
    R: np.ndarray
    M: np.ndarray
    grad: bool
    tier: int = 0
    parity: np.ndarray | None = None  # see coefficient_table

    @property
    def nbytes(self):
        return sum(x.nbytes for x in (self.var, self.index, self.C, self.nterms, self.R, self.M))


def row_table(act, var, grad=False, tier=0):
    """Coefficients for rows with variances ``var`` (computed once per distinct variance).

    The first tier holds the terms most pairs need; pairs whose series does not converge there
    take the next tiers (:func:`_hard_pairs`). Many distinct variances take the first tier by
    interpolation (:func:`_interpolated_table`) where it is exact to round-off.
    """
    uvar, inv = np.unique(np.asarray(var, dtype=float), return_inverse=True)
    order = 3 if grad else 1
    table = _interpolated_table(act, uvar, order) if tier == 0 else None
    C, nterms, R, M, parity = table or coefficient_table(act, uvar, order, tier)
    return RowTable(uvar, inv, C, nterms, R, M, grad, tier, parity)


_SEGMENT = math.log(100.0)  # log-variance span of one interpolation segment (two decades)
_NODES = 40  # Chebyshev nodes per segment
_CHECKS = 6  # points per segment where the interpolant is checked against the exact table
_INTERP_TOL = 1e-13  # largest accepted interpolation error, relative to sqrt(E[phi^(j)^2])


def _chebyshev(lo, hi, m):
    """The ``m`` Chebyshev points of the first kind on [lo, hi] and their barycentric weights."""
    j = np.arange(m)
    theta = np.pi * (j + 0.5) / m
    return 0.5 * (lo + hi) + 0.5 * (hi - lo) * np.cos(theta), (-1.0) ** j * np.sin(theta)


def _barycentric(nodes, weights, x):
    """The matrix ``B`` with ``B @ f(nodes) = p(x)``, ``p`` the interpolant of ``f`` at ``nodes``."""
    d = x[:, None] - nodes[None, :]
    hit = d == 0.0
    B = weights[None, :] / np.where(hit, 1.0, d)
    rows = hit.any(axis=1)
    B[rows] = hit[rows]  # a point on a node takes that node's value
    return B / B.sum(axis=1, keepdims=True)


def _interpolated_table(act, var, order):
    """The first tier of :func:`coefficient_table` for many distinct variances, interpolated.

    The coefficients and moments are smooth functions of ``log(v)``: they are computed exactly
    at ``_NODES`` Chebyshev points of every two decades of the variances and interpolated
    (barycentric formula) to the others. Each segment is also computed exactly at ``_CHECKS``
    points between the nodes; if the interpolant misses any of them by more than
    ``_INTERP_TOL`` of the coefficients' scale, ``None`` is returned (compute every row).
    Returns ``None`` as well where there are too few variances for it to pay.
    """
    pos = var > 0.0
    logv = np.log(var[pos])
    if logv.size == 0:
        return None
    lo, hi = float(logv.min()), float(logv.max())
    n_seg = max(1, math.ceil((hi - lo) / _SEGMENT))
    if var.size < 3 * n_seg * (_NODES + _CHECKS):
        return None
    edges = np.linspace(lo, hi, n_seg + 1)
    cheb = [_chebyshev(edges[g], edges[g + 1], _NODES) for g in range(n_seg)]
    checks = [
        edges[g] + (edges[g + 1] - edges[g]) * (np.arange(_CHECKS) + 0.5) / _CHECKS
        for g in range(n_seg)
    ]
    exact_at = np.concatenate([np.exp(np.concatenate([c[0], k])) for c, k in zip(cheb, checks, strict=True)])
    exact_at = np.concatenate([exact_at, var[~pos]])  # variances 0 exactly
    Cx, nx, _, Mx, parity = coefficient_table(act, exact_at, order, 0, tails=False)
    K = Cx.shape[2]
    C = np.empty((order + 1, var.size, K))
    M = np.empty((order + 1, order + 1, var.size))
    scale = np.sqrt(np.abs(np.einsum("jjr->jr", Mx)))  # (sets, rows) of the exact points
    seg = np.clip(np.searchsorted(edges, np.log(np.where(pos, var, 1.0)), side="right") - 1,
                  0, n_seg - 1)
    step = _NODES + _CHECKS
    for g in range(n_seg):
        nodes = slice(g * step, g * step + _NODES)
        test = slice(g * step + _NODES, (g + 1) * step)
        B = _barycentric(cheb[g][0], cheb[g][1], checks[g])
        for j in range(order + 1):
            err = np.abs(B @ Cx[j, nodes] - Cx[j, test]).max(axis=1) / scale[j, test]
            if not np.all(err <= _INTERP_TOL):
                return None
        err = np.abs(np.einsum("ck,ijk->ijc", B, Mx[:, :, nodes]) - Mx[:, :, test])
        if not np.all(err <= _INTERP_TOL * scale[:, None, test] * scale[None, :, test]):
            return None
        rows = np.flatnonzero(pos & (seg == g))
        B = _barycentric(cheb[g][0], cheb[g][1], np.log(var[rows]))
        with single_threaded_blas():
            for j in range(order + 1):
                C[j, rows] = B @ Cx[j, nodes]
            M[:, :, rows] = Mx[:, :, nodes] @ B.T
    zero = np.flatnonzero(~pos)
    C[:, zero] = Cx[:, n_seg * step :]
    M[:, :, zero] = Mx[:, :, n_seg * step :]
    nterms = np.full(var.size, int(nx.min()), dtype=np.int64)
    return C, nterms, _tail_energies(C, nterms, M), M, parity


def table_bytes(n_rows, grad=False):
    """Upper bound of :attr:`RowTable.nbytes` for ``n_rows`` distinct variances."""
    n_sets = 4 if grad else 2
    return 8 * n_rows * (n_sets * (2 * _SHARP_TERMS + 1) + n_sets * n_sets + 3)


def _spec(grad):
    spec = _VALUE_SERIES + (_GRAD_SERIES if grad else ())
    sets_a = np.array([s[0] for s in spec], dtype=np.int64)
    sets_b = np.array([s[1] for s in spec], dtype=np.int64)
    return sets_a, sets_b, np.array([s[2] for s in spec])


def _unpack(out, grad):
    if not grad:
        return out[0], out[1]
    T, Td, Ta, Tb, Tda, Tdb, Tdc = out
    return T, Td, Ta, Tb, Td.copy(), Tda, Tdb, Tdc


def pair_moments(act, table, ia, ib, c, same):
    """Gaussian expectations for pairs of rows of ``table``: ``(T, Tdot)`` or the 8 partials.

    Parameters
    ----------
    act : Activation
    table : RowTable
    ia, ib : ndarray of int (p,)
        The rows of the two members of each pair.
    c : ndarray (p,)
        Covariances.
    same : ndarray of bool (p,)
        Pairs of a row with itself (one-dimensional moments, exact correlation one).
    """
    sets_a, sets_b, factors = _spec(table.grad)
    ia = table.index[ia]
    ib = table.index[ib]
    if np.all(same):
        return _unpack(
            factors[:, None] * table.M[sets_a[:, None], sets_b[:, None], ia[None, :]], table.grad
        )
    a, b = table.var[ia], table.var[ib]
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.sqrt(a) * np.sqrt(b)
        rho = np.where(q > 0, c / np.where(q > 0, q, 1.0), 0.0)
    rho = np.clip(rho, -1.0, 1.0)
    same = same | ((ia == ib) & (rho >= 1.0 - 1e-15))  # duplicate rows: the 1-D moments, exactly
    rho[same] = 1.0
    out = np.empty((factors.shape[0], ia.shape[0]))
    ok = np.empty(ia.shape[0], dtype=np.bool_)
    firsts, steps = _orders(table.parity, sets_a, sets_b)
    _series(
        table.C, table.R, table.nterms, ia, ib, rho, sets_a, sets_b, firsts, steps, factors, _TOL,
        out, ok,
    )
    if same.any():  # a row with itself: the one-dimensional moments, exactly
        rows = ia[same]
        out[:, same] = factors[:, None] * table.M[sets_a[:, None], sets_b[:, None], rows[None, :]]
        ok[same] = True
    bad = np.flatnonzero(~ok)
    if bad.size:
        out[:, bad] = _hard_pairs(act, table, ia[bad], ib[bad], rho[bad])
    return _unpack(out, table.grad)


def _hard_pairs(act, table, ia, ib, rho):
    """Longer series (the next tiers) for the rows involved, then the direct 2-D rule."""
    sets_a, sets_b, factors = _spec(table.grad)
    order = 3 if table.grad else 1
    out = np.empty((factors.shape[0], ia.shape[0]))
    left = np.arange(ia.shape[0])
    for tier in range(table.tier + 1, 3):
        rows, inv = np.unique(np.concatenate([ia[left], ib[left]]), return_inverse=True)
        C, nterms, R, _, parity = coefficient_table(act, table.var[rows], order, tier)
        firsts, steps = _orders(parity, sets_a, sets_b)
        part = np.empty((factors.shape[0], left.shape[0]))
        ok = np.empty(left.shape[0], dtype=np.bool_)
        ja, jb = inv[: left.shape[0]], inv[left.shape[0] :]
        _series(C, R, nterms, ja, jb, rho[left], sets_a, sets_b, firsts, steps, factors, _TOL, part, ok)
        out[:, left[ok]] = part[:, ok]
        left = left[~ok]
        if not left.size:
            return out
    a, b = table.var[ia[left]], table.var[ib[left]]
    out[:, left] = factors[:, None] * _direct(act, a, b, rho[left], sets_a, sets_b, order)
    return out


def moments_rows(act, var, ia, ib, c, same, grad=False):
    """:func:`pair_moments` with the table of ``var`` (the variances of the rows) built here."""
    if np.all(same):  # the diagonal: one-dimensional moments only
        sets_a, sets_b, factors = _spec(grad)
        M = diagonal_moments(act, np.asarray(var, dtype=float)[ia], 3 if grad else 1)
        return _unpack(factors[:, None] * M[sets_a, sets_b], grad)
    return pair_moments(act, row_table(act, var, grad), ia, ib, c, same)
