"""
Activation gallery: NNGP and NTK against the angle between inputs
=================================================================

For two inputs on the sphere :math:`\\lVert x\\rVert^2 = \\lVert x'\\rVert^2 = d` at an angle
:math:`\\gamma`, the kernels of :class:`~sklearn_ntk.NTKKernel` depend only on :math:`\\gamma`.  The
normalised kernel :math:`k(x, x')/k(x, x)` is the correlation of two outputs of the infinitely wide
network (NNGP) or the similarity that gradient descent uses (NTK).

The top row compares the activations at depth 2.  The bottom row shows what depth does.  For ReLU
at the critical :math:`\\sigma_w = \\sqrt2` (He initialisation) the NNGP correlation of distinct
inputs creeps towards 1 with depth -- deep networks forget the angle -- while the NTK keeps a sharp
peak at :math:`\\gamma = 0`.  For erf with :math:`\\sigma_w = 1` the network is in the ordered
phase: the correlations of both kernels rise with depth and the kernels flatten.
"""


import matplotlib.pyplot as plt
import numpy as np

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

n_angles = 61 if QUICK else 181
gamma = np.linspace(0.0, np.pi, n_angles)
# x = sqrt(2) * (1, 0) and x' = sqrt(2) * (cos g, sin g): both have |x|^2 / d = 1 (d = 2)
X = np.sqrt(2.0) * np.array([[1.0, 0.0]])
Y = np.sqrt(2.0) * np.column_stack([np.cos(gamma), np.sin(gamma)])

activations = ["relu", "leaky_relu", "abs", "erf", "gelu", "sin", "identity", "sign"]
activations += ["tanh", "sigmoid", "silu"]


def normalised(kernel):
    """k(x, x'(gamma)) / k(x, x), for the NNGP and the NTK, from one pass."""
    ntk, nngp = kernel.ntk_and_nngp(X, Y)
    ntk0, nngp0 = kernel.ntk_and_nngp(X, X)
    return nngp[0] / nngp0[0, 0], ntk[0] / ntk0[0, 0]


# %%
# All activations at depth 2
# --------------------------

fig, axes = plt.subplots(2, 2, figsize=(11, 8), constrained_layout=True)
cmap = plt.get_cmap("tab20")
for i, act in enumerate(activations):
    nngp, ntk = normalised(NTKKernel(depth=2, activation=act))
    axes[0, 0].plot(gamma, nngp, color=cmap(i), label=act)
    axes[0, 1].plot(gamma, ntk, color=cmap(i), label=act)
for ax, name in zip(axes[0], ["NNGP", "NTK"], strict=True):
    ax.set_title(f"{name}, depth 2, $\\sigma_w = 1$, $\\sigma_b = 0.1$")
    ax.set_xlabel("angle $\\gamma$ between the inputs")
    ax.set_ylabel("$k(x, x') / k(x, x)$")
    ax.grid(True, alpha=0.3)
axes[0, 1].legend(fontsize=8, ncol=2)
# sphinx_gallery_defer_figures


# %%
# How depth changes the kernel
# ----------------------------

depths = [0, 1, 2, 4, 8, 16] if not QUICK else [0, 1, 4, 16]
colors = plt.get_cmap("viridis")(np.linspace(0, 0.9, len(depths)))
for ax, (act, w_std) in zip(axes[1], [("relu", np.sqrt(2.0)), ("erf", 1.0)], strict=True):
    for depth, color in zip(depths, colors, strict=True):
        nngp, ntk = normalised(NTKKernel(depth=depth, activation=act, weight_std=w_std))
        ax.plot(gamma, ntk, color=color, label=f"NTK, depth {depth}")
        ax.plot(gamma, nngp, color=color, ls=":", lw=1)
    ax.set_title(f"{act}, $\\sigma_w = {w_std:.3g}$: NTK (solid), NNGP (dotted) by depth")
    ax.set_xlabel("angle $\\gamma$ between the inputs")
    ax.set_ylabel("$k(x, x') / k(x, x)$")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)

for ax in axes.ravel():
    ax.set_xticks([0, np.pi / 4, np.pi / 2, 3 * np.pi / 4, np.pi],
                  ["0", "$\\pi/4$", "$\\pi/2$", "$3\\pi/4$", "$\\pi$"])

# sphinx_gallery_start_ignore
fig.savefig(OUT / "plot_activations.png", dpi=100)
# sphinx_gallery_end_ignore
