"""
Few-shot digits: the convolutional NTK against a fully-connected NTK, an SVM and a trained CNN
==============================================================================================

The architecture of an infinitely wide network is a prior over functions, and with few labelled
examples a good prior is worth a lot of data.  Here four classifiers learn the 8x8 handwritten
digits from only :math:`n = 10` to :math:`640` labelled images (class balanced):

* **CNTK** -- :class:`~sklearn_ntk.NTKClassifier` with the kernel of an infinitely wide CNN,
  ``NetworkKernel([Conv((3, 3)), "relu", Conv((3, 3)), "relu", GlobalAvgPool(), Dense()],
  input_shape=(8, 8, 1))``: the network trained to convergence on one-hot targets.  ``X`` stays
  an ``(n, 64)`` array; the kernel reshapes each row into an image.
* **FC NTK** -- the same classifier with :class:`~sklearn_ntk.NTKKernel` (three hidden layers).
  Its kernel depends only on :math:`x \\cdot x'`, :math:`\\lVert x\\rVert` and
  :math:`\\lVert x'\\rVert`, so it is blind to which pixels are neighbours: shuffling the pixels
  of every image the same way changes nothing.
* **RBF SVM** -- :class:`sklearn.svm.SVC`, also blind to the pixel layout.
* **CNN** -- a finite network of exactly the CNTK's architecture (32 channels, 16 at the quick
  sizes; its twin from :func:`sklearn_ntk.nn.from_layers`), trained with Adam on the
  cross-entropy (``torch`` extra).

Convolutions and global pooling share weights over positions and add up local evidence, which
is what digits need; the CNTK turns that prior into a closed-form classifier with no training
loop, and only :math:`\\sigma_w, \\sigma_b` and a tiny ridge to set.  With one image per class
every method is at the mercy of which image was drawn; from two per class on, the CNTK is
clearly ahead of the pixel-blind methods, and they need at least twice as many images to match
it.  The finite CNN has to learn its features from the same few images by gradient descent; it
trails the CNTK at every size shown.  With a few hundred images every method is near 99%.

The training sets are nested, class-balanced draws from one pool of images (different for each
seed except the largest, which is the whole pool); the test images are never used for training.
Since every training set comes from the pool, the CNTK Gram matrix of the pool and the test
images is computed once and the classifier's closed form is applied to its blocks (checked
against ``NTKClassifier.fit`` below).
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.svm import SVC

from sklearn_ntk import NetworkKernel, NTKClassifier, NTKKernel
from sklearn_ntk import layers as nl

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

sizes = [10, 20, 40, 80] if QUICK else [10, 20, 40, 80, 160, 320, 640]
seeds = [0, 1] if QUICK else [0, 1, 2]
n_test = 200 if QUICK else 500

X, y = load_digits(return_X_y=True)
X = X / 16.0  # pixel intensities in [0, 1]
rng = np.random.default_rng(0)
order = rng.permutation(len(X))
test, rest = order[:n_test], order[n_test:]
per_class = sizes[-1] // 10
pool = np.concatenate([rest[y[rest] == c][:per_class] for c in range(10)])  # 10 blocks


def training_set(n, seed):
    """Positions in ``pool`` of n images, n/10 per class, nested in n for a given seed."""
    r = np.random.default_rng(seed)
    blocks = [r.permutation(per_class) + c * per_class for c in range(10)]
    return np.concatenate([b[: n // 10] for b in blocks])


# %%
# The kernels
# -----------
# The same :math:`\sigma_w, \sigma_b` for both kernels; ``alpha`` is a small absolute ridge
# that keeps the solve well conditioned for the largest training sets.

cntk = NetworkKernel(
    [nl.Conv((3, 3)), "relu", nl.Conv((3, 3)), "relu", nl.GlobalAvgPool(), nl.Dense()],
    input_shape=(8, 8, 1), weight_std=1.4, bias_std=0.1,
)
fc_ntk = NTKKernel(depth=3, activation="relu", weight_std=1.4, bias_std=0.1)
alpha = 1e-4

grams = {}
for name, kernel in [("CNTK", cntk), ("FC NTK", fc_ntk)]:
    grams[name] = (kernel(X[pool]), kernel(X[test], X[pool]))


def kernel_accuracy(name, idx):
    """Test accuracy of NTKClassifier(t=inf, alpha) from the precomputed Gram blocks."""
    K_pool, K_test = grams[name]
    Y = np.eye(10)[y[pool[idx]]]
    dual = np.linalg.solve(K_pool[np.ix_(idx, idx)] + alpha * np.eye(len(idx)), Y)
    return np.mean((K_test[:, idx] @ dual).argmax(axis=1) == y[test])


# the closed form on the blocks is NTKClassifier's own fit and predict:
idx = training_set(sizes[0], seeds[0])
clf = NTKClassifier(kernel=cntk, alpha=alpha).fit(X[pool[idx]], y[pool[idx]])
scores = np.linalg.solve(grams["CNTK"][0][np.ix_(idx, idx)] + alpha * np.eye(len(idx)),
                         np.eye(10)[y[pool[idx]]])
scores = grams["CNTK"][1][:, idx] @ scores
print(f"NTKClassifier vs the precomputed Gram blocks: max |score difference| = "
      f"{np.abs(clf.decision_function(X[test]) - scores).max():.1e}")

# %%
# A finite CNN of the same architecture
# -------------------------------------
# :func:`sklearn_ntk.nn.from_layers` builds the CNTK's network at a finite width, in the NTK
# parameterisation; here it is trained like any PyTorch model (full batch, Adam,
# cross-entropy).  Without the ``torch`` extra this part is skipped.

try:
    import torch

    from sklearn_ntk.nn import from_layers
except ImportError:
    torch = None


def cnn_accuracy(idx, seed):
    width, steps = (16, 150) if QUICK else (32, 300)
    net = from_layers(cntk.layers, cntk.input_shape, width, weight_std=1.4, bias_std=0.1,
                      out_features=10, seed=seed)
    X_train = torch.as_tensor(X[pool[idx]], dtype=torch.float32)
    y_train = torch.as_tensor(y[pool[idx]])
    optimiser = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(steps):
        optimiser.zero_grad()
        torch.nn.functional.cross_entropy(net(X_train), y_train).backward()
        optimiser.step()
    with torch.no_grad():
        predicted = net(torch.as_tensor(X[test], dtype=torch.float32)).argmax(dim=1)
    return np.mean(predicted.numpy() == y[test])


# %%
# Test accuracy against the number of training images
# ----------------------------------------------------

methods = ["CNTK", "FC NTK", "RBF SVM"] + (["CNN (trained)"] if torch is not None else [])
acc = {m: np.zeros((len(sizes), len(seeds))) for m in methods}
for i, n in enumerate(sizes):
    for j, seed in enumerate(seeds):
        idx = training_set(n, seed)
        acc["CNTK"][i, j] = kernel_accuracy("CNTK", idx)
        acc["FC NTK"][i, j] = kernel_accuracy("FC NTK", idx)
        svm = SVC(C=10.0, gamma="scale").fit(X[pool[idx]], y[pool[idx]])
        acc["RBF SVM"][i, j] = svm.score(X[test], y[test])
        if torch is not None:
            acc["CNN (trained)"][i, j] = cnn_accuracy(idx, seed)
    print(f"n = {n:3d}: " + ", ".join(f"{m} {acc[m][i].mean():.3f}" for m in methods))

fig, ax = plt.subplots(figsize=(7, 4.5), constrained_layout=True)
styles = {"CNTK": ("tab:red", "o"), "FC NTK": ("tab:blue", "s"), "RBF SVM": ("tab:gray", "^"),
          "CNN (trained)": ("tab:green", "D")}
for m in methods:
    color, marker = styles[m]
    mean, lo, hi = acc[m].mean(axis=1), acc[m].min(axis=1), acc[m].max(axis=1)
    ax.plot(sizes, mean, marker=marker, color=color, label=m)
    ax.fill_between(sizes, lo, hi, color=color, alpha=0.15, lw=0)
ax.set_xscale("log", base=2)
ax.set_xticks(sizes, [str(n) for n in sizes])
ax.set_xlabel("training images (class balanced)")
ax.set_ylabel(f"test accuracy ({n_test} images)")
ax.set_title(f"8x8 digits, few-shot: mean (band: min-max) over {len(seeds)} seeds")
ax.grid(alpha=0.3)
ax.legend(loc="lower right")
# sphinx_gallery_start_ignore
fig.savefig(OUT / "plot_cntk_digits.png", dpi=100)
# sphinx_gallery_end_ignore
