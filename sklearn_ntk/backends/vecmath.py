"""Branch-free arccos / arcsin that LLVM vectorises inside compiled loops.

``math.acos`` and ``math.asin`` are scalar libm calls: a loop that calls them runs one element at
a time. The functions here are written with selects only (both halves of every case are
computed), so a plain loop over contiguous arrays that calls them compiles to packed SIMD code.

Method (the classical one): on :math:`|x| \\le 1/2`,
:math:`\\arcsin x = x + x\\,R(x^2)`, and on :math:`|x| > 1/2` the half-angle identity
:math:`\\arcsin|x| = \\pi/2 - 2\\arcsin\\sqrt{(1-|x|)/2}` brings the argument back to
:math:`[0, 1/2]`. :math:`R(z) = P(z)/Q(z)` is a rational minimax approximation of
:math:`(\\arcsin\\sqrt z - \\sqrt z)/\\sqrt z` on :math:`z \\in [0, 1/4]` (relative error below
:math:`2^{-58}`; the coefficients are the published ones of fdlibm's ``e_asin.c``). :math:`\\pi/2`
is carried as a two-term sum. Measured against ``math.acos`` / ``math.asin`` on all of
:math:`[-1, 1]`: ``acos`` within 1 ulp, ``asin`` within 2 ulp; ``acos(1) == 0`` and
``acos(-1) == pi`` exactly. Inputs outside :math:`[-1, 1]` are not checked (callers clip).
"""

from __future__ import annotations

import math

import numba

__all__ = ["acos", "asin"]

_jit = numba.njit(cache=True, fastmath=False, error_model="numpy", inline="always")

_PIO2_HI = 1.57079632679489655800e00  # pi/2 rounded to double
_PIO2_LO = 6.12323399573676603587e-17  # pi/2 - _PIO2_HI
_P0 = 1.66666666666666657415e-01
_P1 = -3.25565818622400915405e-01
_P2 = 2.01212532134862925881e-01
_P3 = -4.00555345006794114027e-02
_P4 = 7.91534994289814532176e-04
_P5 = 3.47933107596021167570e-05
_Q1 = -2.40339491173441421878e00
_Q2 = 2.02094576023350569471e00
_Q3 = -6.88283971605453293030e-01
_Q4 = 7.70381505559019352791e-02


@_jit
def _ratio(z):
    """R(z) ~ (asin(sqrt z) - sqrt z) / sqrt z on [0, 1/4]."""
    p = z * (_P0 + z * (_P1 + z * (_P2 + z * (_P3 + z * (_P4 + z * _P5)))))
    q = 1.0 + z * (_Q1 + z * (_Q2 + z * (_Q3 + z * _Q4)))
    return p / q


@_jit
def _reduce(x):
    """(big, r, w): ``big = |x| > 1/2``; ``w = asin(sqrt((1-|x|)/2))`` when big; R of the argument."""
    ax = abs(x)
    big = ax > 0.5
    z = 0.5 * (1.0 - ax) if big else x * x
    r = _ratio(z)
    s = math.sqrt(abs(z))  # abs: provably >= 0, so LLVM may use the (vectorisable) sqrt instruction
    return big, r, s + s * r


@_jit
def acos(x):
    """Arc cosine of ``x`` in ``[-1, 1]``, branch-free (within 1 ulp)."""
    big, r, w = _reduce(x)
    small = _PIO2_HI - (x - (_PIO2_LO - x * r))
    large = 2.0 * w if x > 0.0 else 2.0 * _PIO2_HI - (2.0 * w - 2.0 * _PIO2_LO)
    return large if big else small


@_jit
def asin(x):
    """Arc sine of ``x`` in ``[-1, 1]``, branch-free (within 2 ulp)."""
    big, r, w = _reduce(x)
    small = x + x * r
    large = _PIO2_HI - (2.0 * w - _PIO2_LO)
    return math.copysign(large, x) if big else small
