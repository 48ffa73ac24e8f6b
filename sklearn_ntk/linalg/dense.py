"""Dense factorisations of a symmetric positive semi-definite matrix: eigh and Cholesky."""

from __future__ import annotations

import numpy as np
import scipy.linalg
from scipy.linalg import lapack

__all__ = ["eigh_psd", "cholesky_psd", "cho_solve"]


def eigh_psd(A):
    """Eigendecomposition ``(evals, evecs)`` of a symmetric matrix, ascending (``A`` kept)."""
    return scipy.linalg.eigh(np.array(A, dtype=np.float64, order="F", copy=True),
                             overwrite_a=True, check_finite=False, driver="evd")


def cholesky_psd(A, shift=0.0):
    r"""Lower Cholesky factor of :math:`A + \text{shift}\,I`, or ``None`` if numerically singular.

    Singular means: the factorisation fails, or the reciprocal condition number (LAPACK
    ``dpocon``, estimated only when a pivot is below :math:`\sqrt\epsilon\max_i A_{ii}`) is
    below :math:`n\epsilon`.
    """
    n = A.shape[0]
    eps = np.finfo(np.float64).eps
    F = np.array(A, dtype=np.float64, order="F", copy=True)
    if shift:
        F.flat[:: n + 1] += shift
    diag_max = float(np.max(np.diagonal(F)))
    if diag_max <= 0:
        return None
    c, info = lapack.dpotrf(F, lower=1, overwrite_a=1, clean=0)
    if info != 0:
        return None
    if np.min(np.diagonal(c)) ** 2 < np.sqrt(eps) * diag_max:
        anorm = np.abs(A).sum(axis=0).max() + shift
        rcond, info2 = lapack.dpocon(c, anorm, uplo="L")
        if info2 != 0 or rcond < n * eps:
            return None
    return c


def cho_solve(c, R):
    """Solve with a lower Cholesky factor from :func:`cholesky_psd`."""
    return scipy.linalg.cho_solve((c, True), R, check_finite=False)
