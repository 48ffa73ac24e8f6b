"""Graph NTK (GNTK): NetworkKernel vs neural-tangents' ``Aggregate`` kernel, side by side in one run.

Network (the GNTK of Du et al. 2019 with two blocks of aggregation and a 2-layer ReLU MLP, sum
readout): ``[Aggregate, Dense, ReLU, Dense, ReLU] x 2 -> GlobalSumPool -> Dense``, float64.
Graphs: Erdos-Renyi with self-loops, ``N`` nodes each (neural-tangents batches graphs of one size;
graphs of different sizes would need padding, which changes its numbers when there are biases),
``C = 8`` node features. Each timing is the NTK and NNGP of ``k(X)`` for ``n`` graphs:
neural-tangents' jit-compiled ``kernel_fn`` with ``pattern=(A, A)`` in a subprocess of the
interpreter given by ``--nt-python`` (after a warm-up call), ours in this process (after a warm-up
call that compiles). Wall-clock and CPU time (all threads) per kernel entry are printed, with their
ratios; on a shared machine the CPU-time ratio is the more stable one. A last line times graphs of
mixed sizes and a large sparse graph with NetworkKernel alone.

Usage::

    python benchmarks/bench_graph.py --nt-python /path/to/ntvenv/bin/python [--n 80] [--nodes 10 20 40]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from sklearn_ntk import NetworkKernel
from sklearn_ntk import layers as nl

W_STD, B_STD, C = float(np.sqrt(2.0)), 0.1, 8

NT_SCRIPT = r"""
import json, sys, time
import jax
jax.config.update("jax_enable_x64", True)
import numpy as np
from neural_tangents import stax
d = np.load(sys.argv[1])
H, A = d["H"], d["A"]
w, b = float(sys.argv[4]), float(sys.argv[5])
block = [stax.Aggregate(), stax.Dense(64, W_std=w, b_std=b), stax.Relu(),
         stax.Dense(64, W_std=w, b_std=b), stax.Relu()]
kfn = jax.jit(stax.serial(*block, *block, stax.GlobalSumPool(), stax.Dense(1, W_std=w, b_std=b))[2],
              static_argnames="get")
np.asarray(kfn(H[:4], None, get=("ntk", "nngp"), pattern=(A[:4], A[:4])).ntk)
best = None
for _ in range(int(sys.argv[2])):
    t0, c0 = time.perf_counter(), time.process_time()
    k = kfn(H, None, get=("ntk", "nngp"), pattern=(A, A))
    ntk = np.asarray(k.ntk)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    if best is None or wall < best[0]:
        best = (wall, cpu)
np.save(sys.argv[3], ntk)
print(json.dumps({"wall": best[0], "cpu": best[1]}))
"""


def kernel():
    block = [nl.Aggregate(), nl.Dense(), "relu", nl.Dense(), "relu"]
    return NetworkKernel(block * 2 + [nl.GlobalSumPool(), nl.Dense()], weight_std=W_STD,
                         bias_std=B_STD)


def graphs(n, sizes, p, seed):
    rng = np.random.default_rng(seed)
    out = []
    for N in rng.choice(sizes, n):
        A = (rng.random((N, N)) < p).astype(float)
        A = np.triu(A, 1)
        A = A + A.T + np.eye(N)
        out.append((A, rng.standard_normal((N, C))))
    return out


def timed(fn, repeat):
    best = None
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        res = fn()
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        if best is None or wall < best[0]:
            best = (wall, cpu, res)
    return best


def time_nt(nt_python, gs, repeat):
    with tempfile.TemporaryDirectory() as tmp:
        dpath, kpath = Path(tmp) / "G.npz", Path(tmp) / "K.npy"
        np.savez(dpath, A=np.stack([A for A, _ in gs]), H=np.stack([H for _, H in gs]))
        out = subprocess.run(
            [nt_python, "-c", NT_SCRIPT, str(dpath), str(repeat), str(kpath), str(W_STD), str(B_STD)],
            capture_output=True, text=True, check=True,
        )
        res = json.loads(out.stdout.strip().splitlines()[-1])
        return (res["wall"], res["cpu"]), np.load(kpath)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--nt-python", default=None)
    p.add_argument("--n", type=int, default=80)
    p.add_argument("--nodes", type=int, nargs="+", default=[10, 20, 40])
    p.add_argument("--repeat", type=int, default=2)
    args = p.parse_args()
    k = kernel()
    k.ntk_and_nngp(graphs(3, [5], 0.3, 0))  # compile
    for N in args.nodes:
        gs = graphs(args.n, [N], 0.2, N)
        wall, cpu, (ntk, _) = timed(lambda gs=gs: k.ntk_and_nngp(gs), args.repeat)
        per = 1e3 / args.n**2
        line = f"N={N:3d} n={args.n:4d} ours: {wall * per:.4f} ms/entry wall, {cpu * per:.4f} cpu"
        if args.nt_python:
            (nwall, ncpu), nt_ntk = time_nt(args.nt_python, gs, args.repeat)
            err = np.abs(ntk - nt_ntk).max() / np.abs(nt_ntk).max()
            line += (
                f" | neural-tangents: {nwall * per:.4f} wall, {ncpu * per:.4f} cpu"
                f" | ratio wall {wall / nwall:.3f}, cpu {cpu / ncpu:.3f} | max rel diff {err:.1e}"
            )
        print(line, flush=True)
    mixed = graphs(args.n, list(range(8, 41)), 0.2, 1)
    wall, cpu, _ = timed(lambda: k.ntk_and_nngp(mixed), args.repeat)
    print(f"mixed sizes 8..40, n={args.n}: ours {wall * 1e3 / args.n**2:.4f} ms/entry wall")
    rng = np.random.default_rng(2)
    big = []
    for N in (1000, 2000):
        A = sp.random(N, N, density=3.0 / N, random_state=rng, format="csr")
        A = (A + A.T + sp.eye(N)).tocsr()
        big.append((A, rng.standard_normal((N, C))))
    wall, cpu, _ = timed(lambda: k.diag(big), 1)
    print(f"sparse graphs of 1000 and 2000 nodes (~3 edges per node): diag in {wall:.2f} s "
          "(adjacency kept sparse)")


if __name__ == "__main__":
    main()
