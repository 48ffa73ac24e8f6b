"""NTKGaussianProcess: mean and covariance of the infinite ensemble trained for time t."""

from __future__ import annotations

from numbers import Integral

import numpy as np
from sklearn.base import RegressorMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import _num_samples

from .._validation import check_memory
from ._base import NTKBase, default_kernel
from ._inputs import kernel_kind
from ._params import PARAMS_DOC

__all__ = ["NTKGaussianProcess"]


class NTKGaussianProcess(RegressorMixin, NTKBase):
    __doc__ = r"""Infinite ensemble of wide networks trained for ``t`` steps: mean and covariance.

    Over random initialisations, the outputs of infinitely wide networks trained by gradient
    descent form a Gaussian process at every time ``t`` (Lee et al. 2019, eq. 16). With the
    NNGP kernel :math:`K`, the NTK :math:`\Theta`, sample weights :math:`W = D^2`,
    :math:`A = D\Theta(X, X)D + \alpha I` and :math:`T_t = D\,h_t(A)\,D`:

    .. math::

        \mu_t(x) &= \Theta(x, X)\,T_t\,y, \\
        \Sigma_t(x, x') &= K(x, x') + \Theta(x, X) T_t K(X, X) T_t \Theta(X, x')
            - \big[\Theta(x, X) T_t K(X, x') + (x \leftrightarrow x')\big].

    ``kind="nngp"`` is the ensemble in which only the readout layer is trained: the same
    formulas with :math:`\Theta` replaced by :math:`K`, where the covariance simplifies to
    :math:`K(x, x') - K(x, X)\,D\,h_{2t}(\tilde K)\,D\,K(X, x')` (the Bayesian NNGP posterior at
    ``t=inf``). ``t=0`` is the prior: mean 0, covariance :math:`K`. These agree with
    neural-tangents' ``predict.gradient_descent_mse_ensemble`` (absolute ``diag_reg``). With
    ``n_components=m`` both kernels are replaced by their Nyström approximations on the same
    centres (the prior :math:`K(x, x')` stays exact), which keeps the covariance positive
    semi-definite.

    With a kernel that has an ``ntk_and_nngp`` method (``NTKKernel``), both kernels come from
    it in one pass. A product or sum containing such kernels keeps its form: the :math:`K` of
    ``ConstantKernel(c) * NTKKernel()`` is ``ConstantKernel(c) * NTKKernel(kind="nngp")``.
    Any other kernel is used as both :math:`\Theta` and :math:`K`. The ensemble is the one
    the kernel declares: ``NTKKernel(kind="nngp")`` (also inside a product or sum such as
    ``ConstantKernel() * NTKKernel(kind="nngp")``) gives the readout-only ensemble.

    Parameters
    ----------""" + PARAMS_DOC + r"""
    kind : {"ntk", "nngp"} or None, default=None
        Which ensemble: all layers trained (``"ntk"``) or only the readout (``"nngp"``).
        ``None`` follows the kernel's ``kind`` (``"ntk"`` for the default kernel and for
        kernels without a ``kind``). A ``kind`` that contradicts the kernel's raises a
        ``ValueError`` at ``fit``; with ``kernel=None`` it selects the default network's kind.

    Attributes
    ----------
    kernel_ : Kernel or str
        The kernel used (a clone of ``kernel``, or the default ``NTKKernel()``; the string
        ``"precomputed"`` with a precomputed kernel).
    X_fit_ : ndarray of shape (n_fit, n_features)
        Training inputs with positive weight (exact path) or the Nyström centres.
    dual_coef_ : ndarray of shape (n_fit,) or (n_fit, n_targets)
        :math:`w` such that :math:`\mu_t(x) = \Theta(x, X_{fit})\,w`.
    n_components_ : int or None
        Number of Nyström centres (``None``: exact path).
    component_indices_ : ndarray of shape (`n_components_`,)
        Rows of the training set used as centres (Nyström path only).
    train_spectrum_ : ndarray
        Eigenvalues of the regularised train kernel (computed on first access).
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit (only when ``X`` has string feature names).

    See Also
    --------
    sklearn.gaussian_process.GaussianProcessRegressor : same ``predict``/``sample_y`` API;
        equal to ``kind="nngp"``, ``t=inf`` with ``alpha`` as its noise term.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.gaussian_process.kernels import RBF
    >>> from sklearn_ntk import NTKGaussianProcess
    >>> X = np.linspace(-1, 1, 10)[:, None]; y = X[:, 0] ** 2
    >>> gp = NTKGaussianProcess(kernel=RBF(0.5), t=50.0).fit(X, y)
    >>> mean, std = gp.predict(X[:2], return_std=True)
    >>> mean.shape, std.shape
    ((2,), (2,))
    """

    _needs_nngp = True

    def __init__(self, kernel=None, t=np.inf, learning_rate=1.0, alpha=0.0, *,
                 kind=None, dynamics="flow", solver="auto", n_components=None,
                 random_state=None, batch_size=None, cache=None, progress="auto"):
        super().__init__(kernel=kernel, t=t, learning_rate=learning_rate, alpha=alpha,
                         dynamics=dynamics, solver=solver, n_components=n_components,
                         random_state=random_state, batch_size=batch_size, cache=cache,
                         progress=progress)
        self.kind = kind

    def _ensemble_kind(self):
        return self.kind if self.kind is not None else super()._ensemble_kind()

    def _new_default_kernel(self, params=None):
        kind = (params or {}).get("kind", self.kind)
        return default_kernel().set_params(kind="nngp" if kind == "nngp" else "ntk")

    def _check_kind(self):
        if self.kind not in (None, "ntk", "nngp"):
            raise ValueError(f"kind must be None, 'ntk' or 'nngp', got {self.kind!r}")
        declared = None if self.kernel is None else kernel_kind(self.kernel)
        if self.kind is not None and declared is not None and declared != self.kind:
            raise ValueError(
                f"kind={self.kind!r} contradicts the kernel's kind={declared!r} "
                f"({self.kernel!r}); leave kind=None to follow the kernel, or set the "
                "kernel's kind"
            )

    def fit(self, X, y, sample_weight=None):
        """Fit the ensemble dynamics.

        Parameters
        ----------
        X : array-like or dask array of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights of the loss (integer weights equal repeated rows).

        Returns
        -------
        self : NTKGaussianProcess
        """
        self._check_kind()
        X, y = self._validate_fit_data(X, y, multi_output=True, y_numeric=True)
        self._y_ndim = y.ndim
        Y = y.reshape(-1, 1) if y.ndim == 1 else y
        self._fit_dynamics(X, Y if hasattr(Y, "compute") else np.asarray(Y, dtype=np.float64),
                           sample_weight)
        self.dual_coef_ = self._dual[:, 0] if y.ndim == 1 else self._dual
        return self

    def predict(self, X, return_std=False, return_cov=False):
        """Ensemble mean, and optionally its standard deviation or covariance, at time ``t``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            (A dask array is accepted for the mean only.)
        return_std : bool, default=False
            Also return the standard deviation over initialisations.
        return_cov : bool, default=False
            Also return the covariance over initialisations (exclusive with ``return_std``).

        Returns
        -------
        y_mean : ndarray of shape (n_samples,) or (n_samples, n_targets)
        y_std : ndarray of shape (n_samples,) or (n_samples, n_targets), optional
            The same for every target.
        y_cov : ndarray of shape (n_samples, n_samples) or (n_samples, n_samples, n_targets)
        """
        if return_std and return_cov:
            raise RuntimeError("At most one of return_std or return_cov can be requested.")
        X = self._validate_predict_X(X)
        mean = self._linear(X, self._dual)
        k = mean.shape[1]
        mean_out = mean[:, 0] if self._y_ndim == 1 else mean
        if not (return_std or return_cov):
            return mean_out
        if hasattr(X, "compute"):
            raise TypeError("return_std/return_cov need an in-memory X (not a dask array)")
        if return_cov:
            self._check_covariance_memory(X.shape[0], k if self._y_ndim == 2 else 0)
        cov = self._covariance(X, diag=return_std)
        if return_std:
            std = np.sqrt(np.maximum(cov, 0.0))
            return mean_out, (np.repeat(std[:, None], k, axis=1) if self._y_ndim == 2 else std)
        return mean_out, (np.repeat(cov[:, :, None], k, axis=2) if self._y_ndim == 2 else cov)

    def _check_covariance_memory(self, m, extra, what="the covariance of"):
        """Refuse a full ``m x m`` covariance that does not fit, before computing anything.

        Counted: the prior and the result, one more ``m x m`` temporary for ``kind="ntk"``,
        ``extra`` further ``m x m`` arrays (per-target copies, a factorisation), and the
        test-train rows in their few forms (``8 m r`` for ``r`` training points or centres).
        """
        r = len(self.X_fit_) if self.n_components_ is None else self.n_components_
        squares = (3 if self._ensemble_kind() == "ntk" else 2) + extra
        check_memory(8 * (squares * m * m + 8 * m * r), f"{what} {m} test points",
                     hint="predict on fewer points at a time, or use return_std=True.")

    def sample_y(self, X, n_samples=1, random_state=0):
        """Draw outputs of independently initialised and trained networks at time ``t``.

        Parameters
        ----------
        X : array-like of shape (n_samples_X, n_features)
        n_samples : int, default=1
            Number of networks (samples) per input.
        random_state : int, RandomState instance or None, default=0
            Seed of the draws.

        Returns
        -------
        ndarray of shape (n_samples_X, n_samples) or (n_samples_X, n_targets, n_samples)
        """
        if not isinstance(n_samples, Integral) or n_samples < 1:
            raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}")
        rng = check_random_state(random_state)
        if not hasattr(X, "compute"):  # its eigendecomposition: vectors, factor, workspace
            self._check_covariance_memory(_num_samples(X), 3, "sample_y on")
        mean, cov = self.predict(X, return_cov=True)
        c = cov if cov.ndim == 2 else cov[:, :, 0]
        w, V = np.linalg.eigh(c)
        root = V * np.sqrt(np.maximum(w, 0.0))
        m = c.shape[0]
        if mean.ndim == 1:
            return mean[:, None] + root @ rng.standard_normal((m, n_samples))
        k = mean.shape[1]
        z = rng.standard_normal((m, k * n_samples))
        return mean[:, :, None] + (root @ z).reshape(m, k, n_samples)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
