r"""Streaming Nyström reductions: the ``m x m`` sums that the rank-``m`` dynamics need.

With centres :math:`C` (``m`` rows) and :math:`K_{mm} = K(C, C) = V \Lambda V^\top`, the
Nyström features are :math:`\varphi(x) = K(x, C)\,N` with :math:`N = V_r \Lambda_r^{-1/2}` (the
modes above round-off), so that :math:`\varphi(x)\varphi(x')^\top = K(x, C) K_{mm}^{+} K(C, x')`.
Fitting needs only :math:`G = \Phi^\top W \Phi`, :math:`B = \Phi^\top W Y` and
:math:`\sum_i w_i \lVert y_i\rVert^2` (and for covariances the cross sum
:math:`\Phi_\Theta^\top W \Phi_K`), which add up over row blocks: ``O(m^2 + block m)`` memory.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import blas

from .dense import eigh_psd
from .filters import null_threshold

__all__ = ["inverse_sqrt", "NystromSums", "accumulate_block"]


def inverse_sqrt(K_mm):
    r"""``N`` with :math:`N N^\top = K_{mm}^{+}` over the modes above round-off: ``(m, r)``."""
    evals, evecs = eigh_psd(K_mm)
    keep = evals > null_threshold(evals[-1], len(evals))
    return evecs[:, keep] / np.sqrt(evals[keep])


def _weighted_gram(A):
    """``A^T A`` by BLAS ``syrk`` (half the work of a general product), symmetric."""
    if A.shape[0] == 0:
        return np.zeros((A.shape[1], A.shape[1]))
    upper = blas.dsyrk(1.0, np.asfortranarray(A.T) if not A.flags.c_contiguous else A.T,
                       trans=0, lower=0)
    return np.triu(upper) + np.triu(upper, 1).T


class NystromSums:
    """The additive reductions of one fit (``+`` combines partial sums of disjoint blocks).

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

    def __add__(self, other):
        cross = None if self.cross is None else self.cross + other.cross
        return NystromSums(self.gram + other.gram, self.proj + other.proj, self.yy + other.yy,
                           cross, self.weight + other.weight)


def accumulate_block(kernel_blocks, Xb, Yb, wb, norm_dyn, norm_nngp=None):
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
    norm_dyn, norm_nngp : ndarray of shape (m, r)
        :func:`inverse_sqrt` of the centre kernels (``norm_nngp`` only for the cross sum).
    """
    dyn, nngp = kernel_blocks(Xb)
    Phi = dyn @ norm_dyn
    unit = bool(np.all(wb == 1.0))
    gram = _weighted_gram(Phi if unit else Phi * np.sqrt(wb)[:, None])
    WPhi = Phi if unit else Phi * wb[:, None]
    proj = WPhi.T @ Yb
    cross = None
    if norm_nngp is not None:
        cross = WPhi.T @ (nngp @ norm_nngp)
    yy = float(np.einsum("i,ik,ik->", wb, Yb, Yb))
    return NystromSums(gram, proj, yy, cross, float(wb.sum()))
