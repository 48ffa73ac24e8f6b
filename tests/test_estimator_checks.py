"""scikit-learn's estimator checks for the three NTK estimators.

The only place that lists known failures: ``EXPECTED_FAILED_CHECKS``, with the reason.
"""

import numpy as np
from sklearn.utils.estimator_checks import parametrize_with_checks

from sklearn_ntk.estimators import NTKClassifier, NTKGaussianProcess, NTKRegressor

ESTIMATORS = [
    NTKRegressor(),
    NTKGaussianProcess(),
    NTKClassifier(),
    # non-default dynamics: finite time, discrete steps, readout-only ensemble
    NTKRegressor(t=500.0, learning_rate=0.2, alpha=1e-3, dynamics="gd"),
    NTKGaussianProcess(t=1000.0, kind="nngp"),
    # the Nystroem path (rank-30 kernel, streamed in blocks of 16 rows)
    NTKRegressor(t=200.0, alpha=1e-3, n_components=30, random_state=0, batch_size=16),
    NTKClassifier(t=100.0, learning_rate=2.0, n_components=30, random_state=0),
    # kernel="precomputed": X is the kernel matrix (pairwise; the checks pass linear kernels)
    NTKRegressor("precomputed", t=200.0, alpha=1e-3),
    NTKGaussianProcess("precomputed"),
    NTKClassifier("precomputed", t=100.0, learning_rate=2.0),
    # deliberately undertrained: see EXPECTED_FAILED_CHECKS
    NTKRegressor(t=10.0),
    NTKClassifier(t=100.0, learning_rate=2.0),
]

# The one table of known failures: estimator repr -> {check name: reason}.
_UNDERTRAINED = (
    "after t=10 steps at learning_rate=1 the network is undertrained by design, so the check's "
    "R^2 > 0.5 threshold on its training data is not reached (t=30, t=100 and t=inf pass)"
)
_LOG_PROBA = (
    "predict_log_proba stays finite and accurate where predict_proba underflows to 0 (the "
    "ensemble is extremely confident on the check's training points), while the check wants "
    "log(predict_proba) = -inf there; every other part of this check is run by "
    "tests/test_predict_proba.py::test_sklearn_classifiers_train_without_log_proba"
)
_PROBA_NOT_MONOTONE = (
    "predict_proba accounts for the spread of the outputs over initialisations, which varies "
    "from point to point, so it is not a monotone function of the mean score "
    "(decision_function); see the user guide"
)
_CLASSIFIERS_TRAIN = {
    "check_classifiers_train": _LOG_PROBA,
    "check_classifiers_train(readonly_memmap=True)": _LOG_PROBA,
    "check_classifiers_train(readonly_memmap=True,X_dtype=float32)": _LOG_PROBA,
}
_INTERPOLATES = (
    "at t=inf with alpha=0 the fit interpolates the training labels, and no weighting changes "
    "an interpolant; class_weight acts at finite t or alpha > 0 (NTKClassifier(t=100.0, "
    "learning_rate=2.0) passes)"
)
_SETS_N_COMPONENTS = (
    "the check sets n_components=1 (it takes n_components for a dimension-reduction "
    "parameter), which kernel='precomputed' refuses with a ValueError: the Nystroem path needs "
    "a kernel object; tests/test_precomputed.py covers what the check would (sample order and "
    "subset invariance, one-sample and one-column fits, parameters untouched by fit)"
)
_N_COMPONENTS_CHECKS = ("check_dont_overwrite_parameters", "check_methods_sample_order_invariance",
                        "check_methods_subset_invariance", "check_fit2d_1sample",
                        "check_fit2d_1feature", "check_fit2d_predict1d")
_PRECOMPUTED = {name: _SETS_N_COMPONENTS for name in _N_COMPONENTS_CHECKS}
_NOT_SYMMETRIC = (
    "the check fits on a random, non-symmetric square matrix; kernel='precomputed' refuses a "
    "train kernel that is not symmetric (no kernel matrix is), naming the asymmetry"
)
_IDENTITY_GRAM = (
    "the check's RBF Gram matrix (gamma=1/2 on blobs of standard deviation 20) is the identity "
    "to round-off, so every test row of the kernel is ~0 and so is every class score: without "
    "an intercept (SVC has one) no class weight can act on the test points"
)
EXPECTED_FAILED_CHECKS = {
    "NTKRegressor(alpha=0.001, kernel='precomputed', t=200.0)": _PRECOMPUTED,
    "NTKGaussianProcess(kernel='precomputed')": _PRECOMPUTED,
    "NTKClassifier(kernel='precomputed', learning_rate=2.0, t=100.0)": {
        **{k: v for k, v in _PRECOMPUTED.items() if k != "check_fit2d_1sample"},
        "check_classifiers_one_label_sample_weights": _NOT_SYMMETRIC,
        "check_class_weight_classifiers": _IDENTITY_GRAM,
    },
    "NTKRegressor(t=10.0)": {
        "check_regressors_train": _UNDERTRAINED,
        "check_regressors_train(readonly_memmap=True)": _UNDERTRAINED,
        "check_regressors_train(readonly_memmap=True,X_dtype=float32)": _UNDERTRAINED,
    },
    repr(NTKClassifier()): {
        **_CLASSIFIERS_TRAIN,
        "check_class_weight_classifiers": _INTERPOLATES,
    },
    repr(NTKClassifier(t=100.0, learning_rate=2.0)): {
        **_CLASSIFIERS_TRAIN,
        "check_decision_proba_consistency": _PROBA_NOT_MONOTONE,
    },
    repr(NTKClassifier(t=100.0, learning_rate=2.0, n_components=30, random_state=0)): {
        **_CLASSIFIERS_TRAIN,
        "check_decision_proba_consistency": _PROBA_NOT_MONOTONE,
    },
}


def _expected_failed_checks(estimator):
    return EXPECTED_FAILED_CHECKS.get(repr(estimator), {})


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=_expected_failed_checks)
def test_sklearn_compatible_estimator(estimator, check):
    # underflow is ignored for kernel="precomputed" only: there the checks compute their own
    # RBF Gram matrices, whose exp() underflows to 0 (harmlessly) outside our code
    pairwise = estimator.__sklearn_tags__().input_tags.pairwise
    with np.errstate(all="raise", under="ignore" if pairwise else "raise"):
        check(estimator)
