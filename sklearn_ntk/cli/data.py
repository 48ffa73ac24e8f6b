"""Loading and validating the data ``sklearn-ntk compare`` runs on.

Everything here is row-wise or a check: nothing is *fitted* on the data (imputation statistics and
one-hot categories are learnt inside the cross-validated pipeline, see :mod:`.models`), so no test
fold leaks into training.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ._common import CLIError, name_rows, quote_list

__all__ = ["BUNDLED_DATASETS", "IMAGE_SHAPES", "Dataset", "load_dataset"]

#: Datasets bundled with scikit-learn (no network needed) and their task.
BUNDLED_DATASETS = {
    "diabetes": ("load_diabetes", "regression"),
    "breast_cancer": ("load_breast_cancer", "classification"),
    "wine": ("load_wine", "classification"),
    "iris": ("load_iris", "classification"),
    "digits": ("load_digits", "classification"),
}
#: Shape ``(H, W, C)`` of one sample of the bundled datasets whose rows are images (flattened in
#: C order): the comparison adds a convolutional NTK for them.
IMAGE_SHAPES = {"digits": (8, 8, 1)}

#: Default largest number of rows the exact (O(n^2) memory, O(n^3) time) kernel methods get.
DEFAULT_MAX_SAMPLES = 2000
#: Rows used by ``--quick`` (unless ``--subsample`` says otherwise).
QUICK_SAMPLES = 150
#: Most distinct integer values a numeric target may have to be treated as class labels (task=auto).
AUTO_MAX_CLASSES = 20
#: Most classes ``--task auto`` accepts for a non-numeric target (an explicit --task is obeyed).
AUTO_MAX_LABELS = 50
#: Category that stands for a missing value in a non-numeric column (a constant: nothing fitted).
MISSING_CATEGORY = "<missing>"


@dataclass
class Dataset:
    """A validated dataset ready for cross-validation.

    ``X`` is a float array, or a ``DataFrame`` when some columns (positions ``categorical``) are
    non-numeric. Numeric columns may hold NaN when ``impute`` is ``"mean"`` or ``"median"``: the
    pipeline fills them from each training fold.
    """

    name: str
    X: object
    y: np.ndarray
    feature_names: list
    task: str
    categorical: list = field(default_factory=list)
    impute: str = "none"
    notes: list = field(default_factory=list)
    input_shape: tuple | None = None  # (H, W, C) when every row is an image, else None

    @property
    def n_samples(self):
        return self.X.shape[0]

    @property
    def n_features(self):
        return self.X.shape[1]

    @property
    def numeric(self):
        """Positions of the numeric feature columns."""
        return [j for j in range(self.n_features) if j not in set(self.categorical)]

    @property
    def n_encoded_features(self):
        """Number of columns after one-hot encoding (categories counted on the whole table)."""
        if not self.categorical:
            return self.n_features
        n_levels = sum(self.X.iloc[:, j].nunique() for j in self.categorical)
        return len(self.numeric) + n_levels

    def rows(self, idx):
        """The feature rows ``idx`` (positions)."""
        return self.X.iloc[idx] if hasattr(self.X, "iloc") else self.X[idx]


def _load_bundled(name):
    import sklearn.datasets

    loader, task = BUNDLED_DATASETS[name]
    bunch = getattr(sklearn.datasets, loader)()
    X = np.asarray(bunch.data, dtype=np.float64)
    names = getattr(bunch, "feature_names", None)
    names = [str(n) for n in names] if names is not None else [f"x{i}" for i in range(X.shape[1])]
    return X, np.asarray(bunch.target), names, task


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
        frame = pd.read_csv(path, low_memory=False)  # no DtypeWarning on mixed columns
    except pd.errors.EmptyDataError:
        raise CLIError(f"{str(path)!r} is empty") from None
    except pd.errors.ParserError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CLIError(f"cannot parse {str(path)!r} as CSV: {first}") from None
    except UnicodeDecodeError:
        raise CLIError(f"cannot read {str(path)!r}: it is not UTF-8 text") from None
    except OSError as exc:
        raise CLIError(f"cannot read {str(path)!r}: {exc.strerror or exc}") from None
    if frame.shape[0] == 0:
        raise CLIError(f"{str(path)!r} has a header but no data rows")
    frame.columns = [str(c) for c in frame.columns]
    if len(set(frame.columns)) < len(frame.columns):
        raise CLIError(f"{str(path)!r} has duplicate column names")
    return frame


def _is_numeric_series(series):
    import pandas as pd

    return pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)


def _check_target_column(frame, target, path):
    columns = list(frame.columns)
    if target in columns:
        return
    lower = {c.lower(): c for c in columns}
    close = [lower[target.lower()]] if target.lower() in lower else []
    close = close or difflib.get_close_matches(target, columns, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise CLIError(
        f"target column {target!r} not found in {str(path)!r}; columns are "
        f"{quote_list(columns)}{hint}"
    )


def _handle_missing(frame, target, features, impute, lines, notes):
    """Refuse or drop rows with missing values (row-wise only); return ``(frame, lines)``."""
    missing = frame.isna()
    target_missing = missing[target].to_numpy()
    feature_missing = missing[features].to_numpy().any(axis=1)
    if impute == "none" and (target_missing.any() or feature_missing.any()):
        rows = np.flatnonzero(target_missing | feature_missing)
        cols = [c for c in frame.columns if missing[c].any()]
        raise CLIError(
            f"missing values (NaN/empty) in column(s) {quote_list(cols)} on CSV line(s) "
            f"{name_rows(lines[rows])}; fix the file, or pass --impute drop|mean|median"
        )
    if target_missing.any() and impute != "drop":
        raise CLIError(
            f"the target {target!r} has missing values on CSV line(s) "
            f"{name_rows(lines[np.flatnonzero(target_missing)])}; a target cannot be imputed, "
            "pass --impute drop to drop those rows"
        )
    if impute == "drop":
        keep = ~(target_missing | feature_missing)
        dropped = int((~keep).sum())
        if dropped == frame.shape[0]:
            raise CLIError("every row has a missing value; nothing is left after --impute drop")
        if dropped:
            frame = frame.loc[keep].reset_index(drop=True)
            lines = lines[keep]
            notes.append(f"dropped {dropped} row(s) with missing values (--impute drop)")
    return frame, lines


def _refuse_infinite(values, names, lines, what="column(s)"):
    bad = np.isinf(values)
    if bad.any():
        rows = np.flatnonzero(bad.any(axis=1))
        cols = [names[j] for j in np.flatnonzero(bad.any(axis=0))]
        raise CLIError(
            f"infinite values in {what} {quote_list(cols)} on CSV line(s) {name_rows(lines[rows])}"
        )


def _numeric_target(y_series, target, lines):
    y = y_series.to_numpy(dtype=np.float64)
    _refuse_infinite(y.reshape(-1, 1), [target], lines, what="the target")
    return y


def _load_csv(path, target, *, one_hot, impute):
    """Read ``path``, split off ``target``; return ``(X, y, names, categorical, notes, numeric)``.

    Refuses non-numeric feature columns unless ``one_hot``, missing values unless ``impute`` says
    how to handle them, and infinite values. Rows are only dropped (``--impute drop``): filling
    and encoding happen inside the cross-validated pipeline.
    """
    frame = _read_csv(path)
    _check_target_column(frame, target, path)
    features = [c for c in frame.columns if c != target]
    if not features:
        raise CLIError(f"{str(path)!r} has no feature columns besides the target {target!r}")
    notes = []
    lines = np.arange(frame.shape[0]) + 2  # CSV line numbers (header = line 1)
    frame, lines = _handle_missing(frame, target, features, impute, lines, notes)

    X_frame = frame[features].copy()
    categorical = [c for c in features if not _is_numeric_series(X_frame[c])]
    if categorical and not one_hot:
        raise CLIError(
            f"non-numeric feature column(s) {quote_list(categorical)}; pass --one-hot to "
            "one-hot encode them, or remove them from the file"
        )
    numeric = [c for c in features if c not in categorical]
    for c in numeric:
        X_frame[c] = X_frame[c].astype(np.float64)
        if impute in ("mean", "median") and X_frame[c].isna().all():
            raise CLIError(f"feature column {c!r} has no values at all; cannot --impute {impute}")
    _refuse_infinite(X_frame[numeric].to_numpy(dtype=np.float64), numeric, lines)
    filled = [c for c in numeric if X_frame[c].isna().any()]
    if filled:
        notes.append(
            f"missing values in {quote_list(filled)} filled with the {impute} of each training "
            "fold (inside the cross-validation)"
        )
    for c in categorical:
        col = X_frame[c]
        X_frame[c] = col.astype(str).where(col.notna(), MISSING_CATEGORY).astype(object)
    if categorical:
        notes.append(
            f"one-hot encoded {quote_list(categorical)} (--one-hot), inside the cross-validation; "
            "categories unseen in a training fold are encoded as all zeros"
        )
        X = X_frame
    else:
        X = X_frame.to_numpy(dtype=np.float64)
    y_series = frame[target]
    numeric_target = _is_numeric_series(y_series)
    if numeric_target:
        y = _numeric_target(y_series, target, lines)
    else:
        y = y_series.astype(str).to_numpy()
    cat_idx = [features.index(c) for c in categorical]
    return X, y, list(features), cat_idx, notes, numeric_target


def _infer_task(y, numeric):
    """``regression`` for a numeric target with many distinct values, else ``classification``."""
    if not numeric:
        return "classification", "the target is not numeric"
    values = np.asarray(y, dtype=np.float64)
    uniques = np.unique(values)
    if np.all(values == np.round(values)) and uniques.size <= AUTO_MAX_CLASSES:
        return "classification", f"the target has {uniques.size} distinct integer values"
    return "regression", "the target is numeric"


def _refuse_overflow(dataset, target_name):
    """Refuse columns whose standardisation overflows float64 (values beyond ~1e154)."""
    with np.errstate(over="ignore", invalid="ignore"):
        for j in dataset.numeric:
            col = np.asarray(dataset.X.iloc[:, j] if hasattr(dataset.X, "iloc") else dataset.X[:, j])
            if not np.isfinite(np.nanvar(col.astype(np.float64))):
                raise CLIError(
                    f"feature column {dataset.feature_names[j]!r} has values too large to "
                    f"standardise in float64 (largest |x| = {np.nanmax(np.abs(col)):.3g}); "
                    "rescale it (e.g. take its logarithm)"
                )
        if dataset.task == "regression" and not np.isfinite(np.var(dataset.y)):
            raise CLIError(
                f"the target {target_name!r} has values too large to standardise in float64 "
                f"(largest |y| = {np.max(np.abs(dataset.y)):.3g}); rescale it"
            )


def _check_regression_target(dataset):
    try:
        y = np.asarray(dataset.y, dtype=np.float64)
    except (TypeError, ValueError):
        raise CLIError(
            "--task regression needs a numeric target; this one is not (use --task classification)"
        ) from None
    if np.ptp(y) == 0:
        raise CLIError("the target is constant; there is nothing to predict")
    dataset.y = y


def _check_classification_target(dataset, cv, explicit):
    classes, counts = np.unique(dataset.y, return_counts=True)
    if classes.size < 2:
        raise CLIError("the target has a single class; classification needs at least two")
    if classes.size > AUTO_MAX_LABELS and not explicit:
        raise CLIError(
            f"the target has {classes.size} classes; is it really a classification target? "
            "pass --task classification to go ahead, or --task regression"
        )
    small = classes[counts < cv]
    if small.size:
        raise CLIError(
            f"class(es) {quote_list(small)} have fewer than {cv} members, too few for "
            f"{cv}-fold stratified CV; use a smaller --cv or --task regression"
        )


def _check_target(dataset, cv, explicit=False, target_name="target"):
    if dataset.task == "regression":
        _check_regression_target(dataset)
    else:
        _check_classification_target(dataset, cv, explicit)
    if dataset.n_samples < 2 * cv:
        raise CLIError(
            f"only {dataset.n_samples} rows; {cv}-fold CV needs at least {2 * cv} (use a smaller "
            "--cv)"
        )
    _refuse_overflow(dataset, target_name)


def _subsample(dataset, n, seed):
    if n >= dataset.n_samples:
        return
    from sklearn.model_selection import train_test_split

    stratify = dataset.y if dataset.task == "classification" else None
    index = np.arange(dataset.n_samples)
    try:
        idx, _ = train_test_split(index, train_size=n, random_state=seed, stratify=stratify)
    except ValueError:  # a class too small to stratify: plain random subset
        idx, _ = train_test_split(index, train_size=n, random_state=seed)
    idx = np.sort(idx)
    dataset.notes.append(f"random subsample of {n} of {dataset.n_samples} rows (seed {seed})")
    dataset.X = dataset.rows(idx)
    dataset.y = dataset.y[idx]


def load_dataset(args):
    """Load, validate and (optionally) subsample the data the ``compare`` command runs on."""
    if args.csv is None and args.target is not None:
        raise CLIError("--target only applies with --csv PATH")
    categorical = []
    if args.csv is not None:
        if args.dataset is not None:
            raise CLIError("give either --dataset or --csv, not both")
        if args.target is None:
            raise CLIError("--csv needs --target COLUMN (the column to predict)")
        X, y, names, categorical, notes, numeric = _load_csv(
            args.csv, args.target, one_hot=args.one_hot, impute=args.impute
        )
        name = Path(args.csv).name
        auto_task, reason = _infer_task(y, numeric)
    else:
        name = args.dataset or "diabetes"
        X, y, names, auto_task = _load_bundled(name)
        notes, reason = [], "bundled dataset"
    explicit = args.task != "auto"
    task = args.task if explicit else auto_task
    if not explicit:
        notes.append(f"task: {task} ({reason}; --task overrides)")
    if task == "classification" and y.dtype.kind == "f" and np.all(y == np.round(y)):
        y = y.astype(np.int64)  # integer labels read as floats: print them as 1, not 1.0
    shape = None if args.csv is not None else IMAGE_SHAPES.get(name)
    dataset = Dataset(name, X, y, names, task, categorical, args.impute, notes, shape)

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
    _check_target(dataset, args.cv, explicit, args.target or "target")
    return dataset
