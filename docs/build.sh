#!/usr/bin/env bash
# Build the HTML documentation offline, warnings as errors, gallery at small sizes.
#   docs/build.sh                 # -> docs/_build/html/index.html
#   SKLEARN_NTK_EXAMPLES_QUICK=0 docs/build.sh      # full-size gallery figures (slow)
#   SKLEARN_NTK_DOCS_PLOT_GALLERY=0 docs/build.sh   # do not run the examples
# Needs: pip install -e ".[torch,docs]"
set -euo pipefail
cd "$(dirname "$0")/.."
export SKLEARN_NTK_EXAMPLES_QUICK="${SKLEARN_NTK_EXAMPLES_QUICK:-1}"
export SKLEARN_NTK_EXAMPLES_OUT="${SKLEARN_NTK_EXAMPLES_OUT:-docs/_build/example_figures}"
export MPLBACKEND=Agg
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"   # small problems: threads only add contention
# Numba's OpenMP threading layer and PyTorch's OpenMP in one process make torch training ~20x
# slower (measured: plot_kernel_regression_vs_network 143 s vs 8 s); use numba's own workqueue.
export NUMBA_THREADING_LAYER="${NUMBA_THREADING_LAYER:-workqueue}"
python -m sphinx -W --keep-going -b html -d docs/_build/doctrees docs docs/_build/html "$@"
echo "docs: open docs/_build/html/index.html"
