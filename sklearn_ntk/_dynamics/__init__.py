"""Dynamics solvers (private; the public entry point is :mod:`sklearn_ntk.dynamics`)."""

from ..exceptions import SingularKernelWarning, UnstableLearningRateWarning
from ..linalg.filters import max_stable_learning_rate, spectral_filter
from .cache import FactorizationCache
from .exact import KernelDynamics

__all__ = [
    "KernelDynamics",
    "FactorizationCache",
    "spectral_filter",
    "max_stable_learning_rate",
    "SingularKernelWarning",
    "UnstableLearningRateWarning",
]
