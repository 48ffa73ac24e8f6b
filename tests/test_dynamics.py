"""Tests of the closed-form dynamics solver ``sklearn_ntk.dynamics.KernelDynamics``.

Expected values are derived independently of the closed form: explicit parameter-space
gradient descent of a linear model with an explicit feature map (whose NTK is Phi Phi^T),
classical Runge-Kutta integration of the gradient-flow ODE, kernel ridge regression, and the
neural-tangents reference values stored in ``tests/data/nt_predict_reference.npz``.
"""

import json
import pathlib
import warnings

import numpy as np
import pytest

from sklearn_ntk.dynamics import (
    KernelDynamics,
    SingularKernelWarning,
    UnstableLearningRateWarning,
    max_stable_learning_rate,
    spectral_filter,
)
from sklearn_ntk.linalg.lanczos import lanczos_filter
from sklearn_ntk.linalg.operators import DenseOperator

DATA = pathlib.Path(__file__).parent / "data"


def _features(n, p, seed):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, p)) / np.sqrt(p)


def _problem(n=7, m=4, p=5, k=3, seed=0):
    """Explicit features: Theta = Phi Phi^T (rank p), test features, targets."""
    rng = np.random.default_rng(seed)
    Phi = _features(n + m, p, seed)
    y = rng.normal(size=(n, k))
    return Phi[:n], Phi[n:], y


# --------------------------------------------------------------------------- spectral filter
def test_filter_exact_limit_at_zero_and_tiny_eigenvalues():
    s_scale = 0.25
    t = np.array([0.0, 1.0, 7.0, 1e6])
    lam = np.array([0.0, 1e-300, 1e-200, 1e-17, -1e-14])
    for dyn in ("flow", "gd"):
        h = spectral_filter(lam[:, None], t[None, :], s_scale, dyn)
        assert np.isfinite(h).all()
        # (1 - e^{-lam s})/lam -> s for lam s -> 0 (negative round-off clipped to 0)
        np.testing.assert_allclose(h, np.broadcast_to(s_scale * t, h.shape), rtol=1e-9)


@pytest.mark.parametrize("dyn", ["flow", "gd"])
def test_filter_matches_direct_formula(dyn):
    lam = np.array([1e-3, 0.1, 1.0, 3.0, 7.9])
    t = np.array([0.0, 1.0, 2.0, 5.0, 40.0])
    scale = 0.25
    h = spectral_filter(lam[:, None], t[None, :], scale, dyn)
    L, T = np.meshgrid(lam, t, indexing="ij")
    if dyn == "flow":
        ref = (1 - np.exp(-L * T * scale)) / L
    else:  # integer steps: the discrete contraction (1 - scale*lam)^t, incl. oscillating modes
        ref = (1 - (1 - scale * L) ** T) / L
    np.testing.assert_allclose(h, ref, rtol=1e-10, atol=1e-14)
    # t = inf: 1/lambda, and 0 for lambda = 0 (minimum-norm limit)
    np.testing.assert_allclose(spectral_filter(lam, np.inf, scale, dyn), 1 / lam)
    assert spectral_filter(0.0, np.inf, scale, dyn) == 0.0


def test_filter_gd_non_integer_steps_on_oscillating_modes_rejected():
    with pytest.raises(ValueError, match="integer number of steps"):
        spectral_filter(np.array([1.0]), 2.5, 1.5, "gd")


# --------------------------------------------------------------------------- dynamics vs GD
@pytest.mark.parametrize("alpha", [0.0, 0.3])
def test_gd_equals_parameter_space_gradient_descent(alpha):
    """Linear model f = Phi w trained by full-batch GD on 1/(2nk)||f - y||^2 + alpha/(2nk)||w||^2.

    Its NTK is Phi Phi^T; the discrete-time closed form must match step by step, with nonzero
    initial outputs f0 (a linearised network) and 3 outputs (the n*k normalisation).
    """
    Phi, Phi_test, y = _problem()
    n, k = y.shape
    rng = np.random.default_rng(1)
    w0 = rng.normal(size=(Phi.shape[1], k))
    eta = 0.7
    w = w0.copy()
    steps = [0, 1, 2, 5, 17, 60]
    preds, train_preds, losses = {}, {}, {}
    for step in range(max(steps) + 1):
        if step in steps:
            preds[step] = Phi_test @ w
            train_preds[step] = Phi @ w
            losses[step] = 0.5 * np.mean((Phi @ w - y) ** 2)
        grad = (Phi.T @ (Phi @ w - y) + alpha * (w - w0)) / (n * k)
        w = w - eta * grad

    theta = Phi @ Phi.T
    dyn = KernelDynamics(theta, y, learning_rate=eta, alpha=alpha, dynamics="gd")
    f0_tr, f0_te = Phi @ w0, Phi_test @ w0
    got = dyn.mean(np.array(steps, float), Phi_test @ Phi.T, f0_tr, f0_te)
    got_train = dyn.mean(np.array(steps, float), None, f0_tr)
    for i, step in enumerate(steps):
        np.testing.assert_allclose(got[i], preds[step], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(got_train[i], train_preds[step], rtol=1e-10, atol=1e-12)
    if alpha == 0:
        loss = dyn.training_loss(np.array(steps, float), f0_tr)
        np.testing.assert_allclose(loss, [losses[s] for s in steps], rtol=1e-10)


def _rk4(rhs, state, t_end, n_steps):
    h = t_end / n_steps
    for _ in range(n_steps):
        k1 = rhs(state)
        k2 = rhs(state + 0.5 * h * k1)
        k3 = rhs(state + 0.5 * h * k2)
        k4 = rhs(state + h * k3)
        state = state + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    return state


@pytest.mark.parametrize("alpha", [0.0, 0.2])
def test_flow_equals_rk4_integration_of_function_space_ode(alpha):
    """df/dt = -eta/(nk) Theta (f - y) + weight decay, integrated numerically (RK4)."""
    Phi, Phi_test, y = _problem(seed=3)
    n, k = y.shape
    p = Phi.shape[1]
    eta = 1.3
    rng = np.random.default_rng(4)
    w0 = rng.normal(size=(p, k))

    def rhs(w):  # parameter-space gradient flow, d w / d t = -eta * grad
        return -eta * (Phi.T @ (Phi @ w - y) + alpha * (w - w0)) / (n * k)

    dyn = KernelDynamics(Phi @ Phi.T, y, learning_rate=eta, alpha=alpha)
    for t in (0.5, 4.0, 30.0):
        w_t = _rk4(rhs, w0, t, 400)
        got = dyn.mean(t, Phi_test @ Phi.T, Phi @ w0, Phi_test @ w0)
        np.testing.assert_allclose(got, Phi_test @ w_t, rtol=1e-9, atol=1e-11)


def test_rank_deficient_kernel_finite_t_no_nan_and_matches_ode():
    """n = 9 > p = 3: six exactly-zero eigenvalues; (1-e^{-lam s})/lam must use its limit."""
    Phi, Phi_test, y = _problem(n=9, p=3, k=1, seed=5)
    theta = Phi @ Phi.T
    dyn = KernelDynamics(theta, y[:, 0], learning_rate=1.0)
    assert np.sum(dyn.eigenvalues < 1e-12) >= 5
    n = 9

    def rhs(w):
        return -(Phi.T @ (Phi @ w - y)) / n

    for t in (0.0, 2.0, 50.0):
        got = dyn.mean(t, Phi_test @ Phi.T)
        assert got.shape == (Phi_test.shape[0],) and np.isfinite(got).all()
        ref = Phi_test @ _rk4(rhs, np.zeros((3, 1)), t, 400)
        np.testing.assert_allclose(got, ref[:, 0], rtol=1e-8, atol=1e-10)


# --------------------------------------------------------------------------- t = inf
def test_t_inf_is_kernel_ridge_and_large_t_converges():
    Phi, Phi_test, y = _problem(n=6, p=10, seed=6)
    theta = Phi @ Phi.T
    alpha = 0.05
    dyn = KernelDynamics(theta, y, alpha=alpha)
    krr = Phi_test @ Phi.T @ np.linalg.solve(theta + alpha * np.eye(6), y)
    np.testing.assert_allclose(dyn.mean(np.inf, Phi_test @ Phi.T), krr, rtol=1e-10)
    np.testing.assert_allclose(dyn.mean(1e9, Phi_test @ Phi.T), krr, rtol=1e-8)
    # eigendecomposition path at t = inf agrees with the Cholesky path
    np.testing.assert_allclose(dyn.mean(np.inf, Phi_test @ Phi.T, method="eigh"), krr,
                               rtol=1e-9)
    assert dyn.mean(0.0, Phi_test @ Phi.T).max() == 0.0


def test_singular_kernel_t_inf_minimum_norm_with_warning():
    """Duplicate training rows, alpha = 0: minimum-norm interpolant, a warning, no NaN."""
    Phi, Phi_test, y = _problem(n=6, p=10, k=1, seed=7)
    Phi[5] = Phi[2]
    y[5] = y[2] + 1.0  # conflicting targets at the same input
    theta = Phi @ Phi.T
    dyn = KernelDynamics(theta, y[:, 0])
    with pytest.warns(SingularKernelWarning, match="minimum-norm"):
        got = dyn.mean(np.inf, Phi_test @ Phi.T)
    assert np.isfinite(got).all()
    w_min_norm = np.linalg.pinv(Phi) @ y[:, 0]  # minimum-norm least squares in weight space
    np.testing.assert_allclose(got, Phi_test @ w_min_norm, rtol=1e-7, atol=1e-9)
    # the duplicated point is fitted to the average of its two targets
    train = dyn.mean(np.inf)
    np.testing.assert_allclose(train[2], 0.5 * (y[2, 0] + y[5, 0]), rtol=1e-7)
    # the eigendecomposition path (several times at once) agrees, and warns as well
    fresh = KernelDynamics(theta, y[:, 0])
    with pytest.warns(SingularKernelWarning):
        both = fresh.mean([3.0, np.inf], Phi_test @ Phi.T)
    np.testing.assert_allclose(both[1], got, rtol=1e-7, atol=1e-9)
    assert np.isfinite(both).all()


# --------------------------------------------------------------------------- covariance
@pytest.mark.parametrize("kind", ["ntk", "nngp"])
def test_covariance_equals_ensemble_of_initialisations(kind):
    """f_0 = Psi v with v ~ N(0, I), i.e. NNGP K = Psi Psi^T. f_t is affine in v, so the
    covariance over v is B B^T with B obtained by integrating the ODE from each basis vector."""
    rng = np.random.default_rng(8)
    n, m, q, p = 6, 3, 8, 9
    Psi_all = rng.normal(size=(n + m, q)) / 3
    Phi_all = rng.normal(size=(n + m, p)) / 3 if kind == "ntk" else Psi_all
    Psi, Psi_t = Psi_all[:n], Psi_all[n:]
    Phi, Phi_t = Phi_all[:n], Phi_all[n:]
    theta, theta_td = Phi @ Phi.T, Phi_t @ Phi.T
    K, K_td, K_tt = Psi @ Psi.T, Psi_t @ Psi.T, Psi_t @ Psi_t.T
    y = rng.normal(size=n)
    eta = 0.9
    dyn = KernelDynamics(theta, y, learning_rate=eta, nngp_train=K, kind=kind)
    for t in (0.0, 3.0, 25.0, np.inf):
        # column j of B: test output of the ODE started from f0 = Psi e_j, with y = 0
        if np.isinf(t):
            T = np.linalg.pinv(theta)
        else:
            lam, V = np.linalg.eigh(theta)
            T = V @ np.diag(spectral_filter(lam, t, eta / n)) @ V.T
        B = Psi_t - theta_td @ T @ Psi  # f_t = f0_test + Theta_td T (0 - f0_train)
        cov = dyn.covariance(t, theta_td, K_tt, K_td)
        np.testing.assert_allclose(cov, B @ B.T, rtol=1e-9, atol=1e-12)
        var = dyn.covariance(t, theta_td, np.diag(K_tt), K_td, diag=True)
        np.testing.assert_allclose(var, np.diag(B @ B.T), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(dyn.covariance(0.0, theta_td, K_tt, K_td), K_tt, atol=1e-15)


def test_covariance_ntk_needs_nngp():
    theta = np.eye(3)
    dyn = KernelDynamics(theta, np.ones(3))
    with pytest.raises(ValueError, match="NNGP"):
        dyn.covariance(1.0, np.ones((2, 3)), np.eye(2))


# --------------------------------------------------------------------------- neural-tangents
def _nt_reference():
    path = DATA / "nt_predict_reference.npz"
    if not path.exists():
        pytest.skip("neural-tangents reference data not generated")
    return np.load(path), json.loads((DATA / "nt_predict_reference.json").read_text())


def test_matches_neural_tangents_gradient_descent_mse_ensemble():
    """Mean and covariance of nt.predict.gradient_descent_mse_ensemble (absolute diag_reg),
    both kinds, 1 and 3 outputs, t in {0, 0.5, 3, 50, inf}, alpha in {0, 0.1}: <= 1e-6 rel."""
    d, meta = _nt_reference()
    gets = meta["axes"]["get"]
    checked = 0
    for net in meta["nets"]:
        for k in (1, 3):
            y = d[f"y_k{k}"]
            nngp = d[f"{net}_nngp_train_train"]
            for ia, alpha in enumerate(d["alpha"]):
                for il, lr in enumerate(d["learning_rate"]):
                    for ig, get in enumerate(gets):
                        dyn = KernelDynamics(d[f"{net}_{get}_train_train"], y, learning_rate=lr,
                                             alpha=alpha, nngp_train=nngp, kind=get)
                        td = d[f"{net}_{get}_test_train"]
                        mean = dyn.mean(d["t"], td)
                        cov = dyn.covariance(d["t"], td, d[f"{net}_nngp_test_test"],
                                             d[f"{net}_nngp_test_train"])
                        for it in range(len(d["t"])):
                            if not d[f"{net}_k{k}_finite"][ia, il, ig, it]:
                                continue
                            ref_m = d[f"{net}_k{k}_mean"][ia, il, ig, it]
                            ref_c = d[f"{net}_k{k}_cov"][ia, il, ig, it]
                            scale_m = max(np.abs(ref_m).max(), 1e-300)
                            assert np.abs(mean[it] - ref_m).max() <= 1e-6 * scale_m
                            assert np.abs(cov[it] - ref_c).max() <= 1e-6 * np.abs(ref_c).max()
                            checked += 1
    assert checked >= 150


# --------------------------------------------------------------------------- misc API
@pytest.mark.filterwarnings("ignore::sklearn_ntk.exceptions.SingularKernelWarning")
def test_shapes_multi_time_and_1d_y():
    Phi, Phi_test, y = _problem(k=1)
    dyn = KernelDynamics(Phi @ Phi.T, y[:, 0])
    td = Phi_test @ Phi.T
    assert dyn.mean(1.0, td).shape == (4,)
    assert dyn.mean([1.0, 2.0], td).shape == (2, 4)
    assert dyn.dual_coef(1.0).shape == (7, 1)
    assert dyn.dual_coef([1.0, np.inf]).shape == (2, 7, 1)
    assert np.ndim(dyn.training_loss(1.0)) == 0
    dyn3 = KernelDynamics(Phi @ Phi.T, np.repeat(y, 3, axis=1))
    assert dyn3.mean([1.0, 2.0, np.inf], td).shape == (3, 4, 3)
    # the multi-time batch equals single-time calls
    many = dyn3.mean([1.0, 2.0, np.inf], td)
    np.testing.assert_allclose(many[1], dyn3.mean(2.0, td), rtol=1e-12)


def test_training_loss_matches_train_predictions_with_alpha():
    Phi, _, y = _problem(seed=9)
    dyn = KernelDynamics(Phi @ Phi.T + 0.1, y, alpha=0.4, learning_rate=2.0)
    times = np.array([0.0, 1.0, 10.0, np.inf])
    f = dyn.mean(times)  # predictions at the training inputs
    ref = 0.5 * ((f - y) ** 2).mean(axis=(1, 2))
    np.testing.assert_allclose(dyn.training_loss(times), ref, rtol=1e-10)
    assert np.all(np.diff(dyn.training_loss(times)) < 0)


def test_inputs_are_not_modified():
    Phi, Phi_test, y = _problem()
    theta = Phi @ Phi.T
    copies = theta.copy(), y.copy()
    dyn = KernelDynamics(theta, y, alpha=0.5)
    dyn.mean([1.0, np.inf], Phi_test @ Phi.T)
    dyn.mean(2.0, Phi_test @ Phi.T, method="krylov")
    np.testing.assert_array_equal(theta, copies[0])
    np.testing.assert_array_equal(y, copies[1])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"learning_rate": 0.0}, "learning_rate must be > 0"),
        ({"learning_rate": -1.0}, "learning_rate must be > 0"),
        ({"learning_rate": np.nan}, "learning_rate must be finite"),
        ({"alpha": -0.1}, "alpha must be >= 0"),
        ({"kind": "foo"}, "kind must be one of"),
        ({"dynamics": "sgd"}, "dynamics must be one of"),
    ],
)
def test_constructor_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        KernelDynamics(np.eye(3), np.ones(3), **kwargs)


def test_input_validation():
    with pytest.raises(ValueError, match="kernel_train contains NaN"):
        KernelDynamics(np.full((2, 2), np.nan), np.ones(2))
    with pytest.raises(ValueError, match="kernel_train has shape"):
        KernelDynamics(np.eye(3), np.ones(2))
    with pytest.raises(ValueError, match="y contains NaN"):
        KernelDynamics(np.eye(2), [1.0, np.inf])
    dyn = KernelDynamics(np.eye(3), np.ones(3))
    with pytest.raises(ValueError, match="t must be non-negative"):
        dyn.mean(-1.0)
    with pytest.raises(ValueError, match="t must not be NaN"):
        dyn.mean([1.0, np.nan])
    with pytest.raises(ValueError, match="kernel_test_train has shape"):
        dyn.mean(1.0, np.ones((2, 4)))


# --------------------------------------------------------------------------- gd stability
def test_unstable_learning_rate_warns_with_max_stable_rate():
    Phi, _, y = _problem(k=1)
    theta = Phi @ Phi.T
    lam_max = np.linalg.eigvalsh(theta)[-1]
    n = len(y)
    eta_max = max_stable_learning_rate(lam_max, n, 1)
    np.testing.assert_allclose(eta_max, 2 * n / lam_max)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        KernelDynamics(theta, y, learning_rate=0.99 * eta_max, dynamics="gd").mean(3.0)
    dyn = KernelDynamics(theta, y, learning_rate=1.5 * eta_max, dynamics="gd")
    with pytest.warns(UnstableLearningRateWarning, match=f"{eta_max:.6g}"):
        dyn.mean(3.0)


# --------------------------------------------------------------------------- Krylov
@pytest.mark.parametrize("dyn_kind", ["flow", "gd"])
def test_krylov_matches_eigh(dyn_kind):
    rng = np.random.default_rng(10)
    X = rng.normal(size=(400, 5))
    theta = np.exp(-0.5 * ((X[:, None, :] - X[None, :, :]) ** 2).sum(-1) / 4.0)
    y = rng.normal(size=(400, 2))
    Xt = rng.normal(size=(30, 5))
    td = np.exp(-0.5 * ((Xt[:, None, :] - X[None, :, :]) ** 2).sum(-1) / 4.0)
    for t in (5.0, 300.0):
        a = KernelDynamics(theta, y, alpha=1e-3, learning_rate=1.0, dynamics=dyn_kind)
        b = KernelDynamics(theta, y, alpha=1e-3, learning_rate=1.0, dynamics=dyn_kind)
        ref = a.mean(t, td, method="eigh")
        got = b.mean(t, td, method="krylov")
        assert b._eig is None  # really computed without an eigendecomposition
        np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-8 * np.abs(ref).max())


def test_lanczos_reports_non_convergence():
    A = np.diag(np.linspace(1e-6, 1.0, 200))
    R = np.ones((200, 1))
    assert lanczos_filter(DenseOperator(A), R, lambda x: 1.0 / x, max_iter=5) is None
    assert lanczos_filter(DenseOperator(A), R, lambda x: 1.0 / x, max_iter=400) is not None


@pytest.mark.parametrize("kind", ["ntk", "nngp"])
@pytest.mark.parametrize("alpha", [0.0, 0.05])
def test_t_inf_covariance_without_eigendecomposition(kind, alpha):
    """At t = inf the covariance comes from the Cholesky factor (no eigh); same numbers."""
    rng = np.random.default_rng(11)
    Psi = rng.normal(size=(14, 20)) / 4
    Phi = rng.normal(size=(14, 20)) / 4 if kind == "ntk" else Psi
    K, theta = Psi[:10] @ Psi[:10].T, Phi[:10] @ Phi[:10].T
    K_td, theta_td, K_tt = Psi[10:] @ Psi[:10].T, Phi[10:] @ Phi[:10].T, Psi[10:] @ Psi[10:].T
    y = rng.normal(size=10)
    fast = KernelDynamics(theta, y, alpha=alpha, nngp_train=K, kind=kind)
    ref = KernelDynamics(theta, y, alpha=alpha, nngp_train=K, kind=kind)
    ref.eigh()
    for diag in (False, True):
        tt = np.diag(K_tt) if diag else K_tt
        got = fast.covariance(np.inf, theta_td, tt, K_td, diag=diag)
        assert fast._eig is None
        np.testing.assert_allclose(got, ref.covariance(np.inf, theta_td, tt, K_td, diag=diag),
                                   rtol=1e-8, atol=1e-12)
