r"""Lanczos evaluation of :math:`f_t(A)\,R` for many times from one Krylov basis.

No eigendecomposition of ``A``: each iteration costs one product with the operator. The same
basis serves every requested time (only the small tridiagonal eigenproblem is re-evaluated).
"""

from __future__ import annotations

import numpy as np
import scipy.linalg

from .filters import null_threshold

__all__ = ["lanczos_filter"]


def _tridiagonal_coefs(alphas, betas, fn, n):
    """Coefficients in the Krylov basis for every time: array (T, m)."""
    theta, S = scipy.linalg.eigh_tridiagonal(alphas, betas)
    H = np.atleast_2d(fn(theta))
    H[:, theta <= null_threshold(np.abs(theta).max(), n)] = 0.0
    return (H * S[0]) @ S.T


def _converged(coef, prev, tol):
    if prev is None:
        return False
    m_prev = prev.shape[1]
    diff = np.linalg.norm(coef[:, :m_prev] - prev, axis=1) + np.linalg.norm(coef[:, m_prev:],
                                                                            axis=1)
    return bool(np.all(diff <= tol * np.maximum(np.linalg.norm(coef, axis=1), 1e-300)))


def _lanczos_column(matvec, r, fn, tol, max_iter, check_every):
    """One Lanczos run for one right-hand side; returns (T, n) or None if not converged."""
    n = r.shape[0]
    beta0 = np.linalg.norm(r)
    m_max = min(max_iter, n)
    Q = np.empty((m_max + 1, n))
    Q[0] = r / beta0
    alphas, betas = np.zeros(m_max), np.zeros(m_max)
    prev, stable = None, 0
    for j in range(m_max):
        v = matvec(Q[j])
        alphas[j] = Q[j] @ v
        v -= alphas[j] * Q[j]
        if j > 0:
            v -= betas[j - 1] * Q[j - 1]
        for _ in range(2):  # full reorthogonalisation, twice is enough
            v -= Q[: j + 1].T @ (Q[: j + 1] @ v)
        betas[j] = np.linalg.norm(v)
        m = j + 1
        invariant = betas[j] <= 1e-13 * max(np.abs(alphas[:m]).max(), 1e-300)
        if invariant or m % check_every == 0 or m == m_max:
            coef = _tridiagonal_coefs(alphas[:m], betas[: m - 1], fn, n)
            stable = stable + 1 if _converged(coef, prev, tol) else 0
            prev = coef
            if stable >= 2 or invariant or m == n:
                return beta0 * (coef @ Q[:m])
        if invariant:
            break
        Q[j + 1] = v / betas[j]
    return None


def lanczos_filter(op, R, fn, *, shift=0.0, tol=1e-10, max_iter=1000, check_every=4):
    r"""Approximate :math:`f(A + \text{shift}\,I)\,R` for every time, by Lanczos.

    Parameters
    ----------
    op : operator
        Symmetric positive semi-definite operator (``n``, ``matmat``).
    R : ndarray of shape (n, k)
        Right-hand sides (one Lanczos run per column).
    fn : callable
        ``fn(theta)`` maps Ritz values of shape (m,) to filter values of shape (T, m) (or (m,)).
        Ritz values below the round-off threshold get filter 0.
    shift : float
        Added to the operator's diagonal (``alpha``).
    tol : float
        Convergence: the Krylov coefficients of every time change by less than ``tol``
        (relative) over two successive checks.
    max_iter : int
        Largest Krylov dimension.
    check_every : int
        Iterations between convergence checks.

    Returns
    -------
    out : ndarray of shape (T, n, k) or None
        ``None`` when some column did not converge within ``max_iter`` iterations.
    """
    n, k = R.shape
    T = np.atleast_2d(fn(np.ones(1))).shape[0]
    out = np.zeros((T, n, k))

    def matvec(v):
        w = op.matmat(v[:, None])[:, 0]
        return w + shift * v if shift else w

    for c in range(k):
        if not np.any(R[:, c]):
            continue
        res = _lanczos_column(matvec, R[:, c], fn, tol, max_iter, check_every)
        if res is None:
            return None
        out[:, :, c] = res
    return out
