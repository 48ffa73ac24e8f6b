r"""Exact dynamics of the rank-``m`` Nyström kernel, from its ``m x m`` reductions.

With features :math:`\varphi(x) = K(x, C)\,N` (:mod:`sklearn_ntk.linalg.nystrom`),
:math:`\Phi` the train features, :math:`G = \Phi^\top W\Phi` and :math:`B = \Phi^\top W Y`, the
push-through identity :math:`\Phi^\top D\,h(D\Phi\Phi^\top D + \alpha I)\,D = h(G + \alpha I)\,
\Phi^\top W` turns every ``n x n`` formula of :mod:`sklearn_ntk.dynamics` into an ``m x m`` one:

.. math::

    f_t(x) = \varphi(x)\, h_t(G + \alpha I)\, B.
"""

from __future__ import annotations

import numpy as np

from ..linalg.dense import eigh_psd
from ..linalg.filters import filter_table, null_threshold
from .common import check_common, times_arg, warn_singular, warn_unstable
from .covariance import combine_covariance

__all__ = ["NystromDynamics", "KernelPair"]


class KernelPair:
    """Picklable ``(X, Y) -> (dynamics kernel, NNGP kernel or None)`` through public kernel API.

    Parameters
    ----------
    kernel : sklearn Kernel
    kind : {"ntk", "nngp"}
        Which of the pair drives the dynamics (when the kernel has ``ntk_and_nngp``).
    need_nngp : bool
        Whether the NNGP kernel is also wanted.
    nngp_kernel : sklearn Kernel or None
        Gives the NNGP kernel when ``kernel`` has no ``ntk_and_nngp`` (e.g.
        ``ConstantKernel() * NTKKernel()``: the same product with ``kind="nngp"``); ``None``
        uses ``kernel`` itself as both.
    """

    def __init__(self, kernel, kind="ntk", need_nngp=False, nngp_kernel=None):
        self.kernel, self.kind, self.need_nngp = kernel, kind, need_nngp
        self.nngp_kernel = nngp_kernel

    def __call__(self, X, Y=None):
        k = self.kernel
        # a kernel that already is the dynamics kernel (its own ``kind``) is evaluated alone
        own = not self.need_nngp and getattr(k, "kind", None) == self.kind
        if hasattr(k, "ntk_and_nngp") and (self.need_nngp or self.kind == "nngp") and not own:
            ntk, nngp = k.ntk_and_nngp(X, Y)
            dyn = nngp if self.kind == "nngp" else ntk
            nngp = nngp if self.need_nngp else None
        else:
            dyn = k(X, Y)
            nngp = None
            if self.need_nngp:
                nngp = dyn if self.nngp_kernel is None else self.nngp_kernel(X, Y)
        dyn = np.asarray(dyn, dtype=np.float64)
        if not np.isfinite(dyn).all() or (nngp is not None and not np.isfinite(nngp).all()):
            raise ValueError(f"the kernel {k!r} produced NaN or infinite values")
        return dyn, (None if nngp is None else np.asarray(nngp, dtype=np.float64))


class NystromDynamics:
    r"""Training dynamics of the Nyström kernel in its ``r``-dimensional feature space.

    Parameters
    ----------
    sums : NystromSums
        Reductions over the training rows (:func:`sklearn_ntk.linalg.nystrom.accumulate_block`).
    n_samples, n_outputs : int
        ``n`` (for the round-off threshold) and ``k``.
    learning_rate, alpha, kind, dynamics
        As in :class:`~sklearn_ntk.dynamics.KernelDynamics`; the time scale is
        :math:`\eta t/(k\sum_i w_i)`.
    """

    def __init__(self, sums, n_samples, n_outputs, *, learning_rate=1.0, alpha=0.0,
                 kind="ntk", dynamics="flow"):
        self.learning_rate, self.alpha = check_common(learning_rate, alpha, kind, dynamics)
        self.kind, self.dynamics = kind, dynamics
        self.sums = sums
        self.n_samples, self.n_outputs = int(n_samples), int(n_outputs)
        self.weight = float(sums.weight)
        self.scale = self.learning_rate / (self.weight * self.n_outputs)
        mu, U = eigh_psd(sums.gram)
        self.evals, self.evecs = mu + self.alpha, U  # of G + alpha I
        self._proj = U.T @ sums.proj  # B in the eigenbasis
        lam_max = self.evals[-1] if len(self.evals) else self.alpha
        self.tol = null_threshold(lam_max, self.n_samples)
        if dynamics == "gd":
            warn_unstable(self.learning_rate, float(lam_max), self.scale, self.weight,
                          self.n_outputs)

    def _filters(self, times, doubled=False):
        tt = times * 2.0 if doubled else times
        if np.isinf(tt).any() and (self.evals <= self.tol).any():
            warn_singular()
        return filter_table(self.evals, tt, self.scale, self.dynamics, self.tol)

    def coef(self, t):
        r"""Feature-space coefficients :math:`c_t = h_t(G + \alpha I)\,B`: (r, k) or (T, r, k)."""
        scalar, times = times_arg(t)
        H = self._filters(times)  # (T, r)
        out = np.einsum("rj,tj,jk->trk", self.evecs, H, self._proj)
        return out[0] if scalar else out

    def training_loss(self, t):
        r"""Weighted training loss :math:`\frac{1}{2k\sum w}\sum_i w_i\lVert f_t(x_i)-y_i\rVert^2`."""
        scalar, times = times_arg(t)
        H = self._filters(times)
        mu = self.evals - self.alpha
        P2 = (self._proj**2).sum(axis=1)  # (r,)
        fit = ((mu * H**2 - 2.0 * H) * P2).sum(axis=1)
        loss = np.maximum(self.sums.yy + fit, 0.0) / (2.0 * self.weight * self.n_outputs)
        return float(loss[0]) if scalar else loss

    def covariance(self, t, feat_test, nngp_feat_test, prior, *, diag=False):
        r"""Covariance over initialisations at time(s) ``t``.

        Parameters
        ----------
        t : float or array_like of shape (T,)
        feat_test : ndarray of shape (m, r)
            Dynamics-kernel features :math:`\varphi(x)` of the test points.
        nngp_feat_test : ndarray of shape (m, r_K) or None
            NNGP features :math:`\psi(x)` (``kind="ntk"``).
        prior : ndarray of shape (m, m), or (m,) when ``diag``
            The exact NNGP prior :math:`K(x, x')` (or its diagonal).
        diag : bool, default=False
        """
        scalar, times = times_arg(t)
        out = np.empty((len(times),) + prior.shape)
        B = feat_test @ self.evecs
        if self.kind == "nngp":
            mu = self.evals - self.alpha
            for i, h in enumerate(self._filters(times, doubled=True)):
                combine_covariance(prior, None, None, diag=diag, nngp_filter=h * mu, B=B,
                                   out=out[i])
        else:
            cross_e = self.evecs.T @ self.sums.cross  # (r, r_K)
            crossK = cross_e @ cross_e.T
            C = nngp_feat_test @ cross_e.T  # psi(x) (Phi^T W Psi)^T in the eigenbasis
            for i, h in enumerate(self._filters(times)):
                A = B * h
                combine_covariance(prior, A, C, A @ crossK, diag=diag, out=out[i])
        return out[0] if scalar else out
