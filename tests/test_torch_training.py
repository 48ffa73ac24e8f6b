"""Gradient descent, the linearised model and its closed form, NTK drift."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from sklearn_ntk._dynamics import max_stable_learning_rate  # noqa: E402
from sklearn_ntk.nn import NTKMLP  # noqa: E402
from sklearn_ntk.torch_ntk import empirical_ntk  # noqa: E402
from sklearn_ntk.training import (  # noqa: E402
    LinearizedModel,
    gradient_descent,
    linearized_trajectory,
    ntk_drift,
    relative_ntk_change,
)

DT = torch.float64


def data(n=10, m=4, d=3, k=2, seed=0):
    rng = np.random.default_rng(seed)
    X, Xt = rng.normal(size=(n, d)), rng.normal(size=(m, d))
    y = np.sin(X @ rng.normal(size=(d, k)))
    return X, y, Xt


def test_gradient_descent_step_and_loss_definition():
    X, y, Xt = data()
    net = NTKMLP(3, 1, 8, "tanh", out_features=2, seed=0, dtype=DT)
    before = {k: p.detach().clone() for k, p in net.named_parameters()}
    res = gradient_descent(net, X, y, learning_rate=0.7, steps=[0, 1, 3], X_test=Xt)
    for k, p in net.named_parameters():  # the caller's model is not trained
        assert torch.equal(p, before[k]) and p.grad is None
    # one manual step of theta <- theta - eta * grad(0.5 * mse)
    xt, yt = torch.as_tensor(X), torch.as_tensor(y)
    f = net(xt)
    loss = ((f - yt) ** 2).sum() / (2 * 10 * 2)
    grads = torch.autograd.grad(loss, list(net.parameters()))
    stepped = NTKMLP(3, 1, 8, "tanh", out_features=2, seed=0, dtype=DT)
    with torch.no_grad():
        for p, g in zip(stepped.parameters(), grads, strict=True):
            p -= 0.7 * g
    np.testing.assert_allclose(res.train_predictions[0], f.detach().numpy(), rtol=1e-14)
    np.testing.assert_allclose(res.train_predictions[1], stepped(xt).detach().numpy(),
                               rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(res.test_predictions[1],
                               stepped(torch.as_tensor(Xt)).detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(res.train_loss[0], loss.item(), rtol=1e-14)
    expected = 0.5 * np.mean((res.train_predictions - y[None]) ** 2, axis=(1, 2))
    np.testing.assert_allclose(res.train_loss, expected, rtol=1e-12)
    assert res.train_loss[2] < res.train_loss[0]
    assert res.train_predictions.shape == (3, 10, 2) and res.test_predictions.shape == (3, 4, 2)


def test_linearized_model_is_the_first_order_taylor_expansion():
    X, _, _ = data()
    x = torch.as_tensor(X)
    net = NTKMLP(3, 2, 6, "erf", out_features=2, seed=1, dtype=DT)
    lin = LinearizedModel(net)
    torch.testing.assert_close(lin(x), net(x), rtol=1e-14, atol=1e-14)
    # move theta; f_lin must equal f0 + J0 (theta - theta0) with J0 from autograd
    gen = torch.Generator().manual_seed(0)
    deltas = [0.1 * torch.randn(p.shape, dtype=DT, generator=gen) for p in lin.params]
    with torch.no_grad():
        for p, d in zip(lin.params, deltas, strict=True):
            p += d
    f0 = net(x)
    jvp = torch.zeros_like(f0)
    for i in range(f0.shape[0]):
        for a in range(f0.shape[1]):
            gs = torch.autograd.grad(f0[i, a], list(net.parameters()), retain_graph=True)
            jvp[i, a] = sum((g * d).sum() for g, d in zip(gs, deltas, strict=True))
    torch.testing.assert_close(lin(x), (f0 + jvp).detach(), rtol=1e-12, atol=1e-12)
    assert len(list(p for p in lin.parameters() if p.requires_grad)) == 6


def test_closed_form_equals_gradient_descent_on_linearized_model():
    """Discrete-time GD filter: exact to round-off, multi-output (full k x k NTK blocks)."""
    X, y, Xt = data()
    net = NTKMLP(3, 2, 16, "tanh", 1.5, 0.3, out_features=2, seed=2, dtype=DT)
    steps = [0, 1, 7, 60]
    cf = linearized_trajectory(net, X, y, Xt, learning_rate=1.0, steps=steps)
    gd = gradient_descent(LinearizedModel(net), X, y, learning_rate=1.0, steps=steps,
                          X_test=Xt)
    np.testing.assert_allclose(cf["train_predictions"], gd.train_predictions, atol=1e-10)
    np.testing.assert_allclose(cf["test_predictions"], gd.test_predictions, atol=1e-10)
    np.testing.assert_allclose(cf["train_loss"], gd.train_loss, rtol=1e-9)
    assert cf["ntk_train"].shape == (10, 10, 2, 2)


def test_wide_network_tracks_its_linearisation():
    """Relative L2 error of f_t - f_0 on test points, GD of the network vs the closed form of the
    same network's linearisation: small, and smaller for the wider network."""
    X, y, Xt = data(n=12, m=6, d=3, k=1, seed=3)
    errors = []
    for width in (64, 1024):
        net = NTKMLP(3, 2, width, "relu", seed=0, dtype=DT)
        lam = np.linalg.eigvalsh(empirical_ntk(net, X))[-1]
        lr = 0.3 * max_stable_learning_rate(lam, 12, 1) / 2  # eta*lam_max/(n k) = 0.3
        steps = [0, 40]
        cf = linearized_trajectory(net, X, y, Xt, learning_rate=lr, steps=steps)
        gd = gradient_descent(net, X, y, learning_rate=lr, steps=steps, X_test=Xt)
        d_gd = gd.test_predictions[-1] - gd.test_predictions[0]
        d_cf = cf["test_predictions"][-1] - cf["test_predictions"][0]
        np.testing.assert_allclose(cf["test_predictions"][0], gd.test_predictions[0],
                                   rtol=1e-12)
        errors.append(np.linalg.norm(d_gd - d_cf) / np.linalg.norm(d_cf))
    assert errors[1] < 0.05 and errors[1] < errors[0] / 2, errors


def test_ntk_drift_falls_with_width():
    X, y, _ = data(n=8, k=1, seed=4)
    drift = ntk_drift(X, y, [32, 512], depth=2, learning_rate=1.0, steps=[0, 10, 30],
                      seeds=[0, 1])
    assert drift.shape == (2, 2, 3)
    np.testing.assert_array_equal(drift[:, :, 0], 0.0)
    assert np.all(drift[:, :, 2] > 0)
    assert drift[1, :, 2].mean() < drift[0, :, 2].mean() / 2


def test_relative_ntk_change_and_validation():
    assert relative_ntk_change([[2.0, 0.0], [0.0, 1.0]], np.eye(2)) == pytest.approx(
        1 / np.sqrt(2)
    )
    with pytest.raises(ValueError, match="same shape"):
        relative_ntk_change(np.eye(2), np.eye(3))
    X, y, _ = data(k=1)
    net = NTKMLP(3, 1, 4, seed=0, dtype=DT)
    with pytest.raises(ValueError, match="strictly increasing"):
        gradient_descent(net, X, y, learning_rate=0.1, steps=[3, 1])
    with pytest.raises(ValueError, match="learning_rate"):
        gradient_descent(net, X, y, learning_rate=-1.0, steps=[1])
    with pytest.raises(ValueError, match="rows"):
        gradient_descent(net, X, y[:5], learning_rate=0.1, steps=[1])
    with pytest.raises(ValueError, match="dynamics"):
        linearized_trajectory(net, X, y, learning_rate=0.1, steps=[1], dynamics="sgd")


@pytest.mark.slow
def test_issue_case_width_4096_within_5_percent():
    """The issue's criterion: depth-2 ReLU NTKMLP, n = 40, width 4096, eta*lam_max/(n k) = 0.3:
    GD's f_t - f_0 on test points within 5% (relative L2) of the linearised closed form."""
    from sklearn_ntk.kernels import NTKKernel

    rng = np.random.default_rng(0)
    X, Xt = rng.normal(size=(40, 8)), rng.normal(size=(20, 8))
    y = np.sin(2 * X @ (rng.normal(size=8) / np.sqrt(8)))
    eta = 0.3 * 40 / np.linalg.eigvalsh(NTKKernel(depth=2, activation="relu")(X))[-1]
    errors, drifts = [], []
    for width in (256, 4096):
        net = NTKMLP(8, 2, width, "relu", seed=0, dtype=DT)
        kernels = []
        gd = gradient_descent(net, X, y, learning_rate=eta, steps=[0, 100], X_test=Xt,
                              callback=lambda t, m, ks=kernels: ks.append(empirical_ntk(m, X)))
        cf = linearized_trajectory(net, X, y, Xt, learning_rate=eta, steps=[0, 100])
        d_gd = gd.test_predictions[-1] - gd.test_predictions[0]
        d_cf = cf["test_predictions"][-1] - cf["test_predictions"][0]
        errors.append(np.linalg.norm(d_gd - d_cf) / np.linalg.norm(d_cf))
        drifts.append(relative_ntk_change(kernels[-1], kernels[0]))
    assert errors[1] < 0.05 and errors[1] < errors[0] / 2
    assert drifts[1] < drifts[0] / 2
