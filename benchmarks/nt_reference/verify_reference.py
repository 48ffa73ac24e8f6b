"""Check the stored neural-tangents reference kernels against a 40-digit recomputation.

Runs in the ordinary project environment (numpy + mpmath, no jax). For every configuration
in ``tests/data/nt_kernel_reference.npz`` it recomputes the NNGP/NTK recursion of
DESIGN.md section 1 entry by entry with mpmath and prints the largest relative deviation of
neural-tangents' float64 numbers, i.e. how accurate the reference itself is. This tells the
tests which tolerance is meaningful.

Closed forms used (per layer, ``p = sqrt(S11 S22)``, ``theta = arccos(S12 / p)``):

* ab-ReLU ``phi(x) = a min(x, 0) + b max(x, 0)`` (relu: a=0, b=1; leaky: a=slope, b=1;
  abs: a=-1, b=1) with ``R(theta) = p (sin theta + (pi - theta) cos theta) / (2 pi)``:
  ``E[phi phi] = (a^2 + b^2) R(theta) - 2ab R(pi - theta)``,
  ``E[phi' phi'] = ((a^2 + b^2)(pi - theta) + 2ab theta) / (2 pi)``.
* sign: ``E[phi phi] = 1 - 2 theta / pi``, derivative term 0 (neural-tangents' convention).
* erf: ``2/pi asin(2 S12 / sqrt((1 + 2 S11)(1 + 2 S22)))`` and
  ``4/pi / sqrt((1 + 2 S11)(1 + 2 S22) - 4 S12^2)``.
* sin: ``E[sin u sin v] = (e^{-(S11+S22-2S12)/2} - e^{-(S11+S22+2S12)/2}) / 2``,
  ``E[cos u cos v]`` the same with ``+``.
* gelu ``x Phi(x)``: a one-dimensional float64 quadrature (scipy) over ``u`` of
  ``gelu(u) E[gelu(v) | u]``, the conditional expectation in closed form.

Usage::

    python benchmarks/nt_reference/verify_reference.py
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

import mpmath as mp
import numpy as np
from scipy.integrate import quad
from scipy.special import ndtr

mp.mp.dps = 40
DATA = Path(__file__).resolve().parents[2] / "tests" / "data"

AB = {"relu": (0, 1), "leaky_relu": (mp.mpf("0.1"), 1), "ab_relu": (mp.mpf("-0.4"),
                                                                     mp.mpf("1.2")),
      "abs": (-1, 1)}


def _theta(s11, s12, s22):
    p = mp.sqrt(s11 * s22)
    if p == 0:
        return p, mp.pi / 2
    c = max(min(s12 / p, mp.mpf(1)), mp.mpf(-1))
    return p, mp.acos(c)


def _gelu_pair(s11, s12, s22):
    """(E[gelu(u) gelu(v)], E[gelu'(u) gelu'(v)]) by 1-D float64 quadrature (rel. err ~1e-13)."""
    if s11 > 0 and max(s11, s22) > 100:
        # very different scales: float64 quadrature is not trustworthy, use 25 digits
        return _gelu_pair_mp(s11, s12, s22)
    s11, s12, s22 = float(s11), float(s12), float(s22)
    if s11 == 0:
        # u = 0: gelu(0) = 0, gelu'(0) = 1/2 and E[gelu'(v)] = Phi(0) = 1/2
        return mp.mpf(0), mp.mpf("0.25")
    su = np.sqrt(s11)
    beta = s12 / s11
    tau2 = max(s22 - s12**2 / s11, 0.0)
    r = np.sqrt(1 + tau2)

    def f(z):
        u = su * z
        a = beta * u / r
        e_g = beta * u * ndtr(a) + tau2 / r * _npdf(a)
        return u * ndtr(u) * e_g * _npdf(z)

    def g(z):
        u = su * z
        a = beta * u / r
        e_dg = ndtr(a) + _npdf(a) * a / r**2
        return (ndtr(u) + u * _npdf(u)) * e_dg * _npdf(z)

    out = []
    for fun in (f, g):
        total = 0.0
        edges = sorted({-40.0, -1.0, -1.0 / su, 0.0, 1.0 / su, 1.0, 40.0})
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for lo, hi in zip(edges[:-1], edges[1:], strict=True):
                total += quad(fun, lo, hi, epsabs=0, epsrel=2e-13, limit=200)[0]
        if caught:  # round-off trouble: redo this one in 25-digit arithmetic
            return _gelu_pair_mp(mp.mpf(s11), mp.mpf(s12), mp.mpf(s22))
        out.append(mp.mpf(total))
    return out[0], out[1]


def _gelu_pair_mp(s11, s12, s22):
    """Slow multi-precision version of :func:`_gelu_pair` (s11 > 0)."""
    with mp.workdps(25):
        su = mp.sqrt(s11)
        beta = s12 / s11
        tau2 = max(s22 - s12**2 / s11, mp.mpf(0))
        r = mp.sqrt(1 + tau2)

        def f(z):
            u = su * z
            a = beta * u / r
            return (u * mp.ncdf(u) * (beta * u * mp.ncdf(a) + tau2 / r * mp.npdf(a))
                    * mp.npdf(z))

        def g(z):
            u = su * z
            a = beta * u / r
            return ((mp.ncdf(u) + u * mp.npdf(u)) * (mp.ncdf(a) + mp.npdf(a) * a / r**2)
                    * mp.npdf(z))

        pts = [-mp.inf, -1, -1 / su, 0, 1 / su, 1, mp.inf]
        return mp.quad(f, pts), mp.quad(g, pts)


def _npdf(x):
    return np.exp(-0.5 * x * x) / np.sqrt(2 * np.pi)


def expect(act, s11, s12, s22):
    """Return (E[phi(u) phi(v)], E[phi'(u) phi'(v)]) for the 2x2 covariance."""
    if act in AB:
        a, b = AB[act]
        p, th = _theta(s11, s12, s22)

        def R(t):
            return p * (mp.sin(t) + (mp.pi - t) * mp.cos(t)) / (2 * mp.pi)

        return ((a * a + b * b) * R(th) - 2 * a * b * R(mp.pi - th),
                ((a * a + b * b) * (mp.pi - th) + 2 * a * b * th) / (2 * mp.pi))
    if act == "sign":
        p, th = _theta(s11, s12, s22)
        if p == 0:
            return mp.mpf(0), mp.mpf(0)
        return 1 - 2 * th / mp.pi, mp.mpf(0)
    if act == "identity":
        return s12, mp.mpf(1)
    if act == "erf":
        q = (1 + 2 * s11) * (1 + 2 * s22)
        return (2 / mp.pi * mp.asin(2 * s12 / mp.sqrt(q)),
                4 / mp.pi / mp.sqrt(q - 4 * s12 ** 2))
    if act == "sin":
        e1 = mp.exp(-(s11 + s22 - 2 * s12) / 2)
        e2 = mp.exp(-(s11 + s22 + 2 * s12) / 2)
        return (e1 - e2) / 2, (e1 + e2) / 2
    if act == "gelu":
        return _gelu_pair(s11, s12, s22)
    raise ValueError(act)


def recursion(x, y, depth, act, sw, sb):
    """40-digit (NTK, NNGP) of one pair of inputs."""
    sw, sb = mp.mpf(sw), mp.mpf(sb)
    d = len(x)
    xs = [mp.mpf(float(v)) for v in x]
    ys = [mp.mpf(float(v)) for v in y]
    s12 = sw ** 2 * mp.fsum(a * b for a, b in zip(xs, ys, strict=True)) / d + sb ** 2
    s11 = sw ** 2 * mp.fsum(a * a for a in xs) / d + sb ** 2
    s22 = sw ** 2 * mp.fsum(b * b for b in ys) / d + sb ** 2
    theta = s12
    for _ in range(depth):
        e12, de12 = expect(act, s11, s12, s22)
        e11, _ = expect(act, s11, s11, s11)
        e22, _ = expect(act, s22, s22, s22)
        s12 = sw ** 2 * e12 + sb ** 2
        s11 = sw ** 2 * e11 + sb ** 2
        s22 = sw ** 2 * e22 + sb ** 2
        theta = s12 + sw ** 2 * de12 * theta
    return theta, s12


def main(argv=None):
    parser = argparse.ArgumentParser(description="Check the NT kernel reference with mpmath.")
    parser.add_argument("--activation", default=None, help="only configs with this activation")
    args = parser.parse_args(argv)
    z = np.load(DATA / "nt_kernel_reference.npz")
    meta = json.loads((DATA / "nt_kernel_reference.json").read_text())
    overall = {}
    for c in meta["configs"]:
        if args.activation is not None and c["activation"] != args.activation:
            continue
        X, Y = z[c["X"]], z[c["Y"]]
        worst = {"ntk": (0.0, None), "nngp": (0.0, None)}
        for which, B in (("xx", X), ("xy", Y)):
            for i in range(X.shape[0]):
                for j in range(B.shape[0]):
                    th, sg = recursion(X[i], B[j], c["depth"], c["activation"],
                                       c["weight_std"], c["bias_std"])
                    for kind, ref in (("ntk", th), ("nngp", sg)):
                        v = z[f"{c['prefix']}{kind}_{which}"][i, j]
                        ref = float(ref)
                        err = abs(v - ref) / abs(ref) if ref != 0 else abs(v)
                        if err > worst[kind][0]:
                            worst[kind] = (err, (which, i, j, float(v), ref))
        print(f"{c['prefix']}{c['activation']:10s} L={c['depth']} sw={c['weight_std']} "
              f"sb={c['bias_std']} d={c['d']}  max rel err ntk {worst['ntk'][0]:.2e} "
              f"{worst['ntk'][1] if worst['ntk'][0] > 1e-10 else ''}  nngp "
              f"{worst['nngp'][0]:.2e} {worst['nngp'][1] if worst['nngp'][0] > 1e-10 else ''}")
        a = c["activation"]
        overall[a] = max(overall.get(a, 0.0), worst["ntk"][0], worst["nngp"][0])
    print("worst relative error of neural-tangents per activation:")
    for a, e in overall.items():
        print(f"    {a:10s} {e:.2e}")


if __name__ == "__main__":
    main()
