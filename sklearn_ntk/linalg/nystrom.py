r"""Streaming Nyström reductions: the ``m x m`` sums that the rank-``m`` dynamics need.

With centres :math:`C` (``m`` rows), the Nyström features :math:`\varphi(x)` of
:class:`NystromBasis` satisfy :math:`\varphi(x)\varphi(x')^\top = K(x, C) K(C, C)^{+} K(C, x')`.
Fitting needs only :math:`G = \Phi^\top W \Phi`, :math:`B = \Phi^\top W Y` and
:math:`\sum_i w_i \lVert y_i\rVert^2` (and for covariances the cross sum
:math:`\Phi_\Theta^\top W \Phi_K`), which add up over row blocks: ``O(m^2 + block m)`` memory.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
from scipy.linalg import blas, lapack

__all__ = ["NystromBasis", "NystromSums", "accumulate_block"]


class NystromBasis:
    r"""Features :math:`\varphi(x) = K(x, C_P)\,L^{-\top}` from a pivoted Cholesky of ``K(C, C)``.

    ``K(C, C)[P][:, P] = L L^T`` on the ``r`` pivots ``P`` whose Schur complement is above
    round-off (LAPACK ``dpstrf``, tolerance :math:`m\,\epsilon\max_i K_{ii}`); the centres
    left out are numerically in the span of the others, so
    :math:`\varphi(x)\varphi(x')^\top = K(x, C) K(C, C)^{+} K(C, x')` to round-off.

    When ``K(C, C)`` is well conditioned (estimated condition number at most
    ``max_condition``), the reductions are accumulated in kernel coordinates
    (:math:`K(X, C)^\top W K(X, C)` by one ``syrk`` per block, a third of the work) and mapped to
    feature coordinates once at the end; the round-off this adds is about
    :math:`\epsilon\,\kappa(K(C, C))` relative. Otherwise every block is mapped first.

    Parameters
    ----------
    K_mm : ndarray of shape (m, m)
        Kernel between the centres.
    max_condition : float, default=1e5
        Largest estimated condition number accumulated in kernel coordinates.
    """

    def __init__(self, K_mm, max_condition=1e5):
        m = K_mm.shape[0]
        c, piv, rank, info = lapack.dpstrf(np.array(K_mm, dtype=np.float64, order="F"),
                                           tol=-1.0, lower=1)
        if info < 0:
            raise ValueError("the centre kernel K(C, C) is not a valid symmetric matrix")
        r = int(rank) if np.max(np.diagonal(K_mm), initial=0.0) > 0 else 0
        self.m, self.rank = m, r
        self.cols = np.asarray(piv[:r], dtype=np.intp) - 1
        self.L = np.tril(c[:r, :r])
        # the map K(x, C) -> varphi(x) as one (m, r) matrix: rows of P L^{-T}, zero off pivots
        self.map = np.zeros((m, r))
        self.map[self.cols] = scipy.linalg.solve_triangular(self.L, np.eye(r), lower=True,
                                                            trans="T", check_finite=False)
        d = np.abs(np.diagonal(self.L))
        self.direct = bool(r and (d.max() / d.min()) ** 2 <= max_condition)

    def lift(self, K_block):
        """The coordinates reductions are accumulated in: ``K_block`` itself when ``direct``."""
        return K_block if self.direct else self.features(K_block)

    def finish(self, M, side=0):
        """Map an accumulated matrix from lifted to feature coordinates along axis ``side``."""
        if not self.direct:
            return M
        return self.map.T @ M if side == 0 else M @ self.map

    def features(self, K_block):
        """``varphi`` of a block of rows from its kernel against all centres: (b, r)."""
        return K_block @ self.map

    def dual(self, coef):
        """Coefficients over all ``m`` centres from feature-space ones of shape (r, ...)."""
        return (self.map @ coef.reshape(self.rank, -1)).reshape((self.m,) + coef.shape[1:])


def _weighted_gram(A):
    """``A^T A`` by BLAS ``syrk`` (half the work of a general product), symmetric."""
    if A.shape[0] == 0:
        return np.zeros((A.shape[1], A.shape[1]))
    At = A.T if A.flags.c_contiguous else np.asfortranarray(A.T)  # Fortran (r, b): no copy
    upper = blas.dsyrk(1.0, At, trans=0, lower=0)
    return np.triu(upper) + np.triu(upper, 1).T


class NystromSums:
    """The additive reductions of one fit (``+`` combines partial sums of disjoint blocks).

    Blocks are summed in the coordinates of :meth:`NystromBasis.lift`; :meth:`finish` maps the
    total to feature coordinates (the attributes below).

    Attributes
    ----------
    gram : ndarray of shape (r, r)
        :math:`\\Phi^\\top W \\Phi` of the dynamics kernel's features.
    proj : ndarray of shape (r, k)
        :math:`\\Phi^\\top W Y`.
    yy : float
        :math:`\\sum_i w_i \\lVert y_i\\rVert^2`.
    cross : ndarray of shape (r, r_K) or None
        :math:`\\Phi^\\top W \\Psi` with the NNGP features :math:`\\Psi` (``kind="ntk"``
        covariances only).
    weight : float
        :math:`\\sum_i w_i`.
    """

    def __init__(self, gram, proj, yy, cross, weight):
        self.gram, self.proj, self.yy, self.cross, self.weight = gram, proj, yy, cross, weight

    def finish(self, basis_dyn, basis_nngp=None):
        """The sums in feature coordinates (see :meth:`NystromBasis.lift`)."""
        gram = basis_dyn.finish(basis_dyn.finish(self.gram, 0), 1)
        cross = None
        if self.cross is not None:
            cross = basis_nngp.finish(basis_dyn.finish(self.cross, 0), 1)
        return NystromSums(0.5 * (gram + gram.T), basis_dyn.finish(self.proj, 0), self.yy,
                           cross, self.weight)

    def __add__(self, other):
        cross = None if self.cross is None else self.cross + other.cross
        return NystromSums(self.gram + other.gram, self.proj + other.proj, self.yy + other.yy,
                           cross, self.weight + other.weight)


def accumulate_block(kernel_blocks, Xb, Yb, wb, basis_dyn, basis_nngp=None):
    """The :class:`NystromSums` of one block of rows.

    Parameters
    ----------
    kernel_blocks : callable
        ``kernel_blocks(Xb)`` returns ``(dyn, nngp)``: the kernels between ``Xb`` and the
        centres (``nngp`` may be None when not needed).
    Xb : ndarray of shape (b, d)
    Yb : ndarray of shape (b, k)
    wb : ndarray of shape (b,)
        Sample weights of the block.
    basis_dyn, basis_nngp : NystromBasis
        Feature maps of the centre kernels (``basis_nngp`` only for the cross sum).
    """
    dyn, nngp = kernel_blocks(Xb)
    Phi = basis_dyn.lift(dyn)
    unit = bool(np.all(wb == 1.0))
    gram = _weighted_gram(Phi if unit else Phi * np.sqrt(wb)[:, None])
    WPhi = Phi if unit else Phi * wb[:, None]
    proj = WPhi.T @ Yb
    cross = None
    if basis_nngp is not None:
        cross = WPhi.T @ basis_nngp.lift(nngp)
    yy = float(np.einsum("i,ik,ik->", wb, Yb, Yb))
    return NystromSums(gram, proj, yy, cross, float(wb.sum()))
