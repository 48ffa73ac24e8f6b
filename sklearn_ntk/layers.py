"""Layers of infinitely wide networks, for :class:`~sklearn_ntk.NetworkKernel`.

The vocabulary and conventions are those of neural-tangents' ``stax`` (without widths: the
infinite-width kernel does not depend on them). Inputs are channels-last: one sample is an array of
shape ``input_shape = spatial + (channels,)``, e.g. ``(H, W, C)`` images or ``(T, C)`` sequences.

A network is a list of layers read as :func:`serial`. Besides the layer objects below, a list may
contain any activation accepted by :class:`~sklearn_ntk.NTKKernel` (``"relu"``,
``LeakyReLU(0.1)``, a callable, ...) and ``(name, layer)`` pairs that name a layer, so that its
parameters can be searched over like the steps of a :class:`~sklearn.pipeline.Pipeline`
(``kernel__layers__conv1__filter_shape``).

Layers are small parameter objects: they compare equal by type and parameters, clone
(``sklearn.base.clone``), pickle and print as they are written. See :ref:`architectures` for each
layer's kernel rule and its cost.
"""

from __future__ import annotations

from inspect import signature

__all__ = [
    "Layer",
    "Dense",
    "Conv",
    "AvgPool",
    "GlobalAvgPool",
    "GlobalSumPool",
    "Flatten",
    "LayerNorm",
    "Identity",
    "FanOut",
    "FanInSum",
    "Serial",
    "Parallel",
    "serial",
    "parallel",
    "Residual",
]


class Layer:
    """Base class of layers: parameters are the constructor's arguments, stored unchanged."""

    @classmethod
    def _param_names(cls):
        return [p for p in signature(cls.__init__).parameters if p != "self"]

    def get_params(self, deep=True):
        """Parameters of the layer (for ``sklearn.base.clone`` and grid searches).

        With ``deep=True`` the parameters of named sub-layers of composite layers are included
        as ``layers__<name>__<parameter>``.
        """
        params = {name: getattr(self, name) for name in self._param_names()}
        if deep:
            for key in self._param_names():
                params.update(nested_params(key, params[key]))
        return params

    def set_params(self, **params):
        """Set parameters; ``<list>__<name>__<parameter>`` reaches a named sub-layer."""
        for key, value in params.items():
            head = key.split("__", 1)[0]
            if head not in self._param_names():
                raise ValueError(f"Invalid parameter {key!r} for layer {type(self).__name__}")
            if "__" in key:
                setattr(self, head, set_nested(getattr(self, head), key.split("__", 1)[1], value))
            else:
                setattr(self, key, value)
        return self

    def __eq__(self, other):
        if type(self) is not type(other):
            return NotImplemented
        return _params_equal(self.get_params(deep=False), other.get_params(deep=False))

    def __ne__(self, other):
        result = self.__eq__(other)
        return result if result is NotImplemented else not result

    def __hash__(self):
        return hash((type(self).__name__, repr(self)))

    def __repr__(self):
        defaults = {
            name: p.default for name, p in signature(type(self).__init__).parameters.items()
        }
        args = [
            f"{k}={v!r}" for k, v in self.get_params(deep=False).items() if not _same(v, defaults[k])
        ]
        return f"{type(self).__name__}({', '.join(args)})"


def _same(a, b):
    try:
        return type(a) is type(b) and bool(a == b)
    except (TypeError, ValueError):
        return False


def _params_equal(a, b):
    if a.keys() != b.keys():
        return False
    return all(_same(a[k], b[k]) or a[k] == b[k] for k in a)


def nested_params(key, layers):
    """``{key__name: layer, key__name__param: value}`` for the named entries of a layer list."""
    out = {}
    if not isinstance(layers, (list, tuple)):
        return out
    for entry in layers:
        if _is_named(entry):
            name, layer = entry
            out[f"{key}__{name}"] = layer
            if hasattr(layer, "get_params"):
                for sub, value in layer.get_params(deep=True).items():
                    out[f"{key}__{name}__{sub}"] = value
    return out


def set_nested(layers, path, value):
    """Return a copy of the list ``layers`` with ``<name>[__<param>]`` set to ``value``."""
    name, _, rest = path.partition("__")
    if not isinstance(layers, (list, tuple)):
        raise ValueError(f"Cannot set {path!r}: the layers are not a list of named layers")
    new = list(layers)
    for i, entry in enumerate(new):
        if _is_named(entry) and entry[0] == name:
            if rest:
                entry[1].set_params(**{rest: value})
            else:
                new[i] = (name, value)
            return new
    names = [e[0] for e in new if _is_named(e)]
    raise ValueError(f"No layer named {name!r}; the named layers are {names}")


def _is_named(entry):
    return isinstance(entry, tuple) and len(entry) == 2 and isinstance(entry[0], str)


# --------------------------------------------------------------------------------------------------
# layers with weights
# --------------------------------------------------------------------------------------------------
class Dense(Layer):
    r"""Fully-connected layer acting on the channel axis (at every position of a spatial input).

    :math:`z = \frac{\sigma_w}{\sqrt{n_{in}}} W h + \sigma_b b` (NTK parameterisation).

    Parameters
    ----------
    weight_std, bias_std : float or None, default=None
        :math:`\sigma_w`, :math:`\sigma_b`; ``None`` inherits the kernel's hyperparameters
        (``NetworkKernel(weight_std=..., bias_std=...)``), a number fixes them for this layer.
    """

    def __init__(self, weight_std=None, bias_std=None):
        self.weight_std = weight_std
        self.bias_std = bias_std


class Conv(Layer):
    """Convolution over the spatial axes (1-D, 2-D or 3-D filters), NTK parameterisation.

    Parameters
    ----------
    filter_shape : tuple of int
        One entry per spatial axis of the input.
    strides : tuple of int or None, default=None
        ``None`` means 1 along every axis.
    padding : {"same", "valid", "circular"}, default="same"
        ``"same"`` pads with zeros (and still divides by the full filter size at the edges),
        ``"circular"`` wraps around.
    weight_std, bias_std : float or None, default=None
        As for :class:`Dense`.
    """

    def __init__(self, filter_shape, strides=None, padding="same", weight_std=None, bias_std=None):
        self.filter_shape = filter_shape
        self.strides = strides
        self.padding = padding
        self.weight_std = weight_std
        self.bias_std = bias_std


# --------------------------------------------------------------------------------------------------
# layers without weights
# --------------------------------------------------------------------------------------------------
class AvgPool(Layer):
    """Average pooling over windows of the spatial axes (divides by the full window size).

    Parameters
    ----------
    window_shape : tuple of int
    strides : tuple of int or None, default=None
        ``None`` means 1 along every axis (as in neural-tangents).
    padding : {"valid", "same", "circular"}, default="valid"
    """

    def __init__(self, window_shape, strides=None, padding="valid"):
        self.window_shape = window_shape
        self.strides = strides
        self.padding = padding


class GlobalAvgPool(Layer):
    """Average over all spatial positions (the output has no spatial axes)."""

    def __init__(self):
        pass


class GlobalSumPool(Layer):
    """Sum over all spatial positions (the output has no spatial axes)."""

    def __init__(self):
        pass


class Flatten(Layer):
    """Flatten the spatial and channel axes into one feature axis."""

    def __init__(self):
        pass


class LayerNorm(Layer):
    """Normalise each position over the channel axis (neural-tangents' ``LayerNorm()``)."""

    def __init__(self):
        pass


class Identity(Layer):
    """The identity (the skip branch of a residual block)."""

    def __init__(self):
        pass


class FanOut(Layer):
    """Copy the input into ``num`` branches (for :func:`parallel`).

    Parameters
    ----------
    num : int
    """

    def __init__(self, num):
        self.num = num


class FanInSum(Layer):
    """Sum the branches (of independent weights) into one."""

    def __init__(self):
        pass


class Serial(Layer):
    """Layers applied one after the other; build it with :func:`serial`.

    Parameters
    ----------
    layers : list
        Layers, activations and ``(name, layer)`` pairs.
    """

    def __init__(self, layers):
        self.layers = layers


class Parallel(Layer):
    """Branch ``i`` applied to input ``i``; build it with :func:`parallel`.

    Parameters
    ----------
    branches : list
        One layer (or list of layers) per branch; ``(name, layer)`` pairs name a branch.
    """

    def __init__(self, branches):
        self.branches = branches


def serial(*layers):
    """Compose layers: ``serial(a, b, c)`` applies ``a``, then ``b``, then ``c``.

    Returns
    -------
    Serial
    """
    return Serial(list(layers))


def parallel(*branches):
    """Apply branch ``i`` to the ``i``-th input (after :class:`FanOut`).

    Returns
    -------
    Parallel
    """
    return Parallel(list(branches))


def Residual(*layers):  # noqa: N802 (a layer constructor, named like one)
    """A residual block ``x -> x + serial(*layers)(x)``.

    Shorthand for ``serial(FanOut(2), parallel(serial(*layers), Identity()), FanInSum())``.

    Returns
    -------
    Serial
    """
    return serial(FanOut(2), parallel(serial(*layers), Identity()), FanInSum())
