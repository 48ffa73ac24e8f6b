"""NTKClassifier: the squared-loss dynamics on one-hot targets."""

from __future__ import annotations

import numpy as np
from sklearn.base import ClassifierMixin
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets

from .._argmax_proba import argmax_log_proba, argmax_proba
from ._base import NTKBase
from ._params import PARAMS_DOC
from ._precomputed import is_precomputed, refuse_covariance

__all__ = ["NTKClassifier"]


def _has_ensemble_variance(est):
    """``predict_proba`` needs the ensemble variance: not with ``kernel="precomputed"``."""
    if is_precomputed(est.kernel):
        raise AttributeError(str(refuse_covariance("predict_proba")))
    return True


class NTKClassifier(ClassifierMixin, NTKBase):
    __doc__ = r"""Classification by infinitely wide networks trained on one-hot targets.

    The labels are encoded one-hot (``n_classes`` outputs, also for two classes) and the
    squared-loss dynamics of :class:`NTKRegressor` are applied to them; the predicted class is
    the output with the largest ensemble mean.

    :meth:`predict_proba` is the probability that a network drawn from the infinite ensemble of
    randomly initialised networks trained for time ``t`` predicts each class: over
    initialisations the outputs at ``x`` are independent Gaussians with means
    :math:`\mu_c(x)` (:meth:`decision_function`) and a common variance :math:`\sigma^2(x)`
    (that of :class:`NTKGaussianProcess` on the one-hot targets), and
    :math:`p_c(x) = P(\arg\max_j f_j(x) = c)`, a one-dimensional integral computed by
    quadrature. It is uniform at ``t=0`` and one-hot where :math:`\sigma = 0` (e.g. on the
    training points at ``t=inf``, ``alpha=0``). It is a property of the ensemble, not a
    calibrated estimate of the label noise: see the user guide for calibration. With
    ``n_components`` the variance is that of the Nyström ensemble (as in
    :class:`NTKGaussianProcess`).

    Parameters
    ----------""" + PARAMS_DOC + r"""
    class_weight : dict, "balanced" or None, default=None
        Weights of the classes in the loss, multiplied into ``sample_weight``
        (``"balanced"``: ``n_samples / (n_classes * count(class))``).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    kernel_ : Kernel or str
        The kernel used (a clone of ``kernel``, or the default ``NTKKernel()``; the string
        ``"precomputed"`` with a precomputed kernel).
    X_fit_ : ndarray of shape (n_fit, n_features)
        Training inputs with positive weight (exact path) or the Nyström centres.
    dual_coef_ : ndarray of shape (n_fit, n_classes)
        :math:`w` such that the class scores are :math:`\Theta(x, X_{fit})\,w`.
    n_components_ : int or None
        Number of Nyström centres (``None``: exact path).
    train_spectrum_ : ndarray
        Eigenvalues of the regularised train kernel (computed on first access).
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit (only when ``X`` has string feature names).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.gaussian_process.kernels import RBF
    >>> from sklearn_ntk import NTKClassifier
    >>> X = np.array([[0.0], [0.1], [1.0], [1.1]]); y = ["a", "a", "b", "b"]
    >>> NTKClassifier(kernel=RBF(0.5), t=100.0).fit(X, y).predict([[0.05], [1.05]]).tolist()
    ['a', 'b']
    """

    _nystrom_covariance = True  # predict_proba: the Nystroem variance needs the NNGP pieces

    def __init__(self, kernel=None, t=np.inf, learning_rate=1.0, alpha=0.0, *,
                 dynamics="flow", solver="auto", n_components=None, random_state=None,
                 batch_size=None, cache=None, progress="auto", class_weight=None):
        super().__init__(kernel=kernel, t=t, learning_rate=learning_rate, alpha=alpha,
                         dynamics=dynamics, solver=solver, n_components=n_components,
                         random_state=random_state, batch_size=batch_size, cache=cache,
                         progress=progress)
        self.class_weight = class_weight

    def fit(self, X, y, sample_weight=None):
        """Fit the dynamics on one-hot encoded labels.

        Parameters
        ----------
        X : array-like or dask array of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            Class labels (in memory).
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights of the loss, multiplied by ``class_weight``.

        Returns
        -------
        self : NTKClassifier
        """
        X, y = self._validate_fit_data(X, y)
        y = np.asarray(y)
        check_classification_targets(y)
        self.classes_, idx = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(
                "NTKClassifier needs samples of at least 2 classes in the data, but the data "
                f"contains only one class: {self.classes_.tolist()[0]!r}"
            )
        Y = np.zeros((len(idx), len(self.classes_)))
        Y[np.arange(len(idx)), idx] = 1.0
        if self.class_weight is not None:
            cw = compute_sample_weight(self.class_weight, y)
            sample_weight = cw if sample_weight is None else cw * np.asarray(sample_weight,
                                                                              dtype=np.float64)
        self._fit_dynamics(X, Y, sample_weight)
        self.dual_coef_ = self._dual
        return self

    def _scores(self, X):
        X = self._validate_predict_X(X)
        return self._linear(X, self._dual)

    def decision_function(self, X):
        """Ensemble-mean network outputs (class scores) at time ``t``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,) for two classes (score of ``classes_[1]`` minus that of
        ``classes_[0]``), else (n_samples, n_classes)
        """
        s = self._scores(X)
        if len(self.classes_) == 2:
            return s[:, 1] - s[:, 0]
        return s

    def predict(self, X):
        """Class with the largest ensemble-mean output.

        Parameters
        ----------
        X : array-like or dask array of shape (n_samples, n_features)

        Returns
        -------
        ndarray (or dask array) of shape (n_samples,)
        """
        scores = self._scores(X)
        if hasattr(scores, "compute"):
            classes = self.classes_
            return scores.map_blocks(lambda s: classes[np.argmax(s, axis=1)], drop_axis=1,
                                     dtype=classes.dtype)
        return self.classes_[np.argmax(scores, axis=1)]

    def _ensemble(self, X):
        """Means (m, n_classes) and common std (m,) of the outputs over initialisations."""
        X = self._validate_predict_X(X)
        if hasattr(X, "compute"):
            raise TypeError("predict_proba needs an in-memory X (not a dask array)")
        var = self._covariance(X, diag=True)
        return self._linear(X, self._dual), np.sqrt(np.maximum(var, 0.0))

    @available_if(_has_ensemble_variance)
    def predict_proba(self, X):
        r"""Probability that a network of the trained ensemble predicts each class.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
            :math:`P(\arg\max_j f_j(x) = c)` over random initialisations, columns in the
            order of ``classes_``; rows sum to one.
        """
        return argmax_proba(*self._ensemble(X))

    @available_if(_has_ensemble_variance)
    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba`, accurate where the probabilities underflow.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
            ``-inf`` only where the standard deviation is exactly zero and the class's
            mean output is not the largest.
        """
        return argmax_log_proba(*self._ensemble(X))

    def staged_decision_function(self, X, times):
        """Class scores at several training times from one factorisation.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        times : array-like of shape (n_times,)

        Yields
        ------
        ndarray
            :meth:`decision_function` at each time.
        """
        for s in self._staged_means(X, times):
            yield s[:, 1] - s[:, 0] if len(self.classes_) == 2 else s
