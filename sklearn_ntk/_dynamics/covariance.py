"""Ensemble covariances of the exact and Nyström dynamics (Lee et al. 2019, eq. 16)."""

from __future__ import annotations

import numpy as np

from ..linalg.dense import cho_solve
from .common import as_float_matrix, times_arg

__all__ = ["exact_covariance", "combine_covariance", "symmetrise"]


def combine_covariance(prior, A, cross, AK=None, *, diag, nngp_filter=None, B=None, out=None):
    r"""``prior + A K A^T - (A C^T + C A^T)`` (``kind="ntk"``) or ``prior - B F B^T`` (``"nngp"``).

    ``A`` is :math:`\Theta(x, X) T` in some basis, ``cross`` the NNGP test-train kernel in the
    same basis, ``AK`` = ``A @ K_basis``; for ``"nngp"``, ``B`` is the test kernel in the basis
    and ``nngp_filter`` the diagonal filter. The result is written into ``out`` (shape of
    ``prior``) when given; a full covariance then needs at most one more ``m x m`` temporary
    (``kind="ntk"``) and none for ``"nngp"``.
    """
    if diag:
        if nngp_filter is not None:
            res = prior - np.einsum("mn,n,mn->m", B, nngp_filter, B)
        else:
            res = prior + np.einsum("mn,mn->m", AK, A) - 2.0 * np.einsum("mn,mn->m", A, cross)
        if out is None:
            return res
        out[...] = res
        return out
    if nngp_filter is not None:
        out = np.matmul(B * nngp_filter, B.T, out=out)
        np.subtract(prior, out, out=out)
    else:
        out = np.matmul(AK, A.T, out=out)
        c = A @ cross.T
        out -= c
        out -= c.T
        del c
        out += prior
    return symmetrise(out)


def symmetrise(a, block_rows=256):
    """``a <- (a + a^T) / 2`` in place, by row blocks (temporaries of ``block_rows x m``)."""
    m = a.shape[0]
    for s in range(0, m, block_rows):
        e = min(m, s + block_rows)
        avg = a[s:e, s:] + a[s:, s:e].T
        avg *= 0.5
        a[s:e, s:] = avg
        a[s:, s:e] = avg.T
    return a


def _check_args(dyn, kernel_test_train, nngp_test_test, nngp_test_train, diag):
    n = dyn.n_samples
    Ktd = as_float_matrix(kernel_test_train, "kernel_test_train", (None, n))
    m = Ktd.shape[0]
    Ktt = np.asarray(nngp_test_test, dtype=np.float64)
    want = (m,) if diag else (m, m)
    if Ktt.shape != want:
        raise ValueError(f"nngp_test_test has shape {Ktt.shape}, expected {want}")
    Ntd = None
    if dyn.kind == "ntk":
        if dyn.nngp_train is None or nngp_test_train is None:
            raise ValueError(
                "kind='ntk' covariances need the NNGP kernel: pass nngp_train to the "
                "constructor and nngp_test_train here"
            )
        Ntd = as_float_matrix(nngp_test_train, "nngp_test_train", (m, n))
    return Ktd, Ktt, Ntd


def _covariance_inf_cholesky(dyn, c, Ktd, Ktt, Ntd, diag, out):
    """t = inf from the Cholesky factor: O(n^2 m), no eigendecomposition."""
    Kd = dyn._dl(Ktd)
    A = cho_solve(c, Kd.T).T  # Theta(x, X) D A^-1, (m, n)
    if dyn.kind == "nngp":  # h_inf = A^-1: K - K D A^-1 D K
        if diag:
            out[...] = Ktt - np.einsum("mn,mn->m", A, Kd)
            return out
        out = np.matmul(A, Kd.T, out=out)
        np.subtract(Ktt, out, out=out)
        return symmetrise(out)
    AK = A @ dyn._weighted_dense(dyn.nngp_train)
    return combine_covariance(Ktt, A, dyn._dl(Ntd), AK, diag=diag, out=out)


def exact_covariance(dyn, t, kernel_test_train, nngp_test_test, nngp_test_train=None, *,
                     diag=False):
    """Covariance of :class:`~sklearn_ntk.dynamics.KernelDynamics` (see its ``covariance``)."""
    scalar, times = times_arg(t)
    Ktd, Ktt, Ntd = _check_args(dyn, kernel_test_train, nngp_test_test, nngp_test_train, diag)
    want = Ktt.shape
    out = np.empty((len(times),) + want)
    if np.isinf(times).all():
        c = dyn.cholesky()
        if c is not None:
            _covariance_inf_cholesky(dyn, c, Ktd, Ktt, Ntd, diag, out[0])
            if len(times) > 1:
                out[1:] = out[0]
            return out[0] if scalar else out
    evals, evecs = dyn.eigh()
    B = dyn._dl(Ktd) @ evecs  # test kernel in the eigenbasis (with D)
    if dyn.kind == "nngp":
        H2 = dyn._filters(times, doubled=True)
        for i, h in enumerate(H2):
            combine_covariance(Ktt, None, None, diag=diag, nngp_filter=h, B=B, out=out[i])
    else:
        C = dyn._dl(Ntd) @ evecs
        if dyn._nngp_eig is None:
            dyn._nngp_eig = evecs.T @ dyn._weighted_dense(dyn.nngp_train) @ evecs
        H = dyn._filters(times)
        for i, h in enumerate(H):
            A = B * h
            combine_covariance(Ktt, A, C, A @ dyn._nngp_eig, diag=diag, out=out[i])
    return out[0] if scalar else out
