"""Warnings and errors raised by sklearn-ntk (public, importable as ``sklearn_ntk.exceptions``)."""

__all__ = ["SingularKernelWarning", "UnstableLearningRateWarning"]


class SingularKernelWarning(RuntimeWarning):
    """The regularised train kernel is numerically singular; the minimum-norm solution is used."""


class UnstableLearningRateWarning(RuntimeWarning):
    """Discrete gradient descent with this learning rate diverges (``eta*lambda_max/(n k) > 2``)."""
