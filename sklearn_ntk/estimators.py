r"""Closed-form predictions of infinitely wide networks trained by gradient descent.

Three scikit-learn estimators share one dynamics solver (:mod:`sklearn_ntk._dynamics`):

* :class:`NTKRegressor` -- the mean prediction after ``t`` steps of gradient descent on the
  squared loss (kernel ridge regression at ``t = inf``);
* :class:`NTKGaussianProcess` -- mean *and* covariance over random initialisations of the
  infinite ensemble (``kind="ntk"``: all layers trained; ``kind="nngp"``: only the readout);
* :class:`NTKClassifier` -- the same dynamics on one-hot targets.

Conventions (see ``DESIGN.md`` §2): loss :math:`\frac{1}{2nk}\sum_{ij}(f_j(x_i) - y_{ij})^2`,
learning rate :math:`\eta`, time ``t`` in steps, :math:`\tilde\Theta = \Theta(X, X) + \alpha I`,

.. math::

    \mu_t(x) = \Theta(x, X)\,\tilde\Theta^{-1}\,\big(I - e^{-\eta t \tilde\Theta/(nk)}\big)\,y.

Kernel matrices and their factorisations are kept in a small process-wide cache, bounded in
bytes (:func:`set_cache_size`), keyed on the *content* of ``X`` and the exact kernel
parameters, so that model selection over ``t``, ``alpha`` and ``learning_rate`` (e.g.
``GridSearchCV``) computes each kernel and factorisation once per fold.
"""

from __future__ import annotations

import hashlib
import pickle
import threading
from collections import OrderedDict
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, clone
from sklearn.gaussian_process.kernels import Kernel
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from ._argmax_proba import argmax_log_proba, argmax_proba
from ._dynamics import KernelDynamics, _check_times
from .graphs import graph_array, graph_key

__all__ = [
    "NTKRegressor",
    "NTKGaussianProcess",
    "NTKClassifier",
    "set_cache_size",
    "clear_cache",
]

# Lanczos is used for a single finite-time mean when there are at least this many samples and
# no eigendecomposition is cached (below it, eigh is fast and reusable).
_KRYLOV_MIN_SAMPLES = 3000


# ============================================================================================
# bounded kernel / factorisation cache
# ============================================================================================
class _ArrayCache:
    """Thread-safe LRU cache of read-only numpy arrays, bounded by total bytes."""

    def __init__(self, max_bytes):
        self.max_bytes = int(max_bytes)
        self._data = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @staticmethod
    def _size(value):
        unique = {id(a): a for a in value if isinstance(a, np.ndarray)}
        return sum(a.nbytes for a in unique.values())

    def get(self, key):
        if key is None:
            return None
        with self._lock:
            value = self._data.get(key)
            if value is None:
                self.misses += 1
                return None
            self._data.move_to_end(key)
            self.hits += 1
            return value

    def put(self, key, value):
        """Store a tuple of arrays (made read-only); returns ``value``."""
        if key is None:
            return value
        for a in value:
            if isinstance(a, np.ndarray):
                a.flags.writeable = False
        size = self._size(value)
        if size > self.max_bytes:
            return value
        with self._lock:
            if key in self._data:
                self._bytes -= self._size(self._data.pop(key))
            self._data[key] = value
            self._bytes += size
            while self._bytes > self.max_bytes and self._data:
                _, old = self._data.popitem(last=False)
                self._bytes -= self._size(old)
        return value

    def clear(self):
        with self._lock:
            self._data.clear()
            self._bytes = 0
            self.hits = self.misses = 0

    def resize(self, max_bytes):
        with self._lock:
            self.max_bytes = int(max_bytes)
            while self._bytes > self.max_bytes and self._data:
                _, old = self._data.popitem(last=False)
                self._bytes -= self._size(old)


_CACHE = _ArrayCache(512 * 2**20)


def set_cache_size(max_bytes):
    """Set the memory bound (bytes) of the process-wide kernel cache; ``0`` disables it.

    The default bound is 512 MiB. Least recently used entries are evicted first.

    Parameters
    ----------
    max_bytes : int
        Upper bound on the total size of cached kernel matrices and factorisations.
    """
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, Integral) or max_bytes < 0:
        raise ValueError(f"max_bytes must be a non-negative integer, got {max_bytes!r}")
    _CACHE.resize(max_bytes)


def clear_cache():
    """Empty the process-wide kernel cache."""
    _CACHE.clear()


def _array_key(X):
    if isinstance(X, np.ndarray) and X.dtype == object:  # graphs
        return graph_key(X)
    X = np.ascontiguousarray(X)
    h = hashlib.blake2b(digest_size=20)
    h.update(str((X.shape, X.dtype.str)).encode())
    h.update(memoryview(X).cast("B"))
    return h.hexdigest()


def _freeze(value):
    """Hashable exact representation of a kernel parameter value, or raise TypeError."""
    if value is None or isinstance(value, (bool, str, Integral)):
        return value
    if isinstance(value, Real):
        return ("float", float(value).hex())
    if isinstance(value, np.ndarray):
        return ("array", _array_key(value))
    if isinstance(value, (tuple, list)):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, Kernel):
        return ("kernel", type(value).__module__, type(value).__qualname__)
    # other objects (activation objects, ...): by their pickled state
    return ("pickle", hashlib.blake2b(pickle.dumps(value), digest_size=20).hexdigest())


def _kernel_key(kernel):
    """Exact key of a kernel's type and parameters, or ``None`` if it cannot be formed."""
    try:
        params = kernel.get_params(deep=True)
        items = tuple(sorted((k, _freeze(v)) for k, v in params.items()))
    except Exception:  # unpicklable callables etc.: no caching
        return None
    return (type(kernel).__module__, type(kernel).__qualname__, items)


# ============================================================================================
# shared machinery
# ============================================================================================
def _validate(est, X, *args, **kwargs):
    """``validate_data``; for kernels on graphs (``requires_vector_input`` False) ``X`` becomes
    the 1-D object array of :func:`~sklearn_ntk.graphs.graph_array` and is not made numeric."""
    kernel = est.kernel
    if kernel is None or getattr(kernel, "requires_vector_input", True):
        return validate_data(est, X, *args, **kwargs)
    kwargs.update(dtype=None, ensure_2d=False, ensure_all_finite=False)
    return validate_data(est, graph_array(X), *args, **kwargs)


def _default_kernel():
    from .kernels import NTKKernel  # lazy: the estimators import without the kernel module

    return NTKKernel()


def _kernel_kind(kernel):
    """The ensemble kind ("ntk" or "nngp") a kernel declares through its (nested) ``kind``.

    ``None`` when the kernel declares none (any other kernel), or declares both (a sum of an
    NTK and an NNGP kernel).
    """
    try:
        params = kernel.get_params(deep=True)
    except Exception:  # not a scikit-learn kernel: validated elsewhere
        return None
    kinds = {value for key, value in params.items()
             if (key == "kind" or key.endswith("__kind")) and value in ("ntk", "nngp")}
    return kinds.pop() if len(kinds) == 1 else None


def _check_real(value, name, *, positive=False, allow_inf=False):
    if isinstance(value, bool) or not isinstance(value, (Real, np.number)):
        raise TypeError(f"{name} must be a real number, got {value!r} ({type(value).__name__})")
    v = float(value)
    if np.isnan(v):
        raise ValueError(f"{name} must not be NaN")
    if not allow_inf and np.isinf(v):
        raise ValueError(f"{name} must be finite, got {v}")
    if positive and not v > 0:
        raise ValueError(f"{name} must be > 0, got {v}")
    if not positive and v < 0:
        raise ValueError(f"{name} must be >= 0, got {v}")
    return v


class _NTKBase(BaseEstimator):
    """Parameters, validation, kernels and the solver shared by the three estimators."""

    #: whether the NNGP kernel is needed besides the dynamics kernel (covariances)
    _needs_nngp = False

    def __init__(self, kernel=None, t=np.inf, learning_rate=1.0, alpha=0.0, *,
                 dynamics="flow", solver="auto", cache=True):
        self.kernel = kernel
        self.t = t
        self.learning_rate = learning_rate
        self.alpha = alpha
        self.dynamics = dynamics
        self.solver = solver
        self.cache = cache

    def set_params(self, **params):
        """Set parameters; ``kernel__<name>`` also works while ``kernel`` is ``None``.

        ``kernel=None`` stands for ``NTKKernel()``, so nested kernel parameters (for example
        ``kernel__depth`` in a grid search) are applied to a fresh default ``NTKKernel``.
        """
        nested = any(key.startswith("kernel__") for key in params)
        if nested and self.kernel is None and params.get("kernel") is None:
            params.pop("kernel", None)
            self.kernel = self._new_default_kernel(params)
        return super().set_params(**params)

    def _new_default_kernel(self, params=None):
        """The kernel that ``kernel=None`` stands for (``params``: pending ``set_params``)."""
        return _default_kernel()

    # ---------------------------------------------------------------- validation
    def _check_params(self):
        if self.kernel is not None and not isinstance(self.kernel, Kernel):
            raise TypeError(
                "kernel must be None (the default NTKKernel()) or a "
                "sklearn.gaussian_process.kernels.Kernel instance, got "
                f"{type(self.kernel).__name__}"
            )
        self._t = _check_real(self.t, "t", allow_inf=True)
        self._lr = _check_real(self.learning_rate, "learning_rate", positive=True)
        self._alpha = _check_real(self.alpha, "alpha")
        if self.dynamics not in ("flow", "gd"):
            raise ValueError(f"dynamics must be 'flow' or 'gd', got {self.dynamics!r}")
        if self.solver not in ("auto", "eigh", "krylov"):
            raise ValueError(f"solver must be 'auto', 'eigh' or 'krylov', got {self.solver!r}")
        if not isinstance(self.cache, (bool, np.bool_)):
            raise TypeError(f"cache must be True or False, got {self.cache!r}")

    def _ensemble_kind(self):
        """Which ensemble the dynamics kernel belongs to: the kernel's declared ``kind``."""
        return _kernel_kind(self.kernel_) or "ntk"

    # ---------------------------------------------------------------- kernels (cached)
    def _use_pair(self, nngp=None):
        nngp = self._needs_nngp if nngp is None else nngp
        return nngp and hasattr(self.kernel_, "ntk_and_nngp")

    def _kernels(self, X, Y=None, *, nngp=None):
        """``(dynamics_kernel, nngp_kernel_or_None)`` between X and Y (Y=None: X), cached.

        ``nngp``: whether the NNGP kernel is wanted (default: the estimator's ``_needs_nngp``).
        """
        kernel = self.kernel_
        want_nngp = self._needs_nngp if nngp is None else nngp
        pair = self._use_pair(want_nngp)
        kind = self._ensemble_kind()
        key = None
        if self.cache and self._kernel_key_ is not None and _CACHE.max_bytes > 0:
            key = ("K", self._kernel_key_, pair, kind, want_nngp, _array_key(X),
                   None if Y is None else self._X_key_)
        hit = _CACHE.get(key)
        if hit is not None:
            return hit[0], (hit[1] if want_nngp else None)
        if pair:
            ntk, nngp = kernel.ntk_and_nngp(X, Y)
            nngp = np.asarray(nngp, dtype=np.float64)
            dyn = nngp if kind == "nngp" else np.asarray(ntk, dtype=np.float64)
        else:
            dyn = np.asarray(kernel(X, Y), dtype=np.float64)
            nngp = dyn if want_nngp else None
        if not np.isfinite(dyn).all() or (nngp is not None and not np.isfinite(nngp).all()):
            raise ValueError(f"the kernel {kernel!r} produced NaN or infinite values")
        _CACHE.put(key, (dyn, dyn if nngp is None else nngp))
        return dyn, nngp

    def _nngp_kernel(self):
        """The kernel object whose ``__call__``/``diag`` give the NNGP (prior covariance)."""
        kernel = self.kernel_
        if hasattr(kernel, "ntk_and_nngp") and "kind" in kernel.get_params(deep=False):
            return clone(kernel).set_params(kind="nngp")
        return kernel

    # ---------------------------------------------------------------- fit core
    def _fit_dynamics(self, X, Y):
        """Validate params, store the training data, build the solver and the dual coefs."""
        self._check_params()
        self.kernel_ = self._new_default_kernel() if self.kernel is None else clone(self.kernel)
        self._kernel_key_ = _kernel_key(self.kernel_) if self.cache else None
        self.X_fit_ = X.copy() if X.dtype == object else np.array(X, dtype=np.float64, copy=True)
        self._X_key_ = _array_key(self.X_fit_) if self.cache else None
        dyn, nngp = self._kernels(self.X_fit_)
        self._solver = KernelDynamics(
            dyn, Y, learning_rate=self._lr, alpha=self._alpha, nngp_train=nngp,
            kind=self._ensemble_kind(), dynamics=self.dynamics, check_input=False,
        )
        self._W = self._dual_coef(self._t)
        return self

    def _fact_key(self, what):
        """Cache key of a factorisation; the eigendecomposition does not depend on alpha."""
        if not self.cache or self._kernel_key_ is None or _CACHE.max_bytes == 0:
            return None
        key = (what, self._kernel_key_, self._use_pair(), self._ensemble_kind(), self._X_key_)
        return key if what == "eigh" else key + (float(self._alpha).hex(),)

    def _cached_eigh_available(self):
        key = self._fact_key("eigh")
        return key is not None and _CACHE.get(key) is not None

    def _ensure_eigh(self):
        s = self._solver
        if s._eig is None:
            key = self._fact_key("eigh")
            hit = _CACHE.get(key)
            if hit is not None:
                s.set_eigh(*hit)
            else:
                _CACHE.put(key, s.eigh_unregularised())
        return s.eigh()

    def _ensure_cholesky(self):
        s = self._solver
        if s._chol is None:
            key = self._fact_key("chol")
            hit = _CACHE.get(key)
            if hit is not None:
                s.set_cholesky((hit[0], True, False))
            else:
                c, _, singular = s.cholesky()
                if not singular:
                    _CACHE.put(key, (c,))
        return s.cholesky()

    def _dual_coef(self, t):
        """Dual coefficients (n, k) at one time, choosing the cheapest valid factorisation."""
        s = self._solver
        have_eigh = s._eig is not None or self._cached_eigh_available()
        if self.solver == "eigh" or have_eigh:
            self._ensure_eigh()
            return s.dual_coef(t)
        if np.isinf(t):
            self._ensure_cholesky()
            return s.dual_coef(t)
        if self.solver == "krylov" or s.n_samples >= _KRYLOV_MIN_SAMPLES:
            return s.dual_coef(t, method="krylov")  # falls back to eigh if not converged
        self._ensure_eigh()
        return s.dual_coef(t)

    def _ensemble_cov(self, X, dyn_td, nngp_td, *, diag):
        """Covariance (or variance) over initialisations at the fitted ``t``, for every output."""
        s = self._solver
        if np.isinf(self._t) and s._eig is None and not self._cached_eigh_available():
            self._ensure_cholesky()  # t = inf: the covariance needs no eigendecomposition
        else:
            self._ensure_eigh()
        prior = self._nngp_kernel()
        return s.covariance(self._t, dyn_td, prior.diag(X) if diag else prior(X), nngp_td,
                            diag=diag)

    def _validate_predict_X(self, X):
        check_is_fitted(self)
        return _validate(self, X, reset=False, dtype=np.float64, ensure_all_finite=True)

    def __sklearn_is_fitted__(self):
        return hasattr(self, "_solver")

    def _staged_means(self, X, times):
        """(T, m, k) means at several times."""
        X = self._validate_predict_X(X)
        times = np.atleast_1d(_check_times(times, "times")).ravel()
        dyn_td, _ = self._kernels(X, self.X_fit_)
        if np.isfinite(times).any() or self._solver._eig is not None:
            self._ensure_eigh()
        else:
            self._ensure_cholesky()
        return np.matmul(dyn_td, self._solver.dual_coef(times))

    @property
    def train_spectrum_(self):
        r"""Eigenvalues of :math:`\Theta(X, X) + \alpha I`, ascending (computed on first access)."""
        check_is_fitted(self)
        return self._ensure_eigh()[0].copy()

    def training_loss(self, t=None):
        r"""Training loss :math:`\frac{1}{2nk}\lVert\mu_t(X) - Y\rVert^2` at time(s) ``t``.

        ``Y`` is the training target as used by the dynamics (one-hot for the classifier).

        Parameters
        ----------
        t : float or array-like of shape (n_times,), default=None
            Time(s) in steps; ``None`` means the estimator's ``t``. Each time costs
            :math:`O(nk)` once the eigendecomposition exists.

        Returns
        -------
        float or ndarray of shape (n_times,)
        """
        check_is_fitted(self)
        t = self.t if t is None else t
        self._ensure_eigh()
        return self._solver.training_loss(t)


_PARAMS_DOC = r"""
    kernel : sklearn.gaussian_process.kernels.Kernel, default=None
        The neural tangent kernel :math:`\Theta`. ``None`` means ``NTKKernel()`` (the default
        fully-connected ReLU network). Any scikit-learn kernel is accepted: the dynamics are then
        those of kernel gradient descent with that kernel. Grid search reaches its parameters as
        ``kernel__<name>`` (e.g. ``kernel__depth``).
    t : float, default=np.inf
        Training time in steps, ``>= 0`` (``np.inf``: trained to convergence).
    learning_rate : float, default=1.0
        Learning rate :math:`\eta > 0`; only the product :math:`\eta t` matters for
        ``dynamics="flow"``.
    alpha : float, default=0.0
        Absolute diagonal term :math:`\alpha \ge 0` added to the train kernel (a ridge; it also
        makes ``t=inf`` well posed with duplicate training rows).
    dynamics : {"flow", "gd"}, default="flow"
        Continuous gradient flow, or the exact solution of discrete full-batch gradient descent
        (which a real network with a finite learning rate follows; a warning names the largest
        stable learning rate when it diverges).
    solver : {"auto", "eigh", "krylov"}, default="auto"
        How the mean at the single time ``t`` is computed: ``"auto"`` uses one Cholesky
        factorisation at ``t=inf``, a Lanczos (Krylov) evaluation of the spectral filter
        (about 1e-9 relative accuracy) at finite ``t`` when ``n_samples >= 3000``, and the
        eigendecomposition otherwise. The eigendecomposition is always used (and reused) for
        several times and for covariances.
    cache : bool, default=True
        Reuse kernel matrices and factorisations across fits on the same data with the same
        kernel parameters (process-wide, bounded in memory: see
        :func:`sklearn_ntk.estimators.set_cache_size`). Makes model selection over ``t``,
        ``alpha`` and ``learning_rate`` cheap.
"""


# ============================================================================================
# NTKRegressor
# ============================================================================================
class NTKRegressor(RegressorMixin, _NTKBase):
    __doc__ = r"""Mean prediction of wide networks trained by gradient descent for time ``t``.

    Gradient descent on :math:`L = \frac{1}{2nk}\sum_{ij}(f_j(x_i) - y_{ij})^2`, started from the
    random initialisation, gives in the infinite-width limit an ensemble whose mean is

    .. math::

        \mu_t(x) = \Theta(x, X)\,\tilde\Theta^{-1}\,\phi_t(\tilde\Theta)\,y, \qquad
        \tilde\Theta = \Theta(X, X) + \alpha I,

    with :math:`\phi_t(\lambda) = 1 - e^{-\eta t\lambda/(nk)}` (gradient flow) or
    :math:`1 - (1 - \eta\lambda/(nk))^t` (``dynamics="gd"``). At ``t=inf`` this is kernel
    ridge regression with ridge ``alpha``; at ``t=0`` it is 0. It is also the exact prediction
    of kernel gradient descent from zero with any kernel.

    Parameters
    ----------""" + _PARAMS_DOC + r"""
    Attributes
    ----------
    kernel_ : Kernel
        The kernel used (a clone of ``kernel``, or the default ``NTKKernel()``).
    X_fit_ : ndarray of shape (n_samples, n_features)
        Training inputs (a copy).
    dual_coef_ : ndarray of shape (n_samples,) or (n_samples, n_targets)
        :math:`w` such that :math:`\mu_t(x) = \Theta(x, X)\,w` at the fitted ``t``.
    train_spectrum_ : ndarray of shape (n_samples,)
        Eigenvalues of :math:`\tilde\Theta` (computed on first access).
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit (only when ``X`` has string feature names).

    See Also
    --------
    NTKGaussianProcess : the same dynamics with the covariance over initialisations.
    sklearn.kernel_ridge.KernelRidge : the ``t=inf`` limit.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.gaussian_process.kernels import RBF
    >>> from sklearn_ntk import NTKRegressor
    >>> X = np.linspace(-1, 1, 20)[:, None]; y = np.sin(3 * X[:, 0])
    >>> reg = NTKRegressor(kernel=RBF(0.5), t=100.0).fit(X, y)
    >>> reg.predict(X[:3]).shape
    (3,)
    >>> [p.shape for p in reg.staged_predict(X[:3], [0.0, 10.0, np.inf])]
    [(3,), (3,), (3,)]
    """

    def fit(self, X, y):
        """Fit the closed-form dynamics.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training inputs.
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
            Targets.

        Returns
        -------
        self : NTKRegressor
            Fitted estimator.
        """
        X, y = _validate(self, X, y, multi_output=True, y_numeric=True, dtype=np.float64,
                             ensure_all_finite=True)
        y = np.asarray(y, dtype=np.float64)
        self._y_ndim = y.ndim
        self._fit_dynamics(X, y)
        self.dual_coef_ = self._out(self._W)
        return self

    def _out(self, arr):
        return arr[..., 0] if self._y_ndim == 1 else arr

    def predict(self, X):
        """Mean prediction at the fitted time ``t``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_targets)
        """
        X = self._validate_predict_X(X)
        dyn_td, _ = self._kernels(X, self.X_fit_)
        return self._out(dyn_td @ self._W)

    def staged_predict(self, X, times):
        """Predictions at several training times from one factorisation.

        After the eigendecomposition (once per fit, shared with :meth:`training_loss`), each
        extra time costs :math:`O(n^2 k + m n k)`; all times are computed in one batch.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        times : array-like of shape (n_times,)
            Training times in steps (``>= 0``; ``np.inf`` allowed), in any order.

        Yields
        ------
        ndarray of shape (n_samples,) or (n_samples, n_targets)
            The prediction at each time, in the order given.
        """
        yield from self._out(self._staged_means(X, times))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


# ============================================================================================
# NTKGaussianProcess
# ============================================================================================
class NTKGaussianProcess(RegressorMixin, _NTKBase):
    __doc__ = r"""Infinite ensemble of wide networks trained for ``t`` steps: mean and covariance.

    Over random initialisations, the outputs of infinitely wide networks trained by gradient
    descent form a Gaussian process at every time ``t`` (Lee et al. 2019, eq. 16). With the
    NNGP kernel :math:`K`, the NTK :math:`\Theta`, :math:`\tilde\Theta = \Theta(X, X) + \alpha I`
    and :math:`T_t = \tilde\Theta^{-1}\phi_t(\tilde\Theta)`:

    .. math::

        \mu_t(x) &= \Theta(x, X)\,T_t\,y, \\
        \Sigma_t(x, x') &= K(x, x') + \Theta(x, X) T_t K(X, X) T_t \Theta(X, x')
            - \big[\Theta(x, X) T_t K(X, x') + (x \leftrightarrow x')\big].

    ``kind="nngp"`` is the ensemble in which only the readout layer is trained: the same
    formulas with :math:`\Theta` replaced by :math:`K`, where the covariance simplifies to
    :math:`K(x, x') - K(x, X)\,\tilde K^{-1}\phi_{2t}(\tilde K)\,K(X, x')` (the Bayesian NNGP
    posterior at ``t=inf``). ``t=0`` is the prior: mean 0, covariance :math:`K`. These agree
    with neural-tangents' ``predict.gradient_descent_mse_ensemble`` (absolute ``diag_reg``).

    With a kernel that has an ``ntk_and_nngp`` method (``NTKKernel``), both kernels come from
    it in one pass. Any other kernel is used as both :math:`\Theta` and :math:`K`. The ensemble
    is the one the kernel declares: ``NTKKernel(kind="nngp")`` (also inside a product or sum
    such as ``ConstantKernel() * NTKKernel(kind="nngp")``) gives the readout-only ensemble.

    Parameters
    ----------""" + _PARAMS_DOC + r"""
    kind : {"ntk", "nngp"} or None, default=None
        Which ensemble: all layers trained (``"ntk"``) or only the readout (``"nngp"``).
        ``None`` follows the kernel's ``kind`` (``"ntk"`` for the default kernel and for
        kernels without a ``kind``). A ``kind`` that contradicts the kernel's raises a
        ``ValueError`` at ``fit``; with ``kernel=None`` it selects the default network's kind.

    Attributes
    ----------
    kernel_ : Kernel
        The kernel used (a clone of ``kernel``, or the default ``NTKKernel()``).
    X_fit_ : ndarray of shape (n_samples, n_features)
        Training inputs (a copy).
    dual_coef_ : ndarray of shape (n_samples,) or (n_samples, n_targets)
        :math:`T_t y`, so that :math:`\mu_t(x) = \Theta(x, X)\,w`.
    train_spectrum_ : ndarray of shape (n_samples,)
        Eigenvalues of :math:`\tilde\Theta` (computed on first access).
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit (only when ``X`` has string feature names).

    See Also
    --------
    sklearn.gaussian_process.GaussianProcessRegressor : same ``predict``/``sample_y`` API;
        equal to ``kind="nngp"``, ``t=inf`` with ``alpha`` as its noise term.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.gaussian_process.kernels import RBF
    >>> from sklearn_ntk import NTKGaussianProcess
    >>> X = np.linspace(-1, 1, 10)[:, None]; y = X[:, 0] ** 2
    >>> gp = NTKGaussianProcess(kernel=RBF(0.5), t=50.0).fit(X, y)
    >>> mean, std = gp.predict(X[:2], return_std=True)
    >>> mean.shape, std.shape
    ((2,), (2,))
    """

    _needs_nngp = True

    def __init__(self, kernel=None, t=np.inf, learning_rate=1.0, alpha=0.0, *,
                 kind=None, dynamics="flow", solver="auto", cache=True):
        super().__init__(kernel=kernel, t=t, learning_rate=learning_rate, alpha=alpha,
                         dynamics=dynamics, solver=solver, cache=cache)
        self.kind = kind

    def _ensemble_kind(self):
        return self.kind if self.kind is not None else super()._ensemble_kind()

    def _new_default_kernel(self, params=None):
        kind = (params or {}).get("kind", self.kind)
        return _default_kernel().set_params(kind="nngp" if kind == "nngp" else "ntk")

    def _check_kind(self):
        if self.kind not in (None, "ntk", "nngp"):
            raise ValueError(f"kind must be None, 'ntk' or 'nngp', got {self.kind!r}")
        declared = None if self.kernel is None else _kernel_kind(self.kernel)
        if self.kind is not None and declared is not None and declared != self.kind:
            raise ValueError(
                f"kind={self.kind!r} contradicts the kernel's kind={declared!r} "
                f"({self.kernel!r}); leave kind=None to follow the kernel, or set the "
                "kernel's kind"
            )

    def fit(self, X, y):
        """Fit the ensemble dynamics.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_targets)

        Returns
        -------
        self : NTKGaussianProcess
        """
        self._check_kind()
        X, y = _validate(self, X, y, multi_output=True, y_numeric=True, dtype=np.float64,
                             ensure_all_finite=True)
        y = np.asarray(y, dtype=np.float64)
        self._y_ndim = y.ndim
        self._fit_dynamics(X, y)
        self.dual_coef_ = self._W[:, 0] if y.ndim == 1 else self._W
        return self

    def predict(self, X, return_std=False, return_cov=False):
        """Ensemble mean, and optionally its standard deviation or covariance, at time ``t``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        return_std : bool, default=False
            Also return the standard deviation over initialisations.
        return_cov : bool, default=False
            Also return the covariance over initialisations (exclusive with ``return_std``).

        Returns
        -------
        y_mean : ndarray of shape (n_samples,) or (n_samples, n_targets)
        y_std : ndarray of shape (n_samples,) or (n_samples, n_targets), optional
            The same for every target (the outputs are independent and identically distributed
            around their means).
        y_cov : ndarray of shape (n_samples, n_samples) or (n_samples, n_samples, n_targets)
        """
        if return_std and return_cov:
            raise RuntimeError("At most one of return_std or return_cov can be requested.")
        X = self._validate_predict_X(X)
        dyn_td, nngp_td = self._kernels(X, self.X_fit_)
        mean = dyn_td @ self._W
        k = mean.shape[1]
        mean_out = mean[:, 0] if self._y_ndim == 1 else mean
        if not (return_std or return_cov):
            return mean_out
        if return_std:
            var = self._ensemble_cov(X, dyn_td, nngp_td, diag=True)
            std = np.sqrt(np.maximum(var, 0.0))
            if self._y_ndim == 2:
                std = np.repeat(std[:, None], k, axis=1)
            return mean_out, std
        cov = self._ensemble_cov(X, dyn_td, nngp_td, diag=False)
        if self._y_ndim == 2:
            cov = np.repeat(cov[:, :, None], k, axis=2)
        return mean_out, cov

    def sample_y(self, X, n_samples=1, random_state=0):
        """Draw outputs of independently initialised and trained networks at time ``t``.

        Parameters
        ----------
        X : array-like of shape (n_samples_X, n_features)
        n_samples : int, default=1
            Number of networks (samples) per input.
        random_state : int, RandomState instance or None, default=0
            Seed of the draws.

        Returns
        -------
        ndarray of shape (n_samples_X, n_samples) or (n_samples_X, n_targets, n_samples)
        """
        if not isinstance(n_samples, Integral) or n_samples < 1:
            raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}")
        rng = check_random_state(random_state)
        mean, cov = self.predict(X, return_cov=True)
        c = cov if cov.ndim == 2 else cov[:, :, 0]
        w, V = np.linalg.eigh(c)
        root = V * np.sqrt(np.maximum(w, 0.0))
        m = c.shape[0]
        if mean.ndim == 1:
            return mean[:, None] + root @ rng.standard_normal((m, n_samples))
        k = mean.shape[1]
        z = rng.standard_normal((m, k * n_samples))
        draws = (root @ z).reshape(m, k, n_samples)
        return mean[:, :, None] + draws

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


# ============================================================================================
# NTKClassifier
# ============================================================================================
class NTKClassifier(ClassifierMixin, _NTKBase):
    __doc__ = r"""Classification by infinitely wide networks trained on one-hot targets.

    The labels are encoded one-hot (``n_classes`` outputs, also for two classes) and the
    squared-loss dynamics of :class:`NTKRegressor` are applied to them; the predicted class is
    the output with the largest ensemble mean.

    :meth:`predict_proba` is the probability that a network drawn from the infinite ensemble of
    randomly initialised networks trained for time ``t`` predicts each class: over
    initialisations the outputs at ``x`` are independent Gaussians with means
    :math:`\mu_c(x)` (:meth:`decision_function`) and a common variance :math:`\sigma^2(x)`
    (that of :class:`NTKGaussianProcess` on the one-hot targets), and
    :math:`p_c(x) = P(\arg\max_j f_j(x) = c)`, a one-dimensional integral computed by
    quadrature. It is uniform at ``t=0`` and one-hot where :math:`\sigma = 0` (e.g. on the
    training points at ``t=inf``, ``alpha=0``). It is a property of the ensemble, not a
    calibrated estimate of the label noise: see the user guide for calibration.

    Parameters
    ----------""" + _PARAMS_DOC + r"""
    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    kernel_ : Kernel
        The kernel used (a clone of ``kernel``, or the default ``NTKKernel()``).
    X_fit_ : ndarray of shape (n_samples, n_features)
        Training inputs (a copy).
    dual_coef_ : ndarray of shape (n_samples, n_classes)
        :math:`w` such that the class scores are :math:`\Theta(x, X)\,w`.
    train_spectrum_ : ndarray of shape (n_samples,)
        Eigenvalues of :math:`\tilde\Theta` (computed on first access).
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit (only when ``X`` has string feature names).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.gaussian_process.kernels import RBF
    >>> from sklearn_ntk import NTKClassifier
    >>> X = np.array([[0.0], [0.1], [1.0], [1.1]]); y = ["a", "a", "b", "b"]
    >>> NTKClassifier(kernel=RBF(0.5), t=100.0).fit(X, y).predict([[0.05], [1.05]]).tolist()
    ['a', 'b']
    """

    def fit(self, X, y):
        """Fit the dynamics on one-hot encoded labels.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            Class labels.

        Returns
        -------
        self : NTKClassifier
        """
        X, y = _validate(self, X, y, dtype=np.float64, ensure_all_finite=True)
        check_classification_targets(y)
        self.classes_, idx = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(
                "NTKClassifier needs samples of at least 2 classes in the data, but the data "
                f"contains only one class: {self.classes_.tolist()[0]!r}"
            )
        Y = np.zeros((len(idx), len(self.classes_)))
        Y[np.arange(len(idx)), idx] = 1.0
        self._fit_dynamics(X, Y)
        self.dual_coef_ = self._W
        return self

    def _scores(self, X):
        X = self._validate_predict_X(X)
        dyn_td, _ = self._kernels(X, self.X_fit_)
        return dyn_td @ self._W

    def decision_function(self, X):
        """Ensemble-mean network outputs (class scores) at time ``t``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,) for two classes (score of ``classes_[1]`` minus that of
        ``classes_[0]``), else (n_samples, n_classes)
        """
        s = self._scores(X)
        if len(self.classes_) == 2:
            return s[:, 1] - s[:, 0]
        return s

    def predict(self, X):
        """Class with the largest ensemble-mean output.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        scores = self._scores(X)
        return self.classes_[np.argmax(scores, axis=1)]

    def _ensemble(self, X):
        """Means (m, n_classes) and common std (m,) of the outputs over initialisations."""
        X = self._validate_predict_X(X)
        dyn_td, nngp_td = self._kernels(X, self.X_fit_, nngp=True)
        s = self._solver
        if s.kind == "ntk" and s.nngp_train is None:  # needed only here: on first use
            s.nngp_train = (self._kernels(self.X_fit_, nngp=True)[1] if self._use_pair(True)
                            else s.kernel_train)
        var = self._ensemble_cov(X, dyn_td, nngp_td, diag=True)
        return dyn_td @ self._W, np.sqrt(np.maximum(var, 0.0))

    def predict_proba(self, X):
        r"""Probability that a network of the trained ensemble predicts each class.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
            :math:`P(\arg\max_j f_j(x) = c)` over random initialisations, columns in the
            order of ``classes_``; rows sum to one.
        """
        return argmax_proba(*self._ensemble(X))

    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba`, accurate where the probabilities underflow.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
            ``-inf`` only where the standard deviation is exactly zero and the class's
            mean output is not the largest.
        """
        return argmax_log_proba(*self._ensemble(X))

    def staged_decision_function(self, X, times):
        """Class scores at several training times from one factorisation.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        times : array-like of shape (n_times,)

        Yields
        ------
        ndarray
            :meth:`decision_function` at each time.
        """
        for s in self._staged_means(X, times):
            yield s[:, 1] - s[:, 0] if len(self.classes_) == 2 else s
