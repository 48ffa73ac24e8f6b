"""Sphinx configuration of the sklearn-ntk documentation.

Build (offline) with ``docs/build.sh`` or
``python -m sphinx -W --keep-going -b html docs docs/_build/html``.
The gallery runs every ``examples/plot_*.py``; by default at small sizes
(``SKLEARN_NTK_EXAMPLES_QUICK=1``); set ``SKLEARN_NTK_EXAMPLES_QUICK=0`` for full-size figures, or
``SKLEARN_NTK_DOCS_PLOT_GALLERY=0`` to skip running the examples.
"""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("SKLEARN_NTK_EXAMPLES_QUICK", "1")
os.environ.setdefault("SKLEARN_NTK_EXAMPLES_OUT", str(ROOT / "docs" / "_build" / "example_figures"))
os.environ.setdefault("MPLBACKEND", "Agg")

import sklearn_ntk  # noqa: E402

project = "sklearn-ntk"
author = "the sklearn-ntk developers"
copyright = "2026, the sklearn-ntk developers"
release = sklearn_ntk.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "auto_examples/*.ipynb"]
root_doc = "index"

# -- API reference -------------------------------------------------------------------------------
autosummary_generate = True
autodoc_default_options = {"members": True, "inherited-members": False}
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

# -- gallery -------------------------------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "within_subsection_order": "FileNameSortKey",
    "plot_gallery": os.environ.get("SKLEARN_NTK_DOCS_PLOT_GALLERY", "True"),
    "download_all_examples": False,
    "abort_on_example_error": False,
    "only_warn_on_example_error": False,
    "remove_config_comments": True,
    "reset_modules": ("matplotlib",),
    "show_memory": False,
    "min_reported_time": 1,
    "write_computation_times": False,
    "doc_module": ("sklearn_ntk",),
    "backreferences_dir": "gen_modules/backreferences",
    # pages show printed results, never the repr of a returned object (a Colorbar, an Axes, ...)
    "capture_repr": (),
    # the build-and-test plumbing (QUICK, OUT) is hidden from the pages; a downloaded notebook
    # runs at full size
    "first_notebook_cell": "QUICK = False  # the documentation runs the examples at small sizes",
}

# -- math: MathJax bundled into the built pages, so formulas render offline ------------------------
# MathJax 3 comes from PyPI (the `django-static-mathjax` package of the `docs` extra, which installs
# the MathJax distribution as the `mathjax` package's static files); the pieces a page needs are
# copied into _static/mathjax at build time.
MATHJAX_PIECES = ("tex-chtml-full.js", "output/chtml/fonts/woff-v2", "ui", "a11y")


def _mathjax_static():
    try:
        import mathjax
    except ImportError:
        raise RuntimeError(
            "the docs bundle MathJax from the `django-static-mathjax` package: "
            'pip install -e ".[docs]"'
        ) from None
    import shutil

    source = Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"
    target = ROOT / "docs" / "_build" / "mathjax_static"
    bundle = target / "mathjax"
    if not (bundle / MATHJAX_PIECES[0]).exists():
        for piece in MATHJAX_PIECES:
            src, dst = source / piece, bundle / piece
            dst.parent.mkdir(parents=True, exist_ok=True)
            if src.is_dir():
                shutil.copytree(src, dst, dirs_exist_ok=True)
            else:
                shutil.copy2(src, dst)
    return str(target)


mathjax_path = "mathjax/tex-chtml-full.js"

# -- HTML ----------------------------------------------------------------------------------------
html_theme = "alabaster"
html_static_path = ["_static", _mathjax_static()]
html_title = f"sklearn-ntk {release}"
html_theme_options = {
    "description": "The Neural Tangent Kernel as a first-class scikit-learn citizen",
    "fixed_sidebar": True,
    "page_width": "1180px",
    "body_max_width": "none",
    "sidebar_width": "240px",
}
html_css_files = ["custom.css"]
html_sidebars = {"**": ["about.html", "navigation.html", "searchbox.html"]}
