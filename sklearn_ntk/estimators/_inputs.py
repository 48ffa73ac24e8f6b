"""Input handling shared by the estimators: graph inputs and the kernel's declared ensemble."""

from __future__ import annotations

import numpy as np
from sklearn.utils.validation import validate_data

from ..graphs import graph_array

__all__ = ["kernel_kind", "nngp_counterpart", "takes_graphs", "validate_graph_data",
           "copy_fit_inputs"]


def _declared_kinds(kernel):
    """``{parameter name: "ntk" | "nngp"}`` of the (nested) ``kind`` parameters of ``kernel``."""
    try:
        params = kernel.get_params(deep=True)
    except Exception:  # not a scikit-learn kernel: validated elsewhere
        return {}
    return {key: value for key, value in params.items()
            if (key == "kind" or key.endswith("__kind")) and value in ("ntk", "nngp")}


def kernel_kind(kernel):
    """The ensemble kind ("ntk" or "nngp") a kernel declares through its (nested) ``kind``.

    ``None`` when the kernel declares none (any other kernel), or declares both (a sum of an
    NTK and an NNGP kernel).
    """
    kinds = set(_declared_kinds(kernel).values())
    return kinds.pop() if len(kinds) == 1 else None


def nngp_counterpart(kernel, kind):
    r"""The kernel of the prior covariance of the ensemble trained with ``kernel`` (``kind``).

    The readout-only ensemble (``kind="nngp"``) and a kernel without a ``kind`` (any other
    kernel) are their own prior. Otherwise every nested ``kind="ntk"`` becomes ``"nngp"``:
    ``NTKKernel()`` gives ``NTKKernel(kind="nngp")``, and a composite such as
    ``ConstantKernel(c) * NTKKernel()`` gives ``ConstantKernel(c) * NTKKernel(kind="nngp")``
    (the output scaled by :math:`\sqrt c` scales both kernels by ``c``); in a sum, the
    ``kind="nngp"`` terms (readout-only parts) stay as they are.
    """
    ntk = [key for key, value in _declared_kinds(kernel).items() if value == "ntk"]
    if kind == "nngp" or not ntk:
        return kernel
    from sklearn.base import clone

    return clone(kernel).set_params(**dict.fromkeys(ntk, "nngp"))


def takes_graphs(kernel):
    """Whether ``kernel`` works on graphs (``requires_vector_input`` False) rather than rows."""
    return kernel is not None and not getattr(kernel, "requires_vector_input", True)


def validate_graph_data(est, X, *args, **kwargs):
    """``validate_data`` on the 1-D object array of :func:`~sklearn_ntk.graphs.graph_array`.

    The graphs are checked (and copied) by ``graph_array``; ``X`` is not made numeric.
    """
    kwargs.update(dtype=None, ensure_2d=False, ensure_all_finite=False)
    return validate_data(est, graph_array(X), *args, **kwargs)


def copy_fit_inputs(X):
    """A float64 copy of the training inputs (graphs: a copy of the object array)."""
    if isinstance(X, np.ndarray) and X.dtype == object:
        return X.copy()
    return np.array(X, dtype=np.float64, copy=True)
