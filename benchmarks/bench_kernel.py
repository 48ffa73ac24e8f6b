"""NTKKernel throughput, as ratios measured side by side in one run.

floor = time(X @ X.T) + depth * time(np.arccos over an n x n array), single-threaded (BLAS limited
to one thread; numpy's arccos is single-threaded anyway).

Usage: python benchmarks/bench_kernel.py [--n 4000] [--d 64] [--depth 3] [--repeat 3]
                                        [--nt-python /path/to/venv-with-jax/bin/python]

Prints k(X) against the floor with the default threads and with one thread (numba and BLAS),
pairs per second of k(X) and k(X, C) at depth 1, 3 and 10, and, with ``--nt-python``,
neural-tangents' jit-compiled kernel timed in the same run (in that interpreter, via
``benchmarks/nt_reference/make_reference.py``): directly (seconds against seconds; it computes
NTK and NNGP, so it is compared with ``ntk_and_nngp``) and normalised by the floor measured there.
"""

import argparse
import re
import subprocess
import time
import tracemalloc
from pathlib import Path

import numba
import numpy as np
from threadpoolctl import threadpool_limits

from sklearn_ntk import NTKKernel


def best_of(fn, repeat):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def seed_style_numpy(X, depth, w2=1.0, b2=0.01):
    """The plain layer-by-layer NumPy recursion (the seed notebook's approach, generalised to depth)."""
    d = X.shape[1]
    s = w2 * (X @ X.T) / d + b2
    th = s.copy()
    for _ in range(depth):
        diag = np.sqrt(np.diag(s))
        norms = np.outer(diag, diag)
        cos = np.clip(s / norms, -1.0, 1.0)
        ang = np.arccos(cos)
        t = norms * (np.sin(ang) + (np.pi - ang) * cos) / (2 * np.pi)
        td = (np.pi - ang) / (2 * np.pi)
        s = w2 * t + b2
        th = s + w2 * td * th
    return th


def throughput(X, Y, depth, repeat):
    """Millions of pairs per second: k(X) (n^2 pairs), k(X, C), k(X) on one thread."""
    k = NTKKernel(depth=depth, activation="relu", weight_std=1.0, bias_std=0.1)
    k(X[:10], Y[:5])
    n, m = X.shape[0], Y.shape[0]
    t_sym = best_of(lambda: k(X), repeat)
    t_rect = best_of(lambda: k(X, Y), repeat)
    threads = numba.get_num_threads()
    with threadpool_limits(1):
        numba.set_num_threads(1)
        try:
            t_one = best_of(lambda: k(X), repeat)
        finally:
            numba.set_num_threads(threads)
    return n * n / t_sym / 1e6, n * m / t_rect / 1e6, n * n / t_one / 1e6


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=4000)
    p.add_argument("--d", type=int, default=64)
    p.add_argument("--depth", type=int, default=3)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--n-diag", type=int, default=1_000_000)
    p.add_argument(
        "--nt-python", default=None, help="python of an environment with neural-tangents"
    )
    args = p.parse_args()
    nt_ratio = t_nt = None
    if args.nt_python:
        script = Path(__file__).parent / "nt_reference" / "make_reference.py"
        out = subprocess.run(
            [args.nt_python, str(script), "--timing"], capture_output=True, text=True, check=True
        ).stdout
        nt_ratio = float(re.search(r"NT / floor = ([0-9.]+)", out).group(1))
        t_nt = float(re.search(r"\(nngp\+ntk\): ([0-9.]+) s", out).group(1))
    rng = np.random.default_rng(0)
    X = rng.standard_normal((args.n, args.d))
    Y = rng.standard_normal((args.n // 2, args.d))
    k = NTKKernel(depth=args.depth, activation="relu", weight_std=1.0, bias_std=0.1)
    k(X[:10])  # compile / load the cache
    k(X[:10], eval_gradient=True)

    A = rng.uniform(-1, 1, (args.n, args.n))
    with threadpool_limits(1):
        t_mm = best_of(lambda: X @ X.T, args.repeat)
        t_acos = best_of(lambda: np.arccos(A), args.repeat)
    floor = t_mm + args.depth * t_acos
    t_k = best_of(lambda: k(X), args.repeat)
    threads = numba.get_num_threads()
    with threadpool_limits(1):
        numba.set_num_threads(1)
        try:
            t_k1 = best_of(lambda: k(X), args.repeat)
        finally:
            numba.set_num_threads(threads)
    t_kxy = best_of(lambda: k(X, Y), args.repeat)
    t_both = best_of(lambda: k.ntk_and_nngp(X), args.repeat)
    t_grad = best_of(lambda: k(X, eval_gradient=True), args.repeat)
    t_seed = best_of(lambda: seed_style_numpy(X, args.depth), 1)

    Xd = rng.standard_normal((args.n_diag, args.d))
    k.diag(Xd[:10])
    t_diag = best_of(lambda: k.diag(Xd), args.repeat)

    tracemalloc.start()
    k(X, Y)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    nm_bytes = X.shape[0] * Y.shape[0] * 8

    print(f"n={args.n} d={args.d} depth={args.depth} ReLU float64")
    print(
        f"floor = X@X.T ({t_mm:.3f}s) + {args.depth} x arccos(n x n) ({t_acos:.3f}s) = {floor:.3f}s"
    )
    print(f"{'quantity':42s} {'seconds':>9s} {'ratio':>9s}  target")
    print(
        f"{'k(X) / floor (' + str(threads) + ' threads)':42s} {t_k:9.3f} {t_k / floor:9.2f}  <= 1.0"
    )
    print(f"{'k(X) / floor (1 thread vs 1 thread)':42s} {t_k1:9.3f} {t_k1 / floor:9.2f}")
    print(f"{'ntk_and_nngp(X) / floor':42s} {t_both:9.3f} {t_both / floor:9.2f}")
    print(f"{'k(X, eval_gradient=True) / k(X)':42s} {t_grad:9.3f} {t_grad / t_k:9.2f}  <= 3")
    if nt_ratio is not None:
        print(f"{'neural-tangents jit kernel / its floor':42s} {'':9s} {nt_ratio:9.2f}")
        print(
            f"{'ntk_and_nngp(X) / neural-tangents (seconds)':42s} {t_nt:9.3f} {t_both / t_nt:9.2f}  <= 0.3"
        )
        print(f"{'k(X) / neural-tangents (seconds)':42s} {t_nt:9.3f} {t_k / t_nt:9.2f}  <= 0.3")
        print(
            f"{'k(X) / neural-tangents (floor-normalised)':42s} {'':9s} {t_k / floor / nt_ratio:9.2f}"
        )
    print(
        f"{'seed-style numpy recursion / floor':42s} {t_seed:9.3f} {t_seed / floor:9.2f}  (ref 9.4)"
    )
    print(f"{'k(X) speed-up over seed-style numpy':42s} {'':9s} {t_seed / t_k:9.2f}")
    print(f"{'k(X, Y) ' + str(X.shape[0]) + 'x' + str(Y.shape[0]) + ' / floor':42s} {t_kxy:9.3f}")
    print(f"{'k(X, Y) peak traced memory / (n m 8 B)':42s} {'':9s} {peak / nm_bytes:9.2f}  <= 4")
    print(f"{'diag(X), n=' + str(args.n_diag) + ' (seconds)':42s} {t_diag:9.3f} {'':9s}  < 1 s")
    print(f"{'pairs per second (millions)':42s} {'k(X)':>9s} {'k(X, C)':>9s} {'1 thread':>9s}")
    rates = {}
    for depth in (1, 3, 10):
        rates[depth] = throughput(X, Y, depth, args.repeat)
        print(f"{'  depth ' + str(depth):42s} " + " ".join(f"{r:9.1f}" for r in rates[depth]))
    # one more layer costs (t10 - t1) / 9 over the n(n+1)/2 computed pairs (k(X), one thread)
    n = X.shape[0]
    per_layer = (n * n / rates[10][2] - n * n / rates[1][2]) / 9 / (n * (n + 1) / 2) * 1e3
    print(f"{'ns per pair and layer (k(X), 1 thread)':42s} {per_layer:9.2f}")


if __name__ == "__main__":
    main()
