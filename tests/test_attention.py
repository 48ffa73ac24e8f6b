"""GlobalSelfAttention (infinite heads, linear scaling, softmax) against neural-tangents 0.6.5.

Reference data: ``benchmarks/nt_reference/make_attention_reference.py``.
"""

import json

import numpy as np
import pytest

from sklearn_ntk import NetworkKernel, NTKRegressor
from sklearn_ntk import layers as nl
from tests.network_helpers import DATA, build

META = json.loads((DATA / "nt_attention_reference.json").read_text())
ARRAYS = np.load(DATA / "nt_attention_reference.npz")
RTOL = 1e-7


def kernel(name, kind="ntk"):
    net = META["networks"][name]
    return NetworkKernel(build(net["layers"]), input_shape=tuple(net["input_shape"]),
                         weight_std=net["weight_std"], bias_std=net["bias_std"], kind=kind)


def data(name):
    d = int(np.prod(META["networks"][name]["input_shape"]))
    return ARRAYS[f"X_{d}"], ARRAYS[f"Y_{d}"]


def close(a, b):
    np.testing.assert_allclose(a, b, rtol=RTOL, atol=RTOL * np.abs(b).max())


@pytest.mark.parametrize("name", sorted(META["networks"]))
def test_matches_neural_tangents(name):
    X, Y = data(name)
    k = kernel(name)
    ntk, nngp = k.ntk_and_nngp(X)
    close(ntk, ARRAYS[f"{name}_ntk_xx"])
    close(nngp, ARRAYS[f"{name}_nngp_xx"])
    close(k(X, Y), ARRAYS[f"{name}_ntk_xy"])
    close(kernel(name, "nngp")(X, Y), ARRAYS[f"{name}_nngp_xy"])
    close(k.diag(X), np.diag(ARRAYS[f"{name}_ntk_xx"]))


@pytest.mark.parametrize("name", ["attn_relu", "attn_fixed_std", "attn_transformer"])
def test_gradient_is_exact(name):
    X, _ = data(name)
    X = X[[1, 2, 5]]  # moderate norms: the softmax is smooth there
    k = kernel(name)
    K, grad = k(X, eval_gradient=True)
    close(K, k(X))
    theta = k.theta
    for d in range(theta.size):
        errs = []
        for h in (1e-3, 1e-4):
            tp, tm = theta.copy(), theta.copy()
            tp[d] += h
            tm[d] -= h
            fd = (k.clone_with_theta(tp)(X) - k.clone_with_theta(tm)(X)) / (2 * h)
            errs.append(np.abs(fd - grad[..., d]).max() / np.abs(grad[..., d]).max())
        assert errs[1] < 1e-6 and errs[1] < errs[0], errs  # converging central differences


def test_heads_do_not_matter_and_attention_is_informative():
    X, _ = data("attn_relu")
    def k(layer):
        return NetworkKernel([nl.Dense(), "relu", layer, "relu", nl.GlobalAvgPool(), nl.Dense()],
                             input_shape=(5, 3), weight_std=1.1, bias_std=0.3)(X)
    np.testing.assert_allclose(k(nl.GlobalSelfAttention(1)), k(nl.GlobalSelfAttention(8)), rtol=1e-13)
    assert np.abs(k(nl.GlobalSelfAttention()) - k(nl.Dense())).max() > 1e-3


def test_refused_variants():
    X, _ = data("attn_input")
    for layer, match in (
        (nl.GlobalSelfAttention(linear_scaling=False), "linear_scaling=False has no closed-form"),
        (nl.GlobalSelfAttention(attention_mechanism="relu"), "only 'softmax'"),
        (nl.GlobalSelfAttention(n_heads=0), "n_heads"),
    ):
        with pytest.raises(ValueError, match=match):
            NetworkKernel([layer, nl.GlobalAvgPool(), nl.Dense()], input_shape=(5, 3))(X)
    with pytest.raises(ValueError, match="attention needs positions"):
        NetworkKernel([nl.GlobalSelfAttention(), nl.Dense()])(X)


def test_regressor_runs_on_attention_kernel():
    X, Y = data("attn_transformer")
    y = X[:, :3].sum(1)
    est = NTKRegressor(kernel=kernel("attn_transformer"), alpha=1e-3).fit(X, y)
    K = kernel("attn_transformer")
    expected = K(Y, X) @ np.linalg.solve(K(X) + 1e-3 * np.eye(len(X)), y)
    np.testing.assert_allclose(est.predict(Y), expected, rtol=1e-8, atol=1e-10)
