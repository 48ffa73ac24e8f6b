"""
Kernel regression against a trained wide network
================================================

A wide network trained by full-batch gradient descent on the squared loss follows the closed form
of :class:`~sklearn_ntk.NTKRegressor` at *every* training step, not only at convergence.  Here
:class:`sklearn_ntk.nn.NTKMLP` networks (ReLU, one hidden layer, NTK parameterisation) are trained
on noisy :math:`\\sin` data with :func:`sklearn_ntk.training.gradient_descent` and compared with
``NTKRegressor(dynamics="gd")`` -- the exact discrete-time filter
:math:`1 - (1 - \\eta\\lambda/n)^t` -- at the same steps and learning rate.

The closed form is the *mean* over initialisations, which starts at :math:`f_0 = 0`, while one
network starts at a random function :math:`f_0`.  To compare one network with it, the network is
*centred*: its output is :math:`f(x; \\theta) - f(x; \\theta_0)` with :math:`\\theta_0` frozen.
This changes neither the parameter gradients' geometry nor the NTK, and the centred network starts
at exactly 0.  (Alternatively, :func:`sklearn_ntk.training.linearized_trajectory` predicts an
uncentred network from its own :math:`f_0`.)

The right panel shows the relative difference between network and closed form over training for
several widths: it shrinks as the width grows (lazy training, see the next example).
"""

import copy

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

from sklearn_ntk import NTKKernel, NTKRegressor
from sklearn_ntk.nn import NTKMLP
from sklearn_ntk.training import gradient_descent

# sphinx_gallery_start_ignore
# isort: split
# Plumbing for the docs build and the tests, hidden on the gallery page:
# SKLEARN_NTK_EXAMPLES_QUICK=1 runs at small sizes; the figure is saved to
# SKLEARN_NTK_EXAMPLES_OUT.
import os
from pathlib import Path

QUICK = os.environ.get("SKLEARN_NTK_EXAMPLES_QUICK", "0").lower() in ("1", "true", "yes")
OUT = Path(os.environ.get("SKLEARN_NTK_EXAMPLES_OUT", "results/examples"))
OUT.mkdir(parents=True, exist_ok=True)
# sphinx_gallery_end_ignore

rng = np.random.default_rng(42)
n = 20 if QUICK else 50
X = rng.uniform(-3, 3, size=(n, 1))
y = np.sin(X[:, 0]) + 0.1 * rng.normal(size=n)
X_test = np.linspace(-4, 4, 100 if QUICK else 200)[:, None]

depth = 1
kernel = NTKKernel(depth=depth, activation="relu", weight_std=1.0, bias_std=1.0)
lam_max = np.linalg.eigvalsh(kernel(X))[-1]
eta = 0.3 * n / lam_max  # eta * lambda_max / n = 0.3: comfortably stable
steps = np.array([0, 10, 100, 1000] + ([] if QUICK else [3000]))
widths = [256, 2048] if QUICK else [256, 1024, 4096]

closed_form = NTKRegressor(kernel=kernel, learning_rate=eta, dynamics="gd").fit(X, y)
mean_t = np.array(list(closed_form.staged_predict(X_test, steps)))  # (n_steps, n_test)
mean_inf = NTKRegressor(kernel=kernel).fit(X, y).predict(X_test)


class Centred(nn.Module):
    """f(x; theta) - f(x; theta_0): starts at exactly 0, same NTK as the wrapped network."""

    def __init__(self, net):
        super().__init__()
        self.net = net
        self.initial = copy.deepcopy(net).requires_grad_(False)

    def forward(self, x):
        return self.net(x) - self.initial(x)


runs = {}
for width in widths:
    net = NTKMLP(1, depth=depth, width=width, activation="relu", weight_std=1.0, bias_std=1.0,
                 seed=0, dtype=torch.float64)
    runs[width] = gradient_descent(Centred(net), X, y, learning_rate=eta, steps=steps,
                                   X_test=X_test)
    diff = [np.linalg.norm(runs[width].test_predictions[i, :, 0] - mean_t[i])
            / np.linalg.norm(mean_t[i]) for i in range(1, len(steps))]
    print(f"width {width:5d}: relative difference to the closed form at step "
          f"{steps[-1]}: {diff[-1]:.3f}")

# %%
# Trajectories
# ------------

fig, axes = plt.subplots(1, 3, figsize=(16, 4.8), constrained_layout=True)
widest = runs[widths[-1]]
ax = axes[0]
ax.plot(X[:, 0], y, "k.", ms=8, label="training data")
ax.plot(X_test[:, 0], np.sin(X_test[:, 0]), "g:", label="sin(x)")
ax.plot(X_test[:, 0], mean_inf, "r-", lw=2, label="NTKRegressor, t = ∞ (kernel regression)")
ax.plot(X_test[:, 0], widest.test_predictions[-1, :, 0], "b--", lw=2,
        label=f"network, width {widths[-1]}, step {steps[-1]}")
ax.set_title("after training")
ax.legend(fontsize=8)

ax = axes[1]
colors = plt.get_cmap("viridis")(np.linspace(0, 0.9, len(steps) - 1))
for i, color in zip(range(1, len(steps)), colors, strict=True):
    ax.plot(X_test[:, 0], mean_t[i], "-", color=color, lw=2, label=f"step {steps[i]}")
    ax.plot(X_test[:, 0], widest.test_predictions[i, :, 0], "--", color="k", lw=1)
ax.plot(X[:, 0], y, "k.", ms=5)
ax.set_title(f"closed form (colour) vs network width {widths[-1]} (dashed), η = {eta:.3g}")
ax.legend(fontsize=8)

ax = axes[2]
for width in widths:
    run = runs[width]
    diff = [np.linalg.norm(run.test_predictions[i, :, 0] - mean_t[i])
            / np.linalg.norm(mean_t[i]) for i in range(1, len(steps))]
    ax.loglog(steps[1:], diff, "o-", label=f"width {width}")
ax.set_xlabel("gradient-descent step")
ax.set_ylabel("relative L2 difference on test inputs")
ax.set_title("network vs closed form")
ax.legend()
ax.grid(True, which="both", alpha=0.3)

# sphinx_gallery_start_ignore
fig.savefig(OUT / "plot_kernel_regression_vs_network.png", dpi=100)
# sphinx_gallery_end_ignore
