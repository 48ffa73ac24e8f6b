"""Warnings and errors raised by sklearn-ntk (public, importable as ``sklearn_ntk.exceptions``)."""

__all__ = ["PerformanceWarning", "SingularKernelWarning", "UnstableLearningRateWarning"]


class SingularKernelWarning(RuntimeWarning):
    """The regularised train kernel is numerically singular; the minimum-norm solution is used."""


class UnstableLearningRateWarning(RuntimeWarning):
    """Discrete gradient descent with this learning rate diverges (``eta*lambda_max/(n k) > 2``)."""


class PerformanceWarning(UserWarning):
    """A slower fallback computation is used (e.g. a model ``torch.func.vmap`` cannot batch)."""


def warn_from_caller(message, category):
    """Emit ``message`` as ``category`` attributed to the first caller outside sklearn-ntk.

    The reported line is the user's (or the calling library's) line, whatever the call depth
    inside this package, so ``warnings.simplefilter`` rules keyed on modules and the printed
    location point at the code that asked for the computation.
    """
    import os
    import sys
    import warnings

    package_dir = os.path.dirname(os.path.abspath(__file__))
    frame, level = sys._getframe(1), 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(package_dir):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level + 1)
