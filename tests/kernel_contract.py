"""Reusable contract checks for any scikit-learn ``Kernel`` (in the spirit of GPyTorch's kernel
test mix-ins): sklearn's own kernel test functions, installed with scikit-learn, applied to the
kernel under test, plus a few checks of ours that every kernel of this package must pass.
"""

import pickle

import numpy as np
from sklearn.base import clone
from sklearn.gaussian_process.tests import test_kernels as sk

# sklearn's kernel tests that take a kernel argument and apply to any kernel
SKLEARN_KERNEL_TESTS = [
    sk.test_kernel_gradient,
    sk.test_kernel_theta,
    sk.test_auto_vs_cross,
    sk.test_kernel_diag,
    sk.test_kernel_input_type,
    sk.test_kernel_clone,
    sk.test_kernel_clone_after_set_params,
    sk.test_kernel_versus_pairwise,
    sk.test_set_get_params,
    sk.test_repr_kernels,
]


def check_fresh_writable_float64(kernel, X):
    K1 = kernel(X)
    K2 = kernel(X)
    assert K1.dtype == np.float64 and K1.flags.writeable
    assert not np.shares_memory(K1, K2)
    K1 += 1.0  # GPR adds alpha to the diagonal in place
    np.testing.assert_array_equal(kernel(X), K2)


def check_pickle_and_clone(kernel, X):
    for other in (pickle.loads(pickle.dumps(kernel)), clone(kernel)):
        assert other == kernel
        np.testing.assert_array_equal(other(X), kernel(X))


def check_gradient_relative(kernel, X, rtol=2e-5):
    """Analytic gradient vs central differences of k in log-space, relative to the scale."""
    K, G = kernel(X, eval_gradient=True)
    np.testing.assert_allclose(K, kernel(X), rtol=1e-9, atol=1e-12)
    theta = kernel.theta
    h = 1e-5
    for i in range(theta.size):
        e = np.zeros_like(theta)
        e[i] = h
        fd = (kernel.clone_with_theta(theta + e)(X) - kernel.clone_with_theta(theta - e)(X)) / (
            2 * h
        )
        scale = np.abs(fd).max() + 1e-300
        assert np.abs(G[..., i] - fd).max() <= rtol * scale, (
            i,
            np.abs(G[..., i] - fd).max() / scale,
        )


def check_inputs_untouched(kernel, X, Y):
    X0, Y0 = X.copy(), Y.copy()
    kernel(X, Y)
    kernel(X)
    kernel.diag(X)
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(Y, Y0)
