"""
Lazy training: how much the NTK moves during training
=====================================================

The infinite-width theory assumes that the NTK stays fixed while the network trains.  For a finite
network it moves; in the NTK parameterisation the relative change

.. math::

   \\delta_t = \\frac{\\lVert\\hat\\Theta_t - \\hat\\Theta_0\\rVert_F}{\\lVert\\hat\\Theta_0\\rVert_F}

shrinks like :math:`m^{-1/2}` with the width :math:`m`: each parameter moves by
:math:`O(m^{-1/2})`, so wide networks stay close to their linearisation (*lazy training*, Chizat &
Bach 2019).  This is why the closed-form predictions of the previous examples become exact as the
width grows -- and why the infinite-width network cannot learn features: its kernel never changes.

:func:`sklearn_ntk.training.ntk_drift` trains :class:`sklearn_ntk.nn.NTKMLP` networks of several
widths by full-batch gradient descent and records :math:`\\delta_t` with the exact empirical NTK
(:func:`sklearn_ntk.empirical_ntk`) at chosen steps, over several seeds.
"""


import matplotlib.pyplot as plt
import numpy as np

from sklearn_ntk import NTKKernel
from sklearn_ntk.training import ntk_drift

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
n = 16 if QUICK else 40
X = rng.uniform(-3, 3, size=(n, 1))
y = np.sin(X[:, 0]) + 0.1 * rng.normal(size=n)
X_kernel = np.linspace(-3, 3, 8 if QUICK else 20)[:, None]

widths = [32, 128, 512] if QUICK else [64, 256, 1024, 2048]
seeds = [0, 1] if QUICK else [0, 1, 2]
steps = [0, 10, 30, 100] if QUICK else [0, 10, 30, 100, 300, 1000]
# a learning rate in the regime where gradient descent tracks gradient flow:
# eta * lambda_max / n = 0.3 for the infinite-width kernel
lam_max = np.linalg.eigvalsh(NTKKernel(depth=2, bias_std=1.0)(X))[-1]
eta = 0.3 * n / lam_max

drift = ntk_drift(X, y, widths, depth=2, activation="relu", weight_std=1.0, bias_std=1.0,
                  learning_rate=eta, steps=steps, X_kernel=X_kernel, seeds=seeds)
final = drift[:, :, -1]
slope, intercept = np.polyfit(np.log(widths), np.log(final.mean(axis=1)), 1)
for width, value in zip(widths, final.mean(axis=1), strict=True):
    print(f"width {width:5d}: relative NTK change after {steps[-1]} steps = {value:.4f}")
print(f"fitted exponent: {slope:.2f} (theory: -0.5)")

# %%
# Drift over training and against width
# -------------------------------------

fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), constrained_layout=True)
colors = plt.get_cmap("viridis")(np.linspace(0, 0.9, len(widths)))
for width, color, d in zip(widths, colors, drift, strict=True):
    axes[0].errorbar(steps[1:], d[:, 1:].mean(axis=0), yerr=d[:, 1:].std(axis=0), fmt="o-",
                     color=color, capsize=3, label=f"width {width}")
axes[0].set_xscale("log")
axes[0].set_yscale("log")
axes[0].set_xlabel(f"gradient-descent step (η = {eta:.3g})")
axes[0].set_ylabel(r"$\|\hat\Theta_t - \hat\Theta_0\|_F / \|\hat\Theta_0\|_F$")
axes[0].set_title(f"NTK drift during training (ReLU, depth 2, {len(seeds)} seeds)")
axes[0].legend()
axes[0].grid(True, which="both", alpha=0.3)

axes[1].errorbar(widths, final.mean(axis=1), yerr=final.std(axis=1), fmt="o", color="tab:red",
                 capsize=3, label=f"after {steps[-1]} steps")
axes[1].plot(widths, np.exp(intercept) * np.asarray(widths, float) ** slope, "k--",
             label=f"fit: width$^{{{slope:.2f}}}$")
axes[1].set_xscale("log")
axes[1].set_yscale("log")
axes[1].set_xlabel("width m")
axes[1].set_ylabel("relative NTK change")
axes[1].set_title("lazy training: the kernel freezes as the width grows")
axes[1].legend()
axes[1].grid(True, which="both", alpha=0.3)

# sphinx_gallery_start_ignore
fig.savefig(OUT / "plot_lazy_training.png", dpi=100)
# sphinx_gallery_end_ignore
