"""Reading a student's notebook and loading only its graded cells into a fresh namespace.

Exercise notebooks are jupytext percent-format ``.py`` files, paired with an ``.ipynb`` that
JupyterLab edits. Cells that define what is graded carry the cell tag ``graded``; in the
``.py`` form their header line reads ``# %% tags=["graded"]``. Only those cells are executed
when grading, so the experiment cells (which may train for a while) never run.

Line numbers in error messages are those of the ``.py`` file the student edits: a cell is
compiled at its place in the file. A graded ``.ipynb`` uses its paired ``.py``'s line numbers
when the two hold the same graded cells, else lines counted within each cell.
"""
from __future__ import annotations

import contextlib
import io
import json
import linecache
import os
import re
from dataclasses import dataclass
from pathlib import Path

from bitflip_lib.grading.report import STUDENT_FILES, where
from bitflip_lib.grading.timeout import time_limit

GRADED_TAG = "graded"
_CELL_HEADER = re.compile(r"^# %%(?P<rest>.*)$")
_TAGS = re.compile(r"tags\s*=\s*(\[[^\]]*\])")


class LoadError(Exception):
    """The graded cells could not be read or executed; the message says why."""


@dataclass(frozen=True)
class GradedCell:
    """One graded cell: its code, the file name its errors quote, and the line it starts on."""

    source: str
    filename: str
    first_line: int = 1


def notebook_source(directory: str | Path, exercise: str) -> Path:
    """The file to grade for ``exercise`` in ``directory``: the ``.ipynb`` if it exists and is
    at least as new as the ``.py``, else the ``.py``."""
    directory = Path(directory)
    py, ipynb = directory / f"{exercise}.py", directory / f"{exercise}.ipynb"
    if ipynb.exists() and (not py.exists() or ipynb.stat().st_mtime >= py.stat().st_mtime):
        return ipynb
    if py.exists():
        return py
    raise LoadError(f"no notebook for {exercise} in {directory}: expected {py.name} or {ipynb.name}")


def _py_cells_at(text: str) -> list[tuple[list[str], str, str, int]]:
    """Split a percent-format script into ``(tags, cell_type, source, first_line)`` tuples
    (``first_line``: the file's line number of the cell's first source line, from 1)."""
    cells: list[tuple[list[str], str, list[str], int]] = []
    tags: list[str] = []
    kind = "code"
    lines: list[str] = []
    first = 1
    started = False
    for number, line in enumerate(text.splitlines(), start=1):
        header = _CELL_HEADER.match(line)
        if header:
            if started:
                cells.append((tags, kind, lines, first))
            rest = header.group("rest")
            kind = "markdown" if "[markdown]" in rest or "[md]" in rest else "code"
            found = _TAGS.search(rest)
            try:
                tags = list(json.loads(found.group(1))) if found else []
            except json.JSONDecodeError:
                tags = []
            lines, started, first = [], True, number + 1
        elif started:
            lines.append(line)
    if started:
        cells.append((tags, kind, lines, first))
    return [(t, k, "\n".join(src), at) for t, k, src, at in cells]


def _py_cells(text: str) -> list[tuple[list[str], str, str]]:
    """Split a percent-format script into ``(tags, cell_type, source)`` triples."""
    return [(t, k, src) for t, k, src, _ in _py_cells_at(text)]


def _shown_path(path: Path) -> str:
    """``path`` relative to the working directory when it lies below it (as the student types it)."""
    try:
        return os.path.relpath(path) if Path(path).resolve().is_relative_to(Path.cwd().resolve()) else str(path)
    except (OSError, ValueError):
        return str(path)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as err:
        raise LoadError(f"cannot read {path}: {err}") from err


def graded_cells(path: str | Path) -> list[GradedCell]:
    """The cells tagged ``graded`` in a notebook (``.py`` or ``.ipynb``), with where they start."""
    path = Path(path)
    text = _read(path)
    if path.suffix == ".ipynb":
        try:
            cells = json.loads(text)["cells"]
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            raise LoadError(f"{path} is not a readable notebook ({err}); regenerate it with `jupytext --to ipynb`") from err
        sources = []
        for cell in cells:
            tags = cell.get("metadata", {}).get("tags", [])
            if cell.get("cell_type") == "code" and GRADED_TAG in tags:
                src = cell.get("source", "")
                sources.append("".join(src) if isinstance(src, list) else src)
        found = _paired_py(path, sources)
        if found is None:
            found = [GradedCell(src, f"{_shown_path(path)} (graded cell {i})") for i, src in enumerate(sources, start=1)]
    else:
        shown = _shown_path(path)
        found = [GradedCell(src, shown, at) for tags, kind, src, at in _py_cells_at(text) if kind == "code" and GRADED_TAG in tags]
    if not found:
        raise LoadError(f"{path} has no cell tagged '{GRADED_TAG}': did a cell lose its tag? Compare with the original notebook")
    return found


def _paired_py(ipynb: Path, sources: list[str]) -> list[GradedCell] | None:
    """The graded cells at their lines in the ``.py`` paired with ``ipynb``, if it holds the same code."""
    py = ipynb.with_suffix(".py")
    try:
        cells = [c for c in graded_cells(py)] if py.exists() else []
    except LoadError:
        return None
    if len(cells) != len(sources) or any(c.source.rstrip() != s.rstrip() for c, s in zip(cells, sources)):
        return None
    return [GradedCell(s, c.filename, c.first_line) for c, s in zip(cells, sources)]


def graded_sources(path: str | Path) -> list[str]:
    """Source code of the cells tagged ``graded`` in a notebook (``.py`` or ``.ipynb``)."""
    return [cell.source for cell in graded_cells(path)]


def _strip_magics(source: str) -> str:
    """Drop IPython magics and shell escapes, which plain Python cannot run (lines keep their numbers)."""
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())


def _compile(cell: GradedCell, number: int):
    # Blank lines in front put the cell's code at its own lines of the file the student edits.
    text = "\n" * (cell.first_line - 1) + _strip_magics(cell.source) + "\n"
    try:
        code = compile(text, cell.filename, "exec")
    except SyntaxError as err:
        line = f": {err.text.strip()}" if err.text and err.text.strip() else ""
        raise LoadError(f"syntax error at {cell.filename}, line {err.lineno} (graded cell {number}): {err.msg}{line}") from None
    lines = text.splitlines(keepends=True)
    linecache.cache[cell.filename] = (len(text), None, lines, cell.filename)  # tracebacks quote what ran
    STUDENT_FILES.add(cell.filename)
    return code


def load_graded(path: str | Path, timeout: float | None = 60.0) -> dict:
    """Execute the graded cells of a notebook in a fresh namespace and return that namespace.

    Printed output is swallowed. A cell that raises (``SystemExit`` included), or runs longer
    than ``timeout`` seconds (``None``: no limit here; the grader limits it from outside), gives a
    :class:`LoadError` naming the cell and its line.
    """
    from bitflip_lib.grading.sandbox import in_child

    path = Path(path)
    namespace: dict = {"__name__": f"graded_{path.stem}"}
    for number, cell in enumerate(graded_cells(path), start=1):
        code = _compile(cell, number)
        try:
            with time_limit(timeout), contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                exec(code, namespace)  # noqa: S102 - running the student's own notebook is the point
        except KeyboardInterrupt as err:
            if not in_child():
                raise  # the user's Ctrl-C
            raise LoadError(_cell_failed(cell, number, err)) from None
        except BaseException as err:  # noqa: BLE001 - every failure becomes a readable message
            raise LoadError(_cell_failed(cell, number, err)) from err
    return namespace


def _cell_failed(cell: GradedCell, number: int, err: BaseException) -> str:
    """``graded cell 2 raised ValueError: ... at exercises/ex04_polyak.py, line 57: <code>``."""
    at = where(err)
    cell_name = f"graded cell {number}" if at else f"graded cell {number} ({cell.filename}, from line {cell.first_line})"
    if isinstance(err, SystemExit):
        call = "sys.exit()" if err.code is None else f"sys.exit({err.code!r})"
        return f"{cell_name} called {call}{at}: graded cells must only define things, not end the program"
    text = f": {err}" if str(err) else ""
    return f"{cell_name} raised {type(err).__name__}{text}{at}"
