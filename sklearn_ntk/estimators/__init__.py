"""Closed-form predictions of infinitely wide networks trained by gradient descent.

Three scikit-learn estimators share the dynamics solvers of :mod:`sklearn_ntk.dynamics`:

* :class:`NTKRegressor` -- the mean prediction after ``t`` steps of gradient descent on the
  squared loss (kernel ridge regression at ``t = inf``);
* :class:`NTKGaussianProcess` -- mean *and* covariance over random initialisations of the
  infinite ensemble (``kind="ntk"``: all layers trained; ``kind="nngp"``: only the readout);
* :class:`NTKClassifier` -- the same dynamics on one-hot targets.

Each takes ``n_components=m`` for the exact dynamics of the rank-``m`` Nyström kernel,
streamed over row blocks (also over a dask cluster), and ``sample_weight`` in ``fit``.
"""

from .classifier import NTKClassifier
from .gaussian_process import NTKGaussianProcess
from .regressor import NTKRegressor

__all__ = ["NTKRegressor", "NTKGaussianProcess", "NTKClassifier"]
