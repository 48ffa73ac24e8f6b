"""Command-line interface: ``sklearn-ntk compare``.

``sklearn-ntk compare`` runs a cross-validated comparison of the NTK estimators (tuned over depth,
activation and training time ``t`` with :class:`~sklearn.model_selection.GridSearchCV` inside a
:class:`~sklearn.pipeline.Pipeline` with feature scaling) against the models a user would pick
instead: Gaussian process, kernel ridge and SVM with an RBF kernel, a random forest and
scikit-learn's MLP.  It prints a table (score mean ± standard deviation over the folds, fit
time), and writes ``results.csv``, ``results.json`` and ``comparison.png`` into ``--out``.

Bad input (a missing file, a missing target column, non-numeric columns, missing values, a dataset
too large for the exact kernel methods, ...) is reported as a one-line error on standard error with
exit status 2 and no traceback.

Examples
--------
.. code-block:: bash

    sklearn-ntk compare                                  # diabetes (bundled), 5-fold CV
    sklearn-ntk compare --dataset wine --quick           # a classification set, < 1 minute
    sklearn-ntk compare --csv data.csv --target price --one-hot --impute median --out runs/price

The same is available as ``python -m sklearn_ntk compare ...`` and, from Python, as
``sklearn_ntk.cli.main(["compare", ...])`` which returns the exit status.
"""

from __future__ import annotations

import argparse
import difflib
import json
import math
import platform
import sys
import time
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["main", "CLIError", "BUNDLED_DATASETS"]

PROG = "sklearn-ntk"

#: Datasets bundled with scikit-learn (no network needed) and their task.
BUNDLED_DATASETS = {
    "diabetes": ("load_diabetes", "regression"),
    "breast_cancer": ("load_breast_cancer", "classification"),
    "wine": ("load_wine", "classification"),
    "iris": ("load_iris", "classification"),
    "digits": ("load_digits", "classification"),
}

#: Default largest number of rows the exact (O(n^2) memory, O(n^3) time) kernel methods get.
DEFAULT_MAX_SAMPLES = 2000
#: Rows used by ``--quick`` (unless ``--subsample`` says otherwise).
QUICK_SAMPLES = 150
#: Most distinct integer values a numeric target may have to be treated as class labels (task=auto).
AUTO_MAX_CLASSES = 20

_INF = float("inf")


class CLIError(Exception):
    """A user-facing error: reported as one line on stderr, exit status 2, no traceback."""


class _Parser(argparse.ArgumentParser):
    """``ArgumentParser`` that raises :class:`CLIError` instead of exiting on a usage error."""

    def error(self, message):
        raise CLIError(f"{message} (see '{self.prog} --help')")


# --------------------------------------------------------------------------------------------------
# Data loading and validation
# --------------------------------------------------------------------------------------------------


@dataclass
class Dataset:
    """A validated, fully numeric dataset ready for cross-validation."""

    name: str
    X: np.ndarray
    y: np.ndarray
    feature_names: list
    task: str
    notes: list = field(default_factory=list)

    @property
    def n_samples(self):
        return self.X.shape[0]

    @property
    def n_features(self):
        return self.X.shape[1]


def _name_rows(line_numbers, limit=8):
    items = [str(int(i)) for i in line_numbers[:limit]]
    more = len(line_numbers) - limit
    text = ", ".join(items)
    if more > 0:
        text += f" and {more} more"
    return text


def _quote_list(names, limit=8):
    shown = ", ".join(repr(str(n)) for n in list(names)[:limit])
    more = len(names) - limit
    return shown + (f" and {more} more" if more > 0 else "")


def _load_bundled(name):
    import sklearn.datasets

    loader, task = BUNDLED_DATASETS[name]
    bunch = getattr(sklearn.datasets, loader)()
    X = np.asarray(bunch.data, dtype=np.float64)
    y = np.asarray(bunch.target)
    names = getattr(bunch, "feature_names", None)
    names = [str(n) for n in names] if names is not None else [f"x{i}" for i in range(X.shape[1])]
    return X, y, names, task


def _read_csv(path):
    path = Path(path)
    if not path.exists():
        raise CLIError(f"no such file: {str(path)!r}")
    if path.is_dir():
        raise CLIError(f"{str(path)!r} is a directory, not a CSV file")
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas is in the cli extra
        raise CLIError("reading a CSV file needs pandas: pip install 'sklearn-ntk[cli]'") from None
    try:
        frame = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise CLIError(f"{str(path)!r} is empty") from None
    except pd.errors.ParserError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CLIError(f"cannot parse {str(path)!r} as CSV: {first}") from None
    except UnicodeDecodeError:
        raise CLIError(f"cannot read {str(path)!r}: it is not UTF-8 text") from None
    except PermissionError:
        raise CLIError(f"cannot read {str(path)!r}: permission denied") from None
    if frame.shape[0] == 0:
        raise CLIError(f"{str(path)!r} has a header but no data rows")
    return frame


def _is_numeric_series(series):
    import pandas as pd

    return pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)


def _load_csv(path, target, *, one_hot, impute):
    """Read ``path``, split off ``target`` and return a numeric feature matrix.

    Refuses non-numeric feature columns unless ``one_hot``; refuses missing values unless ``impute``
    says how to handle them (``drop`` rows, or fill feature columns with the ``mean``/``median``).
    """
    import pandas as pd

    frame = _read_csv(path)
    columns = [str(c) for c in frame.columns]
    frame.columns = columns
    if target not in columns:
        lower = {c.lower(): c for c in columns}
        close = [lower[target.lower()]] if target.lower() in lower else []
        close = close or difflib.get_close_matches(target, columns, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise CLIError(
            f"target column {target!r} not found in {str(path)!r}; columns are "
            f"{_quote_list(columns)}{hint}"
        )
    features = [c for c in columns if c != target]
    if not features:
        raise CLIError(f"{str(path)!r} has no feature columns besides the target {target!r}")
    notes = []
    # CSV line numbers (header = line 1), used to name rows in messages.
    lines = np.arange(frame.shape[0]) + 2

    # Missing values first: they would otherwise make numeric columns look non-numeric to no one,
    # but they must be named before any imputation or encoding happens.
    missing = frame.isna()
    target_missing = missing[target].to_numpy()
    feature_missing = missing[features].to_numpy().any(axis=1)
    if impute == "none" and (target_missing.any() or feature_missing.any()):
        rows = np.flatnonzero(target_missing | feature_missing)
        cols = [c for c in columns if missing[c].any()]
        raise CLIError(
            f"missing values (NaN/empty) in column(s) {_quote_list(cols)} on CSV line(s) "
            f"{_name_rows(lines[rows])}; fix the file, or pass --impute drop|mean|median"
        )
    if target_missing.any() and impute != "drop":
        raise CLIError(
            f"the target {target!r} has missing values on CSV line(s) "
            f"{_name_rows(lines[np.flatnonzero(target_missing)])}; a target cannot be imputed, "
            "pass --impute drop to drop those rows"
        )
    if impute == "drop":
        keep = ~(target_missing | feature_missing)
        dropped = int((~keep).sum())
        if dropped:
            frame = frame.loc[keep].reset_index(drop=True)
            lines = lines[keep]
            notes.append(f"dropped {dropped} row(s) with missing values (--impute drop)")
        if frame.shape[0] == 0:
            raise CLIError("every row has a missing value; nothing is left after --impute drop")

    y_series = frame[target]
    X_frame = frame[features]
    non_numeric = [c for c in features if not _is_numeric_series(X_frame[c])]
    if non_numeric and not one_hot:
        raise CLIError(
            f"non-numeric feature column(s) {_quote_list(non_numeric)}; pass --one-hot to "
            "one-hot encode them, or remove them from the file"
        )
    numeric = [c for c in features if c not in non_numeric]
    if impute in ("mean", "median"):
        filled = [c for c in numeric if X_frame[c].isna().any()]
        if filled:
            X_frame = X_frame.copy()
            for c in filled:
                col = X_frame[c].astype(float)
                if col.isna().all():
                    raise CLIError(
                        f"feature column {c!r} has no values at all; cannot --impute {impute}"
                    )
                fill = col.mean() if impute == "mean" else col.median()
                X_frame[c] = col.fillna(fill)
            notes.append(f"filled missing values in {_quote_list(filled)} with the {impute}")
    if non_numeric:
        X_frame = pd.get_dummies(
            X_frame, columns=non_numeric, dtype=float, dummy_na=impute in ("mean", "median")
        )
        notes.append(f"one-hot encoded {_quote_list(non_numeric)} (--one-hot)")
    X = X_frame.to_numpy(dtype=np.float64)
    bad = ~np.isfinite(X)
    if bad.any():
        rows = np.flatnonzero(bad.any(axis=1))
        cols = [X_frame.columns[j] for j in np.flatnonzero(bad.any(axis=0))]
        raise CLIError(
            f"infinite values in column(s) {_quote_list(cols)} on CSV line(s) "
            f"{_name_rows(lines[rows])}"
        )
    y = y_series.to_numpy()
    return X, y, [str(c) for c in X_frame.columns], notes, _is_numeric_series(y_series)


def _infer_task(y, numeric):
    """``regression`` for a numeric target with many distinct values, else ``classification``."""
    if not numeric:
        return "classification", "the target is not numeric"
    values = np.asarray(y, dtype=np.float64)
    uniques = np.unique(values)
    if np.all(values == np.round(values)) and uniques.size <= AUTO_MAX_CLASSES:
        return "classification", f"the target has {uniques.size} distinct integer values"
    return "regression", "the target is numeric"


def _check_target(dataset, cv):
    y = dataset.y
    if dataset.task == "regression":
        try:
            y = np.asarray(y, dtype=np.float64)
        except (TypeError, ValueError):
            raise CLIError(
                "--task regression needs a numeric target; this one is not (use --task "
                "classification)"
            ) from None
        if not np.all(np.isfinite(y)):
            raise CLIError("the target has infinite values")
        if np.ptp(y) == 0:
            raise CLIError("the target is constant; there is nothing to predict")
        dataset.y = y
    else:
        classes, counts = np.unique(np.asarray(y).astype(str), return_counts=True)
        if classes.size < 2:
            raise CLIError("the target has a single class; classification needs at least two")
        small = classes[counts < cv]
        if small.size:
            raise CLIError(
                f"class(es) {_quote_list(small)} have fewer than {cv} members, too few for "
                f"{cv}-fold stratified CV; use a smaller --cv or --task regression"
            )
        if classes.size > max(AUTO_MAX_CLASSES, 50):
            raise CLIError(
                f"the target has {classes.size} classes; is it really a classification "
                "target? pass --task regression"
            )
    if dataset.n_samples < 2 * cv:
        raise CLIError(
            f"only {dataset.n_samples} rows; {cv}-fold CV needs at least {2 * cv} (use a smaller "
            "--cv)"
        )


def _subsample(dataset, n, seed):
    if n >= dataset.n_samples:
        return
    from sklearn.model_selection import train_test_split

    stratify = dataset.y if dataset.task == "classification" else None
    try:
        idx, _ = train_test_split(
            np.arange(dataset.n_samples), train_size=n, random_state=seed, stratify=stratify
        )
    except ValueError:  # a class too small to stratify: plain random subset
        idx, _ = train_test_split(np.arange(dataset.n_samples), train_size=n, random_state=seed)
    idx = np.sort(idx)
    dataset.notes.append(f"random subsample of {n} of {dataset.n_samples} rows (seed {seed})")
    dataset.X = dataset.X[idx]
    dataset.y = dataset.y[idx]


def load_dataset(args):
    """Load, validate and (optionally) subsample the data the ``compare`` command runs on."""
    if args.csv is None and args.target is not None:
        raise CLIError("--target only applies with --csv PATH")
    if args.csv is not None:
        if args.dataset is not None:
            raise CLIError("give either --dataset or --csv, not both")
        if args.target is None:
            raise CLIError("--csv needs --target COLUMN (the column to predict)")
        X, y, names, notes, numeric = _load_csv(
            args.csv, args.target, one_hot=args.one_hot, impute=args.impute
        )
        name = Path(args.csv).name
        auto_task, reason = _infer_task(y, numeric)
    else:
        name = args.dataset or "diabetes"
        X, y, names, auto_task = _load_bundled(name)
        notes, reason = [], "bundled dataset"
    if args.task == "auto":
        task = auto_task
        notes.append(f"task: {task} ({reason}; --task overrides)")
    else:
        task = args.task
    dataset = Dataset(name=name, X=X, y=y, feature_names=names, task=task, notes=notes)

    n_rows = args.subsample
    if n_rows is None and args.quick:
        n_rows = QUICK_SAMPLES
    if n_rows is not None:
        _subsample(dataset, n_rows, args.seed)
    if dataset.n_samples > args.max_samples:
        raise CLIError(
            f"{dataset.n_samples} rows is too many for the exact kernel methods (O(n^2) memory, "
            f"O(n^3) time per fit; limit --max-samples {args.max_samples}); rerun with "
            f"--subsample {args.max_samples} or --quick, or raise --max-samples"
        )
    _check_target(dataset, args.cv)
    return dataset


# --------------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------------


@dataclass
class ModelSpec:
    """One row of the comparison."""

    name: str
    estimator: object
    family: str  # "ntk" or "baseline"
    # trace the score against the training time t (NTK estimators only)
    trace_t: bool = False


def _grids(quick):
    if quick:
        return {"depth": [1, 2], "activation": ["relu"], "t": [10.0, 1000.0, _INF]}
    return {
        "depth": [1, 2, 3],
        "activation": ["relu", "erf"],
        "t": [1.0, 10.0, 100.0, 1000.0, 10000.0, _INF],
    }


def curve_times(quick):
    """Training times at which the NTK test score is traced for the figure."""
    finite = np.logspace(-1, 5, 13 if quick else 25)
    return [float(v) for v in finite] + [_INF]


def build_models(task, n_features, quick, seed, n_jobs=1):
    """The NTK estimators (grid-searched) and the baselines, each scaled in a Pipeline.

    Regression models also standardise the target (``TransformedTargetRegressor``): the NTK and
    NNGP predictors have a zero prior mean, and SVR's epsilon and the MLP's step size assume unit
    scale.
    """
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
    from sklearn.gaussian_process import GaussianProcessClassifier, GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import RBF, WhiteKernel
    from sklearn.gaussian_process.kernels import ConstantKernel as C
    from sklearn.kernel_ridge import KernelRidge
    from sklearn.model_selection import GridSearchCV
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC, SVR

    from sklearn_ntk import NTKKernel

    regression = task == "regression"
    grid = _grids(quick)
    inner_cv = 3
    gammas = [g / n_features for g in ([0.3, 3.0] if quick else [0.1, 0.3, 1.0, 3.0])]
    reg_grid = [1e-2, 1.0] if quick else [1e-3, 1e-2, 1e-1, 1.0]
    c_grid = [1.0, 10.0] if quick else [0.1, 1.0, 10.0, 100.0]

    def scaled(model):
        pipe = Pipeline([("scale", StandardScaler()), ("model", model)])
        if regression:
            return TransformedTargetRegressor(regressor=pipe, transformer=StandardScaler())
        return pipe

    prefix = "regressor__model__" if regression else "model__"

    def searched(model, params):
        return GridSearchCV(
            scaled(model),
            {prefix + k: v for k, v in params.items()},
            cv=inner_cv,
            n_jobs=n_jobs,
            error_score="raise",
        )

    if regression:
        from sklearn_ntk import NTKRegressor as NTKEstimator
    else:
        from sklearn_ntk import NTKClassifier as NTKEstimator
    ntk_params = {
        "kernel__depth": grid["depth"],
        "kernel__activation": grid["activation"],
        "t": grid["t"],
    }
    models = [
        ModelSpec(
            "NTK",
            searched(NTKEstimator(kernel=NTKKernel(kind="ntk")), ntk_params),
            "ntk",
            trace_t=True,
        ),
        ModelSpec(
            "NNGP",
            searched(NTKEstimator(kernel=NTKKernel(kind="nngp")), ntk_params),
            "ntk",
            trace_t=True,
        ),
    ]
    n_trees = 50 if quick else 200
    if regression:
        gp_kernel = C(1.0) * RBF(length_scale=1.0) + WhiteKernel(noise_level=0.1)
        models += [
            ModelSpec(
                "GP (RBF)",
                scaled(GaussianProcessRegressor(kernel=gp_kernel, random_state=seed)),
                "baseline",
            ),
            ModelSpec(
                "Kernel ridge (RBF)",
                searched(KernelRidge(kernel="rbf"), {"alpha": reg_grid, "gamma": gammas}),
                "baseline",
            ),
            ModelSpec(
                "SVM (RBF)",
                searched(SVR(kernel="rbf"), {"C": c_grid, "gamma": gammas}),
                "baseline",
            ),
            ModelSpec(
                "Random forest",
                scaled(RandomForestRegressor(n_estimators=n_trees, random_state=seed, n_jobs=1)),
                "baseline",
            ),
            ModelSpec(
                "MLP",
                scaled(
                    MLPRegressor(
                        hidden_layer_sizes=(128, 128),
                        alpha=1e-3,
                        early_stopping=True,
                        max_iter=500 if quick else 2000,
                        random_state=seed,
                    )
                ),
                "baseline",
            ),
        ]
    else:
        models += [
            ModelSpec(
                "GP (RBF)",
                scaled(GaussianProcessClassifier(kernel=C(1.0) * RBF(1.0), random_state=seed)),
                "baseline",
            ),
            ModelSpec(
                "SVM (RBF)",
                searched(SVC(kernel="rbf"), {"C": c_grid, "gamma": gammas}),
                "baseline",
            ),
            ModelSpec(
                "Random forest",
                scaled(RandomForestClassifier(n_estimators=n_trees, random_state=seed, n_jobs=1)),
                "baseline",
            ),
            ModelSpec(
                "MLP",
                scaled(
                    MLPClassifier(
                        hidden_layer_sizes=(128, 128),
                        alpha=1e-3,
                        early_stopping=True,
                        max_iter=500 if quick else 2000,
                        random_state=seed,
                    )
                ),
                "baseline",
            ),
        ]
    return models


# --------------------------------------------------------------------------------------------------
# Running the comparison
# --------------------------------------------------------------------------------------------------


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


def _scorer(task):
    from sklearn.metrics import accuracy_score, r2_score

    if task == "regression":
        return "R^2", r2_score
    return "accuracy", accuracy_score


def _t_curve(search, X_train, y_train, X_test, y_test, times, task):
    """Train and test score of the tuned NTK model (best depth/activation) against time ``t``.

    Uses the fitted estimator's ``staged_predict`` where it exists (one factorisation for all
    times); otherwise refits a clone per time.
    """
    from sklearn.base import clone

    _, score = _scorer(task)
    best = search.best_estimator_
    if task == "regression" and hasattr(best.regressor_[-1], "staged_predict"):
        pipe, transformer = best.regressor_, best.transformer_
        estimator = pipe[-1]
        out = {}
        for label, X, y in (("train", X_train, y_train), ("test", X_test, y_test)):
            Z = pipe[:-1].transform(X)
            ys = transformer.transform(np.asarray(y, dtype=float).reshape(-1, 1)).ravel()
            preds = np.asarray(list(estimator.staged_predict(Z, times)), dtype=np.float64)
            preds = preds.reshape(len(times), Z.shape[0])
            # R^2 is invariant under the common affine map back to the original units
            out[label] = [float(score(ys, p)) for p in preds]
        return out
    if task == "classification" and hasattr(best[-1], "staged_decision_function"):
        estimator, classes = best[-1], best[-1].classes_
        out = {}
        for label, X, y in (("train", X_train, y_train), ("test", X_test, y_test)):
            Z = best[:-1].transform(X)
            curve = []
            for s in estimator.staged_decision_function(Z, times):
                s = np.asarray(s)
                idx = (s > 0).astype(int) if s.ndim == 1 else np.argmax(s, axis=1)
                curve.append(float(score(y, classes[idx])))
            out[label] = curve
        return out
    name = "regressor__model__t" if task == "regression" else "model__t"
    train, test = [], []
    for t in times:
        est = clone(best).set_params(**{name: t}).fit(X_train, y_train)
        train.append(float(score(y_train, est.predict(X_train))))
        test.append(float(score(y_test, est.predict(X_test))))
    return {"train": train, "test": test}


def _make_splits(dataset, cv, seed):
    from sklearn.model_selection import KFold, StratifiedKFold

    if dataset.task == "classification":
        splitter = StratifiedKFold(n_splits=cv, shuffle=True, random_state=seed)
        return list(splitter.split(dataset.X, np.asarray(dataset.y).astype(str)))
    splitter = KFold(n_splits=cv, shuffle=True, random_state=seed)
    return list(splitter.split(dataset.X))


def _progress(total, enabled):
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm is in the cli extra
        return None
    return tqdm(total=total, unit="fit", file=sys.stderr, leave=False, dynamic_ncols=True)


def run_comparison(dataset, models, cv, seed, times, progress=False, log=None):
    """Cross-validate every model on the same folds; return one result dict per model."""
    from sklearn.base import clone
    from sklearn.exceptions import ConvergenceWarning

    score_name, score = _scorer(dataset.task)
    splits = _make_splits(dataset, cv, seed)
    bar = _progress(len(models) * len(splits), progress)
    results = []
    try:
        for spec in models:
            row = {
                "model": spec.name,
                "family": spec.family,
                "score_name": score_name,
                "scores": [],
                "fit_times": [],
                "predict_times": [],
                "best_params": [],
                "t_curve": [],
                "error": None,
                "warnings": {},
            }
            if bar is not None:
                bar.set_description(spec.name)
            for train, test in splits:
                X_tr, X_te = dataset.X[train], dataset.X[test]
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
                        if spec.trace_t:
                            row["t_curve"].append(
                                _t_curve(est, X_tr, y_tr, X_te, y_te, times, dataset.task)
                            )
                except MemoryError:
                    raise
                except Exception as exc:  # noqa: BLE001 - reported per model, run continues
                    message = str(exc).strip().splitlines()
                    row["error"] = f"{type(exc).__name__}: {message[0] if message else ''}"
                    if bar is not None:
                        bar.update(len(splits) - len(row["scores"]))
                    break
                finally:
                    _count_warnings(row["warnings"], caught)
                row["scores"].append(float(score(y_te, pred)))
                row["fit_times"].append(t1 - t0)
                row["predict_times"].append(t2 - t1)
                if hasattr(est, "best_params_"):
                    row["best_params"].append(_short_params(est.best_params_))
                if bar is not None:
                    bar.update(1)
            _summarise(row)
            results.append(row)
            if log is not None:
                log(_one_line(row))
    finally:
        if bar is not None:
            bar.close()
    return results


def _count_warnings(counts, caught):
    """Tally warnings as ``'Category: first line of the message' -> count``."""
    for w in caught:
        lines = str(w.message).strip().splitlines()
        key = f"{w.category.__name__}: {lines[0] if lines else ''}"
        counts[key] = counts.get(key, 0) + 1


def _summarise(row):
    scores = np.asarray(row["scores"], dtype=float)
    ok = row["error"] is None and scores.size > 0
    row["score_mean"] = float(scores.mean()) if ok else float("nan")
    row["score_std"] = float(scores.std()) if ok else float("nan")
    row["fit_time_mean"] = float(np.mean(row["fit_times"])) if ok else float("nan")
    row["predict_time_mean"] = float(np.mean(row["predict_times"])) if ok else float("nan")
    row["best_params_mode"] = (
        Counter(row["best_params"]).most_common(1)[0][0] if ok and row["best_params"] else ""
    )


def _one_line(row):
    if row["error"]:
        return f"  {row['model']}: failed ({row['error']})"
    return (
        f"  {row['model']}: {row['score_name']} {row['score_mean']:.3f} ± {row['score_std']:.3f}"
        f" (fit {row['fit_time_mean']:.2f} s)"
    )


# --------------------------------------------------------------------------------------------------
# Output: table, CSV, JSON, figure
# --------------------------------------------------------------------------------------------------


def format_table(results):
    """A plain-text table of the results, best score first."""
    order = sorted(
        results, key=lambda r: -r["score_mean"] if np.isfinite(r["score_mean"]) else np.inf
    )
    headers = ["model", f"{results[0]['score_name']} (mean ± std)", "fit time (s)", "chosen"]
    rows = []
    for r in order:
        if r["error"]:
            rows.append([r["model"], "failed", "-", r["error"]])
            continue
        rows.append(
            [
                r["model"],
                f"{r['score_mean']:.3f} ± {r['score_std']:.3f}",
                f"{r['fit_time_mean']:.3f}",
                r["best_params_mode"],
            ]
        )
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    for row in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines)


def _json_safe(value):
    if isinstance(value, float):
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        if math.isnan(value):
            return None
        return value
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        return _json_safe(value.item())
    return value


def _curve_summary(results, times):
    curves = {}
    for r in results:
        if r["family"] != "ntk" or r["error"] or not r["t_curve"]:
            continue
        entry = {"t": list(times)}
        for part in ("train", "test"):
            values = np.asarray([c[part] for c in r["t_curve"]], dtype=float)
            entry[f"{part}_mean"] = values.mean(axis=0).tolist()
            entry[f"{part}_std"] = values.std(axis=0).tolist()
        curves[r["model"]] = entry
    return curves


def write_csv(results, path):
    """One row per model: summary statistics, the per-fold scores and any error."""
    import csv

    fields = [
        "model",
        "family",
        "score_name",
        "score_mean",
        "score_std",
        "fit_time_mean",
        "predict_time_mean",
        "best_params_mode",
        "scores",
        "error",
    ]
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        for r in results:
            out = {k: r[k] for k in fields}
            out["scores"] = " ".join(f"{s:.6g}" for s in r["scores"])
            out["error"] = r["error"] or ""
            writer.writerow(out)


def write_json(results, dataset, settings, times, path):
    """Everything: dataset, settings, per-model results, the score-vs-t curves, versions."""
    import sklearn

    from sklearn_ntk import __version__

    payload = {
        "dataset": {
            "name": dataset.name,
            "task": dataset.task,
            "n_samples": dataset.n_samples,
            "n_features": dataset.n_features,
            "notes": dataset.notes,
        },
        "settings": settings,
        "results": [{k: v for k, v in r.items() if k != "t_curve"} for r in results],
        "t_curve": _curve_summary(results, times),
        "versions": {
            "sklearn_ntk": __version__,
            "scikit-learn": sklearn.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
        },
    }
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(_json_safe(payload), fh, indent=2)
        fh.write("\n")


def plot_results(results, dataset, times, path):
    """Two panels: score per model (mean ± std over folds); NTK/NNGP score against ``t``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [r for r in results if not r["error"]]
    ok.sort(key=lambda r: r["score_mean"])
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(13, 4.8), constrained_layout=True)
    ypos = np.arange(len(ok))
    colors = ["tab:red" if r["family"] == "ntk" else "tab:gray" for r in ok]
    ax0.barh(
        ypos,
        [r["score_mean"] for r in ok],
        xerr=[r["score_std"] for r in ok],
        color=colors,
        alpha=0.8,
        capsize=3,
    )
    ax0.set_yticks(ypos, [f"{r['model']}  ({r['fit_time_mean']:.2f} s)" for r in ok])
    score_name = results[0]["score_name"]
    ax0.set_xlabel(f"{score_name} ({len(results[0]['scores']) or '?'}-fold CV, mean ± std)")
    ax0.set_title(f"{dataset.name}: {dataset.n_samples} samples, {dataset.n_features} features")
    if ok:
        lo = min(r["score_mean"] - r["score_std"] for r in ok)
        ax0.set_xlim(max(lo - 0.05, -0.5) if lo < 0 else 0.0, None)

    curves = _curve_summary(results, times)
    finite = np.asarray([t for t in times if np.isfinite(t)])
    has_inf = len(finite) < len(times)
    t_inf = finite.max() * 10**1.0 if has_inf else None
    xs = np.asarray([t if np.isfinite(t) else t_inf for t in times])
    for (name, c), color in zip(curves.items(), ["tab:red", "tab:blue"], strict=False):
        for part, style in (("test", "-"), ("train", ":")):
            mean = np.asarray(c[f"{part}_mean"])
            std = np.asarray(c[f"{part}_std"])
            ax1.plot(
                xs[: len(finite)], mean[: len(finite)], style, color=color, label=f"{name} ({part})"
            )
            if part == "test":
                ax1.fill_between(
                    xs[: len(finite)],
                    (mean - std)[: len(finite)],
                    (mean + std)[: len(finite)],
                    color=color,
                    alpha=0.15,
                )
            if has_inf:
                ax1.plot([t_inf], [mean[-1]], "o" if part == "test" else "x", color=color)
    ax1.set_xscale("log")
    if has_inf:
        ax1.axvline(finite.max() * 10**0.5, color="k", lw=0.5, ls="--")
        ticks = [v for v in ax1.get_xticks() if finite.min() <= v <= finite.max()]
        ax1.set_xticks(
            ticks + [t_inf], [f"$10^{{{int(round(np.log10(v)))}}}$" for v in ticks] + [r"$\infty$"]
        )
    ax1.set_xlabel("training time t (gradient-descent steps, learning rate 1)")
    ax1.set_ylabel(score_name)
    ax1.set_title("NTK/NNGP score against training time t")
    if curves:
        lo = min(
            min(np.asarray(c["test_mean"]) - np.asarray(c["test_std"])) for c in curves.values()
        )
        ax1.set_ylim(max(lo, -0.5), 1.02)
        ax1.legend(fontsize=8, loc="lower left")
    ax1.grid(True, alpha=0.3)
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --------------------------------------------------------------------------------------------------
# Commands and entry point
# --------------------------------------------------------------------------------------------------


def _prepare_out(out):
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise CLIError(f"--out {str(out)!r} exists and is not a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".sklearn-ntk-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise CLIError(f"cannot write to --out {str(out)!r}: {exc.strerror or exc}") from None
    return out


def _cmd_compare(args):
    if args.cv < 2:
        raise CLIError(f"--cv must be at least 2, got {args.cv}")
    if args.subsample is not None and args.subsample < 2 * args.cv:
        raise CLIError(f"--subsample must be at least {2 * args.cv} for {args.cv}-fold CV")
    if args.max_samples < 1:
        raise CLIError("--max-samples must be positive")
    if args.threads < 1:
        raise CLIError(f"--threads must be at least 1, got {args.threads}")
    if args.n_jobs == 0:
        raise CLIError("--n-jobs must be a positive number or -1")
    dataset = load_dataset(args)
    out = _prepare_out(args.out)

    def say(text=""):
        print(text, flush=True)

    say(
        f"{PROG} compare: {dataset.name} ({dataset.n_samples} samples, {dataset.n_features} "
        f"features, {dataset.task}), {args.cv}-fold CV{' [quick]' if args.quick else ''}"
    )
    for note in dataset.notes:
        say(f"  note: {note}")

    try:
        models = build_models(
            dataset.task, dataset.n_features, args.quick, args.seed, n_jobs=args.n_jobs
        )
    except ImportError as exc:
        raise CLIError(f"cannot build the models: {exc}") from None
    times = curve_times(args.quick)
    interactive = sys.stderr.isatty()
    log = None if interactive else (lambda s: print(s, file=sys.stderr, flush=True))
    start = time.perf_counter()
    # The matrices here are small (n <= --max-samples): multi-threaded BLAS gains little on them,
    # and on a busy machine oversubscribed BLAS threads make a 300 x 300 eigh 100x slower.
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=args.threads, user_api="blas"):
        results = run_comparison(
            dataset, models, args.cv, args.seed, times, progress=interactive, log=log
        )
    elapsed = time.perf_counter() - start

    say()
    say(format_table(results))
    say()
    for r in results:
        for message, count in r["warnings"].items():
            say(f"  note: {r['model']}: {count} x {message}")
    settings = {
        "cv": args.cv,
        "quick": bool(args.quick),
        "seed": args.seed,
        "grid": _grids(args.quick),
        "elapsed_s": elapsed,
        "command": " ".join([PROG] + list(args.argv)),
    }
    write_csv(results, out / "results.csv")
    write_json(results, dataset, settings, times, out / "results.json")
    written = [out / "results.csv", out / "results.json"]
    if not args.no_figure:
        try:
            plot_results(results, dataset, times, out / "comparison.png")
            written.append(out / "comparison.png")
        except ImportError:
            say("  note: matplotlib is not installed; no figure (pip install 'sklearn-ntk[cli]')")
    say(f"wrote {', '.join(str(p) for p in written)}  ({elapsed:.1f} s)")
    failed = [r["model"] for r in results if r["error"]]
    if failed:
        print(f"{PROG}: error: model(s) failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def build_parser():
    """The argument parser of the ``sklearn-ntk`` command."""
    from sklearn_ntk import __version__

    parser = _Parser(
        prog=PROG,
        description="The Neural Tangent Kernel as a scikit-learn citizen: command-line tools.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    p = sub.add_parser(
        "compare",
        help="cross-validated comparison of NTK estimators against standard models",
        description=(
            "Cross-validate the NTK and NNGP estimators (grid-searched over depth, activation "
            "and training time t, inside a Pipeline with StandardScaler) against Gaussian "
            "process, kernel ridge and SVM with RBF kernels, a random forest and an MLP. "
            "Prints a table and writes results.csv, results.json and comparison.png to --out."
        ),
    )
    src = p.add_argument_group("data (default: --dataset diabetes)")
    src.add_argument(
        "--dataset",
        choices=sorted(BUNDLED_DATASETS),
        help="a dataset bundled with scikit-learn (no network needed)",
    )
    src.add_argument("--csv", metavar="PATH", help="a CSV file with a header row")
    src.add_argument("--target", metavar="COLUMN", help="the column of --csv to predict")
    src.add_argument(
        "--one-hot",
        action="store_true",
        help="one-hot encode non-numeric feature columns (default: refuse them)",
    )
    src.add_argument(
        "--impute",
        choices=["none", "drop", "mean", "median"],
        default="none",
        help="missing values: refuse (none, default), drop the rows, or fill "
        "feature columns with the column mean/median",
    )
    p.add_argument(
        "--task",
        choices=["auto", "regression", "classification"],
        default="auto",
        help="default auto: classification for a non-numeric target or one with at "
        f"most {AUTO_MAX_CLASSES} distinct integer values",
    )
    p.add_argument("--cv", type=int, default=5, metavar="K", help="number of CV folds (5)")
    p.add_argument(
        "--out", default="results", metavar="DIR", help="output directory (default: ./results)"
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help=f"small grids, {QUICK_SAMPLES} rows, fewer trees: well under a minute",
    )
    p.add_argument(
        "--subsample", type=int, metavar="N", help="run on a random (stratified) subset of N rows"
    )
    p.add_argument(
        "--max-samples",
        type=int,
        default=DEFAULT_MAX_SAMPLES,
        metavar="N",
        help=f"refuse datasets with more rows than this ({DEFAULT_MAX_SAMPLES}); the "
        "exact kernel methods cost O(n^2) memory and O(n^3) time",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed for folds and models (0)")
    p.add_argument(
        "--n-jobs",
        type=int,
        default=1,
        metavar="J",
        help="parallel jobs inside each grid search (1)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        metavar="T",
        help="BLAS threads per fit (1: the matrices are small, and extra BLAS threads only "
        "slow a busy machine down)",
    )
    p.add_argument("--no-figure", action="store_true", help="do not write comparison.png")
    p.set_defaults(func=_cmd_compare)
    return parser


def main(argv=None):
    """Run the ``sklearn-ntk`` command line; return the exit status.

    Parameters
    ----------
    argv : list of str, optional
        The arguments (without the program name); default ``sys.argv[1:]``.

    Returns
    -------
    status : int
        0 on success, 1 when some model failed during the comparison, 2 for bad input or usage
        (reported as one line on standard error), 130 when interrupted.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return 0
        args.argv = argv
        return int(args.func(args))
    except CLIError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except SystemExit as exc:  # --help / --version
        return exc.code if isinstance(exc.code, int) else 0
    except MemoryError as exc:
        print(
            f"{PROG}: error: out of memory ({exc or 'MemoryError'}); rerun with --subsample N "
            "or --quick",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
