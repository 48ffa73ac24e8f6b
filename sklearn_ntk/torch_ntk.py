r"""Empirical (finite-width) neural tangent kernel of PyTorch models.

For a model :math:`f(\cdot;\theta): \mathbb{R}^{d} \to \mathbb{R}^{k}` the empirical NTK is

.. math::

    \Theta_{ab}(x, x') = \sum_{p} \frac{\partial f_a(x)}{\partial \theta_p}
                                   \frac{\partial f_b(x')}{\partial \theta_p},

a :math:`k \times k` block for every pair of inputs.

Algorithm
---------
The model is run once per batch of inputs under a :class:`torch.overrides.TorchFunctionMode`
that watches every torch call touching a parameter.

* A parameter used as the weight of ``F.linear`` / ``F.conv1d`` / ``F.conv2d`` (possibly several
  times, e.g. tied or reused layers, and possibly multiplied by a Python scalar first) is handled
  through the layer structure: with :math:`h_{ip}` the layer input at position :math:`p` of
  sample :math:`i` (an unfolded patch for a convolution) and :math:`g_{iap}` the backpropagated
  gradient of :math:`f_a(x_i)` with respect to the layer output at that position,

  .. math::

      \Theta^{W}_{ab}(x_i, x_j) = \sum_{p, q} (g_{iap} \cdot g_{jbq}) \, (h_{ip} \cdot h_{jq}),

  which for a dense layer (one position) is the elementwise product of the Gram matrix of the
  backpropagated signals and the Gram matrix of the layer inputs.  No per-parameter Jacobian is
  ever formed for such layers; for layers with many positions (convolutions) the per-sample
  weight Jacobian :math:`\sum_p g_{iap} h_{ip}^\top` is formed instead when that is cheaper.
  Biases contribute :math:`(\sum_p g_{iap}) \cdot (\sum_q g_{jbq})`.
* Every other parameter (normalisation scales, embeddings, parameters used in arbitrary
  expressions) falls back to ``torch.func`` per-sample Jacobians (``vmap(jacrev)``), or, if the
  model cannot be vmapped (data-dependent Python control flow, ``.item()``), to an
  autograd loop, announced by a :class:`~sklearn_ntk.exceptions.PerformanceWarning`.
* Models whose samples interact (``BatchNorm`` using batch statistics, or any other mixing,
  found by a probe that replaces one sample of a batch drawn from both inputs by a sample that
  differs from it and watches the others) are detected; for them the NTK of the *batch
  function* :math:`X \mapsto f(X)` is returned, computed from the exact batch Jacobian,
  :math:`\Theta(X_1, X_2) = J(X_1) J(X_2)^\top`.

The model is never modified: the computation runs on detached aliases of its parameters and
copies of its buffers through :func:`torch.func.functional_call`, so parameters,
``requires_grad`` flags, ``.grad``, train/eval mode and buffers (e.g. running statistics) are
exactly as before.  Every call of the model gets its own copy of the inputs (a model may
modify its input in place), and the global random state is restored afterwards (dropout in
train mode draws from it).  The memory the call needs (result, contraction temporaries,
per-sample features) is checked against the available memory before it is allocated.
"""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.gaussian_process.kernels import Kernel

from ._validation import check_memory
from .exceptions import PerformanceWarning, warn_from_caller

_INSTALL_MSG = (
    "sklearn_ntk's finite-width tools need PyTorch; install it with "
    '`pip install "sklearn-ntk[torch]"`.'
)

try:  # torch is an optional dependency: fail with an actionable message
    import torch
    import torch.nn.functional as F
    from torch.func import functional_call, jacrev, vmap
    from torch.overrides import TorchFunctionMode
    from torch.utils._pytree import tree_leaves
except ImportError as exc:  # pragma: no cover - exercised only without torch
    raise ImportError(_INSTALL_MSG) from exc

__all__ = ["empirical_ntk", "empirical_ntk_diag", "EmpiricalNTKKernel"]

_OUTPUTS = ("auto", "full", "trace", "mean")

# torch calls that only read metadata: a parameter seen there is not "used"
_META = frozenset(
    {
        "size", "dim", "numel", "nelement", "stride", "is_contiguous", "is_floating_point",
        "is_complex", "element_size", "__len__", "data_ptr", "__repr__", "__format__",
        "get:shape", "get:dtype", "get:device", "get:ndim", "get:requires_grad", "get:is_cuda",
        "get:layout", "get:is_sparse", "get:is_quantized", "get:is_meta", "get:names",
        "get:grad_fn", "get:grad", "get:is_leaf", "get:_version",
    }
)
_SCALE_MUL = frozenset({"mul", "__mul__", "__rmul__", "multiply"})
_SCALE_DIV = frozenset({"div", "__truediv__", "true_divide", "divide"})


def _func_name(func):
    name = getattr(func, "__name__", "")
    if name == "__get__":
        owner = getattr(func, "__self__", None)
        return "get:" + getattr(owner, "__name__", "")
    return name


def _flat_grad(output, tensors):
    """Gradient of a scalar w.r.t. ``tensors``, flattened and concatenated (zeros where unused)."""
    grads = torch.autograd.grad(output, tensors, retain_graph=True, allow_unused=True)
    return torch.cat(
        [(torch.zeros_like(t) if g is None else g).reshape(-1) for t, g in zip(tensors, grads, strict=True)]
    )


def _as_pair(v):
    if isinstance(v, (tuple, list)):
        return tuple(int(u) for u in v)
    return (int(v), int(v))


class _Use:
    """One call of a supported linear op whose weight and/or bias is a parameter."""

    __slots__ = ("weight", "bias", "bias_scale", "H", "z", "to_positions")

    def __init__(self, weight, bias, bias_scale, H, z, to_positions):
        self.weight = weight  # parameter name or None
        self.bias = bias  # parameter name or None
        self.bias_scale = bias_scale
        self.H = H  # (n, P, D_in) layer inputs (already scaled), or None
        self.z = z  # op output, gradients are taken with respect to it
        self.to_positions = to_positions  # grad of z -> (n, P, D_out)


class _Recorder(TorchFunctionMode):
    """Record linear/conv uses of parameters; flag every other use for the fallback."""

    def __init__(self, tensors, n):
        super().__init__()
        # id(tensor) -> (parameter name, scale, tensor); the tensor is kept alive so ids stay unique
        self.derived = {id(t): (name, 1.0, t) for name, t in tensors.items()}
        self.n = n
        self.uses = []
        self.fallback = set()

    # -- helpers --------------------------------------------------------------------------
    def _lookup(self, t):
        if isinstance(t, torch.Tensor):
            return self.derived.get(id(t))
        return None

    def _flag(self, args, kwargs):
        for leaf in tree_leaves((args, kwargs)):
            hit = self._lookup(leaf)
            if hit is not None:
                self.fallback.add(hit[0])

    # -- the mode -------------------------------------------------------------------------
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = _func_name(func)
        if name in _META:
            return func(*args, **kwargs)
        leaves = tree_leaves((args, kwargs))
        if not any(self._lookup(t) is not None for t in leaves):
            return func(*args, **kwargs)
        out = None
        if func is F.linear:
            out = self._linear(func, args, kwargs)
        elif func is F.conv1d or func is F.conv2d:
            out = self._conv(func, args, kwargs)
        elif (name in _SCALE_MUL or name in _SCALE_DIV) and not kwargs and len(args) == 2:
            out = self._scale(func, name, args)
        if out is not None:
            return out
        self._flag(args, kwargs)
        return func(*args, **kwargs)

    def _scale(self, func, name, args):
        a, b = args
        hit_a, hit_b = self._lookup(a), self._lookup(b)
        if hit_a is not None and isinstance(b, numbers.Real) and not isinstance(b, bool):
            c = float(b) if name in _SCALE_MUL else 1.0 / float(b)
            hit = hit_a
        elif hit_b is not None and isinstance(a, numbers.Real) and name in _SCALE_MUL:
            c, hit = float(a), hit_b
        else:
            return None
        if not np.isfinite(c):
            return None
        res = func(*args)
        self.derived[id(res)] = (hit[0], hit[1] * c, res)
        return res

    def _split(self, weight, bias):
        """Return (weight hit, bias hit) or None when the op cannot be handled."""
        hw, hb = self._lookup(weight), self._lookup(bias)
        if hw is not None and hb is not None and hw[0] == hb[0]:
            return None
        return hw, hb

    def _linear(self, func, args, kwargs):
        bound = list(args) + [None] * (3 - len(args))
        x, weight, bias = bound[0], kwargs.get("weight", bound[1]), kwargs.get("bias", bound[2])
        if not isinstance(x, torch.Tensor) or self._lookup(x) is not None:
            return None
        if x.dim() < 2 or x.shape[0] != self.n or not isinstance(weight, torch.Tensor):
            return None
        split = self._split(weight, bias)
        if split is None:
            return None
        hw, hb = split
        z = func(x, weight, bias)
        n, d_in, d_out = self.n, x.shape[-1], z.shape[-1]
        H = None
        if hw is not None:  # a copy: the model may later modify its layer input in place
            H = x.detach().reshape(n, -1, d_in)
            H = H.clone() if hw[1] == 1.0 else H.mul(hw[1])

        def to_positions(g, n=n, d_out=d_out):
            return g.reshape(n, -1, d_out)

        self.uses.append(
            _Use(
                hw[0] if hw else None, hb[0] if hb else None, hb[1] if hb else 0.0, H, z,
                to_positions,
            )
        )
        return z.clone()  # protect z from in-place changes by the model

    def _conv(self, func, args, kwargs):
        names = ("input", "weight", "bias", "stride", "padding", "dilation", "groups")
        defaults = (None, None, None, 1, 0, 1, 1)
        p = dict(zip(names, defaults, strict=True))
        p.update(zip(names, args, strict=False))
        p.update(kwargs)
        x, weight, bias = p["input"], p["weight"], p["bias"]
        one_d = func is F.conv1d
        if not isinstance(x, torch.Tensor) or self._lookup(x) is not None:
            return None
        if not isinstance(weight, torch.Tensor) or int(p["groups"]) != 1:
            return None
        if x.dim() != (3 if one_d else 4) or x.shape[0] != self.n:
            return None
        split = self._split(weight, bias)
        if split is None:
            return None
        hw, hb = split
        z = func(*args, **kwargs)
        n, d_out = self.n, z.shape[1]
        H = None
        if hw is not None:
            ksize = tuple(weight.shape[2:])
            if one_d:
                x4 = x.detach().unsqueeze(2)
                ksize = (1, ksize[0])
                stride = (1, _as_pair(p["stride"])[0])
                dilation = (1, _as_pair(p["dilation"])[0])
                padding = p["padding"]
                padding = padding if isinstance(padding, str) else (0, _as_pair(padding)[0])
            else:
                x4 = x.detach()
                stride, dilation = _as_pair(p["stride"]), _as_pair(p["dilation"])
                padding = p["padding"]
                padding = padding if isinstance(padding, str) else _as_pair(padding)
            if isinstance(padding, str):
                if padding == "valid":
                    padding = (0, 0)
                elif padding == "same":
                    pads = []
                    for k, dl in zip(reversed(ksize), reversed(dilation), strict=True):
                        total = dl * (k - 1)
                        pads += [total // 2, total - total // 2]
                    x4 = F.pad(x4, pads)
                    padding = (0, 0)
                else:
                    return None
            cols = F.unfold(x4, ksize, dilation=dilation, padding=padding, stride=stride)
            H = cols.transpose(1, 2).mul(hw[1])  # (n, P, C*kh*kw)

        def to_positions(g, n=n, d_out=d_out):
            return g.reshape(n, d_out, -1).transpose(1, 2)

        self.uses.append(
            _Use(
                hw[0] if hw else None, hb[0] if hb else None, hb[1] if hb else 0.0, H, z,
                to_positions,
            )
        )
        return z.clone()


# ---------------------------------------------------------------------------------------------
# validation helpers
# ---------------------------------------------------------------------------------------------


def _resolve_dtype(dtype, model_dtype):
    if dtype is None:
        return model_dtype
    if isinstance(dtype, torch.dtype):
        out = dtype
    elif isinstance(dtype, str) or isinstance(dtype, type) or isinstance(dtype, np.dtype):
        try:
            name = np.dtype(dtype).name
        except TypeError as exc:
            raise TypeError(
                f"dtype must be a torch or numpy floating dtype, got {dtype!r}"
            ) from exc
        out = getattr(torch, name, None)
    else:
        raise TypeError(f"dtype must be a torch or numpy floating dtype, got {dtype!r}")
    if out is None or not out.is_floating_point:
        raise ValueError(f"dtype must be a floating dtype, got {dtype!r}")
    return out


def _to_input(X, name, dtype, device):
    if isinstance(X, torch.Tensor):
        t = X.detach()
    else:
        arr = np.asarray(X)
        if arr.dtype == object:
            raise TypeError(f"{name} must be a numeric array or a torch.Tensor")
        t = torch.as_tensor(arr)
    if t.dim() == 0:
        raise ValueError(f"{name} must have a leading sample dimension, got a scalar")
    if t.shape[0] == 0:
        raise ValueError(f"{name} has no samples (shape {tuple(t.shape)})")
    if t.is_floating_point() or t.is_complex():
        if not bool(torch.isfinite(t).all()):
            raise ValueError(f"{name} contains NaN or infinity")
        t = t.to(device=device, dtype=dtype, copy=True)
    else:
        t = t.to(device=device, copy=True)
    return t


def _uses_batch_statistics(model):
    from torch.nn.modules.batchnorm import _BatchNorm

    for m in model.modules():
        if isinstance(m, _BatchNorm) and (m.training or not m.track_running_stats):
            return True
    return False


def _check_materialised(model, device):
    """Refuse meta-device models and devices: they hold shapes, not values."""
    meta = [name for name, t in (*model.named_parameters(), *model.named_buffers()) if t.is_meta]
    if meta:
        listed = ", ".join(meta[:3]) + (", ..." if len(meta) > 3 else "")
        raise ValueError(
            f"the model's tensors {listed} are on the 'meta' device (shapes only, no values); "
            "materialise the model first, e.g. model.to_empty(device='cpu') and initialise it"
        )
    if device.type == "meta":
        raise ValueError("device='meta' holds no values; choose a real device such as 'cpu'")


def _first_line(exc):
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _is_dtype_error(exc):
    msg = str(exc)
    return any(key in msg for key in ("dtype", "datatype", "scalar type", "type ("))


def _is_out_of_memory(exc):
    oom = getattr(torch, "OutOfMemoryError", MemoryError)
    msg = str(exc).lower()
    return isinstance(exc, (MemoryError, oom)) or "out of memory" in msg or "can't allocate" in msg


_GUARD_FLOOR = 16 * 2**20  # smaller requests are not checked: reading the limits costs more


def _guard(n_bytes, what, device, hint):
    """MemoryError naming both sizes if ``n_bytes`` do not fit on ``device`` (CPU or CUDA)."""
    if n_bytes < _GUARD_FLOOR:
        return
    if device.type == "cuda":
        free = torch.cuda.mem_get_info(device)[0]
        check_memory(n_bytes, f"{what} on {device}", available=free, hint=hint)
    elif device.type == "cpu":
        check_memory(n_bytes, what, hint=hint)


def _loop_jacobian(f_single, sub, names, x, k):
    """Per-sample Jacobian (n, k, D) of ``f_single`` by one autograd pass per sample and output."""
    rows = []
    for i in range(x.shape[0]):
        p_i = {name: v.detach().requires_grad_(True) for name, v in sub.items()}
        with torch.enable_grad():
            out = f_single(p_i, x[i])
            tensors = [p_i[name] for name in names]
            rows.append(torch.stack([_flat_grad(out[a], tensors) for a in range(k)]))
    return torch.stack(rows)


def _other_row(x0, inputs):
    """An input row different from ``x0``, valid for the model.

    Floating rows: ``x0`` plus a perturbation of its own scale (from a private generator, so
    the global random state is untouched).  Integer rows (indices): a different row of the
    inputs, else ``x0`` rolled, else ``x0`` with its lowest bit flipped.
    """
    if x0.is_floating_point() or x0.is_complex():
        gen = torch.Generator().manual_seed(0)
        noise = torch.randn(x0.shape, generator=gen, dtype=torch.float64)
        scale = float(x0.abs().mean()) or 1.0
        return x0 + (0.5 * scale * noise).to(dtype=x0.dtype, device=x0.device)
    for x in inputs:
        differs = (x != x0).reshape(x.shape[0], -1).any(1).nonzero()
        if len(differs):
            return x[int(differs[0, 0])]
    rolled = x0.reshape(-1).roll(1).reshape(x0.shape)
    if not torch.equal(rolled, x0):
        return rolled
    return ~x0 if x0.dtype == torch.bool else x0 ^ 1


def _probe_batch(x1, x2):
    """Rows of both inputs (at most 8, at least 2) for the probe forward passes."""
    rows = x1[:8] if x2 is None else torch.cat([x1[:4], x2[:4]])
    if rows.shape[0] < 2:
        rows = torch.cat([rows, _other_row(rows[0], [x1] if x2 is None else [x1, x2])[None]])
    return rows


def _probe_interaction(engine, x1, x2=None, test=True):
    """Whether changing one sample of a batch changes the outputs of the others; and ``k``.

    The batch holds the first rows of ``X1`` and ``X2``; the second pass replaces its first
    row by a row that differs from it (see :func:`_other_row`), so identical rows or a
    single-row input cannot hide an interaction.  Both passes run under the same random state
    (dropout masks coincide) and leave the caller's random state untouched.  With
    ``test=False`` only the first pass runs (to learn the number of outputs ``k``).
    """
    x = _probe_batch(x1, x2)
    x_mod = x.clone()
    x_mod[0] = _other_row(x[0], [x1] if x2 is None else [x1, x2])
    params, buffers = engine._state(grad=False)
    outs = []
    for inp in (x, x_mod) if test else (x,):  # each pass starts from the same random state
        with torch.random.fork_rng(devices=_rng_devices(engine.device)), torch.no_grad():
            outs.append(engine.forward(params, {k: b.clone() for k, b in buffers.items()}, inp))
    k = outs[0].shape[1]
    if not test:
        return False, k
    a, b = outs[0][1:], outs[1][1:]
    tol = 1e-5 if engine.dtype == torch.float64 else 1e-3
    scale = float(a.abs().max().clamp_min(1.0))
    return not torch.allclose(a, b, rtol=tol, atol=tol * scale), k


def _rng_devices(device):
    """Devices whose random state ``fork_rng`` must save besides the CPU's."""
    if device.type == "cuda":
        return [device.index if device.index is not None else torch.cuda.current_device()]
    return []


# ---------------------------------------------------------------------------------------------
# the engine
# ---------------------------------------------------------------------------------------------


class _Engine:
    """Holds the functional copy of a model and computes per-batch NTK features."""

    def __init__(self, model, params, dtype, device):
        named = dict(model.named_parameters())
        if params is None:
            selected = [k for k, p in named.items() if p.requires_grad]
        else:
            if isinstance(params, str):
                params = [params]
            selected = list(params)
            unknown = [k for k in selected if k not in named]
            if unknown:
                raise ValueError(
                    f"params names not found in model.named_parameters(): {unknown}; "
                    f"available: {list(named)}"
                )
        if not selected:
            raise ValueError("the model has no trainable parameters to differentiate")
        self.model = model
        self.selected = selected
        self.dtype, self.device = dtype, device

        def cast(t):
            if t.is_floating_point():
                return t.detach().to(device=device, dtype=dtype)
            return t.detach().to(device=device)

        self.consts = {k: cast(p) for k, p in named.items() if k not in selected}
        self.base = {k: cast(named[k]) for k in selected}
        self.buffers = dict(model.named_buffers())
        self.cast = cast
        self.plan = None  # (fast names, fallback names), fixed on the first batch
        self.itemsize = torch.empty((), dtype=dtype).element_size()
        self.vmap_error = None  # why vmap failed on an earlier batch (then the loop is used)
        self.k = None

    def _state(self, grad=True):
        params = {k: v.detach().requires_grad_(grad) for k, v in self.base.items()}
        buffers = {k: self.cast(b).clone() for k, b in self.buffers.items()}
        return params, buffers

    def forward(self, params, buffers, x):
        x = x.clone()  # the model may modify its input in place: every call gets its own
        try:
            out = functional_call(self.model, {**self.consts, **params, **buffers}, (x,))
        except RuntimeError as exc:
            if not (x.is_floating_point() or x.is_complex()) and _is_dtype_error(exc):
                raise TypeError(
                    f"the model cannot take the integer inputs given ({x.dtype}) while it "
                    f"computes in {self.dtype}: pass floating-point X (integer inputs are passed "
                    f"unchanged, for models that take indices such as nn.Embedding); torch "
                    f"said: {_first_line(exc)}"
                ) from exc
            raise
        if not isinstance(out, torch.Tensor):
            raise TypeError(f"the model must return a tensor, got {type(out).__name__}")
        if not out.is_floating_point():
            raise TypeError(
                f"the model returns {out.dtype} outputs; the NTK differentiates the outputs, "
                "so they must be real floating point (e.g. return logits, not their argmax)"
            )
        if out.dim() == 0 or out.shape[0] != x.shape[0]:
            raise ValueError(
                f"the model output's leading dimension must index samples: input batch "
                f"{x.shape[0]}, output shape {tuple(out.shape)}"
            )
        return out.reshape(out.shape[0], -1)

    # -- non-interacting models ----------------------------------------------------------
    def features(self, x):
        """Per-sample NTK features of one batch: (list of gram terms, stacked jac terms)."""
        n = x.shape[0]
        params, buffers = self._state()
        with torch.enable_grad():
            rec = _Recorder(params, n)
            with rec:
                out = self.forward(params, buffers, x)
            k = out.shape[1]
            self.k = k
            weight_uses, bias_uses = {}, {}
            for u in rec.uses:
                if u.weight is not None:
                    weight_uses.setdefault(u.weight, []).append(u)
                if u.bias is not None:
                    bias_uses.setdefault(u.bias, []).append(u)
            fallback = set(rec.fallback) | (set(weight_uses) & set(bias_uses))
            fast = (set(weight_uses) | set(bias_uses)) - fallback
            unseen = [name for name in self.selected if name not in fast and name not in fallback]
            zs = [u.z for u in rec.uses]
            if self.plan is None:
                # parameters the recorder never saw must really be unused: check with autograd
                if unseen:
                    check = torch.autograd.grad(
                        out.sum(), [params[nm] for nm in unseen], retain_graph=True,
                        allow_unused=True,
                    )
                    for nm, g in zip(unseen, check, strict=True):
                        if g is not None:
                            fallback.add(nm)
                self.plan = (frozenset(fast), frozenset(fallback))
            elif not (fast >= self.plan[0] and fallback <= self.plan[1]):
                raise RuntimeError(
                    "the model uses its parameters differently on different batches; "
                    "call empirical_ntk with batch_size=None"
                )
            fast, fallback = self.plan
            # backpropagated output gradients at every recorded use, per output
            grads = [[None] * k for _ in zs]
            if zs:
                for a in range(k):
                    gs = torch.autograd.grad(
                        out[:, a].sum(), zs, retain_graph=True, allow_unused=True
                    )
                    for i, g in enumerate(gs):
                        grads[i][a] = torch.zeros_like(zs[i]) if g is None else g
        grams, jacs = [], []
        index = {id(u): i for i, u in enumerate(rec.uses)}
        for name in sorted(fast):
            if name in weight_uses:
                Hs, Gs = [], []
                for u in weight_uses[name]:
                    Hs.append(u.H)
                    Gs.append(_stack_outputs([u.to_positions(g) for g in grads[index[id(u)]]]))
                H = Hs[0] if len(Hs) == 1 else torch.cat(Hs, dim=1)  # (n, P, D_in)
                G = Gs[0] if len(Gs) == 1 else torch.cat(Gs, dim=2)  # (n, k, P, D_out)
                P, d_in, d_out = H.shape[1], H.shape[2], G.shape[3]
                if P == 1 or k * k * d_in * d_out > P * P * (d_in + k * k * d_out):
                    grams.append((H, G))
                else:
                    jacs.append(torch.einsum("nkpo,npi->nkoi", G, H).reshape(n, k, -1))
            if name in bias_uses:
                total = 0
                for u in bias_uses[name]:
                    G = _stack_outputs([u.to_positions(g) for g in grads[index[id(u)]]])
                    gsum = G[:, :, 0] if G.shape[2] == 1 else G.sum(2)
                    total = total + (gsum if u.bias_scale == 1.0 else gsum * u.bias_scale)
                jacs.append(total)
        del rec, zs, grads, out
        if fallback:
            jacs.append(self._fallback_jacobian(x, sorted(fallback)))
        J = torch.cat([j.reshape(n, self.k, -1) for j in jacs], dim=2) if jacs else None
        return grams, J

    def _fallback_jacobian(self, x, names):
        """Per-sample Jacobian (n, k, D) of the outputs w.r.t. the parameters ``names``.

        ``vmap(jacrev)`` when the model can be vmapped; otherwise (a ``RuntimeError`` under
        ``vmap`` that the plain per-sample evaluation does not raise) a per-sample autograd
        loop, announced once per call by a :class:`~sklearn_ntk.exceptions.PerformanceWarning`.
        Every other error, and running out of memory, propagates.
        """
        params, buffers = self._state(grad=False)
        fixed = {k: v for k, v in params.items() if k not in names}
        sub = {k: params[k] for k in names}
        n, d = x.shape[0], sum(sub[k].numel() for k in names)
        _guard(
            2 * n * self.k * d * self.itemsize,
            f"the per-sample Jacobian of {d} parameters ({', '.join(names[:3])}"
            f"{', ...' if len(names) > 3 else ''}) on {n} inputs",
            self.device, "pass a smaller batch_size.",
        )

        def f_single(sub_params, xi):
            return self.forward({**fixed, **sub_params}, buffers, xi.unsqueeze(0))[0]

        reason = None
        if self.vmap_error is None:
            try:
                # "different": random ops (dropout) draw per sample, as the loop would
                jac = vmap(jacrev(f_single), in_dims=(None, 0), randomness="different")(sub, x)
                return torch.cat([jac[k].reshape(n, self.k, -1) for k in names], dim=2)
            except (RuntimeError, NotImplementedError) as exc:
                if _is_out_of_memory(exc):
                    raise
                reason = exc
        # errors of the model itself are raised again here, outside vmap, and propagate
        J = _loop_jacobian(f_single, sub, names, x, self.k)
        if reason is not None:
            self.vmap_error = reason
            warn_from_caller(
                f"torch.func.vmap cannot batch this model ({_first_line(reason)}); the "
                f"Jacobian of {', '.join(names)} is computed one sample at a time, which is "
                "slower",
                PerformanceWarning,
            )
        return J

    # -- interacting models -------------------------------------------------------------
    def batch_jacobian(self, x):
        """Jacobian (n, k, D) of the batch function X -> f(X) w.r.t. all selected parameters."""
        params, buffers = self._state()
        names = list(params)
        with torch.enable_grad():
            out = self.forward(params, buffers, x)
            n, k = out.shape
            self.k = k
            rows = []
            tensors = [params[nm] for nm in names]
            for i in range(n):
                rows.append(torch.stack([_flat_grad(out[i, a], tensors) for a in range(k)]))
        return torch.stack(rows)


def _stack_outputs(gs):
    """Stack per-output gradients (n, P, D) into (n, k, P, D) (a view when k == 1)."""
    return gs[0].unsqueeze(1) if len(gs) == 1 else torch.stack(gs, dim=1)


def _contract(fa, fb, k, trace):
    """NTK block between two feature sets: (na, nb, k, k), or (na, nb) when ``trace``."""
    grams_a, Ja = fa
    grams_b, Jb = fb
    na = Ja.shape[0] if Ja is not None else grams_a[0][0].shape[0]
    nb = Jb.shape[0] if Jb is not None else grams_b[0][0].shape[0]
    res = None

    def add(res, term):  # every term is a fresh tensor, so accumulating in place is safe
        return term if res is None else res.add_(term)

    if Ja is not None:
        if trace:
            term = Ja.reshape(na, -1) @ Jb.reshape(nb, -1).T
        else:
            term = (Ja.reshape(na * k, -1) @ Jb.reshape(nb * k, -1).T)
            term = term.reshape(na, k, nb, k).permute(0, 2, 1, 3)
        res = add(res, term)
    for (Ha, Ga), (Hb, Gb) in zip(grams_a, grams_b, strict=True):
        P, Q = Ha.shape[1], Hb.shape[1]
        if P == 1 and Q == 1:
            hh = Ha[:, 0] @ Hb[:, 0].T
            if trace:
                gg = Ga.reshape(na, -1) @ Gb.reshape(nb, -1).T
                res = gg.mul_(hh) if res is None else res.addcmul_(hh, gg)
            else:
                gg = Ga.reshape(na * k, -1) @ Gb.reshape(nb * k, -1).T
                gg = gg.reshape(na, k, nb, k).permute(0, 2, 1, 3)
                res = add(res, hh[:, :, None, None] * gg)
        else:
            rows = []
            for i in range(na):
                hh = torch.einsum("pd,jqd->jpq", Ha[i], Hb)
                if trace:
                    rows.append(torch.einsum("apo,jaqo,jpq->j", Ga[i], Gb, hh))
                else:
                    rows.append(torch.einsum("apo,jbqo,jpq->jab", Ga[i], Gb, hh))
            res = add(res, torch.stack(rows))
    return res


def _diag(f, k, trace):
    """Diagonal Θ(x_i, x_i) of one feature set: (n, k, k), or (n,) when ``trace``."""
    grams, J = f
    res = None
    if J is not None:
        res = (J * J).sum((1, 2)) if trace else torch.einsum("iad,ibd->iab", J, J)
    for H, G in grams:
        hh = torch.einsum("ipd,iqd->ipq", H, H)
        term = (
            torch.einsum("iapo,iaqo,ipq->i", G, G, hh)
            if trace
            else torch.einsum("iapo,ibqo,ipq->iab", G, G, hh)
        )
        res = term if res is None else res + term
    return res


def _chunks(n, batch_size):
    step = n if batch_size is None else batch_size
    return [slice(s, min(s + step, n)) for s in range(0, n, step)]


def _check_args(model, output, batch_size, sample_interaction):
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if output not in _OUTPUTS:
        raise ValueError(f"output must be one of {_OUTPUTS}, got {output!r}")
    if batch_size is not None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral):
            raise TypeError(f"batch_size must be a positive int or None, got {batch_size!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be a positive int or None, got {batch_size!r}")
        batch_size = int(batch_size)
    if sample_interaction not in ("auto", True, False):
        raise ValueError(
            f"sample_interaction must be 'auto', True or False, got {sample_interaction!r}"
        )
    return batch_size


_BLOCKS_HINT = "compute the kernel on blocks of rows of X1 (and X2) and assemble it."


class _Budget:
    """Peak memory of one call, checked before the big allocations are made."""

    def __init__(self, engine, n1, n2, full, diag_only, to_host):
        self.engine, self.n1, self.n2 = engine, n1, n2
        self.entry = engine.itemsize * (engine.k * engine.k if full else 1)
        self.diag_only, self.to_host = diag_only, to_host
        self.what = (
            f"empirical_ntk{'_diag' if diag_only else ''} on "
            f"{n1 if diag_only else f'{n1} x {n2}'} inputs"
            f"{f' with {engine.k} x {engine.k} output blocks' if full else ''}"
        )

    def result(self, block1, block2):
        """Bytes of the result and of the two temporaries of one contraction block."""
        if self.diag_only:
            return 3 * self.n1 * self.entry
        rows = min(block1, _block_rows(block2, self.entry))
        return (self.n1 * self.n2 + 2 * rows * block2) * self.entry

    def check(self, n_bytes, what=None, hint=_BLOCKS_HINT):
        device = self.engine.device
        _guard(n_bytes, what or self.what, device, hint)
        if self.to_host and device.type != "cpu":  # the numpy copy of the result
            n_out = self.n1 * (1 if self.diag_only else self.n2) * self.entry
            _guard(n_out, f"the host copy of {self.what}", torch.device("cpu"), hint)


def _compute_interacting(engine, x1, x2, trace, diag_only, batch_size, budget):
    n_max = max(len(x1), len(x1) if x2 is None else len(x2))
    if batch_size is not None and batch_size < n_max:
        warn_from_caller(
            "the model's samples interact (e.g. BatchNorm using batch statistics); "
            "its NTK is that of the whole batch, so batch_size is ignored",
            UserWarning,
        )
    d = sum(v.numel() for v in engine.base.values())
    n_jac = len(x1) + (0 if x2 is None or diag_only else len(x2)) + max(len(x1), n_max)
    budget.check(
        budget.result(len(x1), budget.n2) + n_jac * engine.k * d * engine.itemsize,
        f"{budget.what} (batch Jacobians of {d} parameters)",
    )
    fa = ([], engine.batch_jacobian(x1))
    if diag_only:
        return _diag(fa, engine.k, trace)
    fb = fa if x2 is None else ([], engine.batch_jacobian(x2))
    whole1, whole2 = slice(0, len(x1)), slice(0, budget.n2)
    return _assemble(engine, [whole1], [fa], [whole2], [fb], trace, x2 is None)


def _compute_independent(engine, x1, x2, trace, diag_only, batch_size, budget):
    k, n1 = engine.k, len(x1)
    chunks1 = _chunks(n1, batch_size)
    n2 = n1 if x2 is None else len(x2)
    chunks2 = chunks1 if x2 is None else _chunks(n2, batch_size)
    first1, first2 = chunks1[0].stop, chunks2[0].stop
    budget.check(budget.result(first1, first2))
    feats1 = [engine.features(x1[chunks1[0]])]
    # every row's features are kept until the end: budget them from the first chunk's size
    per_row = sum(t.numel() * t.element_size() for t in _feature_tensors(feats1[0])) / first1
    n_rows = n1 + (0 if x2 is None or diag_only else n2)
    budget.check(budget.result(first1, first2) + int(per_row * n_rows),
                 f"{budget.what} (with the per-sample features of the layers)")
    feats1 += [engine.features(x1[s]) for s in chunks1[1:]]
    if diag_only:
        return torch.cat([_diag(f, k, trace) for f in feats1])
    feats2 = feats1 if x2 is None else [engine.features(x2[s]) for s in chunks2]
    return _assemble(engine, chunks1, feats1, chunks2, feats2, trace, x2 is None)


_BLOCK_BYTES = 64 * 2**20  # size of one contraction block's result (temporaries: ~2 of them)


def _block_rows(n2, entry):
    """Rows per contraction block so that a block of ``n2`` columns stays near _BLOCK_BYTES."""
    return max(1, _BLOCK_BYTES // max(1, n2 * entry))


def _rows(f, s):
    """Features of the rows ``s`` of a feature set."""
    grams, J = f
    return [(H[s], G[s]) for H, G in grams], (None if J is None else J[s])


def _assemble(engine, chunks1, feats1, chunks2, feats2, trace, symmetric):
    """The kernel from per-chunk features, filled block by block into one preallocated result.

    Blocks of rows bound the contraction's temporaries, so the peak memory is the result plus
    two blocks; with ``symmetric`` the blocks below the diagonal are mirrored.
    """
    k = engine.k
    n1, n2 = chunks1[-1].stop, chunks2[-1].stop
    shape = (n1, n2) if trace else (n1, n2, k, k)
    res = torch.empty(shape, dtype=engine.dtype, device=engine.device)
    step = _block_rows(n2, engine.itemsize * (1 if trace else k * k))
    for a, (sa, fa) in enumerate(zip(chunks1, feats1, strict=True)):
        for b, (sb, fb) in enumerate(zip(chunks2, feats2, strict=True)):
            if symmetric and b < a:  # mirror the block computed already
                block = res[sb, sa]
                res[sa, sb] = block.T if trace else block.permute(1, 0, 3, 2)
                continue
            for r in range(0, sa.stop - sa.start, step):
                part = slice(r, min(r + step, sa.stop - sa.start))
                rows = slice(sa.start + part.start, sa.start + part.stop)
                res[rows, sb] = _contract(_rows(fa, part), fb, k, trace)
    return res


def _feature_tensors(f):
    grams, J = f
    out = [t for pair in grams for t in pair]
    return out if J is None else out + [J]


def _compute(model, X1, X2, output, batch_size, dtype, device, params, diag_only,
             sample_interaction):
    batch_size = _check_args(model, output, batch_size, sample_interaction)
    first = next(iter(model.parameters()), None)
    if first is None:
        raise ValueError("the model has no parameters")
    device = torch.device(device) if device is not None else first.device
    _check_materialised(model, device)
    dtype = _resolve_dtype(dtype, first.dtype if first.is_floating_point() else torch.float32)
    x1 = _to_input(X1, "X1", dtype, device)
    x2 = None if X2 is None else _to_input(X2, "X2", dtype, device)
    if x2 is not None and x2.shape[1:] != x1.shape[1:]:
        raise ValueError(
            f"X1 and X2 must have the same per-sample shape, got {tuple(x1.shape[1:])} "
            f"and {tuple(x2.shape[1:])}"
        )
    engine = _Engine(model, params, dtype, device)
    trace = output in ("trace", "mean")
    # the model may draw random numbers (dropout): the caller's random state is restored
    with torch.random.fork_rng(devices=_rng_devices(device)):
        auto = sample_interaction == "auto"
        probed, engine.k = _probe_interaction(engine, x1, None if diag_only else x2, test=auto)
        interacting = (_uses_batch_statistics(model) or probed) if auto else sample_interaction
        full = not trace and not (output == "auto" and engine.k == 1)
        n2 = len(x1) if x2 is None else len(x2)
        budget = _Budget(engine, len(x1), n2, full, diag_only, not isinstance(X1, torch.Tensor))
        compute = _compute_interacting if interacting else _compute_independent
        with torch.no_grad():
            res = compute(engine, x1, x2, trace, diag_only, batch_size, budget)
    k = engine.k
    if output == "mean":
        res = res.div_(k)  # a fresh tensor of this call: no second copy of the result
    elif output == "auto" and k == 1:
        res = res.reshape(res.shape[:1]) if diag_only else res.reshape(res.shape[:2])
    return res, isinstance(X1, torch.Tensor)


def empirical_ntk(
    model,
    X1,
    X2=None,
    *,
    output="auto",
    batch_size=None,
    dtype=None,
    device=None,
    params=None,
    sample_interaction="auto",
):
    r"""Empirical neural tangent kernel of a PyTorch model.

    .. math::

        \Theta_{ab}(x, x') = \sum_{p} \partial_{\theta_p} f_a(x)\, \partial_{\theta_p} f_b(x')

    computed exactly, without materialising per-parameter Jacobians for dense and
    convolutional layers (see the module docstring for the algorithm).

    Parameters
    ----------
    model : torch.nn.Module
        Maps a batch of shape ``(n, *input_shape)`` to outputs of shape ``(n,)`` or
        ``(n, *out_shape)``; the outputs of one sample are flattened to ``k`` values.  The model is
        evaluated in its current train/eval mode and is left exactly as found (parameters,
        ``requires_grad`` flags, ``.grad``, mode and buffers).
    X1 : array-like or torch.Tensor of shape ``(n1, *input_shape)``
        First set of inputs.
    X2 : array-like or torch.Tensor of shape ``(n2, *input_shape)``, default=None
        Second set of inputs; ``None`` means ``X1`` (and the symmetry is exploited).
    output : {"auto", "full", "trace", "mean"}, default="auto"
        ``"full"``: the ``(n1, n2, k, k)`` blocks :math:`\Theta_{ab}(x_i, x'_j)`;
        ``"trace"``: :math:`\sum_a \Theta_{aa}`, shape ``(n1, n2)``; ``"mean"``: the trace
        divided by ``k``; ``"auto"``: ``(n1, n2)`` for a single-output model, else ``"full"``.
    batch_size : int, default=None
        Number of inputs processed per forward/backward pass (memory grows linearly in it);
        ``None`` processes all inputs at once.  Ignored for models whose samples interact.
    dtype : torch.dtype, numpy dtype or str, default=None
        Floating dtype of the computation (e.g. ``torch.float64`` or ``"float64"``); ``None`` uses
        the dtype of the model's parameters.  The model itself is never cast.
    device : torch.device or str, default=None
        Device of the computation; ``None`` uses the device of the model's parameters.
    params : str or list of str, default=None
        Names (as in ``model.named_parameters()``) of the parameters to differentiate;
        ``None`` means all parameters with ``requires_grad=True``.
    sample_interaction : {"auto", True, False}, default="auto"
        Whether outputs of one sample depend on other samples of the batch.  ``"auto"`` detects
        ``BatchNorm`` layers using batch statistics (train mode, or no running statistics) and
        any other mixing by two probe forward passes on the first rows of ``X1`` and ``X2``
        (at least two rows; the second pass replaces the first row by a different one -- a
        perturbed copy for floating inputs -- under the same random state: the outputs of the
        other rows must not change).  For
        such models the NTK of the batch function :math:`X \mapsto f(X)` is returned,
        :math:`\Theta(X_1, X_2) = J(X_1)\,J(X_2)^\top` with :math:`X_1` and :math:`X_2` each
        evaluated as one batch (memory :math:`O(n k \cdot \#\theta)`).

    Returns
    -------
    ntk : numpy.ndarray or torch.Tensor
        Shape ``(n1, n2)`` or ``(n1, n2, k, k)`` as selected by ``output``; a torch tensor on
        ``device`` when ``X1`` is a tensor, else a numpy array.

    Raises
    ------
    MemoryError
        Before allocating, when the result with its temporaries, the per-sample features or
        the Jacobians do not fit in the available memory (the tightest of ``MemAvailable``,
        the container's cgroup limit and ``RLIMIT_AS``; free memory on a CUDA device); the
        message states both sizes.  Compute the kernel on blocks of rows instead.
    TypeError
        Integer inputs a floating-point model cannot take (integer inputs are passed unchanged,
        for models that take indices), or integer / complex model outputs.
    ValueError
        Models on the ``meta`` device (shapes without values), inputs with NaN or infinity.

    Warns
    -----
    PerformanceWarning
        Once per call when ``torch.func.vmap`` cannot batch the model and the Jacobian of
        the parameters outside dense and convolutional layers is computed one sample at a time.

    Notes
    -----
    Dense and convolutional parameters are recognised by watching the torch calls made during
    the forward pass: a parameter (or a Python-scalar multiple of one) used as the ``weight`` or
    ``bias`` of ``F.linear``, ``F.conv1d`` or ``F.conv2d`` (with ``groups=1``) takes the fast
    path, also when it is used several times (tied weights); a parameter used in any other way
    is differentiated with ``torch.func``.  The fast path assumes that the leading dimension of
    every layer input indexes the samples of the batch in order, which holds for models that
    do not mix samples.

    The global random state is left as found; a model that draws random numbers (dropout in
    train mode) draws them from that state, so two calls from the same state agree.

    Examples
    --------
    >>> import torch
    >>> from sklearn_ntk import empirical_ntk
    >>> net = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    >>> X = torch.randn(5, 3)
    >>> empirical_ntk(net, X, dtype=torch.float64).shape
    torch.Size([5, 5])
    """
    res, as_tensor = _compute(model, X1, X2, output, batch_size, dtype, device, params, False,
                              sample_interaction)
    return res if as_tensor else res.cpu().numpy()


def empirical_ntk_diag(model, X, *, output="auto", batch_size=None, dtype=None, device=None,
                       params=None, sample_interaction="auto"):
    r"""Diagonal :math:`\Theta(x_i, x_i)` of the empirical NTK in :math:`O(n)` kernel entries.

    Parameters are as in :func:`empirical_ntk`; the result has shape ``(n,)`` (``"trace"``,
    ``"mean"``, or ``"auto"`` with one output) or ``(n, k, k)`` (``"full"``).
    """
    res, as_tensor = _compute(model, X, None, output, batch_size, dtype, device, params, True,
                              sample_interaction)
    return res if as_tensor else res.cpu().numpy()


class EmpiricalNTKKernel(Kernel):
    r"""scikit-learn kernel given by the empirical NTK of a fixed PyTorch model.

    .. math:: k(x, x') = \frac{1}{k} \sum_{a=1}^{k} \Theta_{aa}(x, x')

    (``output="mean"``; ``"trace"`` omits the :math:`1/k`), so a finite network's kernel can be
    used in :class:`~sklearn.gaussian_process.GaussianProcessRegressor`,
    :class:`~sklearn.kernel_ridge.KernelRidge` and the NTK estimators.  The kernel has no
    hyperparameters (the network is fixed).

    Parameters
    ----------
    model : torch.nn.Module
        The network; it is never modified.
    output : {"mean", "trace"}, default="mean"
        How the ``k`` outputs of a multi-output model are combined.
    input_shape : tuple of int, default=None
        Per-sample shape the model expects; rows of the 2-D ``X`` are reshaped to it (e.g.
        ``(1, 28, 28)`` for a convnet).  ``None`` passes rows unchanged.
    batch_size : int, default=None
        See :func:`empirical_ntk`.
    dtype : str, default="float64"
        Computation dtype (the result is always float64).
    device : str, default=None
        See :func:`empirical_ntk`.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from sklearn.gaussian_process import GaussianProcessRegressor
    >>> from sklearn_ntk import EmpiricalNTKKernel
    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))
    >>> X = np.random.default_rng(0).normal(size=(10, 2))
    >>> gpr = GaussianProcessRegressor(EmpiricalNTKKernel(net), alpha=1e-6).fit(X, X[:, 0])
    """

    def __init__(self, model, output="mean", input_shape=None, batch_size=None, dtype="float64",
                 device=None):
        self.model = model
        self.output = output
        self.input_shape = input_shape
        self.batch_size = batch_size
        self.dtype = dtype
        self.device = device

    def _prepare(self, X):
        if self.output not in ("mean", "trace"):
            raise ValueError(f"output must be 'mean' or 'trace', got {self.output!r}")
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2:
            raise ValueError(f"X must be 2-D (n_samples, n_features), got shape {X.shape}")
        if self.input_shape is not None:
            shape = tuple(int(s) for s in self.input_shape)
            if int(np.prod(shape)) != X.shape[1]:
                raise ValueError(
                    f"input_shape {shape} has {int(np.prod(shape))} entries but X has "
                    f"{X.shape[1]} features"
                )
            X = X.reshape((X.shape[0],) + shape)
        return X

    def __call__(self, X, Y=None, eval_gradient=False):
        """Return the kernel k(X, Y) and optionally its (empty) gradient.

        Parameters
        ----------
        X : ndarray of shape (n_samples_X, n_features)
        Y : ndarray of shape (n_samples_Y, n_features), default=None
            ``None`` evaluates k(X, X).
        eval_gradient : bool, default=False
            Also return the gradient with respect to the (empty) log-hyperparameters.

        Returns
        -------
        K : ndarray of shape (n_samples_X, n_samples_Y)
        K_gradient : ndarray of shape (n_samples_X, n_samples_X, 0), optional
        """
        if eval_gradient and Y is not None:
            raise ValueError("Gradient can only be evaluated when Y is None.")
        Xp = self._prepare(X)
        Yp = None if Y is None else self._prepare(Y)
        K = empirical_ntk(
            self.model, Xp, Yp, output=self.output, batch_size=self.batch_size,
            dtype=self.dtype, device=self.device,
        )
        K = np.asarray(K, dtype=np.float64)  # a fresh array of this call's (never shared)
        if Y is None:  # exact symmetry regardless of summation order (one temporary copy)
            K += K.T
            K *= 0.5
        if eval_gradient:
            return K, np.empty((K.shape[0], K.shape[0], 0))
        return K

    def diag(self, X):
        """Return the diagonal k(x_i, x_i) without forming the full matrix.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features)

        Returns
        -------
        K_diag : ndarray of shape (n_samples,)
        """
        Xp = self._prepare(X)
        d = empirical_ntk_diag(
            self.model, Xp, output=self.output, batch_size=self.batch_size, dtype=self.dtype,
            device=self.device,
        )
        return np.array(d, dtype=np.float64, copy=True)

    def is_stationary(self):
        """The empirical NTK is not stationary."""
        return False

    @property
    def requires_vector_input(self):
        """Inputs are fixed-length feature vectors."""
        return True

    def __repr__(self):
        return (
            f"{type(self).__name__}(model={type(self.model).__name__}, "
            f"output={self.output!r})"
        )
