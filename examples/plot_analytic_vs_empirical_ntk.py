"""
Analytic against empirical NTK: convergence with width
======================================================

The empirical NTK of a finite network, :math:`\\hat\\Theta(x, x') = \\nabla_\\theta f(x) \\cdot
\\nabla_\\theta f(x')`, is random (it depends on the initialisation) and converges to the analytic
kernel as the width :math:`m` grows, with fluctuations of order :math:`m^{-1/2}`.  This holds in
the **NTK parameterisation**, :class:`sklearn_ntk.nn.NTKMLP`, whose architecture matches
:class:`~sklearn_ntk.NTKKernel` exactly.

A network in PyTorch's *standard* parameterisation with He initialisation (the seed notebook's
``SimpleNet``) computes the same function at initialisation, but its parameter gradients scale
differently: its empirical NTK grows with the width and never approaches the analytic kernel,
however wide the network.  The empirical kernels are computed by
:func:`sklearn_ntk.empirical_ntk` (exact, float64).
"""


import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

from sklearn_ntk import NTKKernel, empirical_ntk
from sklearn_ntk.nn import NTKMLP

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
n, d, depth = (8 if QUICK else 16), 3, 2
X = rng.normal(size=(n, d))
widths = [32, 128, 512] if QUICK else [64, 256, 1024, 4096]
seeds = range(3 if QUICK else 6)

analytic = NTKKernel(depth=depth, activation="relu", weight_std=1.0, bias_std=0.1)(X)


def relative_error(K):
    return np.linalg.norm(K - analytic) / np.linalg.norm(analytic)


def standard_net(width, seed):
    """The seed notebook's network: nn.Linear layers, He-initialised weights, zero biases."""
    torch.manual_seed(seed)
    layers, fan_in = [], d
    for _ in range(depth):
        layers += [nn.Linear(fan_in, width), nn.ReLU()]
        fan_in = width
    layers.append(nn.Linear(fan_in, 1))
    net = nn.Sequential(*layers).double()
    for module in net.modules():
        if isinstance(module, nn.Linear):
            nn.init.kaiming_normal_(module.weight)
            nn.init.zeros_(module.bias)
    return net


errors = np.zeros((len(widths), len(seeds)))
errors_std = np.zeros((len(widths), len(seeds)))
examples = {}
for i, width in enumerate(widths):
    for j, seed in enumerate(seeds):
        net = NTKMLP(d, depth=depth, width=width, activation="relu", weight_std=1.0,
                     bias_std=0.1, seed=seed, dtype=torch.float64)
        K = empirical_ntk(net, X, dtype=torch.float64)
        errors[i, j] = relative_error(K)
        errors_std[i, j] = relative_error(empirical_ntk(standard_net(width, seed), X,
                                                        dtype=torch.float64))
        if seed == 0:
            examples[width] = K

slope, intercept = np.polyfit(np.log(widths), np.log(errors.mean(axis=1)), 1)
print(f"NTK parameterisation: relative error ~ width^{slope:.2f} (theory: -0.5)")
print(f"standard parameterisation: relative error at width {widths[-1]}: "
      f"{errors_std[-1].mean():.3g}")

# %%
# Heatmaps at the largest width, and the error against width
# ----------------------------------------------------------

fig = plt.figure(figsize=(15, 7.5), constrained_layout=True)
grid = fig.add_gridspec(2, 3)
K = examples[widths[-1]]
vmin, vmax = min(analytic.min(), K.min()), max(analytic.max(), K.max())
for col, (title, M, cmap) in enumerate([
    ("analytic NTK (NTKKernel)", analytic, "viridis"),
    (f"empirical NTK, NTKMLP width {widths[-1]}", K, "viridis"),
    ("|difference|", np.abs(K - analytic), "Reds"),
]):
    ax = fig.add_subplot(grid[0, col])
    im = ax.imshow(M, cmap=cmap, vmin=None if col == 2 else vmin, vmax=None if col == 2 else vmax)
    ax.set_title(title)
    fig.colorbar(im, ax=ax, shrink=0.8)

ax = fig.add_subplot(grid[1, :2])
for errs, label, color in [(errors, "NTK parameterisation (NTKMLP)", "tab:red"),
                           (errors_std, "standard parameterisation, He init", "tab:gray")]:
    ax.errorbar(widths, errs.mean(axis=1), yerr=errs.std(axis=1), fmt="o-", color=color,
                capsize=3, label=label)
ax.plot(widths, np.exp(intercept) * np.asarray(widths, float) ** slope, "k--", lw=1,
        label=f"fit: width$^{{{slope:.2f}}}$")
ax.set_xscale("log")
ax.set_yscale("log")
ax.set_xlabel("width m")
ax.set_ylabel(r"$\|\hat\Theta - \Theta\|_F / \|\Theta\|_F$")
ax.set_title(f"relative error over {len(seeds)} seeds (mean ± std), ReLU, depth {depth}")
ax.legend()
ax.grid(True, which="both", alpha=0.3)

ax = fig.add_subplot(grid[1, 2])
ax.plot(analytic.ravel(), K.ravel(), ".", ms=4, color="tab:red")
lims = [vmin, vmax]
ax.plot(lims, lims, "k:", lw=1)
ax.set_xlabel("analytic")
ax.set_ylabel(f"empirical, width {widths[-1]}")
ax.set_title("entries of the two kernels")

# sphinx_gallery_start_ignore
fig.savefig(OUT / "plot_analytic_vs_empirical_ntk.png", dpi=100)
# sphinx_gallery_end_ignore
