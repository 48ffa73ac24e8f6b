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
EXPECTED_FAILED_CHECKS = {
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
    with np.errstate(all="raise"):
        check(estimator)
