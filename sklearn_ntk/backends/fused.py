"""The fused compiled recursion of fully-connected networks (the plain ``Dense -> [phi -> Dense] x L`` case).

State of the recursion for a pair of inputs :math:`(x, y)` after a Dense layer:
``(s12, s11, s22, ntk)`` = :math:`(\\Sigma(x,y), \\Sigma(x,x), \\Sigma(y,y), \\Theta(x,y))`.
A network ``Dense -> [phi -> Dense] x depth`` maps it by small pure functions (the same ones
compiled for scalars inside the fused drivers and for arrays in the numerical driver):

* :func:`_input_dense` -- the input layer: :math:`\\Sigma^1 = \\sigma_w^2\\, x\\cdot y/d + \\sigma_b^2`,
  :math:`\\Theta^1 = \\Sigma^1`;
* :func:`_moments` -- one scalar closed form per activation giving
  :math:`(\\mathcal{T}, \\dot{\\mathcal{T}})` of the current state, or :func:`numeric_moments`
  (Hermite series per pair, :mod:`sklearn_ntk.backends.hermite`, for everything else);
* :func:`_dense` -- the Dense update :math:`\\Sigma' = \\sigma_w^2\\mathcal{T} + \\sigma_b^2`,
  :math:`\\Theta' = \\Sigma' + \\sigma_w^2\\dot{\\mathcal{T}}\\,\\Theta`
  (:func:`_dense_tangent` for its forward-mode derivative).

New layer types (convolution, pooling, residual) are new functions of the same state.

For closed-form activations all layers are fused into one compiled, parallel pass over the
``(n, m)`` output (:func:`_pairs_values`, :func:`_pairs_grad`): the matrix is read and written once,
only the upper triangle is computed when ``Y is None``, and the diagonal entries of ``k(X)`` take
the exact :math:`\\theta = 0` branch, so they carry no round-off in the angle and their derivative
is exact. Within a row the layers run outer and the pairs inner; for the angle activations
(abs-ReLU family, sign) the inner loop is branch-free (:func:`_angle_core`, with the arccos of
:mod:`sklearn_ntk.backends.vecmath`) and compiles to SIMD code. The per-row variances
:math:`\\Sigma^l(x, x)` of every layer are computed beforehand in ``O(n (d + depth))``
(:func:`_diag_values`), which is also how ``diag(X)`` is evaluated.

Forward-mode derivatives with respect to :math:`\\log\\sigma_b` and :math:`\\log\\sigma_w` are
propagated alongside (``grad`` variants) through the chain rule with the partial derivatives of
:math:`\\mathcal{T}` and :math:`\\dot{\\mathcal{T}}` with respect to ``(a, b, c)``.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from ..activations import (
    CODE_AB_RELU,
    CODE_ERF,
    CODE_GELU,
    CODE_IDENTITY,
    CODE_SIGN,
    CODE_SIN,
)
from . import hermite, vecmath
from .hermite import moments_rows, pair_moments, row_table
from .threads import run_tasks, single_threaded_blas

_PI = math.pi
_TWO_PI = 2.0 * math.pi
_RHO_SNAP = 1e-14
_jit = numba.njit(cache=True, fastmath=False, error_model="numpy")
_ijit = numba.njit(cache=True, fastmath=False, error_model="numpy", inline="always")
_nogil = numba.njit(cache=True, fastmath=False, error_model="numpy", nogil=True)


# --------------------------------------------------------------------------------------------------
# inputs of the first layer: |x|^2 / d and the Gram matrix X Y^T / d, blocked and overflow-safe
# --------------------------------------------------------------------------------------------------
_GRAM_BLOCK_BYTES = 1 << 26  # temporaries of one block of Gram rows (64 MiB)
_GRAM_MIN_ROWS = 256  # rows of one triangular Gram block at least (keeps the products efficient)
_SCALE_ABOVE = 2.0**256  # inputs with larger entries are scaled by a power of two (exact)


def _power_of_two_scale(X):
    """Exponent e such that ``X * 2**-e`` has entries below 1 (0 when no scaling is needed)."""
    big = float(np.max(np.abs(X))) if X.size else 0.0
    if big < _SCALE_ABOVE:
        return 0
    return math.frexp(big)[1]


def row_sq_norms(X):
    """``|x|^2 / d`` for every row, without intermediate overflow (inf where the value is)."""
    e = _power_of_two_scale(X)
    Xs = np.ldexp(X, -e) if e else X
    sq = np.einsum("ij,ij->i", Xs, Xs) / X.shape[1]
    if not e:
        return sq
    with np.errstate(over="ignore"):  # inf where |x|^2/d is not representable; the caller refuses
        return np.ldexp(sq, 2 * e)


def gram_matrix(X, Y=None, out=None, block_bytes=_GRAM_BLOCK_BYTES):
    """``X @ Y.T / d`` computed in blocks of rows (``Y is None``: only the upper triangle j >= i).

    Blocks bound the temporaries and keep every product a general matrix product: numpy's
    symmetric ``X @ X.T`` (BLAS syrk) path crashes the interpreter for large n (numpy issue 19685).
    Inputs with entries beyond ``2**256`` are scaled by a power of two, so that the products
    overflow only where the result itself does. With ``Y is None`` the strictly lower triangle of
    the result is left unset.
    """
    sym = Y is None
    n, d = X.shape
    ex = _power_of_two_scale(X)
    Xs = np.ldexp(X, -ex) if ex else X
    if sym:
        ey = ex
        Yt = Xs.T.copy()  # a separate buffer: never the syrk path
    else:
        ey = _power_of_two_scale(Y)
        Yt = (np.ldexp(Y, -ey) if ey else Y).T
    m = Yt.shape[1]
    if out is None:
        out = np.empty((n, m))
    step = max(1, min(n, block_bytes // (8 * max(m, 1))))
    if sym:  # blocks of the upper triangle: thin enough that little below the diagonal is computed
        step = min(step, max(_GRAM_MIN_ROWS, -(-n // 16)))
    scale = ex + ey

    def one_block(i0):
        i1 = min(n, i0 + step)
        j0 = i0 if sym else 0
        block = out[i0:i1, j0:]
        np.matmul(Xs[i0:i1], Yt[:, j0:], out=block)
        block /= d
        if scale:
            with np.errstate(over="ignore"):
                block[...] = np.ldexp(block, scale)

    _run_blocks(one_block, range(0, n, step), flops=2.0 * n * m * d / (2 if sym else 1))
    return out


_PARALLEL_GRAM_FLOPS = 5e7  # below this a Gram is computed on the calling thread alone


def _run_blocks(fn, starts, flops):
    """Run ``fn`` on every block start: one BLAS thread per block, blocks from a queue.

    Threaded BLAS splits each product over the cores and waits for the slowest part; on a busy
    machine that barrier costs several times the product itself (a 4000 x 4000 Gram: 0.2 s
    instead of 0.03 s). Independent single-threaded blocks taken from a queue
    (:func:`~sklearn_ntk.backends.threads.run_tasks`) keep both the quiet-machine speed and the
    busy-machine one.
    """
    starts = list(starts)

    def blocks(t0, t1):
        for i0 in starts[t0:t1]:
            fn(i0)

    with single_threaded_blas():
        if flops < _PARALLEL_GRAM_FLOPS:
            blocks(0, len(starts))
        else:
            run_tasks(blocks, len(starts))


# --------------------------------------------------------------------------------------------------
# per-activation closed forms: (a, b, c) = (Var u, Var v, Cov(u, v)) -> (T, Tdot[, partials])
# --------------------------------------------------------------------------------------------------
@_jit
def _angle(a, b, c, same):
    """Return (q, rho, theta, sin_theta) with q = sqrt(a b); exact theta = 0 when ``same``."""
    if same:
        return a, 1.0, 0.0, 0.0
    q = math.sqrt(a * b)  # sqrt(a * a) == a exactly, so identical rows give rho == 1 exactly
    if q == 0.0 or math.isinf(q):
        q = math.sqrt(a) * math.sqrt(b)  # avoid under/overflow of the product
    rho = c / q
    # angles below the round-off floor of the Gram matrix (|1 - rho| < 1e-14, theta < 1.5e-7)
    # are indistinguishable from 0: snap them, so duplicate rows behave exactly like the diagonal
    if rho >= 1.0 - _RHO_SNAP:
        return q, 1.0, 0.0, 0.0
    if rho <= -1.0 + _RHO_SNAP:
        return q, -1.0, _PI, 0.0
    return q, rho, math.acos(rho), math.sqrt((1.0 - rho) * (1.0 + rho))


_HUGE = 2.0**128  # variances beyond this are handled by an exact power-of-two rescaling


@_jit
def _unit_scale(x):
    """A power of two ``s`` with ``x * s`` of order one when ``x > _HUGE``, else 1.0 (exact)."""
    if x > _HUGE:
        return math.ldexp(1.0, -math.frexp(x)[1])
    return 1.0


@_jit
def _gelu_values(a, b, c):
    """GELU moments, written without cancellation (all terms positive when c >= 0).

    With A = 1 + a, B = 1 + b and det = AB - c^2:
    T = c/4 + c asin(c/sqrt(AB))/(2 pi) + (ab det + c^2) / (2 pi AB sqrt(det)),
    Tdot = dT/dc = 1/4 + asin(c/sqrt(AB))/(2 pi) + c (3 + a + b)/(2 pi AB sqrt(det))
           + c^3 / (2 pi AB det^{3/2}).
    Huge variances are rescaled by a power of two ``s`` (identical numbers when ``s = 1``), so
    the result overflows only where it is not representable.
    """
    s = _unit_scale(max(a, b))
    a = a * s
    b = b * s
    c = c * s
    aa = s + a
    bb = s + b
    ab_c2 = a * b - c * c
    if ab_c2 < 0.0:
        ab_c2 = 0.0
    det = s * s + s * (a + b) + ab_c2 if s != 1.0 else 1.0 + a + b + ab_c2
    rdet = math.sqrt(det)
    prod = aa * bb
    rho_w = c / math.sqrt(prod)
    if rho_w > 1.0:
        rho_w = 1.0
    elif rho_w < -1.0:
        rho_w = -1.0
    asn = math.asin(rho_w) / _TWO_PI
    if s == 1.0:
        t = 0.25 * c + c * asn + (a * b * det + c * c) / (_TWO_PI * prod * rdet)
        td = (
            0.25
            + asn
            + c * (3.0 + a + b) / (_TWO_PI * prod * rdet)
            + c * c * c / (_TWO_PI * prod * det * rdet)
        )
        return t, td
    q = s / rdet  # the same terms with every factor of s placed where nothing under/overflows
    t = (0.25 * c + c * asn) / s + (a * b * (rdet / s) + c * c * q) / (_TWO_PI * prod)
    td = 0.25 + asn + c * q * ((3.0 * s + a + b) + c * c * (s / det)) / (_TWO_PI * prod)
    return t, td


@_jit
def _lin(x, sx, y, sy):
    """sx * x + sy * y for 3-vectors stored as tuples (forward-mode helper)."""
    return (sx * x[0] + sy * y[0], sx * x[1] + sy * y[1], sx * x[2] + sy * y[2])


@_jit
def _gelu_grad(a, b, c):
    """Forward-mode derivatives of :func:`_gelu_values` w.r.t. (a, b, c).

    Returns (T, Tdot, grad T, grad Tdot) with the gradients as 3-tuples.
    """
    t, td = _gelu_values(a, b, c)
    aa = 1.0 + a
    bb = 1.0 + b
    prod = aa * bb
    g_prod = (bb, aa, 0.0)
    ab_c2 = a * b - c * c
    if ab_c2 < 0.0:
        ab_c2 = 0.0
    det = 1.0 + a + b + ab_c2
    g_det = (1.0 + b, 1.0 + a, -2.0 * c)
    rdet = math.sqrt(det)
    g_rdet = _lin(g_det, 0.5 / rdet, g_det, 0.0)
    rp = math.sqrt(prod)
    rho = c / rp
    if rho > 1.0:
        rho = 1.0
    elif rho < -1.0:
        rho = -1.0
    # d rho = dc / rp - c d(prod) / (2 prod rp)
    g_rho = _lin((0.0, 0.0, 1.0), 1.0 / rp, g_prod, -c / (2.0 * prod * rp))
    # sqrt(1 - rho^2) = sqrt(det / prod) exactly, without cancellation
    g_asn = _lin(g_rho, rp / (_TWO_PI * rdet), g_rho, 0.0)
    asn = math.asin(rho) / _TWO_PI
    d1 = _TWO_PI * prod * rdet
    g_d1 = _lin(g_prod, _TWO_PI * rdet, g_rdet, _TWO_PI * prod)
    n1 = a * b * det + c * c
    g_n1 = _lin((b * det, a * det, 2.0 * c), 1.0, g_det, a * b)
    # T = c/4 + c asn + n1 / d1
    g_t = _lin((0.0, 0.0, 0.25 + asn), 1.0, g_asn, c)
    g_t = _lin(g_t, 1.0, _lin(g_n1, 1.0 / d1, g_d1, -n1 / (d1 * d1)), 1.0)
    # Tdot = 1/4 + asn + n2 / d1 + n3 / d3
    n2 = c * (3.0 + a + b)
    g_n2 = (c, c, 3.0 + a + b)
    n3 = c * c * c
    g_n3 = (0.0, 0.0, 3.0 * c * c)
    d3 = d1 * det
    g_d3 = _lin(g_d1, det, g_det, d1)
    g_td = _lin(g_asn, 1.0, _lin(g_n2, 1.0 / d1, g_d1, -n2 / (d1 * d1)), 1.0)
    g_td = _lin(g_td, 1.0, _lin(g_n3, 1.0 / d3, g_d3, -n3 / (d3 * d3)), 1.0)
    return t, td, g_t, g_td


@_jit
def _erf_terms(a, b, c, same):
    """(s, (1+2a)(1+2b) s^2, ((1+2a)(1+2b) - 4c^2) s^2) for erf, with the power of two ``s``
    of :func:`_unit_scale` (1.0 unless the variances are huge; then nothing overflows)."""
    s = _unit_scale(max(a, b))
    a = a * s
    b = b * s
    c = c * s
    ab_c2 = a * b - c * c
    if ab_c2 < 0.0 or same:
        ab_c2 = 0.0
    if s == 1.0:
        return 1.0, (1.0 + 2.0 * a) * (1.0 + 2.0 * b), 1.0 + 2.0 * a + 2.0 * b + 4.0 * ab_c2
    d = (s + 2.0 * a) * (s + 2.0 * b)
    return s, d, s * s + 2.0 * s * (a + b) + 4.0 * ab_c2


@_jit
def _moments(code, p0, p1, a, b, c, same):
    """(T, Tdot) of activation ``code`` with parameters ``(p0, p1)`` at the state ``(a, b, c)``."""
    if code == CODE_AB_RELU:
        if a <= 0.0 or b <= 0.0:
            return 0.0, 0.0  # a degenerate input: u == 0 and phi(0) = 0 (phi'(0) = 0 as in torch)
        q, rho, th, st = _angle(a, b, c, same)
        diff2 = (p0 - p1) * (p0 - p1)
        td = ((p0 * p0 + p1 * p1) * _PI - diff2 * th) / _TWO_PI
        return diff2 * q * st / _TWO_PI + td * q * rho, td
    if code == CODE_IDENTITY:
        return c, 1.0
    if code == CODE_ERF:
        s, d, g = _erf_terms(a, b, c, same)
        r = 2.0 * c * s / math.sqrt(d)
        if r > 1.0:
            r = 1.0
        elif r < -1.0:
            r = -1.0
        return 2.0 / _PI * math.asin(r), 4.0 / _PI * s / math.sqrt(g)
    if code == CODE_SIGN:
        if a <= 0.0 or b <= 0.0:
            return 0.0, 0.0
        q, rho, th, st = _angle(a, b, c, same)
        return 1.0 - 2.0 * th / _PI, 0.0
    if code == CODE_SIN:
        h = 0.5 * (a + b)
        ep = 0.5 * math.exp(c - h)
        em = 0.5 * math.exp(-c - h)
        return ep - em, ep + em
    if code == CODE_GELU:
        if same:
            c = a
        return _gelu_values(a, b, c)
    return math.nan, math.nan


@_jit
def _moments_grad(code, p0, p1, a, b, c, same):
    """(T, Tdot, dT/da, dT/db, dT/dc, dTdot/da, dTdot/db, dTdot/dc) for the closed forms."""
    t, td = _moments(code, p0, p1, a, b, c, same)
    if code == CODE_AB_RELU:
        if a <= 0.0 or b <= 0.0:
            return t, td, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0
        q, rho, th, st = _angle(a, b, c, same)
        cc = q * rho
        ta = (t - cc * td) / (2.0 * a)
        tb = (t - cc * td) / (2.0 * b)
        if st == 0.0:
            return t, td, ta, tb, td, 0.0, 0.0, 0.0
        k = (p0 - p1) * (p0 - p1) / _TWO_PI / st  # dTdot/drho
        return t, td, ta, tb, td, -k * rho / (2.0 * a), -k * rho / (2.0 * b), k / q
    if code == CODE_IDENTITY:
        return t, td, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0
    if code == CODE_ERF:
        s, d, g = _erf_terms(a, b, c, same)
        pa = s + 2.0 * a * s
        pb = s + 2.0 * b * s
        rg = math.sqrt(g)
        f = 4.0 / _PI
        g32 = g * rg
        cs = c * s * s
        return (
            t,
            td,
            -f * cs * pb / (d * rg),
            -f * cs * pa / (d * rg),
            td,
            -f * pb * s * s / g32,
            -f * pa * s * s / g32,
            f * 4.0 * cs * s / g32,
        )
    if code == CODE_SIGN:
        if a <= 0.0 or b <= 0.0:
            return t, td, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0
        q, rho, th, st = _angle(a, b, c, same)
        if st == 0.0:
            return t, td, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0
        k = 2.0 / _PI / st  # dT/drho
        return t, td, -k * rho / (2.0 * a), -k * rho / (2.0 * b), k / q, 0.0, 0.0, 0.0
    if code == CODE_SIN:
        return t, td, -0.5 * t, -0.5 * t, td, -0.5 * td, -0.5 * td, t
    if code == CODE_GELU:
        if same:
            c = a
        t, td, g_t, g_td = _gelu_grad(a, b, c)
        return t, td, g_t[0], g_t[1], g_t[2], g_td[0], g_td[1], g_td[2]
    return math.nan, math.nan, math.nan, math.nan, math.nan, math.nan, math.nan, math.nan


# --------------------------------------------------------------------------------------------------
# layer functions (pure; compiled for scalars in the fused drivers and for arrays in the numeric one)
# --------------------------------------------------------------------------------------------------
@_jit
def _input_dense(gram, w2, b2):
    """First Dense layer on ``gram = x.y / d``: Sigma^1 = Theta^1 and its tangents (b, w)."""
    s = w2 * gram + b2
    return s, 2.0 * b2 + 0.0 * gram, 2.0 * w2 * gram


@_jit
def _dense(t, td, th, w2, b2):
    """Dense layer after an activation: (T, Tdot, Theta) -> (Sigma', Theta')."""
    s_new = w2 * t + b2
    return s_new, s_new + w2 * td * th


@_jit
def _dense_tangent(t, td, th, dt, dtd, dth, w2, b2, wrt_w):
    """Tangent of :func:`_dense` along d log sigma_w (``wrt_w``) or d log sigma_b."""
    if wrt_w:
        ds = w2 * dt + 2.0 * w2 * t
        return ds, ds + w2 * (2.0 * td * th + dtd * th + td * dth)
    ds = w2 * dt + 2.0 * b2
    return ds, ds + w2 * (dtd * th + td * dth)


# --------------------------------------------------------------------------------------------------
# fused drivers (closed forms)
# --------------------------------------------------------------------------------------------------
@_nogil
def _diag_values_rows(r0, r1, code, p0, p1, w2, b2, depth, sq, hist, ntk):
    """Rows ``r0 .. r1 - 1`` of :func:`_diag_values`, without the GIL."""
    for i in range(r0, r1):
        s = _input_dense(sq[i], w2, b2)[0]
        th = s
        hist[0, i] = s
        for layer in range(depth):
            t, td = _moments(code, p0, p1, s, s, s, True)
            s, th = _dense(t, td, th, w2, b2)
            hist[layer + 1, i] = s
        ntk[i] = th


def _diag_values(code, p0, p1, w2, b2, depth, sq):
    """Per-row recursion. ``sq`` = |x|^2/d. Returns (sigma history (depth+1, n), ntk (n,))."""
    n = sq.shape[0]
    hist = np.empty((depth + 1, n))
    ntk = np.empty(n)
    args = (code, p0, p1, w2, b2, depth, sq, hist, ntk)
    run_tasks(lambda r0, r1: _diag_values_rows(r0, r1, *args), n)
    return hist, ntk


@_nogil
def _diag_grad_rows(r0, r1, code, p0, p1, w2, b2, depth, sq, hist, dhist, ntk, dntk):
    """Rows ``r0 .. r1 - 1`` of :func:`_diag_grad`, without the GIL."""
    for i in range(r0, r1):
        s, ds_b, ds_w = _input_dense(sq[i], w2, b2)
        th, dth_b, dth_w = s, ds_b, ds_w
        hist[0, i] = s
        dhist[0, i, 0] = ds_b
        dhist[0, i, 1] = ds_w
        for layer in range(depth):
            t, td, ta, tb, tc, tda, tdb, tdc = _moments_grad(code, p0, p1, s, s, s, True)
            dt_b = (ta + tb + tc) * ds_b
            dt_w = (ta + tb + tc) * ds_w
            dtd_b = (tda + tdb + tdc) * ds_b
            dtd_w = (tda + tdb + tdc) * ds_w
            ds_b, dth_b = _dense_tangent(t, td, th, dt_b, dtd_b, dth_b, w2, b2, False)
            ds_w, dth_w = _dense_tangent(t, td, th, dt_w, dtd_w, dth_w, w2, b2, True)
            s, th = _dense(t, td, th, w2, b2)
            hist[layer + 1, i] = s
            dhist[layer + 1, i, 0] = ds_b
            dhist[layer + 1, i, 1] = ds_w
        ntk[i] = th
        dntk[i, 0] = dth_b
        dntk[i, 1] = dth_w


def _diag_grad(code, p0, p1, w2, b2, depth, sq):
    """Per-row recursion with forward derivatives w.r.t. (log sigma_b, log sigma_w).

    Returns hist (depth+1, n), dhist (depth+1, n, 2), ntk (n,), dntk (n, 2).
    """
    n = sq.shape[0]
    hist = np.empty((depth + 1, n))
    dhist = np.empty((depth + 1, n, 2))
    ntk = np.empty(n)
    dntk = np.empty((n, 2))
    args = (code, p0, p1, w2, b2, depth, sq, hist, dhist, ntk, dntk)
    run_tasks(lambda r0, r1: _diag_grad_rows(r0, r1, *args), n)
    return hist, dhist, ntk, dntk


@_ijit
def _angle_params(code, p0, p1):
    """``(relu, diff2, even)`` of an angle activation for :func:`_angle_core`."""
    return code == CODE_AB_RELU, (p0 - p1) * (p0 - p1), (p0 * p0 + p1 * p1) * _PI


@_ijit
def _angle_core(relu, diff2, even, a, b, q, c):
    """Branch-free closed form of an angle activation: ``(ok, rho, theta, sin theta, T, Tdot)``.

    What :func:`_angle` + :func:`_moments` compute for ``same=False`` (the same snapping of
    ``|1 - rho| < 1e-14``), given ``q = sqrt(a) sqrt(b)`` (used where ``a b`` under- or overflows); ``relu`` selects the abs-ReLU family
    (``diff2 = (p0 - p1)^2``, ``even = (p0^2 + p1^2) pi``), otherwise sign. Selects only and
    :mod:`~sklearn_ntk.backends.vecmath`, so that loops calling it compile to SIMD code.
    """
    # q as the scalar path forms it (sqrt(a b), exact for a == b, so duplicate rows give rho == 1
    # and T == Tdot a exactly, like the diagonal); the given product of roots where a b under- or
    # overflows
    ab = math.sqrt(a * b)
    q = ab if (ab > 0.0) & (ab < math.inf) else q
    rho = c / q
    rho = 1.0 if rho >= 1.0 - _RHO_SNAP else rho
    rho = -1.0 if rho <= -1.0 + _RHO_SNAP else rho
    th = vecmath.acos(rho)
    st = math.sqrt(abs((1.0 - rho) * (1.0 + rho)))  # abs: see vecmath
    td_relu = (even - diff2 * th) / _TWO_PI
    t_relu = diff2 * q * st / _TWO_PI + td_relu * q * rho
    t = t_relu if relu else 1.0 - 2.0 * th / _PI
    td = td_relu if relu else 0.0
    ok = (a > 0.0) & (b > 0.0)
    return ok, rho, th, st, (t if ok else 0.0), (td if ok else 0.0)


@_jit
def _angle_layer(code, p0, p1, w2, b2, a, sa, hb, sb, s_row, t_row):
    """One layer of an angle activation (abs-ReLU family or sign) over a row of pairs, in place.

    ``s_row``/``t_row`` hold (Sigma, Theta) of the pairs of one row, ``a``/``sa`` the variance of
    the row and its square root, ``hb``/``sb`` those of the columns (all arrays of one length,
    indexed from 0: a loop from an unknown start defeats LLVM's dependence analysis).
    Vectorised (:func:`_angle_core`).
    """
    relu, diff2, even = _angle_params(code, p0, p1)
    for j in range(s_row.shape[0]):
        t, td = _angle_core(relu, diff2, even, a, hb[j], sa * sb[j], s_row[j])[4:]
        s_new = w2 * t + b2
        t_row[j] = s_new + w2 * td * t_row[j]
        s_row[j] = s_new


@_jit
def angle_activation(code, p0, p1, ha, sa, hb, sb, n_row, t_row):
    """Activation step of an angle activation over entries, in place: Sigma <- T, Theta <- Tdot Theta.

    ``ha``/``sa`` and ``hb``/``sb``: variances of the two members of each entry and their square
    roots, as arrays of the entries' length (any of them may be a length-1 array, broadcast).
    No entry takes the ``same`` branch (callers redo those). Vectorised (:func:`_angle_core`).
    """
    relu, diff2, even = _angle_params(code, p0, p1)
    if ha.shape[0] == 1:
        a, s = ha[0], sa[0]
        for j in range(n_row.shape[0]):
            t, td = _angle_core(relu, diff2, even, a, hb[j], s * sb[j], n_row[j])[4:]
            n_row[j] = t
            t_row[j] = td * t_row[j]
    else:
        for j in range(n_row.shape[0]):
            t, td = _angle_core(relu, diff2, even, ha[j], hb[j], sa[j] * sb[j], n_row[j])[4:]
            n_row[j] = t
            t_row[j] = td * t_row[j]


@_jit
def _erf_layer(w2, b2, a, hb, s_row, t_row):
    """One erf layer over a row of pairs, in place, vectorised (:func:`_angle_layer`'s layout).

    The arithmetic of :func:`_moments` for ``same=False`` (with ``vecmath.asin``). Returns
    ``False`` without touching the row when a variance exceeds ``_HUGE`` (then the scalar
    closed form, which rescales, is used).
    """
    big = a > _HUGE
    for j in range(hb.shape[0]):
        big |= hb[j] > _HUGE
    if big:
        return False
    da = 1.0 + 2.0 * a
    for j in range(s_row.shape[0]):
        b = hb[j]
        c = s_row[j]
        ab_c2 = a * b - c * c
        ab_c2 = ab_c2 if ab_c2 > 0.0 else 0.0
        r = 2.0 * c / math.sqrt(abs(da * (1.0 + 2.0 * b)))  # abs: see vecmath
        r = 1.0 if r > 1.0 else r
        r = -1.0 if r < -1.0 else r
        t = 2.0 / _PI * vecmath.asin(r)
        td = 4.0 / _PI / math.sqrt(abs(1.0 + 2.0 * a + 2.0 * b + 4.0 * ab_c2))
        s_new = w2 * t + b2
        t_row[j] = s_new + w2 * td * t_row[j]
        s_row[j] = s_new
    return True


@_jit
def _is_angle(code):
    """Whether :func:`_angle_layer` handles activation ``code``."""
    return code == CODE_AB_RELU or code == CODE_SIGN


@_jit
def _row_layers(i, code, p0, p1, w2, b2, depth, g_row, hx, shx, hy, shy, sym, s_row, t_row):
    """All layers for the pairs of row ``i``: ``g_row`` (Gram row) -> ``(s_row, t_row)``.

    ``s_row`` or ``t_row`` may be ``g_row`` itself (each element is read before it is written).
    The layers run outer, the pairs of the row inner: the pairs are independent, so the inner
    loop vectorises (angle activations, erf) or at least pipelines; the row stays in cache
    between layers. With ``sym`` only ``j >= i`` is computed and the diagonal takes the exact
    ``same`` branch.
    """
    m = g_row.shape[0]
    j0 = i if sym else 0
    for j in range(j0, m):
        v = w2 * g_row[j] + b2
        s_row[j] = v
        t_row[j] = v
    angle = _is_angle(code)
    for layer in range(depth):
        a = hx[layer, i]
        if angle:
            hb, sb = hy[layer, j0:], shy[layer, j0:]
            _angle_layer(code, p0, p1, w2, b2, a, shx[layer, i], hb, sb, s_row[j0:], t_row[j0:])
            continue
        if code == CODE_ERF and _erf_layer(w2, b2, a, hy[layer, j0:], s_row[j0:], t_row[j0:]):
            continue
        for j in range(j0, m):
            t, td = _moments(code, p0, p1, a, hy[layer, j], s_row[j], False)
            s_row[j], t_row[j] = _dense(t, td, t_row[j], w2, b2)
    if sym:  # the diagonal: exact theta = 0 at every layer
        s = hx[0, i]
        th = s
        for _ in range(depth):
            t, td = _moments(code, p0, p1, s, s, s, True)
            s, th = _dense(t, td, th, w2, b2)
        s_row[i] = s
        t_row[i] = th


@_jit
def _row_values(i, code, p0, p1, w2, b2, depth, gram, hx, shx, hy, shy, sym, nngp_out, ntk_out):
    """One row of :func:`_pairs_values`."""
    _row_layers(
        i, code, p0, p1, w2, b2, depth, gram[i], hx, shx, hy, shy, sym, nngp_out[i], ntk_out[i]
    )


@_nogil
def _values_tasks(t0, t1, n, sym, args):
    """Tasks ``t0 .. t1 - 1`` of :func:`_pairs_values` (row ``t``, and row ``n - 1 - t`` with
    ``sym`` so that every task has the same work), without the GIL."""
    for task in range(t0, t1):
        _row_values(task, *args)
        other = n - 1 - task
        if sym and other != task:
            _row_values(other, *args)


def _n_tasks(n, sym):
    return (n + 1) // 2 if sym else n


def _pairs_values(code, p0, p1, w2, b2, depth, gram, hx, hy, sym, nngp_out, ntk_out):
    """All layers for every pair. ``gram`` = X Y^T / d; ``hx``/``hy`` per-row variance histories.

    With ``sym`` only i <= j is computed and the caller mirrors the lower triangle; rows are
    processed in pairs (task, n - 1 - task) so that tasks have equal work, blocks of tasks from
    a queue (:func:`~sklearn_ntk.backends.threads.run_tasks`). ``nngp_out`` may be ``gram``
    itself (each element is read before it is written).
    """
    n = gram.shape[0]
    shx = np.sqrt(hx)
    shy = shx if sym else np.sqrt(hy)
    args = (code, p0, p1, w2, b2, depth, gram, hx, shx, hy, shy, sym, nngp_out, ntk_out)
    run_tasks(lambda t0, t1: _values_tasks(t0, t1, n, sym, args), _n_tasks(n, sym))


@_jit
def _row_single(i, code, p0, p1, w2, b2, depth, gram, hx, shx, hy, shy, sym, want_ntk):
    """One row of :func:`_pairs_single`: the wanted output is computed in place in the Gram row,
    the other one in row scratch."""
    g_row = gram[i]
    scratch = np.empty(g_row.shape[0])
    if want_ntk:
        _row_layers(i, code, p0, p1, w2, b2, depth, g_row, hx, shx, hy, shy, sym, scratch, g_row)
    else:
        _row_layers(i, code, p0, p1, w2, b2, depth, g_row, hx, shx, hy, shy, sym, g_row, scratch)


@_nogil
def _single_tasks(t0, t1, n, sym, args):
    """Tasks ``t0 .. t1 - 1`` of :func:`_pairs_single`, without the GIL."""
    for task in range(t0, t1):
        _row_single(task, *args)
        other = n - 1 - task
        if sym and other != task:
            _row_single(other, *args)


def _pairs_single(code, p0, p1, w2, b2, depth, gram, hx, hy, sym, want_ntk):
    """:func:`_pairs_values` for one output (NTK or NNGP), written over ``gram`` in place:
    one n x m array in all (half the memory of both outputs)."""
    n = gram.shape[0]
    shx = np.sqrt(hx)
    shy = shx if sym else np.sqrt(hy)
    args = (code, p0, p1, w2, b2, depth, gram, hx, shx, hy, shy, sym, want_ntk)
    run_tasks(lambda t0, t1: _single_tasks(t0, t1, n, sym, args), _n_tasks(n, sym))


@_jit
def _pair_grad(i, j, code, p0, p1, w2, b2, depth, gram, hx, dhx):
    """One pair of :func:`_pairs_grad` with the scalar closed forms: (Sigma, Theta) and tangents.

    Returns ``(s, ds_b, ds_w, th, dth_b, dth_w)``; ``i == j`` takes the exact ``same`` branch.
    """
    same = i == j
    if same:
        s = hx[0, i]
        ds_b = dhx[0, i, 0]
        ds_w = dhx[0, i, 1]
    else:
        s, ds_b, ds_w = _input_dense(gram[i, j], w2, b2)
    th, dth_b, dth_w = s, ds_b, ds_w
    for layer in range(depth):
        t, td, ta, tb, tc, tda, tdb, tdc = _moments_grad(
            code, p0, p1, hx[layer, i], hx[layer, j], s, same
        )
        da_b = dhx[layer, i, 0]
        da_w = dhx[layer, i, 1]
        db_b = dhx[layer, j, 0]
        db_w = dhx[layer, j, 1]
        dt_b = ta * da_b + tb * db_b + tc * ds_b
        dt_w = ta * da_w + tb * db_w + tc * ds_w
        dtd_b = tda * da_b + tdb * db_b + tdc * ds_b
        dtd_w = tda * da_w + tdb * db_w + tdc * ds_w
        ds_b, dth_b = _dense_tangent(t, td, th, dt_b, dtd_b, dth_b, w2, b2, False)
        ds_w, dth_w = _dense_tangent(t, td, th, dt_w, dtd_w, dth_w, w2, b2, True)
        s, th = _dense(t, td, th, w2, b2)
    return s, ds_b, ds_w, th, dth_b, dth_w


@_ijit
def _angle_partials(relu, diff2, even, a, b, q, c):
    """:func:`_angle_core` with the partials: ``(T, Tdot, Ta, Tb, Tc, Tdot_a, Tdot_b, Tdot_c)``.

    Branch-free; what :func:`_moments_grad` computes for ``same=False``.
    """
    ok, rho, _, sn, t, td = _angle_core(relu, diff2, even, a, b, q, c)
    kfac = diff2 / _TWO_PI if relu else 2.0 / _PI
    kk = kfac / sn if sn != 0.0 else 0.0  # dTdot/drho (ReLU) or dT/drho (sign)
    kk = kk if ok else 0.0
    u = t - q * rho * td
    dk_a = -kk * rho / (2.0 * a)
    dk_b = -kk * rho / (2.0 * b)
    ta = u / (2.0 * a) if relu else dk_a
    tb = u / (2.0 * b) if relu else dk_b
    tc = td if relu else kk / q
    tda = dk_a if relu else 0.0
    tdb = dk_b if relu else 0.0
    tdc = kk / q if relu else 0.0
    return (
        t,
        td,
        ta if ok else 0.0,
        tb if ok else 0.0,
        tc if ok else 0.0,
        tda if ok else 0.0,
        tdb if ok else 0.0,
        tdc if ok else 0.0,
    )


@_jit
def _angle_layer_grad(code, p0, p1, w2, b2, a, sa, da, hb, sb, db_b, db_w, st):
    """:func:`_angle_layer` with forward-mode tangents, in place over a row of pairs.

    ``st`` is the (6, L) state ``(Sigma, dSigma_b, dSigma_w, Theta, dTheta_b, dTheta_w)``; ``da``
    the tangents ``(b, w)`` of the row variance ``a``, ``db_b``/``db_w`` those of the columns.
    Branch-free (:func:`_angle_partials`, :func:`_dense_tangent`).
    """
    relu, diff2, even = _angle_params(code, p0, p1)
    for j in range(st.shape[1]):
        b = hb[j]
        t, td, ta, tb, tc, tda, tdb, tdc = _angle_partials(
            relu, diff2, even, a, b, sa * sb[j], st[0, j]
        )
        th = st[3, j]
        for k in range(2):  # (b, w)
            dc = st[1 + k, j]
            dbk = db_b[j] if k == 0 else db_w[j]
            dt = ta * da[k] + tb * dbk + tc * dc
            dtd = tda * da[k] + tdb * dbk + tdc * dc
            ds, dth = _dense_tangent(t, td, th, dt, dtd, st[4 + k, j], w2, b2, k == 1)
            st[1 + k, j] = ds
            st[4 + k, j] = dth
        st[0, j], st[3, j] = _dense(t, td, th, w2, b2)


@_jit
def _row_grad(i, code, p0, p1, w2, b2, depth, gram, hx, shx, dhx, dhb, dhw, want_ntk, k, dk):
    """One row (j >= i) of :func:`_pairs_grad` into ``k``/``dk``."""
    n = gram.shape[0]
    if _is_angle(code):
        st = np.empty((6, n - i))
        for j in range(i, n):
            st[0, j - i], st[1, j - i], st[2, j - i] = _input_dense(gram[i, j], w2, b2)
            st[3, j - i], st[4, j - i], st[5, j - i] = st[0, j - i], st[1, j - i], st[2, j - i]
        for layer in range(depth):
            a, sa, da = hx[layer, i], shx[layer, i], dhx[layer, i]
            hb, sb, db_b, db_w = hx[layer, i:], shx[layer, i:], dhb[layer, i:], dhw[layer, i:]
            _angle_layer_grad(code, p0, p1, w2, b2, a, sa, da, hb, sb, db_b, db_w, st)
        r0 = 3 if want_ntk else 0
        for j in range(i + 1, n):
            k[i, j] = st[r0, j - i]
            dk[i, j, 0] = st[r0 + 1, j - i]
            dk[i, j, 1] = st[r0 + 2, j - i]
        last = i + 1  # only the diagonal is left: the exact scalar branch
    else:
        last = n
    r0 = 3 if want_ntk else 0
    for j in range(i, last):
        r = _pair_grad(i, j, code, p0, p1, w2, b2, depth, gram, hx, dhx)
        k[i, j] = r[r0]
        dk[i, j, 0] = r[r0 + 1]
        dk[i, j, 1] = r[r0 + 2]


@_nogil
def _grad_tasks(t0, t1, n, args):
    """Tasks ``t0 .. t1 - 1`` of :func:`_pairs_grad`, without the GIL."""
    for task in range(t0, t1):
        _row_grad(task, *args)
        other = n - 1 - task
        if other != task:
            _row_grad(other, *args)


def _pairs_grad(code, p0, p1, w2, b2, depth, gram, hx, dhx, want_ntk, k_out, dk_out):
    """Symmetric k(X) and its gradient w.r.t. (log sigma_b, log sigma_w), upper triangle only."""
    n = gram.shape[0]
    shx = np.sqrt(hx)
    dhb = np.ascontiguousarray(dhx[:, :, 0])
    dhw = np.ascontiguousarray(dhx[:, :, 1])
    args = (code, p0, p1, w2, b2, depth, gram, hx, shx, dhx, dhb, dhw, want_ntk, k_out, dk_out)
    run_tasks(lambda t0, t1: _grad_tasks(t0, t1, n, args), _n_tasks(n, True))


@_nogil
def _mirror_rows(a, r0, r1):
    """Rows ``r0 .. r1 - 1`` of :func:`_mirror` (any trailing axes), without the GIL."""
    for i in range(r0, r1):
        for j in range(i):
            a[i, j] = a[j, i]


def _mirror(a):
    """Copy the upper triangle of a square (n, n) array into the lower one, in place."""
    run_tasks(lambda r0, r1: _mirror_rows(a, r0, r1), a.shape[0])


# --------------------------------------------------------------------------------------------------
# numerical Gaussian expectations (tanh, sigmoid, SiLU, user callables): Hermite series per pair
# --------------------------------------------------------------------------------------------------
def numeric_moments(act, a, b, c, same, grad=False):
    """Gaussian expectations of an activation for flat arrays of pairs (Hermite/Mehler series).

    Parameters
    ----------
    act : Activation
        Provides ``derivatives(x, order)``.
    a, b, c : ndarray of shape (p,)
        Variances of ``u``, ``v`` and their covariance.
    same : ndarray of bool, shape (p,)
        Pairs known to be identical inputs (correlation exactly one).
    grad : bool
        Also return the partial derivatives, via Price's theorem:
        :math:`\\partial_c\\mathcal{T} = \\dot{\\mathcal{T}}`,
        :math:`\\partial_a\\mathcal{T} = \\tfrac12\\mathbb{E}[\\phi^{(2)}(u)\\phi(v)]`,
        :math:`\\partial_c\\dot{\\mathcal{T}} = \\mathbb{E}[\\phi^{(2)}(u)\\phi^{(2)}(v)]`,
        :math:`\\partial_a\\dot{\\mathcal{T}} = \\tfrac12\\mathbb{E}[\\phi^{(3)}(u)\\phi'(v)]`.

    Returns
    -------
    tuple of ndarray
        ``(T, Tdot)`` or ``(T, Tdot, Ta, Tb, Tc, Tda, Tdb, Tdc)``.

    Notes
    -----
    The series coefficients are computed once per distinct variance (see
    :mod:`sklearn_ntk.backends.hermite`); when the pairs come from the rows of a kernel matrix,
    :func:`~sklearn_ntk.backends.hermite.moments_rows` takes the rows directly.
    """
    a = np.asarray(a, dtype=float)
    p = a.shape[0]
    if p == 0:
        return tuple(np.empty(0) for _ in range(8 if grad else 2))
    var = np.concatenate([a, np.asarray(b, dtype=float)])
    idx = np.arange(p)
    same = np.asarray(same, dtype=bool)
    return moments_rows(act, var, idx, idx + p, np.asarray(c, dtype=float), same, grad=grad)


def _numeric_recursion(act, w2, b2, depth, gram, same, rows=None, grad=False, tables=None):
    """Layer-by-layer recursion over flat arrays of pairs with numerical expectations.

    ``rows`` is ``None`` for the diagonal (each pair is a row with itself: a = b = c) or a tuple
    ``(var, dvar, ia, ib)``: the variance history of the rows ``(depth+1, r)``, its tangents
    ``(depth+1, r, 2)`` (or ``None``) and the rows of the two members of each pair; ``tables`` the
    per-layer :class:`~sklearn_ntk.backends.hermite.RowTable` of those rows (built here when
    ``None``; for the diagonal, a list to be filled with the tables of its rows). Uses the same
    layer functions as the compiled drivers. Returns the history of Sigma (depth+1, p), Theta (p,),
    and with ``grad`` the tangents (depth+1, p, 2) and (p, 2).
    """
    s, ds_b, ds_w = _input_dense(gram, w2, b2)
    ds = np.stack([ds_b, ds_w], axis=1)
    if rows is not None and same.any():
        s[same] = rows[0][0][rows[2][same]]
        if grad:
            ds[same] = rows[1][0][rows[2][same]]
    th = s.copy()
    dth = ds.copy()
    out_s, out_ds = [s], [ds]
    diag_idx = np.arange(s.shape[0])
    for layer in range(depth):
        if rows is None and tables is not None:  # the diagonal, keeping each layer's row table
            tables.append(row_table(act, s, grad))
            res = pair_moments(act, tables[-1], diag_idx, diag_idx, s, same)
        elif rows is None:
            res = moments_rows(act, s, diag_idx, diag_idx, s, same, grad=grad)
        else:
            table = tables[layer] if tables is not None else row_table(act, rows[0][layer], grad)
            res = pair_moments(act, table, rows[2], rows[3], s, same)
        t, td = res[0], res[1]
        if grad:
            ta, tb, tc, tda, tdb, tdc = res[2:]
            if rows is None:
                da = db = ds
            else:
                da, db = rows[1][layer][rows[2]], rows[1][layer][rows[3]]
            new_ds = np.empty_like(ds)
            new_dth = np.empty_like(dth)
            for k in range(2):
                dt = ta * da[:, k] + tb * db[:, k] + tc * ds[:, k]
                dtd = tda * da[:, k] + tdb * db[:, k] + tdc * ds[:, k]
                new_ds[:, k], new_dth[:, k] = _dense_tangent(
                    t, td, th, dt, dtd, np.ascontiguousarray(dth[:, k]), w2, b2, k == 1
                )
            ds, dth = new_ds, new_dth
        s, th = _dense(t, td, th, w2, b2)
        out_s.append(s)
        out_ds.append(ds)
    if grad:
        return np.stack(out_s), th, np.stack(out_ds), dth
    return np.stack(out_s), th


def numeric_diag(act, w2, b2, depth, sq, grad=False, tables=None):
    """Per-row recursion with numerical expectations; same outputs as ``_diag_values``/``_diag_grad``.

    ``tables``: an empty list to receive each layer's row table (the series coefficients the
    pairs of these rows need), or ``None`` (only the one-dimensional moments are computed).
    """
    same = np.ones(sq.shape[0], dtype=bool)
    res = _numeric_recursion(act, w2, b2, depth, sq, same, grad=grad, tables=tables)
    if grad:
        hist, th, dhist, dth = res
        return hist, dhist, th, dth
    return res


def _numeric_values(act, w2, b2, depth, gram, hx, hy, sym, tables):
    """``(nngp, ntk)`` of :func:`numeric_pairs`: one compiled pass over the pairs per layer."""
    s = w2 * gram + b2
    if sym:
        np.fill_diagonal(s, hx[0])
    th = s.copy()
    for layer in range(depth):
        hermite.layer_values(act, tables[layer], hx[layer], hy[layer], s, th, w2, b2, sym)
    if sym:
        _mirror(s)
        _mirror(th)
    return s, th


_PAIR_CHUNK = 1 << 18  # pairs per chunk of the numerical recursion (bounds its temporaries)


def numeric_pairs_bytes(n, m, depth, grad=False):
    """Memory :func:`numeric_pairs` allocates: outputs, per-layer row tables, and one chunk of
    pairs (gradients) or one layer's packed tables and flags (values)."""
    outputs = 8 * n * m * (6 if grad else 2)
    tables = depth * hermite.table_bytes(n + m, grad)
    if not grad:
        return outputs + tables + hermite.layer_values_bytes(n, m)
    chunk = 8 * min(n * m, _PAIR_CHUNK + n + m) * (3 * (depth + 1) + 60)
    return outputs + tables + chunk


def numeric_pairs(act, w2, b2, depth, gram, hx, hy, sym, grad=False, dhx=None, tables=None):
    """All layers for every pair with numerical expectations (layer by layer, flat over pairs).

    Returns ``(nngp, ntk)`` or, with ``grad`` (requires ``sym``), ``(nngp, ntk, dnngp, dntk)`` where
    the derivatives have a trailing axis ``(log sigma_b, log sigma_w)``. With ``sym`` only the
    upper triangle is read and computed and the result is mirrored. The series coefficients of
    each layer are computed once for all rows (or taken from ``tables``, those of
    :func:`numeric_diag` on the same rows, when ``sym``); the pairs are processed in chunks of rows.
    """
    n, m = gram.shape
    var = hx if sym else np.concatenate([hx, hy], axis=1)
    if not (sym and tables):
        tables = [row_table(act, var[layer], grad) for layer in range(depth)]
    if not grad:
        return _numeric_values(act, w2, b2, depth, gram, hx, hy, sym, tables)
    outs = [np.empty((n, m)) for _ in range(2)] + [np.empty((n, m, 2)) for _ in range(2 * grad)]
    step = max(1, _PAIR_CHUNK // m)
    for i0 in range(0, n, step):
        rows = np.repeat(np.arange(i0, min(n, i0 + step)), m)
        cols = np.tile(np.arange(m), rows.shape[0] // m)
        if sym:
            keep = cols >= rows
            rows, cols = rows[keep], cols[keep]
        same = rows == cols if sym else np.zeros(rows.shape[0], dtype=bool)
        info = (var, dhx, rows, cols if sym else cols + n)
        res = _numeric_recursion(
            act, w2, b2, depth, gram[rows, cols], same, rows=info, grad=grad, tables=tables
        )
        flat = (res[0][-1], res[1]) + ((res[2][-1], res[3]) if grad else ())
        for out, val in zip(outs, flat, strict=True):
            out[rows, cols] = val
            if sym:
                out[cols, rows] = val
    return tuple(outs)
