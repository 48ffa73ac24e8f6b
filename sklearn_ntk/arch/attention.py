r"""The kernel rule of :class:`~sklearn_ntk.layers.GlobalSelfAttention` (infinitely many heads).

neural-tangents' linear-scaling softmax attention: the logits of input :math:`x` are
:math:`\sigma_q\sigma_k\,\Sigma(x_p, x_q)` in the limit, so its attention weights are the
deterministic row-wise softmax :math:`G_x = \mathrm{softmax}(\sigma_w^2 \Sigma_{xx})` of its own
pixel-pair covariance, and for the pair :math:`(x, y)`

.. math::

    \Sigma' = \sigma_w^4 G_x \Sigma G_y^\top + \sigma_b^2, \qquad
    \Theta' = \sigma_w^4 G_x \Theta G_y^\top + \sigma_b^2 + 2 \sigma_w^4 G_x \Sigma G_y^\top

(:math:`\sigma_w^4 = (\sigma_v\sigma_o)^2`; the last term is the gradient with respect to the
value and output weights). The tangents with respect to :math:`\log\sigma_b` and
:math:`\log\sigma_w` are carried through the softmax as well.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

__all__ = ["attention"]


def _softmax_weights(cov, qk, w_free, grad):
    """Row-wise softmax of ``qk * cov[0]`` and its tangents, each ``(K, p, P, P)``."""
    logits = qk * cov[0]
    logits = logits - logits.max(axis=-1, keepdims=True)
    G = np.exp(logits)
    G /= G.sum(axis=-1, keepdims=True)
    out = np.empty_like(cov)
    out[0] = G
    if grad:
        for k in (1, 2):
            ds = qk * cov[k]
            if k == 2 and w_free:
                ds = ds + 2.0 * qk * cov[0]
            out[k] = G * (ds - np.sum(G * ds, axis=-1, keepdims=True))
    return out


def _weigh(x, g1, g2, grad):
    """``G1 x G2^T`` per pair, with product-rule tangents."""
    g2t = np.swapaxes(g2, -1, -2)
    out = np.empty_like(x)
    out[0] = g1[0] @ x[0] @ g2t[0]
    if grad:
        for k in (1, 2):
            out[k] = g1[k] @ x[0] @ g2t[0] + g1[0] @ x[k] @ g2t[0] + g1[0] @ x[0] @ g2t[k]
    return out


def attention(state, op, ctx):
    """GlobalSelfAttention: reweigh both pixel indices by the inputs' softmax attention weights.

    ``ctx.variances(op, state)`` hands in the full pixel-pair self-covariances of the two members
    of every pair, shape ``(K, p, P, P)``.
    """
    w2, b2, w_free, b_free = ctx.stds(op)
    ca, cb = ctx.variances(op, state)
    ga = _softmax_weights(ca, w2, w_free, ctx.grad)
    gb = _softmax_weights(cb, w2, w_free, ctx.grad)
    ws = _weigh(state.nngp, ga, gb, ctx.grad)
    wt = _weigh(state.ntk, ga, gb, ctx.grad)
    ov2 = w2 * w2
    nngp = ov2 * ws
    ntk = ov2 * (wt + 2.0 * ws)
    if w_free:
        nngp[2] += 4.0 * ov2 * ws[0]
        ntk[2] += 4.0 * ov2 * (wt[0] + 2.0 * ws[0])
    nngp[0] += b2
    ntk[0] += b2
    if b_free:
        nngp[1] += 2.0 * b2
        ntk[1] += 2.0 * b2
    return replace(state, nngp=nngp, ntk=ntk)
