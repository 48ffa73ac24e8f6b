"""scikit-learn ``Kernel`` classes of infinitely wide networks."""

from .network import NetworkKernel
from .ntk import NTKKernel

__all__ = ["NTKKernel", "NetworkKernel"]
