"""
Convergence: the training loss and the eigen-directions of the NTK
==================================================================

Under gradient flow on :math:`\\mathcal{L} = \\frac{1}{2n}\\lVert f(X) - y\\rVert^2` the residual on
the training set of an infinitely wide network obeys :math:`\\dot r = -\\frac{\\eta}{n}\\Theta r`,
so in the eigenbasis :math:`\\Theta = \\sum_i \\lambda_i v_i v_i^\\top` every component decays on its
own clock,

.. math::

   v_i^\\top r_t = e^{-\\eta\\lambda_i t/n}\\, v_i^\\top r_0, \\qquad
   \\mathcal{L}_t = \\frac{1}{2n}\\sum_i e^{-2\\eta\\lambda_i t/n} (v_i^\\top r_0)^2
   \\le e^{-2\\eta\\lambda_{\\min} t/n}\\, \\mathcal{L}_0

(the :math:`U(t) = U(0)e^{-Kt}` of the lecture notes).  The left panel shows the training loss of
:class:`~sklearn_ntk.NTKRegressor` (``training_loss``) against the eigen-expansion computed here
from an independent ``eigh`` of the kernel, and the bound.  The middle panel tracks individual
components: the large-eigenvalue directions (smooth functions) are fitted first, the small ones
(wiggly functions, noise) last -- which is why stopping early regularises.

The right panel trains a real finite network, :class:`sklearn_ntk.nn.NTKMLP`, by full-batch
gradient descent and compares its training loss with the same law evaluated with the network's
own initial residual and either its empirical NTK at initialisation (what the linearised network
follows) or the analytic kernel, with the discrete-time factor
:math:`(1 - \\eta\\lambda_i/n)^{2t}` (``torch`` extra; skipped without it).  The gap between
the two kernels closes as the width grows (first gallery example).
"""


import matplotlib.pyplot as plt
import numpy as np

from sklearn_ntk import NTKKernel, NTKRegressor

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
n = 20 if QUICK else 40
X = np.sort(rng.uniform(-3, 3, n))[:, None]
y = np.sin(X[:, 0]) + 0.1 * rng.normal(size=n)

kernel = NTKKernel(depth=2, activation="relu")
eta = 1.0
model = NTKRegressor(kernel=kernel, learning_rate=eta).fit(X, y)
times = np.logspace(-1, 7, 120 if QUICK else 300)

# independent eigendecomposition of the train kernel
lam, V = np.linalg.eigh(kernel(X))
r0 = -y  # the ensemble mean starts at f_0 = 0
proj0 = V.T @ r0
loss_eigen = (np.exp(-2 * eta * np.outer(times, lam) / n) * proj0**2).sum(axis=1) / (2 * n)
loss_model = model.training_loss(times)
bound = (r0 @ r0) / (2 * n) * np.exp(-2 * eta * lam[0] * times / n)
print(f"max relative difference, training_loss vs eigen-expansion: "
      f"{np.max(np.abs(loss_model - loss_eigen) / loss_eigen):.2e}")

fig, axes = plt.subplots(1, 3, figsize=(15, 4.5), constrained_layout=True)
ax = axes[0]
ax.loglog(times, loss_model, lw=3, alpha=0.5, label="NTKRegressor.training_loss")
ax.loglog(times, loss_eigen, "k--", lw=1, label="eigen-expansion (independent)")
ax.loglog(times, bound, "r:", label=r"$\mathcal{L}_0\, e^{-2\eta\lambda_{\min} t/n}$")
ax.set_ylim(loss_eigen.min() / 3, loss_eigen.max() * 3)
ax.set_xlabel("training time t (steps, $\\eta = 1$)")
ax.set_ylabel("training loss")
ax.set_title("infinite width: training loss")
ax.legend(fontsize=8)
# sphinx_gallery_defer_figures


# %%
# Each eigen-direction on its own clock
# -------------------------------------

preds = np.array(list(model.staged_predict(X, times)))  # (n_times, n)
resid = (preds - y) @ V  # components v_i^T r_t
ax = axes[1]
picks = [n - 1, n - 2, n - 4, n // 2, 0]
colors = plt.get_cmap("plasma")(np.linspace(0, 0.85, len(picks)))
for i, color in zip(picks, colors, strict=True):
    ax.loglog(times, np.abs(resid[:, i]), color=color, lw=2.5, alpha=0.6,
              label=f"$\\lambda_{{{i + 1}}}/n$ = {lam[i] / n:.1e}")
    ax.loglog(times, np.abs(proj0[i]) * np.exp(-eta * lam[i] * times / n), "k:", lw=1)
ax.set_ylim(1e-4, 10)
ax.set_xlabel("training time t (steps)")
ax.set_ylabel(r"$|v_i^\top (f_t(X) - y)|$")
ax.set_title("residual along eigenvectors (dotted: $e^{-\\eta\\lambda_i t/n}$)")
ax.legend(fontsize=8)
# sphinx_gallery_defer_figures


# %%
# A finite network follows the same law
# -------------------------------------

ax = axes[2]
try:
    import torch

    from sklearn_ntk import empirical_ntk
    from sklearn_ntk.nn import NTKMLP
    from sklearn_ntk.training import gradient_descent
except ImportError:
    torch = None
if torch is None:
    ax.text(0.5, 0.5, "needs the torch extra", ha="center", transform=ax.transAxes)
else:
    width = 256 if QUICK else 2048
    eta_net = 0.5 * n / lam[-1]  # eta * lambda_max / n = 0.5: gradient descent is stable
    steps = np.unique(np.logspace(0, np.log10(200 if QUICK else 1000), 40).astype(int))
    steps = np.concatenate([[0], steps])

    def predicted_loss(theta, r0_net):
        """(1/2n) sum_i (1 - eta lambda_i / n)^(2t) (v_i . r_0)^2 for the kernel theta."""
        mu, U = np.linalg.eigh(theta)
        p0 = U.T @ r0_net
        factor = (1 - eta_net * mu / n) ** 2
        return (factor[None, :] ** steps[:, None] * p0**2).sum(axis=1) / (2 * n)

    for seed, color in zip([0, 1], ["tab:blue", "tab:orange"], strict=True):
        net = NTKMLP(1, depth=2, width=width, activation="relu", seed=seed, dtype=torch.float64)
        run = gradient_descent(net, X, y, learning_rate=eta_net, steps=steps)
        r0_net = run.train_predictions[0, :, 0] - y
        theta0 = empirical_ntk(net, X, dtype=torch.float64)
        ax.loglog(steps[1:], run.train_loss[1:], "o", ms=3, color=color,
                  label=f"NTKMLP width {width}, seed {seed}")
        ax.loglog(steps[1:], predicted_loss(theta0, r0_net)[1:], "-", color=color, lw=1,
                  label="its empirical NTK at init")
        ax.loglog(steps[1:], predicted_loss(kernel(X), r0_net)[1:], "--", color=color, lw=1,
                  label="analytic NTK, same $f_0$")
    ax.set_xlabel(f"gradient-descent step ($\\eta$ = {eta_net:.3g})")
    ax.set_ylabel("training loss")
    ax.set_title("finite network vs analytic prediction")
    ax.legend(fontsize=8)

# sphinx_gallery_start_ignore
fig.savefig(OUT / "plot_convergence.png", dpi=100)
# sphinx_gallery_end_ignore
