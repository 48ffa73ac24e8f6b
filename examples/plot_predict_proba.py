"""
Class probabilities of the trained ensemble, and calibrated ones
================================================================

Over random initialisations, infinitely wide networks trained for ``t`` steps on one-hot targets
have Gaussian outputs: mean :math:`\\mu_c(x)` (what ``decision_function`` returns) and the same
variance :math:`\\sigma^2(x)` for every class.
:meth:`NTKClassifier.predict_proba <sklearn_ntk.NTKClassifier.predict_proba>` is the fraction of
those networks that predict each class, :math:`P(\\arg\\max_j f_j(x) = c)`.  It is uniform at
``t = 0``, sharpens as training proceeds, and is exactly one-hot on the training points at
``t = ∞`` (every network interpolates them).

That is a statement about the spread of the *networks*, not about the noise in the *labels*:
where the classes overlap, the trained ensemble can agree confidently on a label that is often
wrong.  :class:`~sklearn.calibration.CalibratedClassifierCV` maps these probabilities to
calibrated ones by cross-validation; the last panel shows the result and the printed held-out
log-loss and Brier score measure the difference.
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.datasets import make_moons
from sklearn.metrics import brier_score_loss, log_loss
from sklearn.model_selection import train_test_split

from sklearn_ntk import NTKClassifier, NTKKernel

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

X, y = make_moons(n_samples=160 if QUICK else 400, noise=0.3, random_state=0)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.5, random_state=0)
kernel = NTKKernel(depth=2, activation="relu", weight_std=1.5, bias_std=0.1)

# %%
# The ensemble's probabilities at three training times, and calibrated
# --------------------------------------------------------------------

models = {
    "t = 3": NTKClassifier(kernel, t=3.0),
    "t = 100": NTKClassifier(kernel, t=100.0),
    "t = ∞": NTKClassifier(kernel, t=np.inf, alpha=1e-3),
    "t = ∞, calibrated (sigmoid, 5-fold)": CalibratedClassifierCV(
        NTKClassifier(kernel, t=np.inf, alpha=1e-3), method="sigmoid", cv=5),
}

m = 60 if QUICK else 150
g0, g1 = np.meshgrid(np.linspace(-2.0, 3.0, m), np.linspace(-1.5, 2.0, m))
grid = np.column_stack([g0.ravel(), g1.ravel()])

fig, axes = plt.subplots(1, 4, figsize=(18, 4.6), sharey=True, constrained_layout=True)
for ax, (name, model) in zip(axes, models.items(), strict=True):
    model.fit(X_train, y_train)
    p_test = model.predict_proba(X_test)
    print(f"{name:36s} held-out log-loss {log_loss(y_test, p_test):.3f}, "
          f"Brier {brier_score_loss(y_test, p_test[:, 1]):.3f}, "
          f"accuracy {model.score(X_test, y_test):.3f}")
    surface = model.predict_proba(grid)[:, 1].reshape(g0.shape)
    cs = ax.contourf(g0, g1, surface, levels=np.linspace(0, 1, 11), cmap="RdBu_r", vmin=0,
                     vmax=1)
    ax.contour(g0, g1, surface, levels=[0.5], colors="k", linewidths=1)
    for label, face, marker in [(0, "white", "o"), (1, "black", "^")]:
        pts = X_train[y_train == label]
        ax.scatter(pts[:, 0], pts[:, 1], c=face, marker=marker, edgecolors="0.5",
                   linewidths=0.5, s=16, label=f"class {label}")
    ax.set_title(name)
    ax.set_xlabel("$x_1$")
axes[0].set_ylabel("$x_2$")
axes[0].legend(loc="lower left", fontsize=8)
_ = fig.colorbar(cs, ax=axes, label="P(class 1)", shrink=0.9)

# %%
# The untrained ensemble is undecided
# -----------------------------------
#
# At ``t = 0`` every network is still at its random initialisation: the outputs are independent
# with mean zero, so each class wins for exactly half of them.

p0 = NTKClassifier(kernel, t=0.0).fit(X_train, y_train).predict_proba(X_test)
print(f"t = 0: largest deviation from 1/2: {np.abs(p0 - 0.5).max():.1e}")

# sphinx_gallery_start_ignore
fig.savefig(OUT / "plot_predict_proba.png", dpi=100)
# sphinx_gallery_end_ignore
