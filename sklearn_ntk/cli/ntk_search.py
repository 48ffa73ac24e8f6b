"""The CLI's NTK/NNGP grid search: one Gram matrix per kernel setting, searched over t and alpha.

``GridSearchCV`` over a pipeline evaluates the kernel once per candidate and inner fold. Here the
features are preprocessed once per (outer) training fold, the train kernel is computed once per
kernel setting (``kernel__depth``, ``kernel__activation``), and an inner ``GridSearchCV`` over
``t``/``alpha``/... runs on ``kernel="precomputed"`` estimators, which slice rows and columns of
that one matrix (with a :class:`~sklearn_ntk.dynamics.FactorizationCache`: one
eigendecomposition per inner split for every finite ``t`` and ``alpha``). Regression targets
are standardised inside each inner fold, as before; the feature scaling is fitted on the whole
outer training fold (it must precede the kernel).
"""

from __future__ import annotations

from itertools import product

import numpy as np
from sklearn.base import BaseEstimator, clone, is_regressor
from sklearn.compose import TransformedTargetRegressor
from sklearn.utils.metaestimators import available_if

__all__ = ["NTKGridSearch", "PairwiseTransformedTarget"]


class PairwiseTransformedTarget(TransformedTargetRegressor):
    """``TransformedTargetRegressor`` that is pairwise when its regressor is (scikit-learn's is
    not), so that model selection slices a precomputed kernel's rows and columns."""

    def __sklearn_tags__(self):
        from sklearn.utils import get_tags

        tags = super().__sklearn_tags__()
        tags.input_tags.pairwise = get_tags(self.regressor).input_tags.pairwise
        return tags


def _split_grid(param_grid):
    """``[(kernel settings, [sub-grids of the other parameters])]``, settings in first-seen order."""
    groups = {}
    for part in [param_grid] if isinstance(param_grid, dict) else param_grid:
        kernel_keys = sorted(k for k in part if k.startswith("kernel__"))
        rest = {k: v for k, v in part.items() if not k.startswith("kernel__")}
        for values in product(*(part[k] for k in kernel_keys)):
            key = tuple(zip(kernel_keys, values, strict=True))
            groups.setdefault(key, []).append(rest)
    return list(groups.items())


def _has_proba(search):
    return not is_regressor(search.estimator)


class NTKGridSearch(BaseEstimator):
    """Grid search of an NTK estimator with one train kernel per kernel setting.

    Parameters
    ----------
    estimator : NTKRegressor or NTKClassifier
        Template with a kernel object (``kernel__<name>`` in the grid are its parameters).
    param_grid : dict or list of dict
        As for ``GridSearchCV``.
    cv : int or cross-validation generator
        Inner folds.
    preprocessor : transformer or None
        Imputation / one-hot encoding, fitted on the training data before the scaling.
    n_jobs : int
        Of the inner searches.
    """

    def __init__(self, estimator, param_grid, cv=3, preprocessor=None, n_jobs=1):
        self.estimator = estimator
        self.param_grid = param_grid
        self.cv = cv
        self.preprocessor = preprocessor
        self.n_jobs = n_jobs

    def _features(self):
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import StandardScaler

        steps = [] if self.preprocessor is None else [("prep", clone(self.preprocessor))]
        return Pipeline(steps + [("scale", StandardScaler())])

    def _inner(self):
        from sklearn.preprocessing import StandardScaler

        from sklearn_ntk import FactorizationCache

        est = clone(self.estimator).set_params(kernel="precomputed", cache=FactorizationCache())
        if is_regressor(est):
            return PairwiseTransformedTarget(regressor=est, transformer=StandardScaler())
        return est

    def _search(self, gram, y, grid):
        from sklearn.model_selection import GridSearchCV

        inner = self._inner()
        if is_regressor(inner):
            grid = [{f"regressor__{k}": v for k, v in part.items()} for part in grid]
        search = GridSearchCV(inner, grid, cv=self.cv, n_jobs=self.n_jobs, error_score="raise",
                              refit=is_regressor(inner))
        return search.fit(gram, y)

    def fit(self, X, y):
        """Preprocess, then per kernel setting: one Gram matrix and a search over the rest."""
        self.features_ = self._features()
        Z = self.features_.fit_transform(X)
        best = None
        for setting, grid in _split_grid(self.param_grid):
            kernel = clone(self.estimator.kernel).set_params(**{
                k.removeprefix("kernel__"): v for k, v in setting})
            gram = kernel(Z)
            search = self._search(gram, y, grid)
            if best is None or search.best_score_ > best[0].best_score_:
                best = (search, kernel, setting, gram)
        search, self.kernel_, setting, gram = best
        params = {k.removeprefix("regressor__"): v for k, v in search.best_params_.items()}
        self.best_params_ = {**dict(setting), **params}
        self.best_score_ = search.best_score_
        if is_regressor(self.estimator):  # refit on the Gram already computed
            self.best_estimator_, self._train = search.best_estimator_, (Z, gram)
        else:  # predict_proba needs the ensemble variance: a kernel object
            self.best_estimator_ = clone(self.estimator).set_params(
                kernel=self.kernel_, **params).fit(Z, y)
            self.classes_ = self.best_estimator_.classes_
        return self

    def _inputs(self, X):
        """What the final estimator takes: the test x train kernel (regression) or features."""
        Z = self.features_.transform(X)
        if is_regressor(self.estimator):
            Z_train, gram = self._train
            same = Z.shape == Z_train.shape and np.array_equal(Z, Z_train)
            return gram if same else self.kernel_(Z, Z_train)  # the train curve reuses the Gram
        return Z

    def predict(self, X):
        return self.best_estimator_.predict(self._inputs(X))

    @available_if(_has_proba)
    def predict_proba(self, X):
        return self.best_estimator_.predict_proba(self._inputs(X))

    def t_curve(self, data, times, score):
        """``{label: [score at each t]}`` of the tuned model on ``data = {label: (X, y)}``.

        Regression scores are in standardised target units (R^2 is invariant under the common
        affine map back).
        """
        out = {}
        for label, (X, y) in data.items():
            inputs = self._inputs(X)
            if is_regressor(self.estimator):
                ttr = self.best_estimator_
                ys = ttr.transformer_.transform(np.asarray(y, dtype=float).reshape(-1, 1)).ravel()
                preds = ttr.regressor_.staged_predict(inputs, times)
                out[label] = [float(score(ys, np.ravel(p))) for p in preds]
            else:
                est = self.best_estimator_
                curve = []
                for s in est.staged_decision_function(inputs, times):
                    s = np.asarray(s)
                    idx = (s > 0).astype(int) if s.ndim == 1 else np.argmax(s, axis=1)
                    curve.append(float(score(y, est.classes_[idx])))
                out[label] = curve
        return out
