"""Run every gallery example in quick mode, as a user would, and check what it prints and saves.

The examples are standalone scripts (``examples/plot_*.py``); each runs here in a fresh
interpreter with ``SKLEARN_NTK_EXAMPLES_QUICK=1`` and must exit cleanly, save a non-empty PNG and
print the numbers its text claims.  The three that train PyTorch networks step by step take
longer (5-6 s each on an idle 2-core machine, several times that on a busy one), and so does the
convolutional-NTK and graph-classification examples; they are marked ``slow`` (run them with
``python -m pytest -m slow tests/test_examples.py``);
``docs/build.sh`` runs all of them too.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"

try:
    import torch  # noqa: F401

    HAVE_TORCH = True
except ImportError:  # pragma: no cover - torch is an optional extra
    HAVE_TORCH = False

needs_torch = pytest.mark.skipif(not HAVE_TORCH, reason="needs the torch extra")
try:
    import grakel  # noqa: F401

    HAVE_GRAKEL = True
except ImportError:  # pragma: no cover - grakel is in the benchmark extra
    HAVE_GRAKEL = False

needs_grakel = pytest.mark.skipif(not HAVE_GRAKEL, reason="needs grakel (benchmark extra)")


def _number(pattern, text):
    match = re.search(pattern, text)
    assert match, f"{pattern!r} not found in the output:\n{text}"
    return float(match.group(1))


def check_activations(out):
    assert "saved" not in out and "0x" not in out  # no build paths, no object reprs


def check_gp_vs_rbf(out):
    # readout-only ensemble at t = inf is the NNGP posterior: equal to round-off
    assert _number(r"max \|mean diff\| = (\S+),", out) < 1e-8
    assert _number(r"max \|cov diff\| = (\S+)\n", out) < 1e-8


def check_grid_search(out):
    # the tuned NTK regressor generalises on diabetes (R^2 around 0.4-0.5 on full data)
    assert _number(r"NTK: .*CV R\^2 (\S+),", out) > 0.3
    assert _number(r"KRR: .*CV R\^2 (\S+),", out) > 0.3


def check_convergence(out):
    # NTKRegressor.training_loss against an independent eigen-expansion
    assert _number(r"training_loss vs eigen-expansion: (\S+)\n", out) < 1e-6


def check_marginal_likelihood(out):
    initial = _number(r"LML: initial (\S+) ->", out)
    learned = _number(r"-> learned (\S+)\n", out)
    assert learned > initial + 1.0


def check_analytic_vs_empirical(out):
    # error falls with width (theory: width^-1/2); the standard parameterisation does not converge
    assert _number(r"relative error ~ width\^(\S+) ", out) < -0.2
    assert _number(r"standard parameterisation: relative error at width \d+: (\S+)\n", out) > 1


def check_kernel_regression_vs_network(out):
    diffs = [float(v) for v in re.findall(r"closed form at step \d+: (\S+)\n", out)]
    assert len(diffs) >= 2 and diffs[-1] < diffs[0] and diffs[-1] < 0.1


def check_predict_proba(out):
    raw = _number(r"t = ∞ +held-out log-loss (\S+),", out)
    calibrated = _number(r"calibrated \(sigmoid, 5-fold\) +held-out log-loss (\S+),", out)
    assert calibrated < raw
    assert _number(r"largest deviation from 1/2: (\S+)\n", out) < 1e-12


def check_lazy_training(out):
    assert _number(r"fitted exponent: (\S+) ", out) < -0.2


def check_cntk_digits(out):
    # the closed form applied to precomputed Gram blocks is NTKClassifier's own fit/predict
    assert _number(r"max \|score difference\| = (\S+)\n", out) < 1e-8
    rows = re.findall(r"n = +(\d+): CNTK (\S+), FC NTK (\S+), RBF SVM (\S+?)[,\n]", out)
    assert len(rows) >= 4, out
    # with 8 images per class the convolutional prior wins clearly (quick mode: 0.975 vs 0.925)
    cntk, fc, svm = (float(v) for v in rows[-1][1:])
    assert cntk > 0.9 and cntk > max(fc, svm) + 0.02, rows[-1]


def check_graph_classification(out):
    # a 2k-cycle and two k-cycles have the same GNTK feature map (1-WL cannot tell them apart)
    assert abs(_number(r"normalised k\(C12, C6 \+ C6\) = (\S+)\n", out) - 1) < 1e-12
    acc = {}
    for task, rest in re.findall(r"^([^:\n]+): (GNTK .*)$", out, flags=re.MULTILINE):
        acc[task] = {m: float(a) for m, a in re.findall(r"(?:^|; )([^;]+?) (\d\.\d+) ±", rest)}
    assert len(acc) == 4, out
    sanity, triangles = acc["cycle vs path"], acc["triangles (same degrees)"]
    blind = acc["2k-cycle vs two k-cycles"]
    assert min(sanity["GNTK"], sanity["WL subtree (grakel)"], sanity["FC NTK (statistics)"]) > 0.95
    # constant features make the GNTK's Gram matrix rank one: near chance even here
    assert sanity["GNTK, constant features"] < 0.7
    # the GNTK beats WL on the triangles (quick mode: 0.78 vs 0.59); the triangle count wins
    assert triangles["GNTK"] > triangles["WL subtree (grakel)"] + 0.1
    assert triangles["FC NTK (statistics)"] > 0.95
    assert max(blind["GNTK"], blind["WL subtree (grakel)"]) < 0.6
    assert blind["FC NTK (statistics)"] > 0.95


CASES = [
    pytest.param("plot_activations.py", check_activations, id="activations"),
    pytest.param("plot_gp_vs_rbf.py", check_gp_vs_rbf, id="gp_vs_rbf"),
    pytest.param("plot_grid_search.py", check_grid_search, id="grid_search"),
    pytest.param(
        "plot_analytic_vs_empirical_ntk.py",
        check_analytic_vs_empirical,
        id="analytic_vs_empirical",
        marks=needs_torch,
    ),
    pytest.param(
        "plot_convergence.py", check_convergence, id="convergence", marks=pytest.mark.slow
    ),
    pytest.param(
        "plot_marginal_likelihood.py", check_marginal_likelihood, id="marginal_likelihood"
    ),
    pytest.param("plot_predict_proba.py", check_predict_proba, id="predict_proba"),
    pytest.param(
        "plot_kernel_regression_vs_network.py",
        check_kernel_regression_vs_network,
        id="kernel_regression_vs_network",
        marks=[pytest.mark.slow, needs_torch],
    ),
    pytest.param(
        "plot_cntk_digits.py", check_cntk_digits, id="cntk_digits", marks=pytest.mark.slow
    ),
    pytest.param(
        "plot_graph_classification.py",
        check_graph_classification,
        id="graph_classification",
        marks=[pytest.mark.slow, needs_grakel],
    ),
    pytest.param(
        "plot_lazy_training.py",
        check_lazy_training,
        id="lazy_training",
        marks=[pytest.mark.slow, needs_torch],
    ),
]


def test_every_example_is_covered():
    scripts = {p.name for p in EXAMPLES.glob("plot_*.py")}
    covered = {case.values[0] for case in CASES}
    assert scripts == covered


@pytest.mark.parametrize("script, check", CASES)
def test_example_runs_quick(script, check, tmp_path):
    env = dict(os.environ)
    env.update(
        SKLEARN_NTK_EXAMPLES_QUICK="1",
        SKLEARN_NTK_EXAMPLES_OUT=str(tmp_path),
        MPLBACKEND="Agg",
        OMP_NUM_THREADS="1",  # small problems: threads only add contention
        # numba's OpenMP layer next to torch's OpenMP slows torch training ~20x
        NUMBA_THREADING_LAYER=env.get("NUMBA_THREADING_LAYER", "workqueue"),
        PYTHONPATH=str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""),
    )
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / script)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    figure = tmp_path / script.replace(".py", ".png")
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert figure.stat().st_size > 10_000
    check(proc.stdout)


def test_gallery_pages_show_no_plumbing():
    """What a gallery page shows (the script minus its sphinx-gallery ignore blocks) teaches the
    science: no environment-variable plumbing, no printed file paths."""
    ignore = re.compile(
        r"# sphinx_gallery_start_ignore\n.*?# sphinx_gallery_end_ignore\n", flags=re.DOTALL
    )
    for script in sorted(EXAMPLES.glob("plot_*.py")):
        shown = ignore.sub("", script.read_text(encoding="utf-8"))
        assert "os.environ" not in shown and "SKLEARN_NTK_EXAMPLES" not in shown, script.name
        assert not re.search(r"print\(f?[\"']saved", shown), script.name


def test_gallery_index_opens_with_what_it_teaches():
    """The first paragraph of the gallery's index page is about the science, not the plumbing."""
    header = (EXAMPLES / "GALLERY_HEADER.rst").read_text(encoding="utf-8")
    body = header.split("=======\n", 1)[1].strip()
    first = body.split("\n\n", 1)[0]
    assert "SKLEARN_NTK" not in first and "python examples" not in first, first


def test_docs_render_formulas_offline_and_print_no_reprs():
    """MathJax is served from the built pages (no CDN), and gallery cells show no object reprs
    (``<matplotlib.colorbar.Colorbar object at 0x...>``)."""
    conf = (ROOT / "docs" / "conf.py").read_text(encoding="utf-8")
    path = re.search(r'^mathjax_path = "([^"]+)"', conf, flags=re.MULTILINE)
    assert path is not None and "//" not in path.group(1), "MathJax must be bundled"
    assert re.search(r'"capture_repr": \(\)', conf)
    mathjax = pytest.importorskip("mathjax")  # the docs extra
    es5 = Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"
    assert (es5 / path.group(1).removeprefix("mathjax/")).is_file()
