"""Activation objects: names, parameters, clone / pickle / equality / repr, derivatives."""

import pickle

import numpy as np
import pytest
from sklearn.base import clone

from sklearn_ntk.activations import (
    ACTIVATION_NAMES,
    ABReLU,
    Activation,
    Custom,
    LeakyReLU,
    get_activation,
)

PARAMETERISED = [LeakyReLU(0.2), ABReLU(-0.4, 1.2), Custom(np.tanh, name="mytanh")]


@pytest.mark.parametrize("name", ACTIVATION_NAMES)
def test_every_name_resolves_and_round_trips(name):
    act = get_activation(name)
    assert isinstance(act, Activation)
    assert get_activation(name.upper()) == act
    for other in (clone(act), pickle.loads(pickle.dumps(act))):
        assert other == act and hash(other) == hash(act)
    x = np.linspace(-3, 3, 13)
    np.testing.assert_allclose(act(x), act.numpy_fn(x))


@pytest.mark.parametrize("act", PARAMETERISED, ids=repr)
def test_parameterised_activations(act):
    for other in (clone(act), pickle.loads(pickle.dumps(act))):
        assert other == act
        assert repr(other) == repr(act)
    assert "(" in repr(act) and "0x" not in repr(act).split("fn=")[0]


def test_equality_distinguishes_parameters():
    assert LeakyReLU(0.1) != LeakyReLU(0.2)
    assert LeakyReLU(0.1) != ABReLU(0.1, 1.0)  # same function, different type and params
    assert repr(LeakyReLU(0.1)) == "LeakyReLU(negative_slope=0.1)"
    assert LeakyReLU(0.1).set_params(negative_slope=0.3) == LeakyReLU(0.3)
    with pytest.raises(ValueError, match="Invalid parameter"):
        LeakyReLU().set_params(slope=0.3)


@pytest.mark.parametrize("name", ["erf", "gelu", "sin", "tanh", "sigmoid", "silu", "identity"])
def test_derivatives_match_finite_differences(name):
    act = get_activation(name)
    x = np.linspace(-2.5, 2.5, 11)
    d = act.derivatives(x, order=3)
    h = 1e-5
    for k in range(3):
        fd = (act.derivatives(x + h, order=k)[k] - act.derivatives(x - h, order=k)[k]) / (2 * h)
        np.testing.assert_allclose(d[k + 1], fd, rtol=1e-6, atol=1e-8)


def test_custom_numerical_derivatives():
    act = Custom(np.sin)
    x = np.linspace(-2, 2, 9)
    d = act.derivatives(x, order=3)
    np.testing.assert_allclose(d[1], np.cos(x), atol=1e-10)
    np.testing.assert_allclose(d[2], -np.sin(x), atol=1e-7)
    np.testing.assert_allclose(d[3], -np.cos(x), atol=1e-5)


def test_bad_specs():
    with pytest.raises(ValueError, match="Unknown activation"):
        get_activation("softmax")
    with pytest.raises(TypeError, match="activation must be"):
        get_activation(1.0)
    with pytest.raises(TypeError, match="negative_slope"):
        get_activation(LeakyReLU("a"))
    with pytest.raises(TypeError, match="callable"):
        get_activation(Custom(3))


def test_torch_functions_match_numpy():
    torch = pytest.importorskip("torch")
    x = np.linspace(-3, 3, 25)
    for name in ACTIVATION_NAMES:
        act = get_activation(name)
        got = act(torch.tensor(x, dtype=torch.float64)).numpy()
        np.testing.assert_allclose(got, act.numpy_fn(x), rtol=1e-12, atol=1e-12, err_msg=name)
    for act in PARAMETERISED[:2]:
        got = act(torch.tensor(x, dtype=torch.float64)).numpy()
        np.testing.assert_allclose(got, act.numpy_fn(x), rtol=1e-12)


@pytest.mark.parametrize("spec", ["ReLU", "Abs", "LeakyReLU", "ABReLU"])
def test_parameterless_and_parameterised_relatives_validate(spec):
    """Instances (not only strings) of every ReLU relative are accepted, and bad slopes refused."""
    import sklearn_ntk.activations as acts
    from sklearn_ntk import NTKKernel

    act = getattr(acts, spec)()
    assert acts.get_activation(act) is not None
    assert NTKKernel(activation=act)(np.eye(2)).shape == (2, 2)
    if spec in ("LeakyReLU", "ABReLU"):
        name = "negative_slope" if spec == "LeakyReLU" else "a"
        with pytest.raises((TypeError, ValueError), match=name):
            acts.get_activation(act.set_params(**{name: "x"}))
