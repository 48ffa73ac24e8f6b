"""Statements the user guide makes that are not checked elsewhere."""

import numpy as np
import pytest

from sklearn_ntk import NTKClassifier, NTKKernel, NTKRegressor


@pytest.mark.parametrize("t", [0.5, 30.0, 2000.0])
def test_k_output_fit_at_t_equals_per_target_fits_at_t_over_k(t):
    """User guide, "Choosing t": the loss averages over n*k entries, so a k-output fit at time
    t is k single-target fits at time t/k."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(25, 3))
    Y = rng.normal(size=(25, 3))
    X_test = rng.normal(size=(7, 3))
    kernel = NTKKernel(depth=2)
    k = Y.shape[1]
    joint = NTKRegressor(kernel=kernel, t=t).fit(X, Y).predict(X_test)
    split = np.column_stack(
        [NTKRegressor(kernel=kernel, t=t / k).fit(X, Y[:, j]).predict(X_test) for j in range(k)]
    )
    np.testing.assert_allclose(joint, split, rtol=1e-9, atol=1e-12)
    # and not at the same t: the convention matters at finite t
    same_t = NTKRegressor(kernel=kernel, t=t).fit(X, Y[:, 0]).predict(X_test)
    assert np.max(np.abs(same_t - joint[:, 0])) > 1e-4


def test_classifier_scores_follow_the_same_convention():
    """NTKClassifier regresses k one-hot columns: its scores at t are per-class fits at t/k."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(30, 2))
    y = rng.integers(0, 3, size=30)
    t, k = 50.0, 3
    clf = NTKClassifier(t=t).fit(X, y)
    scores = clf.decision_function(X[:5])
    onehot = np.eye(k)[y]
    per_class = np.column_stack(
        [NTKRegressor(t=t / k).fit(X, onehot[:, j]).predict(X[:5]) for j in range(k)]
    )
    assert clf.classes_.tolist() == [0, 1, 2]
    np.testing.assert_allclose(scores, per_class, rtol=1e-9, atol=1e-12)
