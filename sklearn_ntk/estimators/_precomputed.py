"""``kernel="precomputed"``: the estimators on a kernel matrix the user computed (and owns).

At ``fit`` X is the square train kernel ``(n_train, n_train)``; at ``predict`` it is the
``(n_test, n_train)`` kernel between the test rows and *all* training rows (the estimator is
pairwise, so ``GridSearchCV`` and ``cross_val_*`` slice rows and columns, as for
``SVC(kernel="precomputed")``). Only the means need nothing else; covariances (the ensemble's
spread) need the NNGP kernel and the test diagonal too, which one matrix cannot provide.
"""

from __future__ import annotations

import numpy as np
from sklearn.utils import check_array
from sklearn.utils.validation import validate_data

from ..dynamics import is_dask

__all__ = ["PRECOMPUTED", "PrecomputedPair", "is_precomputed", "refuse_covariance",
           "validate_precomputed_fit", "validate_precomputed_test"]

PRECOMPUTED = "precomputed"

#: Relative asymmetry ``max|K - K^T| / max|K|`` above which a train kernel is refused.
SYMMETRY_RTOL = 1e-6


def is_precomputed(kernel):
    """Whether the estimator's ``kernel`` parameter is the string ``"precomputed"``."""
    return isinstance(kernel, str) and kernel == PRECOMPUTED


def refuse_covariance(what):
    """The error for what needs more than the one precomputed matrix."""
    return ValueError(
        f"{what}: the ensemble covariance needs the NNGP kernel K(X, X) and K(x, X) and the "
        "test diagonal K(x, x), which kernel='precomputed' (one kernel matrix) does not "
        "provide; pass a kernel object (e.g. NTKKernel()) for covariances and probabilities"
    )


def validate_precomputed_fit(est, X, y, **kw):
    """Validate the square, finite, symmetric train kernel; sets ``n_features_in_ = n_train``."""
    if is_dask(X):
        raise ValueError("kernel='precomputed' takes an in-memory kernel matrix, not a dask "
                         "array (dask arrays need n_components and a kernel object)")
    X, y = validate_data(est, X, y, dtype=np.float64, ensure_all_finite=True, **kw)
    if X.shape[0] != X.shape[1]:
        raise ValueError(
            "kernel='precomputed' needs X to be the square (n_train, n_train) train kernel at "
            f"fit; got a {X.shape[0]} x {X.shape[1]} matrix"
        )
    scale = np.abs(X).max()
    asym = np.abs(X - X.T).max()
    if asym > SYMMETRY_RTOL * scale:
        raise ValueError(
            "kernel='precomputed': the train kernel X is not symmetric (max |X - X.T| = "
            f"{asym:.3g}, relative {asym / scale:.3g}); pass K(X_train, X_train)"
        )
    return X, y


def validate_precomputed_test(est, X):
    """Validate the ``(n_test, n_train)`` test-by-train kernel of a fitted estimator."""
    if is_dask(X):
        raise ValueError("kernel='precomputed' takes an in-memory kernel matrix, not a dask "
                         "array")
    n_train = est.n_features_in_
    X = check_array(X, dtype=np.float64, ensure_all_finite=True)
    if X.shape[1] != n_train:
        raise ValueError(
            f"X has {X.shape[1]} features, but {type(est).__name__} is expecting {n_train} "
            "features as input: with kernel='precomputed' X is the (n_test, n_train) kernel "
            f"between the test rows and the {n_train} training rows"
        )
    return validate_data(est, X, reset=False, dtype=np.float64, ensure_all_finite=True)


class PrecomputedPair:
    """The precomputed train kernel seen as a kernel on row indices.

    ``pair(I, J)`` returns ``(K[I][:, J], None)`` (no NNGP kernel), the protocol of
    :class:`~sklearn_ntk.dynamics.KernelPair`, so the exact path builds its solver from it
    unchanged.
    """

    need_nngp = False

    def __init__(self, gram):
        self.gram = gram

    def __call__(self, rows, cols=None):
        rows = np.asarray(rows, dtype=np.intp)
        if cols is None and np.array_equal(rows, np.arange(len(self.gram))):
            return self.gram, None  # the whole kernel: held, not copied (never written to)
        cols = rows if cols is None else np.asarray(cols, dtype=np.intp)
        return self.gram[np.ix_(rows, cols)], None
