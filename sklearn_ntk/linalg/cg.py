r"""Conjugate gradients for :math:`(A + \alpha I)\,W = R` (the ``t = inf`` mean, matrix-free)."""

from __future__ import annotations

import numpy as np

__all__ = ["conjugate_gradient"]


def conjugate_gradient(op, R, *, shift=0.0, tol=1e-12, max_iter=None):
    r"""Solve :math:`(A + \text{shift}\,I)\,W = R` column-wise by conjugate gradients.

    All columns share each operator product.

    Parameters
    ----------
    op : operator
        Symmetric positive (semi-)definite operator (``n``, ``matmat``).
    R : ndarray of shape (n, k)
    shift : float
        Diagonal term (``alpha``).
    tol : float
        Stop when every residual is below ``tol`` times its right-hand side's norm.
    max_iter : int, optional
        Default ``10 n``.

    Returns
    -------
    W : ndarray of shape (n, k) or None
        ``None`` when not converged (e.g. a singular system with ``shift=0``).
    """
    n, k = R.shape
    max_iter = 10 * n if max_iter is None else max_iter
    W = np.zeros((n, k))
    r = R.copy()
    p = r.copy()
    rr = np.einsum("ij,ij->j", r, r)
    goal = (tol * np.linalg.norm(R, axis=0)) ** 2
    for _ in range(max_iter):
        if np.all(rr <= goal):
            return W
        Ap = op.matmat(p)
        if shift:
            Ap = Ap + shift * p
        pAp = np.einsum("ij,ij->j", p, Ap)
        if np.any(pAp[rr > goal] <= 0):
            return None
        a = np.where(rr > goal, rr / np.where(pAp > 0, pAp, 1.0), 0.0)
        W += a * p
        r -= a * Ap
        rr_new = np.einsum("ij,ij->j", r, r)
        p = r + (rr_new / np.where(rr > 0, rr, 1.0)) * p
        rr = rr_new
    return W if np.all(rr <= goal) else None
