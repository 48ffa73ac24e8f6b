"""Kernels and solver selection shared by the three estimators (checks in ``_checks``)."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from ..dynamics import (
    KernelDynamics,
    KernelPair,
    blocked_apply,
    check_sample_weight,
    check_times,
    default_block_size,
    is_dask,
)
from ._checks import ParamsAndInputs
from ._inputs import copy_fit_inputs, kernel_kind, nngp_counterpart
from ._paths import build_exact, eigh_with_cache, fit_nystrom
from ._precomputed import PrecomputedPair, is_precomputed, refuse_covariance

__all__ = ["NTKBase", "default_kernel"]


def default_kernel():
    """``NTKKernel()`` (imported lazily: the estimators import without the kernel module)."""
    from ..kernels import NTKKernel

    return NTKKernel()


class NTKBase(ParamsAndInputs, BaseEstimator):
    """Shared machinery; subclasses define ``fit``/``predict`` and ``_needs_nngp``."""

    #: whether the NNGP kernel is needed besides the dynamics kernel (covariances)
    _needs_nngp = False
    #: whether the Nystroem fit keeps what covariances need although ``_needs_nngp`` is False
    _nystrom_covariance = False

    def __init__(self, kernel=None, t=np.inf, learning_rate=1.0, alpha=0.0, *,
                 dynamics="flow", solver="auto", n_components=None, random_state=None,
                 batch_size=None, cache=None, progress="auto"):
        self.kernel = kernel
        self.t = t
        self.learning_rate = learning_rate
        self.alpha = alpha
        self.dynamics = dynamics
        self.solver = solver
        self.n_components = n_components
        self.random_state = random_state
        self.batch_size = batch_size
        self.cache = cache
        self.progress = progress

    def set_params(self, **params):
        """Set parameters; ``kernel__<name>`` also works while ``kernel`` is ``None``.

        ``kernel=None`` stands for ``NTKKernel()``, so nested kernel parameters (for example
        ``kernel__depth`` in a grid search) are applied to a fresh default ``NTKKernel``.
        """
        nested = any(key.startswith("kernel__") for key in params)
        if nested and self.kernel is None and params.get("kernel") is None:
            params.pop("kernel", None)
            self.kernel = self._new_default_kernel(params)
        return super().set_params(**params)

    def _new_default_kernel(self, params=None):
        """The kernel that ``kernel=None`` stands for (``params``: pending ``set_params``)."""
        return default_kernel()

    def __getstate__(self):
        state = super().__getstate__()
        if isinstance(state.get("_dyn"), KernelDynamics):
            del state["_dyn"]  # O(n^2): rebuilt on demand from X_fit_ and the targets
        return state

    def _ensemble_kind(self):
        """Which ensemble the dynamics kernel belongs to: the kernel's declared ``kind``."""
        return kernel_kind(self.kernel_) or "ntk"

    def __sklearn_is_fitted__(self):
        return hasattr(self, "dual_coef_")

    # ---------------------------------------------------------------- kernels
    def _pair(self, need_nngp=None):
        need = self._needs_nngp if need_nngp is None else need_nngp
        if is_precomputed(self.kernel_):
            if need:
                raise refuse_covariance("this prediction")
            return PrecomputedPair(self._gram)
        nngp = self._nngp_kernel() if need else None
        return KernelPair(self.kernel_, self._ensemble_kind(), need,
                          nngp_kernel=None if nngp is self.kernel_ else nngp)

    def _nngp_kernel(self):
        """The kernel object whose ``__call__``/``diag`` give the NNGP (prior covariance)."""
        return nngp_counterpart(self.kernel_, self._ensemble_kind())

    def _block_size(self, n_columns, n_rows):
        return self.batch_size or default_block_size(n_columns, n_rows)

    # ---------------------------------------------------------------- fit
    def _fit_dynamics(self, X, Y, sample_weight):
        """Validate params, choose the path, fit; sets ``X_fit_``, ``dual_coef_`` (2-D)."""
        self._check_params()
        self.kernel_ = self._new_default_kernel() if self.kernel is None else clone(
            self.kernel, safe=False)
        n = X.shape[0]
        w = check_sample_weight(sample_weight, n) if not is_dask(sample_weight) else sample_weight
        if self.n_components is not None:
            self._fit_nystrom(X, Y, np.ones(n) if w is None else w)
        else:
            if is_dask(X):
                raise ValueError("dask arrays need n_components (the Nystroem path)")
            self._fit_exact(X, Y, w)
        self._dual = self._coef_at(self._t)
        return self

    def _fit_exact(self, X, Y, w):
        keep = slice(None) if w is None else w > 0
        if self._precomputed():  # the fit "inputs" are the kept rows' indices
            self.X_fit_ = np.arange(X.shape[0])[keep]
            full = len(self.X_fit_) == X.shape[0]  # a copy either way: the user keeps theirs
            self._gram = X.copy() if full else X[np.ix_(self.X_fit_, self.X_fit_)]
        else:
            self.X_fit_ = copy_fit_inputs(X[keep])
        Y = Y[keep]
        w = None if w is None or np.all(w[keep] == 1.0) else w[keep]
        self._fit_targets = (np.array(Y, copy=True), None if w is None else w.copy())
        self.n_components_ = None
        self._build_exact()

    def _build_exact(self, needs_covariance=None):
        """The exact solver from the fitted data (at fit, and again after unpickling)."""
        Y, w = self._fit_targets
        cov = self._needs_nngp if needs_covariance is None else needs_covariance
        if is_precomputed(self.kernel_):  # means only (covariances are refused)
            cov, inputs = False, np.arange(len(Y))
        else:
            inputs = self.X_fit_
        self._dyn = build_exact(self._pair(cov), inputs, Y, w, solver=self.solver,
                                needs_covariance=cov,
                                block_size=self._block_size(len(Y), len(Y)),
                                **self._dynamics_params())
        return self._dyn

    def _dynamics_params(self):
        return dict(learning_rate=self._lr, alpha=self._alpha, kind=self._ensemble_kind(),
                    dynamics=self.dynamics)

    def _solver(self):
        """The fitted solver (rebuilt after unpickling)."""
        dyn = getattr(self, "_dyn", None)
        if dyn is None:
            dyn = self._build_exact() if self.n_components_ is None else None
        return dyn

    def _ensure_eigh(self):
        """The exact solver with its eigendecomposition (through the explicit cache if any)."""
        dyn = self._solver()
        eigh_with_cache(dyn, self.cache)
        return dyn

    def _fit_nystrom(self, X, Y, w):
        rng = check_random_state(self.random_state)
        pair = self._pair(self._needs_nngp or self._nystrom_covariance)
        fit = fit_nystrom(pair, X, Y, w, self.n_components, rng,
                          block_size=self._block_size(self.n_components, X.shape[0]),
                          progress=self.progress, **self._dynamics_params())
        self.X_fit_, self.component_indices_, self._basis, self._basis_nngp, self._dyn = fit
        self.n_components_ = len(self.component_indices_)

    # ---------------------------------------------------------------- covariance
    def _covariance(self, X, diag):
        """Covariance over initialisations at the fitted ``t`` (``diag``: the variances)."""
        if is_precomputed(self.kernel_):
            raise refuse_covariance("return_std, return_cov and sample_y")
        prior_kernel = self._nngp_kernel()
        prior = prior_kernel.diag(X) if diag else prior_kernel(X)
        dyn_td, nngp_td = self._kernel_rows(X, need_nngp=True)
        if self.n_components_ is not None:
            feat = self._basis.features(dyn_td)
            feat_k = None if self._basis_nngp is None else self._basis_nngp.features(nngp_td)
            return self._solver().covariance(self._t, feat, feat_k, prior, diag=diag)
        dyn = self._covariance_solver()
        if not np.isinf(self._t):
            self._ensure_eigh()
        return dyn.covariance(self._t, dyn_td, prior, nngp_td, diag=diag)

    def _covariance_solver(self):
        """The exact solver, given the NNGP train kernel and a factorisable storage on first use.

        Only the classifier fits without them (its ``predict`` needs neither).
        """
        dyn = self._solver()
        if dyn.method == "lanczos":  # refactor on the storage covariances need (or MemoryError)
            return self._build_exact(needs_covariance=True)
        if dyn.kind == "ntk" and dyn.nngp_train is None:
            dyn.nngp_train = (dyn.kernel_train if self._nngp_kernel() is self.kernel_
                              else self._pair(True)(self.X_fit_)[1])
        return dyn

    # ---------------------------------------------------------------- coefficients
    def _coef_at(self, times):
        """Dual coefficients over ``X_fit_``: (n_fit, k), or (T, n_fit, k) for array times."""
        dyn = self._solver()
        times = check_times(times, "times")
        if self.n_components_ is not None:
            c = np.moveaxis(dyn.coef(times), -2, 0)  # (r, k) or (r, T, k)
            return np.moveaxis(self._basis.dual(c), 0, -2)
        if dyn.method != "lanczos" and np.isfinite(times).any():
            self._ensure_eigh()
        return dyn.dual_coef(times)

    def _kernel_rows(self, X, need_nngp=False):
        """``(dyn(X, X_fit_), nngp(X, X_fit_) or None)`` in one pass."""
        if is_precomputed(self.kernel_):  # X is the test x train kernel: keep fitted columns
            if need_nngp:
                raise refuse_covariance("this prediction")
            full = len(self.X_fit_) == self.n_features_in_
            return (X if full else X[:, self.X_fit_]), None
        return self._pair(need_nngp)(X, self.X_fit_)

    def _linear(self, X, W):
        """``dyn(X, X_fit_) @ W`` over row blocks (a dask array maps lazily)."""
        k = W.shape[1]

        def fn(Xb):
            return self._kernel_rows(Xb)[0] @ W

        return blocked_apply(fn, X, k, self._block_size(self.X_fit_.shape[0], X.shape[0]))

    def _staged_means(self, X, times):
        """(T, m, k) means at several times."""
        X = self._validate_predict_X(X)
        times = np.atleast_1d(check_times(times, "times")).ravel()
        W = self._coef_at(times)  # (T, n_fit, k)
        T, n_fit, k = W.shape
        flat = W.transpose(1, 0, 2).reshape(n_fit, T * k)
        out = np.asarray(self._linear(X, flat))
        return out.reshape(-1, T, k).transpose(1, 0, 2)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.pairwise = self._precomputed()
        return tags

    @property
    def train_spectrum_(self):
        r"""Eigenvalues of the regularised train kernel, ascending (computed on first access).

        Exact path: :math:`D\Theta(X, X)D + \alpha I` (``n`` values); Nyström path: the
        ``r <= m`` non-trivial ones, :math:`\Phi^\top W \Phi + \alpha I`.
        """
        check_is_fitted(self)
        if self.n_components_ is not None:
            return self._solver().evals.copy()
        return self._ensure_eigh().eigenvalues.copy()

    def training_loss(self, t=None):
        r"""Weighted training loss :math:`\frac{1}{2k\sum w}\sum_i w_i\lVert\mu_t(x_i)-y_i\rVert^2`.

        ``y`` is the training target as used by the dynamics (one-hot for the classifier).

        Parameters
        ----------
        t : float or array-like of shape (n_times,), default=None
            Time(s) in steps; ``None`` means the time the estimator was fitted with -- like
            ``predict``, which also uses the fitted time: ``set_params(t=...)`` takes effect
            at the next ``fit``.

        Returns
        -------
        float or ndarray of shape (n_times,)
        """
        check_is_fitted(self)
        t = self._t if t is None else t
        if self.n_components_ is not None:
            return self._solver().training_loss(t)
        dyn = self._solver()
        if dyn.method != "lanczos":
            self._ensure_eigh()
        return dyn.training_loss(t)
