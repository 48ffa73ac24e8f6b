r"""Probability that each of independent Gaussian outputs with a common variance is the largest.

For outputs :math:`f_j = \mu_j + \sigma Z_j`, :math:`j = 1..k`, with :math:`Z_j` independent
standard normal, the probability that class :math:`c` wins is the one-dimensional integral

.. math::

    p_c = P\big(\arg\max_j f_j = c\big)
        = \int_{-\infty}^{\infty} \varphi(z) \prod_{j \ne c} \Phi(d_{cj} + z)\,dz,
    \qquad d_{cj} = (\mu_c - \mu_j)/\sigma.

This is the predicted class probability of an infinite ensemble of randomly initialised networks
whose outputs are Gaussian with covariance :math:`\sigma^2 I` (the NTK ensemble, kernel
:math:`\Theta \otimes I`).

Computation (no Monte Carlo), per sample and class, in log space:

* the log-integrand :math:`g(z) = \log\varphi(z) + \sum_{j\ne c}\log\Phi(d_{cj} + z)` is strictly
  concave with :math:`g'' \le -1` (``log Phi`` is concave), so its mode :math:`z^*` is found by
  Newton's method started at ``z = 0`` (``g'`` is decreasing and convex and ``g'(0) > 0``, so the
  iterates increase monotonically to the root), and the mass lies within :math:`z^* \pm 10`
  (:math:`g(z^* + u) \le g(z^*) - u^2/2`);
* the integral is the trapezoidal rule in :math:`\tau` after :math:`z = z^* + a\sinh\tau` with
  :math:`a = |g''(z^*)|^{-1/2}` (dense near the mode, reaching :math:`z^* \pm 10`), accumulated as
  :math:`g(z^*) + \log\sum_i w_i e^{g(z_i) - g(z^*)}`, so that probabilities far below the
  smallest double (``log p`` down to about :math:`-10^{200}`) keep their relative accuracy;
* the ``k`` results are normalised to sum to one (this only removes the quadrature error, about
  ``1e-14``).

Two classes have the closed form :math:`p_1 = \Phi\big((\mu_1 - \mu_0)/(\sqrt2\,\sigma)\big)`.
Where :math:`\sigma = 0` the result is the limit: one-hot on the largest mean, shared equally by
exactly tied means.

Public entry points: :func:`argmax_log_proba`, :func:`argmax_proba`.
"""

from __future__ import annotations

import numpy as np
from scipy.special import erfcx, log_ndtr, logsumexp, ndtr

__all__ = ["argmax_log_proba", "argmax_proba"]

_LOG_SQRT_2PI = 0.5 * np.log(2.0 * np.pi)
_HALF_WIDTH = 10.0  # g(z* + u) <= g(z*) - u^2/2: the neglected mass is below e^-50
_N_HALF = 32  # nodes per side of the mode (65 in all): about 1e-12 relative
_INACTIVE = _HALF_WIDTH + 38.0  # log Phi(38) is about -3e-316
_MAX_NEWTON = 100
_MAX_ABS_D = 1e100  # |mean differences| / std beyond this are clipped (log p ~ -1e200 already)
_LINEAR_ABOVE = -500.0  # log-integrand peak above which the integral is summed in linear space
_CHUNK = 2**21  # elements of the (rows, k, nodes, k) work array per chunk


def _check(mean, std):
    mean = np.asarray(mean, dtype=np.float64)
    if mean.ndim != 2 or mean.shape[1] < 1:
        raise ValueError(f"mean must be a 2-D array (n_samples, n_classes), got shape {mean.shape}")
    std = np.broadcast_to(np.asarray(std, dtype=np.float64), (mean.shape[0],))
    if not (np.isfinite(mean).all() and np.isfinite(std).all()):
        raise ValueError("mean and std must be finite")
    if (std < 0).any():
        raise ValueError("std must be non-negative")
    return mean, std


def _mills(x):
    r"""Inverse Mills ratio :math:`\lambda(x) = \varphi(x)/\Phi(x)` and :math:`x + \lambda(x)`.

    ``x + lambda`` is taken from its asymptotic series below ``-1e3``, where the sum cancels.
    """
    lam = np.sqrt(2.0 / np.pi) / erfcx(-x / np.sqrt(2.0))  # erfcx overflows to inf: lam = 0
    s = x + lam
    far = x < -1e3
    xf = x[far]
    s[far] = -1.0 / xf + 2.0 / xf**3 - 10.0 / xf**5
    return lam, s


def _mode(D):
    r"""Mode of :math:`g(z)` and :math:`-g''` there, for each row of ``D`` (shape (r, k)).

    ``D[i, j] = d_{cj}`` with ``+inf`` for the class itself (a factor ``Phi(inf) = 1``).
    """
    z = np.zeros(D.shape[0])
    curv = np.ones(D.shape[0])
    active = np.ones(D.shape[0], dtype=bool)
    for _ in range(_MAX_NEWTON):
        x = np.minimum(D[active] + z[active, None], 40.0)  # lambda(40) = 0 to double precision
        lam, s = _mills(x)  # lambda is decreasing and convex, lambda' = -lambda (x + lambda)
        dlam = np.clip(-lam * s, -1.0, 0.0)
        grad = -z[active] + lam.sum(axis=1)
        hess = -1.0 + dlam.sum(axis=1)
        step = -grad / hess
        z[active] += step
        curv[active] = -hess
        done = np.abs(step) <= 1e-10 * (1.0 + np.abs(z[active]))
        idx = np.flatnonzero(active)
        active[idx[done]] = False
        if not active.any():
            break
    return z, curv


def _log_integral(D):
    r"""``log`` of :math:`\int\varphi(z)\prod_j\Phi(D_j + z)\,dz` for each row of ``D``."""
    z0, curv = _mode(D)
    a = 1.0 / np.sqrt(curv)
    tau_max = np.arcsinh(_HALF_WIDTH / a)
    u = np.linspace(-1.0, 1.0, 2 * _N_HALF + 1)
    tau = tau_max[:, None] * u  # (r, nodes)
    z = z0[:, None] + a[:, None] * np.sinh(tau)
    # log of dz/dtau times the trapezoid weight dtau (the end nodes' weights are negligible)
    logw = np.log(a * tau_max / _N_HALF)[:, None] + np.log(np.cosh(tau))
    logphi = -0.5 * z * z - _LOG_SQRT_2PI
    # where the integrand's peak is far above the smallest double, work in linear space
    # (ndtr is several times cheaper than log_ndtr; factors that underflow belong to nodes
    # more than 100 orders of magnitude below the peak)
    peak = -0.5 * z0 * z0 - _LOG_SQRT_2PI + log_ndtr(D + z0[:, None]).sum(axis=1)
    lin = peak > _LINEAR_ABOVE
    out = np.empty(D.shape[0])
    if lin.any():
        Dl = D[lin][:, None, :] + z[lin][:, :, None]
        vals = np.exp(logphi[lin] + logw[lin] - peak[lin, None]) * ndtr(Dl).prod(axis=2)
        out[lin] = peak[lin] + np.log(vals.sum(axis=1))
    if not lin.all():
        g = logphi[~lin] + log_ndtr(D[~lin][:, None, :] + z[~lin][:, :, None]).sum(axis=2)
        out[~lin] = logsumexp(g + logw[~lin], axis=1)
    return out


def _log_proba_positive_std(mean, std):
    """Unnormalised log-probabilities (m, k) for rows with ``std > 0``."""
    m, k = mean.shape
    D = (mean[:, :, None] - mean[:, None, :]) / std[:, None, None]  # (m, c, j), never NaN
    np.clip(D, -_MAX_ABS_D, _MAX_ABS_D, out=D)
    D[:, np.arange(k), np.arange(k)] = np.inf
    D = np.sort(D.reshape(m * k, k), axis=1)
    # a competitor with d >= _INACTIVE is a factor Phi(d + z) = 1 to double precision on the
    # whole window (z >= -_HALF_WIDTH): drop those columns, grouping rows by how many remain
    n_active = (D < _INACTIVE).sum(axis=1)
    order = np.argsort(n_active, kind="stable")
    out = np.empty(m * k)
    nodes = 2 * _N_HALF + 1
    start = 0
    while start < m * k:
        width = max(int(n_active[order[min(start + _CHUNK // nodes, m * k) - 1]]), 1)
        stop = min(start + max(1, _CHUNK // (nodes * width)), m * k)
        width = max(int(n_active[order[stop - 1]]), 1)
        rows = order[start:stop]
        out[rows] = _log_integral(D[rows, :width])
        start = stop
    return out.reshape(m, k)


def _log_proba_zero_std(mean):
    """The ``std -> 0`` limit: uniform over the classes with the largest mean, in log space."""
    top = mean == mean.max(axis=1, keepdims=True)
    out = np.full(mean.shape, -np.inf)
    count = top.sum(axis=1, keepdims=True)
    out[top] = -np.broadcast_to(np.log(count), mean.shape)[top]
    return out


def argmax_log_proba(mean, std):
    r"""Log-probability that each output is the largest, for Gaussian outputs of common std.

    Parameters
    ----------
    mean : array_like of shape (n_samples, n_classes)
        Means :math:`\mu_c` of the outputs.
    std : float or array_like of shape (n_samples,)
        Common standard deviation :math:`\sigma \ge 0` of the outputs of each sample (they are
        independent).

    Returns
    -------
    ndarray of shape (n_samples, n_classes)
        :math:`\log P(\arg\max_j f_j = c)`, normalised so that the probabilities sum to one;
        ``-inf`` only where ``std = 0`` and the class's mean is not the largest.
    """
    mean, std = _check(mean, std)
    m, k = mean.shape
    out = np.empty((m, k))
    if k == 1:
        out[:] = 0.0
        return out
    zero = std == 0
    out[zero] = _log_proba_zero_std(mean[zero])
    pos = ~zero
    if pos.any():
        with np.errstate(under="ignore", over="ignore", divide="ignore"):
            if k == 2:
                s = (mean[pos, 1] - mean[pos, 0]) / (np.sqrt(2.0) * std[pos])
                s = np.clip(s, -_MAX_ABS_D, _MAX_ABS_D)
                logp = np.stack([log_ndtr(-s), log_ndtr(s)], axis=1)
            else:
                logp = _log_proba_positive_std(mean[pos], std[pos])
                logp -= logsumexp(logp, axis=1, keepdims=True)
        out[pos] = logp
    return out


def argmax_proba(mean, std):
    r"""Probability that each output is the largest, for Gaussian outputs of common std.

    Parameters
    ----------
    mean : array_like of shape (n_samples, n_classes)
        Means :math:`\mu_c` of the outputs.
    std : float or array_like of shape (n_samples,)
        Common standard deviation :math:`\sigma \ge 0` of the outputs of each sample.

    Returns
    -------
    ndarray of shape (n_samples, n_classes)
        :math:`P(\arg\max_j f_j = c)`; each row sums to one. ``std = 0`` gives the one-hot
        vector of the largest mean (shared equally between exact ties).
    """
    with np.errstate(under="ignore"):
        p = np.exp(argmax_log_proba(mean, std))
    return p / p.sum(axis=1, keepdims=True)
