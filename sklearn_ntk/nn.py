r"""NTK-parameterised PyTorch networks (infinite-width limit: :class:`~sklearn_ntk.NTKKernel`).

Every dense layer computes (DESIGN §1)

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

__all__ = ["NTKLinear", "NTKMLP"]


def _check_int(value, name, minimum):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def _check_std(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be finite and >= 0, got {value}")
    return float(value)


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
        with torch.no_grad():
            for p in (self.weight, self.bias):
                draw = torch.randn(p.shape, generator=generator, dtype=torch.float64)
                p.copy_(draw.to(dtype=p.dtype, device=p.device))

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


class NTKMLP(nn.Module):
    r"""Fully-connected network in the NTK parameterisation (DESIGN §1).

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
