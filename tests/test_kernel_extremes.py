"""NTKKernel at numerical extremes: huge and tiny input norms, large weight_std, large n.

Valid input gives correct finite output; input whose kernel is not representable in float64 gets a
clear ValueError -- never a silent NaN or inf.
"""

import pickle
import warnings

import numpy as np
import pytest
from sklearn.base import clone

from sklearn_ntk import NTKKernel
from sklearn_ntk.activations import Activation
from sklearn_ntk.backends.fused import gram_matrix, row_sq_norms


def _unit_rows(n=5, d=3, seed=0):
    X = np.random.default_rng(seed).standard_normal((n, d))
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def _rel(a, b):
    return np.max(np.abs(a - b)) / np.max(np.abs(b))


@pytest.mark.parametrize("kind", ["ntk", "nngp"])
@pytest.mark.parametrize("scale", [1e-150, 1e-3, 1e4, 1e40, 1e100, 1e150])
def test_relu_without_bias_is_homogeneous_at_every_scale(kind, scale):
    X = _unit_rows()
    k = NTKKernel(depth=3, activation="relu", bias_std=0.0, weight_std=1.5, kind=kind)
    ref = k(X)
    out = k(X * scale)
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(out / scale**2, ref, rtol=1e-12, atol=0)


@pytest.mark.parametrize("scale", [1e40, 1e80, 1e120, 1e150])
def test_erf_is_scale_invariant_at_huge_norms(scale):
    """At huge variances erf saturates: the NNGP and the off-diagonal NTK converge; the diagonal
    NTK grows like the input norm (sigma-dot ~ 1/norm times Theta^1 ~ norm^2)."""
    X = _unit_rows()
    off = ~np.eye(len(X), dtype=bool)
    for kind in ("ntk", "nngp"):
        k = NTKKernel(depth=2, activation="erf", kind=kind)
        ref = k(X * 1e30)
        out = k(X * scale)
        assert np.all(np.isfinite(out))
        assert _rel(out[off], ref[off]) < 1e-12
        if kind == "ntk":
            np.testing.assert_allclose(np.diag(out) / scale, np.diag(ref) / 1e30, rtol=1e-12)
        else:
            assert _rel(out, ref) < 1e-12


@pytest.mark.parametrize("scale", [1e40, 1e80, 1e120, 1e150])
def test_gelu_equals_relu_at_huge_norms(scale):
    """GELU(x) - ReLU(x) = -|x| Phi(-|x|): negligible at variances ~1e80 and above."""
    X = _unit_rows()
    for kind in ("ntk", "nngp"):
        gelu = NTKKernel(depth=2, activation="gelu", kind=kind, weight_std=2.0)(X * scale)
        relu = NTKKernel(depth=2, activation="relu", kind=kind, weight_std=2.0)(X * scale)
        assert np.all(np.isfinite(gelu))
        assert _rel(gelu, relu) < 1e-12


@pytest.mark.parametrize(
    "activation", ["relu", "erf", "gelu", "sign", "sin", "identity", "tanh", "silu", np.tanh]
)
def test_unrepresentable_kernels_are_refused(activation):
    """Refused with the real row norm in the message, and no warning on the way (the numerical
    activations used to warn about invalid casts and blame SiLU for being infinite)."""
    X = _unit_rows() * 1e200
    message = r"overflows float64 for inputs with row norms up to 1e\+200 "
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match=message):
            NTKKernel(activation=activation)(X)
        with pytest.raises(ValueError, match=message):
            NTKKernel(activation=activation).diag(X)
        with pytest.raises(ValueError, match=r"its gradient overflows .* up to 1e\+200 "):
            NTKKernel(activation=activation)(X, eval_gradient=True)


def test_first_layer_overflow_of_a_numerical_activation_is_refused_without_warnings():
    """|x|^2 / d is finite but weight_std^2 |x|^2 / d is not."""
    X = _unit_rows() * 1e154
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match=r"row norms up to 1e\+154 "):
            NTKKernel(activation="silu", weight_std=1e3)(X)


def test_gradient_at_huge_norms_is_finite_or_refused():
    X = _unit_rows() * 1e80
    K, dK = NTKKernel(depth=2, activation="erf")(X, eval_gradient=True)
    assert np.all(np.isfinite(K)) and np.all(np.isfinite(dK))
    with pytest.raises(ValueError, match="overflows float64"):
        NTKKernel(depth=2, activation="relu")(X * 1e100, eval_gradient=True)


def test_scaled_input_products_match_plain_ones():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((7, 4))
    Y = rng.standard_normal((3, 4))
    for s in (1.0, 2.0**300, 1e150):
        g = gram_matrix(X * s, Y * s)
        np.testing.assert_allclose(g / s**2, X @ Y.T / 4, rtol=1e-14, atol=1e-300)
        np.testing.assert_allclose(row_sq_norms(X * s) / s**2, (X * X).sum(1) / 4, rtol=1e-14)


@pytest.mark.parametrize("block_bytes", [1, 8 * 50, 1 << 30])
def test_blocked_gram_upper_triangle(block_bytes):
    """Any block size (one row per block, a few rows, everything) gives X X^T / d on j >= i."""
    X = np.random.default_rng(2).standard_normal((23, 5))
    g = gram_matrix(X, block_bytes=block_bytes)
    ref = X @ X.copy().T / 5
    iu = np.triu_indices(23)
    np.testing.assert_allclose(g[iu], ref[iu], rtol=1e-14, atol=1e-15)
    gxy = gram_matrix(X, X[:4], block_bytes=block_bytes)
    np.testing.assert_allclose(gxy, ref[:, :4], rtol=1e-14, atol=1e-15)


def test_thirty_thousand_rows_against_few_columns():
    """n = 30,000 rows: k(X, C) for a few centres (the Nystrom shape) and diag stay cheap."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal((30_000, 4))
    k = NTKKernel(depth=2)
    K = k(X, X[:5])
    assert K.shape == (30_000, 5) and np.all(np.isfinite(K))
    np.testing.assert_allclose(K[:5], k(X[:5]), rtol=1e-12)
    np.testing.assert_allclose(k.diag(X)[:5], np.diag(k(X[:5])), rtol=1e-12)


@pytest.mark.slow
def test_thirty_thousand_rows_full_kernel():
    """The full 30,000 x 30,000 k(X) (numpy's syrk path used to crash the interpreter)."""
    X = np.random.default_rng(4).standard_normal((30_000, 3))
    k = NTKKernel(depth=1)
    K = k(X)
    assert K.shape == (30_000, 30_000)
    np.testing.assert_allclose(K[-3:, -3:], k(X[-3:]), rtol=1e-12)
    assert np.array_equal(K[:100, 5], K[5, :100])


# --------------------------------------------------------------------------------- subclasses
class Softplus(Activation):
    """An activation subclass written as the base class docstring describes."""

    name = "softplus"

    def __init__(self, beta=1.0):
        self.beta = beta

    def numpy_fn(self, x):
        return np.logaddexp(0.0, self.beta * x) / self.beta

    def derivatives(self, x, order=1):
        s = 1.0 / (1.0 + np.exp(-self.beta * x))
        d2 = self.beta * s * (1.0 - s)
        return [self.numpy_fn(x), s, d2, self.beta * d2 * (1.0 - 2.0 * s)][: order + 1]


class Forgetful(Activation):
    def __init__(self, beta=1.0):
        self.b = beta


def test_subclass_parameters_survive_clone_pickle_and_eq():
    act = Softplus(beta=3.0)
    assert act.get_params() == {"beta": 3.0}
    assert clone(act).beta == 3.0
    assert pickle.loads(pickle.dumps(act)) == act
    assert act != Softplus(beta=2.0)
    assert repr(act) == "Softplus(beta=3.0)"
    kernel = clone(NTKKernel(activation=act))
    assert kernel.activation.beta == 3.0
    assert kernel.set_params(activation__beta=0.5).activation.beta == 0.5


def test_subclass_that_does_not_store_its_parameter_is_refused():
    with pytest.raises(TypeError, match="does not store it as self.beta"):
        Forgetful(beta=2.0).get_params()


class SoftplusWithoutDerivatives(Activation):
    name = "softplus_fd"

    def __init__(self, beta=1.0):
        self.beta = beta

    def numpy_fn(self, x):
        return np.logaddexp(0.0, self.beta * x) / self.beta


class Nothing(Activation):
    pass


def test_subclass_without_derivatives_uses_central_differences():
    """Used to raise NotImplementedError in every kernel evaluation (and GPR's fit)."""
    X = np.random.default_rng(5).standard_normal((6, 3))
    kw = dict(depth=2, weight_std=1.5)
    ours = NTKKernel(activation=SoftplusWithoutDerivatives(2.0), **kw)
    exact = NTKKernel(activation=Softplus(2.0), **kw)
    np.testing.assert_allclose(ours(X), exact(X), rtol=1e-6)
    K, dK = ours(X, eval_gradient=True)
    K_ref, dK_ref = exact(X, eval_gradient=True)
    np.testing.assert_allclose(dK, dK_ref, rtol=1e-4, atol=1e-6 * np.abs(dK_ref).max())
    with pytest.raises(TypeError, match="Nothing defines neither numpy_fn nor derivatives"):
        NTKKernel(activation=Nothing())(X)


@pytest.mark.parametrize("name", ["weight_std", "bias_std"])
def test_standard_deviation_whose_square_overflows_is_a_value_error(name):
    """Used to be a bare OverflowError (34, 'Numerical result out of range') from float ** 2."""
    from sklearn_ntk import NetworkKernel
    from sklearn_ntk.layers import Dense

    X = _unit_rows()
    with pytest.raises(ValueError, match=rf"{name}=1e\+200 is too large: its square"):
        NTKKernel(**{name: 1e200})(X)
    with pytest.raises(ValueError, match=rf"{name}=1e\+200 is too large"):
        NetworkKernel([Dense(), "relu", Dense()], **{name: 1e200})(X)
    assert np.all(np.isfinite(NTKKernel(depth=0, **{name: 1e150})(X * 1e-150)))
