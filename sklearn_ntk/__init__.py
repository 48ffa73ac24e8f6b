"""sklearn-ntk: the Neural Tangent Kernel as a first-class scikit-learn citizen.

Public names
------------
NTKKernel
    Analytic NTK / NNGP of fully-connected networks as a scikit-learn kernel.
NetworkKernel
    The same kernels for any architecture (convolutions, pooling, residual blocks, LayerNorm).
layers
    The layers of :class:`NetworkKernel` (neural-tangents ``stax`` names).
NTKRegressor, NTKGaussianProcess, NTKClassifier
    Closed-form predictions of infinitely wide networks trained by gradient descent for time ``t``
    (exact, or of a rank-``m`` Nystroem kernel with ``n_components=m``).
FactorizationCache
    An explicit cache of eigendecompositions for grid searches over ``t``/``alpha``.
empirical_ntk
    The empirical NTK of any ``torch.nn.Module`` (needs the ``torch`` extra).
nn
    NTK-parameterised PyTorch networks (needs the ``torch`` extra).

Everything that needs PyTorch is imported lazily, so ``import sklearn_ntk`` works without it.
"""

from importlib import import_module

__version__ = "0.1.0"

# public name -> module that defines it (imported on first access)
_LAZY = {
    "NTKKernel": "sklearn_ntk.kernels",
    "NetworkKernel": "sklearn_ntk.kernels",
    "Activation": "sklearn_ntk.activations",
    "NTKRegressor": "sklearn_ntk.estimators",
    "NTKGaussianProcess": "sklearn_ntk.estimators",
    "NTKClassifier": "sklearn_ntk.estimators",
    "PerformanceWarning": "sklearn_ntk.exceptions",
    "FactorizationCache": "sklearn_ntk.dynamics",
    "SingularKernelWarning": "sklearn_ntk.exceptions",
    "UnstableLearningRateWarning": "sklearn_ntk.exceptions",
    "empirical_ntk": "sklearn_ntk.torch_ntk",
    "empirical_ntk_diag": "sklearn_ntk.torch_ntk",
    "EmpiricalNTKKernel": "sklearn_ntk.torch_ntk",
}
_SUBMODULES = {"nn", "kernels", "layers", "activations", "estimators", "dynamics", "linalg",
               "exceptions", "torch_ntk", "training", "cli"}

__all__ = sorted(_LAZY) + ["layers", "nn"]


def __getattr__(name):
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        module = import_module(f"sklearn_ntk.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'sklearn_ntk' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
