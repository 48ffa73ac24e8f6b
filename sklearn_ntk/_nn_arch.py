r"""Finite-width PyTorch twins of the networks behind :class:`~sklearn_ntk.NetworkKernel`.

:func:`from_layers` turns the layer vocabulary of :mod:`sklearn_ntk.layers` into an
NTK-parameterised :class:`torch.nn.Module` of a given width whose empirical NTK
(:func:`sklearn_ntk.empirical_ntk`) and output covariance over random initialisations converge to
the analytic kernels as the width grows.  The conventions are those of neural-tangents' ``stax``:

* inputs are the rows of ``X`` reshaped in C order to ``(n,) + input_shape``, channels last;
* ``Dense`` acts on the channel (last) axis, position by position; ``Dense`` and ``Conv`` compute
  :math:`z = \sigma_w / \sqrt{n_\mathrm{in}}\, W h + \sigma_b b` with :math:`W, b \sim
  \mathcal{N}(0, 1)` and :math:`n_\mathrm{in}` the channel count times the filter size;
* ``"same"`` and ``"circular"`` padding add :math:`\lfloor t/2 \rfloor` pixels before and
  :math:`\lceil t/2 \rceil` after (:math:`t` the total), zeros or wrapped pixels;
* ``AvgPool`` divides by the full window size, also where it overlaps the padding, and its
  strides default to 1; ``Flatten`` keeps C order; ``LayerNorm`` normalises over channels with
  :math:`\epsilon = 10^{-12}`; ``FanOut``/``parallel``/``FanInSum`` carry tuples of tensors.

Every ``Dense`` and ``Conv`` has ``width`` output channels, except the last one outside parallel
branches (the readout), which has ``out_features``.
"""

from __future__ import annotations

import math
import numbers

import torch
import torch.nn.functional as F
from torch import nn

from .activations import get_activation
from .nn import (
    NTKConv,
    NTKLinear,
    _check_int,
    _check_padding,
    _check_shape,
    _check_std,
    _pad_spatial,
    _padded_spatial,
)

__all__ = ["NTKNetwork", "from_kernel", "from_layers"]

_WEIGHT_LAYERS = ("Dense", "Conv")
_SPATIAL_OPS = ("AvgPool", "GlobalAvgPool", "GlobalSumPool", "Flatten", "LayerNorm")


# ---------------------------------------------------------------------------------------------
# parameter-free modules (one per layer type of the vocabulary)
# ---------------------------------------------------------------------------------------------


class _Activation(nn.Module):
    def __init__(self, activation):
        super().__init__()
        self.activation = activation

    def forward(self, h):
        return self.activation.torch_fn(h)

    def extra_repr(self):
        return repr(self.activation)


class _AvgPool(nn.Module):
    def __init__(self, window_shape, strides, padding):
        super().__init__()
        self.window_shape, self.strides, self.padding = window_shape, strides, padding

    def forward(self, h):
        pool = (F.avg_pool1d, F.avg_pool2d, F.avg_pool3d)[len(self.window_shape) - 1]
        h = _pad_spatial(h, self.window_shape, self.strides, self.padding)
        out = pool(torch.movedim(h, -1, 1), self.window_shape, self.strides)
        return torch.movedim(out, 1, -1)

    def extra_repr(self):
        return f"window_shape={self.window_shape}, strides={self.strides}, padding={self.padding!r}"


class _GlobalPool(nn.Module):
    def __init__(self, reduce):
        super().__init__()
        self.reduce = reduce

    def forward(self, h):
        axes = tuple(range(1, h.dim() - 1))
        return h.mean(dim=axes) if self.reduce == "mean" else h.sum(dim=axes)

    def extra_repr(self):
        return self.reduce


class _Flatten(nn.Module):
    def forward(self, h):
        return h.reshape(h.shape[0], -1)


class _LayerNorm(nn.Module):
    eps = 1e-12

    def forward(self, h):
        mean = h.mean(dim=-1, keepdim=True)
        var = h.var(dim=-1, unbiased=False, keepdim=True)
        return (h - mean) / torch.sqrt(var + self.eps)


class _FanOut(nn.Module):
    def __init__(self, num):
        super().__init__()
        self.num = num

    def forward(self, h):
        return (h,) * self.num

    def extra_repr(self):
        return f"num={self.num}"


class _FanInSum(nn.Module):
    def forward(self, hs):
        out = hs[0]
        for h in hs[1:]:
            out = out + h
        return out


class _Parallel(nn.Module):
    def __init__(self, branches):
        super().__init__()
        self.branches = nn.ModuleList(branches)

    def forward(self, hs):
        return tuple(branch(h) for branch, h in zip(self.branches, hs, strict=True))


class _Serial(nn.Module):
    def __init__(self, layers):
        super().__init__()
        self.layers = nn.ModuleList(layers)

    def forward(self, h):
        for layer in self.layers:
            h = layer(h)
        return h


# ---------------------------------------------------------------------------------------------
# the builder: one function per layer type, mapping (layer, per-sample input shape) to
# (module, per-sample output shape); a tuple of inputs (after FanOut) has a list of shapes
# ---------------------------------------------------------------------------------------------


class _Context:
    """What every builder needs: defaults, width and where the parameters come from."""

    def __init__(self, width, weight_std, bias_std, generator, dtype, device):
        self.width, self.weight_std, self.bias_std = width, weight_std, bias_std
        self.generator, self.dtype, self.device = generator, dtype, device

    def stds(self, layer):
        weight_std = getattr(layer, "weight_std", None)
        bias_std = getattr(layer, "bias_std", None)
        return (
            self.weight_std if weight_std is None else _check_std(weight_std, "weight_std"),
            self.bias_std if bias_std is None else _check_std(bias_std, "bias_std"),
        )

    def tensor_args(self):
        return dict(generator=self.generator, dtype=self.dtype, device=self.device)


def _unwrap(layer):
    """A ``(name, layer)`` pair (named layers) is its layer."""
    if isinstance(layer, tuple) and len(layer) == 2 and isinstance(layer[0], str):
        return layer[1]
    return layer


def _kind(layer):
    if isinstance(layer, (list, tuple)):
        return "Serial"
    name = type(layer).__name__.lstrip("_")
    return name[:1].upper() + name[1:]


def _children(layer):
    """The sub-layers of a serial or parallel combinator (or of a plain list)."""
    if isinstance(layer, (list, tuple)):
        return list(layer)
    for attr in ("layers", "branches"):
        value = getattr(layer, attr, None)
        if value is not None:
            return list(value)
    raise TypeError(f"cannot read the sub-layers of {type(layer).__name__}")


def _single(shape, what):
    if isinstance(shape, list):
        raise ValueError(
            f"{what} gets {len(shape)} branches (after FanOut); combine them with FanInSum "
            "or route them through parallel(...) first"
        )
    return shape


def _spatial(shape, what):
    if len(_single(shape, what)) < 2:
        raise ValueError(
            f"{what} needs inputs with spatial axes (channels last), got per-sample shape "
            f"{shape}; give input_shape=(H, W, C) or (T, C)"
        )
    return shape


def _build_dense(layer, shape, ctx, out):
    shape = _single(shape, "Dense")
    weight_std, bias_std = ctx.stds(layer)
    module = NTKLinear(shape[-1], out, weight_std, bias_std, **ctx.tensor_args())
    return module, shape[:-1] + (out,)


def _build_conv(layer, shape, ctx, out):
    shape = _spatial(shape, "Conv")
    weight_std, bias_std = ctx.stds(layer)
    module = NTKConv(shape[-1], out, layer.filter_shape, getattr(layer, "strides", None),
                     getattr(layer, "padding", "same"), weight_std, bias_std,
                     **ctx.tensor_args())
    return module, module.output_shape(shape)


def _build_avg_pool(layer, shape, ctx):
    shape = _spatial(shape, "AvgPool")
    window = _check_shape(layer.window_shape, "window_shape")
    strides = getattr(layer, "strides", None)
    strides = (1,) * len(window) if strides is None else _check_shape(strides, "strides",
                                                                        len(window))
    padding = _check_padding(getattr(layer, "padding", "valid"), ("valid", "same", "circular"))
    padded = _padded_spatial(shape, window, strides, padding)
    out = tuple((p - k) // s + 1 for p, k, s in zip(padded, window, strides, strict=True))
    return _AvgPool(window, strides, padding), out + shape[-1:]


def _build_simple(kind, shape):
    if kind == "GlobalAvgPool":
        return _GlobalPool("mean"), _spatial(shape, kind)[-1:]
    if kind == "GlobalSumPool":
        return _GlobalPool("sum"), _spatial(shape, kind)[-1:]
    if kind == "Flatten":
        return _Flatten(), (math.prod(_single(shape, kind)),)
    return _LayerNorm(), _single(shape, kind)  # LayerNorm


def _build_fan_in_sum(shape):
    if not isinstance(shape, list):
        raise ValueError("FanInSum needs several branches (a FanOut before it)")
    if len(set(shape)) != 1:
        raise ValueError(
            f"FanInSum: the branches have per-sample shapes {shape}; in a finite network every "
            "branch must end with the same shape (e.g. the same number of channels: a branch "
            "without Dense/Conv keeps the channels of its input)"
        )
    return _FanInSum(), shape[0]


def _build_parallel(layer, shape, ctx):
    branches = _children(layer)
    if not isinstance(shape, list) or len(shape) != len(branches):
        got = len(shape) if isinstance(shape, list) else 1
        raise ValueError(
            f"parallel with {len(branches)} branches gets {got} input(s); put FanOut("
            f"{len(branches)}) before it"
        )
    built = [_build_serial(_as_list(b), s, ctx) for b, s in zip(branches, shape, strict=True)]
    return _Parallel([m for m, _ in built]), [s for _, s in built]


def _as_list(layer):
    layer = _unwrap(layer)
    return _children(layer) if _kind(layer) == "Serial" else [layer]


def _build_one(layer, shape, ctx, out=None):
    """Module and output shape of one layer; ``out`` overrides the width of a Dense/Conv."""
    layer = _unwrap(layer)
    kind = _kind(layer)
    if kind == "Dense":
        return _build_dense(layer, shape, ctx, out or ctx.width)
    if kind == "Conv":
        return _build_conv(layer, shape, ctx, out or ctx.width)
    if kind == "AvgPool":
        return _build_avg_pool(layer, shape, ctx)
    if kind in _SPATIAL_OPS:
        return _build_simple(kind, shape)
    if kind == "FanOut":
        num = _check_int(layer.num, "FanOut num", 1)
        return _FanOut(num), [_single(shape, "FanOut")] * num
    if kind == "FanInSum":
        return _build_fan_in_sum(shape)
    if kind == "Identity":
        return nn.Identity(), shape
    if kind == "Parallel":
        return _build_parallel(layer, shape, ctx)
    if kind == "Serial":
        children = _children(layer)
        if out is None:
            return _build_serial(children, shape, ctx)
        return _build_serial(children, shape, ctx, _readout_index(children), out)
    if kind in ("GlobalSelfAttention", "Aggregate"):
        raise NotImplementedError(f"{kind} has no finite PyTorch twin yet")
    try:
        activation = get_activation(layer)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"unknown layer {layer!r}: not a layer of sklearn_ntk.layers "
                        "nor an activation") from exc
    return _Activation(activation), _single(shape, f"activation {activation!r}")


def _build_serial(layers, shape, ctx, readout=None, out_features=None):
    modules = []
    for i, layer in enumerate(layers):
        try:
            module, shape = _build_one(layer, shape, ctx, out_features if i == readout else None)
        except (TypeError, ValueError, NotImplementedError) as exc:
            raise type(exc)(f"layer {i} ({_kind(_unwrap(layer))}): {exc}") from exc
        modules.append(module)
    return _Serial(modules), shape


# ---------------------------------------------------------------------------------------------
# public API
# ---------------------------------------------------------------------------------------------


class NTKNetwork(nn.Module):
    """Finite NTK-parameterised network built by :func:`from_layers` (see there).

    Attributes
    ----------
    input_shape : tuple of int
        Shape of one sample, channels last; inputs of shape ``(n, prod(input_shape))`` (the
        rows of ``X``) or ``(n,) + input_shape`` are accepted.
    width, out_features : int
        Output channels of every hidden ``Dense``/``Conv`` and of the readout.
    body : torch.nn.Module
        The layers, in the nesting of the layer list.
    """

    def __init__(self, body, input_shape, width, out_features):
        super().__init__()
        self.body = body
        self.input_shape = input_shape
        self.width = width
        self.out_features = out_features

    def forward(self, x):
        """Outputs of shape ``(n, out_features)``."""
        n = x.shape[0]
        if math.prod(x.shape[1:]) != math.prod(self.input_shape):
            raise ValueError(
                f"inputs of shape {tuple(x.shape)} do not hold samples of shape "
                f"{self.input_shape}"
            )
        return self.body(x.reshape((n,) + self.input_shape))

    def extra_repr(self):
        return (f"input_shape={self.input_shape}, width={self.width}, "
                f"out_features={self.out_features}")


def _has_weights(layer):
    kind = _kind(layer)
    if kind in _WEIGHT_LAYERS:
        return True
    return kind in ("Serial", "Parallel") and any(_has_weights(_unwrap(c)) for c in _children(layer))


def _readout_index(layers):
    """Position of the readout: the last Dense/Conv, or a serial block that ends with one."""
    for i in range(len(layers) - 1, -1, -1):
        layer = _unwrap(layers[i])
        if _kind(layer) in _WEIGHT_LAYERS or (_kind(layer) == "Serial" and _has_weights(layer)):
            return i
        if _has_weights(layer):
            break  # a parallel block after the last Dense/Conv: no single readout
    raise ValueError(
        "the network needs a Dense (or Conv) readout outside parallel branches, e.g. [..., "
        "GlobalAvgPool(), Dense()]"
    )


def _check_input_shape(input_shape):
    if isinstance(input_shape, numbers.Integral) and not isinstance(input_shape, bool):
        input_shape = (input_shape,)
    if not isinstance(input_shape, (tuple, list)) or not input_shape:
        raise TypeError(f"input_shape must be an int or a tuple of ints, got {input_shape!r}")
    return tuple(_check_int(v, "input_shape", 1) for v in input_shape)


def _make_generator(seed, generator):
    if generator is not None or seed is None:
        return generator
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed must be an int or None, got {seed!r}")
    return torch.Generator().manual_seed(int(seed))


def from_layers(layers, input_shape, width, *, weight_std=1.0, bias_std=0.1, out_features=1,
                seed=None, generator=None, dtype=None, device=None):
    r"""Finite PyTorch twin of a layer list, in the NTK parameterisation.

    The returned network's empirical NTK (:func:`sklearn_ntk.empirical_ntk`) and the covariance
    of its outputs over random initialisations converge to
    ``NetworkKernel(layers, input_shape, weight_std, bias_std)`` with ``kind="ntk"`` and
    ``kind="nngp"`` as ``width`` grows; the fluctuations shrink like ``width ** -0.5``.

    Parameters
    ----------
    layers : list or serial
        The network including its readout, in the vocabulary of :mod:`sklearn_ntk.layers`
        (activations as accepted by :class:`~sklearn_ntk.NTKKernel`; ``(name, layer)`` pairs
        are read as their layer).
    input_shape : int or tuple of int
        Shape of one sample, channels last, e.g. ``(8, 8, 1)`` for 8x8 grey images.
    width : int
        Output channels of every ``Dense`` and ``Conv`` except the readout.
    weight_std, bias_std : float, default=1.0, 0.1
        :math:`\sigma_w`, :math:`\sigma_b` of every ``Dense``/``Conv`` whose own ``weight_std`` /
        ``bias_std`` is ``None``.
    out_features : int, default=1
        Output channels of the readout: the last ``Dense`` or ``Conv`` outside parallel
        branches.
    seed : int, default=None
        Seed of the initialisation; ``None`` uses torch's global generator.  Ignored when
        ``generator`` is given.
    generator : torch.Generator, default=None
        Generator of the initial parameters (drawn in float64 on the CPU, layer by layer in
        the order of the layer list, then cast).
    dtype, device : optional
        Parameter dtype and device.

    Returns
    -------
    NTKNetwork
        Maps ``(n, prod(input_shape))`` inputs (the rows of ``X``) to ``(n, out_features)``.

    Raises
    ------
    ValueError
        For a network that cannot be built at a finite width (a window larger than its
        padded input, branches of different shapes at ``FanInSum``, an output that still has
        spatial axes), naming the layer.

    Examples
    --------
    >>> import torch
    >>> from sklearn_ntk import layers as nl
    >>> from sklearn_ntk.nn import from_layers
    >>> net = from_layers([nl.Conv((3, 3)), "relu", nl.GlobalAvgPool(), nl.Dense()],
    ...                   input_shape=(8, 8, 1), width=64, seed=0, dtype=torch.float64)
    >>> net(torch.zeros(5, 64, dtype=torch.float64)).shape
    torch.Size([5, 1])
    """
    input_shape = _check_input_shape(input_shape)
    width = _check_int(width, "width", 1)
    out_features = _check_int(out_features, "out_features", 1)
    ctx = _Context(width, _check_std(weight_std, "weight_std"),
                   _check_std(bias_std, "bias_std"), _make_generator(seed, generator), dtype,
                   device)
    top = _as_list(layers)
    body, shape = _build_serial(top, input_shape, ctx, _readout_index(top), out_features)
    if isinstance(shape, list) or shape != (out_features,):
        raise ValueError(
            f"the network's output has per-sample shape {shape}, expected ({out_features},): "
            "end it with Flatten or a global pooling and a Dense readout"
        )
    return NTKNetwork(body, input_shape, width, out_features)


def from_kernel(kernel, width, *, input_shape=None, **kwargs):
    """Finite PyTorch twin of the network behind a :class:`~sklearn_ntk.NetworkKernel`.

    Shorthand for ``from_layers(kernel.layers, kernel.input_shape, width,
    weight_std=kernel.weight_std, bias_std=kernel.bias_std, **kwargs)``.

    Parameters
    ----------
    kernel : NetworkKernel
        The kernel whose network to build.
    width : int
        Output channels of every hidden ``Dense``/``Conv``.
    input_shape : int or tuple of int, default=None
        Needed only when ``kernel.input_shape`` is ``None`` (then the number of features).
    **kwargs
        ``out_features``, ``seed``, ``generator``, ``dtype``, ``device`` of :func:`from_layers`.

    Returns
    -------
    NTKNetwork
    """
    shape = getattr(kernel, "input_shape", None)
    if shape is None:
        shape = input_shape
    if shape is None:
        raise ValueError("the kernel's input_shape is None: pass input_shape=n_features")
    return from_layers(kernel.layers, shape, width, weight_std=kernel.weight_std,
                       bias_std=kernel.bias_std, **kwargs)
