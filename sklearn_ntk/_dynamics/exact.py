r"""Exact dynamics of an ``n x n`` train kernel: eigh / Cholesky, or Lanczos / CG on an operator.

See :mod:`sklearn_ntk.dynamics` for the conventions.
"""

from __future__ import annotations

import numpy as np

from ..linalg.dense import cho_solve, cholesky_psd, eigh_psd
from ..linalg.filters import filter_table, null_threshold
from ..linalg.operators import DenseOperator, ScaledOperator
from .common import (
    as_float_matrix,
    check_common,
    check_sample_weight,
    targets,
    times_arg,
    warn_singular,
    warn_unstable,
)
from .matrix_free import lambda_max, matrix_free_filter

__all__ = ["KernelDynamics"]

_METHODS = ("auto", "eigh", "cholesky", "lanczos", "krylov")


class KernelDynamics:
    r"""Closed-form predictions of kernel gradient descent on the (weighted) squared loss.

    Build it once per fit from the train kernel(s) and targets; query it for any number of
    times. The eigendecomposition (finite ``t``) and Cholesky factorisation (``t = inf``) of
    :math:`A = D\Theta D + \alpha I` are computed on first need and reused by this instance.
    Given an operator instead of an array (or ``method="lanczos"``), no factorisation is
    computed: finite times use one Lanczos basis for all times, ``t = inf`` conjugate gradients.

    Parameters
    ----------
    kernel_train : array_like of shape (n, n), or operator
        Train kernel :math:`\Theta(X, X)` that drives the dynamics (the NTK; for
        ``kind="nngp"`` the NNGP kernel). Not modified. An operator from
        :mod:`sklearn_ntk.linalg.operators` selects the matrix-free path.
    y : array_like of shape (n,) or (n, k)
        Targets. Outputs have the trailing shape of ``y``.
    learning_rate : float, default=1.0
        :math:`\eta > 0`; the time scale is :math:`s = \eta t/(k\sum_i w_i)`.
    alpha : float, default=0.0
        Absolute diagonal term :math:`\alpha \ge 0` added to :math:`D\Theta D`.
    nngp_train : array_like of shape (n, n), optional
        NNGP kernel :math:`K(X, X)`, needed only for covariances with ``kind="ntk"``.
    kind : {"ntk", "nngp"}, default="ntk"
        Ensemble described by :meth:`covariance`.
    dynamics : {"flow", "gd"}, default="flow"
        Gradient flow or discrete full-batch gradient descent. With ``"gd"`` an
        :class:`~sklearn_ntk.exceptions.UnstableLearningRateWarning` names the largest stable
        learning rate when :math:`\eta\lambda_{max}/(k\sum w) > 2`.
    sample_weight : array_like of shape (n,), optional
        Positive weights :math:`w_i` of the loss (drop zero-weight rows before).
    method : {"auto", "lanczos"}, default="auto"
        Default solver of :meth:`dual_coef`: ``"auto"`` factorises (eigh for finite ``t``,
        Cholesky for ``t = inf``); ``"lanczos"`` is matrix-free.
    check_input : bool, default=True
        Validate shapes and finiteness.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(size=(5, 2)); y = X[:, 0]
    >>> theta = X @ X.T + 1.0
    >>> dyn = KernelDynamics(theta, y, learning_rate=1.0)
    >>> dyn.mean([0.0, 10.0, np.inf], theta).shape   # predictions at the train points
    (3, 5)
    """

    def __init__(self, kernel_train, y, *, learning_rate=1.0, alpha=0.0, nngp_train=None,
                 kind="ntk", dynamics="flow", sample_weight=None, method="auto",
                 check_input=True):
        self.learning_rate, self.alpha = check_common(learning_rate, alpha, kind, dynamics)
        self.kind, self.dynamics = kind, dynamics
        if method not in ("auto", "lanczos"):
            raise ValueError(f"method must be 'auto' or 'lanczos', got {method!r}")
        self.y, self._y1d = targets(y)
        n, k = self.y.shape
        if check_input and not np.isfinite(self.y).all():
            raise ValueError("y contains NaN or infinite values")
        self._setup_kernel(kernel_train, nngp_train, n, check_input)
        self.method = "lanczos" if self.operator is not None else method
        w = check_sample_weight(sample_weight, n, allow_zero=False)
        self.sample_weight = w
        self._d = None if w is None else np.sqrt(w)
        self.weight = float(n if w is None else w.sum())
        self.n_samples, self.n_outputs = n, k
        self.scale = self.learning_rate / (self.weight * k)
        self._eig = None  # (evals, evecs) of A = D Theta D + alpha I
        self._chol = None  # Cholesky factor of A, or False when singular
        self._nngp_eig = None  # evecs^T D K D evecs

    def _setup_kernel(self, kernel_train, nngp_train, n, check_input):
        self.operator = None
        if hasattr(kernel_train, "matmat"):
            if kernel_train.n != n:
                raise ValueError(f"kernel operator has order {kernel_train.n}, y has {n} rows")
            self.operator, kernel_train = kernel_train, None
        elif check_input:
            kernel_train = as_float_matrix(kernel_train, "kernel_train", (n, n))
        else:
            kernel_train = np.asarray(kernel_train, dtype=np.float64)
        if nngp_train is not None:
            nngp_train = (as_float_matrix(nngp_train, "nngp_train", (n, n)) if check_input
                          else np.asarray(nngp_train, dtype=np.float64))
        self.kernel_train, self.nngp_train = kernel_train, nngp_train

    def __getstate__(self):
        state = self.__dict__.copy()  # factorisations are recomputed on demand
        state.update(_eig=None, _chol=None, _nngp_eig=None)
        return state

    # ---------------------------------------------------------------- weighting helpers
    def _dl(self, M):
        """``M @ D`` for a test kernel (m, n)."""
        return M if self._d is None else M * self._d

    def _dv(self, R):
        """``D @ R`` for (n, k) or (T, n, k)."""
        return R if self._d is None else R * self._d[:, None]

    def _weighted_dense(self, M):
        if self._d is None:
            return M
        return M * self._d[:, None] * self._d[None, :]

    def _train_op(self):
        """Operator of :math:`D\\Theta D` (without alpha)."""
        op = self.operator if self.operator is not None else DenseOperator(self.kernel_train)
        return op if self._d is None else ScaledOperator(op, self._d)

    # ---------------------------------------------------------------- factorisations
    def _require_dense(self, what):
        if self.kernel_train is None:
            raise ValueError(f"{what} needs the dense train kernel; this solver holds an operator")

    def set_eigh(self, evals, evecs):
        r"""Install a precomputed eigendecomposition of :math:`D\Theta D` (without ``alpha``)."""
        self._evals0 = np.asarray(evals, dtype=np.float64)
        self._eig = (self._evals0 + self.alpha, np.asarray(evecs, dtype=np.float64))
        self._nngp_eig = None
        self._check_stability(self._eig[0][-1])

    def eigh_unregularised(self):
        r"""``(evals, evecs)`` of :math:`D\Theta D` (without ``alpha``), ascending."""
        evecs = self.eigh()[1]
        return self._evals0, evecs

    def eigh(self):
        r"""Eigendecomposition ``(evals, evecs)`` of :math:`A`, ascending (computed once)."""
        if self._eig is None:
            self._require_dense("the eigendecomposition")
            self.set_eigh(*eigh_psd(self._weighted_dense(self.kernel_train)))
        return self._eig

    @property
    def eigenvalues(self):
        r"""Eigenvalues of :math:`A = D\Theta D + \alpha I`, ascending."""
        return self.eigh()[0]

    def _check_stability(self, lam_max):
        if self.dynamics == "gd":
            warn_unstable(self.learning_rate, float(lam_max), self.scale, self.weight,
                          self.n_outputs)

    def cholesky(self):
        r"""Lower Cholesky factor of :math:`A`, or ``None`` when numerically singular."""
        if self._chol is None:
            self._require_dense("the Cholesky factorisation")
            c = cholesky_psd(self._weighted_dense(self.kernel_train), self.alpha)
            self._chol = False if c is None else c
        return None if self._chol is False else self._chol

    # ---------------------------------------------------------------- dual coefficients
    def _residual(self, f0_train):
        if f0_train is None:
            return self.y
        f0 = np.asarray(f0_train, dtype=np.float64)
        f0 = np.broadcast_to(f0.reshape(self.n_samples, -1) if f0.ndim else f0, self.y.shape)
        if not np.isfinite(f0).all():
            raise ValueError("f0_train contains NaN or infinite values")
        return self.y - f0

    def _filters(self, times, doubled=False):
        evals = self.eigh()[0]
        tt = times * 2.0 if doubled else times
        tol = null_threshold(max(abs(evals[-1]), abs(evals[0])), self.n_samples)
        if np.isinf(tt).any() and (evals <= tol).any():
            warn_singular()
        return filter_table(evals, tt, self.scale, self.dynamics, tol)

    def _resolve(self, method, times):
        method = self.method if method in (None, "auto") and self.method == "lanczos" else method
        if method not in (*_METHODS, None):
            raise ValueError(f"unknown method {method!r}; use one of {_METHODS}")
        return "lanczos" if method == "krylov" else (method or "auto")

    def dual_coef(self, t, f0_train=None, *, method=None):
        r"""Coefficients :math:`w_t = D h_t(A) D (y - f_0(X))`, so that
        :math:`f_t(x) = f_0(x) + \Theta(x, X) w_t`.

        Parameters
        ----------
        t : float or array_like of shape (T,)
            Times (steps); ``np.inf`` allowed.
        f0_train : array_like of shape (n,) or (n, k), optional
            Initial outputs on the training points (default 0: the ensemble mean).
        method : {None, "auto", "eigh", "cholesky", "lanczos"}
            ``None``/``"auto"``: the solver's ``method`` (factorising: Cholesky at ``t = inf``,
            eigendecomposition otherwise). ``"lanczos"``: Lanczos for finite times and
            conjugate gradients at ``t = inf``, without any factorisation.

        Returns
        -------
        ndarray of shape (n, k), or (T, n, k) for array ``t``
        """
        scalar, times = times_arg(t)
        R = self._dv(self._residual(f0_train))
        method = self._resolve(method, times)
        out = np.empty((len(times), *R.shape))
        finite = np.isfinite(times)
        if method == "lanczos":
            out[:] = self._lanczos(R, times)
        elif method == "eigh" or finite.any():
            evals, evecs = self.eigh()
            P = evecs.T @ R
            sel = slice(None) if method == "eigh" else finite
            H = self._filters(times[sel])
            W = evecs @ (H.T[:, :, None] * P[:, None, :]).reshape(len(evals), -1)
            out[sel] = W.reshape(len(evals), -1, R.shape[1]).transpose(1, 0, 2)
        if method != "lanczos" and method != "eigh" and (~finite).any():
            out[~finite] = self._solve_inf(R)
        out = self._dv(out)
        return out[0] if scalar else out

    def _solve_inf(self, R):
        c = self.cholesky()
        if c is not None:
            return cho_solve(c, R)
        return self.dual_coef_eigh_inf(R)

    def dual_coef_eigh_inf(self, R):
        """Minimum-norm ``A^+ R`` from the eigendecomposition (singular ``t = inf``)."""
        evals, evecs = self.eigh()
        H = self._filters(np.array([np.inf]))[0]
        return evecs @ (H[:, None] * (evecs.T @ R))

    def _lanczos(self, R, times):
        if self.dynamics == "gd":
            self._check_stability(lambda_max(self._train_op()) + self.alpha)
        return matrix_free_filter(self._train_op(), R, times, scale=self.scale,
                                  dynamics=self.dynamics, alpha=self.alpha)

    # ---------------------------------------------------------------- public predictions
    def _shape_out(self, arr):
        return arr[..., 0] if self._y1d else arr

    def _train_kernel_times(self, W):
        """``Theta(X, X) @ W`` for W of shape (..., n, k)."""
        if self.kernel_train is not None:
            return np.matmul(self.kernel_train, W)
        flat = np.moveaxis(W, -2, 0).reshape(self.n_samples, -1)
        out = self.operator.matmat(flat).reshape((self.n_samples,) + W.shape[:-2] + W.shape[-1:])
        return np.moveaxis(out, 0, -2)

    def mean(self, t, kernel_test_train=None, f0_train=None, f0_test=None, *, method=None):
        r"""Mean (or single-network) prediction :math:`f_t` at time(s) ``t``.

        Parameters
        ----------
        t : float or array_like of shape (T,)
            Times in steps, ``>= 0``; ``np.inf`` allowed.
        kernel_test_train : array_like of shape (m, n), optional
            :math:`\Theta(x, X)` (for ``kind="nngp"`` the NNGP kernel). ``None``: the training
            points.
        f0_train : array_like of shape (n,) or (n, k), optional
            Initial outputs on the training points; default 0 (infinite-ensemble mean).
        f0_test : array_like of shape (m,) or (m, k), optional
            Initial outputs on the test points; default 0 (or ``f0_train`` at the train points).
        method : {None, "auto", "eigh", "cholesky", "lanczos"}
            See :meth:`dual_coef`.

        Returns
        -------
        ndarray of shape (m,) / (m, k), with a leading (T,) axis for array ``t``.
        """
        W = self.dual_coef(t, f0_train, method=method)
        if kernel_test_train is None:
            out = self._train_kernel_times(W)
            if f0_test is None:
                f0_test = f0_train
        else:
            Ktd = as_float_matrix(kernel_test_train, "kernel_test_train", (None, self.n_samples))
            out = np.matmul(Ktd, W)
        if f0_test is not None:
            f0 = np.asarray(f0_test, dtype=np.float64)
            out = out + (f0.reshape(out.shape[-2], -1) if f0.ndim else f0)
        return self._shape_out(out)

    def training_loss(self, t, f0_train=None):
        r"""Training loss :math:`\frac{1}{2k\sum w}\sum_i w_i\lVert f_t(x_i) - y_i\rVert^2`.

        Costs :math:`O(nk)` per time once the eigendecomposition exists (the residual is
        diagonal in the eigenbasis); on the matrix-free path one operator product per time.

        Returns
        -------
        float or ndarray of shape (T,)
        """
        scalar, times = times_arg(t)
        R = self._dv(self._residual(f0_train))  # D (y - f0)
        if self.method == "lanczos":
            W = self._lanczos(R, times)  # h(A) D r
            fitted = np.stack([self._train_op().matmat(w) for w in W])
            loss = 0.5 * ((fitted - R[None]) ** 2).sum(axis=(1, 2))
        else:
            evals, evecs = self.eigh()
            P = evecs.T @ R
            keep = 1.0 - (evals - self.alpha)[None, :] * self._filters(times)
            loss = 0.5 * np.einsum("tn,nk->t", keep**2, P**2)
        loss = loss / (self.weight * self.n_outputs)
        return float(loss[0]) if scalar else loss

    def covariance(self, t, kernel_test_train, nngp_test_test, nngp_test_train=None, *,
                   diag=False):
        r"""Covariance over initialisations of the infinite ensemble at time(s) ``t``.

        Parameters
        ----------
        t : float or array_like of shape (T,)
        kernel_test_train : array_like of shape (m, n)
            :math:`\Theta(x, X)` (``kind="nngp"``: :math:`K(x, X)`).
        nngp_test_test : array_like of shape (m, m), or (m,) when ``diag=True``
            :math:`K(x, x')` (or its diagonal).
        nngp_test_train : array_like of shape (m, n), optional
            :math:`K(x, X)`; required for ``kind="ntk"``.
        diag : bool, default=False
            Only the variances (without forming the ``m x m`` matrix).

        Returns
        -------
        ndarray of shape (m, m) or (m,), with a leading (T,) axis for array ``t``.
        """
        from .covariance import exact_covariance

        return exact_covariance(self, t, kernel_test_train, nngp_test_test, nngp_test_train,
                                diag=diag)
