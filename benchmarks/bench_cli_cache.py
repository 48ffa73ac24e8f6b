"""The CLI's NTK grid search: kernel per candidate (before) vs one Gram per architecture (now).

Runs the ``sklearn-ntk compare`` NTK row's grid (``sklearn_ntk.cli.models.ntk_grid``, full or
``--quick``) on synthetic data, side by side in one run:

* ``kernel objects``: the CLI before -- ``GridSearchCV`` over the pipeline (standard scaling,
  ``NTKRegressor``/``NTKClassifier`` with a kernel object and one shared
  ``FactorizationCache``), which evaluates the kernel for every candidate and inner fold;
* ``precomputed``: the CLI now -- :class:`~sklearn_ntk.cli.ntk_search.NTKGridSearch`, one Gram
  matrix per architecture, an inner search over ``t``/``alpha`` on ``kernel="precomputed"``.

Prints the wall time, the number of ``NTKKernel`` evaluations and the pairs they computed, the
time spent in them, the ratio, and whether both chose the same parameters (the inner folds'
feature scaling differs slightly: per inner fold before, per outer training set now).

Usage: ``python benchmarks/bench_cli_cache.py [--n 400] [--quick] [--task regression]``.
"""

import argparse
import time

import numpy as np
from sklearn.compose import TransformedTargetRegressor
from sklearn.model_selection import GridSearchCV, KFold, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_ntk import FactorizationCache, NTKClassifier, NTKKernel, NTKRegressor
from sklearn_ntk.cli.models import ntk_grid
from sklearn_ntk.cli.ntk_search import NTKGridSearch


class _Sizing:
    def __init__(self, quick, regression):
        self.quick, self.regression = quick, regression


class _KernelMeter:
    """Counts ``NTKKernel.__call__``: calls, pairs evaluated and seconds spent."""

    def __init__(self):
        self.calls = self.pairs = 0
        self.seconds = 0.0
        self._orig = NTKKernel.__call__

    def __enter__(self):
        meter, orig = self, self._orig

        def counted(kernel, X, Y=None, eval_gradient=False):
            t0 = time.perf_counter()
            out = orig(kernel, X, Y, eval_gradient=eval_gradient)
            meter.seconds += time.perf_counter() - t0
            meter.calls += 1
            meter.pairs += len(X) * (len(X) if Y is None else len(Y))
            return out

        NTKKernel.__call__ = counted
        return self

    def __exit__(self, *exc):
        NTKKernel.__call__ = self._orig


def _cv(regression):
    return (KFold if regression else StratifiedKFold)(3, shuffle=True, random_state=0)


def _kernel_objects(quick, regression):
    """The CLI's NTK row before: GridSearchCV over the whole pipeline."""
    est = (NTKRegressor if regression else NTKClassifier)(kernel=NTKKernel(),
                                                          cache=FactorizationCache())
    prefix = "regressor__ntkregressor__" if regression else "ntkclassifier__"
    grid = [{prefix + k: v for k, v in part.items()}
            for part in ntk_grid(_Sizing(quick, regression))]
    pipe = make_pipeline(StandardScaler(), est)
    if regression:
        pipe = TransformedTargetRegressor(regressor=pipe, transformer=StandardScaler())
    return GridSearchCV(pipe, grid, cv=_cv(regression))


def _precomputed(quick, regression):
    """The CLI's NTK row now."""
    est = (NTKRegressor if regression else NTKClassifier)(kernel=NTKKernel())
    return NTKGridSearch(est, ntk_grid(_Sizing(quick, regression)), cv=_cv(regression))


def _run(search, X, y, X_test):
    with _KernelMeter() as meter:
        t0 = time.perf_counter()
        search.fit(X, y)
        pred = search.predict(X_test)
        wall = time.perf_counter() - t0
    best = {k.rsplit("__", 1)[-1]: v for k, v in search.best_params_.items()}
    return wall, meter, best, pred


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=400)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--task", choices=["regression", "classification"], default="regression")
    a = p.parse_args()
    rng = np.random.default_rng(0)
    X = rng.normal(size=(a.n + 100, 8))
    f = np.sin(X[:, 0]) + 0.5 * X[:, 1] * X[:, 2]
    regression = a.task == "regression"
    y = f + 0.1 * rng.normal(size=len(f)) if regression else np.digitize(f, [-0.5, 0.5])
    X, X_test, y = X[:a.n], X[a.n:], y[:a.n]
    _run(_precomputed(True, regression), X[:30], y[:30], X_test)  # warm up compiled kernels
    rows = {}
    for name, make in (("kernel objects", _kernel_objects), ("precomputed", _precomputed)):
        rows[name] = _run(make(a.quick, regression), X, y, X_test)
    n_cand = sum(int(np.prod([len(v) for v in part.values()]))
                 for part in ntk_grid(_Sizing(a.quick, regression)))
    print(f"CLI NTK grid ({'quick' if a.quick else 'full'}: {n_cand} candidates x 3 inner folds, "
          f"{a.task}, n={a.n}, d=8), fit + predict of {len(X_test)} rows:")
    for name, (wall, meter, best, _) in rows.items():
        print(f"  {name:15s} {wall:7.2f} s; kernel: {meter.calls:4d} calls, "
              f"{meter.pairs / 1e6:8.2f} M pairs, {meter.seconds:6.2f} s; best {best}")
    (w_old, m_old, b_old, p_old), (w_new, m_new, b_new, p_new) = rows.values()
    same = b_old == b_new
    diff = np.abs(np.asarray(p_old, float) - np.asarray(p_new, float)).max()
    print(f"  ratio (kernel objects / precomputed): time {w_old / w_new:.2f}x, kernel pairs "
          f"{m_old.pairs / m_new.pairs:.1f}x; same best parameters: {same}; "
          f"max |prediction difference| {diff:.2g}")


if __name__ == "__main__":
    main()
