"""The exact dynamics without a factorisation: Lanczos for finite times, CG at ``t = inf``."""

from __future__ import annotations

import numpy as np
import scipy.sparse.linalg

from ..linalg.cg import conjugate_gradient
from ..linalg.filters import spectral_filter
from ..linalg.lanczos import lanczos_filter
from .common import warn_singular

__all__ = ["matrix_free_filter", "lambda_max"]


def lambda_max(op):
    """Largest eigenvalue of a symmetric operator (ARPACK, 1e-6 relative)."""
    n = op.n
    if n <= 2:
        return float(np.linalg.eigvalsh(op.matmat(np.eye(n)))[-1])
    lin = scipy.sparse.linalg.LinearOperator(
        (n, n), matvec=lambda v: op.matmat(np.reshape(v, (-1, 1)))[:, 0], dtype=np.float64)
    lam = scipy.sparse.linalg.eigsh(lin, k=1, which="LA", tol=1e-6, v0=np.ones(n),
                                    return_eigenvectors=False)
    return float(lam[0])


def matrix_free_filter(op, R, times, *, scale, dynamics, alpha):
    r""":math:`h_t(A + \alpha I)\,R` for every time: array (T, n, k).

    Finite times share one Lanczos basis per column; ``t = inf`` is solved by conjugate
    gradients, and by the Lanczos filter's minimum-norm limit (with a
    :class:`~sklearn_ntk.exceptions.SingularKernelWarning`) when CG does not converge.
    """
    out = np.empty((len(times), *R.shape))
    finite = np.isfinite(times)
    if (~finite).any():
        W = conjugate_gradient(op, R, shift=alpha)
        if W is None:  # singular: the minimum-norm limit of the filter
            warn_singular()
            W = _lanczos_times(op, R, np.array([np.inf]), scale, dynamics, alpha)
        out[~finite] = W
    if finite.any():
        out[finite] = _lanczos_times(op, R, times[finite], scale, dynamics, alpha)
    return out


def _lanczos_times(op, R, times, scale, dynamics, alpha):
    def fn(theta):
        return spectral_filter(theta[None, :], times[:, None], scale, dynamics)

    res = lanczos_filter(op, R, fn, shift=alpha)
    if res is None:
        raise RuntimeError("the Lanczos filter did not converge within 1000 iterations; "
                           "use solver='eigh' or n_components")
    return res
