"""Validation helpers and warnings shared by the dynamics solvers."""

from __future__ import annotations

import numpy as np

from .._validation import all_finite
from ..exceptions import SingularKernelWarning, UnstableLearningRateWarning, warn_from_caller
from ..linalg.filters import DYNAMICS, max_stable_learning_rate

KINDS = ("ntk", "nngp")
METHODS = ("auto", "eigh", "cholesky", "lanczos")


# --------------------------------------------------------------------------------------------
# validation helpers
# --------------------------------------------------------------------------------------------
def check_times(t, name="t"):
    """Return ``t`` as a float64 array, rejecting NaN and negative values."""
    try:
        arr = np.asarray(t, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be a non-negative real number or array of them, got {t!r}") \
            from exc
    if np.isnan(arr).any():
        raise ValueError(f"{name} must not be NaN, got {t!r}")
    if (arr < 0).any():
        raise ValueError(f"{name} must be non-negative (training time in steps), got {t!r}")
    return arr


def check_scalar(value, name, *, positive=False):
    try:
        v = float(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be a real number, got {value!r}") from exc
    if not np.isfinite(v):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if positive and not v > 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
    if not positive and v < 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    return v


def as_float_matrix(a, name, shape=None):
    a = np.asarray(a, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array, got shape {a.shape}")
    if shape is not None:
        for axis, (got, want) in enumerate(zip(a.shape, shape, strict=True)):
            if want is not None and got != want:
                raise ValueError(f"{name} has shape {a.shape}; expected {want} along axis {axis}")
    if not all_finite(a):
        raise ValueError(f"{name} contains NaN or infinite values")
    return a


def check_sample_weight(sample_weight, n, *, allow_zero=True):
    """Float64 weights of shape (n,), finite, ``>= 0`` (``> 0`` unless ``allow_zero``)."""
    if sample_weight is None:
        return None
    w = np.asarray(sample_weight, dtype=np.float64)
    if w.ndim == 0:
        w = np.full(n, float(w))
    if w.shape != (n,):
        raise ValueError(f"sample_weight has shape {w.shape}, expected ({n},)")
    if not np.isfinite(w).all():
        raise ValueError("sample_weight contains NaN or infinite values")
    if (w < 0).any() or (not allow_zero and (w == 0).any()):
        raise ValueError("sample_weight must be " + (">= 0" if allow_zero else "> 0"))
    if not w.sum() > 0:
        raise ValueError("sample_weight is zero for every sample: at least one weight must be > 0")
    return w


def check_common(learning_rate, alpha, kind, dynamics):
    lr = check_scalar(learning_rate, "learning_rate", positive=True)
    a = check_scalar(alpha, "alpha")
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if dynamics not in DYNAMICS:
        raise ValueError(f"dynamics must be one of {DYNAMICS}, got {dynamics!r}")
    return lr, a


def targets(y):
    y = np.asarray(y, dtype=np.float64)
    if y.ndim not in (1, 2):
        raise ValueError(f"y must be 1-D or 2-D, got shape {y.shape}")
    Y = y.reshape(len(y), -1)
    if Y.shape[0] == 0 or Y.shape[1] == 0:
        raise ValueError(f"y must have at least one sample and one output, got shape {y.shape}")
    return Y, y.ndim == 1


def warn_singular():
    warn_from_caller(
        "the regularised train kernel Theta(X, X) + alpha*I is numerically singular "
        "(e.g. duplicate training rows with alpha=0); using the minimum-norm "
        "(pseudo-inverse) solution for t=inf. Set alpha > 0 to avoid this.",
        SingularKernelWarning,
    )


def warn_unstable(learning_rate, lam_max, scale, weight, k):
    if scale * lam_max > 2.0:
        eta_max = max_stable_learning_rate(lam_max, weight, k)
        warn_from_caller(
            f"learning_rate={learning_rate:g} makes discrete gradient descent diverge "
            f"(learning_rate * lambda_max / (n k) = {scale * lam_max:.3g} > 2); the "
            f"largest stable learning_rate is {eta_max:.6g}",
            UnstableLearningRateWarning,
        )


def times_arg(t):
    times = check_times(t)
    return times.ndim == 0, np.atleast_1d(times).ravel()


