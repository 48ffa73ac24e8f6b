"""Empirical NTK: seed per-sample autograd loop vs torch.func jacrev+vmap vs sklearn_ntk.

The issue's case: n = 256 inputs in d = 16, an MLP with two hidden layers of width 1024 and a
scalar output, float64.  All three methods run in this one process, side by side; the script
prints the wall-clock times, the speed-up ratios and the max abs difference to the seed loop.

Run: ``PYTHONPATH=. python benchmarks/bench_empirical_ntk.py [--n 256] [--threads 1]``
"""

import argparse
import time

import torch
from torch import nn
from torch.func import functional_call, jacrev, vmap

from sklearn_ntk.torch_ntk import empirical_ntk


def seed_loop(model, X):
    """The seed notebook's method: one backward pass per sample, then J J^T."""
    rows = []
    for xi in X:
        y = model(xi.unsqueeze(0)).squeeze()
        grads = torch.autograd.grad(y, list(model.parameters()))
        rows.append(torch.cat([g.flatten() for g in grads]))
    J = torch.stack(rows)
    return (J @ J.T).detach()


def func_recipe(model, X):
    """The torch.func tutorial recipe: vmap(jacrev) per-sample Jacobians, then contraction."""
    params = {k: v.detach() for k, v in model.named_parameters()}

    def f(p, x):
        return functional_call(model, p, (x.unsqueeze(0),)).squeeze(0)

    jac = vmap(jacrev(f), (None, 0))(params, X)
    jac = [j.flatten(2) for j in jac.values()]
    return sum(torch.einsum("Naf,Mbf->NMab", j, j) for j in jac)[:, :, 0, 0]


def best_of(fn, repeats):
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--d", type=int, default=16)
    ap.add_argument("--width", type=int, default=1024)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None,
                    help="torch threads (1 avoids oversubscription on a loaded machine)")
    args = ap.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    w = args.width
    model = nn.Sequential(
        nn.Linear(args.d, w), nn.ReLU(), nn.Linear(w, w), nn.ReLU(), nn.Linear(w, 1)
    ).double()
    X = torch.randn(args.n, args.d, dtype=torch.float64)
    print(f"n={args.n} d={args.d} width={w} float64, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    t_seed, K_seed = best_of(lambda: seed_loop(model, X), 1)
    t_func, K_func = best_of(lambda: func_recipe(model, X), 1)
    t_ours, K_ours = best_of(lambda: empirical_ntk(model, X, dtype=torch.float64), args.repeats)
    scale = K_seed.abs().max().item()
    print(f"{'method':<28}{'time [s]':>10}{'seed/this':>11}{'max|K-K_seed|':>16}")
    for name, t, K in (("seed per-sample loop", t_seed, K_seed),
                       ("torch.func jacrev+vmap", t_func, K_func),
                       ("sklearn_ntk.empirical_ntk", t_ours, K_ours)):
        err = (K - K_seed).abs().max().item()
        print(f"{name:<28}{t:>10.4f}{t_seed / t:>11.1f}{err:>16.2e}")
    print(f"speed-up vs seed loop: {t_seed / t_ours:.1f}x; vs torch.func recipe: "
          f"{t_func / t_ours:.1f}x; max |K| = {scale:.3g}")


if __name__ == "__main__":
    main()
