"""Large-n benchmarks of the Nystroem and matrix-free exact paths (issue 9).

Every comparison is measured side by side in one run and printed as a ratio:

1. n=300,000, d=20, m=500: ``NTKRegressor(n_components=500)`` fit + predict (10,000 test rows)
   vs the floor -- evaluating K(X, C) block by block over the same rows (target <= 1.5x) --
   and the resident-memory growth during fit + predict (target <= 0.6 GB).
2. n=1,000,000, d=20, m=2,000: fit time (target <= 15 min) and peak memory growth (target
   <= 3 GB); test R^2 against the exact estimator on a 20,000-row subset (target: within 0.01 on a
   smooth target); and side by side with ``sklearn.kernel_approximation.Nystroem(kernel=
   NTKKernel())`` + ``Ridge`` (same m) on ``--peer-n`` rows (its n x m feature matrix is the
   memory cost: 16 GB at n=1,000,000, so the peer runs on fewer rows by default).
3. The exact path at n=50,000, depth 3, 10 values of t from one fit (Lanczos on one packed
   triangle, 10 GB), against the Nystroem path at m=2,000 and 5,000. Runs only when ``free``
   memory allows (``--exact-n`` to choose a smaller n).

Usage: ``python benchmarks/bench_large_n.py [--quick] [--only 1,2,3] [--peer-n N]
[--exact-n N] [--million-n N] [--subset-n N] [--blas-threads K]``. The machine is shared: run the big sizes once, with a
timeout. ``--blas-threads`` (default 1) limits BLAS threads for every measurement alike: on the
shared, oversubscribed 2-core machine threaded BLAS spends most of its time waiting (a 100 x 100
eigh takes 40x longer with 2 threads than with 1); 0 leaves BLAS alone.
"""

import argparse
import functools
import os
import threading
import time

import numpy as np
from sklearn.kernel_approximation import Nystroem
from sklearn.linear_model import Ridge
from sklearn.metrics import r2_score

from sklearn_ntk._validation import available_memory_bytes
from sklearn_ntk.estimators import NTKRegressor
from sklearn_ntk.kernels import NTKKernel

_PAGE = os.sysconf("SC_PAGE_SIZE")
print = functools.partial(print, flush=True)  # noqa: A001  (results survive a timeout)


def _rss():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * _PAGE


class PeakRSS:
    """Peak resident-memory growth (bytes) over a block, sampled every 5 ms."""

    def __enter__(self):
        self.base = self.peak = _rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, _rss())

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss())
        self.growth = self.peak - self.base


def _data(n, d, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    w = np.random.default_rng(123).normal(size=(2, d)) / np.sqrt(d)
    y = np.sin(X @ w[0]) + 0.5 * (X @ w[1]) + 0.05 * rng.normal(size=n)  # smooth target
    return X, y


def _timed(fn):
    t0 = time.perf_counter()
    with PeakRSS() as mem:
        out = fn()
    return time.perf_counter() - t0, mem.growth, out


def _floor(kernel, Xs, C, block):
    """Evaluate K(X, C) block by block over every row of every array in Xs (kept nowhere)."""
    for X in Xs:
        for s in range(0, len(X), block):
            kernel(X[s:s + block], C)


def bench_stream(n, m, n_test, d=20):
    X, y = _data(n, d)
    Xt, _ = _data(n_test, d, seed=1)
    kernel = NTKKernel()
    kernel(X[:5], X[:5])  # compile outside the timings
    reg = NTKRegressor(kernel, t=100.0, alpha=1e-3, n_components=m, random_state=0,
                       progress=False)
    t_ours, mem, _ = _timed(lambda: reg.fit(X, y).predict(Xt))
    C = X[reg.component_indices_]
    block = reg._block_size(m, n)
    t_floor, mem_floor, _ = _timed(lambda: _floor(kernel, [X, Xt], C, block))
    pairs = (n + n_test) * m
    print(f"[1] n={n}, d={d}, m={m}: fit + predict({n_test}) {t_ours:.1f}s vs floor K(X, C) "
          f"block by block {t_floor:.1f}s -> {t_ours / t_floor:.2f}x (target <= 1.5); "
          f"memory growth {mem / 2**30:.2f} GB (floor {mem_floor / 2**30:.2f} GB; target <= 0.6); "
          f"{pairs / t_floor / 1e6:.1f} M kernel pairs/s")


def _fit_predict(est, X, y, Xt):
    return est.fit(X, y).predict(Xt)


def bench_million(n, m, n_sub, peer_n, d=20):
    X, y = _data(n, d)
    Xt, yt = _data(20_000, d, seed=2)
    kernel = NTKKernel()
    kernel(X[:5], X[:5])
    reg = NTKRegressor(kernel, t=np.inf, alpha=1e-2, n_components=m, random_state=0,
                       progress=False)
    t_fit, mem_fit, _ = _timed(lambda: reg.fit(X, y))
    t_pred, _, pred = _timed(lambda: reg.predict(Xt))
    print(f"[2] n={n}, d={d}, m={m}: fit {t_fit:.0f}s = {t_fit / 60:.1f} min (target <= 15), "
          f"peak growth {mem_fit / 2**30:.2f} GB (target <= 3); predict {len(Xt)} rows "
          f"{t_pred:.1f}s; test R^2 {r2_score(yt, pred):.4f}")
    Xs, ys = X[:n_sub], y[:n_sub]
    kw = dict(kernel=kernel, t=np.inf, alpha=1e-2)
    t_ex, mem_ex, p_ex = _timed(lambda: _fit_predict(NTKRegressor(**kw), Xs, ys, Xt))
    t_ny, mem_ny, p_ny = _timed(lambda: _fit_predict(
        NTKRegressor(n_components=m, random_state=0, progress=False, **kw), Xs, ys, Xt))
    r_ex, r_ny = r2_score(yt, p_ex), r2_score(yt, p_ny)
    print(f"    subset n={n_sub}: exact R^2 {r_ex:.4f} ({t_ex:.0f}s, {mem_ex / 2**30:.1f} GB) vs "
          f"Nystroem m={m} R^2 {r_ny:.4f} ({t_ny:.0f}s, {mem_ny / 2**30:.2f} GB): "
          f"difference {r_ex - r_ny:+.4f} (target <= 0.01)")
    Xp, yp = X[:peer_n], y[:peer_n]
    # sklearn's Nystroem on alpha/n-scaled Ridge is the same t = inf ridge on the same centres
    t_ours, mem_ours, p_ours = _timed(lambda: _fit_predict(
        NTKRegressor(n_components=m, random_state=0, progress=False, **kw), Xp, yp, Xt))

    def peer():
        feats = Nystroem(kernel=kernel, n_components=m, random_state=0)
        Z = feats.fit_transform(Xp)
        ridge = Ridge(alpha=1e-2, fit_intercept=False).fit(Z, yp)
        return ridge.predict(feats.transform(Xt))

    t_peer, mem_peer, p_peer = _timed(peer)
    print(f"    vs sklearn Nystroem(kernel=NTKKernel()) + Ridge, n={peer_n}, m={m}: ours "
          f"{t_ours:.0f}s / {mem_ours / 2**30:.2f} GB vs peer {t_peer:.0f}s / "
          f"{mem_peer / 2**30:.2f} GB -> time {t_ours / t_peer:.2f}x, memory "
          f"{mem_ours / max(mem_peer, 1):.2f}x; R^2 {r2_score(yt, p_ours):.4f} vs "
          f"{r2_score(yt, p_peer):.4f}")


def bench_exact(n, ms, d=20):
    need = 0.55 * 8 * n * n
    avail = available_memory_bytes() or 0
    if need > 0.7 * avail:
        print(f"[3] exact path n={n}: skipped -- one packed triangle needs {need / 2**30:.1f} GB, "
              f"{avail / 2**30:.1f} GB available now (rerun with --exact-n smaller)")
        return
    X, y = _data(n, d)
    Xt, yt = _data(5_000, d, seed=3)
    kernel = NTKKernel(depth=3)
    kernel(X[:5], X[:5])
    times = np.geomspace(10.0, 1e6, 9).tolist() + [np.inf]
    reg = NTKRegressor(kernel, t=times[0], alpha=1e-3, solver="lanczos", progress=False)
    t_fit, mem_fit, _ = _timed(lambda: reg.fit(X, y))
    t_staged, _, staged = _timed(lambda: list(reg.staged_predict(Xt, times)))
    storage = type(reg._dyn.operator).__name__ if reg._dyn.operator is not None else "dense"
    r2 = [r2_score(yt, p) for p in staged]
    print(f"[3] exact n={n}, depth 3 ({storage}): fit {t_fit:.0f}s ({mem_fit / 2**30:.1f} GB), "
          f"10 times by Lanczos/CG from one fit {t_staged:.0f}s; R^2 over t: "
          + " ".join(f"{r:.3f}" for r in r2))
    for m in ms:
        ny = NTKRegressor(kernel, t=times[0], alpha=1e-3, n_components=m, random_state=0,
                          progress=False)
        t_ny, mem_ny, ny_staged = _timed(
            lambda ny=ny: list(ny.fit(X, y).staged_predict(Xt, times)))
        diff = max(np.abs(a - b).max() / np.abs(b).max()
                   for a, b in zip(ny_staged, staged, strict=True))
        print(f"    Nystroem m={m}: fit + 10 times {t_ny:.0f}s ({mem_ny / 2**30:.2f} GB) -> "
              f"{(t_fit + t_staged) / t_ny:.1f}x faster than exact; max rel. deviation from "
              f"exact over t {diff:.2e}; R^2 at t=inf {r2_score(yt, ny_staged[-1]):.3f}")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small sizes (smoke run)")
    p.add_argument("--only", default="1,2,3")
    p.add_argument("--peer-n", type=int, default=200_000)
    p.add_argument("--million-n", type=int, default=1_000_000)
    p.add_argument("--subset-n", type=int, default=20_000)
    p.add_argument("--exact-n", type=int, default=50_000)
    p.add_argument("--blas-threads", type=int, default=1)
    a = p.parse_args()
    if a.blas_threads:
        from threadpoolctl import threadpool_limits

        threadpool_limits(a.blas_threads, user_api="blas")
        print(f"BLAS threads limited to {a.blas_threads}")
    only = {int(s) for s in a.only.split(",")}
    print(f"cores: {os.cpu_count()}, available memory "
          f"{(available_memory_bytes() or 0) / 2**30:.1f} GB")
    if a.quick:
        if 1 in only:
            bench_stream(20_000, 100, 2_000)
        if 2 in only:
            bench_million(40_000, 200, 2_000, 10_000)
        if 3 in only:
            bench_exact(3_000, [200, 500])
        return
    if 1 in only:
        bench_stream(300_000, 500, 10_000)
    if 2 in only:
        bench_million(a.million_n, 2_000, a.subset_n, a.peer_n)
    if 3 in only:
        bench_exact(a.exact_n, [2_000, 5_000])


if __name__ == "__main__":
    main()
