"""NTKMLP follows DESIGN §1 and converges to NTKKernel (NTK) / its NNGP as the width grows."""

import math
import pickle

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from sklearn_ntk.activations import ACTIVATION_NAMES  # noqa: E402
from sklearn_ntk.kernels import NTKKernel  # noqa: E402
from sklearn_ntk.nn import NTKMLP, NTKLinear  # noqa: E402
from sklearn_ntk.torch_ntk import empirical_ntk  # noqa: E402

DT = torch.float64


def test_layers_follow_the_ntk_parameterisation():
    net = NTKMLP(3, 2, 5, "tanh", weight_std=1.7, bias_std=0.4, out_features=2, seed=0,
                 dtype=DT)
    x = torch.randn(4, 3, dtype=DT)
    h = x
    for i, layer in enumerate(net.layers):
        W, b = layer.weight.detach(), layer.bias.detach()
        z = 1.7 / math.sqrt(W.shape[1]) * h @ W.T + 0.4 * b
        h = torch.tanh(z) if i < 2 else z
    torch.testing.assert_close(net(x), h, rtol=1e-13, atol=1e-13)
    assert [tuple(layer.weight.shape) for layer in net.layers] == [(5, 3), (5, 5), (2, 5)]


def test_seeded_construction_is_reproducible_across_dtypes():
    a = NTKMLP(3, 1, 8, seed=5, dtype=DT)
    b = NTKMLP(3, 1, 8, seed=5, dtype=torch.float32)
    c = NTKMLP(3, 1, 8, seed=6, dtype=DT)
    for pa, pb, pc in zip(a.parameters(), b.parameters(), c.parameters(), strict=True):
        torch.testing.assert_close(pa.detach().float(), pb.detach())
        assert not torch.equal(pa, pc)
    g = torch.Generator().manual_seed(5)
    d = NTKMLP(3, 1, 8, generator=g, dtype=DT)
    for pa, pd in zip(a.parameters(), d.parameters(), strict=True):
        assert torch.equal(pa, pd)
    # N(0, 1) entries, not a fan-in scaled init
    big = NTKMLP(2, 2, 400, seed=0, dtype=DT)  # 160000 entries: sd of the sample sd 0.002
    assert abs(big.layers[1].weight.std().item() - 1.0) < 0.01


def test_depth0_ntk_is_exact():
    X = np.random.default_rng(0).normal(size=(6, 4))
    net = NTKMLP(4, 0, 1, weight_std=1.3, bias_std=0.2, seed=0, dtype=DT)
    expected = 1.3**2 * X @ X.T / 4 + 0.2**2
    np.testing.assert_allclose(empirical_ntk(net, X), expected, rtol=1e-12)
    np.testing.assert_allclose(
        NTKKernel(depth=0, weight_std=1.3, bias_std=0.2)(X), expected, rtol=1e-10
    )


@pytest.mark.parametrize("activation", ["relu", "erf"])
def test_empirical_ntk_converges_to_ntk_kernel(activation):
    """Mean relative Frobenius error over 6 fixed seeds falls like width^(-1/2)."""
    X = np.random.default_rng(0).normal(size=(5, 4))
    ntk, _ = NTKKernel(depth=2, activation=activation, weight_std=1.4,
                       bias_std=0.3).ntk_and_nngp(X)
    widths = [64, 256, 1024]
    errors = []
    for w in widths:
        errs = [
            np.linalg.norm(empirical_ntk(NTKMLP(4, 2, w, activation, 1.4, 0.3, seed=s,
                                                dtype=DT), X) - ntk) / np.linalg.norm(ntk)
            for s in range(6)
        ]
        errors.append(np.mean(errs))
    slope = np.polyfit(np.log(widths), np.log(errors), 1)[0]
    assert errors[0] > errors[1] > errors[2]
    assert -0.9 < slope < -0.25, (errors, slope)
    assert errors[-1] < 0.12


@pytest.mark.parametrize("activation", ["relu", "erf"])
def test_output_covariance_over_seeds_is_nngp(activation):
    """E[f(x) f(x')] over initialisations equals the NNGP kernel (within Monte-Carlo error)."""
    X = np.random.default_rng(1).normal(size=(3, 4))
    _, nngp = NTKKernel(depth=2, activation=activation, weight_std=1.4,
                        bias_std=0.3).ntk_and_nngp(X)
    Xt = torch.as_tensor(X)
    S = 300
    with torch.no_grad():
        F = np.stack([
            NTKMLP(4, 2, 128, activation, 1.4, 0.3, seed=s, dtype=DT)(Xt).numpy()[:, 0]
            for s in range(S)
        ])
    prods = F[:, :, None] * F[:, None, :]
    mean, se = prods.mean(0), prods.std(0) / np.sqrt(S)
    z = np.abs(mean - nngp) / se
    assert z.max() < 4.5, z  # 6 distinct entries; fixed seeds, so this cannot flake
    # a wrong parameterisation (e.g. standard instead of NTK scaling) is far outside this
    assert np.all(np.abs(mean - nngp) < 0.25 * np.sqrt(np.outer(np.diag(nngp), np.diag(nngp))))


@pytest.mark.parametrize("name", ACTIVATION_NAMES)
def test_every_named_activation_runs(name):
    net = NTKMLP(3, 1, 4, name, seed=0, dtype=DT)
    out = net(torch.randn(2, 3, dtype=DT))
    assert out.shape == (2, 1) and torch.isfinite(out).all()


def test_pickle_and_callable_activation():
    net = NTKMLP(3, 2, 6, "gelu", seed=1, dtype=DT)
    again = pickle.loads(pickle.dumps(net))
    x = torch.randn(4, 3, dtype=DT)
    assert torch.equal(net(x), again(x))
    custom = NTKMLP(3, 1, 4, torch.tanh, seed=1, dtype=DT)
    ref = NTKMLP(3, 1, 4, "tanh", seed=1, dtype=DT)
    torch.testing.assert_close(custom(x), ref(x))


def test_validation():
    with pytest.raises(ValueError, match="depth"):
        NTKMLP(3, -1, 4)
    with pytest.raises(TypeError, match="width"):
        NTKMLP(3, 1, 4.0)
    with pytest.raises(ValueError, match="weight_std"):
        NTKMLP(3, 1, 4, weight_std=-1.0)
    with pytest.raises(ValueError, match="bias_std"):
        NTKLinear(3, 2, bias_std=float("nan"))
    with pytest.raises(ValueError, match="activation"):
        NTKMLP(3, 1, 4, "nope")
    with pytest.raises(TypeError, match="seed"):
        NTKMLP(3, 1, 4, seed="0")
