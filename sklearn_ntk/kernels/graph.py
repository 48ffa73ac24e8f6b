"""Graph inputs for :class:`~sklearn_ntk.NetworkKernel`: networks with Aggregate layers."""

from __future__ import annotations

from .. import layers as nl
from .._validation import check_memory
from ..backends import graph as backend
from ..backends import graph_chain
from ..graphs import check_graphs

__all__ = ["uses_graphs", "graph_pairs", "graph_diag"]


def uses_graphs(layers):
    """Whether a layer list (or layer) contains an :class:`~sklearn_ntk.layers.Aggregate`."""
    if isinstance(layers, nl.Aggregate):
        return True
    if isinstance(layers, tuple) and len(layers) == 2 and isinstance(layers[0], str):
        return uses_graphs(layers[1])
    if isinstance(layers, nl.Serial):
        return uses_graphs(layers.layers)
    if isinstance(layers, nl.Parallel):
        return uses_graphs(layers.branches)
    if isinstance(layers, (list, tuple)):
        return any(uses_graphs(entry) for entry in layers)
    return False


def _resolve(kernel, X, Y):
    if kernel.input_shape is not None:
        raise ValueError(
            "input_shape must be None for a graph network (the node features' width is read "
            f"from X), got {kernel.input_shape!r}"
        )
    gx = check_graphs(X, "X")
    gy = None if Y is None else check_graphs(Y, "Y")
    C = gx[0][1].shape[1]
    if gy is not None and gy[0][1].shape[1] != C:
        raise ValueError(
            f"X's graphs have {C} node features but Y's have {gy[0][1].shape[1]}; they must match"
        )
    plan, w2, b2 = kernel._resolved(C, graph=True)
    return plan, w2, b2, gx, gy


def graph_pairs(kernel, X, Y, grad=False):
    """``(nngp, ntk)`` of shape ``(K, n, m)`` between the graphs of ``X`` and ``Y``."""
    plan, w2, b2, gx, gy = _resolve(kernel, X, Y)
    n, m = len(gx), len(gx) if gy is None else len(gy)
    check_memory(2 * (3 if grad else 1) * 8 * n * m, f"NetworkKernel on {n} x {m} graphs")
    tables = None if grad else graph_chain.encode(plan, w2, b2)
    if tables is None:
        return backend.kernel_matrices(plan, gx, gy, w2, b2, grad=grad)
    packed_y = None if gy is None else graph_chain.pack(gy)
    nngp, ntk = graph_chain.pairs(tables, graph_chain.pack(gx), packed_y)  # compiled GNTK family
    return nngp[None], ntk[None]


def graph_diag(kernel, X):
    """``(ntk, nngp)`` of every graph with itself."""
    plan, w2, b2, gx, _ = _resolve(kernel, X, None)
    tables = graph_chain.encode(plan, w2, b2)
    if tables is not None:
        nngp, ntk, _ = graph_chain.self_pass(tables, graph_chain.pack(gx))
        return ntk, nngp
    nngp, ntk = backend.diag_kernels(plan, gx, w2, b2)
    return ntk[0].copy(), nngp[0].copy()
