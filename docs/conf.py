import sys
from pathlib import Path

import numrope

sys.path.insert(0, str(Path(__file__).parent / "_ext"))  # numrope_cli: the command-line reference

project = "numrope"
author = "The numrope developers"
copyright = "2026, the numrope developers"
release = numrope.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "matplotlib.sphinxext.plot_directive",
    "myst_parser",
    "numrope_cli",
]
autosummary_generate = True
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
plot_include_source = False
plot_html_show_source_link = False
plot_html_show_formats = False
plot_formats = [("png", 100)]
exclude_patterns = ["_build", "_ext"]
html_theme = "alabaster"
nitpicky = False
