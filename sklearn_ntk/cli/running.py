"""Cross-validating the model table: the same folds for every model, scores, log-loss, timings."""

from __future__ import annotations

import math
import sys
import time
import warnings
from collections import Counter

import numpy as np

__all__ = ["run_comparison", "scorer"]


def _short_params(params):
    """``{'regressor__model__kernel__depth': 2, ...}`` -> ``'depth=2, ...'``."""
    out = []
    for key in sorted(params):
        value = params[key]
        if isinstance(value, float) and math.isinf(value):
            value = "inf"
        elif isinstance(value, float):
            value = f"{value:g}"
        out.append(f"{key.rsplit('__', 1)[-1]}={value}")
    return ", ".join(out)


def scorer(task):
    """``(name, function)`` of the main score: R^2 or accuracy."""
    from sklearn.metrics import accuracy_score, r2_score

    if task == "regression":
        return "R^2", r2_score
    return "accuracy", accuracy_score


def _log_loss(estimator, X, y):
    """Log-loss of ``predict_proba`` on ``(X, y)``; None for a model without probabilities."""
    if not hasattr(estimator, "predict_proba"):
        return None
    from sklearn.metrics import log_loss

    proba = estimator.predict_proba(X)
    return float(log_loss(y, proba, labels=estimator.classes_))


def _t_curve(search, train, test, times, task):
    """Train and test score of the tuned NTK model (best depth/activation/alpha) against ``t``.

    One factorisation for all times (``staged_predict`` / ``staged_decision_function``).
    """
    _, score = scorer(task)
    return search.t_curve({"train": train, "test": test}, times, score)


def make_splits(dataset, cv, seed):
    """The outer folds, shared by every model (stratified for classification)."""
    from sklearn.model_selection import KFold, StratifiedKFold

    if dataset.task == "classification":
        splitter = StratifiedKFold(n_splits=cv, shuffle=True, random_state=seed)
        return list(splitter.split(np.zeros(dataset.n_samples), dataset.y))
    splitter = KFold(n_splits=cv, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros(dataset.n_samples)))


def _progress(total, enabled):
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm is in the cli extra
        return None
    return tqdm(total=total, unit="fit", file=sys.stderr, leave=False, dynamic_ncols=True)


def _new_row(spec, score_name):
    return {
        "model": spec.name,
        "family": spec.family,
        "score_name": score_name,
        "scores": [],
        "log_losses": [],
        "fit_times": [],
        "predict_times": [],
        "best_params": [],
        "t_curve": [],
        "error": None,
        "warnings": {},
    }


def _run_fold(spec, dataset, train, test, times, row):
    """Fit and score one clone of ``spec`` on one fold; append to ``row``."""
    from sklearn.base import clone
    from sklearn.exceptions import ConvergenceWarning

    _, score = scorer(dataset.task)
    X_tr, X_te = dataset.rows(train), dataset.rows(test)
    y_tr, y_te = dataset.y[train], dataset.y[test]
    est = clone(spec.estimator)
    caught = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            warnings.simplefilter("ignore", ConvergenceWarning)
            t0 = time.perf_counter()
            est.fit(X_tr, y_tr)
            t1 = time.perf_counter()
            pred = est.predict(X_te)
            t2 = time.perf_counter()
            loss = _log_loss(est, X_te, y_te) if dataset.task == "classification" else None
            if spec.trace_t:
                curve = _t_curve(est, (X_tr, y_tr), (X_te, y_te), times, dataset.task)
                row["t_curve"].append(curve)
    finally:
        _count_warnings(row["warnings"], caught)
    row["scores"].append(float(score(y_te, pred)))
    if loss is not None:
        row["log_losses"].append(loss)
    row["fit_times"].append(t1 - t0)
    row["predict_times"].append(t2 - t1)
    if hasattr(est, "best_params_"):
        row["best_params"].append(_short_params(est.best_params_))


def _run_model(spec, dataset, splits, times, score_name, bar):
    row = _new_row(spec, score_name)
    if bar is not None:
        bar.set_description(spec.name)
    for train, test in splits:
        try:
            _run_fold(spec, dataset, train, test, times, row)
        except (MemoryError, KeyboardInterrupt):
            raise
        except Exception as exc:  # noqa: BLE001 - reported per model, the run continues
            message = str(exc).strip().splitlines()
            row["error"] = f"{type(exc).__name__}: {message[0] if message else ''}"
            if bar is not None:
                bar.update(len(splits) - len(row["scores"]))
            break
        if bar is not None:
            bar.update(1)
    summarise(row)
    return row


def run_comparison(dataset, models, cv, seed, times, progress=False, log=None):
    """Cross-validate every model on the same folds.

    Returns ``(results, interrupted)``: one result dict per *finished* model, and whether the
    run was stopped by Ctrl-C (the model running then is left out).
    """
    score_name, _ = scorer(dataset.task)
    splits = make_splits(dataset, cv, seed)
    bar = _progress(len(models) * len(splits), progress)
    results = []
    try:
        for spec in models:
            results.append(_run_model(spec, dataset, splits, times, score_name, bar))
            if log is not None:
                log(one_line(results[-1]))
    except KeyboardInterrupt:
        return results, True
    finally:
        if bar is not None:
            bar.close()
    return results, False


def _count_warnings(counts, caught):
    """Tally warnings as ``'Category: first line of the message' -> count``."""
    for w in caught:
        lines = str(w.message).strip().splitlines()
        key = f"{w.category.__name__}: {lines[0] if lines else ''}"
        counts[key] = counts.get(key, 0) + 1


def _mean_std(values, ok):
    values = np.asarray(values, dtype=float)
    if not ok or values.size == 0 or not np.isfinite(values).all():
        return float("nan"), float("nan")
    return float(values.mean()), float(values.std())


def summarise(row):
    """Add the means and standard deviations over the folds to a result row."""
    ok = row["error"] is None and len(row["scores"]) > 0
    row["score_mean"], row["score_std"] = _mean_std(row["scores"], ok)
    row["log_loss_mean"], row["log_loss_std"] = _mean_std(row.get("log_losses", []), ok)
    row["fit_time_mean"] = float(np.mean(row["fit_times"])) if ok else float("nan")
    row["predict_time_mean"] = float(np.mean(row["predict_times"])) if ok else float("nan")
    row["best_params_mode"] = (
        Counter(row["best_params"]).most_common(1)[0][0] if ok and row["best_params"] else ""
    )


def one_line(row):
    """``  NTK: R^2 0.812 ± 0.030 (fit 0.52 s)``, or the model's failure."""
    if row["error"]:
        return f"  {row['model']}: failed ({row['error']})"
    loss = ""
    if np.isfinite(row.get("log_loss_mean", float("nan"))):
        loss = f", log-loss {row['log_loss_mean']:.3f}"
    return (
        f"  {row['model']}: {row['score_name']} {row['score_mean']:.3f} ± {row['score_std']:.3f}"
        f"{loss} (fit {row['fit_time_mean']:.2f} s)"
    )
