"""P(argmax of independent Gaussians with a common std = c): sklearn_ntk._argmax_proba."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import integrate
from scipy.special import log_ndtr, ndtr

from sklearn_ntk._argmax_proba import (
    _log_proba_positive_std,
    _mode,
    argmax_log_proba,
    argmax_proba,
)


def _reference_log_proba(mean, std, c):
    """log of the integral by adaptive quadrature around the mode, scaled by the peak value."""
    d = np.array([(mean[c] - mean[j]) / std for j in range(len(mean)) if j != c])

    def g(z):
        return -0.5 * z * z - 0.5 * np.log(2 * np.pi) + log_ndtr(d + z).sum()

    z0 = float(_mode(np.append(d, np.inf)[None, :])[0][0])
    peak = g(z0)
    val, err = integrate.quad(lambda z: np.exp(g(z) - peak), z0 - 12, z0 + 12, points=[z0],
                              epsabs=0, epsrel=1e-13, limit=400)
    assert err < 1e-11 * val
    return peak + np.log(val)


CASES = [
    ([0.3, -0.2, 0.1], 0.5),
    ([1.0, 1.0, 1.0, 0.0], 0.7),  # ties
    ([0.0, 2.0, -1.0, 0.5, 0.25, 3.0], 1.3),
    ([0.0, -40.0, -60.0], 1.0),  # probabilities far below the smallest double
    ([5.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], 0.2),
    (list(np.linspace(-1, 1, 25)), 0.05),
]


@pytest.mark.parametrize("mean, std", CASES)
def test_matches_adaptive_quadrature(mean, std):
    mean = np.asarray(mean)
    raw = _log_proba_positive_std(mean[None], np.array([std]))[0]
    ref = np.array([_reference_log_proba(mean, std, c) for c in range(len(mean))])
    np.testing.assert_allclose(raw, ref, rtol=1e-10, atol=1e-10)
    # normalised result: the same to quadrature accuracy
    np.testing.assert_allclose(argmax_log_proba(mean[None], std)[0], ref, rtol=1e-10, atol=1e-10)


def test_underflowing_probabilities_keep_their_log():
    mean = np.array([[0.0, -40.0, -60.0]])
    logp = argmax_log_proba(mean, 1.0)
    p = argmax_proba(mean, 1.0)
    assert p[0, 2] == 0.0 and np.isfinite(logp[0, 2])
    assert -910 < logp[0, 2] < -900  # about -(60 / sqrt 2)^2 / 2 = -900
    assert logp[0, 0] == pytest.approx(0.0, abs=1e-300)


def test_binary_closed_form_equals_quadrature():
    rng = np.random.default_rng(0)
    mean = rng.normal(size=(20, 2)) * 3
    std = rng.uniform(0.1, 2.0, 20)
    closed = argmax_log_proba(mean, std)
    s = (mean[:, 1] - mean[:, 0]) / (np.sqrt(2) * std)
    np.testing.assert_allclose(closed[:, 1], log_ndtr(s), rtol=1e-14)
    quad = _log_proba_positive_std(mean, std)
    np.testing.assert_allclose(quad, closed, rtol=1e-11, atol=1e-12)


def test_against_monte_carlo():
    rng = np.random.default_rng(1)
    mean = np.array([[0.0, 0.4, -0.3, 0.2], [1.0, 0.0, 0.0, 0.0]])
    std = np.array([0.5, 2.0])
    p = argmax_proba(mean, std)
    n = 200_000
    draws = mean[:, None, :] + std[:, None, None] * rng.standard_normal((2, n, 4))
    winners = draws.argmax(axis=2)
    freq = np.stack([(winners == c).mean(axis=1) for c in range(4)], axis=1)
    bound = 6 * np.sqrt(p * (1 - p) / n)  # six standard errors
    assert np.all(np.abs(freq - p) <= bound)


def test_zero_std_limit_one_hot_with_shared_ties():
    mean = np.array([[0.0, 2.0, 1.0], [3.0, 1.0, 3.0], [1.0, 1.0, 1.0]])
    p = argmax_proba(mean, np.zeros(3))
    np.testing.assert_array_equal(p, [[0, 1, 0], [0.5, 0, 0.5], [1 / 3, 1 / 3, 1 / 3]])
    logp = argmax_log_proba(mean, 0.0)
    assert logp[0, 0] == -np.inf and logp[0, 1] == 0.0
    np.testing.assert_allclose(logp[1, [0, 2]], np.log(0.5))
    # continuity: a tiny std is already one-hot
    np.testing.assert_allclose(argmax_proba(mean[:1], 1e-9), [[0, 1, 0]], atol=1e-300)
    np.testing.assert_allclose(argmax_proba(mean[:1], 1e-300), [[0, 1, 0]], atol=1e-300)


@pytest.mark.parametrize("k", [2, 3, 7])
def test_equal_means_and_huge_std_are_uniform(k):
    p = argmax_proba(np.full((2, k), 0.3), np.array([1.0, 5.0]))
    np.testing.assert_allclose(p, 1.0 / k, rtol=1e-14)
    rng = np.random.default_rng(k)
    p = argmax_proba(rng.normal(size=(1, k)), 1e12)
    np.testing.assert_allclose(p, 1.0 / k, rtol=1e-9)


def test_single_column_and_validation():
    np.testing.assert_array_equal(argmax_proba([[1.0], [2.0]], 1.0), [[1.0], [1.0]])
    with pytest.raises(ValueError, match="2-D"):
        argmax_proba([1.0, 2.0], 1.0)
    with pytest.raises(ValueError, match="non-negative"):
        argmax_proba([[1.0, 2.0]], -1.0)
    with pytest.raises(ValueError, match="finite"):
        argmax_proba([[1.0, np.nan]], 1.0)
    mean = np.array([[1.0, 2.0, 0.5]])
    before = mean.copy()
    argmax_proba(mean, np.array([0.3]))
    np.testing.assert_array_equal(mean, before)


def test_floating_point_errors_are_not_raised():
    with np.errstate(all="raise"):
        p = argmax_proba([[0.0, -40.0, -60.0], [0.0, 0.0, 0.0], [0.0, 1e-310, 5.0]],
                         [1.0, 0.0, 1e-320])
    assert np.isfinite(p).all()


means = arrays(np.float64, st.tuples(st.integers(1, 4), st.integers(2, 6)),
               elements=st.floats(-30, 30, allow_nan=False, width=64))
stds = st.floats(1e-3, 1e3)


@settings(max_examples=40, deadline=None)
@given(means, stds, st.randoms(use_true_random=False))
def test_properties(mean, std, rnd):
    logp = argmax_log_proba(mean, std)
    p = argmax_proba(mean, std)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-13)
    assert np.all(p >= 0) and np.all(np.isfinite(logp))
    with np.errstate(under="ignore"):
        np.testing.assert_allclose(np.exp(logp), p, rtol=1e-12, atol=1e-300)
    # the largest mean has the largest probability; a larger mean never has a smaller one
    for row_m, row_p in zip(mean, logp, strict=True):
        order = np.argsort(row_m, kind="stable")
        assert np.all(np.diff(row_p[order]) >= -1e-9 * np.abs(row_p[order][1:]) - 1e-12)
    # equivariant under permutations of the classes
    perm = list(range(mean.shape[1]))
    rnd.shuffle(perm)
    np.testing.assert_allclose(argmax_log_proba(mean[:, perm], std), logp[:, perm],
                               rtol=1e-10, atol=1e-12)
    # invariant under a common shift, and under scaling mean and std together
    np.testing.assert_allclose(argmax_log_proba(mean + 7.5, std), logp, rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(argmax_log_proba(3.0 * mean, 3.0 * std), logp,
                               rtol=1e-9, atol=1e-11)


@settings(max_examples=30, deadline=None)
@given(arrays(np.float64, 3, elements=st.floats(-5, 5, width=64)), st.floats(0.05, 10))
def test_three_classes_against_direct_integration(mean, std):
    """An independent formula: P(f_c wins) = E over f_c of the product of Phi's (quad in x)."""
    p = argmax_proba(mean[None], std)[0]
    for c in range(3):
        others = np.delete(mean, c)

        def f(x, c=c, others=others):
            return np.exp(-0.5 * ((x - mean[c]) / std) ** 2) / (std * np.sqrt(2 * np.pi)) * \
                np.prod(ndtr((x - others) / std))

        ref, _ = integrate.quad(f, mean.min() - 12 * std, mean.max() + 12 * std,
                                epsabs=1e-13, epsrel=1e-11, limit=200)
        assert p[c] == pytest.approx(ref, rel=1e-8, abs=1e-12)
