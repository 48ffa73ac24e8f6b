"""``NetworkKernel``: the NTK / NNGP kernel of any architecture built from :mod:`sklearn_ntk.layers`."""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.gaussian_process.kernels import Kernel

from .. import layers as nl
from .._validation import check_kernel_input, check_memory
from ..arch.plan import GRAPH_SHAPE, compile_network
from ..backends import conv, reference
from ..backends.threads import threads_for
from ..graphs import is_graph_input
from ._common import StdHyperparameters
from .graph import graph_diag, graph_pairs, uses_graphs
from .ntk import NTKKernel

__all__ = ["NetworkKernel"]


class NetworkKernel(StdHyperparameters, Kernel):
    r"""Analytic NTK (or NNGP kernel) of an infinitely wide network given as a list of layers.

    The layers are those of :mod:`sklearn_ntk.layers` (neural-tangents' ``stax`` vocabulary):
    ``Dense``, ``Conv``, ``AvgPool``, ``GlobalAvgPool``, ``GlobalSumPool``, ``Flatten``,
    ``LayerNorm``, ``FanOut``/``parallel``/``FanInSum`` (``Residual``), ``GlobalSelfAttention``,
    ``Aggregate`` (graph inputs), ``serial`` and every activation :class:`~sklearn_ntk.NTKKernel`
    accepts. The numbers are those of
    ``neural_tangents.stax.serial(...)`` with the same layers and ``W_std``/``b_std`` on every
    Dense/Conv layer (NTK parameterisation). See :ref:`architectures`.

    Parameters
    ----------
    layers : list or Serial
        The whole network including its readout, e.g.
        ``[Conv((3, 3)), "relu", GlobalAvgPool(), Dense()]``. Entries may be ``(name, layer)``
        pairs; a named layer's parameters are reachable as ``layers__<name>__<parameter>``
        (e.g. in a grid search: ``kernel__layers__conv1__filter_shape``).
    input_shape : tuple of int or None, default=None
        Shape of one sample, channels last: ``(H, W, C)`` images, ``(T, C)`` sequences. ``X``
        stays 2-D ``(n, prod(input_shape))`` with rows flattened in C order. ``None`` means
        ``(n_features,)`` (no spatial axes). Networks with ``Aggregate`` layers take graphs
        instead: ``X`` a sequence of ``(adjacency, node_features)`` pairs and ``input_shape=None``
        (see :ref:`graph-networks`).
    weight_std : float, default=1.0
        :math:`\sigma_w > 0` of every Dense/Conv layer whose own ``weight_std`` is None; a
        hyperparameter.
    bias_std : float, default=0.1
        :math:`\sigma_b \ge 0`, likewise (fixed automatically when 0).
    kind : {"ntk", "nngp"}, default="ntk"
        Which kernel ``__call__`` returns.
    weight_std_bounds, bias_std_bounds : pair of floats >= 0 or "fixed"
        Bounds of the hyperparameters.

    Notes
    -----
    Gradients (``eval_gradient=True``) are exact derivatives with respect to
    :math:`\log\sigma_b` and :math:`\log\sigma_w`, propagated in forward mode through every layer.
    ``diag(X)`` pushes each sample through the network once, at the cost of one kernel entry per
    sample. Networks with pooling carry every pixel pair (:math:`O(P^2)` per pair of samples),
    networks whose spatial layers end in ``Flatten`` only the pixel diagonal (:math:`O(P)`).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_ntk import NetworkKernel, layers as nl
    >>> k = NetworkKernel([nl.Conv((3,), padding="circular"), "relu", nl.GlobalAvgPool(),
    ...                    nl.Dense()], input_shape=(4, 1))
    >>> X = np.array([[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]])
    >>> K = k(X)
    >>> bool(np.isclose(K[0, 1], K[1, 0])), bool(np.isclose(K[0, 0], K[1, 1]))
    (True, True)
    """

    def __init__(
        self,
        layers,
        input_shape=None,
        weight_std=1.0,
        bias_std=0.1,
        kind="ntk",
        weight_std_bounds=(1e-2, 1e2),
        bias_std_bounds=(1e-5, 1e2),
    ):
        self.layers = layers
        self.input_shape = input_shape
        self.weight_std = weight_std
        self.bias_std = bias_std
        self.kind = kind
        self.weight_std_bounds = weight_std_bounds
        self.bias_std_bounds = bias_std_bounds

    # ------------------------------------------------------------------ parameters
    def get_params(self, deep=True):
        """Parameters; with ``deep=True`` also ``layers__<name>[__<param>]`` of named layers."""
        params = super().get_params(deep=False)
        if deep:
            params.update(nl.nested_params("layers", params["layers"]))
        return params

    def set_params(self, **params):
        """Set parameters; ``layers__<name>__<param>`` sets a parameter of a named layer."""
        nested = {k: v for k, v in params.items() if k.startswith("layers__")}
        for key, value in nested.items():
            self.layers = nl.set_nested(self.layers, key[len("layers__") :], value)
        plain = {k: v for k, v in params.items() if k not in nested}
        return super().set_params(**plain) if plain else self

    @property
    def requires_vector_input(self):
        """False for graph networks (X a sequence of graphs, as for ``GenericKernelMixin``)."""
        return not uses_graphs(self.layers)

    def __repr__(self):
        shape = "" if self.input_shape is None else f", input_shape={self.input_shape!r}"
        return (
            f"{type(self).__name__}({self.layers!r}{shape}, {self._stds_repr()}, "
            f"kind={self.kind!r})"
        )

    # ------------------------------------------------------------------ validation
    def _resolved(self, n_features, graph=False):
        """Validate everything; return (plan, sigma_w^2, sigma_b^2).

        ``graph``: the inputs are graphs with ``n_features`` node features."""
        w2, b2 = self._checked_variances()
        shape = GRAPH_SHAPE + (n_features,) if graph else self._input_shape(n_features)
        return compile_network(self.layers, shape), w2, b2

    def _input_shape(self, n_features):
        shape = self.input_shape
        if shape is None:
            return (n_features,)
        if isinstance(shape, numbers.Integral) and not isinstance(shape, bool):
            shape = (shape,)
        if (
            not isinstance(shape, (tuple, list))
            or not shape
            or any(isinstance(s, bool) or not isinstance(s, numbers.Integral) or s < 1 for s in shape)
        ):
            raise ValueError(f"input_shape must be a tuple of positive integers, got {shape!r}")
        shape = tuple(int(s) for s in shape)
        if int(np.prod(shape)) != n_features:
            raise ValueError(
                f"input_shape {shape} holds {int(np.prod(shape))} values per sample but X has "
                f"{n_features} features; X must be (n_samples, prod(input_shape)), channels last"
            )
        return shape

    def _fully_connected(self, plan):
        """The equivalent :class:`NTKKernel` when the network is ``[Dense, phi] * L + [Dense]``
        with one activation and the kernel's std's everywhere (its fused path is the fastest)."""
        ops = plan.ops
        if plan.spatial or len(ops) % 2 != 1:
            return None
        dense, acts = ops[0::2], ops[1::2]
        if any(op.kind != "dense" or op.params["w2"] is not None or op.params["b2"] is not None
               for op in dense):
            return None
        if any(op.kind != "act" or op.params["act"] != acts[0].params["act"] for op in acts):
            return None
        return NTKKernel(
            depth=len(acts),
            activation=acts[0].params["spec"] if acts else "relu",
            weight_std=self.weight_std,
            bias_std=self.bias_std,
            kind=self.kind,
            weight_std_bounds=self.weight_std_bounds,
            bias_std_bounds=self.bias_std_bounds,
        )

    def _inputs(self, X, Y):
        X = check_kernel_input(X, "X")
        if Y is not None:
            Y = check_kernel_input(Y, "Y")
            if Y.shape[1] != X.shape[1]:
                raise ValueError(f"X has {X.shape[1]} features but Y has {Y.shape[1]}; they must match")
        return X, Y

    # ------------------------------------------------------------------ evaluation
    def _pairs(self, X, Y, grad=False):
        if not self.requires_vector_input or is_graph_input(X):
            return graph_pairs(self, X, Y, grad=grad)
        X, Y = self._inputs(X, Y)
        n = X.shape[0]
        m = n if Y is None else Y.shape[0]
        with threads_for(n * m * X.shape[1] * (3 if grad else 1)):
            return self._vector_pairs(X, Y, n, m, grad)

    def _vector_pairs(self, X, Y, n, m, grad):
        plan, w2, b2 = self._resolved(X.shape[1])
        k = 3 if grad else 1
        what = f"NetworkKernel on {n} x {m} inputs"
        fc = self._fully_connected(plan)
        if fc is not None and not grad:
            check_memory(2 * 8 * n * m, what)
            ntk, nngp = fc.ntk_and_nngp(X, Y)
            return nngp[None], ntk[None]
        tables = conv.encode(plan, w2, b2)
        if tables is None:
            pairs = n * (n + 1) // 2 if Y is None else n * m
            check_memory(2 * k * 8 * n * m + reference.working_bytes(plan, k, max(pairs, n, m)), what)
            return reference.kernel_matrices(plan, X, Y, w2, b2, grad=grad)
        check_memory(2 * k * 8 * n * m + conv.working_bytes(plan, tables, k), what)
        return conv.pairs(plan, tables, X, Y, grad=grad)  # a convolutional chain: compiled

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
        """
        nngp, ntk = self._pairs(X, Y)
        return ntk[0], nngp[0]

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
        if eval_gradient and Y is not None:
            raise ValueError("Gradient can only be evaluated when Y is None.")
        if eval_gradient and self.requires_vector_input and not is_graph_input(X):
            X, _ = self._inputs(X, None)
            fc = self._fully_connected(self._resolved(X.shape[1])[0])
            if fc is not None:
                return fc(X, eval_gradient=True)
        nngp, ntk = self._pairs(X, Y, grad=eval_gradient)
        out = ntk if self.kind == "ntk" else nngp
        if not eval_gradient:
            return out[0]
        free = np.flatnonzero(self._free_mask()) + 1
        return out[0], np.ascontiguousarray(np.moveaxis(out[free], 0, -1))

    def diag_ntk_and_nngp(self, X):
        """Return ``(ntk_diag, nngp_diag)``, one network pass per sample."""
        if not self.requires_vector_input or is_graph_input(X):
            return graph_diag(self, X)
        X, _ = self._inputs(X, None)
        plan, w2, b2 = self._resolved(X.shape[1])
        fc = self._fully_connected(plan)
        if fc is not None:
            return fc.diag_ntk_and_nngp(X)
        tables = conv.encode(plan, w2, b2)
        if tables is not None:
            nngp, ntk, _ = conv.self_pass(plan, tables, X)
            return ntk[0], nngp[0]
        nngp, ntk = reference.diag_kernels(plan, X, w2, b2)
        return ntk[0].copy(), nngp[0].copy()

    def diag(self, X):
        """Diagonal k(x, x) for each row, one network pass per sample.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        ntk, nngp = self.diag_ntk_and_nngp(X)
        return ntk if self.kind == "ntk" else nngp
