"""The model table of ``sklearn-ntk compare``: one row per model, written once for both tasks.

Every model is wrapped in the same cross-validated :class:`~sklearn.pipeline.Pipeline`: imputation
and one-hot encoding (when the data need them), :class:`~sklearn.preprocessing.StandardScaler`
(for the convolutional NTK of image data, :class:`ImageScaler`), the model; regression targets
are standardised too. Everything that is fitted on data (imputation statistics, categories,
scaling) is therefore fitted on the training fold only. The NTK and NNGP rows do the same steps
in :class:`~sklearn_ntk.cli.ntk_search.NTKGridSearch`, which computes the kernel once per
architecture and outer fold (the feature scaling of its inner folds is therefore that of the
outer training fold).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from ._common import INF

__all__ = [
    "ModelSpec", "MODEL_TABLE", "Sizing", "ImageScaler", "build_models", "grids", "ntk_grid",
    "curve_times", "cntk_kernel",
]

#: Inner cross-validation folds of the grid searches (fewer when the data are too small).
INNER_CV = 3
#: Fewest training rows (per class, for classification) for the MLP's early-stopping split.
MLP_EARLY_STOPPING_MIN_ROWS = 100


@dataclass
class ModelSpec:
    """One row of the comparison, ready to cross-validate."""

    name: str
    estimator: object
    family: str  # "ntk" or "baseline"
    trace_t: bool = False  # trace the score against the training time t (NTK estimators)


@dataclass(frozen=True)
class Sizing:
    """What the model table needs to know about the task and the data."""

    task: str
    quick: bool
    seed: int
    n_features: int  # after one-hot encoding
    n_train: int  # fewest rows in an outer training fold
    min_class_train: int  # fewest members of a class in an outer training fold (regression: n_train)
    n_jobs: int = 1
    image_shape: tuple | None = None  # (H, W, C) when every row is an image

    @property
    def regression(self):
        return self.task == "regression"

    @property
    def inner_cv(self):
        """Folds of the inner grid search: 3, or fewer on tiny data (0: cannot search)."""
        folds = min(INNER_CV, self.min_class_train if not self.regression else self.n_train // 2)
        return folds if folds >= 2 else 0


def grids(quick):
    """The NTK/NNGP grid: depth, activation, and two ways to regularise.

    Finite training times ``t`` (early stopping) with the smallest ``alpha``, and ``t = inf``
    (kernel ridge with the NTK) over an ``alpha`` grid like kernel ridge's own. ``alpha`` starts
    above zero so that ``t = inf`` never meets a numerically singular kernel (duplicate rows).
    """
    if quick:
        return {
            "depth": [1, 2],
            "activation": ["relu"],
            "t": [10.0, 1000.0],
            "alpha": [1e-4, 1e-2, 1.0],
        }
    return {
        "depth": [1, 2, 3],
        "activation": ["relu", "erf"],
        "t": [1.0, 10.0, 100.0, 1000.0, 10000.0],
        "alpha": [1e-4, 1e-3, 1e-2, 1e-1, 1.0],
    }


def curve_times(quick):
    """Training times at which the NTK test score is traced for the figure."""
    import numpy as np

    finite = np.logspace(-1, 5, 13 if quick else 25)
    return [float(v) for v in finite] + [INF]


# ---------------------------------------------------------------------------------------------
# the table: each row makes its estimator (or None: not for this task) and its grid
# ---------------------------------------------------------------------------------------------


def _ntk(kind):
    def make(s):
        from sklearn_ntk import NTKClassifier, NTKKernel, NTKRegressor

        # the template of an NTKGridSearch: one train kernel per (architecture, outer fold),
        # searched over t and alpha as kernel="precomputed" with one eigendecomposition per
        # inner split (see sklearn_ntk.cli.ntk_search)
        estimator = NTKRegressor if s.regression else NTKClassifier
        return estimator(kernel=NTKKernel(kind=kind))

    return make


def ntk_grid(s):
    """The NTK/NNGP grid search's parameter grid (a list of two grids, see :func:`grids`)."""
    g = grids(s.quick)
    shared = {"kernel__depth": g["depth"], "kernel__activation": g["activation"]}
    return [
        {**shared, "t": g["t"], "alpha": g["alpha"][:1]},
        {**shared, "t": [INF], "alpha": g["alpha"]},
    ]


#: The convolutional NTK's settings, those of the few-shot digits study in the gallery (the CNTK
#: there beats the FC NTK and an RBF SVM at every training-set size).
CNTK_WEIGHT_STD, CNTK_BIAS_STD, CNTK_ALPHA = 1.4, 0.1, 1e-4


def cntk_kernel(image_shape):
    """The CNTK of ``compare``: Conv 3x3 (SAME), ReLU, Conv 3x3, ReLU, GlobalAvgPool, Dense."""
    from sklearn_ntk import NetworkKernel
    from sklearn_ntk import layers as nl

    return NetworkKernel(
        [nl.Conv((3, 3)), "relu", nl.Conv((3, 3)), "relu", nl.GlobalAvgPool(), nl.Dense()],
        input_shape=tuple(image_shape), weight_std=CNTK_WEIGHT_STD, bias_std=CNTK_BIAS_STD,
    )


def _cntk(s):
    """The CNTK estimator at ``t = inf``, only for image data.

    Not grid-searched: every candidate of a search evaluates the Gram matrix again, and the
    CNTK's costs O(n^2 P^2) for P pixels; the settings are the few-shot study's.
    """
    if s.image_shape is None:
        return None
    from sklearn_ntk import NTKClassifier, NTKRegressor

    estimator = NTKRegressor if s.regression else NTKClassifier
    return estimator(kernel=cntk_kernel(s.image_shape), alpha=CNTK_ALPHA)


def _gp(s):
    from sklearn.gaussian_process import GaussianProcessClassifier, GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import RBF, WhiteKernel
    from sklearn.gaussian_process.kernels import ConstantKernel as C

    if s.regression:
        kernel = C(1.0) * RBF(length_scale=1.0) + WhiteKernel(noise_level=0.1)
        return GaussianProcessRegressor(kernel=kernel, random_state=s.seed)
    return GaussianProcessClassifier(kernel=C(1.0) * RBF(1.0), random_state=s.seed)


def _gammas(s):
    return [g / s.n_features for g in ([0.3, 3.0] if s.quick else [0.1, 0.3, 1.0, 3.0])]


def _kernel_ridge(s):
    from sklearn.kernel_ridge import KernelRidge

    return KernelRidge(kernel="rbf") if s.regression else None


def _kernel_ridge_grid(s):
    return {"alpha": [1e-2, 1.0] if s.quick else [1e-3, 1e-2, 1e-1, 1.0], "gamma": _gammas(s)}


def _svm(s):
    from sklearn.svm import SVC, SVR

    return SVR(kernel="rbf") if s.regression else SVC(kernel="rbf")


def _svm_grid(s):
    return {"C": [1.0, 10.0] if s.quick else [0.1, 1.0, 10.0, 100.0], "gamma": _gammas(s)}


def _forest(s):
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

    forest = RandomForestRegressor if s.regression else RandomForestClassifier
    return forest(n_estimators=50 if s.quick else 200, random_state=s.seed, n_jobs=1)


def _mlp(s):
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    mlp = MLPRegressor if s.regression else MLPClassifier
    # early stopping holds out 10% of the training fold (stratified for classification): only
    # when that split has enough rows, of every class, to mean something
    early = s.n_train >= MLP_EARLY_STOPPING_MIN_ROWS and (s.regression or s.min_class_train >= 10)
    return mlp(
        hidden_layer_sizes=(128, 128),
        alpha=1e-3,
        early_stopping=early,
        max_iter=500 if s.quick else 2000,
        random_state=s.seed,
    )


@dataclass(frozen=True)
class _Row:
    name: str
    family: str
    make: Callable
    grid: Callable | None = None
    trace_t: bool = False
    image: bool = False  # scaled by ImageScaler (one factor) instead of StandardScaler
    gram_search: bool = False  # searched by NTKGridSearch (one Gram per kernel setting)


#: The comparison, in display order.
MODEL_TABLE = (
    _Row("NTK", "ntk", _ntk("ntk"), ntk_grid, trace_t=True, gram_search=True),
    _Row("NNGP", "ntk", _ntk("nngp"), ntk_grid, trace_t=True, gram_search=True),
    _Row("CNTK", "ntk", _cntk, image=True),
    _Row("GP (RBF)", "baseline", _gp),
    _Row("Kernel ridge (RBF)", "baseline", _kernel_ridge, _kernel_ridge_grid),
    _Row("SVM (RBF)", "baseline", _svm, _svm_grid),
    _Row("Random forest", "baseline", _forest),
    _Row("MLP", "baseline", _mlp),
)


# ---------------------------------------------------------------------------------------------
# wrapping: preprocessing, scaling, target scaling, grid search
# ---------------------------------------------------------------------------------------------


def preprocessor(dataset):
    """Imputation / one-hot encoding fitted inside each fold, or ``None`` when not needed."""
    if not dataset.categorical and dataset.impute not in ("mean", "median"):
        return None
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import OneHotEncoder

    numeric = SimpleImputer(strategy=dataset.impute) if dataset.impute in ("mean", "median") else (
        "passthrough"
    )
    parts = [("numeric", numeric, dataset.numeric)]
    if dataset.categorical:
        encoder = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
        parts.append(("categorical", encoder, dataset.categorical))
    return ColumnTransformer(parts, sparse_threshold=0.0)


class ImageScaler(TransformerMixin, BaseEstimator):
    """Divide every pixel by one number, the largest ``|x|`` of the training fold.

    Standardising each pixel on its own (``StandardScaler``) blows up the rarely inked border
    pixels of digit images and costs the CNTK its edge over pixel-blind models (measured: 98.0%
    against 95.7% test accuracy on 300 digits); one factor for the whole image keeps the
    relative intensities that the convolutions see.
    """

    def fit(self, X, y=None):
        """Learn the factor from the training rows ``X``."""
        import numpy as np

        largest = float(np.max(np.abs(np.asarray(X, dtype=np.float64)), initial=0.0))
        self.scale_ = largest if largest > 0 else 1.0
        return self

    def transform(self, X):
        """``X`` divided by the fitted factor (a new array)."""
        import numpy as np

        check_is_fitted(self, "scale_")
        return np.asarray(X, dtype=np.float64) / self.scale_


def _wrap(model, dataset, regression, image=False):
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    prep = preprocessor(dataset)
    steps = ([("prep", prep)] if prep is not None else []) + [
        ("scale", ImageScaler() if image else StandardScaler()),
        ("model", model),
    ]
    pipe = Pipeline(steps)
    if regression:
        return TransformedTargetRegressor(regressor=pipe, transformer=StandardScaler())
    return pipe


def _search(wrapped, grid, sizing):
    from sklearn.model_selection import GridSearchCV

    prefix = "regressor__model__" if sizing.regression else "model__"
    grid = [grid] if isinstance(grid, dict) else grid
    return GridSearchCV(
        wrapped,
        [{prefix + k: v for k, v in part.items()} for part in grid],
        cv=sizing.inner_cv,
        n_jobs=sizing.n_jobs,
        error_score="raise",
    )


def sizing_for(dataset, cv, quick, seed, n_jobs=1):
    """The :class:`Sizing` of ``dataset`` under ``cv``-fold cross-validation."""
    import numpy as np

    n_train = dataset.n_samples - math.ceil(dataset.n_samples / cv)
    if dataset.task == "classification":
        smallest = int(np.unique(dataset.y, return_counts=True)[1].min())
        min_class_train = smallest - math.ceil(smallest / cv)
    else:
        min_class_train = n_train
    return Sizing(
        dataset.task, bool(quick), seed, dataset.n_encoded_features, n_train, min_class_train,
        n_jobs, getattr(dataset, "input_shape", None),
    )


def build_models(dataset, sizing):
    """``(models, notes)``: the table's rows for this task as :class:`ModelSpec`, and why any
    row was left out."""
    models, notes = [], []
    for row in MODEL_TABLE:
        model = row.make(sizing)
        if model is None:
            continue
        if row.grid is not None and not sizing.inner_cv:
            notes.append(
                f"{row.name} skipped: a training fold has too few rows (per class) for its "
                "inner grid search"
            )
            continue
        if row.gram_search:
            from .ntk_search import NTKGridSearch

            wrapped = NTKGridSearch(model, row.grid(sizing), cv=sizing.inner_cv,
                                    preprocessor=preprocessor(dataset), n_jobs=sizing.n_jobs)
        else:
            wrapped = _wrap(model, dataset, sizing.regression, row.image)
            if row.grid is not None:
                wrapped = _search(wrapped, row.grid(sizing), sizing)
        models.append(ModelSpec(row.name, wrapped, row.family, row.trace_t))
    return models, notes
