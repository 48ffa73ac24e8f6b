"""Graph networks through scikit-learn: estimators, CV, grid searches, GP, SVC, networkx, sparse."""

import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.svm import SVC

from sklearn_ntk import NetworkKernel, NTKClassifier, NTKGaussianProcess, NTKRegressor
from sklearn_ntk import layers as nl
from sklearn_ntk.graphs import check_graphs, graph_array

SQ2 = float(np.sqrt(2.0))


def gntk(blocks=1, readout=nl.GlobalSumPool):
    block = [nl.Aggregate(), nl.Dense(), "relu"]
    return NetworkKernel(block * blocks + [readout(), nl.Dense()], weight_std=SQ2, bias_std=0.1)


def cycles_and_paths():
    """Cycles (label 1) and paths (label 0) of 4..9 nodes, self-loops, features (1, degree)."""
    X, y = [], []
    for n in range(4, 10):
        for label, G in ((1, nx.cycle_graph(n)), (0, nx.path_graph(n))):
            for extra in (0, 1):
                A = nx.to_numpy_array(G) + np.eye(n)
                if extra:  # a pendant node keeps the classes from being separable by size
                    A = np.pad(A, ((0, 1), (0, 1)))
                    A[0, -1] = A[-1, 0] = A[-1, -1] = 1.0
                deg = A.sum(1, keepdims=True)
                X.append((A, np.hstack([np.ones_like(deg), deg / 3.0])))
                y.append(label)
    return X, np.array(y)


X, Y = cycles_and_paths()
YREG = np.array([H[:, 1].sum() for _, H in X]) / 10.0


def test_regressor_matches_the_closed_form():
    k = gntk()
    est = NTKRegressor(kernel=k, alpha=1e-2).fit(X[::2], YREG[::2])
    K = k(X[::2])
    expected = k(X[1::2], X[::2]) @ np.linalg.solve(K + 1e-2 * np.eye(K.shape[0]), YREG[::2])
    np.testing.assert_allclose(est.predict(X[1::2]), expected, rtol=1e-8, atol=1e-10)


def test_classifier_gp_and_cross_validation():
    clf = NTKClassifier(kernel=gntk(2), alpha=1e-3)
    scores = cross_val_score(clf, X, Y, cv=3)
    assert scores.mean() >= 0.9, scores
    gp = NTKGaussianProcess(kernel=gntk(), alpha=1e-2).fit(X, YREG)
    mean, std = gp.predict(X[:5], return_std=True)
    assert mean.shape == (5,) and np.all(std >= 0) and np.all(np.isfinite(std))


def test_grid_search_over_architectures():
    grid = {"kernel__layers": [gntk(1).layers, gntk(2, nl.GlobalAvgPool).layers], "t": [10.0, np.inf]}
    search = GridSearchCV(NTKClassifier(kernel=gntk(), alpha=1e-3), grid, cv=3).fit(X, Y)
    assert len(search.cv_results_["params"]) == 4
    assert search.best_score_ >= 0.9
    assert search.predict(X[:4]).shape == (4,)


def test_svc_precomputed():
    k = gntk(2)
    svc = SVC(kernel="precomputed", C=10.0).fit(k(X), Y)
    assert svc.score(k(X[:10], X), Y[:10]) >= 0.9


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_gaussian_process_regressor_needs_graph_array():
    k = gntk()
    with pytest.raises(ValueError):  # sklearn's check_array cannot make an array of the pairs
        GaussianProcessRegressor(kernel=k).fit(X, YREG)
    gpr = GaussianProcessRegressor(kernel=k, alpha=1e-6, optimizer=None).fit(graph_array(X), YREG)
    np.testing.assert_allclose(gpr.predict(graph_array(X[:6])), YREG[:6], atol=1e-3)
    # with hyperparameter optimisation (exact gradients through the graph evaluator)
    gpr = GaussianProcessRegressor(kernel=k, alpha=1e-4).fit(graph_array(X[::8]), YREG[::8])
    assert np.isfinite(gpr.log_marginal_likelihood_value_)


def test_gradient_is_exact():
    k = gntk(2)
    K, grad = k(X[:6], eval_gradient=True)
    np.testing.assert_allclose(K, k(X[:6]), rtol=1e-10)
    theta = k.theta.copy()
    for d, h in enumerate((1e-4, 1e-4)):
        kp, km = k.clone_with_theta(theta), k.clone_with_theta(theta)
        tp, tm = theta.copy(), theta.copy()
        tp[d] += h
        tm[d] -= h
        kp.theta, km.theta = tp, tm
        fd = (kp(X[:6]) - km(X[:6])) / (2 * h)
        np.testing.assert_allclose(grad[..., d], fd, rtol=1e-6, atol=1e-8 * np.abs(fd).max())


def test_networkx_and_sparse_inputs_give_the_same_kernel():
    graphs = [nx.cycle_graph(5), nx.star_graph(4), nx.path_graph(3)]
    rng = np.random.default_rng(0)
    pairs = []
    for G in graphs:
        G.add_edges_from((v, v) for v in G.nodes)  # self-loops, as in the adjacency form
        for v in G.nodes:
            G.nodes[v]["x"] = rng.standard_normal(2)
        A = nx.to_numpy_array(G)
        H = np.array([G.nodes[v]["x"] for v in G.nodes])
        pairs.append((A, H))
    k = gntk(2)
    K = k(pairs)
    np.testing.assert_allclose(k([(G, "x") for G in graphs]), K, rtol=1e-12)
    np.testing.assert_allclose(k([(sp.csr_matrix(A), H) for A, H in pairs]), K, rtol=1e-12)
    with pytest.raises(ValueError, match="no attribute 'y'"):
        k([(G, "y") for G in graphs])


def test_large_sparse_graph_stays_sparse_and_matches_dense():
    rng = np.random.default_rng(1)
    N = 300
    A = sp.random(N, N, density=2.0 / N, random_state=rng, format="csr")
    A = (A + sp.eye(N)).tocsr()
    H = rng.standard_normal((N, 2))
    (As, _), = check_graphs([(A, H)])
    assert sp.issparse(As)
    small = (np.eye(3), rng.standard_normal((3, 2)))
    k = gntk(2)
    np.testing.assert_allclose(k([(A, H), small]), k([(A.toarray(), H), small]), rtol=1e-10)


def test_node_permutation_invariance():
    k = gntk(2)
    rng = np.random.default_rng(2)
    A = (rng.random((6, 6)) < 0.4) * rng.uniform(0.5, 1.5, (6, 6))  # directed, weighted
    H = rng.standard_normal((6, 2))
    perm = rng.permutation(6)
    permuted = (A[np.ix_(perm, perm)], H[perm])
    K = k([(A, H), permuted, X[0]])
    np.testing.assert_allclose(K[0], K[1], rtol=1e-10)
    assert abs(K[0, 0] - k([(A.T, H)])[0, 0]) > 1e-6 * K[0, 0]  # direction matters


def test_user_arrays_untouched():
    before = [(A.copy(), H.copy()) for A, H in X[:6]]
    NTKRegressor(kernel=gntk(), alpha=1e-3).fit(X[:6], YREG[:6]).predict(X[:6])
    for (A, H), (A0, H0) in zip(X[:6], before, strict=True):
        np.testing.assert_array_equal(A, A0)
        np.testing.assert_array_equal(H, H0)


def test_nystrom_path_on_graphs():
    """``n_components`` streams row blocks of the object array of graphs."""
    k = gntk()
    n = len(X)
    full = NTKRegressor(kernel=k, alpha=1e-2, n_components=n, random_state=0, batch_size=7)
    exact = NTKRegressor(kernel=k, alpha=1e-2).fit(X, YREG)
    np.testing.assert_allclose(full.fit(X, YREG).predict(X[:6]), exact.predict(X[:6]),
                               rtol=1e-7, atol=1e-9)
    assert full.X_fit_.dtype == object and full.X_fit_.shape == (n,)
    low = NTKGaussianProcess(kernel=k, alpha=1e-2, n_components=8, random_state=0,
                             batch_size=5).fit(X, YREG)
    mean, std = low.predict(X[:5], return_std=True)
    assert low.X_fit_.shape == (8,) and np.isfinite(mean).all() and np.all(std > 0)
    clf = NTKClassifier(kernel=k, alpha=1e-2, t=50.0, n_components=12, random_state=0)
    proba = clf.fit(X, Y).predict_proba(X[:5])
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    assert clf.score(X, Y) >= 0.9
