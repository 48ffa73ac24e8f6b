"""NTKRegressor: the mean prediction of wide networks trained by gradient descent for time t."""

from __future__ import annotations

import numpy as np
from sklearn.base import RegressorMixin

from ._base import NTKBase
from ._params import PARAMS_DOC

__all__ = ["NTKRegressor"]


class NTKRegressor(RegressorMixin, NTKBase):
    __doc__ = r"""Mean prediction of wide networks trained by gradient descent for time ``t``.

    Gradient descent on :math:`L = \frac{1}{2k\sum_i w_i}\sum_i w_i\lVert f(x_i) - y_i\rVert^2`
    (unit weights: :math:`\frac{1}{2nk}\sum_{ij}(f_j(x_i) - y_{ij})^2`), started from the random
    initialisation, gives in the infinite-width limit an ensemble whose mean is

    .. math::

        \mu_t(x) = \Theta(x, X)\,D\,h_t(A)\,D\,y, \qquad A = D\,\Theta(X, X)\,D + \alpha I,
        \quad D = W^{1/2},

    with :math:`h_t(\lambda) = (1 - e^{-\eta t\lambda/(k\sum w)})/\lambda` (gradient flow) or
    :math:`(1 - (1 - \eta\lambda/(k\sum w))^t)/\lambda` (``dynamics="gd"``). At ``t=inf`` this
    is (weighted) kernel ridge regression with ridge ``alpha``; at ``t=0`` it is 0. It is also
    the exact prediction of kernel gradient descent from zero with any kernel. With
    ``n_components=m`` the same dynamics are those of the rank-``m`` Nyström kernel.

    Parameters
    ----------""" + PARAMS_DOC + r"""
    Attributes
    ----------
    kernel_ : Kernel or str
        The kernel used (a clone of ``kernel``, or the default ``NTKKernel()``; the string
        ``"precomputed"`` with a precomputed kernel).
    X_fit_ : ndarray of shape (n_fit, n_features)
        The rows predictions are computed against: the training inputs with positive weight
        (exact path) or the Nyström centres.
    dual_coef_ : ndarray of shape (n_fit,) or (n_fit, n_targets)
        :math:`w` such that :math:`\mu_t(x) = \Theta(x, X_{fit})\,w` at the fitted ``t``.
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
    NTKGaussianProcess : the same dynamics with the covariance over initialisations.
    sklearn.kernel_ridge.KernelRidge : the ``t=inf`` limit.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.gaussian_process.kernels import RBF
    >>> from sklearn_ntk import NTKRegressor
    >>> X = np.linspace(-1, 1, 20)[:, None]; y = np.sin(3 * X[:, 0])
    >>> reg = NTKRegressor(kernel=RBF(0.5), t=100.0).fit(X, y)
    >>> reg.predict(X[:3]).shape
    (3,)
    >>> [p.shape for p in reg.staged_predict(X[:3], [0.0, 10.0, np.inf])]
    [(3,), (3,), (3,)]
    """

    def fit(self, X, y, sample_weight=None):
        """Fit the closed-form dynamics.

        Parameters
        ----------
        X : array-like or dask array of shape (n_samples, n_features)
            Training inputs (a dask array needs ``n_components``).
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
            Targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights :math:`w_i` of the loss; integer weights equal repeated rows,
            zero weights equal dropped rows.

        Returns
        -------
        self : NTKRegressor
            Fitted estimator.
        """
        X, y = self._validate_fit_data(X, y, multi_output=True, y_numeric=True)
        self._y_ndim = y.ndim
        Y = y.reshape(-1, 1) if y.ndim == 1 else y
        self._fit_dynamics(X, Y if hasattr(Y, "compute") else np.asarray(Y, dtype=np.float64),
                           sample_weight)
        self.dual_coef_ = self._out(self._dual)
        return self

    def _out(self, arr):
        return arr[..., 0] if self._y_ndim == 1 else arr

    def predict(self, X):
        """Mean prediction at the fitted time ``t``.

        Parameters
        ----------
        X : array-like or dask array of shape (n_samples, n_features)

        Returns
        -------
        ndarray (or dask array) of shape (n_samples,) or (n_samples, n_targets)
        """
        X = self._validate_predict_X(X)
        return self._out(self._linear(X, self._dual))

    def staged_predict(self, X, times):
        """Predictions at several training times from one factorisation.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        times : array-like of shape (n_times,)
            Training times in steps (``>= 0``; ``np.inf`` allowed), in any order.

        Yields
        ------
        ndarray of shape (n_samples,) or (n_samples, n_targets)
            The prediction at each time, in the order given.
        """
        yield from self._out(self._staged_means(X, times))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
