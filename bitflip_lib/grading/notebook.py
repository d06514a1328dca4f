"""Reading a student's notebook and loading only its graded cells into a fresh namespace.

Exercise notebooks are jupytext percent-format ``.py`` files, paired with an ``.ipynb`` that
JupyterLab edits. Cells that define what is graded carry the cell tag ``graded``; in the
``.py`` form their header line reads ``# %% tags=["graded"]``. Only those cells are executed
when grading, so the experiment cells (which may train for a while) never run.
"""
from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path

from bitflip_lib.grading.timeout import time_limit

GRADED_TAG = "graded"
_CELL_HEADER = re.compile(r"^# %%(?P<rest>.*)$")
_TAGS = re.compile(r"tags\s*=\s*(\[[^\]]*\])")


class LoadError(Exception):
    """The graded cells could not be read or executed; the message says why."""


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


def _py_cells(text: str) -> list[tuple[list[str], str, str]]:
    """Split a percent-format script into ``(tags, cell_type, source)`` triples."""
    cells: list[tuple[list[str], str, list[str]]] = []
    tags: list[str] = []
    kind = "code"
    lines: list[str] = []
    started = False
    for line in text.splitlines():
        header = _CELL_HEADER.match(line)
        if header:
            if started:
                cells.append((tags, kind, lines))
            rest = header.group("rest")
            kind = "markdown" if "[markdown]" in rest or "[md]" in rest else "code"
            found = _TAGS.search(rest)
            try:
                tags = list(json.loads(found.group(1))) if found else []
            except json.JSONDecodeError:
                tags = []
            lines, started = [], True
        elif started:
            lines.append(line)
    if started:
        cells.append((tags, kind, lines))
    return [(t, k, "\n".join(src)) for t, k, src in cells]


def graded_sources(path: str | Path) -> list[str]:
    """Source code of the cells tagged ``graded`` in a notebook (``.py`` or ``.ipynb``)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise LoadError(f"cannot read {path}: {err}") from err
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
    else:
        sources = [src for tags, kind, src in _py_cells(text) if kind == "code" and GRADED_TAG in tags]
    if not sources:
        raise LoadError(f"{path} has no cell tagged '{GRADED_TAG}': did a cell lose its tag? Compare with the original notebook")
    return sources


def _strip_magics(source: str) -> str:
    """Drop IPython magics and shell escapes, which plain Python cannot run."""
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())


def load_graded(path: str | Path, timeout: float = 60.0) -> dict:
    """Execute the graded cells of a notebook in a fresh namespace and return that namespace.

    Printed output is swallowed. A cell that raises, or runs longer than ``timeout`` seconds,
    gives a :class:`LoadError` naming the cell.
    """
    path = Path(path)
    namespace: dict = {"__name__": f"graded_{path.stem}"}
    for number, source in enumerate(graded_sources(path), start=1):
        try:
            code = compile(_strip_magics(source), f"{path.name} (graded cell {number})", "exec")
        except SyntaxError as err:
            raise LoadError(f"graded cell {number} of {path.name} has a syntax error: {err}") from err
        try:
            with time_limit(timeout), contextlib.redirect_stdout(io.StringIO()):
                exec(code, namespace)  # noqa: S102 - running the student's own notebook is the point
        except Exception as err:  # noqa: BLE001 - every failure becomes a readable message
            raise LoadError(f"graded cell {number} of {path.name} raised {type(err).__name__}: {err}") from err
    return namespace
