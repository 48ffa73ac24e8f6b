"""
NTKGaussianProcess against GaussianProcessRegressor(RBF)
========================================================

:class:`~sklearn_ntk.NTKGaussianProcess` is the distribution, over random initialisations, of
infinitely wide networks trained by gradient descent for ``t`` steps: a Gaussian process at every
``t``, with the mean and covariance of Lee et al. (2019, eq. 16).  At ``t = 0`` it is the prior
(mean 0, NNGP covariance); as ``t`` grows the ensemble fits the data, large-scale structure first.
With ``alpha = 0`` every member interpolates at ``t = ∞``, so the bands pinch to zero at the
training points; away from them the spread reflects how differently the networks extrapolate.

The last panel is the usual Bayesian answer, a :class:`~sklearn.gaussian_process.GaussianProcessRegressor`
with an RBF kernel plus noise fitted by marginal likelihood.  Note the difference in kind: the GP
bands are a posterior belief with a noise model, the NTK bands are the spread of an ensemble of
trained networks.  For ``kind="nngp"`` and ``t = ∞`` the two notions coincide: the ensemble of
networks whose readout alone is trained *is* the GP posterior with the NNGP kernel, which the
script checks numerically.
"""


import matplotlib.pyplot as plt
import numpy as np
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel

from sklearn_ntk import NTKGaussianProcess, NTKKernel

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

rng = np.random.default_rng(1)
n = 16 if QUICK else 30
# two clusters of inputs with a gap between them
X = np.concatenate([rng.uniform(-3.0, -0.8, n // 2), rng.uniform(0.8, 3.0, n - n // 2)])[:, None]
y = np.sin(1.5 * X[:, 0]) + 0.1 * rng.normal(size=n)
X_plot = np.linspace(-4.5, 4.5, 120 if QUICK else 300)[:, None]

kernel = NTKKernel(depth=2, activation="relu", weight_std=1.5, bias_std=0.2)
times = [0.0, 10.0, 100.0, 1000.0, np.inf]

fig, axes = plt.subplots(2, 3, figsize=(14, 7.5), sharex=True, sharey=True,
                         constrained_layout=True)
for ax, t in zip(axes.ravel(), times, strict=False):
    gp = NTKGaussianProcess(kernel=kernel, t=t).fit(X, y)
    mean, std = gp.predict(X_plot, return_std=True)
    ax.fill_between(X_plot[:, 0], mean - 2 * std, mean + 2 * std, color="tab:red", alpha=0.2,
                    label="± 2 std over initialisations")
    ax.plot(X_plot[:, 0], mean, color="tab:red", label="ensemble mean")
    for sample in gp.sample_y(X_plot, n_samples=3, random_state=0).T:
        ax.plot(X_plot[:, 0], sample, color="tab:red", lw=0.6, alpha=0.6)
    ax.set_title(f"NTK ensemble, t = {t:g}" if np.isfinite(t) else "NTK ensemble, t = ∞")
# sphinx_gallery_defer_figures


# %%
# The Bayesian baseline
# ---------------------

ax = axes.ravel()[-1]
gpr = GaussianProcessRegressor(
    kernel=ConstantKernel(1.0) * RBF(1.0) + WhiteKernel(0.01), normalize_y=True, random_state=0
).fit(X, y)
mean, std = gpr.predict(X_plot, return_std=True)
ax.fill_between(X_plot[:, 0], mean - 2 * std, mean + 2 * std, color="tab:blue", alpha=0.2,
                label="± 2 std (posterior)")
ax.plot(X_plot[:, 0], mean, color="tab:blue", label="posterior mean")
ax.set_title("GaussianProcessRegressor(C·RBF + White)")
for ax in axes.ravel():
    ax.plot(X[:, 0], y, "k.", ms=6)
    ax.plot(X_plot[:, 0], np.sin(1.5 * X_plot[:, 0]), "k:", lw=1)
    ax.set_ylim(-3, 3)
    ax.grid(True, alpha=0.3)
axes[0, 0].legend(fontsize=8, loc="lower left")
axes[-1, -1].legend(fontsize=8, loc="lower left")
print(f"learned GP kernel: {gpr.kernel_}")
# sphinx_gallery_defer_figures


# %%
# Readout-only training at t = ∞ is the NNGP posterior
# ----------------------------------------------------

noise = 0.01
nngp = NTKKernel(depth=2, activation="relu", weight_std=1.5, bias_std=0.2, kind="nngp")
ens = NTKGaussianProcess(kernel=nngp, t=np.inf, alpha=noise).fit(X, y)  # follows the kernel
post = GaussianProcessRegressor(kernel=nngp, alpha=noise, optimizer=None).fit(X, y)
m1, c1 = ens.predict(X_plot, return_cov=True)
m2, c2 = post.predict(X_plot, return_cov=True)
print(f"kind='nngp', t=inf vs GaussianProcessRegressor(NNGP kernel): "
      f"max |mean diff| = {np.abs(m1 - m2).max():.1e}, "
      f"max |cov diff| = {np.abs(c1 - c2).max():.1e}")

# sphinx_gallery_start_ignore
fig.savefig(OUT / "plot_gp_vs_rbf.png", dpi=100)
# sphinx_gallery_end_ignore
