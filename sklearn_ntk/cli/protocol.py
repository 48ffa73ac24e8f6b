"""The protocol of ``sklearn-ntk benchmark``: Arora et al. (ICLR 2020), Section 4, with nested CV.

Every model is a :class:`~sklearn.pipeline.Pipeline` (``StandardScaler`` fitted on the training
fold, then the classifier) tuned by :class:`~sklearn.model_selection.GridSearchCV` with
:data:`INNER_CV` stratified folds *inside* each of :data:`OUTER_CV` shuffled, stratified outer
folds (the paper's 4-fold evaluation); the outer test fold is never seen by the tuning.

* ``NTK-SVM``: ``SVC(kernel="precomputed")`` on the Gram matrix of
  ``NTKKernel(depth=L)``, over depth ``L`` in 1..5 and ``C`` in ``10^-2 .. 10^4`` (the paper's
  grid; the paper also tunes how many bottom layers are fixed, which
  :class:`~sklearn_ntk.NTKKernel` does not model). As in the paper, the Gram matrix is computed
  once per depth on the whole outer training fold and the inner search slices it, so the scaler
  of this model's inner search is fitted on the outer training fold (never on labels, never on
  the outer test fold);
* ``NTKClassifier``: the NTK estimator (kernel regression on one-hot targets, ``t = inf``) over the
  same depths and ``alpha`` in ``10^-3 .. 1``;
* ``RBF-SVM``: ``SVC(kernel="rbf")`` over the same ``C`` grid and three widths ``gamma``;
* ``Random forest``: 200 trees over ``max_features``.
"""

from __future__ import annotations

import sys
import time
import warnings
from dataclasses import dataclass

import numpy as np

__all__ = ["OUTER_CV", "INNER_CV", "MODEL_NAMES", "model_grids", "make_model", "run_benchmark"]

OUTER_CV = 4
INNER_CV = 3
MODEL_NAMES = ("NTK-SVM", "NTKClassifier", "RBF-SVM", "Random forest")


def model_grids(quick, n_features):
    """``{model name: parameter grid}`` (keys are the pipeline's ``model__...`` parameters)."""
    if quick:  # a smoke test of the machinery, not a result
        return {
            "NTK-SVM": {"model__kernel__depth": [1, 2], "model__C": [1.0, 100.0]},
            "NTKClassifier": {"model__kernel__depth": [1, 2], "model__alpha": [1e-2]},
            "RBF-SVM": {"model__C": [1.0, 100.0], "model__gamma": [1.0 / n_features]},
            "Random forest": {"model__max_features": ["sqrt"]},
        }
    depths = [1, 2, 3, 4, 5]
    cs = [10.0**k for k in range(-2, 5)]
    return {
        "NTK-SVM": {"model__kernel__depth": depths, "model__C": cs},
        "NTKClassifier": {"model__kernel__depth": depths, "model__alpha": [1e-3, 1e-2, 1e-1, 1.0]},
        "RBF-SVM": {"model__C": cs, "model__gamma": [g / n_features for g in (0.1, 1.0, 10.0)]},
        "Random forest": {"model__max_features": ["sqrt", 0.5, 1.0]},
    }


def make_model(name, quick, seed):
    """The unfitted pipeline of model ``name`` (before the grid search)."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    from sklearn_ntk import NTKClassifier, NTKKernel

    if name == "NTK-SVM":  # what _ntk_svm computes, as one pipeline (slower: a Gram per fit)
        model = SVC(kernel=NTKKernel())
    elif name == "NTKClassifier":
        model = NTKClassifier(kernel=NTKKernel(), t=float("inf"))
    elif name == "RBF-SVM":
        model = SVC(kernel="rbf")
    elif name == "Random forest":
        model = RandomForestClassifier(
            n_estimators=30 if quick else 200, random_state=seed, n_jobs=1
        )
    else:
        raise ValueError(f"unknown model {name!r}; expected one of {MODEL_NAMES}")
    return Pipeline([("scale", StandardScaler()), ("model", model)])


@dataclass
class FoldResult:
    """One model on one outer fold of one table."""

    table: str
    model: str
    fold: int
    accuracy: float
    fit_time: float
    best_params: str
    error: str = ""


def _short(params):
    return ", ".join(f"{k.rsplit('__', 1)[-1]}={v:g}" if isinstance(v, float) else
                     f"{k.rsplit('__', 1)[-1]}={v}" for k, v in sorted(params.items()))


def _ntk_svm(X_tr, y_tr, X_te, grid, inner, n_jobs):
    """NTK-SVM with one NTK Gram matrix per depth: ``(test predictions, best parameters)``."""
    from sklearn.model_selection import GridSearchCV
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    from sklearn_ntk import NTKKernel

    scaler = StandardScaler().fit(X_tr)
    Z_tr, Z_te = scaler.transform(X_tr), scaler.transform(X_te)
    best = None
    for depth in grid["model__kernel__depth"]:
        kernel = NTKKernel(depth=depth)
        search = GridSearchCV(SVC(kernel="precomputed"), {"C": grid["model__C"]}, cv=inner,
                              n_jobs=n_jobs, error_score="raise")
        search.fit(kernel(Z_tr), y_tr)
        if best is None or search.best_score_ > best[0]:  # ties: the shallower kernel
            best = (search.best_score_, kernel, search)
    _, kernel, search = best
    params = {"model__kernel__depth": kernel.depth, **{"model__C": search.best_params_["C"]}}
    return search.predict(kernel(Z_te, Z_tr)), params


def _fit_fold(table, name, fold, train, test, quick, seed, n_jobs):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.metrics import accuracy_score
    from sklearn.model_selection import GridSearchCV, StratifiedKFold

    grid = model_grids(quick, table.n_features)[name]
    inner = StratifiedKFold(INNER_CV, shuffle=True, random_state=seed)
    X_tr, y_tr, X_te = table.X[train], table.y[train], table.X[test]
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        if name == "NTK-SVM":
            pred, params = _ntk_svm(X_tr, y_tr, X_te, grid, inner, n_jobs)
        else:
            search = GridSearchCV(make_model(name, quick, seed), grid, cv=inner, n_jobs=n_jobs,
                                  error_score="raise")
            search.fit(X_tr, y_tr)
            pred, params = search.predict(X_te), search.best_params_
    elapsed = time.perf_counter() - t0
    accuracy = float(accuracy_score(table.y[test], pred))
    return FoldResult(table.name, name, fold, accuracy, elapsed, _short(params))


def _one(table, name, fold, split, opts):
    try:
        return _fit_fold(table, name, fold, *split, **opts)
    except (MemoryError, KeyboardInterrupt):
        raise
    except Exception as exc:  # noqa: BLE001 - recorded, the benchmark goes on
        lines = str(exc).strip().splitlines()
        error = f"{type(exc).__name__}: {lines[0] if lines else ''}"
        return FoldResult(table.name, name, fold, float("nan"), float("nan"), "", error)


def _progress(total, enabled):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="fold", file=sys.stderr, leave=False, dynamic_ncols=True)


def run_benchmark(tables, models=MODEL_NAMES, *, quick=False, seed=0, n_jobs=1, progress=False,
                  log=None, skip=None, on_done=None):
    """Nested cross-validation of every model on every table.

    ``skip(table_name, model)`` (optional) says which pairs are already done (resumed runs);
    ``on_done(table, records)`` (optional) is called as soon as a model has finished its outer
    folds on a table, with their :class:`FoldResult` records (to save them at once).

    Returns ``(results, interrupted)``: a list of :class:`FoldResult` of the pairs run here (every
    finished model of every table, also of the table running at the interrupt) and whether the
    run was interrupted (``KeyboardInterrupt``, or a :class:`~._common.Stopped` signal).
    """
    from sklearn.model_selection import StratifiedKFold

    outer = StratifiedKFold(OUTER_CV, shuffle=True, random_state=seed)
    opts = {"quick": quick, "seed": seed, "n_jobs": n_jobs}
    todo = [[n for n in models if skip is None or not skip(t.name, n)] for t in tables]
    bar = _progress(sum(map(len, todo)) * OUTER_CV, progress)
    results = []
    try:
        for table, names in zip(tables, todo, strict=True):
            if not names:
                continue
            splits = list(outer.split(table.X, table.y))
            done = []
            for name in names:
                if bar is not None:
                    bar.set_description(f"{table.name}: {name}")
                records = []
                for fold, split in enumerate(splits):
                    records.append(_one(table, name, fold, split, opts))
                    if bar is not None:
                        bar.update(1)
                results.extend(records)
                done.extend(records)
                if on_done is not None:
                    on_done(table, records)
            if log is not None:
                log(_table_line(table, done))
    except KeyboardInterrupt:
        return results, True
    finally:
        if bar is not None:
            bar.close()
    return results, False


def _table_line(table, done):
    parts = []
    for name in dict.fromkeys(r.model for r in done):
        accs = [r.accuracy for r in done if r.model == name]
        parts.append(f"{name} {100 * np.mean(accs):.1f}")
    return f"  {table.name} (n={table.n_rows}): " + ", ".join(parts)
