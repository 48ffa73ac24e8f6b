r"""Training-time dynamics of finite networks: gradient descent, linearisation, NTK drift.

All functions use the loss of the user guide (:ref:`dynamics`),

.. math::

    \mathcal{L}(f) = \frac{1}{2nk} \sum_{i=1}^{n} \sum_{a=1}^{k} (f_a(x_i) - y_{ia})^2
                   = \tfrac12\,\mathrm{mse}(f, y),

full-batch gradient descent :math:`\theta_{t+1} = \theta_t - \eta \nabla_\theta \mathcal{L}` and
time measured in steps.  The linearised network

.. math::

    f^{\mathrm{lin}}_t(x) = f_0(x) + J_0(x)\,(\theta_t - \theta_0)

trained by the same gradient descent follows exactly (Lee et al. 2019)

.. math::

    f^{\mathrm{lin}}_t(x) = f_0(x) + \Theta_0(x, X)\, \Theta_0^{-1}
        \bigl(I - (I - \tfrac{\eta}{nk}\Theta_0)^t\bigr) (y - f_0(X)),

with :math:`\Theta_0` the empirical NTK at initialisation (all :math:`nk \times nk` output
blocks).  Gradient descent tracks gradient flow when :math:`\eta\lambda_{\max}/(nk) \lesssim 0.3`;
for :math:`\eta\lambda_{\max}/(nk) > 2` the linearised model diverges while the network itself
may not (its kernel changes; the "catapult" regime), so the comparison is meaningful only below
that threshold (:func:`sklearn_ntk._dynamics.max_stable_learning_rate`).
"""

from __future__ import annotations

import copy
import numbers
import warnings

import numpy as np

from ._dynamics import KernelDynamics
from .torch_ntk import _resolve_dtype, _to_input, empirical_ntk

_INSTALL_MSG = (
    "sklearn_ntk.training needs PyTorch; install it with `pip install \"sklearn-ntk[torch]\"`."
)

try:
    import torch
    from torch import nn
    from torch.func import functional_call, jvp
except ImportError as exc:  # pragma: no cover - exercised only without torch
    raise ImportError(_INSTALL_MSG) from exc

__all__ = [
    "GDResult",
    "gradient_descent",
    "LinearizedModel",
    "linearized_trajectory",
    "relative_ntk_change",
    "ntk_drift",
]


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def _check_steps(steps):
    arr = np.atleast_1d(np.asarray(steps))
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"steps must be a non-empty 1-D list of step counts, got {steps!r}")
    if not np.issubdtype(arr.dtype, np.integer):
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise ValueError(f"steps must be non-negative integers, got {steps!r}")
        arr = arr.astype(np.int64)
    if np.any(arr < 0):
        raise ValueError(f"steps must be non-negative integers, got {steps!r}")
    if np.any(np.diff(arr) <= 0):
        raise ValueError(f"steps must be strictly increasing, got {steps!r}")
    return arr.astype(np.int64)


def _check_lr(learning_rate):
    if isinstance(learning_rate, bool) or not isinstance(learning_rate, numbers.Real):
        raise TypeError(f"learning_rate must be a positive real number, got {learning_rate!r}")
    if not np.isfinite(learning_rate) or learning_rate <= 0:
        raise ValueError(f"learning_rate must be a positive real number, got {learning_rate!r}")
    return float(learning_rate)


def _setup(model, dtype, device):
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    first = next(iter(model.parameters()), None)
    if first is None:
        raise ValueError("the model has no parameters")
    dtype = _resolve_dtype(dtype, first.dtype)
    device = torch.device(device) if device is not None else first.device
    return dtype, device


def _targets(y, n, dtype, device):
    t = _to_input(y, "y", dtype, device)
    if t.shape[0] != n:
        raise ValueError(f"y has {t.shape[0]} rows but X has {n} samples")
    if not t.is_floating_point():
        t = t.to(dtype)
    return t.reshape(n, -1)


def _outputs(model, x):
    out = model(x)
    return out.reshape(out.shape[0], -1)


class GDResult:
    """Record of a training run (returned by :func:`gradient_descent`).

    Attributes
    ----------
    steps : ndarray of shape (T,)
        Steps at which the state was recorded (0 = initialisation).
    train_predictions : ndarray of shape (T, n, k)
    test_predictions : ndarray of shape (T, m, k) or None
    train_loss : ndarray of shape (T,)
        :math:`\\frac{1}{2nk}\\lVert f_t(X) - y\\rVert^2` at each recorded step.
    model : torch.nn.Module
        The trained copy of the model (the original is untouched).
    """

    def __init__(self, steps, train_predictions, test_predictions, train_loss, model):
        self.steps = steps
        self.train_predictions = train_predictions
        self.test_predictions = test_predictions
        self.train_loss = train_loss
        self.model = model

    def __repr__(self):
        return (
            f"GDResult(steps={self.steps.tolist()}, final train_loss="
            f"{self.train_loss[-1]:.4g})"
        )


# ---------------------------------------------------------------------------------------------
# gradient descent
# ---------------------------------------------------------------------------------------------


def gradient_descent(model, X, y, *, learning_rate, steps, X_test=None, dtype=None, device=None,
                     callback=None):
    r"""Full-batch gradient descent on :math:`\tfrac12\,\mathrm{mse}` (the loss of the user guide, :ref:`dynamics`).

    .. math:: \theta_{t+1} = \theta_t - \eta \nabla_\theta \frac{1}{2nk}\lVert f_t(X) - y\rVert^2

    A deep copy of ``model`` is trained (the original is never modified) for ``max(steps)``
    steps; predictions and the training loss are recorded after ``t`` updates for each ``t`` in
    ``steps``.  All parameters with ``requires_grad=True`` are trained; the model's train/eval
    mode is kept.

    Parameters
    ----------
    model : torch.nn.Module
        Maps ``(n, *input_shape)`` to ``(n,)`` or ``(n, k)``.
    X : array-like or torch.Tensor of shape ``(n, *input_shape)``
        Training inputs.
    y : array-like or torch.Tensor of shape (n,) or (n, k)
        Targets.
    learning_rate : float
        :math:`\eta > 0`.
    steps : sequence of int
        Strictly increasing step counts at which to record (include ``0`` for the initial state).
    X_test : array-like or torch.Tensor, default=None
        Inputs at which predictions are also recorded.
    dtype, device : optional
        Dtype/device of the trained copy (``None``: those of ``model``).
    callback : callable, default=None
        Called as ``callback(step, model_copy)`` at every recorded step (e.g. to compute the
        empirical NTK); its return values are ignored.

    Returns
    -------
    GDResult
        With ``steps``, ``train_predictions`` (T, n, k), ``test_predictions`` (T, m, k) or None,
        ``train_loss`` (T,) as numpy arrays, and the trained ``model`` copy.
    """
    lr = _check_lr(learning_rate)
    steps = _check_steps(steps)
    dtype, device = _setup(model, dtype, device)
    x = _to_input(X, "X", dtype, device)
    yt = _targets(y, x.shape[0], dtype, device)
    xt = None if X_test is None else _to_input(X_test, "X_test", dtype, device)
    net = copy.deepcopy(model).to(device=device, dtype=dtype)
    params = [p for p in net.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no trainable parameters")
    record = set(steps.tolist())
    train_preds, test_preds, losses = [], [], []
    for t in range(int(steps[-1]) + 1):
        with torch.enable_grad():
            out = _outputs(net, x)
            if out.shape != yt.shape:
                raise ValueError(
                    f"model outputs have shape {tuple(out.shape)} but y has {tuple(yt.shape)}"
                )
            loss = 0.5 * torch.nn.functional.mse_loss(out, yt)
            if t in record:
                train_preds.append(out.detach().cpu().numpy().copy())
                losses.append(float(loss.detach()))
                if xt is not None:
                    with torch.no_grad():
                        test_preds.append(_outputs(net, xt).cpu().numpy().copy())
                if callback is not None:
                    callback(t, net)
            if t == steps[-1]:
                break
            grads = torch.autograd.grad(loss, params, allow_unused=True)
        with torch.no_grad():
            for p, g in zip(params, grads, strict=True):
                if g is not None:
                    p.sub_(lr * g)
    return GDResult(
        steps, np.stack(train_preds), None if xt is None else np.stack(test_preds),
        np.asarray(losses), net,
    )


# ---------------------------------------------------------------------------------------------
# linearisation
# ---------------------------------------------------------------------------------------------


class LinearizedModel(nn.Module):
    r"""First-order Taylor expansion of a model around its current parameters.

    .. math:: f^{\mathrm{lin}}(x; \theta) = f(x; \theta_0) + J_{\theta_0}(x)\,(\theta - \theta_0)

    evaluated with one forward-mode product (:func:`torch.func.jvp`), never a Jacobian.  The
    trainable parameters are :math:`\theta` (initialised at :math:`\theta_0`); :math:`\theta_0`
    is stored as buffers.  The wrapped model is deep-copied and never modified.

    Parameters
    ----------
    model : torch.nn.Module
        The network to linearise; all its parameters with ``requires_grad=True`` are expanded,
        the others are held fixed.
    """

    def __init__(self, model):
        super().__init__()
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        base = copy.deepcopy(model)
        named = [(k, p) for k, p in base.named_parameters() if p.requires_grad]
        if not named:
            raise ValueError("the model has no trainable parameters")
        self._names = [k for k, _ in named]
        self.params = nn.ParameterList([nn.Parameter(p.detach().clone()) for _, p in named])
        for i, (_, p) in enumerate(named):
            self.register_buffer(f"theta0_{i}", p.detach().clone())
        for p in base.parameters():
            p.requires_grad_(False)
        self.base = base  # fixed (non-trainable) copy: its parameters hold theta_0

    def forward(self, x):
        theta0 = {k: getattr(self, f"theta0_{i}") for i, k in enumerate(self._names)}
        delta = {k: p - theta0[k] for k, p in zip(self._names, self.params, strict=True)}

        def f(theta):
            return functional_call(self.base, theta, (x,))

        with warnings.catch_warnings():
            # torch's first forward-AD call scripts decompositions with the deprecated
            # torch.jit.script (a torch-internal DeprecationWarning, nothing the user can act on)
            warnings.filterwarnings("ignore", message=".*torch.jit.script.*deprecated",
                                    category=DeprecationWarning)
            f0, df = jvp(f, (theta0,), (delta,))
        return f0 + df


def linearized_trajectory(model, X_train, y_train, X_test=None, *, learning_rate, steps,
                          alpha=0.0, dynamics="gd", dtype="float64", device=None,
                          batch_size=None):
    r"""Closed-form trajectory of the linearised model trained by gradient descent.

    .. math::

        f_t(x) = f_0(x) + \Theta_0(x, X)\,\tilde\Theta_0^{-1}\,
                 h_t(\tilde\Theta_0)\,(y - f_0(X)),\qquad \tilde\Theta_0 = \Theta_0(X, X)+\alpha I

    with :math:`h_t(\lambda) = 1 - (1 - \eta\lambda/(nk))^t` for ``dynamics="gd"`` (exactly
    what :func:`gradient_descent` of :class:`LinearizedModel` produces) or
    :math:`1 - e^{-\eta\lambda t/(nk)}` for ``"flow"``.  :math:`\Theta_0` is the model's
    empirical NTK at its current parameters, with all output blocks (an :math:`nk \times nk`
    matrix for ``k`` outputs); the solver is :class:`sklearn_ntk._dynamics.KernelDynamics`.

    Parameters
    ----------
    model : torch.nn.Module
        The network at initialisation (not modified).
    X_train, y_train : array-like or torch.Tensor
        Training inputs ``(n, *input_shape)`` and targets ``(n,)`` or ``(n, k)``.
    X_test : array-like or torch.Tensor, default=None
        Inputs at which predictions are also returned.
    learning_rate : float
        :math:`\eta > 0`.
    steps : sequence of int or float
        Times (in steps) at which to evaluate; ``numpy.inf`` is allowed.
    alpha : float, default=0.0
        Absolute diagonal term added to :math:`\Theta_0(X, X)`.
    dynamics : {"gd", "flow"}, default="gd"
    dtype : default="float64"
        Dtype of the NTK and forward computations.
    device, batch_size : optional
        Passed to :func:`sklearn_ntk.empirical_ntk`.

    Returns
    -------
    dict
        ``"steps"`` (T,), ``"train_predictions"`` (T, n, k), ``"test_predictions"`` (T, m, k) or
        None, ``"train_loss"`` (T,), ``"ntk_train"`` (n, n, k, k) and ``"f0_train"`` (n, k).
    """
    lr = _check_lr(learning_rate)
    times = np.atleast_1d(np.asarray(steps, dtype=np.float64))
    if times.ndim != 1 or times.size == 0 or np.any(np.isnan(times)) or np.any(times < 0):
        raise ValueError(f"steps must be a non-empty list of non-negative times, got {steps!r}")
    if dynamics not in ("gd", "flow"):
        raise ValueError(f"dynamics must be 'gd' or 'flow', got {dynamics!r}")
    dtype, device = _setup(model, dtype, device)
    x = _to_input(X_train, "X_train", dtype, device)
    n = x.shape[0]
    yt = _targets(y_train, n, dtype, device)
    xt = None if X_test is None else _to_input(X_test, "X_test", dtype, device)
    opts = dict(output="full", batch_size=batch_size, dtype=dtype, device=device)

    # initial outputs of the model (evaluated on a functional copy: the model is not touched)
    f0 = _eval(model, x, dtype, device)
    k = f0.shape[1]
    if yt.shape[1] != k:
        raise ValueError(f"model has {k} outputs but y has {yt.shape[1]} columns")
    theta = empirical_ntk(model, x, **opts).cpu().numpy()  # (n, n, k, k)
    flat = theta.transpose(0, 2, 1, 3).reshape(n * k, n * k)
    flat = 0.5 * (flat + flat.T)
    yf = yt.cpu().numpy().reshape(n * k)
    f0f = f0.cpu().numpy().reshape(n * k)
    dyn = KernelDynamics(flat, yf, learning_rate=lr, alpha=alpha, dynamics=dynamics)
    train = dyn.mean(times, None, f0f).reshape(len(times), n, k)
    test = None
    if xt is not None:
        m = xt.shape[0]
        theta_t = empirical_ntk(model, xt, x, **opts).cpu().numpy()
        cross = theta_t.transpose(0, 2, 1, 3).reshape(m * k, n * k)
        f0t = _eval(model, xt, dtype, device).cpu().numpy().reshape(m * k)
        test = dyn.mean(times, cross, f0f, f0t).reshape(len(times), m, k)
    loss = 0.5 * np.mean((train - yt.cpu().numpy()[None]) ** 2, axis=(1, 2))
    return {
        "steps": times,
        "train_predictions": train,
        "test_predictions": test,
        "train_loss": loss,
        "ntk_train": theta,
        "f0_train": f0.cpu().numpy(),
    }


def _eval(model, x, dtype, device):
    """Model outputs (n, k) on a cast functional copy of its state, without touching it."""
    state = {
        k: (v.detach().to(device=device, dtype=dtype) if v.is_floating_point()
            else v.detach().to(device)).clone()
        for k, v in list(model.named_parameters()) + list(model.named_buffers())
    }
    with torch.no_grad():
        out = functional_call(model, state, (x,))
    return out.reshape(out.shape[0], -1)


# ---------------------------------------------------------------------------------------------
# NTK drift
# ---------------------------------------------------------------------------------------------


def relative_ntk_change(ntk_t, ntk_0):
    r"""Relative Frobenius change :math:`\lVert\Theta_t - \Theta_0\rVert_F/\lVert\Theta_0\rVert_F`.

    Parameters
    ----------
    ntk_t, ntk_0 : array-like of the same shape

    Returns
    -------
    float
    """
    a = np.asarray(ntk_t, dtype=np.float64)
    b = np.asarray(ntk_0, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"kernels must have the same shape, got {a.shape} and {b.shape}")
    denom = np.linalg.norm(b.ravel())
    if denom == 0:
        raise ValueError("ntk_0 is zero: the relative change is undefined")
    return float(np.linalg.norm((a - b).ravel()) / denom)


def ntk_drift(X_train, y_train, widths, *, depth=2, activation="relu", weight_std=1.0,
              bias_std=0.1, learning_rate=1.0, steps=(0, 100), X_kernel=None, seeds=(0,),
              dtype="float64", device=None):
    r"""Relative change of the empirical NTK of :class:`~sklearn_ntk.nn.NTKMLP` during training.

    For every width and seed an ``NTKMLP(d, depth, width, activation, weight_std, bias_std,
    out_features=k, seed=seed)`` is trained by :func:`gradient_descent`, and

    .. math:: \delta_t = \lVert\Theta_t - \Theta_0\rVert_F / \lVert\Theta_0\rVert_F

    is recorded at ``steps`` on ``X_kernel`` (default: the training inputs).  In the NTK
    parameterisation :math:`\delta_t = O(\mathrm{width}^{-1/2})` (lazy training).

    Parameters
    ----------
    X_train : array-like of shape (n, d)
    y_train : array-like of shape (n,) or (n, k)
    widths : sequence of int
    depth, activation, weight_std, bias_std : NTKMLP architecture
    learning_rate : float, default=1.0
    steps : sequence of int, default=(0, 100)
    X_kernel : array-like of shape (m, d), default=None
    seeds : sequence of int, default=(0,)
    dtype, device : optional

    Returns
    -------
    drift : ndarray of shape (len(widths), len(seeds), len(steps))
        :math:`\delta_t`; the entry for step 0 is 0.
    """
    from .nn import NTKMLP

    steps = _check_steps(steps)
    Xn = np.asarray(X_train, dtype=np.float64)
    yn = np.asarray(y_train, dtype=np.float64)
    if Xn.ndim != 2:
        raise ValueError(f"X_train must be 2-D (n, d), got shape {Xn.shape}")
    k = 1 if yn.ndim == 1 else yn.shape[1]
    Xk = Xn if X_kernel is None else np.asarray(X_kernel, dtype=np.float64)
    tdtype = _resolve_dtype(dtype, torch.float64)
    out = np.zeros((len(widths), len(seeds), len(steps)))
    for a, width in enumerate(widths):
        for b, seed in enumerate(seeds):
            net = NTKMLP(Xn.shape[1], depth, width, activation, weight_std, bias_std,
                         out_features=k, seed=seed, dtype=tdtype, device=device)
            kernels = []

            def cb(t, m, kernels=kernels):
                kernels.append(empirical_ntk(m, Xk, output="full", dtype=tdtype))

            gradient_descent(net, Xn, yn, learning_rate=learning_rate, steps=steps,
                             callback=cb)
            out[a, b] = [relative_ntk_change(K, kernels[0]) for K in kernels]
    return out
