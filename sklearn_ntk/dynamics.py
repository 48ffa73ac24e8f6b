r"""Closed-form training dynamics of kernel gradient descent on the squared loss.

The public entry point of the solvers behind :class:`~sklearn_ntk.NTKRegressor`,
:class:`~sklearn_ntk.NTKGaussianProcess` and :class:`~sklearn_ntk.NTKClassifier`, and the one
place where a solver strategy is chosen (:func:`plan_exact`):

* :class:`KernelDynamics` -- the exact dynamics of an ``n x n`` train kernel, by one
  eigendecomposition (finite ``t``) or Cholesky factorisation (``t = inf``), or matrix-free on a
  kernel operator (dense, one packed triangle, or blocks evaluated on the fly) by a Lanczos
  filter (one Krylov basis for every ``t``) and conjugate gradients;
* :class:`NystromDynamics` -- the exact dynamics of the rank-``m`` Nyström kernel from its
  ``m x m`` reductions, accumulated over row blocks (:func:`nystrom_reductions`, in process or
  on a dask cluster);
* :class:`FactorizationCache` -- an explicit cache of eigendecompositions keyed by kernel
  content, for grid searches over ``t``, ``alpha`` and ``learning_rate``.

Conventions. Training minimises the weighted loss
:math:`L(f) = \frac{1}{2 k \sum_i w_i}\sum_{i} w_i \lVert f(x_i) - y_i\rVert^2` (``k`` outputs;
unit weights give :math:`\frac{1}{2nk}\sum_{ij}(f_j(x_i) - y_{ij})^2`) with learning rate
:math:`\eta` for ``t`` steps. With :math:`D = W^{1/2}`, :math:`A = D\,\Theta(X, X)\,D + \alpha I`
and the time scale :math:`s = \eta t/(k\sum_i w_i)`, a network linearised around its initial
outputs :math:`f_0` predicts

.. math::

    f_t(x) = f_0(x) + \Theta(x, X)\, D\, h_t(A)\, D\, (y - f_0(X)),

with :math:`h_t(\lambda) = (1 - e^{-\lambda s})/\lambda` (gradient flow, ``dynamics="flow"``) or
:math:`(1 - (1 - \eta\lambda/(k\sum w))^t)/\lambda` (full-batch gradient descent, ``"gd"``),
evaluated with its limit :math:`h_t(0) = s`. Integer weights equal repeated rows. Eigenvalues of
:math:`A` below round-off (:func:`~sklearn_ntk.linalg.filters.null_threshold`) get :math:`h = 0`
at every ``t``, so predictions stay bounded for any ``t`` and tend continuously to the
minimum-norm solution.

Covariance over random initialisations of the infinite ensemble (Lee et al. 2019, eq. 16), with
:math:`K` the NNGP kernel and :math:`T_t = D h_t(A) D`:

.. math::

    \mathrm{cov}_t(x, x') = K(x, x') + \Theta(x, X) T_t K(X, X) T_t \Theta(X, x')
        - \big[\Theta(x, X) T_t K(X, x') + (x \leftrightarrow x')\big];

for ``kind="nngp"`` (only the readout is trained, :math:`\Theta = K`) this is, as in
neural-tangents, :math:`K(x, x') - K(x, X) D h_{2t}(A) D K(X, x')`.
"""

from __future__ import annotations

from ._dynamics.cache import FactorizationCache
from ._dynamics.common import check_sample_weight, check_times
from ._dynamics.exact import KernelDynamics
from ._dynamics.nystrom import KernelPair, NystromDynamics
from ._dynamics.stream import blocked_apply, default_block_size, is_dask, nystrom_reductions
from ._validation import check_memory
from .exceptions import (
    PerformanceWarning,
    SingularKernelWarning,
    UnstableLearningRateWarning,
    warn_from_caller,
)
from .linalg.filters import max_stable_learning_rate, spectral_filter

__all__ = [
    "KernelDynamics",
    "NystromDynamics",
    "FactorizationCache",
    "KernelPair",
    "plan_exact",
    "exact_memory_bytes",
    "nystrom_reductions",
    "blocked_apply",
    "default_block_size",
    "is_dask",
    "check_times",
    "check_sample_weight",
    "spectral_filter",
    "max_stable_learning_rate",
    "SingularKernelWarning",
    "UnstableLearningRateWarning",
]

#: Largest n for which "auto" uses an O(n^3) eigendecomposition / Cholesky factorisation.
EIGH_MAX_SAMPLES = 20_000

_F8 = 8
#: Lanczos iterations at most (the basis of one column is ``(LANCZOS_MAX_ITER + 1) x n``).
LANCZOS_MAX_ITER = 1000
#: Bytes of one row block of the kernel evaluated on the fly (see ``default_block_size``).
BLOCK_BYTES = 2**25


def exact_memory_bytes(n, storage, n_kernels=1):
    """Bytes the exact path needs for ``n`` samples with the given kernel storage.

    ``"eigh"``: the kernels, a weighted copy, the eigenvectors and LAPACK's workspace
    (about ``(n_kernels + 4) n^2`` doubles); ``"dense"``: the kernel and one evaluation
    temporary (``2 n^2``); ``"packed"``: one triangle plus row-block temporaries
    (``0.55 n^2``); ``"blocks"``: no kernel storage -- the Lanczos basis
    (``min(n, 1000) + 1`` vectors of ``n``) and one row block of the kernel with its
    evaluation temporaries (``4 x 32 MiB``).
    """
    if storage == "blocks":
        return int(_F8 * n * (min(n, LANCZOS_MAX_ITER) + 1) + 4 * BLOCK_BYTES)
    per = {"eigh": n_kernels + 4.0, "dense": 2.0 * n_kernels, "packed": 0.55}[storage]
    return int(per * _F8 * n * n)


def _fits(n_bytes, what, n):
    """``(True, "")`` or ``(False, message)``: the guard's message, with the Nystroem hint."""
    try:
        check_memory(n_bytes, what, hint=_nystroem_hint(n))
    except MemoryError as exc:
        return False, str(exc)
    return True, ""


def plan_exact(n, *, solver="auto", needs_factorisation=False, n_kernels=1):
    """Choose the exact path's strategy: ``"eigh"``, ``"lanczos-dense"``, ``"lanczos-packed"``
    or ``"lanczos-blocks"`` (kernel rows evaluated on the fly at every product).

    Parameters
    ----------
    n : int
        Number of (positive-weight) training samples.
    solver : {"auto", "eigh", "lanczos"}
        The estimator's ``solver``. ``"auto"`` factorises when ``n <= 20000`` and it fits in
        memory, otherwise runs matrix-free on the densest storage that fits.
    needs_factorisation : bool
        The estimator needs the eigendecomposition (ensemble covariances).
    n_kernels : int
        Number of ``n x n`` kernels held (2 for NTK covariances).

    Returns
    -------
    str

    Raises
    ------
    MemoryError
        When no strategy fits, with the memory needed and a suggested ``n_components``.

    Warns
    -----
    PerformanceWarning
        When only ``"lanczos-blocks"`` fits: every Lanczos / CG iteration then evaluates the
        whole kernel again.
    """
    what = f"the exact dynamics on n={n} samples"
    want_eigh = solver == "eigh" or needs_factorisation or (
        solver == "auto" and n <= EIGH_MAX_SAMPLES)
    if want_eigh:
        ok, msg = _fits(exact_memory_bytes(n, "eigh", n_kernels), what + " (eigendecomposition)",
                        n)
        if ok:
            return "eigh"
        if solver == "eigh" or needs_factorisation:
            raise MemoryError(msg)
    for storage in ("dense", "packed"):
        need = exact_memory_bytes(n, storage)
        ok, msg = _fits(need, what + f" ({storage} kernel)", n)
        if ok:
            return f"lanczos-{storage}"
    packed_need = need
    need = exact_memory_bytes(n, "blocks")
    ok, msg = _fits(need, what + " (kernel rows evaluated on the fly)", n)
    if ok:
        warn_from_caller(
            f"the train kernel on n={n} samples does not fit in memory even as one packed "
            f"triangle ({packed_need / 2**30:.3g} GiB): its rows are evaluated block by block, "
            "and every Lanczos / conjugate-gradient iteration evaluates the whole kernel again "
            f"(slow). Pass n_components={_suggest(n)} for the Nystroem path "
            "(O(n m^2) time, O(m^2) memory).",
            PerformanceWarning,
        )
        return "lanczos-blocks"
    raise MemoryError(msg)


def _suggest(n):
    return min(max(n // 10, 100), 5000)


def _nystroem_hint(n):
    return (f"pass n_components={_suggest(n)} (the exact dynamics of the rank-m Nystroem kernel: "
            "O(n m^2) time, O(m^2) memory) instead of the exact kernel.")
