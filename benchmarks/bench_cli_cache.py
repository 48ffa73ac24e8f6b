"""The CLI's NTK grid search with and without an explicit ``FactorizationCache``.

Runs the ``sklearn-ntk compare`` NTK row's grid (``sklearn_ntk.cli.models.ntk_grid``, full or
``--quick``) in the CLI's pipeline (standard scaling, ``GridSearchCV`` with 3 inner folds) on
synthetic data, side by side: ``NTKRegressor``/``NTKClassifier`` with ``cache=None`` vs with one
``FactorizationCache`` shared by the grid. Prints both times, the ratio and that every
candidate's score is identical.

Usage: ``python benchmarks/bench_cli_cache.py [--n 400] [--quick] [--task regression]``.
"""

import argparse
import time

import numpy as np
from sklearn.model_selection import GridSearchCV, KFold, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_ntk import FactorizationCache, NTKClassifier, NTKKernel, NTKRegressor
from sklearn_ntk.cli.models import ntk_grid


class _Sizing:
    def __init__(self, quick, regression):
        self.quick, self.regression = quick, regression


def _search(cache, X, y, quick, regression):
    est = (NTKRegressor if regression else NTKClassifier)(kernel=NTKKernel(), cache=cache)
    grid = [{f"ntkregressor__{k}" if regression else f"ntkclassifier__{k}": v
             for k, v in part.items()} for part in ntk_grid(_Sizing(quick, regression))]
    cv = (KFold if regression else StratifiedKFold)(3, shuffle=True, random_state=0)
    gs = GridSearchCV(make_pipeline(StandardScaler(), est), grid, cv=cv)
    t0 = time.perf_counter()
    gs.fit(X, y)
    return time.perf_counter() - t0, gs


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=400)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--task", choices=["regression", "classification"], default="regression")
    a = p.parse_args()
    rng = np.random.default_rng(0)
    X = rng.normal(size=(a.n, 8))
    f = np.sin(X[:, 0]) + 0.5 * X[:, 1] * X[:, 2]
    regression = a.task == "regression"
    y = f + 0.1 * rng.normal(size=a.n) if regression else np.digitize(f, [-0.5, 0.5])
    _search(None, X[:20], y[:20], True, regression)  # warm up the compiled kernels
    t_none, gs_none = _search(None, X, y, a.quick, regression)
    cache = FactorizationCache()
    t_cache, gs_cache = _search(cache, X, y, a.quick, regression)
    same = np.array_equal(gs_none.cv_results_["mean_test_score"],
                          gs_cache.cv_results_["mean_test_score"])
    n_cand = len(gs_none.cv_results_["params"])
    print(f"CLI NTK grid ({'quick' if a.quick else 'full'}, {n_cand} candidates x 3 folds, "
          f"{a.task}, n={a.n}): cache=None {t_none:.2f}s, FactorizationCache {t_cache:.2f}s -> "
          f"ratio {t_none / t_cache:.2f}x; cache hits {cache.hits}, misses {cache.misses}; "
          f"identical scores: {same}")


if __name__ == "__main__":
    main()
