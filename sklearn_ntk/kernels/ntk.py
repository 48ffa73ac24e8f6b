"""The analytic Neural Tangent Kernel and NNGP kernel as a scikit-learn ``Kernel``."""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.gaussian_process.kernels import Kernel

from .._validation import all_finite, check_kernel_input, check_memory
from ..activations import get_activation
from ..backends import fused as rec
from ..backends.threads import n_rows, threads_for
from ._common import StdHyperparameters

__all__ = ["NTKKernel"]


def _largest_row_norm(X):
    """The largest Euclidean row norm of ``X``, computed without overflow (finite for finite X)."""
    big = float(np.max(np.abs(X))) if X.size else 0.0
    if big == 0.0:
        return 0.0
    return big * float(np.max(np.linalg.norm(X / big, axis=1)))


def _refuse_overflow(X, act, what):
    raise ValueError(
        f"NTKKernel with activation {act!r}: {what} overflows float64 for inputs with row norms "
        f"up to {_largest_row_norm(X):.3g} (the variance of some layer, a kernel value on the "
        "diagonal, is not representable); rescale the inputs, e.g. with "
        "sklearn.preprocessing.StandardScaler."
    )


class NTKKernel(StdHyperparameters, Kernel):
    r"""Analytic NTK (or NNGP kernel) of an infinitely wide fully-connected network.

    The network is ``x -> [Dense -> phi] x depth -> Dense(readout)`` in the NTK parameterisation:
    every Dense layer computes :math:`z = \frac{\sigma_w}{\sqrt{n_{in}}} W h + \sigma_b b` with
    :math:`W, b \sim \mathcal{N}(0, 1)`. With :math:`d` input features,

    .. math::

        \Sigma^1(x, x') &= \sigma_w^2 \frac{x \cdot x'}{d} + \sigma_b^2, \qquad \Theta^1 = \Sigma^1, \\
        \Sigma^{l+1} &= \sigma_w^2\, \mathbb{E}[\phi(u)\phi(v)] + \sigma_b^2, \qquad
        \dot\Sigma^{l+1} = \sigma_w^2\, \mathbb{E}[\phi'(u)\phi'(v)], \\
        \Theta^{l+1} &= \Sigma^{l+1} + \dot\Sigma^{l+1}\, \Theta^l,

    with :math:`(u, v)` centred Gaussian with covariance
    :math:`\begin{pmatrix}\Sigma^l(x,x) & \Sigma^l(x,x') \\ \Sigma^l(x,x') & \Sigma^l(x',x')\end{pmatrix}`.
    The NNGP kernel is :math:`\Sigma^{L+1}` and the NTK :math:`\Theta^{L+1}` (``L = depth``); the
    numbers are those of neural-tangents' ``stax.serial(*[Dense(., W_std, b_std), phi] * L,
    Dense(1, W_std, b_std))``.

    Parameters
    ----------
    depth : int, default=2
        Number of hidden layers :math:`L`; ``0`` is a single Dense readout (a linear model).
        A plain parameter (grid-searchable as ``kernel__depth``), not a hyperparameter.
    activation : str, Activation or callable, default="relu"
        ``"relu"``, ``"leaky_relu"``, ``"abs"``, ``"erf"``, ``"gelu"``, ``"sin"``, ``"identity"``,
        ``"sign"`` (closed forms), ``"tanh"``, ``"sigmoid"``, ``"silu"`` (numerical Gaussian
        expectations by Hermite series, ~1e-10 relative at any input scale), an :class:`~sklearn_ntk.activations.Activation` such as
        ``LeakyReLU(0.1)``, or a plain elementwise callable.
    weight_std : float, default=1.0
        :math:`\sigma_w > 0`, a hyperparameter.
    bias_std : float, default=0.1
        :math:`\sigma_b \ge 0`, a hyperparameter (fixed automatically when it is 0, since its
        log is undefined).
    kind : {"ntk", "nngp"}, default="ntk"
        Which kernel ``__call__`` returns. :meth:`ntk_and_nngp` returns both in one pass.
    weight_std_bounds, bias_std_bounds : pair of floats >= 0 or "fixed"
        Bounds of the hyperparameters (on the original scale); ``"fixed"`` excludes them from
        ``theta``.

    Notes
    -----
    Gradients (``eval_gradient=True``) are exact derivatives with respect to
    :math:`\log\sigma_b` and :math:`\log\sigma_w` (the order of ``theta``), propagated in forward
    mode through the recursion. ``diag(X)`` costs :math:`O(n (d + L))`.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_ntk import NTKKernel
    >>> X = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> k = NTKKernel(depth=1, activation="relu", weight_std=1.0, bias_std=0.0)
    >>> np.round(k(X), 4)
    array([[0.5   , 0.0796],
           [0.0796, 0.5   ]])
    """

    def __init__(
        self,
        depth=2,
        activation="relu",
        weight_std=1.0,
        bias_std=0.1,
        kind="ntk",
        weight_std_bounds=(1e-1, 1e1),
        bias_std_bounds=(1e-5, 1e2),
    ):
        self.depth = depth
        self.activation = activation
        self.weight_std = weight_std
        self.bias_std = bias_std
        self.kind = kind
        self.weight_std_bounds = weight_std_bounds
        self.bias_std_bounds = bias_std_bounds

    # ------------------------------------------------------------------ hyperparameters
    @property
    def requires_vector_input(self):
        return True

    def __repr__(self):
        act = self.activation
        return (
            f"{type(self).__name__}(depth={self.depth!r}, activation={act!r}, "
            f"{self._stds_repr()}, kind={self.kind!r})"
        )

    # ------------------------------------------------------------------ validation
    def _resolved(self):
        """Validate the parameters; return (activation object, sigma_w^2, sigma_b^2)."""
        depth = self.depth
        if isinstance(depth, bool) or not isinstance(depth, numbers.Integral) or depth < 0:
            raise ValueError(f"depth must be a non-negative integer, got {depth!r}")
        w2, b2 = self._checked_variances()
        return get_activation(self.activation), w2, b2

    # ------------------------------------------------------------------ evaluation
    def _layers(self):
        """Layers of work per entry (a hint for :func:`~sklearn_ntk.backends.threads.threads_for`)."""
        depth = self.depth
        return int(depth) + 1 if isinstance(depth, numbers.Integral) else 1

    def _histories(self, act, w2, b2, X, grad=False, tables=None):
        """Per-row variances of every layer (and the diagonal NTK); refuses what overflows.

        ``tables``: a list that receives the numerical activations' per-layer row tables.
        """
        sq = rec.row_sq_norms(X)
        # a first-layer variance that overflows is refused here: the numerical expectations
        # cannot take an infinite variance (they would warn and blame the activation)
        with np.errstate(over="ignore"):
            first = sq if act._code is not None else w2 * sq
        if not np.all(np.isfinite(first)):
            _refuse_overflow(X, act, "its gradient" if grad else "the kernel")
        with threads_for(sq.shape[0] * self._layers()):
            if act._code is None:
                out = rec.numeric_diag(act, w2, b2, int(self.depth), sq, grad=grad, tables=tables)
            elif grad:
                out = rec._diag_grad(act._code, *act._code_params(), w2, b2, int(self.depth), sq)
            else:
                out = rec._diag_values(act._code, *act._code_params(), w2, b2, int(self.depth), sq)
        for arr in out:
            if not np.all(np.isfinite(arr)):
                _refuse_overflow(X, act, "its gradient" if grad else "the kernel")
        return out

    def _pairs(self, X, Y, only=None):
        """Validated (nngp, ntk) for all pairs; ``Y is None`` means the symmetric k(X).

        With ``only`` ("ntk" or "nngp") just that array is returned (closed forms then hold a
        single n x m array in memory).
        """
        n = n_rows(X)
        with threads_for(n * (n if Y is None else n_rows(Y)) * self._layers()):
            return self._pairs_threads(X, Y, only)

    def _pairs_threads(self, X, Y, only):
        act, w2, b2 = self._resolved()
        X = check_kernel_input(X, "X")
        sym = Y is None
        if not sym:
            Y = check_kernel_input(Y, "Y")
            if Y.shape[1] != X.shape[1]:
                raise ValueError(
                    f"X has {X.shape[1]} features but Y has {Y.shape[1]}; they must match"
                )
        Yv = X if sym else Y
        n, m = X.shape[0], Yv.shape[0]
        need = (1 if only else 2) * 8 * n * m
        if act._code is None:
            need = rec.numeric_pairs_bytes(n, m, int(self.depth))
        check_memory(need, f"NTKKernel on {n} x {m} inputs")
        tables = [] if sym and act._code is None else None
        hx = self._histories(act, w2, b2, X, tables=tables)[0]
        hy = hx if sym else self._histories(act, w2, b2, Yv)[0]
        gram = rec.gram_matrix(X, None if sym else Yv)
        if act._code is not None and only:
            p0, p1 = act._code_params()
            rec._pairs_single(
                act._code, p0, p1, w2, b2, int(self.depth), gram, hx, hy, sym, only == "ntk"
            )
            if sym:
                rec._mirror(gram)
            return gram
        if act._code is not None:
            p0, p1 = act._code_params()
            ntk = np.empty((n, m))
            # the nngp output overwrites the Gram matrix element by element (each read before written)
            rec._pairs_values(
                act._code, p0, p1, w2, b2, int(self.depth), gram, hx, hy, sym, gram, ntk
            )
            if sym:
                rec._mirror(gram)
                rec._mirror(ntk)
            return gram, ntk
        nngp, ntk = rec.numeric_pairs(
            act, w2, b2, int(self.depth), gram, hx, hy, sym, tables=tables
        )
        if only:
            return ntk if only == "ntk" else nngp
        return nngp, ntk

    def ntk_and_nngp(self, X, Y=None):
        """Return ``(ntk, nngp)`` for all pairs of rows of ``X`` and ``Y`` in one pass.

        Parameters
        ----------
        X : array-like of shape (n_samples_X, n_features)
        Y : array-like of shape (n_samples_Y, n_features), default=None
            ``None`` means ``Y = X`` (symmetry is exploited).

        Returns
        -------
        ntk, nngp : ndarray of shape (n_samples_X, n_samples_Y)
            Fresh writable float64 arrays.
        """
        nngp, ntk = self._pairs(X, Y)
        return ntk, nngp

    def __call__(self, X, Y=None, eval_gradient=False):
        """Return the kernel k(X, Y) and optionally its gradient.

        Parameters
        ----------
        X : array-like of shape (n_samples_X, n_features)
        Y : array-like of shape (n_samples_Y, n_features), default=None
            ``None`` evaluates k(X, X).
        eval_gradient : bool, default=False
            Also return the gradient with respect to the log of the free hyperparameters
            (``theta``); only when ``Y is None``.

        Returns
        -------
        K : ndarray of shape (n_samples_X, n_samples_Y)
        K_gradient : ndarray of shape (n_samples_X, n_samples_X, n_dims), optional
        """
        if not eval_gradient:
            return self._pairs(X, Y, only=self.kind)
        if Y is not None:
            raise ValueError("Gradient can only be evaluated when Y is None.")
        with threads_for(3 * n_rows(X) ** 2 * self._layers()):
            return self._gradient(X)

    def _gradient(self, X):
        """``(K, dK)`` of ``__call__(X, eval_gradient=True)``."""
        act, w2, b2 = self._resolved()
        X = check_kernel_input(X, "X")
        n = X.shape[0]
        need = 4 * 8 * n * n
        if act._code is None:
            need = rec.numeric_pairs_bytes(n, n, int(self.depth), grad=True)
        check_memory(need, f"NTKKernel gradient on {n} inputs")
        tables = [] if act._code is None else None
        hx, dhx, _, _ = self._histories(act, w2, b2, X, grad=True, tables=tables)
        gram = rec.gram_matrix(X)
        want_ntk = self.kind == "ntk"
        if act._code is not None:
            p0, p1 = act._code_params()
            K = np.empty((n, n))
            dK = np.empty((n, n, 2))
            rec._pairs_grad(
                act._code, p0, p1, w2, b2, int(self.depth), gram, hx, dhx, want_ntk, K, dK
            )
            rec._mirror(K)
            rec._mirror(dK)
        else:
            nngp, ntk, dnngp, dntk = rec.numeric_pairs(
                act, w2, b2, int(self.depth), gram, hx, hx, True, grad=True, dhx=dhx, tables=tables
            )
            K, dK = (ntk, dntk) if want_ntk else (nngp, dnngp)
        if not (all_finite(K) and all_finite(dK)):  # no n x n boolean temporaries
            _refuse_overflow(X, act, "its gradient")
        free = self._free_mask()
        if all(free):
            return K, dK
        return K, np.ascontiguousarray(dK[:, :, free])

    def diag(self, X):
        """Diagonal k(x, x) for each row, in :math:`O(n (d + L))` time and memory.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        act, w2, b2 = self._resolved()
        X = check_kernel_input(X, "X")
        hist, ntk = self._histories(act, w2, b2, X)
        return ntk if self.kind == "ntk" else hist[-1].copy()

    def diag_ntk_and_nngp(self, X):
        """Return ``(ntk_diag, nngp_diag)`` in :math:`O(n (d + L))`."""
        act, w2, b2 = self._resolved()
        X = check_kernel_input(X, "X")
        hist, ntk = self._histories(act, w2, b2, X)
        return ntk, hist[-1].copy()
