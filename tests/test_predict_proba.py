"""NTKClassifier.predict_proba: the probability that a network of the trained ensemble wins."""

import warnings

import numpy as np
import pytest
from scipy.special import log_ndtr
from sklearn.datasets import make_blobs, make_moons
from sklearn.ensemble import VotingClassifier
from sklearn.gaussian_process.kernels import RBF
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_predict, cross_val_score
from sklearn.semi_supervised import SelfTrainingClassifier
from sklearn.utils.estimator_checks import check_classifiers_train

from sklearn_ntk import FactorizationCache, NTKClassifier, NTKGaussianProcess, NTKKernel


def _three_blobs(n=45, seed=0):
    X, y = make_blobs(n_samples=n, centers=3, cluster_std=2.0, random_state=seed)
    return (X - X.mean(0)) / X.std(0), y


def _one_hot(y):
    classes, idx = np.unique(y, return_inverse=True)
    Y = np.zeros((len(y), len(classes)))
    Y[np.arange(len(y)), idx] = 1.0
    return Y


KERNELS = [
    pytest.param(None, id="default-ntk"),
    pytest.param(NTKKernel(depth=1, kind="nngp"), id="nngp"),
    pytest.param(RBF(1.0), id="rbf"),
]


@pytest.mark.parametrize("kernel", KERNELS)
def test_against_monte_carlo_of_the_gaussian_ensemble(kernel):
    """Frequencies of argmax over NTKGaussianProcess.sample_y draws, within six standard errors."""
    X, y = _three_blobs()
    X_test = np.random.default_rng(3).normal(size=(6, 2))
    params = dict(kernel=kernel, t=20.0, learning_rate=1.0, alpha=1e-3)
    proba = NTKClassifier(**params).fit(X, y).predict_proba(X_test)
    gp = NTKGaussianProcess(**params).fit(X, _one_hot(y))
    n = 40_000
    draws = gp.sample_y(X_test, n_samples=n, random_state=0)  # (m, k, n)
    winners = draws.argmax(axis=1)
    freq = np.stack([(winners == c).mean(axis=1) for c in range(3)], axis=1)
    assert 0.02 < proba.min() and proba.max() < 0.98  # the test points are not trivial
    bound = 6 * np.sqrt(proba * (1 - proba) / n)
    assert np.all(np.abs(freq - proba) <= bound)


@pytest.mark.parametrize("kernel", KERNELS)
def test_moments_are_those_of_the_gaussian_process(kernel):
    X, y = _three_blobs()
    X_test = np.random.default_rng(3).normal(size=(5, 2))
    params = dict(kernel=kernel, t=50.0, alpha=1e-3)
    clf = NTKClassifier(**params).fit(X, y)
    mean, std = clf._ensemble(X_test)
    gp_mean, gp_std = NTKGaussianProcess(**params).fit(X, _one_hot(y)).predict(
        X_test, return_std=True)
    np.testing.assert_allclose(mean, gp_mean, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(std, gp_std[:, 0], rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(mean, clf.decision_function(X_test), rtol=1e-12)


def test_binary_closed_form_and_decision_function():
    X, y = make_moons(60, noise=0.3, random_state=0)
    clf = NTKClassifier(t=30.0).fit(X, y)
    X_test = np.random.default_rng(0).normal(size=(8, 2))
    _, std = clf._ensemble(X_test)
    d = clf.decision_function(X_test)
    logp = clf.predict_log_proba(X_test)
    np.testing.assert_allclose(logp[:, 1], log_ndtr(d / (np.sqrt(2) * std)), rtol=1e-12)
    np.testing.assert_allclose(np.exp(logp), clf.predict_proba(X_test), rtol=1e-12)


def test_limits_uniform_at_t0_and_one_hot_where_certain():
    X, y = _three_blobs()
    X_test = np.random.default_rng(1).normal(size=(7, 2))
    np.testing.assert_allclose(NTKClassifier(t=0.0).fit(X, y).predict_proba(X_test), 1 / 3,
                               rtol=1e-14)
    # t = inf, alpha = 0: every network interpolates, so on the training points the ensemble
    # has no spread and predicts the label
    clf = NTKClassifier().fit(X, y)
    np.testing.assert_allclose(clf.predict_proba(X), _one_hot(y), atol=1e-12)
    # more training: more confident on unseen points, on average
    conf = [NTKClassifier(t=t, alpha=1e-3).fit(X, y).predict_proba(X_test).max(axis=1).mean()
            for t in (1.0, 10.0, 100.0)]
    assert conf[0] < conf[1] < conf[2]


def test_classes_order_sum_and_argmax_with_string_labels():
    X, y = _three_blobs()
    labels = np.array(["zeta", "alpha", "mu"])[y]
    clf = NTKClassifier(t=20.0).fit(X, labels)
    assert list(clf.classes_) == ["alpha", "mu", "zeta"]
    X_test = np.random.default_rng(2).normal(size=(20, 2))
    p = clf.predict_proba(X_test)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-14)
    np.testing.assert_array_equal(clf.classes_[p.argmax(axis=1)], clf.predict(X_test))
    # the same fit on integer labels, columns permuted by the sort order of the labels
    p_int = NTKClassifier(t=20.0).fit(X, y).predict_proba(X_test)
    np.testing.assert_allclose(p, p_int[:, [1, 2, 0]], rtol=1e-12)


def test_log_proba_finite_where_proba_underflows():
    X, y = _three_blobs()
    clf = NTKClassifier(t=1e4).fit(X, y)
    X_test = X[:10] + 1e-3
    p, logp = clf.predict_proba(X_test), clf.predict_log_proba(X_test)
    assert (p == 0).any() and np.isfinite(logp).all()
    normal = p > 1e-300
    np.testing.assert_allclose(logp[normal], np.log(p[normal]), rtol=1e-12, atol=1e-14)
    assert (logp[~normal] < np.log(1e-300)).all()


def test_predict_proba_does_not_keep_state_or_modify_input():
    X, y = _three_blobs()
    clf = NTKClassifier(t=20.0).fit(X, y)
    X_test = np.random.default_rng(2).normal(size=(5, 2))
    before, state = X_test.copy(), dict(vars(clf))
    first = clf.predict_proba(X_test)
    np.testing.assert_array_equal(X_test, before)
    assert dict(vars(clf)).keys() == state.keys()
    np.testing.assert_array_equal(clf.predict_proba(X_test), first)
    np.testing.assert_array_equal(NTKClassifier(t=20.0, cache=FactorizationCache()).fit(X, y)
                                  .predict_proba(X_test), first)


@pytest.mark.parametrize("scoring", ["neg_log_loss", "neg_brier_score", "roc_auc_ovr"])
def test_probability_scorers(scoring):
    X, y = _three_blobs(60)
    scores = cross_val_score(NTKClassifier(t=20.0, alpha=1e-2), X, y, cv=3, scoring=scoring)
    assert np.isfinite(scores).all()
    if scoring == "roc_auc_ovr":
        assert scores.mean() > 0.8


def test_cross_val_predict_voting_and_self_training():
    X, y = _three_blobs(60)
    clf = NTKClassifier(t=20.0, alpha=1e-2)
    proba = cross_val_predict(clf, X, y, cv=3, method="predict_proba")
    assert proba.shape == (60, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-13)
    vote = VotingClassifier([("ntk", clf), ("lr", LogisticRegression())], voting="soft")
    p_vote = vote.fit(X, y).predict_proba(X)
    p_ntk = clf.fit(X, y).predict_proba(X)
    p_lr = LogisticRegression().fit(X, y).predict_proba(X)
    np.testing.assert_allclose(p_vote, (p_ntk + p_lr) / 2, rtol=1e-12)
    y_partial = y.copy()
    y_partial[::3] = -1
    self_training = SelfTrainingClassifier(clf, threshold=0.9).fit(X, y_partial)
    assert (self_training.transduction_ != -1).sum() > (y_partial != -1).sum()
    assert self_training.predict_proba(X).shape == (60, 3)


def test_single_class_raises_the_usual_error():
    X = np.random.default_rng(0).normal(size=(5, 2))
    with pytest.raises(ValueError, match="at least 2 classes.*only one class: 'a'"):
        NTKClassifier().fit(X, ["a"] * 5)


class _WithoutLogProba(NTKClassifier):
    """predict_log_proba hidden, so that sklearn's check runs everything else."""

    @property
    def predict_log_proba(self):
        raise AttributeError("hidden")


def test_sklearn_classifiers_train_without_log_proba():
    for params in ({}, {"t": 100.0, "learning_rate": 2.0}):
        with np.errstate(all="raise"), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # SingularKernelWarning on the check's data
            check_classifiers_train("NTKClassifier", _WithoutLogProba(**params))


@pytest.mark.parametrize("kernel", [None, RBF(1.0)], ids=["default-ntk", "rbf"])
def test_nystrom_moments_are_those_of_the_nystrom_gaussian_process(kernel):
    """With ``n_components`` the ensemble is that of the Nystroem kernel, as in the GP."""
    X, y = _three_blobs()
    X_test = np.random.default_rng(3).normal(size=(5, 2))
    params = dict(kernel=kernel, t=50.0, alpha=1e-3, n_components=12, random_state=0)
    clf = NTKClassifier(**params).fit(X, y)
    mean, std = clf._ensemble(X_test)
    gp_mean, gp_std = NTKGaussianProcess(**params).fit(X, _one_hot(y)).predict(
        X_test, return_std=True)
    np.testing.assert_allclose(mean, gp_mean, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(std, gp_std[:, 0], rtol=1e-8, atol=1e-12)
    # a rank-12 kernel is not the exact one: the spread differs from the exact ensemble's
    exact_std = NTKClassifier(**{**params, "n_components": None}).fit(X, y)._ensemble(X_test)[1]
    assert np.abs(std - exact_std).max() > 1e-3
    # all centres: the Nystroem kernel is the exact kernel
    full = NTKClassifier(**{**params, "n_components": len(X)}).fit(X, y)
    np.testing.assert_allclose(full.predict_proba(X_test),
                               NTKClassifier(**{**params, "n_components": None}).fit(X, y)
                               .predict_proba(X_test), rtol=1e-6, atol=1e-9)


def test_lanczos_solver_and_pickle_give_the_same_probabilities():
    import pickle

    X, y = _three_blobs()
    X_test = np.random.default_rng(4).normal(size=(6, 2))
    ref = NTKClassifier(t=20.0, alpha=1e-3).fit(X, y)
    p = ref.predict_proba(X_test)
    lanczos = NTKClassifier(t=20.0, alpha=1e-3, solver="lanczos").fit(X, y)
    np.testing.assert_allclose(lanczos.predict_proba(X_test), p, rtol=1e-7, atol=1e-10)
    fresh = pickle.loads(pickle.dumps(NTKClassifier(t=20.0, alpha=1e-3).fit(X, y)))
    np.testing.assert_allclose(fresh.predict_proba(X_test), p, rtol=1e-12, atol=1e-14)
