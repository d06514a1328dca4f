"""Sphinx configuration of the course's website (built by `./course book`; see book/build.py).

The chapters and exercises are read straight from their jupytext percent-format .py files
(book/chapters and book/exercises are links to the course's folders). Chapters are executed once
per build; a cell that raises, an assert included, stops the build. Every browser-side library is
served from the build itself (book/assets.py): the site loads nothing from another host.
"""
from __future__ import annotations

import os
import sys
from datetime import date
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import course_book  # noqa: E402  (book/course_book.py, found through the path above)

import bitflip_lib  # noqa: E402

project = "Learning from sparse rewards, one bit at a time"
author = "the course's authors"
copyright = f"{date.today().year}, {author}"
version = release = bitflip_lib.__version__
course_book_mode = course_book.mode()

extensions = ["myst_nb", "sphinx.ext.mathjax", "course_book"]
root_doc = "index"
include_patterns = [
    "index.md", "exercises.md", "references.md",
    "chapters/[0-9]*.py", "chapters/glossary.md",
    "exercises/ex[0-9]*.py",
    "results/README.md",
]
exclude_patterns = ["**/.ipynb_checkpoints", "_build"]
suppress_warnings = ["myst.header"]  # chapters' sections start at "##" under the "#" title, as in JupyterLab

# Notebooks: the percent-format .py files, read as JupyterLab reads them (course_book.reads wraps
# jupytext.reads); exercises are shown, not run (their stubs raise until a student fills them in).
nb_custom_formats = {".py": ["course_book.reads", {}]}
# book/build.py executes the chapters (in parallel) into this cache first; myst-nb then reads the
# outputs from it. A notebook missing from the cache is executed here, and fails the build the same way.
nb_execution_mode = os.environ.get("BITFLIP_BOOK_EXECUTE", "cache")
nb_execution_cache_path = os.environ.get("BITFLIP_BOOK_CACHE", str(HERE.parent / "build" / "book" / "jupyter_cache"))
nb_execution_excludepatterns = ["exercises/*"]
nb_execution_timeout = 900  # per cell, as the test suite allows
nb_execution_raise_on_error = True  # a failing cell (an assert included) fails the build
nb_execution_allow_errors = False
nb_execution_show_tb = True
nb_merge_streams = True
nb_render_markdown_format = "myst"  # display(Markdown(...)) outputs: tables and $maths$ as in JupyterLab
# The widget embedder and require.js, from _static (book/assets.py); the embedder bundles the base
# and control widgets, the only ones the chapters use (it would ask a CDN for any other kind, which
# tests/test_site.py would catch).
nb_ipywidgets_js = {"require-config.js": {}, "vendor/widgets/require.js": {}, "vendor/widgets/embed-amd.js": {}}

myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist", "html_admonition"]
myst_heading_anchors = 3
myst_dmath_double_inline = True  # $$...$$ inside a paragraph is display maths, as JupyterLab renders it

# MathJax 3 from the npm package, copied into the build (no CDN).
mathjax_path = "vendor/mathjax/tex-chtml.js"

html_theme = "sphinx_book_theme"
html_title = "Sparse rewards, one bit at a time"
html_static_path = ["_static", os.environ.get("BITFLIP_BOOK_VENDOR", str(HERE.parent / "build" / "book" / "vendor-root"))]
html_css_files = ["course.css"]
html_js_files = ["course.js"]
html_last_updated_fmt = None
html_show_sourcelink = False
html_copy_source = False
html_theme_options = {
    "home_page_in_toc": True,
    "show_navbar_depth": 1,
    "use_download_button": False,  # each notebook page has its own download link (course_book)
    "use_fullscreen_button": False,
    "use_repository_button": False,
    "extra_footer": (f"<p>Version {release}. Notebook outputs come from a <strong>{course_book_mode}-mode</strong> "
                     "run of each chapter, made when this site was built.</p>"),
}
