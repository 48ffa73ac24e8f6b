"""
Tuning depth and training time by grid search on a real dataset
================================================================

The training time ``t`` of :class:`~sklearn_ntk.NTKRegressor` is a regularisation parameter
(early stopping), so it belongs in a hyperparameter search together with the architecture.  Here
``GridSearchCV`` tunes ``kernel__depth`` and ``t`` inside a ``Pipeline`` with ``StandardScaler`` on
the diabetes data bundled with scikit-learn, and the result is compared on a held-out test split
with kernel ridge regression with an RBF kernel, tuned the same way.

Targets are standardised with ``TransformedTargetRegressor``: the network's prior mean is zero, so
an uncentred target would be shrunk towards 0 at finite ``t``.  An explicit
:class:`~sklearn_ntk.dynamics.FactorizationCache` passed as ``cache=`` shares the
eigendecomposition of each fold's train kernel across the ``t`` candidates, so the search over
``t`` costs little more than one fit per depth (the scores are identical without it).
"""

import time

import matplotlib.pyplot as plt
import numpy as np
from sklearn.compose import TransformedTargetRegressor
from sklearn.datasets import load_diabetes
from sklearn.kernel_ridge import KernelRidge
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_ntk import FactorizationCache, NTKKernel, NTKRegressor

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

X, y = load_diabetes(return_X_y=True)
if QUICK:  # a random subset of 200 rows
    keep = np.random.default_rng(0).choice(len(y), size=200, replace=False)
    X, y = X[keep], y[keep]
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)


def scaled(model, name):
    return TransformedTargetRegressor(
        regressor=Pipeline([("scale", StandardScaler()), (name, model)]),
        transformer=StandardScaler(),
    )


depths = [1, 2, 3] if QUICK else [1, 2, 3, 4, 6]
times = list(np.logspace(0, 5, 6 if QUICK else 11)) + [np.inf]
cv = 3 if QUICK else 5

ntk_search = GridSearchCV(
    scaled(NTKRegressor(kernel=NTKKernel(activation="relu"), cache=FactorizationCache()), "ntk"),
    {"regressor__ntk__kernel__depth": depths, "regressor__ntk__t": times},
    cv=cv,
)
start = time.perf_counter()
ntk_search.fit(X_train, y_train)
ntk_time = time.perf_counter() - start

krr_search = GridSearchCV(
    scaled(KernelRidge(kernel="rbf"), "krr"),
    {
        "regressor__krr__alpha": list(np.logspace(-3, 1, 5 if QUICK else 9)),
        "regressor__krr__gamma": list(np.logspace(-3, 0, 4 if QUICK else 7)),
    },
    cv=cv,
)
start = time.perf_counter()
krr_search.fit(X_train, y_train)
krr_time = time.perf_counter() - start

best = ntk_search.best_params_
print(f"NTK: best depth {best['regressor__ntk__kernel__depth']}, t {best['regressor__ntk__t']:g}, "
      f"CV R^2 {ntk_search.best_score_:.3f}, test R^2 {ntk_search.score(X_test, y_test):.3f}, "
      f"search {ntk_time:.1f} s")
krr_best = krr_search.best_params_
print(f"KRR: best alpha {krr_best['regressor__krr__alpha']:g}, "
      f"gamma {krr_best['regressor__krr__gamma']:g}, CV R^2 {krr_search.best_score_:.3f}, "
      f"test R^2 {krr_search.score(X_test, y_test):.3f}, search {krr_time:.1f} s")

# %%
# Cross-validated score over depth and t
# --------------------------------------

scores = np.asarray(ntk_search.cv_results_["mean_test_score"]).reshape(len(depths), len(times))
fig, axes = plt.subplots(1, 2, figsize=(13, 4.8), constrained_layout=True,
                         gridspec_kw={"width_ratios": [1.6, 1]})
ax = axes[0]
im = ax.imshow(np.clip(scores, -0.2, None), aspect="auto", cmap="viridis", origin="lower")
tick_labels = [f"$10^{{{np.log10(t):.1f}}}$".replace(".0}", "}") if np.isfinite(t) else "∞"
               for t in times]
ax.set_xticks(range(len(times)), tick_labels)
ax.set_yticks(range(len(depths)), depths)
ax.set_xlabel("training time t (steps, learning rate 1)")
ax.set_ylabel("depth (hidden layers)")
ax.set_title(f"NTK regressor: {cv}-fold CV $R^2$ on the training split")
for i in range(len(depths)):
    for j in range(len(times)):
        ax.text(j, i, f"{scores[i, j]:.2f}", ha="center", va="center", fontsize=7,
                color="white" if scores[i, j] < np.nanmax(scores) - 0.1 else "black")
fig.colorbar(im, ax=ax, label="$R^2$ (clipped at -0.2)")
# sphinx_gallery_defer_figures


# %%
# Held-out comparison
# -------------------

ntk_inf = scaled(
    NTKRegressor(kernel=NTKKernel(depth=best["regressor__ntk__kernel__depth"]), t=np.inf), "ntk"
).fit(X_train, y_train)
rows = [
    ("NTK, tuned depth and t", ntk_search.score(X_test, y_test)),
    ("NTK, same depth, t = ∞", ntk_inf.score(X_test, y_test)),
    ("kernel ridge (RBF), tuned", krr_search.score(X_test, y_test)),
]
ax = axes[1]
ax.barh(range(len(rows)), [r[1] for r in rows], color=["tab:red", "salmon", "tab:gray"])
ax.set_yticks(range(len(rows)), [r[0] for r in rows])
ax.set_xlabel("test $R^2$ (25% held out)")
ax.set_xlim(min(0.0, min(r[1] for r in rows)), 1)
for i, (_, value) in enumerate(rows):
    ax.text(max(value, 0) + 0.01, i, f"{value:.3f}", va="center")
ax.set_title(f"diabetes, {len(X_train)} train / {len(X_test)} test samples")

# sphinx_gallery_start_ignore
fig.savefig(OUT / "plot_grid_search.png", dpi=100)
# sphinx_gallery_end_ignore
