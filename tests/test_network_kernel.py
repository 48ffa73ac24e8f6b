"""NetworkKernel as a scikit-learn kernel: contract, gradients, equality with NTKKernel, layers API,
validation messages."""

import pickle

import numpy as np
import pytest
from sklearn.base import clone

from sklearn_ntk import NetworkKernel, NTKKernel
from sklearn_ntk import layers as nl
from sklearn_ntk.activations import LeakyReLU

from .kernel_contract import (
    SKLEARN_KERNEL_TESTS,
    check_fresh_writable_float64,
    check_gradient_relative,
    check_pickle_and_clone,
)

# sklearn's kernel tests use X of shape (5, 2): a 2-position sequence with one channel
SK_CONFIGS = [
    NetworkKernel([nl.Dense(), "relu", nl.Dense()], weight_std=1.3, bias_std=0.2),
    NetworkKernel(
        [nl.Conv((2,), padding="circular"), "erf", nl.GlobalAvgPool(), nl.Dense()],
        input_shape=(2, 1),
        kind="nngp",
    ),
    NetworkKernel(
        [nl.Conv((2,)), nl.LayerNorm(), "gelu", nl.Flatten(), nl.Dense()], input_shape=(2, 1)
    ),
]


@pytest.mark.parametrize("kernel", SK_CONFIGS, ids=repr)
@pytest.mark.parametrize("check", SKLEARN_KERNEL_TESTS, ids=lambda f: f.__name__)
def test_sklearn_kernel_tests(check, kernel):
    if check.__name__ == "test_kernel_theta":
        pytest.skip("sklearn applies test_kernel_theta to basic kernels only")
    check(kernel)


def _images(n=5, shape=(3, 4, 2), seed=0):
    X = np.random.RandomState(seed).normal(size=(n, int(np.prod(shape))))
    if n > 3:
        X[3] = X[1]
    return X


GRAD_NETS = {
    "cnn_gap": ([nl.Conv((2, 2)), "relu", nl.Conv((3, 3), strides=(1, 2)), "relu",
                 nl.GlobalAvgPool(), nl.Dense()], (3, 4, 2)),
    "cnn_pool_flatten": ([nl.Conv((2, 2), padding="circular"), "gelu",
                          nl.AvgPool((2, 2), padding="same"), nl.Conv((2, 2), padding="valid"),
                          "erf", nl.Flatten(), nl.Dense()], (3, 4, 2)),
    "residual_layernorm": ([nl.Conv((3,)), nl.Residual("relu", nl.Conv((3,))), nl.LayerNorm(),
                            "tanh", nl.GlobalSumPool(), nl.Dense()], (4, 3)),
    "fixed_layer": ([nl.Dense(weight_std=2.0), "sin", nl.Dense(bias_std=0.0), "relu",
                     nl.Dense()], None),
}


@pytest.mark.parametrize("name", sorted(GRAD_NETS))
def test_gradient_exact_and_converging(name):
    layers, shape = GRAD_NETS[name]
    X = _images(shape=shape or (6,))
    kernel = NetworkKernel(layers, input_shape=shape, weight_std=1.3, bias_std=0.3)
    K, G = kernel(X, eval_gradient=True)
    assert G.shape == (5, 5, 2)
    np.testing.assert_allclose(K, kernel(X), rtol=1e-12)
    theta = kernel.theta
    errors = []
    for h in (1e-2, 1e-3, 1e-4):
        fd = np.empty_like(G)
        for i in range(theta.size):
            e = np.zeros_like(theta)
            e[i] = h
            fd[..., i] = (
                kernel.clone_with_theta(theta + e)(X) - kernel.clone_with_theta(theta - e)(X)
            ) / (2 * h)
        errors.append(np.abs(fd - G).max() / np.abs(G).max())
    # central differences converge to the analytic gradient at rate h^2
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 1e-6 * (1.0 if "tanh" not in str(layers) else 100.0)


def test_gradient_with_fixed_bias():
    X = _images(shape=(3, 4, 1))
    kernel = NetworkKernel([nl.Conv((2, 2)), "relu", nl.GlobalAvgPool(), nl.Dense()],
                           input_shape=(3, 4, 1), bias_std=0.0)
    assert kernel.theta.shape == (1,)
    K, G = kernel(X, eval_gradient=True)
    assert G.shape == (5, 5, 1) and np.all(np.isfinite(G))
    np.testing.assert_allclose(G[1, 3], G[1, 1], rtol=1e-12)  # duplicates behave like the diagonal
    check_gradient_relative(kernel, X)


@pytest.mark.parametrize("act", ["relu", "erf", "gelu", "tanh", LeakyReLU(0.2)])
@pytest.mark.parametrize("depth", [0, 1, 3])
def test_equals_ntk_kernel_exactly(act, depth):
    X = np.random.RandomState(3).normal(size=(6, 4))
    X[0] = 0.0
    X[4] = X[2]
    Y = np.random.RandomState(4).normal(size=(3, 4))
    ref = NTKKernel(depth=depth, activation=act, weight_std=1.4, bias_std=0.2)
    net = NetworkKernel([nl.Dense(), act] * depth + [nl.Dense()], weight_std=1.4, bias_std=0.2)
    for kind in ("ntk", "nngp"):
        ref.kind = net.kind = kind
        K1, G1 = ref(X, eval_gradient=True)
        K2, G2 = net(X, eval_gradient=True)
        np.testing.assert_allclose(K2, K1, rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(G2, G1, rtol=1e-12, atol=1e-14 * np.abs(G1).max())
        np.testing.assert_allclose(net(X, Y), ref(X, Y), rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(net.diag(X), ref.diag(X), rtol=1e-13, atol=1e-15)


def test_generic_contract_and_layers_api():
    layers = [("conv1", nl.Conv((2, 2))), "relu", ("pool", nl.GlobalAvgPool()), nl.Dense()]
    kernel = NetworkKernel(layers, input_shape=(3, 4, 2))
    X = _images()
    check_fresh_writable_float64(kernel, X)
    check_pickle_and_clone(kernel, X)
    Y = _images(n=2, seed=5)
    Xc, Yc = X.copy(), Y.copy()
    np.testing.assert_allclose(kernel(X, Y), kernel(Y, X).T, rtol=1e-12)
    np.testing.assert_array_equal(X, Xc)
    np.testing.assert_array_equal(Y, Yc)
    # layers: ==, repr, clone, pickle
    conv = nl.Conv((3, 3), strides=(2, 1), padding="valid", weight_std=1.5)
    assert repr(conv) == "Conv(filter_shape=(3, 3), strides=(2, 1), padding='valid', weight_std=1.5)"
    assert conv == clone(conv) == pickle.loads(pickle.dumps(conv))
    assert conv != nl.Conv((3, 3), strides=(2, 1), padding="valid")
    assert nl.Dense() == nl.Dense() and nl.Dense() != nl.Dense(bias_std=0.0)
    assert repr(nl.Residual("relu", nl.Dense())).startswith("Serial(layers=[FanOut(num=2)")
    assert "input_shape=(3, 4, 2)" in repr(kernel)


def test_named_layer_parameters_reachable():
    kernel = NetworkKernel(
        [("conv1", nl.Conv((3, 3))), "relu", nl.GlobalAvgPool(), ("readout", nl.Dense())],
        input_shape=(3, 4, 2),
    )
    params = kernel.get_params(deep=True)
    assert params["layers__conv1__filter_shape"] == (3, 3)
    assert params["layers__readout"] == nl.Dense()
    other = clone(kernel).set_params(layers__conv1__filter_shape=(2, 2), weight_std=2.0)
    assert other.layers[0][1].filter_shape == (2, 2) and other.weight_std == 2.0
    assert kernel.layers[0][1].filter_shape == (3, 3)  # the clone owns its layers
    X = _images()
    direct = NetworkKernel([nl.Conv((2, 2)), "relu", nl.GlobalAvgPool(), nl.Dense()],
                           input_shape=(3, 4, 2), weight_std=2.0)
    np.testing.assert_allclose(other(X), direct(X), rtol=1e-14)
    swapped = clone(kernel).set_params(layers__readout=nl.Dense(weight_std=3.0))
    assert swapped.layers[3] == ("readout", nl.Dense(weight_std=3.0))
    with pytest.raises(ValueError, match="No layer named 'nope'"):
        clone(kernel).set_params(layers__nope__strides=(1, 1))
    # nested: a named sub-layer inside a named serial block
    block = nl.serial(("c", nl.Conv((2, 2))), "relu")
    k2 = NetworkKernel([("block", block), nl.Flatten(), nl.Dense()], input_shape=(3, 4, 2))
    assert k2.get_params()["layers__block__layers__c__filter_shape"] == (2, 2)
    k2.set_params(layers__block__layers__c__strides=(2, 2))
    assert block.layers[0][1].strides == (2, 2)


X12 = np.zeros((2, 12))


@pytest.mark.parametrize(
    "layers, shape, match",
    [
        (["relu", nl.Dense()], None, r"layer 0 ReLU\(\).*Gaussian input.*Dense"),
        ([nl.Dense(), "relu", "erf", nl.Dense()], None, r"layer 2 Erf\(\).*Gaussian"),
        ([nl.Conv((2, 2)), "relu", nl.Dense()], (3, 4, 1), "still has spatial axes.*Flatten"),
        ([nl.Conv((2, 2)), "relu", nl.Flatten(), "relu", nl.Dense()], (3, 4, 1), "layer 3.*Gaussian"),
        ([nl.Conv((4, 2), padding="valid"), nl.Flatten(), nl.Dense()], (3, 4, 1),
         r"Conv.*larger than its input \(3, 4\).*VALID"),
        ([nl.Conv((2,)), nl.Flatten(), nl.Dense()], (3, 4, 1), "one entry per spatial axis"),
        ([nl.FanOut(2), nl.parallel(nl.Conv((2, 2)), nl.Conv((2, 2), padding="valid")),
          nl.FanInSum(), nl.Flatten(), nl.Dense()], (3, 4, 1), "FanInSum.*different shapes"),
        ([nl.Conv((2, 2)), nl.FanOut(2), nl.Flatten(), nl.Dense()], (3, 4, 1), "FanInSum"),
        ([nl.Conv((2, 2)), nl.Flatten(), nl.Dense()], (4, 4, 1), "holds 16 values.*12 features"),
        ([nl.Flatten()], (3, 4, 1), "no Dense or Conv"),
        ([nl.Conv((2, 2), padding="full"), nl.Flatten(), nl.Dense()], (3, 4, 1), "padding must be"),
        ([nl.Dense(weight_std=-1.0)], None, "weight_std must be > 0"),
        ([nl.Dense(), nl.GlobalAvgPool(), nl.Dense()], None, "no spatial axes"),
        ([nl.Dense(), nl.LayerNorm(), "relu", nl.Flatten(), nl.LayerNorm()], None, "LayerNorm.*Gaussian"),
        ([nl.Dense(), "no_such_activation"], None, "Unknown activation"),
    ],
)
def test_refused_networks_name_layer_and_fix(layers, shape, match):
    with pytest.raises(ValueError, match=match):
        NetworkKernel(layers, input_shape=shape)(X12)


def test_bad_kernel_parameters():
    # repr never raises (a grid search or a notebook prints the kernel before evaluating it)
    for bad in (NetworkKernel([nl.Dense()], weight_std="big", bias_std=None),
                NTKKernel(weight_std="big", bias_std=None)):
        assert "weight_std='big', bias_std=None" in repr(bad)
        with pytest.raises(TypeError, match="weight_std must be a real number, got 'big'"):
            bad(X12)
    assert "weight_std=1.23, bias_std=0" in repr(NetworkKernel([nl.Dense()], weight_std=1.234,
                                                               bias_std=0))
    with pytest.raises(ValueError, match="kind"):
        NetworkKernel([nl.Dense()], kind="gp")(X12)
    with pytest.raises(TypeError, match="weight_std"):
        NetworkKernel([nl.Dense()], weight_std="big")(X12)
    with pytest.raises(ValueError, match="Gradient"):
        NetworkKernel([nl.Dense()])(X12, X12, eval_gradient=True)
    with pytest.raises(ValueError, match="features"):
        NetworkKernel([nl.Dense()])(X12, np.zeros((2, 3)))
