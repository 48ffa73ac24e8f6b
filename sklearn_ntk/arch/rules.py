r"""The kernel state and one pure function per layer mapping a state to the next.

State of a batch of ``p`` pairs of inputs ``(x, y)`` (:class:`KernelState`):

* ``nngp`` -- :math:`\Sigma(x_i, y_j)` of the pre-/post-activations, ``ntk`` -- :math:`\Theta`;
  shape ``(K, p) + pixels`` where ``pixels`` is ``(P, P)`` (every pixel pair, ``full``), ``(P,)``
  (the pixel diagonal only) or ``()`` (no spatial axes), with ``P`` the number of positions;
* component ``0`` of the leading axis is the value, components ``1`` and ``2`` (present when
  ``K == 3``) its forward-mode derivatives with respect to :math:`\log\sigma_b` and
  :math:`\log\sigma_w`;
* ``same`` marks pairs made of one sample with itself (their correlation is exactly one);
* the self-covariances :math:`\Sigma(x, x)`, :math:`\Sigma(y, y)` that activations and
  LayerNorm need are not carried by the pair state: they are the pixel diagonals of the states of
  the pairs ``(x, x)`` and ``(y, y)``, computed once per sample and handed in through a
  :class:`Context` (``ctx.variances``).

Every function here is pure (never writes into its arguments). The activation moments are supplied
by the backend (``ctx.moments``), which is the only non-array piece of maths.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

__all__ = ["KernelState", "Context", "apply"]

LAYERNORM_EPS = 1e-12  # neural-tangents' default


@dataclass(frozen=True)
class KernelState:
    """NNGP and NTK of a batch of pairs, with spatial shape and layout (see module docstring)."""

    nngp: np.ndarray
    ntk: np.ndarray
    shape: tuple
    full: bool
    same: np.ndarray

    @property
    def n_comp(self):
        return self.nngp.shape[0]

    def pixel_diagonal(self):
        """:math:`\\Sigma(x_p, y_p)` for every position (the state itself without spatial pairs)."""
        if self.full and self.shape:
            return np.diagonal(self.nngp, axis1=-2, axis2=-1)
        return self.nngp


class Context:
    """What the rules need beyond the state: the std's, the variances and the moments.

    Parameters
    ----------
    w2, b2 : float
        The kernel's :math:`\\sigma_w^2`, :math:`\\sigma_b^2` (inherited by layers whose std is None).
    grad : bool
        Whether the states carry tangents (``K == 3``).
    moments : callable
        ``moments(act, a, b, c, same, grad)`` on flat arrays, returning ``(T, Tdot)`` or the eight
        arrays ``(T, Tdot, Ta, Tb, Tc, Tda, Tdb, Tdc)``.
    variances : callable
        ``variances(op, state) -> (va, vb)``: the per-position variances of the first and second
        member of every pair, shape ``(K, p) + (P,)`` (or ``(K, p)``), at the input of ``op``.
    """

    def __init__(self, w2, b2, grad, moments, variances):
        self.w2 = w2
        self.b2 = b2
        self.grad = grad
        self.moments = moments
        self.variances = variances

    def stds(self, op):
        """``(w2, b2, w_free, b_free)`` of a Dense/Conv op."""
        w2, b2 = op.params["w2"], op.params["b2"]
        return (
            self.w2 if w2 is None else w2,
            self.b2 if b2 is None else b2,
            w2 is None and self.grad,
            b2 is None and self.grad,
        )


# --------------------------------------------------------------------------------------------------
# affine layers (Dense, Conv)
# --------------------------------------------------------------------------------------------------
def _affine(x, w2, b2, w_free, b_free):
    """``w2 * x + b2`` with tangents: d/dlog b adds 2 b2, d/dlog w adds 2 w2 x."""
    out = w2 * x
    out[0] += b2
    if b_free:
        out[1] += 2.0 * b2
    if w_free:
        out[2] += 2.0 * out[0] - 2.0 * b2
    return out


def _weighted(state, ctx, op, linear):
    w2, b2, w_free, b_free = ctx.stds(op)
    nngp = _affine(linear(state.nngp), w2, b2, w_free, b_free)
    lin_ntk = linear(state.ntk)
    ntk = nngp + w2 * lin_ntk
    if w_free:
        ntk[2] += 2.0 * w2 * lin_ntk[0]
    return nngp, ntk


def dense(state, op, ctx):
    """Dense: :math:`\\Sigma' = \\sigma_w^2\\Sigma + \\sigma_b^2`, :math:`\\Theta' = \\Sigma' + \\sigma_w^2\\Theta`."""
    nngp, ntk = _weighted(state, ctx, op, lambda x: x)
    return replace(state, nngp=nngp, ntk=ntk)


def conv(state, op, ctx):
    """Conv: the Dense rule after averaging over the filter offsets, shifting both pixels alike."""
    axes, circular = op.params["axes"], op.params["padding"] == "circular"
    scale = 1.0 / np.prod([a[0] for a in axes])

    def linear(x):
        return scale * _shift_sum(x, state.shape, state.full, axes, circular, joint=True)

    nngp, ntk = _weighted(state, ctx, op, linear)
    return replace(state, nngp=nngp, ntk=ntk, shape=tuple(a[4] for a in axes))


def _index(axis, d, circular):
    """Input positions read by output positions ``o`` at filter offset ``d`` and a validity mask."""
    size, stride, lo, n_in, n_out = axis
    idx = np.arange(n_out) * stride - lo + d
    if circular:
        return idx % n_in, np.ones(n_out, dtype=bool)
    valid = (idx >= 0) & (idx < n_in)
    return np.clip(idx, 0, n_in - 1), valid


def _shift_sum(x, shape, full, axes, circular, joint):
    """Sum over window offsets, one spatial axis at a time (separable).

    ``joint`` shifts both pixels of a pair by the same offset (convolution); otherwise the two
    pixel indices are windowed independently (pooling, full states only).
    """
    lead = x.shape[:2]
    nd = len(shape)
    y = x.reshape(lead + (tuple(shape) * 2 if full else tuple(shape)))
    for k, axis in enumerate(axes):
        ax1 = 2 + k
        ax2 = 2 + nd + k
        out_shape = list(y.shape)
        out_shape[ax1] = axis[4]
        if full:
            out_shape[ax2] = axis[4]
        out = np.zeros(out_shape)
        for d in range(axis[0]):
            idx, valid = _index(axis, d, circular)
            if full and joint:
                part = np.take(np.take(y, idx, axis=ax1), idx, axis=ax2)
                mask = np.multiply.outer(valid, valid)
                out += part * _expand(mask, (ax1, ax2), len(out_shape))
            else:
                part = np.take(y, idx, axis=ax1)
                out_d = part * _expand(valid, (ax1,), len(out_shape))
                if full:  # independent windows: the second index gets its own offsets
                    for d2 in range(axis[0]):
                        idx2, valid2 = _index(axis, d2, circular)
                        out += np.take(out_d, idx2, axis=ax2) * _expand(valid2, (ax2,), len(out_shape))
                else:
                    out += out_d
        y = out
    new_shape = tuple(a[4] for a in axes)
    return y.reshape(lead + ((int(np.prod(new_shape)),) * 2 if full else (int(np.prod(new_shape)),)))


def _expand(mask, axes, ndim):
    shape = [1] * ndim
    for ax, n in zip(axes, mask.shape, strict=True):
        shape[ax] = n
    return mask.reshape(shape)


# --------------------------------------------------------------------------------------------------
# activations and LayerNorm (need the per-position variances of both members of each pair)
# --------------------------------------------------------------------------------------------------
def _pair_views(state, va, vb):
    """Broadcast the variances against the state and mark the exactly-identical entries."""
    same = state.same
    if state.full and state.shape:
        P = va.shape[-1]
        a = va[..., :, None]
        b = vb[..., None, :]
        same = same[:, None, None] & np.eye(P, dtype=bool)[None]
    elif state.shape:
        a, b = va, vb
        same = np.broadcast_to(same[:, None], state.nngp.shape[1:])
    else:
        a, b = va, vb
    return np.broadcast_to(a, state.nngp.shape), np.broadcast_to(b, state.nngp.shape), same


def activation(state, op, ctx):
    """Elementwise :math:`\\phi`: :math:`\\Sigma' = \\mathcal T`, :math:`\\Theta' = \\dot{\\mathcal T}\\,\\Theta`."""
    va, vb = ctx.variances(op, state)
    a, b, same = _pair_views(state, va, vb)
    c = state.nngp
    res = ctx.moments(op.params["act"], a[0].ravel(), b[0].ravel(), c[0].ravel(), same.ravel(), ctx.grad)
    shape = c.shape[1:]
    t, td = res[0].reshape(shape), res[1].reshape(shape)
    nngp = np.empty_like(c)
    ntk = np.empty_like(c)
    nngp[0] = t
    ntk[0] = td * state.ntk[0]
    if ctx.grad:
        ta, tb, tc, tda, tdb, tdc = (r.reshape(shape) for r in res[2:])
        for k in (1, 2):
            nngp[k] = ta * a[k] + tb * b[k] + tc * c[k]
            dtd = tda * a[k] + tdb * b[k] + tdc * c[k]
            ntk[k] = dtd * state.ntk[0] + td * state.ntk[k]
    return replace(state, nngp=nngp, ntk=ntk)


def layernorm(state, op, ctx):
    """Divide by :math:`\\sqrt{(\\epsilon + \\Sigma(x_p, x_p))(\\epsilon + \\Sigma(y_q, y_q))}`."""
    va, vb = ctx.variances(op, state)
    a, b, _ = _pair_views(state, va, vb)
    ea, eb = LAYERNORM_EPS + a[0], LAYERNORM_EPS + b[0]
    r = 1.0 / np.sqrt(ea * eb)
    out = []
    for x in (state.nngp, state.ntk):
        y = x * r
        if ctx.grad:
            for k in (1, 2):
                y[k] -= 0.5 * y[0] * (a[k] / ea + b[k] / eb)
        out.append(y)
    return replace(state, nngp=out[0], ntk=out[1])


# --------------------------------------------------------------------------------------------------
# layers without weights
# --------------------------------------------------------------------------------------------------
def avgpool(state, op, ctx):
    """AvgPool: both pixel indices windowed independently, divided by the window size squared."""
    axes, circular = op.params["axes"], op.params["padding"] == "circular"
    scale = 1.0 / np.prod([a[0] for a in axes]) ** 2

    def pool(x):
        return scale * _shift_sum(x, state.shape, True, axes, circular, joint=False)

    return replace(
        state, nngp=pool(state.nngp), ntk=pool(state.ntk), shape=tuple(a[4] for a in axes)
    )


def global_pool(state, op, ctx):
    """GlobalAvgPool (mean over all pixel pairs) and GlobalSumPool (sum over all pixel pairs)."""
    red = np.mean if op.kind == "gap" else np.sum
    return replace(
        state,
        nngp=red(state.nngp, axis=(-2, -1)),
        ntk=red(state.ntk, axis=(-2, -1)),
        shape=(),
        full=False,
    )


def flatten(state, op, ctx):
    """Flatten: the mean of the pixel diagonal."""
    if not state.shape:
        return state
    if state.full:
        state = to_diagonal(state)
    return replace(
        state, nngp=state.nngp.mean(axis=-1), ntk=state.ntk.mean(axis=-1), shape=(), full=False
    )


def to_diagonal(state):
    """Keep only the pixel diagonal (when no later layer needs the pixel pairs)."""
    if not (state.full and state.shape):
        return state
    diag = np.diagonal
    return replace(
        state,
        nngp=diag(state.nngp, axis1=-2, axis2=-1).copy(),
        ntk=diag(state.ntk, axis1=-2, axis2=-1).copy(),
        full=False,
    )


def fan_in_sum(states, op, ctx):
    """FanInSum: the branches have independent weights, so their kernels add."""
    first = states[0]
    return replace(
        first, nngp=sum(s.nngp for s in states), ntk=sum(s.ntk for s in states)
    )


RULES = {
    "dense": dense,
    "conv": conv,
    "act": activation,
    "layernorm": layernorm,
    "avgpool": avgpool,
    "gap": global_pool,
    "gsp": global_pool,
    "flatten": flatten,
    "identity": lambda state, op, ctx: state,
    "fanout": lambda state, op, ctx: (state,) * op.params["num"],
    "faninsum": fan_in_sum,
}


def _match(state, full):
    if isinstance(state, tuple):
        return tuple(_match(s, full) for s in state)
    return state if full or not state.full else to_diagonal(state)


def apply(node, state, ctx):
    """Run a plan node (serial, parallel or a leaf op) on a state (or a tuple of branch states)."""
    from .plan import ParallelNode, SerialNode

    if isinstance(node, SerialNode):
        for child in node.children:
            state = apply(child, state, ctx)
        return state
    if isinstance(node, ParallelNode):
        return tuple(apply(b, s, ctx) for b, s in zip(node.branches, state, strict=True))
    return RULES[node.kind](_match(state, node.full), node, ctx)
