"""Activation functions known to :class:`~sklearn_ntk.NTKKernel` and :class:`~sklearn_ntk.nn.NTKMLP`.

Every activation :math:`\\phi` enters the kernel recursion only through two Gaussian expectations of
a centred pair :math:`(u, v)` with covariance :math:`\\begin{pmatrix} a & c \\\\ c & b\\end{pmatrix}`:

.. math::

    \\mathcal{T}(a, b, c) = \\mathbb{E}[\\phi(u)\\phi(v)], \\qquad
    \\dot{\\mathcal{T}}(a, b, c) = \\mathbb{E}[\\phi'(u)\\phi'(v)].

Activations with a closed form for both (ReLU and its relatives, erf, GELU, sin, identity, sign) carry an
integer ``_code`` that selects a compiled scalar formula in :mod:`sklearn_ntk.backends.fused`. All others
(tanh, sigmoid, SiLU, user callables) are integrated numerically; they provide :meth:`derivatives`.

Activation objects are small parameter holders: they compare equal by type and parameters, clone
(``sklearn.base.clone``), pickle, and print as ``LeakyReLU(negative_slope=0.1)``.
"""

from __future__ import annotations

import inspect
import math
import numbers

import numpy as np
from scipy import special

__all__ = [
    "Activation",
    "ReLU",
    "LeakyReLU",
    "ABReLU",
    "Abs",
    "Erf",
    "GELU",
    "Sin",
    "Identity",
    "Sign",
    "Tanh",
    "Sigmoid",
    "SiLU",
    "Custom",
    "get_activation",
    "ACTIVATION_NAMES",
]

# integer codes of the closed forms implemented in backends.fused._moments
CODE_AB_RELU = 0
CODE_IDENTITY = 1
CODE_ERF = 2
CODE_SIGN = 3
CODE_SIN = 4
CODE_GELU = 5

_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def _check_real(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
        raise TypeError(f"{name} must be a finite real number, got {value!r}")
    return float(value)


def _init_param_names(cls):
    """Parameter names of ``cls.__init__`` (keyword-able, no ``*args``/``**kwargs``)."""
    init = cls.__init__
    if init is object.__init__:
        return ()
    names = []
    for param in inspect.signature(init).parameters.values():
        if param.name == "self":
            continue
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise TypeError(
                f"{cls.__name__}.__init__ must not take *args or **kwargs: activations list their "
                "parameters explicitly (like scikit-learn estimators)"
            )
        names.append(param.name)
    return tuple(names)


class Activation:
    """Base class of activations.

    Subclasses define ``name``, :meth:`numpy_fn`, :meth:`torch_fn` and either a closed-form code
    (``_code`` and :meth:`_code_params`) or, for numerical integration, preferably
    :meth:`derivatives` (without it, central differences of :meth:`numpy_fn` are used).
    Parameters are declared as in scikit-learn: explicit arguments of ``__init__``, each stored
    unchanged under its own name; ``get_params``, ``clone``, ``pickle``, ``==`` and ``repr`` then
    see them with no further code.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.base import clone
    >>> from sklearn_ntk.activations import Activation
    >>> class Softplus(Activation):
    ...     name = "softplus"
    ...
    ...     def __init__(self, beta=1.0):
    ...         self.beta = beta
    ...
    ...     def numpy_fn(self, x):
    ...         return np.logaddexp(0.0, self.beta * x) / self.beta
    ...
    ...     def derivatives(self, x, order=1):
    ...         s = 1.0 / (1.0 + np.exp(-self.beta * x))
    ...         d2 = self.beta * s * (1.0 - s)
    ...         out = [self.numpy_fn(x), s, d2, self.beta * d2 * (1.0 - 2.0 * s)]
    ...         return out[: order + 1]
    >>> clone(Softplus(beta=2.0))
    Softplus(beta=2.0)
    """

    name = "activation"
    _code = None  # closed form (values and partial derivatives) in the compiled recursion

    # -- parameters ------------------------------------------------------------------------
    def _param_names(self):
        """Names of the constructor's parameters, read from the signature of ``__init__``.

        As for scikit-learn estimators, every constructor argument must be stored unchanged under
        its own name (``self.beta = beta``); that is all a subclass needs for ``clone``, ``pickle``,
        ``==`` and ``repr`` to see it.
        """
        return _init_param_names(type(self))

    def get_params(self, deep=True):
        """Parameters of the activation (for ``sklearn.base.clone``)."""
        out = {}
        for name in self._param_names():
            if name not in vars(self):
                raise TypeError(
                    f"{type(self).__name__}.__init__ takes a parameter {name!r} but does not store "
                    f"it as self.{name}; store every constructor argument unchanged under its own "
                    "name so that clone and pickle keep it"
                )
            out[name] = getattr(self, name)
        return out

    def set_params(self, **params):
        """Set parameters; unknown names raise ``ValueError``."""
        for key, value in params.items():
            if key not in self._param_names():
                raise ValueError(f"Invalid parameter {key!r} for activation {self!r}")
            setattr(self, key, value)
        return self

    def __eq__(self, other):
        if type(self) is not type(other):
            return NotImplemented
        return self.get_params() == other.get_params()

    def __ne__(self, other):
        result = self.__eq__(other)
        return result if result is NotImplemented else not result

    def __hash__(self):
        return hash((type(self).__name__, tuple(sorted(self.get_params().items(), key=str))))

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    # -- evaluation --------------------------------------------------------------------------
    def numpy_fn(self, x):
        """Evaluate :math:`\\phi` on a NumPy array."""
        raise NotImplementedError

    def torch_fn(self, x):
        """Evaluate :math:`\\phi` on a ``torch.Tensor`` (differentiable)."""
        raise NotImplementedError

    def __call__(self, x):
        if type(x).__module__.startswith("torch"):
            return self.torch_fn(x)
        return self.numpy_fn(np.asarray(x, dtype=float))

    def derivatives(self, x, order=1):
        """Return ``[phi(x), phi'(x), ..., phi^{(order)}(x)]`` (``order <= 3``) as NumPy arrays.

        Used by the numerical Gaussian expectations (activations without a closed form) and by
        the tests of the closed forms. By default the derivatives are fourth-order central
        differences of :meth:`numpy_fn` (as for :class:`Custom`); exact ones are more accurate.
        """
        if type(self).numpy_fn is Activation.numpy_fn:
            raise TypeError(
                f"{type(self).__name__} defines neither numpy_fn nor derivatives: an activation "
                "without a closed form needs numpy_fn (and preferably derivatives)"
            )
        return _derivatives_of(self.numpy_fn, None, x, order)

    def _code_params(self):
        return (0.0, 0.0)

    def _validate(self):
        """Check the parameters; called by the kernel before use."""
        return self


class ABReLU(Activation):
    """:math:`\\phi(x) = a\\,\\min(x, 0) + b\\,\\max(x, 0)` (arc-cosine kernel family).

    ``ABReLU(0, 1)`` is ReLU, ``ABReLU(s, 1)`` leaky ReLU, ``ABReLU(-1, 1)`` abs and ``ABReLU(1, 1)``
    the identity. With :math:`\\theta` the angle between :math:`u` and :math:`v`
    (:math:`\\cos\\theta = c/\\sqrt{ab}`; Cho & Saul 2009):

    .. math::

        \\dot{\\mathcal{T}} = \\frac{(a^2+b^2)\\pi - (a-b)^2\\theta}{2\\pi}, \\qquad
        \\mathcal{T} = \\frac{(a-b)^2}{2\\pi}\\sqrt{ab}\\,\\sin\\theta + \\dot{\\mathcal{T}}\\, c .
    """

    name = "ab_relu"
    _code = CODE_AB_RELU

    def __init__(self, a=0.0, b=1.0):
        self.a = a
        self.b = b

    def _validate(self):
        for name, value in self.get_params().items():  # a, b; negative_slope; none for ReLU/Abs
            _check_real(value, name)
        return self

    def _slopes(self):
        return float(self.a), float(self.b)

    def _code_params(self):
        return self._slopes()

    def numpy_fn(self, x):
        lo, hi = self._slopes()
        return lo * np.minimum(x, 0.0) + hi * np.maximum(x, 0.0)

    def torch_fn(self, x):
        import torch

        lo, hi = self._slopes()
        return hi * torch.relu(x) - lo * torch.relu(-x)

    def derivatives(self, x, order=1):
        lo, hi = self._slopes()
        out = [self.numpy_fn(x), np.where(x > 0, hi, np.where(x < 0, lo, 0.0))]
        out += [np.zeros_like(x)] * (order - 1)
        return out[: order + 1]


class ReLU(ABReLU):
    """:math:`\\phi(x) = \\max(x, 0)`."""

    name = "relu"

    def __init__(self):
        pass

    def _slopes(self):
        return 0.0, 1.0


class LeakyReLU(ABReLU):
    """:math:`\\phi(x) = \\max(x, 0) + s\\,\\min(x, 0)` with ``negative_slope`` :math:`s`."""

    name = "leaky_relu"

    def __init__(self, negative_slope=0.01):
        self.negative_slope = negative_slope

    def _slopes(self):
        return float(self.negative_slope), 1.0


class Abs(ABReLU):
    """:math:`\\phi(x) = |x|`."""

    name = "abs"

    def __init__(self):
        pass

    def _slopes(self):
        return -1.0, 1.0


class Identity(Activation):
    """:math:`\\phi(x) = x` (the network is linear; :math:`\\mathcal{T} = c`, :math:`\\dot{\\mathcal{T}} = 1`)."""

    name = "identity"
    _code = CODE_IDENTITY

    def numpy_fn(self, x):
        return np.array(x, dtype=float, copy=True)

    def torch_fn(self, x):
        return x

    def derivatives(self, x, order=1):
        return [np.array(x, dtype=float), np.ones_like(x), np.zeros_like(x), np.zeros_like(x)][
            : order + 1
        ]


class Erf(Activation):
    """:math:`\\phi(x) = \\operatorname{erf}(x)` (Williams 1997).

    .. math::

        \\mathcal{T} = \\frac{2}{\\pi}\\arcsin\\frac{2c}{\\sqrt{(1+2a)(1+2b)}}, \\qquad
        \\dot{\\mathcal{T}} = \\frac{4}{\\pi}\\frac{1}{\\sqrt{(1+2a)(1+2b) - 4c^2}} .
    """

    name = "erf"
    _code = CODE_ERF

    def numpy_fn(self, x):
        return special.erf(x)

    def torch_fn(self, x):
        import torch

        return torch.erf(x)

    def derivatives(self, x, order=1):
        g = 2.0 / math.sqrt(math.pi) * np.exp(-x * x)
        return [special.erf(x), g, -2.0 * x * g, (4.0 * x * x - 2.0) * g][: order + 1]


class GELU(Activation):
    """:math:`\\phi(x) = x\\,\\Phi(x)` with :math:`\\Phi` the standard normal CDF (exact, not tanh-approximated).

    With :math:`A = 1 + a`, :math:`B = 1 + b`, :math:`\\Delta = AB - c^2`:

    .. math::

        \\mathcal{T} = \\frac{c}{4} + \\frac{c}{2\\pi}\\arcsin\\frac{c}{\\sqrt{AB}}
            + \\frac{ab + c^2 (1 - ab)/(AB)}{2\\pi\\sqrt{\\Delta}},

    and :math:`\\dot{\\mathcal{T}} = \\partial\\mathcal{T}/\\partial c` (Price's theorem).
    """

    name = "gelu"
    _code = CODE_GELU

    def numpy_fn(self, x):
        return x * special.ndtr(x)

    def torch_fn(self, x):
        import torch

        return torch.nn.functional.gelu(x)

    def derivatives(self, x, order=1):
        pdf = _INV_SQRT_2PI * np.exp(-0.5 * x * x)
        cdf = special.ndtr(x)
        out = [x * cdf, cdf + x * pdf, pdf * (2.0 - x * x), x * pdf * (x * x - 4.0)]
        return out[: order + 1]


class Sin(Activation):
    """:math:`\\phi(x) = \\sin(x)`: :math:`\\mathcal{T} = e^{-(a+b)/2}\\sinh c`,
    :math:`\\dot{\\mathcal{T}} = e^{-(a+b)/2}\\cosh c`."""

    name = "sin"
    _code = CODE_SIN

    def numpy_fn(self, x):
        return np.sin(x)

    def torch_fn(self, x):
        import torch

        return torch.sin(x)

    def derivatives(self, x, order=1):
        return [np.sin(x), np.cos(x), -np.sin(x), -np.cos(x)][: order + 1]


class Sign(Activation):
    """:math:`\\phi(x) = \\operatorname{sign}(x)`: :math:`\\mathcal{T} = \\frac{2}{\\pi}\\arcsin\\cos\\theta`,
    :math:`\\dot{\\mathcal{T}} = 0` (the derivative vanishes almost everywhere)."""

    name = "sign"
    _code = CODE_SIGN

    def numpy_fn(self, x):
        return np.sign(x)

    def torch_fn(self, x):
        import torch

        return torch.sign(x)


class Tanh(Activation):
    """:math:`\\phi(x) = \\tanh(x)` (numerical Gaussian expectations)."""

    name = "tanh"

    def numpy_fn(self, x):
        return np.tanh(x)

    def torch_fn(self, x):
        import torch

        return torch.tanh(x)

    def derivatives(self, x, order=1):
        t = np.tanh(x)
        if order < 1:  # only what is asked for: the kernel's tables evaluate this at many nodes
            return [t]
        d1 = 1.0 - t * t
        if order < 2:
            return [t, d1]
        out = [t, d1, -2.0 * t * d1, -2.0 * d1 * (1.0 - 3.0 * t * t)]
        return out[: order + 1]


class Sigmoid(Activation):
    """:math:`\\phi(x) = 1/(1+e^{-x})` (numerical Gaussian expectations)."""

    name = "sigmoid"

    def numpy_fn(self, x):
        return special.expit(x)

    def torch_fn(self, x):
        import torch

        return torch.sigmoid(x)

    def derivatives(self, x, order=1):
        s = special.expit(x)
        if order < 1:
            return [s]
        d1 = s * (1.0 - s)
        if order < 2:
            return [s, d1]
        out = [s, d1, d1 * (1.0 - 2.0 * s), d1 * (1.0 - 6.0 * s + 6.0 * s * s)]
        return out[: order + 1]


class SiLU(Activation):
    """:math:`\\phi(x) = x/(1+e^{-x})` (a.k.a. swish; numerical Gaussian expectations)."""

    name = "silu"

    def numpy_fn(self, x):
        return x * special.expit(x)

    def torch_fn(self, x):
        import torch

        return torch.nn.functional.silu(x)

    def derivatives(self, x, order=1):
        s = special.expit(x)
        if order < 1:
            return [x * s]
        d1 = s * (1.0 - s)
        if order < 2:
            return [x * s, s + x * d1]
        d2 = d1 * (1.0 - 2.0 * s)
        d3 = d1 * (1.0 - 6.0 * s + 6.0 * s * s)
        out = [x * s, s + x * d1, 2.0 * d1 + x * d2, 3.0 * d2 + x * d3]
        return out[: order + 1]


def _central_difference(fn, x, order):
    """Fourth-order central differences of a scalar function (activations without derivatives)."""
    scale = np.maximum(1.0, np.abs(x))
    if order == 1:
        h = 1e-3 * scale
        return (-fn(x + 2 * h) + 8 * fn(x + h) - 8 * fn(x - h) + fn(x - 2 * h)) / (12 * h)
    if order == 2:
        h = 1e-2 * scale
        return (-fn(x + 2 * h) + 16 * fn(x + h) - 30 * fn(x) + 16 * fn(x - h) - fn(x - 2 * h)) / (
            12 * h * h
        )
    h = 2e-2 * scale
    return (
        -fn(x + 3 * h)
        + 8 * fn(x + 2 * h)
        - 13 * fn(x + h)
        + 13 * fn(x - h)
        - 8 * fn(x - 2 * h)
        + fn(x - 3 * h)
    ) / (8 * h**3)


def _derivatives_of(f, derivative, x, order):
    """``[f, f', ..., f^(order)]`` at ``x``: ``derivative`` (if given) and central differences."""
    out = [f(x)]
    if order >= 1:
        if derivative is not None:
            out.append(np.asarray(derivative(x), dtype=float))
        else:
            out.append(_central_difference(f, x, 1))
    if order >= 2:
        if derivative is not None:
            d = lambda z: np.asarray(derivative(z), dtype=float)  # noqa: E731
            out.append(_central_difference(d, x, 1))
            out.append(_central_difference(d, x, 2))
        else:
            out.append(_central_difference(f, x, 2))
            out.append(_central_difference(f, x, 3))
    return out[: order + 1]


class Custom(Activation):
    """A user-supplied activation, integrated numerically.

    Parameters
    ----------
    fn : callable
        Elementwise function. For the kernel it receives NumPy arrays; for
        :class:`~sklearn_ntk.nn.NTKMLP` it receives ``torch.Tensor`` objects, so write it with
        operations both support (or pass a ``torch_fn``).
    derivative : callable, optional
        :math:`\\phi'`. If omitted, it (and the higher derivatives needed for hyperparameter
        gradients) are obtained by fourth-order central differences of ``fn``.
    torch_fn : callable, optional
        The same function written for tensors; defaults to ``fn``.
    name : str, optional
        Label used in ``repr`` and plots.

    Notes
    -----
    The Gaussian expectations use a Hermite (Mehler) series per pair of inputs, with coefficients
    from composite Gauss-Legendre rules graded towards the activation's transition at ``x = 0``;
    they are accurate to ~1e-10 for functions smooth on the real line (tanh, sigmoid, softplus,
    ...) at any input scale. A function with kinks (ReLU-like) converges only algebraically, and
    one that is not finite somewhere (``np.sqrt``, ``np.log``) is refused with a ``ValueError``.
    Plain module-level functions pickle; lambdas do not.
    """

    name = "custom"

    def __init__(self, fn, derivative=None, torch_fn=None, name=None):
        self.fn = fn
        self.derivative = derivative
        self.torch_fn_ = torch_fn
        self.name = name if name is not None else getattr(fn, "__name__", "custom")

    def _param_names(self):
        return ("fn", "derivative", "torch_fn_", "name")

    def get_params(self, deep=True):
        return {
            "fn": self.fn,
            "derivative": self.derivative,
            "torch_fn": self.torch_fn_,
            "name": self.name,
        }

    def set_params(self, **params):
        if "torch_fn" in params:
            params["torch_fn_"] = params.pop("torch_fn")
        return super().set_params(**params)

    def _validate(self):
        if not callable(self.fn):
            raise TypeError(f"Custom activation needs a callable, got {self.fn!r}")
        if self.derivative is not None and not callable(self.derivative):
            raise TypeError(f"derivative must be callable, got {self.derivative!r}")
        return self

    def numpy_fn(self, x):
        return np.asarray(self.fn(x), dtype=float)

    def torch_fn(self, x):
        fn = self.torch_fn_ if self.torch_fn_ is not None else self.fn
        return fn(x)

    def derivatives(self, x, order=1):
        return _derivatives_of(self.numpy_fn, self.derivative, x, order)


_BY_NAME = {
    "relu": ReLU,
    "leaky_relu": LeakyReLU,
    "abs": Abs,
    "erf": Erf,
    "gelu": GELU,
    "sin": Sin,
    "identity": Identity,
    "linear": Identity,
    "sign": Sign,
    "tanh": Tanh,
    "sigmoid": Sigmoid,
    "silu": SiLU,
    "swish": SiLU,
}

#: Activation names accepted as strings.
ACTIVATION_NAMES = tuple(sorted(_BY_NAME))


def get_activation(spec):
    """Resolve an activation specification into an :class:`Activation` object.

    Parameters
    ----------
    spec : str, Activation or callable
        A name from :data:`ACTIVATION_NAMES` (case-insensitive), an :class:`Activation`
        instance (returned as is after validation), or a plain callable (wrapped in
        :class:`Custom`).

    Returns
    -------
    Activation
    """
    if isinstance(spec, Activation):
        return spec._validate()
    if isinstance(spec, str):
        key = spec.strip().lower()
        if key not in _BY_NAME:
            raise ValueError(
                f"Unknown activation {spec!r}; expected one of {', '.join(ACTIVATION_NAMES)}, "
                "an Activation instance or a callable."
            )
        return _BY_NAME[key]()
    if callable(spec):
        return Custom(spec)._validate()
    raise TypeError(
        f"activation must be a string, an Activation instance or a callable, got {type(spec).__name__}"
    )
