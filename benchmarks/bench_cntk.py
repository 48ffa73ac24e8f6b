"""Convolutional NTK on 8x8 digits: NetworkKernel vs neural-tangents, side by side in one run.

Network: ``3 x [Conv 3x3 SAME -> ReLU] -> readout -> Dense``, float64, readout GlobalAvgPool (every
pixel pair, ``O(P^2)`` per pair of images) or Flatten (pixel diagonal, ``O(P)``). Each timing is the
NTK and NNGP of ``k(X)`` for ``n`` images; neural-tangents' jit-compiled ``kernel_fn`` is timed in a
subprocess of the interpreter given by ``--nt-python`` (after a warm-up call), ours in this process
(after a warm-up call that compiles). Wall-clock and CPU time (all threads) per kernel entry are
printed, with their ratios. On a shared machine the CPU-time ratio is the more stable one.

Usage::

    python benchmarks/bench_cntk.py --nt-python /path/to/ntvenv/bin/python [--n-gap 60]
        [--n-flatten 300] [--full]

``--full`` also times the whole 1797-image digits GAP kernel with NetworkKernel (or estimates it
from ``--n-full`` images when given).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits

from sklearn_ntk import NetworkKernel
from sklearn_ntk import layers as nl

W_STD, B_STD = 1.4, 0.1

NT_SCRIPT = r"""
import json, sys, time
import jax
jax.config.update("jax_enable_x64", True)
import numpy as np
from neural_tangents import stax
X = np.load(sys.argv[1]).reshape(-1, 8, 8, 1)
w, b = float(sys.argv[5]), float(sys.argv[6])
layers = []
for _ in range(3):
    layers += [stax.Conv(64, (3, 3), padding="SAME", W_std=w, b_std=b), stax.Relu()]
readout = stax.GlobalAvgPool() if sys.argv[2] == "gap" else stax.Flatten()
kfn = jax.jit(stax.serial(*layers, readout, stax.Dense(1, W_std=w, b_std=b))[2],
              static_argnames="get")
np.asarray(kfn(X[:4], None, get=("ntk", "nngp")).ntk)
best = None
for _ in range(int(sys.argv[3])):
    t0, c0 = time.perf_counter(), time.process_time()
    k = kfn(X, None, get=("ntk", "nngp"))
    ntk = np.asarray(k.ntk)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    if best is None or wall < best[0]:
        best = (wall, cpu)
np.save(sys.argv[4], ntk)
print(json.dumps({"wall": best[0], "cpu": best[1]}))
"""


def kernel(readout):
    layers = [nl.Conv((3, 3), padding="same"), "relu"] * 3
    layers += [nl.GlobalAvgPool() if readout == "gap" else nl.Flatten(), nl.Dense()]
    return NetworkKernel(layers, input_shape=(8, 8, 1), weight_std=W_STD, bias_std=B_STD)


def time_ours(k, X, repeat):
    k.ntk_and_nngp(X[:4])  # compile
    best = None
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        ntk, _ = k.ntk_and_nngp(X)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        if best is None or wall < best[0]:
            best = (wall, cpu)
    return best, ntk


def time_nt(nt_python, X, readout, repeat):
    with tempfile.TemporaryDirectory() as tmp:
        xpath, kpath = Path(tmp) / "X.npy", Path(tmp) / "K.npy"
        np.save(xpath, X)
        out = subprocess.run(
            [nt_python, "-c", NT_SCRIPT, str(xpath), readout, str(repeat), str(kpath),
             str(W_STD), str(B_STD)],
            capture_output=True, text=True, check=True,
        )
        res = json.loads(out.stdout.strip().splitlines()[-1])
        return (res["wall"], res["cpu"]), np.load(kpath)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--nt-python", default=None)
    p.add_argument("--n-gap", type=int, default=60)
    p.add_argument("--n-flatten", type=int, default=300)
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--full", action="store_true")
    p.add_argument("--n-full", type=int, default=None)
    args = p.parse_args()
    digits = load_digits().data / 16.0
    for readout, n in (("gap", args.n_gap), ("flatten", args.n_flatten)):
        X = digits[:n]
        (wall, cpu), ntk = time_ours(kernel(readout), X, args.repeat)
        per = 1e3 / n**2
        line = f"{readout:8s} n={n:4d} ours: {wall * per:.4f} ms/entry wall, {cpu * per:.4f} cpu"
        if args.nt_python:
            (nwall, ncpu), nt_ntk = time_nt(args.nt_python, X, readout, args.repeat)
            err = np.abs(ntk - nt_ntk).max() / np.abs(nt_ntk).max()
            line += (
                f" | neural-tangents: {nwall * per:.4f} wall, {ncpu * per:.4f} cpu"
                f" | ratio wall {wall / nwall:.3f}, cpu {cpu / ncpu:.3f} | max rel diff {err:.1e}"
            )
        print(line, flush=True)
    if args.full:
        n = args.n_full or digits.shape[0]
        k = kernel("gap")
        k.ntk_and_nngp(digits[:4])
        t0, c0 = time.perf_counter(), time.process_time()
        k.ntk_and_nngp(digits[:n])
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        scale = (digits.shape[0] / n) ** 2
        what = "measured" if n == digits.shape[0] else f"estimated from n={n} (x (1797/n)^2)"
        print(
            f"full digits GAP kernel (1797 images): {wall * scale:.1f} s wall, "
            f"{cpu * scale:.1f} s CPU over all threads ({what})"
        )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
