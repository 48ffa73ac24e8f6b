"""Dask: row blocks evaluated on a LocalCluster, same numbers as in process."""

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

from sklearn.gaussian_process.kernels import RBF  # noqa: E402

from sklearn_ntk.estimators import NTKClassifier, NTKGaussianProcess, NTKRegressor  # noqa: E402
from sklearn_ntk.kernels import NTKKernel  # noqa: E402


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       host="127.0.0.1", dashboard_address=None,
                                       memory_limit="1GiB")
    with distributed.Client(cluster) as c:
        yield c
    cluster.close()


def _data(n=300, d=5, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    return X, np.column_stack([np.sin(X[:, 0]), X[:, 1] ** 2])


def test_dask_fit_and_predict_equal_in_process(client):
    X, y = _data()
    Xt, _ = _data(n=50, seed=1)
    w = np.linspace(0.5, 1.5, len(X))
    kw = dict(kernel=NTKKernel(depth=2), t=20.0, alpha=1e-3, n_components=40, random_state=0)
    ref = NTKRegressor(**kw).fit(X, y, sample_weight=w)
    dX, dy, dw = da.from_array(X, chunks=70), da.from_array(y, chunks=70), da.from_array(w, 70)
    got = NTKRegressor(**kw).fit(dX, dy, sample_weight=dw)
    np.testing.assert_array_equal(got.component_indices_, ref.component_indices_)
    pred = got.predict(da.from_array(Xt, chunks=13))
    assert isinstance(pred, da.Array)
    np.testing.assert_allclose(pred.compute(), ref.predict(Xt), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got.predict(Xt), ref.predict(Xt), rtol=1e-10, atol=1e-12)
    kw["kernel"] = RBF(2.0)  # the same code path; lighter on the shared test machine
    gp = NTKGaussianProcess(**kw).fit(dX, y[:, 0])
    gp_ref = NTKGaussianProcess(**kw).fit(X, y[:, 0])
    np.testing.assert_allclose(gp.predict(Xt, return_std=True)[1],
                               gp_ref.predict(Xt, return_std=True)[1], rtol=1e-10, atol=1e-12)
    labels = (y[:, 0] > 0).astype(int)
    clf = NTKClassifier(RBF(2.0), n_components=30, random_state=0).fit(dX, labels)
    got_labels = clf.predict(da.from_array(Xt, chunks=25))
    assert isinstance(got_labels, da.Array)
    np.testing.assert_array_equal(
        got_labels.compute(),
        NTKClassifier(RBF(2.0), n_components=30, random_state=0).fit(X, labels).predict(Xt))


def test_dask_needs_n_components(client):
    X, y = _data(n=20)
    with pytest.raises(ValueError, match="n_components"):
        NTKRegressor().fit(da.from_array(X, chunks=10), y)
