r"""Spectral filters of kernel gradient descent, evaluated stably for every eigenvalue.

For an eigenvalue :math:`\lambda` of the regularised train kernel and the time scale
:math:`s = \eta t/(nk)`, the training dynamics apply :math:`h_t(\lambda) = \phi_t(\lambda)/\lambda`
with :math:`\phi_t = 1 - e^{-\lambda s}` (gradient flow) or :math:`1 - (1 - \eta\lambda/(nk))^t`
(discrete gradient descent). Eigenvalues that are zero up to round-off (below
:func:`null_threshold`) get :math:`h = 0` in the solvers, so that :math:`t \to \infty` is
continuously the minimum-norm solution.
"""

from __future__ import annotations

import numpy as np

__all__ = ["spectral_filter", "max_stable_learning_rate", "null_threshold", "filter_table",
           "DYNAMICS"]

DYNAMICS = ("flow", "gd")


def null_threshold(lam_max, n):
    r"""Round-off threshold below which an eigenvalue counts as exactly zero.

    Parameters
    ----------
    lam_max : float
        Largest eigenvalue (in absolute value) of the matrix.
    n : int
        Its order.

    Returns
    -------
    float
        :math:`n\,\epsilon\,\lambda_{max}` (the rank tolerance of ``numpy.linalg.pinv``).
    """
    return max(int(n), 1) * np.finfo(np.float64).eps * abs(float(lam_max))


def spectral_filter(lam, t, scale, dynamics="flow"):
    r"""Evaluate :math:`h_t(\lambda) = \phi_t(\lambda)/\lambda` elementwise, with its limit at 0.

    Parameters
    ----------
    lam : array_like
        Eigenvalues of :math:`\tilde\Theta`; negative values (round-off) are clipped to 0.
    t : array_like
        Number of steps (broadcast against ``lam``), ``>= 0``; ``np.inf`` gives
        :math:`1/\lambda` (and ``0`` for :math:`\lambda = 0`, the minimum-norm limit).
    scale : float
        :math:`\eta/(nk)`, so that the time scale is :math:`s = \eta t/(nk)` = ``scale * t``.
    dynamics : {"flow", "gd"}
        ``"flow"``: :math:`h = (1 - e^{-\lambda s})/\lambda`;
        ``"gd"``: :math:`h = (1 - (1 - \text{scale}\,\lambda)^t)/\lambda`, which for
        ``scale * lam > 1`` needs an integer ``t``.

    Returns
    -------
    h : ndarray
        Broadcast shape of ``lam`` and ``t``; equals :math:`s` where :math:`\lambda = 0`.
    """
    if dynamics not in DYNAMICS:
        raise ValueError(f"dynamics must be one of {DYNAMICS}, got {dynamics!r}")
    lam = np.maximum(np.asarray(lam, dtype=np.float64), 0.0)
    t = np.asarray(t, dtype=np.float64)
    lam, t = np.broadcast_arrays(lam, t)
    out = np.empty(lam.shape, dtype=np.float64)
    inf = np.isinf(t)
    pos = lam > 0
    m = inf & pos
    out[m] = 1.0 / lam[m]
    out[inf & ~pos] = 0.0
    fin = ~inf
    t = np.where(fin, t, 0.0)
    s = scale * t
    if dynamics == "flow":
        _flow(lam, s, fin, out)
    else:
        _gd(lam, t, s, scale, fin, out)
    return out


def _flow(lam, s, fin, out):
    z = lam * s
    small = fin & (z < 1e-10)
    out[small] = s[small] * (1.0 - 0.5 * z[small])
    big = fin & ~small
    out[big] = -np.expm1(-z[big]) / lam[big]


def _gd(lam, t, s, scale, fin, out):
    x = scale * lam  # per-step contraction 1 - x
    small = fin & (x * t < 1e-10)
    # (1 - (1-x)^t)/lambda ~ s (1 - (t-1) x / 2)
    out[small] = s[small] * (1.0 - 0.5 * (t[small] - 1.0) * x[small])
    rest = fin & ~small
    le1 = rest & (x <= 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        # x == 1 gives log1p(-1) = -inf and t > 0 here, so the product is -inf: phi = 1
        q = -np.expm1(t[le1] * np.log1p(-x[le1]))
    out[le1] = q / lam[le1]
    gt1 = rest & (x > 1.0)
    if gt1.any():
        tt = t[gt1]
        if not np.all(tt == np.round(tt)):
            raise ValueError(
                "dynamics='gd' with learning_rate * lambda / (n k) > 1 (oscillating modes) "
                "needs an integer number of steps t"
            )
        with np.errstate(over="ignore", invalid="ignore"):
            q = 1.0 - np.power(1.0 - x[gt1], tt)
        out[gt1] = q / lam[gt1]


def filter_table(evals, times, scale, dynamics, tol):
    r"""Filters :math:`h_t(\lambda)` for several times, with round-off null modes set to 0.

    Parameters
    ----------
    evals : ndarray of shape (r,)
        Eigenvalues of the regularised matrix.
    times : ndarray of shape (T,)
        Times in steps (``np.inf`` allowed).
    scale : float
        :math:`\eta/(nk)`.
    dynamics : {"flow", "gd"}
    tol : float
        Eigenvalues ``<= tol`` are treated as exactly zero: their filter is 0 at every time
        (their directions carry no signal for a positive semi-definite kernel).

    Returns
    -------
    ndarray of shape (T, r)
    """
    H = spectral_filter(evals[None, :], np.asarray(times, dtype=np.float64)[:, None], scale,
                        dynamics)
    H[:, evals <= tol] = 0.0
    return H


def max_stable_learning_rate(lambda_max, n_samples, n_outputs=1):
    r"""Largest learning rate for which discrete gradient descent converges.

    Full-batch gradient descent on :math:`\frac{1}{2nk}\sum_{ij}(f_j(x_i) - y_{ij})^2`
    contracts every eigen-direction iff :math:`|1 - \eta\lambda/(nk)| < 1`, i.e.
    :math:`\eta < 2nk/\lambda_{max}`.

    Parameters
    ----------
    lambda_max : float
        Largest eigenvalue of the (regularised) train kernel.
    n_samples, n_outputs : float
        ``n`` (or the total sample weight) and ``k``.

    Returns
    -------
    float
        :math:`2nk/\lambda_{max}` (``inf`` for a zero kernel).
    """
    if lambda_max <= 0:
        return np.inf
    return 2.0 * n_samples * n_outputs / lambda_max
