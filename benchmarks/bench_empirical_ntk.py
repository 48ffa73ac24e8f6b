"""Empirical NTK: seed per-sample autograd loop vs torch.func jacrev+vmap vs sklearn_ntk.

The issue's case: n = 256 inputs in d = 16, an MLP with two hidden layers of width 1024 and a
scalar output, float64.  All three methods run in this one process, side by side; the script
prints the wall-clock times, the speed-up ratios and the max abs difference to the seed loop.

``--baseline DIR`` also loads the ``sklearn_ntk`` package of another checkout (e.g. the main
branch) under another name and times its ``empirical_ntk`` in the same run, on the issue's case
and on a small call (n = 16, width 64) where the fixed per-call costs (input checks, the
interaction probe) weigh most: the before/after ratio of a change.

Run: ``PYTHONPATH=. python benchmarks/bench_empirical_ntk.py [--n 256] [--threads 1]
[--baseline /path/to/other/checkout]``
"""

import argparse
import importlib
import importlib.util
import sys
import time
from pathlib import Path

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


def load_baseline(root):
    """``empirical_ntk`` of the sklearn_ntk package under ``root``, imported under another name."""
    init = Path(root) / "sklearn_ntk" / "__init__.py"
    spec = importlib.util.spec_from_file_location(
        "sklearn_ntk_baseline", init, submodule_search_locations=[str(init.parent)]
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return importlib.import_module("sklearn_ntk_baseline.torch_ntk").empirical_ntk


def interleaved(fns, repeats):
    """Best-of-``repeats`` times of several functions, run in turn so load changes hit all."""
    best = [float("inf")] * len(fns)
    outs = [None] * len(fns)
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            t0 = time.perf_counter()
            outs[i] = fn()
            best[i] = min(best[i], time.perf_counter() - t0)
    return best, outs


def compare_with_baseline(base_ntk, model, X, repeats):
    def ours():
        return empirical_ntk(model, X, dtype=torch.float64)

    def base():
        return base_ntk(model, X, dtype=torch.float64)

    (t_ours, t_base), (K_ours, K_base) = interleaved([ours, base], repeats)
    err = (K_ours - K_base).abs().max().item()
    print(f"  n={len(X):<5} baseline {t_base:.4f} s, this {t_ours:.4f} s, "
          f"baseline/this {t_base / t_ours:.2f}, max|K-K_base| {err:.1e}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--d", type=int, default=16)
    ap.add_argument("--width", type=int, default=1024)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None,
                    help="torch threads (1 avoids oversubscription on a loaded machine)")
    ap.add_argument("--baseline", default=None,
                    help="checkout whose sklearn_ntk.empirical_ntk is timed side by side")
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
    if args.baseline is not None:
        base_ntk = load_baseline(args.baseline)
        print(f"before/after: sklearn_ntk of {args.baseline} vs this checkout (best of "
              f"{max(args.repeats, 5)} / 50, interleaved)")
        compare_with_baseline(base_ntk, model, X, max(args.repeats, 5))
        small = nn.Sequential(nn.Linear(args.d, 64), nn.ReLU(), nn.Linear(64, 1)).double()
        compare_with_baseline(base_ntk, small, X[:16], 50)


if __name__ == "__main__":
    main()
