"""Numerical activations (tanh, sigmoid, SiLU, user callables): time against ReLU and accuracy
against a converged reference, side by side in one run, with neural-tangents'
``stax.ElementwiseNumerical`` (its default Gauss-Hermite degree 25) in the same table.

Time: ``NTKKernel(depth, activation)(X)`` best of ``--repeat``, as a ratio to ReLU's on the same X
(the target is <= 5x). neural-tangents is timed in its own interpreter (jit-compiled, warm) on the
same X, also as a ratio to its own ReLU kernel (n <= 300 only: its ElementwiseNumerical holds
n^2 x deg^2 values, ~8 GB at n = 1000).

Accuracy (error relative to the Cauchy-Schwarz scale sqrt(k(x,x) k(y,y)) of each entry, max over
entries; the target is <= 1e-8), on rows with norms 1e-3 .. 1e4, weight_std 1 and 20, depth 1..5:

* erf and GELU taken through the numerical path (as plain ``Activation`` subclasses without their
  closed-form code) against their closed forms -- an exact, independent reference;
* tanh / sigmoid / SiLU against a reference recursion that integrates every pair by the direct
  graded 2-D rule at twice the quadrature order (a different algorithm from the series).

Usage: python benchmarks/bench_numerical.py [--repeat 3] [--nt-python /work/ntvenv/bin/python]
"""

import argparse
import json
import math
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy import special

from sklearn_ntk import NTKKernel
from sklearn_ntk.activations import Activation, get_activation
from sklearn_ntk.backends import hermite


class NumericalErf(Activation):
    name = "numerical_erf"

    def numpy_fn(self, x):
        return special.erf(x)

    def derivatives(self, x, order=1):
        g = 2.0 / math.sqrt(math.pi) * np.exp(-x * x)
        return [special.erf(x), g, -2.0 * x * g, (4.0 * x * x - 2.0) * g][: order + 1]


class NumericalGELU(Activation):
    name = "numerical_gelu"

    def numpy_fn(self, x):
        return x * special.ndtr(x)

    def derivatives(self, x, order=1):
        pdf = np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)
        cdf = special.ndtr(x)
        return [x * cdf, cdf + x * pdf, pdf * (2.0 - x * x), x * pdf * (x * x - 4.0)][: order + 1]


def softplus(x):
    return np.logaddexp(0.0, x)


def best_of(fn, repeat):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def rows(n, d, seed, lo=-3.0, hi=4.0):
    X = np.random.default_rng(seed).standard_normal((n, d))
    return X * (np.logspace(lo, hi, n) / np.linalg.norm(X, axis=1))[:, None]


def cs_rel(ours, ref):
    scale = np.sqrt(np.outer(np.abs(np.diag(ref)), np.abs(np.diag(ref))))
    return float(np.max(np.abs(ours - ref) / scale))


def reference_kernel(act, X, depth, w, b):
    """(ntk, nngp) with every off-diagonal pair of every layer by the direct 2-D rule."""
    old = hermite._DIRECT_ORDER
    hermite._DIRECT_ORDER = 2 * old
    try:
        n, d = X.shape
        s = w * w * X @ X.T / d + b * b
        th = s.copy()
        iu = np.triu_indices(n, 1)
        for _ in range(depth):
            var = np.diag(s).copy()
            M = hermite.diagonal_moments(act, var, 1)
            a_, b_ = var[iu[0]], var[iu[1]]
            rho = np.clip(s[iu] / np.sqrt(a_ * b_), -1.0, 1.0)
            tt = hermite._direct(act, a_, b_, rho, (0, 1), (0, 1), 1)
            t = np.diag(M[0, 0])
            td = np.diag(M[1, 1])
            t[iu], td[iu] = tt[0], tt[1]
            t[iu[::-1]], td[iu[::-1]] = tt[0], tt[1]
            s = w * w * t + b * b
            th = s + w * w * td * th
        return th, s
    finally:
        hermite._DIRECT_ORDER = old


NT_SCRIPT = r"""
import json, sys, time
import jax
jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp
import numpy as np
from neural_tangents import stax
data = np.load(sys.argv[1])
cfg = json.loads(sys.argv[2])
fns = {"relu": None, "tanh": jnp.tanh, "sigmoid": jax.nn.sigmoid, "silu": jax.nn.silu,
       "erf": jax.scipy.special.erf}
out = {}
for job in cfg["jobs"]:
    X = jnp.asarray(data[job["X"]])
    act = stax.Relu() if job["act"] == "relu" else stax.ElementwiseNumerical(fns[job["act"]], deg=25)
    layers = []
    for _ in range(job["depth"]):
        layers += [stax.Dense(512, W_std=job["w"], b_std=job["b"]), act]
    layers += [stax.Dense(1, W_std=job["w"], b_std=job["b"])]
    kfn = jax.jit(stax.serial(*layers)[2], static_argnames=("get",))
    k = kfn(X, None, get=("ntk", "nngp"))
    jax.block_until_ready(k)
    ts = []
    for _ in range(cfg["repeat"]):
        t0 = time.perf_counter()
        k = kfn(X, None, get=("ntk", "nngp"))
        jax.block_until_ready(k)
        ts.append(time.perf_counter() - t0)
    out[job["key"]] = {"time": min(ts), "ntk": np.asarray(k[0]).tolist(),
                       "nngp": np.asarray(k[1]).tolist()}
print(json.dumps(out))
"""


def run_nt(nt_python, arrays, jobs, repeat):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.npz"
        np.savez(path, **arrays)
        cfg = json.dumps({"jobs": jobs, "repeat": repeat})
        res = subprocess.run(
            [nt_python, "-c", NT_SCRIPT, str(path), cfg], capture_output=True, text=True
        )
    if res.returncode != 0:
        print("neural-tangents run failed:", res.stderr.strip().splitlines()[-1:])
        return {}
    return json.loads(res.stdout.strip().splitlines()[-1])


def timing(args, nt):
    print(f"== time: k(X) against relu on the same X (best of {args.repeat}) ==")
    rng = np.random.default_rng(0)
    sizes = [(150, 2, 10), (1000, 3, 10)]
    acts = ["tanh", "sigmoid", "silu", softplus]
    arrays, jobs = {}, []
    for n, depth, d in sizes:
        arrays[f"X{n}"] = rng.standard_normal((n, d))
        if n > 300:  # ElementwiseNumerical holds n^2 x deg^2 values: ~8 GB at n = 1000
            continue
        for a in ["relu", "tanh", "sigmoid", "silu"]:
            jobs.append(dict(X=f"X{n}", act=a, depth=depth, w=1.0, b=0.1, key=f"{n}-{a}"))
    nt_res = run_nt(nt, arrays, jobs, args.repeat) if nt else {}
    for n, depth, d in sizes:
        X = arrays[f"X{n}"]
        relu = NTKKernel(depth=depth)
        t_relu = best_of(lambda relu=relu, X=X: relu(X), args.repeat)
        line = f"n={n:5d} d={d} depth={depth}: relu {1e3 * t_relu:8.1f} ms"
        nt_relu = nt_res.get(f"{n}-relu", {}).get("time")
        for a in acts:
            k = NTKKernel(depth=depth, activation=a)
            k(X[:3])
            t = best_of(lambda k=k, X=X: k(X), args.repeat)
            name = a if isinstance(a, str) else "softplus(callable)"
            line += f" | {name} {t / t_relu:5.2f}x"
            nt_t = nt_res.get(f"{n}-{name}", {}).get("time")
            if nt_t and nt_relu:
                line += f" (NT {nt_t / nt_relu:5.2f}x)"
        print(line)
    return nt_res


def accuracy(args, nt):
    print("== accuracy: max error / sqrt(k(x,x) k(y,y)), rows of norm 1e-3..1e4, d=3 ==")
    configs = [(w, depth) for w in (1.0, 20.0) for depth in (1, 3, 5)]
    X = rows(8, 3, seed=1)
    worst = 0.0
    for numerical, closed in ((NumericalErf(), "erf"), (NumericalGELU(), "gelu")):
        for w, depth in configs:
            kw = dict(depth=depth, weight_std=w, bias_std=0.1)
            t0 = time.perf_counter()
            ntk, nngp = NTKKernel(activation=numerical, **kw).ntk_and_nngp(X)
            t = time.perf_counter() - t0
            ntk_r, nngp_r = NTKKernel(activation=closed, **kw).ntk_and_nngp(X)
            e = max(cs_rel(ntk, ntk_r), cs_rel(nngp, nngp_r))
            worst = max(worst, e)
            print(f"  {closed:5s} (numerical path vs closed form) w={w:4g} depth={depth}: "
                  f"{e:.1e}  ({1e3 * t:.0f} ms)")
    arrays, jobs, refs = {"X": X}, [], {}
    for name in ("tanh", "sigmoid", "silu"):
        for w, depth in [(1.0, 2), (20.0, 2), (1.0, 5)]:
            kw = dict(depth=depth, weight_std=w, bias_std=0.1)
            ntk, nngp = NTKKernel(activation=name, **kw).ntk_and_nngp(X)
            ref = reference_kernel(get_activation(name), X, depth, w, 0.1)
            refs[(name, w, depth)] = ref
            e = max(cs_rel(ntk, ref[0]), cs_rel(nngp, ref[1]))
            worst = max(worst, e)
            jobs.append(dict(X="X", act=name, depth=depth, w=w, b=0.1, key=f"{name}-{w}-{depth}"))
            print(f"  {name:7s} (series vs direct 2-D reference) w={w:4g} depth={depth}: {e:.1e}")
    if nt:
        res = run_nt(nt, arrays, jobs, 1)
        for (name, w, depth), ref in refs.items():
            got = res.get(f"{name}-{w}-{depth}")
            if got:
                e = max(cs_rel(np.array(got["ntk"]), ref[0]), cs_rel(np.array(got["nngp"]), ref[1]))
                print(f"  neural-tangents ElementwiseNumerical(deg=25) {name} w={w:g} "
                      f"depth={depth}: {e:.1e}")
    print(f"worst error of sklearn-ntk: {worst:.1e} (target 1e-8)")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--nt-python", default=None, help="python of an environment with neural-tangents")
    args = p.parse_args()
    timing(args, args.nt_python)
    accuracy(args, args.nt_python)


if __name__ == "__main__":
    main()
