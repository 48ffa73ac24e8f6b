"""
Learning σ_w and σ_b by marginal likelihood
===========================================

:class:`~sklearn_ntk.NTKKernel` is a full scikit-learn kernel: its hyperparameters
``weight_std`` (:math:`\\sigma_w`) and ``bias_std`` (:math:`\\sigma_b`) have bounds and exact
gradients of the kernel with respect to their logarithms.  So
:class:`~sklearn.gaussian_process.GaussianProcessRegressor` can learn the initialisation scales of
the infinitely wide network -- here with the NNGP kernel, the exact Bayesian posterior of the
network whose readout is trained -- together with a noise level, by maximising the log marginal
likelihood (LML).

The left panel is the LML landscape over :math:`(\\sigma_w, \\sigma_b)` at the learned noise level,
with the optimiser's start and end points.  The right panel compares the predictions before and
after learning.
"""


import matplotlib.pyplot as plt
import numpy as np
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import WhiteKernel

from sklearn_ntk import NTKKernel

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

rng = np.random.default_rng(0)
n = 30 if QUICK else 60
X = np.sort(rng.uniform(-3, 3, n))[:, None]
y = np.sin(2.0 * X[:, 0]) + 0.5 * X[:, 0] + 0.2 * rng.normal(size=n)
X_plot = np.linspace(-4, 4, 200)[:, None]

start = NTKKernel(depth=2, activation="relu", kind="nngp", weight_std=1.0, bias_std=0.1)
kernel = start + WhiteKernel(noise_level=0.5)
gpr = GaussianProcessRegressor(kernel=kernel, normalize_y=True, random_state=0,
                               n_restarts_optimizer=0 if QUICK else 3)
gpr.fit(X, y)
learned = gpr.kernel_
print(f"initial: {kernel}\nlearned: {learned}")
print(f"LML: initial {gpr.log_marginal_likelihood(kernel.theta):.2f} -> "
      f"learned {gpr.log_marginal_likelihood_value_:.2f}")

# %%
# The LML landscape over (σ_w, σ_b)
# ---------------------------------

names = [h.name for h in learned.hyperparameters]
i_w, i_b = names.index("k1__weight_std"), names.index("k1__bias_std")
m = 15 if QUICK else 40
w_grid = np.logspace(-1, 1.5, m)
b_grid = np.logspace(-3, 1.5, m)
lml = np.empty((m, m))
theta = learned.theta.copy()
for a, b_std in enumerate(b_grid):
    for c, w_std in enumerate(w_grid):
        theta[i_w], theta[i_b] = np.log(w_std), np.log(b_std)
        lml[a, c] = gpr.log_marginal_likelihood(theta)

fig, axes = plt.subplots(1, 2, figsize=(13, 5), constrained_layout=True)
ax = axes[0]
cs = ax.contourf(w_grid, b_grid, np.maximum(lml, np.nanmax(lml) - 200), levels=30,
                 cmap="viridis")
fig.colorbar(cs, ax=ax, label="log marginal likelihood")
ax.plot(start.weight_std, start.bias_std, "wo", ms=8, label="start")
ax.plot(np.exp(learned.theta[i_w]), np.exp(learned.theta[i_b]), "r*", ms=14, label="learned")
ax.set_xscale("log")
ax.set_yscale("log")
ax.set_xlabel(r"$\sigma_w$ (weight_std)")
ax.set_ylabel(r"$\sigma_b$ (bias_std)")
ax.set_title("LML at the learned noise level (ReLU, depth 2, NNGP)")
ax.legend()
# sphinx_gallery_defer_figures


# %%
# Predictions before and after
# ----------------------------

ax = axes[1]
before = GaussianProcessRegressor(kernel=kernel, normalize_y=True, optimizer=None).fit(X, y)
for model, label, color in [(before, "initial σ_w, σ_b, noise", "tab:gray"),
                            (gpr, "learned", "tab:red")]:
    mean, std = model.predict(X_plot, return_std=True)
    ax.plot(X_plot[:, 0], mean, color=color, label=label)
    ax.fill_between(X_plot[:, 0], mean - 2 * std, mean + 2 * std, color=color, alpha=0.15)
ax.plot(X[:, 0], y, "k.", label="data")
ax.plot(X_plot[:, 0], np.sin(2.0 * X_plot[:, 0]) + 0.5 * X_plot[:, 0], "k:", lw=1,
        label="true function")
ax.set_title("GPR(NTKKernel(kind='nngp') + WhiteKernel())")
ax.legend(fontsize=8)
ax.grid(True, alpha=0.3)

# sphinx_gallery_start_ignore
fig.savefig(OUT / "plot_marginal_likelihood.png", dpi=100)
# sphinx_gallery_end_ignore
