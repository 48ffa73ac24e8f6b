r"""Closed-form training dynamics of kernel gradient descent on the squared loss.

This is the single dynamics solver behind :class:`~sklearn_ntk.NTKRegressor`,
:class:`~sklearn_ntk.NTKGaussianProcess` and :class:`~sklearn_ntk.NTKClassifier`, and the
linearised-network predictions of the torch tools.

Conventions (``DESIGN.md`` §2). Training minimises
:math:`L(f) = \frac{1}{2nk}\sum_{i,j}(f_j(x_i) - y_{ij})^2` (``n`` samples, ``k`` outputs) with
learning rate :math:`\eta` for ``t`` steps. With :math:`\tilde\Theta = \Theta(X, X) + \alpha I`
and the *time scale* :math:`s = \eta t/(nk)`, the prediction of a network linearised around its
initial outputs :math:`f_0` is

.. math::

    f_t(x) = f_0(x) + \Theta(x, X)\, \tilde\Theta^{-1}\, \phi_t(\tilde\Theta)\, (y - f_0(X)),

with the *spectral filter* :math:`\phi_t(\lambda) = 1 - e^{-\lambda s}` for gradient flow
(``dynamics="flow"``) and :math:`\phi_t(\lambda) = 1 - (1 - \eta\lambda/(nk))^t` for discrete
full-batch gradient descent (``dynamics="gd"``). The matrix function
:math:`h_t(\lambda) = \phi_t(\lambda)/\lambda` is evaluated with its exact limit
:math:`h_t(0) = s` (``expm1``/``log1p`` based, never ``0/0``); eigenvalues that round-off made
slightly negative are clipped to 0. At :math:`t = \infty`, :math:`h_\infty = \tilde\Theta^{-1}`
(kernel ridge regression), computed by a Cholesky factorisation; a numerically singular
:math:`\tilde\Theta` (``alpha=0`` with duplicate rows, rank-deficient kernels) falls back to the
minimum-norm solution :math:`\tilde\Theta^{+}` with a :class:`SingularKernelWarning`. This is the
exact :math:`t\to\infty` limit: for a positive semi-definite kernel, :math:`\Theta(x, X)` is
orthogonal to the null space of :math:`\Theta(X, X)`.

Covariance over random initialisations of the infinite ensemble (Lee et al. 2019, eq. 16), with
:math:`K` the NNGP kernel and :math:`T_t = h_t(\tilde\Theta)`:

.. math::

    \mathrm{cov}_t(x, x') = K(x, x') + \Theta(x, X) T_t K(X, X) T_t \Theta(X, x')
        - \big[\Theta(x, X) T_t K(X, x') + (x \leftrightarrow x')\big].

For ``kind="nngp"`` (only the readout is trained, :math:`\Theta = K`) this simplifies, as in
neural-tangents, to :math:`K(x, x') - K(x, X) h_{2t}(\tilde K) K(X, x')`.

Public entry point: :class:`KernelDynamics`.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
from scipy.linalg import lapack

from .exceptions import SingularKernelWarning, UnstableLearningRateWarning, warn_from_caller

__all__ = [
    "KernelDynamics",
    "SingularKernelWarning",
    "UnstableLearningRateWarning",
    "spectral_filter",
    "max_stable_learning_rate",
]


_DYNAMICS = ("flow", "gd")
_KINDS = ("ntk", "nngp")


# --------------------------------------------------------------------------------------------
# validation helpers
# --------------------------------------------------------------------------------------------
def _check_times(t, name="t"):
    """Return ``t`` as a float64 array, rejecting NaN and negative values."""
    try:
        arr = np.asarray(t, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be a non-negative real number or array of them, got {t!r}") \
            from exc
    if np.isnan(arr).any():
        raise ValueError(f"{name} must not be NaN, got {t!r}")
    if (arr < 0).any():
        raise ValueError(f"{name} must be non-negative (training time in steps), got {t!r}")
    return arr


def _check_scalar(value, name, *, positive=False, finite=True):
    try:
        v = float(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be a real number, got {value!r}") from exc
    if np.isnan(v) or (finite and not np.isfinite(v)):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if positive and not v > 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
    if not positive and v < 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    return v


def _as_float_matrix(a, name, shape=None):
    a = np.asarray(a, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array, got shape {a.shape}")
    if shape is not None:
        for axis, (got, want) in enumerate(zip(a.shape, shape, strict=True)):
            if want is not None and got != want:
                raise ValueError(
                    f"{name} has shape {a.shape}; expected {want} along axis {axis}"
                )
    if not np.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return a


# --------------------------------------------------------------------------------------------
# spectral filters
# --------------------------------------------------------------------------------------------
def spectral_filter(lam, t, scale, dynamics="flow"):
    r"""Evaluate :math:`h_t(\lambda) = \phi_t(\lambda)/\lambda` elementwise, with its limit at 0.

    Parameters
    ----------
    lam : array_like
        Eigenvalues of :math:`\tilde\Theta`; negative values (round-off) are clipped to 0.
    t : array_like
        Number of steps (broadcast against ``lam``), ``>= 0``; ``np.inf`` gives
        :math:`1/\lambda` (and ``0`` for :math:`\lambda = 0`, the minimum-norm limit).
    scale : float
        :math:`\eta/(nk)`, so that the time scale is :math:`s = \eta t/(nk)` = ``scale * t``.
    dynamics : {"flow", "gd"}
        ``"flow"``: :math:`h = (1 - e^{-\lambda s})/\lambda`;
        ``"gd"``: :math:`h = (1 - (1 - \text{scale}\,\lambda)^t)/\lambda`, which for
        ``scale * lam > 1`` needs an integer ``t``.

    Returns
    -------
    h : ndarray
        Broadcast shape of ``lam`` and ``t``; equals :math:`s` where :math:`\lambda = 0`.
    """
    lam = np.maximum(np.asarray(lam, dtype=np.float64), 0.0)
    t = np.asarray(t, dtype=np.float64)
    lam, t = np.broadcast_arrays(lam, t)
    out = np.empty(lam.shape, dtype=np.float64)
    inf = np.isinf(t)
    pos = lam > 0
    # t = inf: kernel regression / minimum-norm limit
    m = inf & pos
    out[m] = 1.0 / lam[m]
    out[inf & ~pos] = 0.0
    fin = ~inf
    s = scale * np.where(fin, t, 0.0)
    t = np.where(fin, t, 0.0)
    if dynamics == "flow":
        z = lam * s
        small = fin & (z < 1e-10)
        out[small] = s[small] * (1.0 - 0.5 * z[small])
        big = fin & ~small
        out[big] = -np.expm1(-z[big]) / lam[big]
    elif dynamics == "gd":
        x = scale * lam  # per-step contraction 1 - x
        xt = x * t
        small = fin & (xt < 1e-10)
        # (1 - (1-x)^t)/lambda ~ s (1 - (t-1) x / 2)
        out[small] = s[small] * (1.0 - 0.5 * (t[small] - 1.0) * x[small])
        rest = fin & ~small
        le1 = rest & (x <= 1.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            # x == 1 gives log1p(-1) = -inf and t > 0 here, so the product is -inf: phi = 1
            q = -np.expm1(t[le1] * np.log1p(-x[le1]))
        out[le1] = q / lam[le1]
        gt1 = rest & (x > 1.0)
        if gt1.any():
            tt = t[gt1]
            if not np.all(tt == np.round(tt)):
                raise ValueError(
                    "dynamics='gd' with learning_rate * lambda / (n k) > 1 (oscillating modes) "
                    "needs an integer number of steps t"
                )
            with np.errstate(over="ignore", invalid="ignore"):
                q = 1.0 - np.power(1.0 - x[gt1], tt)
            out[gt1] = q / lam[gt1]
    else:
        raise ValueError(f"dynamics must be one of {_DYNAMICS}, got {dynamics!r}")
    return out


def max_stable_learning_rate(lambda_max, n_samples, n_outputs=1):
    r"""Largest learning rate for which discrete gradient descent converges.

    Full-batch gradient descent on the loss of ``DESIGN.md`` §2 contracts every eigen-direction
    iff :math:`|1 - \eta\lambda/(nk)| < 1`, i.e. :math:`\eta < 2nk/\lambda_{max}`.

    Parameters
    ----------
    lambda_max : float
        Largest eigenvalue of the (regularised) train kernel.
    n_samples, n_outputs : int
        ``n`` and ``k``.

    Returns
    -------
    float
        :math:`2nk/\lambda_{max}` (``inf`` for a zero kernel).
    """
    if lambda_max <= 0:
        return np.inf
    return 2.0 * n_samples * n_outputs / lambda_max


# --------------------------------------------------------------------------------------------
# Lanczos evaluation of h_t(A) r for one finite time (no eigendecomposition)
# --------------------------------------------------------------------------------------------
def _lanczos_filter(A, R, fn, *, shift=0.0, tol=1e-9, max_iter=400, check_every=4):
    r"""Approximate ``fn(A + shift I) @ R`` for symmetric ``A`` by one Lanczos run per column.

    Columns share the matrix products (one ``A @ Q`` per iteration). Full reorthogonalisation.
    Convergence: the coefficient vector in the Krylov basis changes by less than ``tol``
    (relative) between two successive checks.

    Returns ``(result, converged)``; ``result`` is ``None`` when not converged.
    """
    n, k = R.shape
    beta0 = np.linalg.norm(R, axis=0)
    out = np.zeros((n, k))
    active = beta0 > 0
    if not active.any():
        return out, True
    cols = np.flatnonzero(active)
    Rv = R[:, cols] / beta0[cols]
    kk = len(cols)
    m_max = min(max_iter, n)
    Q = np.empty((m_max + 1, n, kk))  # basis vectors, per column
    Q[0] = Rv
    alphas = np.zeros((m_max, kk))
    betas = np.zeros((m_max, kk))
    prev = [None] * kk
    small_steps = np.zeros(kk, dtype=int)
    done = np.zeros(kk, dtype=bool)
    sizes = np.zeros(kk, dtype=int)
    coefs = [None] * kk
    for j in range(m_max):
        V = A @ Q[j]  # (n, kk)
        if shift:
            V += shift * Q[j]
        a = np.einsum("ij,ij->j", Q[j], V)
        alphas[j] = a
        V -= Q[j] * a
        if j > 0:
            V -= Q[j - 1] * betas[j - 1]
        # full reorthogonalisation, twice is enough
        for _ in range(2):
            proj = np.einsum("mij,ij->mj", Q[: j + 1], V)
            V -= np.einsum("mij,mj->ij", Q[: j + 1], proj)
        b = np.linalg.norm(V, axis=0)
        betas[j] = b
        last = j == m_max - 1
        tiny = b <= 1e-13 * np.abs(alphas[: j + 1]).max(axis=0)
        check = (j + 1) % check_every == 0 or last or bool(tiny[~done].any())
        if check:
            for c in range(kk):
                if done[c]:
                    continue
                m = j + 1
                invariant = b[c] <= 1e-13 * max(np.abs(alphas[:m, c]).max(), 1e-300)
                theta, S = scipy.linalg.eigh_tridiagonal(alphas[:m, c], betas[: m - 1, c])
                coef = S @ (fn(theta) * S[0])
                if prev[c] is not None:
                    diff = np.linalg.norm(coef[: len(prev[c])] - prev[c]) + np.linalg.norm(
                        coef[len(prev[c]) :]
                    )
                    if diff <= tol * np.linalg.norm(coef):
                        small_steps[c] += 1
                    else:
                        small_steps[c] = 0
                prev[c] = coef
                if small_steps[c] >= 2 or invariant:
                    done[c] = True
                    sizes[c] = m
                    coefs[c] = coef
            if done.all():
                break
        safe = np.where(b > 0, b, 1.0)
        Q[j + 1] = V / safe
    if not done.all():
        return None, False
    for c in range(kk):
        m = sizes[c]
        out[:, cols[c]] = beta0[cols[c]] * (Q[:m, :, c].T @ coefs[c])
    return out, True


# --------------------------------------------------------------------------------------------
# the solver
# --------------------------------------------------------------------------------------------
class KernelDynamics:
    r"""Closed-form predictions of kernel gradient descent on the squared loss.

    Build it once per fit from the train kernel(s) and targets; query it for any number of
    times. The eigendecomposition (finite ``t``) and the Cholesky factorisation (``t=inf``) of
    :math:`\tilde\Theta = \Theta(X, X) + \alpha I` are computed lazily on first need and reused.

    Parameters
    ----------
    kernel_train : array_like of shape (n, n)
        Train kernel :math:`\Theta(X, X)` that drives the dynamics (the NTK; for
        ``kind="nngp"`` the NNGP kernel :math:`K(X, X)`). Not modified.
    y : array_like of shape (n,) or (n, k)
        Targets. Outputs of all methods have the trailing shape of ``y`` (1-D ``y`` gives
        1-D predictions).
    learning_rate : float, default=1.0
        :math:`\eta > 0`. Time is measured in steps: the time scale is :math:`s = \eta t/(nk)`.
    alpha : float, default=0.0
        Absolute diagonal term :math:`\alpha \ge 0` added to the train kernel.
    nngp_train : array_like of shape (n, n), optional
        NNGP kernel :math:`K(X, X)`, needed only for covariances with ``kind="ntk"``.
    kind : {"ntk", "nngp"}, default="ntk"
        Which ensemble the covariance describes: ``"ntk"`` (all layers trained, needs
        ``nngp_train``) or ``"nngp"`` (only the readout trained; ``kernel_train`` is the NNGP).
    dynamics : {"flow", "gd"}, default="flow"
        Gradient flow or discrete full-batch gradient descent (exact discrete solution). With
        ``"gd"`` a :class:`UnstableLearningRateWarning` is emitted (when the spectrum is first
        computed) if :math:`\eta\lambda_{max}/(nk) > 2`.
    check_input : bool, default=True
        Validate shapes and finiteness.

    Attributes
    ----------
    n_samples, n_outputs : int
    scale : float
        :math:`\eta/(nk)`.

    Notes
    -----
    Cost: one :math:`O(n^3)` factorisation per solver, then :math:`O(n^2 k + m n k)` per extra
    time for the mean (``m`` test points). A single finite-time mean can instead be computed
    without any factorisation by a Lanczos approximation of :math:`h_t(\tilde\Theta)(y - f_0)`
    (``method="krylov"``; ``O(n^2)`` per iteration), accurate to about ``1e-9`` relative.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(size=(5, 2)); y = X[:, 0]
    >>> theta = X @ X.T + 1.0
    >>> dyn = KernelDynamics(theta, y, learning_rate=1.0)
    >>> dyn.mean([0.0, 10.0, np.inf], theta).shape   # predictions at the train points
    (3, 5)
    """

    def __init__(self, kernel_train, y, *, learning_rate=1.0, alpha=0.0, nngp_train=None,
                 kind="ntk", dynamics="flow", check_input=True):
        self.learning_rate = _check_scalar(learning_rate, "learning_rate", positive=True)
        self.alpha = _check_scalar(alpha, "alpha")
        if kind not in _KINDS:
            raise ValueError(f"kind must be one of {_KINDS}, got {kind!r}")
        if dynamics not in _DYNAMICS:
            raise ValueError(f"dynamics must be one of {_DYNAMICS}, got {dynamics!r}")
        self.kind = kind
        self.dynamics = dynamics
        y = np.asarray(y, dtype=np.float64)
        if y.ndim not in (1, 2):
            raise ValueError(f"y must be 1-D or 2-D, got shape {y.shape}")
        self._y1d = y.ndim == 1
        self.y = y.reshape(len(y), -1)
        n, k = self.y.shape
        if n == 0 or k == 0:
            raise ValueError(f"y must have at least one sample and one output, got shape {y.shape}")
        self.n_samples, self.n_outputs = n, k
        if check_input:
            if not np.isfinite(self.y).all():
                raise ValueError("y contains NaN or infinite values")
            kernel_train = _as_float_matrix(kernel_train, "kernel_train", (n, n))
            if nngp_train is not None:
                nngp_train = _as_float_matrix(nngp_train, "nngp_train", (n, n))
        else:
            kernel_train = np.asarray(kernel_train, dtype=np.float64)
            if nngp_train is not None:
                nngp_train = np.asarray(nngp_train, dtype=np.float64)
        self.kernel_train = kernel_train
        self.nngp_train = nngp_train
        self.scale = self.learning_rate / (n * k)
        self._eig = None  # (evals, evecs) of the regularised kernel
        self._eig0 = None  # (evals, evecs) of the kernel without alpha
        self._chol = None  # (c, lower, singular)
        self._yproj = None  # evecs.T @ y
        self._nngp_eig = None  # evecs.T @ nngp_train @ evecs

    def __getstate__(self):
        # factorisations are recomputed on demand: pickles stay at the size of the kernels
        state = self.__dict__.copy()
        for name in ("_eig", "_eig0", "_chol", "_yproj", "_nngp_eig"):
            state[name] = None
        return state

    # ---------------------------------------------------------------- factorisations
    def _regularised(self):
        A = np.array(self.kernel_train, dtype=np.float64, copy=True)
        if self.alpha:
            A.flat[:: self.n_samples + 1] += self.alpha
        return A

    def set_eigh(self, evals, evecs):
        r"""Install a precomputed eigendecomposition of the *unregularised* kernel.

        ``evals, evecs`` are those of :math:`\Theta(X, X)` (for example from a cache shared by
        fits with different ``alpha``: :math:`\tilde\Theta` has the same eigenvectors and the
        eigenvalues shifted by ``alpha``).
        """
        evals = np.asarray(evals, dtype=np.float64)
        self._eig0 = (evals, np.asarray(evecs, dtype=np.float64))
        self._eig = (evals + self.alpha, self._eig0[1])
        self._yproj = None
        self._nngp_eig = None
        self._check_stability()

    def set_cholesky(self, chol):
        """Install a precomputed result of :meth:`cholesky` (e.g. from a cache)."""
        self._chol = chol

    def eigh_unregularised(self):
        r"""Eigendecomposition ``(evals, evecs)`` of :math:`\Theta(X, X)` (without ``alpha``)."""
        if self._eig is None:
            self.eigh()
        return self._eig0

    def eigh(self):
        r"""Eigendecomposition ``(evals, evecs)`` of :math:`\tilde\Theta`, ascending.

        Computed once, as the eigendecomposition of :math:`\Theta(X, X)` with the eigenvalues
        shifted by ``alpha``.
        """
        if self._eig is None:
            evals, evecs = scipy.linalg.eigh(np.array(self.kernel_train, copy=True),
                                             overwrite_a=True, check_finite=False, driver="evd")
            self.set_eigh(evals, evecs)
        return self._eig

    def _check_stability(self):
        if self.dynamics != "gd":
            return
        lam_max = float(self._eig[0][-1])
        if self.scale * lam_max > 2.0:
            eta_max = max_stable_learning_rate(lam_max, self.n_samples, self.n_outputs)
            warn_from_caller(
                f"learning_rate={self.learning_rate:g} makes discrete gradient descent diverge "
                f"(learning_rate * lambda_max / (n k) = {self.scale * lam_max:.3g} > 2); the "
                f"largest stable learning_rate is {eta_max:.6g}",
                UnstableLearningRateWarning,
            )

    @property
    def eigenvalues(self):
        r"""Eigenvalues of :math:`\tilde\Theta`, ascending."""
        return self.eigh()[0]

    def cholesky(self):
        r"""Cholesky factor of :math:`\tilde\Theta` (``t = inf``), with a singular fallback.

        Returns ``(c, lower, singular)``. If :math:`\tilde\Theta` is not numerically positive
        definite (the factorisation fails, or its reciprocal condition number is below
        ``n * eps``), ``c`` is ``None`` and ``singular`` is True: the minimum-norm solution
        from the eigendecomposition is used and a :class:`SingularKernelWarning` is emitted.
        The condition number is estimated (LAPACK ``dpocon``) only when a pivot
        :math:`L_{ii}^2` -- an upper bound of :math:`\lambda_{min}` -- is below
        :math:`\sqrt{\epsilon}\max_i \tilde\Theta_{ii}`, so well-conditioned problems pay
        for nothing but the factorisation.
        """
        if self._chol is None:
            n = self.n_samples
            eps = np.finfo(np.float64).eps
            # the symmetric copy's transpose is Fortran-ordered: LAPACK works in place
            A = self._regularised().T
            diag_max = float(np.max(np.diagonal(A)))
            singular = diag_max <= 0
            if not singular:
                c, info = lapack.dpotrf(A, lower=1, overwrite_a=1, clean=0)
                singular = info != 0
            if not singular and np.min(np.diagonal(c)) ** 2 < np.sqrt(eps) * diag_max:
                # 1-norm of Theta + alpha I (its diagonal is non-negative)
                anorm = np.abs(self.kernel_train).sum(axis=0).max() + self.alpha
                rcond, info2 = lapack.dpocon(c, anorm, uplo="L")
                singular = info2 != 0 or rcond < n * eps
            if singular:
                self._warn_singular()
                self._chol = (None, True, True)
            else:
                self._chol = (c, True, False)
        return self._chol

    @staticmethod
    def _warn_singular():
        warn_from_caller(
            "the regularised train kernel Theta(X, X) + alpha*I is numerically singular "
            "(e.g. duplicate training rows with alpha=0); using the minimum-norm "
            "(pseudo-inverse) solution for t=inf. Set alpha > 0 to avoid this.",
            SingularKernelWarning,
        )

    # ---------------------------------------------------------------- core linear algebra
    def _residual(self, f0_train):
        if f0_train is None:
            return self.y
        f0 = np.asarray(f0_train, dtype=np.float64)
        f0 = np.broadcast_to(f0.reshape(self.n_samples, -1) if f0.ndim else f0, self.y.shape)
        if not np.isfinite(f0).all():
            raise ValueError("f0_train contains NaN or infinite values")
        return self.y - f0

    def _pinv_tol(self, evals):
        return self.n_samples * np.finfo(np.float64).eps * max(abs(evals[-1]), abs(evals[0]))

    def _solve_inf(self, R):
        c, lower, singular = self.cholesky()
        if not singular:
            return scipy.linalg.cho_solve((c, lower), R, check_finite=False)
        evals, evecs = self.eigh()
        inv = np.where(evals > self._pinv_tol(evals), 1.0 / np.where(evals > 0, evals, 1.0), 0.0)
        return evecs @ (inv[:, None] * (evecs.T @ R))

    def _filters(self, times, doubled=False):
        """h_t(evals) for each time: array (T, n)."""
        evals = self.eigh()[0]
        tt = times * 2.0 if doubled else times
        H = spectral_filter(evals[None, :], tt[:, None], self.scale, self.dynamics)
        # t = inf with a numerically singular kernel: minimum-norm
        inf = np.isinf(tt)
        if inf.any():
            null = evals <= self._pinv_tol(evals)
            if null.any():
                self._warn_singular()
                H[np.ix_(inf, null)] = 0.0
        return H

    def dual_coef(self, t, f0_train=None, *, method="auto"):
        r"""Coefficients :math:`w_t = h_t(\tilde\Theta)(y - f_0(X))` with
        :math:`f_t(x) = f_0(x) + \Theta(x, X) w_t`.

        Parameters
        ----------
        t : float or array_like of shape (T,)
            Times (steps); ``np.inf`` allowed.
        f0_train : array_like of shape (n,) or (n, k), optional
            Initial outputs on the training points (default 0: the ensemble mean).
        method : {"auto", "eigh", "cholesky", "krylov"}
            ``"auto"``: Cholesky for ``t = inf`` (unless an eigendecomposition exists),
            eigendecomposition otherwise. ``"krylov"``: Lanczos for one finite ``t`` (falls back
            to the eigendecomposition if it does not converge).

        Returns
        -------
        ndarray of shape (n, k), or (T, n, k) for array ``t``
        """
        times = _check_times(t)
        scalar = times.ndim == 0
        times = np.atleast_1d(times).ravel()
        R = self._residual(f0_train)
        n, k = R.shape
        out = np.empty((len(times), n, k))
        finite = np.isfinite(times)
        if method not in ("auto", "eigh", "cholesky", "krylov"):
            raise ValueError(f"unknown method {method!r}")
        if method == "krylov" and self._eig is None and finite.all() and len(times) == 1:
            res = self._krylov(R, times[0])
            if res is not None:
                out[0] = res
                return out[0] if scalar else out
        use_eig = finite.any() or method == "eigh" or (method == "auto" and self._eig is not None)
        if (~finite).any() and not use_eig:
            out[~finite] = self._solve_inf(R)
        if use_eig:
            evals, evecs = self.eigh()
            if f0_train is None:
                if self._yproj is None:
                    self._yproj = evecs.T @ self.y
                P = self._yproj
            else:
                P = evecs.T @ R
            H = self._filters(times)  # (T, n)
            # (n, n) @ (n, T*k)
            W = evecs @ (H.T[:, :, None] * P[:, None, :]).reshape(n, -1)
            out[:] = W.reshape(n, len(times), k).transpose(1, 0, 2)
        return out[0] if scalar else out

    def _krylov(self, R, t):
        scale, dyn = self.scale, self.dynamics

        def fn(theta):
            return spectral_filter(theta, t, scale, dyn)

        res, ok = _lanczos_filter(self.kernel_train, R, fn, shift=self.alpha)
        return res if ok else None

    # ---------------------------------------------------------------- public predictions
    def _shape_out(self, arr):
        """Drop the output axis for 1-D y."""
        return arr[..., 0] if self._y1d else arr

    def mean(self, t, kernel_test_train=None, f0_train=None, f0_test=None, *, method="auto"):
        r"""Mean (or single-network) prediction :math:`f_t` at time(s) ``t``.

        .. math:: f_t(x) = f_0(x) + \Theta(x, X)\, h_t(\tilde\Theta)\,(y - f_0(X))

        Parameters
        ----------
        t : float or array_like of shape (T,)
            Times in steps, ``>= 0``; ``np.inf`` allowed.
        kernel_test_train : array_like of shape (m, n), optional
            :math:`\Theta(x, X)` (for ``kind="nngp"`` the NNGP kernel). ``None`` means the
            training points (``kernel_train``), i.e. the outputs on the training set.
        f0_train : array_like of shape (n,) or (n, k), optional
            Initial outputs on the training points; default 0 (infinite-ensemble mean).
        f0_test : array_like of shape (m,) or (m, k), optional
            Initial outputs on the test points; default 0 (or ``f0_train`` when
            ``kernel_test_train`` is None).
        method : {"auto", "eigh", "cholesky", "krylov"}
            See :meth:`dual_coef`.

        Returns
        -------
        ndarray of shape (m,) / (m, k), with a leading (T,) axis for array ``t``.
        """
        if kernel_test_train is None:
            Ktd = self.kernel_train
            if f0_test is None:
                f0_test = f0_train
        else:
            Ktd = _as_float_matrix(kernel_test_train, "kernel_test_train",
                                   (None, self.n_samples))
        W = self.dual_coef(t, f0_train, method=method)
        out = np.matmul(Ktd, W)
        if f0_test is not None:
            f0 = np.asarray(f0_test, dtype=np.float64)
            if f0.ndim:
                f0 = f0.reshape(Ktd.shape[0], -1)
            out = out + f0
        return self._shape_out(out)

    def training_loss(self, t, f0_train=None):
        r"""Training loss :math:`\frac{1}{2nk}\lVert f_t(X) - y\rVert^2` at time(s) ``t``.

        :math:`f_t(X)` is :meth:`mean` at the training points. Costs :math:`O(nk)` per time
        once the eigendecomposition exists (the residual is diagonal in the eigenbasis:
        :math:`r_t = (I - \Theta h_t(\tilde\Theta))(y - f_0)`, and
        :math:`\Theta = \tilde\Theta - \alpha I`).

        Returns
        -------
        float or ndarray of shape (T,)
        """
        times = _check_times(t)
        scalar = times.ndim == 0
        times = np.atleast_1d(times).ravel()
        R = self._residual(f0_train)
        evals, evecs = self.eigh()
        P = evecs.T @ R  # (n, k)
        H = self._filters(times)  # (T, n)
        lam_unreg = np.maximum(evals, 0.0) - self.alpha
        keep = 1.0 - lam_unreg[None, :] * H  # (T, n)
        loss = 0.5 * np.einsum("tn,nk->t", keep**2, P**2) / R.size
        return float(loss[0]) if scalar else loss

    def covariance(self, t, kernel_test_train, nngp_test_test, nngp_test_train=None, *,
                   diag=False):
        r"""Covariance over initialisations of the infinite ensemble at time(s) ``t``.

        Parameters
        ----------
        t : float or array_like of shape (T,)
        kernel_test_train : array_like of shape (m, n)
            :math:`\Theta(x, X)` (``kind="nngp"``: :math:`K(x, X)`).
        nngp_test_test : array_like of shape (m, m), or (m,) when ``diag=True``
            :math:`K(x, x')` (or its diagonal).
        nngp_test_train : array_like of shape (m, n), optional
            :math:`K(x, X)`; required for ``kind="ntk"`` (ignored for ``"nngp"``).
        diag : bool, default=False
            Return only the variances (:math:`O(m n^2)` without forming the ``m x m`` matrix).

        Returns
        -------
        ndarray of shape (m, m) or (m,), with a leading (T,) axis for array ``t``.
        The same covariance applies to every output column.
        """
        times = _check_times(t)
        scalar = times.ndim == 0
        times = np.atleast_1d(times).ravel()
        n = self.n_samples
        Ktd = _as_float_matrix(kernel_test_train, "kernel_test_train", (None, n))
        m = Ktd.shape[0]
        Ktt = np.asarray(nngp_test_test, dtype=np.float64)
        want = (m,) if diag else (m, m)
        if Ktt.shape != want:
            raise ValueError(f"nngp_test_test has shape {Ktt.shape}, expected {want}")
        if self.kind == "ntk":
            if self.nngp_train is None or nngp_test_train is None:
                raise ValueError(
                    "kind='ntk' covariances need the NNGP kernel: pass nngp_train to the "
                    "constructor and nngp_test_train here"
                )
            Ntd = _as_float_matrix(nngp_test_train, "nngp_test_train", (m, n))
        out = np.empty((len(times),) + want)
        if self._eig is None and np.isinf(times).all():
            c, lower, singular = self.cholesky()
            if not singular:  # t = inf without an eigendecomposition: O(n^2 m)
                A = scipy.linalg.cho_solve((c, lower), Ktd.T, check_finite=False).T  # (m, n)
                if self.kind == "nngp":
                    var = Ktt - (np.einsum("mn,mn->m", A, Ktd) if diag else A @ Ktd.T)
                else:
                    AK = A @ self.nngp_train
                    if diag:
                        var = (Ktt + np.einsum("mn,mn->m", AK, A)
                               - 2.0 * np.einsum("mn,mn->m", A, Ntd))
                    else:
                        cross = A @ Ntd.T
                        var = Ktt + AK @ A.T - cross - cross.T
                out[:] = var
                if not diag:
                    out = 0.5 * (out + np.swapaxes(out, -1, -2))
                return out[0] if scalar else out
        evals, evecs = self.eigh()
        B = Ktd @ evecs  # (m, n) test kernel in the eigenbasis
        if self.kind == "nngp":
            H2 = self._filters(times, doubled=True)
            for i, h in enumerate(H2):
                if diag:
                    out[i] = Ktt - np.einsum("mn,n,mn->m", B, h, B)
                else:
                    out[i] = Ktt - (B * h) @ B.T
        else:
            C = Ntd @ evecs  # (m, n)
            if self._nngp_eig is None:  # NNGP train kernel in the eigenbasis, once
                self._nngp_eig = evecs.T @ self.nngp_train @ evecs
            Kdd_e = self._nngp_eig
            H = self._filters(times)
            for i, h in enumerate(H):
                A = B * h  # Theta(x,X) T in the eigenbasis
                AK = A @ Kdd_e
                if diag:
                    out[i] = Ktt + np.einsum("mn,mn->m", AK, A) - 2.0 * np.einsum("mn,mn->m", A, C)
                else:
                    cross = A @ C.T
                    out[i] = Ktt + AK @ A.T - cross - cross.T
        if not diag:
            out = 0.5 * (out + np.swapaxes(out, -1, -2))
        return out[0] if scalar else out
