"""Monte-Carlo: wide random networks in the NTK parameterisation reproduce the analytic kernels.

A plain-NumPy network ``[Dense -> phi] x depth -> Dense(1)`` with ``z = sigma_w / sqrt(fan_in) W h +
sigma_b b`` is drawn with fixed seeds; its empirical NTK (exact back-propagation, summed over
layers) and its conditional NNGP estimate ``sigma_w^2 / m h_L(x).h_L(y) + sigma_b^2`` must approach
``NTKKernel`` like width^(-1/2). Seeds are fixed, so the test is deterministic; tolerances leave a
factor >= 1.6 over the errors observed.
"""

import numpy as np
import pytest
from scipy import special

from sklearn_ntk import NTKKernel

ACTS = {
    "relu": (lambda z: np.maximum(z, 0), lambda z: (z > 0).astype(float)),
    "erf": (special.erf, lambda z: 2 / np.sqrt(np.pi) * np.exp(-z * z)),
    "tanh": (np.tanh, lambda z: 1 - np.tanh(z) ** 2),
    "gelu": (
        lambda z: z * special.ndtr(z),
        lambda z: special.ndtr(z) + z * np.exp(-0.5 * z * z) / np.sqrt(2 * np.pi),
    ),
    "sin": (np.sin, np.cos),
}


def empirical_kernels(X, depth, act, sw, sb, width, seed):
    """(ntk, nngp) of one random finite network, by explicit forward and backward passes."""
    phi, dphi = ACTS[act]
    rng = np.random.default_rng(seed)
    n, d = X.shape
    hs, zs, Ws = [X], [], []
    fan = d
    for _ in range(depth):
        W = rng.standard_normal((fan, width))
        b = rng.standard_normal(width)
        z = sw / np.sqrt(fan) * hs[-1] @ W + sb * b
        Ws.append(W)
        zs.append(z)
        hs.append(phi(z))
        fan = width
    w_out = rng.standard_normal((fan, 1))
    # back-propagated signals delta_l = d f / d z_l, from the readout down
    delta = np.ones((n, 1))
    W_next = w_out
    ntk = delta @ delta.T * (sw**2 / fan * hs[-1] @ hs[-1].T + sb**2)
    for layer in range(depth - 1, -1, -1):
        fan_next = W_next.shape[0]
        delta = (delta @ W_next.T) * (sw / np.sqrt(fan_next)) * dphi(zs[layer])
        fan_in = hs[layer].shape[1]
        ntk += (delta @ delta.T) * (sw**2 / fan_in * hs[layer] @ hs[layer].T + sb**2)
        W_next = Ws[layer]
    nngp = sw**2 / fan * hs[-1] @ hs[-1].T + sb**2
    return ntk, nngp


X = np.random.default_rng(0).standard_normal((5, 3))


def rel_err(A, B):
    return np.abs(A - B).max() / np.abs(B).max()


@pytest.mark.parametrize(
    "act,depth,sw,sb",
    [("relu", 2, 1.4, 0.2), ("erf", 3, 1.3, 0.3), ("tanh", 1, 1.5, 0.1), ("gelu", 2, 1.2, 0.3), ("sin", 1, 1.0, 0.2)],
)
def test_wide_networks_converge_to_analytic_kernel(act, depth, sw, sb):
    ntk, nngp = NTKKernel(depth=depth, activation=act, weight_std=sw, bias_std=sb).ntk_and_nngp(X)
    errors = {}
    for width in (64, 4096):
        e_ntk, e_nngp = [], []
        for seed in range(4):
            t, k = empirical_kernels(X, depth, act, sw, sb, width, seed)
            e_ntk.append(t)
            e_nngp.append(k)
        errors[width] = (rel_err(np.mean(e_ntk, 0), ntk), rel_err(np.mean(e_nngp, 0), nngp))
    # the Monte-Carlo error of a mean over `seeds` networks of width m is ~ c / sqrt(m * seeds)
    # (observed c <= 5 for these configurations; errors of entries are correlated, hence max-norm)
    for width, (ntk_err, nngp_err) in errors.items():
        bound = 8.0 / np.sqrt(width * 4)
        assert ntk_err < bound and nngp_err < bound, errors
    # and the error shrinks with width (64x wider => ~8x smaller; demand at least 2x)
    assert errors[4096][0] < errors[64][0] / 2, errors
