"""Sphinx configuration: the API reference from numpydoc docstrings, the user guide, the example gallery.

Build: ``python -m sphinx -W --keep-going -b html docs docs/_build/html`` (warnings are errors).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

project = "melagbm"
author = "melagbm developers"
release = (ROOT / "melagbm" / "VERSION.txt").read_text().strip()

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "**.ipynb_checkpoints", "gallery/*.ipynb", "gallery/*.py", "gallery/*.zip"]

templates_path = ["_templates"]
autosummary_generate = True
autodoc_default_options = {"members": False, "inherited-members": False}
autodoc_typehints = "none"  # the numpydoc sections carry the types
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
#: Every public name has a docstring whose sections follow numpydoc; parameters documented match the signature.
numpydoc_validation_checks = {"GL08", "PR01", "PR02", "PR03", "PR06", "RT03", "SA04", "YD01"}
numpydoc_validation_exclude = {r"\.__init__$"}  # the class docstring documents the parameters
rst_prolog = ".. |SHAP| replace:: \\|SHAP\\|"  # "mean |SHAP|" in docstrings is text, not a substitution

myst_heading_anchors = 3
suppress_warnings = ["myst.xref_missing"]  # the guide links repository files (benchmarks/, tests/) by path

sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "gallery",
    "filename_pattern": r"/plot_",
    "ignore_pattern": r"importance_analysis\.py",  # a long study script (python examples/importance_analysis.py)
    "write_computation_times": False,
    "download_all_examples": False,
    "remove_config_comments": True,
}

html_theme = "alabaster"
html_title = f"melagbm {release}"
html_static_path: list[str] = []
