"""Compile a list of layers into a validated plan: shapes, Gaussianity and what each layer needs.

A plan is a tree of :class:`Op` (leaves) and :class:`Serial`/:class:`Parallel` nodes. Compiling
infers the spatial shape after every layer, checks that the infinite-width theory applies (refusing
networks it cannot handle with a message naming the layer and the fix), and marks for every layer
whether its input must carry the full pixel-pair covariance (``full``) or only the pixel diagonal.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field

from .. import layers as nl
from ..activations import Activation, get_activation

__all__ = ["Op", "SerialNode", "ParallelNode", "Plan", "compile_network"]

_PADDINGS = ("same", "valid", "circular")


@dataclass
class Op:
    """One leaf layer of a plan.

    ``kind`` is one of ``dense, conv, act, avgpool, gap, gsp, flatten, layernorm, identity,
    fanout, faninsum``; ``params`` holds its resolved parameters (per spatial axis for conv and
    pooling: ``(size, stride, pad_lo, in_len, out_len)``); ``index`` numbers the leaves (variance
    histories are stored by it); ``full`` says whether its input carries pixel-pair covariances.
    """

    kind: str
    name: str
    params: dict
    index: int = -1
    full: bool = False
    in_shape: tuple = ()


@dataclass
class SerialNode:
    children: list


@dataclass
class ParallelNode:
    branches: list


@dataclass
class Plan:
    """A compiled network: the op tree, the input shape and whether the input is built full."""

    root: SerialNode
    input_shape: tuple
    spatial: tuple
    input_full: bool
    n_ops: int
    ops: list = field(default_factory=list)


@dataclass(frozen=True)
class _Meta:
    """What is known about the state between two layers: spatial shape and Gaussianity."""

    shape: tuple
    gaussian: bool


class _Compiler:
    def __init__(self):
        self.ops = []
        self.has_weights = False

    # -------------------------------------------------------------------------------- structure
    def node(self, spec, meta, where):
        if isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[0], str):
            return self.node(spec[1], meta, f"{where} ({spec[0]!r})")
        if isinstance(spec, (list, nl.Serial)):
            entries = spec.layers if isinstance(spec, nl.Serial) else spec
            if not isinstance(entries, (list, tuple)):
                raise TypeError(f"{where}: serial layers must be a list, got {entries!r}")
            children = []
            for i, entry in enumerate(entries):
                child, meta = self.node(entry, meta, f"{where}[{i}]" if where else f"layer {i}")
                children.append(child)
            return SerialNode(children), meta
        if isinstance(spec, nl.Parallel):
            return self.parallel(spec, meta, where)
        return self.leaf(spec, meta, where)

    def parallel(self, spec, meta, where):
        branches = spec.branches
        if not isinstance(meta, tuple):
            raise ValueError(
                f"{where}: parallel(...) needs one input per branch; put FanOut({len(branches)}) before it"
            )
        if len(meta) != len(branches):
            raise ValueError(
                f"{where}: parallel(...) has {len(branches)} branches but receives {len(meta)} "
                f"inputs; use FanOut({len(branches)})"
            )
        nodes, metas = [], []
        for i, (branch, m) in enumerate(zip(branches, meta, strict=True)):
            if isinstance(branch, (list, tuple)) and not _is_named(branch):
                branch = nl.Serial(list(branch))
            node, out = self.node(branch, m, f"{where} branch {i}")
            nodes.append(node)
            metas.append(out)
        return ParallelNode(nodes), tuple(metas)

    def add(self, kind, name, params, meta):
        op = Op(kind, name, params, index=len(self.ops), in_shape=meta.shape)
        self.ops.append(op)
        return op

    # -------------------------------------------------------------------------------- leaves
    def leaf(self, spec, meta, where):
        if isinstance(spec, nl.FanOut):
            num = spec.num
            if isinstance(num, bool) or not isinstance(num, numbers.Integral) or num < 1:
                raise ValueError(f"{where}: FanOut(num) needs a positive integer, got {num!r}")
            self._single(meta, where, spec)
            return self.add("fanout", where, {"num": int(num)}, meta), (meta,) * int(num)
        if isinstance(spec, nl.FanInSum):
            return self.fan_in(meta, where)
        self._single(meta, where, spec)
        name = f"{where} {spec!r}"
        if isinstance(spec, nl.Dense):
            self.has_weights = True
            return self.add("dense", name, _stds(spec, where), meta), _Meta(meta.shape, True)
        if isinstance(spec, nl.Conv):
            return self.conv(spec, meta, name)
        if isinstance(spec, nl.AvgPool):
            return self.pool(spec, meta, name)
        if isinstance(spec, (nl.GlobalAvgPool, nl.GlobalSumPool)):
            if not meta.shape:
                raise ValueError(f"{name}: the input has no spatial axes to pool over")
            kind = "gap" if isinstance(spec, nl.GlobalAvgPool) else "gsp"
            return self.add(kind, name, {}, meta), _Meta((), meta.gaussian)
        if isinstance(spec, nl.Flatten):
            return self.add("flatten", name, {}, meta), _Meta((), False)
        if isinstance(spec, nl.Identity):
            return self.add("identity", name, {}, meta), meta
        if isinstance(spec, nl.LayerNorm):
            self._gaussian(meta, name, "LayerNorm")
            return self.add("layernorm", name, {}, meta), meta
        if isinstance(spec, nl.Layer):
            raise TypeError(f"{name}: layer type {type(spec).__name__} is not supported")
        try:
            act = get_activation(spec)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"{where}: {exc}") from None
        name = f"{where} {act!r}"
        self._gaussian(meta, name, "an activation")
        return self.add("act", name, {"act": act, "spec": spec}, meta), _Meta(meta.shape, False)

    def fan_in(self, meta, where):
        if not isinstance(meta, tuple):
            raise ValueError(f"{where}: FanInSum() needs several branches (FanOut, parallel) before it")
        shapes = {m.shape if isinstance(m, _Meta) else "branches" for m in meta}
        if len(shapes) != 1 or "branches" in shapes:
            raise ValueError(
                f"{where}: FanInSum() sums branches of different shapes "
                f"{[m.shape if isinstance(m, _Meta) else 'branches' for m in meta]}; "
                "make every branch produce the same spatial shape (same padding / strides)"
            )
        gaussian = all(m.gaussian for m in meta)
        return self.add("faninsum", where, {"num": len(meta)}, meta[0]), _Meta(meta[0].shape, gaussian)

    def conv(self, spec, meta, name):
        self.has_weights = True
        axes = _axes(spec.filter_shape, spec.strides, spec.padding, meta.shape, name, "filter_shape")
        params = dict(_stds(spec, name), axes=axes, padding=spec.padding.lower())
        return self.add("conv", name, params, meta), _Meta(_out(axes), True)

    def pool(self, spec, meta, name):
        axes = _axes(spec.window_shape, spec.strides, spec.padding, meta.shape, name, "window_shape")
        params = {"axes": axes, "padding": spec.padding.lower()}
        return self.add("avgpool", name, params, meta), _Meta(_out(axes), meta.gaussian)

    # -------------------------------------------------------------------------------- checks
    @staticmethod
    def _single(meta, where, spec):
        if isinstance(meta, tuple):
            raise ValueError(
                f"{where} {spec!r} receives {len(meta)} branches; merge them with FanInSum() first"
            )

    @staticmethod
    def _gaussian(meta, name, what):
        if not meta.gaussian:
            raise ValueError(
                f"{name}: {what} needs a Gaussian input, i.e. a Dense or Conv layer (or a sum of "
                "Gaussian branches) directly before it; insert Dense() / Conv(...) before it"
            )


def _is_named(entry):
    return isinstance(entry, tuple) and len(entry) == 2 and isinstance(entry[0], str)


def _std(value, name, where, positive):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise TypeError(f"{where}: {name} must be None or a finite real number, got {value!r}")
    if value < 0 or (positive and value == 0):
        raise ValueError(f"{where}: {name} must be {'> 0' if positive else '>= 0'}, got {value!r}")
    return float(value) ** 2


def _stds(spec, where):
    return {
        "w2": _std(spec.weight_std, "weight_std", where, True),
        "b2": _std(spec.bias_std, "bias_std", where, False),
    }


def _tuple(value, n, what, name):
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = (value,) * n
    value = tuple(value) if isinstance(value, (list, tuple)) else value
    if (
        not isinstance(value, tuple)
        or len(value) != n
        or any(isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1 for v in value)
    ):
        raise ValueError(f"{name}: {what} must be {n} positive integer(s), got {value!r}")
    return tuple(int(v) for v in value)


def _axes(window, strides, padding, shape, name, what):
    """Per spatial axis ``(size, stride, pad_lo, in_len, out_len)`` (SAME pads as in XLA)."""
    if not shape:
        raise ValueError(f"{name}: the input has no spatial axes; give NetworkKernel an input_shape")
    if not isinstance(padding, str) or padding.lower() not in _PADDINGS:
        raise ValueError(f"{name}: padding must be one of {_PADDINGS}, got {padding!r}")
    nd = len(shape)
    if isinstance(window, numbers.Integral) or not hasattr(window, "__len__") or len(window) != nd:
        raise ValueError(
            f"{name}: {what} needs one entry per spatial axis of its input {shape}, got {window!r}"
        )
    window = _tuple(window, nd, what, name)
    strides = (1,) * nd if strides is None else _tuple(strides, nd, "strides", name)
    axes = []
    for k, s, n in zip(window, strides, shape, strict=True):
        if padding.lower() == "valid":
            if k > n:
                raise ValueError(
                    f"{name}: {what} {window} is larger than its input {shape} with VALID "
                    "padding; use padding='same' or a smaller window"
                )
            axes.append((k, s, 0, n, (n - k) // s + 1))
        else:
            out = -(-n // s)
            total = max((out - 1) * s + k - n, 0)
            axes.append((k, s, total // 2, n, out))
    return tuple(axes)


def _out(axes):
    return tuple(a[4] for a in axes)


_NEEDS_FULL = {"avgpool", "gap", "gsp"}
_DIAG_OK = {"flatten"}


def _mark(node, out_full):
    """Mark ``op.full`` backwards; ``out_full`` is a bool or a tuple (one per branch)."""
    if isinstance(node, SerialNode):
        for child in reversed(node.children):
            out_full = _mark(child, out_full)
        return out_full
    if isinstance(node, ParallelNode):
        return tuple(_mark(b, f) for b, f in zip(node.branches, out_full, strict=True))
    op = node
    if op.kind == "fanout":
        op.full = any(out_full)
    elif op.kind == "faninsum":
        op.full = out_full
        return (out_full,) * op.params["num"]
    elif op.kind in _NEEDS_FULL:
        op.full = True
    elif op.kind in _DIAG_OK:
        op.full = False
    else:
        op.full = out_full
    op.full = bool(op.full) and bool(op.in_shape)
    return op.full


def compile_network(layers, input_shape):
    """Validate ``layers`` for inputs of ``input_shape`` (channels last) and return a :class:`Plan`."""
    if isinstance(layers, (nl.Layer, str, Activation)) and not isinstance(layers, nl.Serial):
        layers = [layers]
    if not isinstance(layers, (list, tuple, nl.Serial)):
        raise TypeError(f"layers must be a list of layers or serial(...), got {type(layers).__name__}")
    if isinstance(layers, tuple) and not _is_named(layers):
        layers = list(layers)
    comp = _Compiler()
    spatial = tuple(input_shape[:-1])
    root, meta = comp.node(layers, _Meta(spatial, False), "")
    if not isinstance(root, SerialNode):
        root = SerialNode([root])
    if isinstance(meta, tuple):
        raise ValueError("the network ends with several branches; merge them with FanInSum()")
    if meta.shape:
        last = comp.ops[-1].name if comp.ops else "the input"
        raise ValueError(
            f"the network's output (after {last.strip()}) still has spatial axes {meta.shape}: "
            "add Flatten(), GlobalAvgPool() or GlobalSumPool() before the readout Dense()"
        )
    if not comp.has_weights:
        raise ValueError("the network has no Dense or Conv layer: its NTK would be zero")
    input_full = _mark(root, False)
    return Plan(root, tuple(input_shape), spatial, bool(input_full), len(comp.ops), comp.ops)
