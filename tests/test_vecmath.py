"""The branch-free arccos / arcsin of the vectorised kernel loops, against libm."""

import math

import numba
import numpy as np
import pytest

from sklearn_ntk.backends import vecmath


@numba.njit
def _apply_acos(x, out):
    for i in range(x.shape[0]):
        out[i] = vecmath.acos(x[i])


@numba.njit
def _apply_asin(x, out):
    for i in range(x.shape[0]):
        out[i] = vecmath.asin(x[i])


def _grid():
    near_one = 1.0 - np.logspace(-17, 0, 20001)
    tiny = np.logspace(-323, 0, 2001)
    edges = [1.0, -1.0, 1.0 - 1e-16, -1.0 + 1e-16, 0.0, -0.0, 5e-324, -5e-324, 2.2e-308,
             np.nextafter(1.0, 0.0), np.nextafter(-1.0, 0.0), 0.5, -0.5,
             np.nextafter(0.5, 1.0), np.nextafter(-0.5, -1.0)]
    g = np.concatenate([np.linspace(-1.0, 1.0, 400_001), near_one, -near_one, tiny, -tiny, edges])
    return np.clip(g, -1.0, 1.0)


@pytest.mark.parametrize(
    "fn, ref, max_ulp", [(_apply_acos, math.acos, 1.0), (_apply_asin, math.asin, 2.0)]
)
def test_within_few_ulp_of_libm_on_all_of_minus_one_one(fn, ref, max_ulp):
    """Max error measured: acos 1 ulp, asin 2 ulp (at about -0.675), over a dense grid,
    both ends approached to 1e-17, subnormals and the half-angle switch at |x| = 1/2."""
    x = _grid()
    out = np.empty_like(x)
    fn(x, out)
    want = np.array([ref(v) for v in x])
    ulp = np.spacing(np.abs(want))
    err = np.abs(out - want) / ulp
    assert err.max() <= max_ulp, (err.max(), x[np.argmax(err)])
    assert np.array_equal(np.signbit(out), np.signbit(want))


def test_exact_values_at_the_ends():
    assert vecmath.acos(1.0) == 0.0
    assert vecmath.acos(-1.0) == math.pi
    assert vecmath.acos(0.0) == math.pi / 2
    assert vecmath.asin(1.0) == math.pi / 2
    assert vecmath.asin(-1.0) == -math.pi / 2
    assert math.copysign(1.0, vecmath.asin(-0.0)) == -1.0
