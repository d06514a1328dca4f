"""What the course's website adds to a plain myst-nb book (a small Sphinx extension, used by conf.py).

* ``reads``: the percent-format notebooks are read by jupytext, as in JupyterLab; two things are
  adjusted for the web: a hidden answer written on one line (``<details><summary>Answer</summary>
  text with $maths$</details>``) is opened into blocks so that its text is parsed as Markdown (its
  maths typeset, its ``code`` and **bold** rendered), inline maths broken over two lines is put
  on one (JupyterLab reads maths before Markdown, MyST after), and a link to ``NAME.ipynb`` points
  at that notebook's page.
* A note under each notebook page's title: which mode its outputs come from, a download link for
  the notebook, and the one command that opens it in JupyterLab.
* ``references.md`` gathers every chapter's reference list (each chapter stays the one source).
"""
from __future__ import annotations

import hashlib
import re
from pathlib import Path

import jupytext
from docutils import nodes
from sphinx.application import Sphinx

from bitflip_lib.release import DISTRIBUTION

ROOT = Path(__file__).resolve().parents[1]
DETAILS = re.compile(r"<details>\s*<summary>(.*?)</summary>(.*?)</details>", re.S)
IPYNB_LINK = re.compile(r"\]\(([\w./-]+)\.ipynb(#[^)]*)?\)")
NOTEBOOK_FOLDERS = ("chapters", "exercises")


def open_details(markdown: str) -> str:
    """Each ``<details>`` block split into HTML lines and Markdown blocks between them."""
    def block(match: re.Match) -> str:
        summary, body = match[1].strip(), match[2].strip()
        return f"\n\n<details>\n<summary>{summary}</summary>\n\n{body}\n\n</details>\n\n"
    return DETAILS.sub(block, markdown)


CODE = re.compile(r"(```.*?```|`(?:[^`\n]|\n(?!\s*\n))*`)", re.S)  # fenced blocks and code spans
INLINE_MATH = re.compile(r"(?<![\\$])\$(?!\$)([^$]+?)(?<![\\$])\$(?!\$)")


def join_inline_math_lines(markdown: str) -> str:
    """Inline maths that a line break splits, on one line.

    JupyterLab sets maths aside before it reads the Markdown; MyST reads the Markdown first, so a
    formula whose second line starts like a list item ("+ \\tau") would be cut in two.
    """
    def join(match: re.Match) -> str:
        return "$" + re.sub(r"\s*\n\s*", " ", match[1]) + "$" if "\n" in match[1] else match[0]
    parts = CODE.split(markdown)
    return "".join(part if i % 2 else INLINE_MATH.sub(join, part) for i, part in enumerate(parts))


def reads(text: str, **kwargs) -> "jupytext.NotebookNode":
    """A percent-format notebook as myst-nb should render it (see the module docstring)."""
    notebook = jupytext.reads(text, fmt="py:percent")
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            source = join_inline_math_lines(open_details(cell.source))
            cell.source = IPYNB_LINK.sub(r"](\1.py\2)", source)
    return notebook


def mode() -> str:
    """The mode the notebooks run in for this build: what bitflip_lib.quick_mode() reads."""
    from bitflip_lib import quick_mode
    return "quick" if quick_mode() else "full"


def _is_notebook(docname: str) -> bool:
    folder, _, name = docname.partition("/")
    return folder in NOTEBOOK_FOLDERS and (name[:1].isdigit() or name.startswith("ex"))


def _page_note(app: Sphinx, docname: str) -> nodes.Element:
    name = docname.rsplit("/", 1)[1]
    chapter = docname.startswith("chapters/")
    version = app.config.version
    if not chapter:
        outputs = ("This is the student version: its cells are shown, not run (they raise "
                   "<code>NotImplementedError</code> until you fill them in).")
    elif app.config.course_book_mode == "quick":
        outputs = ("The outputs below come from running this notebook in <strong>quick mode</strong> "
                   "(<code>BITFLIP_QUICK=1</code>: smaller budgets, the same checks). Run without it, "
                   "the notebook trains with the full budgets the text describes.")
    else:
        outputs = "The outputs below come from running this notebook in <strong>full mode</strong>."
    html = (
        f'<div class="admonition note course-page-note"><p class="admonition-title">Run this notebook</p>'
        f"<p>{outputs} Widgets show their last state here; they are live in JupyterLab.</p>"
        f'<p class="course-run-locally">In a clone of the course: <code>./course lab {docname}.ipynb</code>. '
        f'Or <a class="course-download" href="{name}.ipynb" download>download {name}.ipynb</a>, '
        f"<code>pip install {DISTRIBUTION}=={version}</code>, and open it in Jupyter.</p></div>")
    return nodes.raw("", html, format="html")


def add_page_note(app: Sphinx, doctree: nodes.document) -> None:
    docname = app.env.docname
    if not _is_notebook(docname):
        return
    section = next(iter(doctree.findall(nodes.section)), None)
    if section is None:
        return
    title = next(iter(section.findall(nodes.title)))
    section.insert(section.index(title) + 1, _page_note(app, docname))


WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def label_widgets(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    """Under each widget in a page's outputs: it shows its last state here, and is live in JupyterLab."""
    if not docname.startswith("chapters/"):
        return
    outputs = {node.parent for node in doctree.findall(nodes.raw) if WIDGET_VIEW in node.astext()}
    for output in outputs:
        note = nodes.raw("", f'<p class="course-widget-note">This widget shows its last state; it is live in '
                              f"JupyterLab (<code>./course lab {docname}.ipynb</code>).</p>", format="html")
        output.parent.insert(output.parent.index(output) + 1, note)


def write_notebooks(app: Sphinx, exception: Exception | None) -> None:
    """Each notebook page's .ipynb beside its HTML page (what the page's download link fetches)."""
    if exception is not None or app.builder.format != "html" or app.builder.name == "singlehtml":
        return
    for docname in app.env.found_docs:
        if _is_notebook(docname):
            source = Path(app.srcdir, docname + ".py")
            out = Path(app.outdir, docname + ".ipynb")
            out.parent.mkdir(parents=True, exist_ok=True)
            jupytext.write(jupytext.read(source), out, fmt="ipynb")


def chapter_references() -> str:
    """Every chapter's References section, under the chapter's title, as Markdown."""
    parts = []
    for path in sorted((ROOT / "chapters").glob("[0-9]*.py")):
        notebook = jupytext.read(path)
        markdown = "\n\n".join(c.source for c in notebook.cells if c.cell_type == "markdown")
        title = re.search(r"^# (.+)$", markdown, re.M)
        found = re.search(r"^## References\s*\n(.*?)(?=^## |\Z)", markdown, re.M | re.S)
        if title and found:
            parts.append(f"## {title[1].strip()}\n\n([the chapter](chapters/{path.stem}.py))\n\n{found[1].strip()}\n")
    if not parts:
        raise RuntimeError("no chapter has a '## References' section: the references page would be empty")
    return "\n".join(parts)


def fill_book_pages(app: Sphinx, docname: str, source: list[str]) -> None:
    """The book's own pages: the release's version, and the references gathered from the chapters."""
    if "/" in docname:
        return
    source[0] = source[0].replace("{{ course_version }}", app.config.version)
    if docname == "references":
        source[0] = source[0].replace("<!-- chapter references -->", chapter_references())


def setup(app: Sphinx) -> dict:
    app.add_config_value("course_book_mode", "quick", "env")
    # A change to this file changes how pages read: Sphinx then reads them all again.
    app.add_config_value("course_book_source", hashlib.sha1(Path(__file__).read_bytes()).hexdigest(), "env")
    app.connect("doctree-read", add_page_note)
    app.connect("source-read", fill_book_pages)
    app.connect("build-finished", write_notebooks)
    app.connect("doctree-resolved", label_widgets)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
