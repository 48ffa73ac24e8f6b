"""scikit-learn ``Kernel`` classes of infinitely wide networks."""

from .ntk import NTKKernel

__all__ = ["NTKKernel"]
