"""What every network kernel shares: the (weight_std, bias_std) hyperparameters and their checks."""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.gaussian_process.kernels import Hyperparameter

KINDS = ("ntk", "nngp")


class StdHyperparameters:
    """``weight_std`` / ``bias_std`` as scikit-learn hyperparameters (``bias_std=0`` is fixed)."""

    @property
    def hyperparameter_weight_std(self):
        return Hyperparameter("weight_std", "numeric", self.weight_std_bounds)

    @property
    def hyperparameter_bias_std(self):
        bounds = self.bias_std_bounds
        if np.ndim(self.bias_std) == 0 and self.bias_std == 0:
            bounds = "fixed"
        return Hyperparameter("bias_std", "numeric", bounds)

    def _stds_repr(self):
        """``weight_std=..., bias_std=...`` for ``repr`` (3 significant digits; never raises,
        whatever was set: an invalid value is reported when the kernel is evaluated)."""
        return ", ".join(f"{name}={_short(getattr(self, name))}" for name in ("weight_std", "bias_std"))

    def is_stationary(self):
        """The NTK is not translation invariant."""
        return False

    def _free_mask(self):
        """Which of (bias_std, weight_std) -- theta's order -- are free hyperparameters."""
        return [not self.hyperparameter_bias_std.fixed, not self.hyperparameter_weight_std.fixed]

    def _checked_variances(self):
        """Validate ``kind``, ``weight_std`` and ``bias_std``; return (sigma_w^2, sigma_b^2)."""
        if self.kind not in KINDS:
            raise ValueError(f"kind must be 'ntk' or 'nngp', got {self.kind!r}")
        for name in ("weight_std", "bias_std"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise TypeError(f"{name} must be a real number, got {value!r}")
            if not np.isfinite(value) or value < 0 or (name == "weight_std" and value == 0):
                raise ValueError(
                    f"{name} must be finite and {'> 0' if name == 'weight_std' else '>= 0'}, got {value!r}"
                )
        w, b = float(self.weight_std), float(self.bias_std)
        w2, b2 = w * w, b * b  # (a float ** 2 raises a bare OverflowError instead of giving inf)
        for name, square in (("weight_std", w2), ("bias_std", b2)):
            if not np.isfinite(square):
                raise ValueError(
                    f"{name}={getattr(self, name)!r} is too large: its square (a layer's variance "
                    "scale) overflows float64"
                )
        return w2, b2


def _short(value):
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return f"{value:.3g}"
    return repr(value)
