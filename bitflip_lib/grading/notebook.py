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

from bitflip_lib.grading.errors import STUDENT_FILES, first_line, where
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
    return newer_of(ipynb, py, f"no notebook for {exercise} in {directory}: expected {py.name} or {ipynb.name}")


def newer_of(ipynb: Path | None, py: Path | None, missing: str) -> Path:
    """The ``.ipynb`` if it exists and is at least as new as the ``.py``, else the ``.py``
    (JupyterLab saves the ``.ipynb``; a student editing the text form saves the ``.py``)."""
    has_ipynb = ipynb is not None and ipynb.exists()
    has_py = py is not None and py.exists()
    if has_ipynb and (not has_py or ipynb.stat().st_mtime >= py.stat().st_mtime):
        return ipynb
    if has_py:
        return py
    raise LoadError(missing)


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


MAX_NOTEBOOK_BYTES = 20 << 20
"""A notebook larger than this is not read (exercise notebooks are a few hundred kB with outputs)."""


def read_notebook_bytes(path: Path) -> bytes:
    """A notebook file's bytes; a LoadError for what is not a regular file, too large or unreadable."""
    try:
        if not path.is_file():
            raise LoadError(f"{path} is not a regular file")
        if path.stat().st_size > MAX_NOTEBOOK_BYTES:
            raise LoadError(f"{path} is not a notebook: it is larger than {MAX_NOTEBOOK_BYTES >> 20} MB")
        return path.read_bytes()
    except OSError as err:
        raise LoadError(f"cannot read {path}: {err}") from err


def _text(path: Path, data: bytes) -> str:
    """The notebook's text; binary content is not a notebook (and not the student's code raising)."""
    if b"\x00" in data:
        raise LoadError(f"{path} is not a notebook: it holds binary data (save the notebook again from JupyterLab)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise LoadError(f"{path} is not a notebook: it is not UTF-8 text (byte {err.start}); save the notebook again "
                        "from JupyterLab") from None


def _ipynb_sources(path: Path, text: str) -> list[str]:
    """The graded cells' code of an ``.ipynb``, checking its structure on the way."""
    fix = "save it again from JupyterLab, or regenerate it with `jupytext --to ipynb` from the .py"
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as err:
        raise LoadError(f"{path} is not a notebook: not valid JSON ({type(err).__name__}); {fix}") from None
    cells = data.get("cells") if isinstance(data, dict) else None
    if not isinstance(cells, list):
        raise LoadError(f"{path} is not a notebook: its 'cells' is not a list of cells; {fix}")
    sources = []
    for number, cell in enumerate(cells, start=1):
        if not isinstance(cell, dict):
            raise LoadError(f"{path} is not a notebook: cell {number} is not a cell object; {fix}")
        metadata = cell.get("metadata", {})
        tags = metadata.get("tags", []) if isinstance(metadata, dict) else []
        if cell.get("cell_type") == "code" and isinstance(tags, list) and GRADED_TAG in tags:
            src = cell.get("source", "")
            if isinstance(src, list) and all(isinstance(line, str) for line in src):
                src = "".join(src)
            if not isinstance(src, str):
                raise LoadError(f"{path} is not a notebook: the source of cell {number} is not text; {fix}")
            sources.append(src)
    return sources


def graded_cells(path: str | Path) -> list[GradedCell]:
    """The cells tagged ``graded`` in a notebook (``.py`` or ``.ipynb``), with where they start.

    A file that is not a notebook (binary, not UTF-8, an ``.ipynb`` that is not notebook JSON)
    is a :class:`LoadError` saying so.
    """
    path = Path(path)
    text = _text(path, read_notebook_bytes(path))
    return cells_of(path, text)


def cells_of(path: Path, text: str, shown: str | None = None) -> list[GradedCell]:
    """The graded cells of a notebook's ``text`` (``path`` says which kind; ``shown``: the name
    its error messages use, by default ``path`` relative to the working folder)."""
    shown = _shown_path(path) if shown is None else shown
    if path.suffix == ".ipynb":
        sources = _ipynb_sources(path, text)
        found = _paired_py(path, sources)
        if found is None:
            found = [GradedCell(src, f"{shown} (graded cell {i})") for i, src in enumerate(sources, start=1)]
    else:
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
    """Execute the graded cells of a notebook here, in a fresh namespace, and return it.

    For trusted notebooks only (the solutions, in tests): grading runs a student's cells in the
    student's process instead (:mod:`bitflip_lib.grading.worker`). Printed output is swallowed.
    A cell that raises (``SystemExit`` included), or runs longer than ``timeout`` seconds, gives
    a :class:`LoadError` naming the cell and its line.
    """
    path = Path(path)
    return exec_cells(graded_cells(path), f"graded_{path.stem}", timeout=timeout, interruptible=True)


def exec_cells(cells: list[GradedCell], module_name: str, timeout: float | None = None,
               interruptible: bool = False) -> dict:
    """Run ``cells`` in order in a fresh namespace; a failing cell is a :class:`LoadError`.

    ``interruptible``: a ``KeyboardInterrupt`` is the user's Ctrl-C and propagates (in the
    student's process it can only come from the student's code, so it is a load failure).
    """
    namespace: dict = {"__name__": module_name}
    for number, cell in enumerate(cells, start=1):
        code = _compile(cell, number)
        try:
            with time_limit(timeout), contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                exec(code, namespace)  # noqa: S102 - running the student's own notebook is the point
        except KeyboardInterrupt as err:
            if interruptible:
                raise
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
    text = first_line(str(err))
    return f"{cell_name} raised {type(err).__name__}" + (f": {text}" if text else "") + at
