"""Parameter and input checks shared by the three estimators."""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from sklearn.gaussian_process.kernels import Kernel
from sklearn.utils.validation import check_is_fitted, validate_data

from ..dynamics import FactorizationCache, is_dask
from ._inputs import takes_graphs, validate_graph_data
from ._precomputed import is_precomputed, validate_precomputed_fit, validate_precomputed_test

__all__ = ["ParamsAndInputs", "check_real"]


def check_real(value, name, *, positive=False, allow_inf=False):
    if isinstance(value, bool) or not isinstance(value, (Real, np.number)):
        raise TypeError(f"{name} must be a real number, got {value!r} ({type(value).__name__})")
    v = float(value)
    if np.isnan(v):
        raise ValueError(f"{name} must not be NaN")
    if not allow_inf and np.isinf(v):
        raise ValueError(f"{name} must be finite, got {v}")
    if positive and not v > 0:
        raise ValueError(f"{name} must be > 0, got {v}")
    if not positive and v < 0:
        raise ValueError(f"{name} must be >= 0, got {v}")
    return v


def _check_count(value, name):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
        raise ValueError(f"{name} must be None or a positive integer, got {value!r}")
    return int(value)


class ParamsAndInputs:
    """Mixin: validation of the estimators' parameters (at ``fit``) and of ``X``/``y``."""

    def _check_params(self):
        if self.kernel is not None and not isinstance(self.kernel, Kernel) \
                and not is_precomputed(self.kernel):
            raise TypeError(
                "kernel must be None (the default NTKKernel()), a "
                "sklearn.gaussian_process.kernels.Kernel instance or the string 'precomputed', "
                f"got {self.kernel!r}"
            )
        if is_precomputed(self.kernel) and self.n_components is not None:
            raise ValueError(
                f"n_components={self.n_components!r} needs a kernel object: the Nystroem "
                "approximation evaluates the kernel between the data and its centres, which "
                "kernel='precomputed' cannot; leave n_components=None"
            )
        self._t = check_real(self.t, "t", allow_inf=True)
        self._lr = check_real(self.learning_rate, "learning_rate", positive=True)
        self._alpha = check_real(self.alpha, "alpha")
        if self.dynamics not in ("flow", "gd"):
            raise ValueError(f"dynamics must be 'flow' or 'gd', got {self.dynamics!r}")
        if self.solver not in ("auto", "eigh", "lanczos"):
            raise ValueError(f"solver must be 'auto', 'eigh' or 'lanczos', got {self.solver!r}")
        _check_count(self.n_components, "n_components")
        _check_count(self.batch_size, "batch_size")
        if self.cache is not None and not isinstance(self.cache, FactorizationCache):
            raise TypeError("cache must be None or a sklearn_ntk.dynamics.FactorizationCache, "
                            f"got {type(self.cache).__name__}")
        if self.progress not in (True, False, "auto"):
            raise ValueError(f"progress must be True, False or 'auto', got {self.progress!r}")

    def _precomputed(self):
        """Whether X is a precomputed kernel matrix (``kernel="precomputed"``)."""
        return is_precomputed(self.kernel)

    def _validate_fit_data(self, X, y, **kw):
        """``validate_data`` for arrays; shape checks only for dask arrays (kept lazy)."""
        if self._precomputed():
            return validate_precomputed_fit(self, X, y, **kw)
        if is_dask(X):
            if X.ndim != 2:
                raise ValueError(f"X must be 2-D, got shape {X.shape}")
            if y is None or y.shape[0] != X.shape[0]:
                raise ValueError("X and y have inconsistent numbers of samples")
            self.n_features_in_ = X.shape[1]
            return X.astype(np.float64), y
        if takes_graphs(self.kernel):
            return validate_graph_data(self, X, y, **kw)
        return validate_data(self, X, y, dtype=np.float64, ensure_all_finite=True, **kw)

    def _validate_predict_X(self, X):
        check_is_fitted(self)
        if is_precomputed(self.kernel_):
            return validate_precomputed_test(self, X)
        if is_dask(X):
            if X.ndim != 2 or X.shape[1] != self.n_features_in_:
                raise ValueError(f"X has {X.shape[-1]} features, but {type(self).__name__} is "
                                 f"expecting {self.n_features_in_} features as input")
            return X.astype(np.float64)
        if takes_graphs(self.kernel_):
            return validate_graph_data(self, X, reset=False)
        return validate_data(self, X, reset=False, dtype=np.float64, ensure_all_finite=True)
