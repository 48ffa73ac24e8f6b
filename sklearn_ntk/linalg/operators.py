r"""Symmetric train-kernel operators: what the matrix-free solvers multiply by.

Every operator has ``n`` (its order), ``matmat(V)`` (``A @ V`` for ``V`` of shape ``(n, k)``),
``diagonal()`` and ``nbytes`` (what it holds). The solvers (Lanczos filter, conjugate gradients)
see nothing else, so the kernel can be stored densely, as one packed symmetric triangle (half
the memory), or evaluated block by block on the fly (no ``n x n`` storage at all).
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import blas

__all__ = ["DenseOperator", "PackedOperator", "BlockKernelOperator", "ScaledOperator",
           "packed_kernel"]


class DenseOperator:
    """A dense symmetric ``(n, n)`` matrix (held, not copied)."""

    def __init__(self, A):
        self.A = A
        self.n = A.shape[0]

    @property
    def nbytes(self):
        return self.A.nbytes

    def matmat(self, V):
        return self.A @ V

    def diagonal(self):
        return np.diagonal(self.A).copy()


class PackedOperator:
    """A symmetric matrix stored as its packed triangle: ``n (n + 1) / 2`` values.

    ``packed`` holds row ``i`` of the lower triangle (``A[i, :i+1]``) after row ``i - 1``,
    which is LAPACK's upper packed storage; products use BLAS ``dspmv``.
    """

    def __init__(self, packed, n):
        if packed.shape != (n * (n + 1) // 2,):
            raise ValueError(f"packed triangle of order {n} needs {n * (n + 1) // 2} values")
        self.packed = packed
        self.n = n

    @property
    def nbytes(self):
        return self.packed.nbytes

    def matmat(self, V):
        V = np.asarray(V, dtype=np.float64)
        out = np.empty_like(V, order="F")
        for j in range(V.shape[1]):
            out[:, j] = blas.dspmv(self.n, 1.0, self.packed, np.ascontiguousarray(V[:, j]))
        return out

    def diagonal(self):
        i = np.arange(self.n)
        return self.packed[i * (i + 1) // 2 + i].copy()


def packed_kernel(kernel_rows, n, block_size):
    """Build the packed lower triangle of a symmetric kernel from row blocks.

    Parameters
    ----------
    kernel_rows : callable
        ``kernel_rows(start, stop)`` returns the block ``K[start:stop, :stop]``.
    n : int
        Order of the kernel.
    block_size : int
        Rows per block.

    Returns
    -------
    ndarray of shape (n (n + 1) / 2,)
    """
    packed = np.empty(n * (n + 1) // 2)
    for start in range(0, n, block_size):
        stop = min(n, start + block_size)
        block = kernel_rows(start, stop)
        for i in range(start, stop):
            off = i * (i + 1) // 2
            packed[off:off + i + 1] = block[i - start, : i + 1]
    return packed


class BlockKernelOperator:
    """The train kernel evaluated block by block at every product (nothing ``n x n`` stored).

    Parameters
    ----------
    kernel_rows : callable
        ``kernel_rows(start, stop)`` returns ``K[start:stop, :]``.
    n : int
    block_size : int
    diag : ndarray of shape (n,)
        The kernel's diagonal.
    """

    def __init__(self, kernel_rows, n, block_size, diag):
        self.kernel_rows = kernel_rows
        self.n = n
        self.block_size = max(1, int(block_size))
        self._diag = np.asarray(diag, dtype=np.float64)

    @property
    def nbytes(self):
        return self._diag.nbytes

    def matmat(self, V):
        out = np.empty((self.n, V.shape[1]))
        for start in range(0, self.n, self.block_size):
            stop = min(self.n, start + self.block_size)
            out[start:stop] = self.kernel_rows(start, stop) @ V
        return out

    def diagonal(self):
        return self._diag.copy()


class ScaledOperator:
    r"""``D A D`` for a diagonal ``D = diag(d)`` (sample weights :math:`W^{1/2}\Theta W^{1/2}`)."""

    def __init__(self, op, d):
        self.op = op
        self.d = np.asarray(d, dtype=np.float64)
        self.n = op.n

    @property
    def nbytes(self):
        return self.op.nbytes + self.d.nbytes

    def matmat(self, V):
        return self.d[:, None] * self.op.matmat(self.d[:, None] * V)

    def diagonal(self):
        return self.d**2 * self.op.diagonal()
