"""The website build keeps nbval's guarantee: a cell that raises, an assert included, fails it.

``./course test`` no longer runs the chapters under nbval; book/build.py executes each chapter
once, and these tests check that its executor fails on an error or a failed assert (with the
traceback), that a notebook cannot switch that off in its metadata, and that the adjustments the
site makes to a notebook's Markdown (hidden answers, links) keep the text.
"""
from __future__ import annotations

import sys
from pathlib import Path

import jupytext
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "book"))

import assets  # noqa: E402  (book/assets.py)
import build  # noqa: E402  (book/build.py)
import course_book  # noqa: E402  (book/course_book.py)

pytest.importorskip("jupyter_cache", reason="the website's tools are not installed (./course book installs them)")

HEADER = "# ---\n# jupyter:\n#   kernelspec:\n#     display_name: Python 3 (ipykernel)\n#     language: python\n#     name: python3\n# ---\n"


def _notebook(tmp_path: Path, body: str, metadata: str = "") -> Path:
    path = tmp_path / "nb.py"
    path.write_text(HEADER.replace("#   kernelspec:", metadata + "#   kernelspec:") + body)
    return path


def test_a_failed_assert_fails_the_notebook_with_its_traceback(tmp_path):
    path = _notebook(tmp_path, "\n# %%\nx = 1\n\n# %%\nassert x == 2, 'x should be 2'\n\n# %%\nprint('not reached')\n")
    _, executed, _, error = build._execute(str(path))
    assert executed is None
    assert "AssertionError" in error and "x should be 2" in error


def test_an_exception_fails_the_notebook(tmp_path):
    path = _notebook(tmp_path, "\n# %%\nraise ValueError('broken cell')\n")
    _, executed, _, error = build._execute(str(path))
    assert executed is None and "ValueError" in error and "broken cell" in error


def test_a_passing_notebook_comes_back_with_its_outputs(tmp_path):
    path = _notebook(tmp_path, "\n# %%\nimport os\nprint(os.getcwd())\n")
    _, executed, _, error = build._execute(str(path))
    assert error is None
    assert executed.cells[0].outputs[0]["text"].strip() == str(tmp_path)  # run in the notebook's folder


def test_the_build_stops_when_a_chapter_fails(tmp_path, monkeypatch):
    good = _notebook(tmp_path, "\n# %%\nprint('fine')\n")
    bad = tmp_path / "bad.py"
    bad.write_text(HEADER + "\n# %%\nassert 1 + 1 == 3\n")
    monkeypatch.setattr(build, "chapters", lambda: [good, bad])
    with pytest.raises(SystemExit, match="1 chapter.*failed: bad.py"):
        build.execute(tmp_path / "cache", jobs=2)


def test_a_notebook_cannot_allow_errors_in_its_metadata(tmp_path, monkeypatch):
    path = _notebook(tmp_path, "\n# %%\nraise ValueError\n", metadata="#   execution:\n#     allow_errors: true\n")
    assert jupytext.read(path).metadata["execution"]["allow_errors"] is True
    monkeypatch.setattr(build, "ROOT", tmp_path)
    with pytest.raises(SystemExit, match="allows errors"):
        build.check_errors_not_allowed([path])


def test_hidden_answers_become_blocks_whose_text_is_markdown():
    text = "Why? <details><summary>Answer</summary>Because $x^2$ is **even**.</details> Next."
    opened = course_book.open_details(text)
    assert "<details>\n<summary>Answer</summary>\n\nBecause $x^2$ is **even**.\n\n</details>" in opened
    assert opened.startswith("Why?") and opened.rstrip().endswith("Next.")


def test_inline_maths_broken_over_lines_is_joined_and_code_is_left_alone():
    text = "* Polyak, $\\bar\\theta \\leftarrow (1-\\tau)\\bar\\theta\n  + \\tau\\theta$, lags; `a $b\nc$`; $x$ and $y$."
    joined = course_book.join_inline_math_lines(text)
    assert "$\\bar\\theta \\leftarrow (1-\\tau)\\bar\\theta + \\tau\\theta$" in joined
    assert "`a $b\nc$`" in joined and "$x$ and $y$." in joined
    assert course_book.join_inline_math_lines("$$a\n+ b$$") == "$$a\n+ b$$"


def test_links_to_notebooks_point_at_their_pages():
    notebook = course_book.reads(HEADER + "\n# %% [markdown]\n# See [the appendix](07b_beyond_table1.ipynb#part-2).\n")
    assert notebook.cells[0].source == "See [the appendix](07b_beyond_table1.py#part-2)."


def test_every_chapter_hidden_answer_is_opened():
    for path in sorted((ROOT / "chapters").glob("[0-9]*.py")):
        notebook = course_book.reads(path.read_text())
        for cell in notebook.cells:
            if cell.cell_type == "markdown":
                assert not course_book.DETAILS.search(cell.source.replace("<details>\n<summary>", "")), path.name


def test_the_references_page_has_every_chapter():
    references = course_book.chapter_references()
    for path in sorted((ROOT / "chapters").glob("[0-9]*.py")):
        assert f"(chapters/{path.stem}.py)" in references, f"{path.name} has no References section"


def test_the_browser_libraries_are_pinned_with_their_checksums():
    for asset in assets.ASSETS:
        assert asset.version.count(".") == 2 and asset.integrity.startswith("sha512-") and len(asset.integrity) == 95


def test_a_tampered_tarball_is_refused(tmp_path):
    asset = assets.ASSETS[1]
    (tmp_path / asset.tarball).write_bytes(b"not the package")
    with pytest.raises(SystemExit, match="refused"):
        assets.fetch(asset, cache=tmp_path)
    assert not (tmp_path / asset.tarball).exists()
