r"""NTK-parameterised PyTorch networks (infinite-width limit: :class:`~sklearn_ntk.NTKKernel`).

Every dense layer computes (the user guide, :ref:`network`)

.. math::

    z = \frac{\sigma_w}{\sqrt{n_\mathrm{in}}} W h + \sigma_b b,
    \qquad W_{ij}, b_i \sim \mathcal{N}(0, 1),

so that, at initialisation, the network's output distribution converges to the NNGP
:math:`\mathcal{GP}(0, \Sigma^{L+1})` and its empirical NTK to :math:`\Theta^{L+1}` of
``NTKKernel(depth, activation, weight_std, bias_std)`` as the width grows (Jacot et al. 2018).
"""

from __future__ import annotations

import math
import numbers

from .activations import get_activation

_INSTALL_MSG = (
    "sklearn_ntk.nn needs PyTorch; install it with `pip install \"sklearn-ntk[torch]\"`."
)

try:
    import torch
    import torch.nn.functional as F
    from torch import nn
except ImportError as exc:  # pragma: no cover - exercised only without torch
    raise ImportError(_INSTALL_MSG) from exc

__all__ = ["NTKConv", "NTKLinear", "NTKMLP", "NTKNetwork", "from_kernel", "from_layers"]  # noqa: F822

# the network twins of layer lists live in a module of their own (it builds on the classes here)
_ARCH_NAMES = ("NTKNetwork", "from_kernel", "from_layers")


def __getattr__(name):
    if name in _ARCH_NAMES:
        from . import _nn_arch

        return getattr(_nn_arch, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _check_int(value, name, minimum):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def _check_shape(value, name, ndim=None):
    """A tuple of positive ints (an int is a 1-tuple); ``ndim`` fixes its length."""
    items = (value,) if isinstance(value, numbers.Integral) else value
    try:
        items = tuple(items)
    except TypeError:
        raise TypeError(f"{name} must be an int or a tuple of ints, got {value!r}") from None
    if not 1 <= len(items) <= 3 or (ndim is not None and len(items) != ndim):
        expected = f"{ndim}" if ndim is not None else "1, 2 or 3"
        raise ValueError(f"{name} must have {expected} entries, got {value!r}")
    return tuple(_check_int(v, name, 1) for v in items)


def _check_padding(value, allowed):
    key = value.lower() if isinstance(value, str) else value
    if key not in allowed:
        raise ValueError(f"padding must be one of {', '.join(map(repr, allowed))}, got {value!r}")
    return key


def _same_pads(size, window, stride):
    """(before, after) zero padding of one axis for "same" (neural-tangents' and lax's rule)."""
    out = -(-size // stride)
    total = max((out - 1) * stride + window - size, 0)
    return total // 2, total - total // 2


def _padded_spatial(input_shape, window, strides, padding):
    """Spatial sizes after the padding of a window op; refuses a window larger than the input."""
    spatial = tuple(input_shape[:-1])
    if len(spatial) != len(window):
        raise ValueError(
            f"a {len(window)}-D window {window} needs inputs with {len(window)} spatial axes "
            f"(channels last), got per-sample shape {tuple(input_shape)} with {len(spatial)}"
        )
    if padding != "valid":
        spatial = tuple(n + sum(_same_pads(n, k, s))
                        for n, k, s in zip(spatial, window, strides, strict=True))
    if any(k > n for n, k in zip(spatial, window, strict=True)):
        raise ValueError(
            f"window {window} is larger than the {padding!r}-padded input {spatial}; use "
            "padding='same' or a smaller window"
        )
    return spatial


def _pad_spatial(h, window, strides, padding):
    """Pad the spatial axes (1..-2) of a channels-last batch for a window op.

    ``"same"`` pads with zeros, ``"circular"`` wraps around (the amounts of ``"same"``),
    ``"valid"`` returns ``h`` unchanged.
    """
    if padding == "valid":
        return h
    for axis, (k, s) in enumerate(zip(window, strides, strict=True), start=1):
        size = h.shape[axis]
        lo, hi = _same_pads(size, k, s)
        if lo == hi == 0:
            continue
        if padding == "circular":
            index = torch.arange(-lo, size + hi, device=h.device) % size
            h = torch.index_select(h, axis, index)
        else:
            shape = list(h.shape)
            parts = []
            for amount in (lo, None, hi):
                if amount is None:
                    parts.append(h)
                elif amount:
                    shape[axis] = amount
                    parts.append(h.new_zeros(shape))
            h = torch.cat(parts, dim=axis)
    return h


def _check_std(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be finite and >= 0, got {value}")
    return float(value)


def _draw_standard_normal(params, generator):
    """Redraw every tensor in ``params`` i.i.d. N(0, 1) (drawn in float64 on the CPU, then cast)."""
    with torch.no_grad():
        for p in params:
            draw = torch.randn(p.shape, generator=generator, dtype=torch.float64)
            p.copy_(draw.to(dtype=p.dtype, device=p.device))


class NTKLinear(nn.Module):
    r"""Dense layer in the NTK parameterisation.

    .. math:: z = \frac{\sigma_w}{\sqrt{n_\mathrm{in}}}\, W h + \sigma_b\, b

    with trainable ``weight`` :math:`W` of shape ``(out_features, in_features)`` and ``bias``
    :math:`b` of shape ``(out_features,)``, both initialised i.i.d. :math:`\mathcal{N}(0, 1)`.

    Parameters
    ----------
    in_features, out_features : int
        Fan-in :math:`n_\mathrm{in}` and fan-out.
    weight_std, bias_std : float, default=1.0, 0.1
        :math:`\sigma_w` and :math:`\sigma_b`.
    generator : torch.Generator, default=None
        Source of the initial values (a CPU generator; values are drawn in float64 and cast).
    dtype, device : optional
        Dtype and device of the parameters.
    """

    def __init__(self, in_features, out_features, weight_std=1.0, bias_std=0.1, *,
                 generator=None, dtype=None, device=None):
        super().__init__()
        self.in_features = _check_int(in_features, "in_features", 1)
        self.out_features = _check_int(out_features, "out_features", 1)
        self.weight_std = _check_std(weight_std, "weight_std")
        self.bias_std = _check_std(bias_std, "bias_std")
        self.weight = nn.Parameter(torch.empty(out_features, in_features, dtype=dtype,
                                               device=device))
        self.bias = nn.Parameter(torch.empty(out_features, dtype=dtype, device=device))
        self.reset_parameters(generator)

    def reset_parameters(self, generator=None):
        """Redraw ``weight`` and ``bias`` i.i.d. N(0, 1) from ``generator``."""
        _draw_standard_normal((self.weight, self.bias), generator)

    def forward(self, h):
        # the 1/sqrt(fan_in) factor is applied to the input so that F.linear sees the raw weight
        # (empirical_ntk's fast path recognises it); the bias enters as sigma_b * b.
        scale = self.weight_std / math.sqrt(self.in_features)
        return F.linear(h * scale, self.weight, self.bias * self.bias_std)

    def extra_repr(self):
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"weight_std={self.weight_std}, bias_std={self.bias_std}"
        )


class NTKConv(nn.Module):
    r"""Convolution in the NTK parameterisation, on channels-last inputs.

    .. math:: z = \frac{\sigma_w}{\sqrt{n_\mathrm{in}}}\, W * h + \sigma_b\, b,
        \qquad n_\mathrm{in} = \prod(\text{filter\_shape}) \cdot C_\mathrm{in},

    the analogue of :class:`NTKLinear` (and of neural-tangents' ``stax.Conv``): ``weight``
    :math:`W` of shape ``(out_channels, in_channels, *filter_shape)`` and ``bias`` of shape
    ``(out_channels,)`` are i.i.d. :math:`\mathcal{N}(0, 1)`, and the fan-in counts the whole
    filter even where it overlaps the zero padding of ``"same"``.

    Parameters
    ----------
    in_channels, out_channels : int
        :math:`C_\mathrm{in}` and the number of output channels.
    filter_shape : tuple of int
        Spatial filter size; its length (1, 2 or 3) is the number of spatial axes.
    strides : tuple of int, default=None
        Stride along each spatial axis (``None``: 1).
    padding : {"same", "valid", "circular"}, default="same"
        ``"same"`` pads with zeros so that (at stride 1) the output has the input's size, the
        extra pixel of an even filter going after the image; ``"circular"`` pads the same
        amounts by wrapping the image around (a periodic convolution); ``"valid"`` does not pad.
    weight_std, bias_std : float, default=1.0, 0.1
        :math:`\sigma_w` and :math:`\sigma_b`.
    generator, dtype, device : optional
        As for :class:`NTKLinear`.

    Notes
    -----
    Inputs have shape ``(n, *spatial, in_channels)`` and outputs ``(n, *spatial_out,
    out_channels)``: channels last, as in :class:`~sklearn_ntk.NetworkKernel`.
    """

    def __init__(self, in_channels, out_channels, filter_shape, strides=None, padding="same",
                 weight_std=1.0, bias_std=0.1, *, generator=None, dtype=None, device=None):
        super().__init__()
        self.in_channels = _check_int(in_channels, "in_channels", 1)
        self.out_channels = _check_int(out_channels, "out_channels", 1)
        self.filter_shape = _check_shape(filter_shape, "filter_shape")
        ndim = len(self.filter_shape)
        self.strides = (1,) * ndim if strides is None else _check_shape(strides, "strides", ndim)
        self.padding = _check_padding(padding, ("same", "valid", "circular"))
        self.weight_std = _check_std(weight_std, "weight_std")
        self.bias_std = _check_std(bias_std, "bias_std")
        shape = (self.out_channels, self.in_channels) + self.filter_shape
        self.weight = nn.Parameter(torch.empty(shape, dtype=dtype, device=device))
        self.bias = nn.Parameter(torch.empty(self.out_channels, dtype=dtype, device=device))
        self.reset_parameters(generator)

    @property
    def fan_in(self):
        r""":math:`\prod(\text{filter\_shape}) \cdot C_\mathrm{in}`."""
        return math.prod(self.filter_shape) * self.in_channels

    def reset_parameters(self, generator=None):
        """Redraw ``weight`` and ``bias`` i.i.d. N(0, 1) from ``generator``."""
        _draw_standard_normal((self.weight, self.bias), generator)

    def output_shape(self, input_shape):
        """Per-sample output shape for a per-sample ``input_shape`` ``(*spatial, in_channels)``."""
        spatial = _padded_spatial(input_shape, self.filter_shape, self.strides, self.padding)
        out = tuple((p - k) // s + 1 for p, k, s in
                    zip(spatial, self.filter_shape, self.strides, strict=True))
        return out + (self.out_channels,)

    def forward(self, h):
        ndim = len(self.filter_shape)
        if h.dim() != ndim + 2 or h.shape[-1] != self.in_channels:
            raise ValueError(
                f"NTKConv expects inputs of shape (n, *{ndim} spatial axes, {self.in_channels}), "
                f"got {tuple(h.shape)}"
            )
        h = _pad_spatial(h, self.filter_shape, self.strides, self.padding)
        conv = (F.conv1d, F.conv2d, F.conv3d)[ndim - 1]
        # the 1/sqrt(fan_in) factor scales the input (as in NTKLinear), so the weight enters raw
        # and empirical_ntk's structured path recognises it
        scale = self.weight_std / math.sqrt(self.fan_in)
        z = conv(torch.movedim(h, -1, 1) * scale, self.weight, self.bias * self.bias_std,
                 stride=self.strides)
        return torch.movedim(z, 1, -1)

    def extra_repr(self):
        return (
            f"in_channels={self.in_channels}, out_channels={self.out_channels}, "
            f"filter_shape={self.filter_shape}, strides={self.strides}, "
            f"padding={self.padding!r}, weight_std={self.weight_std}, bias_std={self.bias_std}"
        )


class NTKMLP(nn.Module):
    r"""Fully-connected network in the NTK parameterisation (the user guide, :ref:`network`).

    .. math::

        x \in \mathbb{R}^d \;\to\; [\text{NTKLinear} \to \phi] \times L \;\to\;
        \text{NTKLinear (readout)}

    Its empirical NTK (:func:`sklearn_ntk.empirical_ntk`) converges to
    ``NTKKernel(depth, activation, weight_std, bias_std)`` as ``width`` grows, and the
    distribution of its outputs over random initialisations to the NNGP kernel
    (``kind="nngp"``); the fluctuations shrink like ``width ** -0.5``.

    Parameters
    ----------
    in_features : int
        Input dimension :math:`d`.
    depth : int
        Number of hidden layers :math:`L` (``0``: a single dense readout, a linear model).
    width : int
        Width of every hidden layer.
    activation : str, Activation or callable, default="relu"
        Anything :func:`sklearn_ntk.activations.get_activation` accepts; its ``torch_fn`` is used.
    weight_std, bias_std : float, default=1.0, 0.1
        :math:`\sigma_w`, :math:`\sigma_b` of every layer, the readout included.
    out_features : int, default=1
        Number of outputs :math:`k`.
    seed : int, default=None
        Seed of the initialisation (a fresh ``torch.Generator``); ``None`` uses torch's global
        generator.  Ignored when ``generator`` is given.
    generator : torch.Generator, default=None
        Generator to draw the initial parameters from.
    dtype : torch.dtype, default=None
        Parameter dtype (``None``: torch's default dtype).  Initial values are drawn in float64,
        so a given seed gives the same network in every dtype and on every device.
    device : torch.device or str, default=None
        Parameter device.

    Examples
    --------
    >>> import torch
    >>> from sklearn_ntk.nn import NTKMLP
    >>> net = NTKMLP(3, depth=2, width=512, activation="erf", seed=0, dtype=torch.float64)
    >>> net(torch.zeros(4, 3, dtype=torch.float64)).shape
    torch.Size([4, 1])
    """

    def __init__(self, in_features, depth, width, activation="relu", weight_std=1.0,
                 bias_std=0.1, out_features=1, *, seed=None, generator=None, dtype=None,
                 device=None):
        super().__init__()
        self.in_features = _check_int(in_features, "in_features", 1)
        self.depth = _check_int(depth, "depth", 0)
        self.width = _check_int(width, "width", 1)
        self.out_features = _check_int(out_features, "out_features", 1)
        self.weight_std = _check_std(weight_std, "weight_std")
        self.bias_std = _check_std(bias_std, "bias_std")
        self.activation = get_activation(activation)
        if generator is None and seed is not None:
            if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
                raise TypeError(f"seed must be an int or None, got {seed!r}")
            generator = torch.Generator().manual_seed(int(seed))
        self.seed = seed
        sizes = [self.in_features] + [self.width] * self.depth + [self.out_features]
        self.layers = nn.ModuleList(
            NTKLinear(a, b, self.weight_std, self.bias_std, generator=generator, dtype=dtype,
                      device=device)
            for a, b in zip(sizes[:-1], sizes[1:], strict=True)
        )

    def forward(self, x):
        """Outputs of shape ``(n, out_features)`` for inputs of shape ``(n, in_features)``."""
        h = x
        for layer in self.layers[:-1]:
            h = self.activation.torch_fn(layer(h))
        return self.layers[-1](h)

    def extra_repr(self):
        return (
            f"in_features={self.in_features}, depth={self.depth}, width={self.width}, "
            f"activation={self.activation!r}, weight_std={self.weight_std}, "
            f"bias_std={self.bias_std}, out_features={self.out_features}"
        )
