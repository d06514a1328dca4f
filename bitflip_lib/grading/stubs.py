"""One source for both notebooks: exercises are generated from the solutions.

In ``solutions/exNN_*.py`` every part a student writes sits between two marker lines::

    ### BEGIN SOLUTION HINT: flip with 1 - bit, only where the agent is still active
    # HINT: torch.where(mask, a, b) picks a where mask is True   (optional extra hint lines)
    ...reference code...
    ### END SOLUTION

:func:`make_stub` replaces each such block (markers included) by one line at the BEGIN
marker's indentation, ``raise NotImplementedError("<hint>")``, where the hint is the text after
``HINT:`` on the BEGIN line joined with any ``# HINT:`` lines that directly follow it.

Hints are tiered: that hint is the *nudge* a student sees first. Optional ``# RECIPE:`` lines
right after the hint lines give the step-by-step *recipe*; the stub does not print it, but the
generated notebook holds it in a collapsed ``<details>`` cell after the code cell, opened only
by a student who asks for it (and the nudge says where it is).
"""
from __future__ import annotations

import json
import re
from pathlib import Path

BEGIN = re.compile(r"^(?P<indent>[ \t]*)### BEGIN SOLUTION(?:\s+HINT:\s*(?P<hint>.*?))?\s*$")
END = re.compile(r"^[ \t]*### END SOLUTION\s*$")
HINT_LINE = re.compile(r"^[ \t]*# HINT:\s*(?P<hint>.*?)\s*$")
RECIPE_LINE = re.compile(r"^[ \t]*# RECIPE:\s?(?P<step>.*?)\s*$")
CELL = re.compile(r"^# %%")
DEFINES = re.compile(r"^(?P<indent>[ \t]*)(?:def|class)\s+(?P<name>\w+)")
RECIPE_POINTER = " (stuck? open the recipe below this cell)"
DEFAULT_HINT = "write this part (see the docstring above), then run the check cell"
GENERATED_NOTE = (
    "# %% [markdown]\n"
    "# *Student version, generated from `solutions/{name}` by `python -m bitflip_lib.grading generate`.*\n"
    "# *Fill in every part that raises `NotImplementedError`, run the check cells, and grade from a\n"
    "# terminal with `bitflip grade {stem}`. Write each part yourself: while grading, the library's own\n"
    "# version of what you write is switched off (a function that calls it fails).*\n"
)


class MarkerError(ValueError):
    """Solution markers that do not pair up."""


def make_stub(source: str, name: str = "<solution>") -> str:
    """The student version of a solution notebook's text (see the module docstring)."""
    out: list[str] = []
    lines = source.splitlines(keepends=True)
    i = 0
    blocks = 0
    recipes: list[tuple[str, list[str]]] = []  # (where, steps) waiting for the end of their cell
    scope: list[tuple[int, str]] = []  # enclosing def/class names, for the recipe's title
    while i < len(lines):
        line = lines[i]
        if CELL.match(line) and recipes:
            out.append(_recipe_cell(recipes))
            recipes = []
        defines = DEFINES.match(line)
        if defines:
            depth = len(defines.group("indent"))
            scope = [(d, n) for d, n in scope if d < depth] + [(depth, defines.group("name"))]
        begin = BEGIN.match(line.rstrip("\r\n"))
        if END.match(line.rstrip("\r\n")):
            raise MarkerError(f"{name}:{i + 1}: '### END SOLUTION' without a matching BEGIN")
        if not begin:
            if "### BEGIN SOLUTION" in line:
                raise MarkerError(f"{name}:{i + 1}: malformed marker (write '### BEGIN SOLUTION' or '### BEGIN SOLUTION HINT: ...' on its own line)")
            out.append(line)
            i += 1
            continue
        indent = begin.group("indent")
        hints = [begin.group("hint")] if begin.group("hint") else []
        j = i + 1
        while j < len(lines) and HINT_LINE.match(lines[j]):
            hints.append(HINT_LINE.match(lines[j]).group("hint"))
            j += 1
        steps = []
        while j < len(lines) and RECIPE_LINE.match(lines[j]):
            steps.append(RECIPE_LINE.match(lines[j]).group("step"))
            j += 1
        while j < len(lines) and not END.match(lines[j].rstrip("\r\n")):
            if BEGIN.match(lines[j].rstrip("\r\n")):
                raise MarkerError(f"{name}:{j + 1}: nested '### BEGIN SOLUTION' (block opened at line {i + 1})")
            j += 1
        if j == len(lines):
            raise MarkerError(f"{name}:{i + 1}: '### BEGIN SOLUTION' is never closed by '### END SOLUTION'")
        hint = " ".join(h for h in hints if h) or DEFAULT_HINT
        if steps:
            hint += RECIPE_POINTER
            recipes.append((".".join(n for _, n in scope), steps))
        out.append(f"{indent}raise NotImplementedError({json.dumps(hint, ensure_ascii=False)})\n")
        blocks += 1
        i = j + 1
    if recipes:
        out.append(("\n" if out and out[-1].endswith("\n") else "\n\n") + _recipe_cell(recipes))
    if blocks == 0:
        raise MarkerError(f"{name}: no '### BEGIN SOLUTION' block: nothing for the student to write")
    return "".join(out)


def _recipe_cell(recipes: list[tuple[str, list[str]]]) -> str:
    """A markdown cell with one collapsed recipe per stub of the cell before it."""
    text = ["# %% [markdown]\n"]
    for where, steps in recipes:
        title = f"Recipe for <code>{where}</code>" if where else "Recipe"
        text.append(f"# <details><summary>{title} (open it only if the hint was not enough)</summary>\n#\n")
        text.extend(f"# {step}\n".replace("# \n", "#\n") for step in steps)
        text.append("#\n# </details>\n")
    return "".join(text) + "\n"


def _insert_note(stub: str, name: str) -> str:
    """Put the 'generated from' note right after the jupytext header (or at the top)."""
    note = GENERATED_NOTE.format(name=name, stem=Path(name).stem)
    lines = stub.splitlines(keepends=True)
    if lines and lines[0].startswith("# ---"):
        for idx in range(1, len(lines)):
            if lines[idx].startswith("# ---"):
                return "".join(lines[: idx + 1]) + "\n" + note + "".join(lines[idx + 1 :])
    return note + "\n" + stub


def exercise_text(solution_path: str | Path) -> str:
    """What ``exercises/<name>`` should contain for one solution file."""
    path = Path(solution_path)
    return _insert_note(make_stub(path.read_text(encoding="utf-8"), path.name), path.name)


def solution_files(solutions_dir: str | Path) -> list[Path]:
    """The exercise notebooks in a solutions folder: ``ex*.py``, sorted."""
    return sorted(Path(solutions_dir).glob("ex*.py"))


def generate(solutions_dir: str | Path = "solutions", exercises_dir: str | Path = "exercises", check_only: bool = False) -> list[Path]:
    """Write (or with ``check_only``, compare) every exercise generated from ``solutions_dir``.

    Returns the exercise paths that were written, or that differ when ``check_only`` is set.
    """
    solutions = solution_files(solutions_dir)
    if not solutions:
        raise FileNotFoundError(f"no ex*.py solution notebooks in {solutions_dir}")
    exercises_dir = Path(exercises_dir)
    exercises_dir.mkdir(parents=True, exist_ok=True)
    changed = []
    for path in solutions:
        target = exercises_dir / path.name
        text = exercise_text(path)
        current = target.read_text(encoding="utf-8") if target.exists() else None
        if current != text:
            changed.append(target)
            if not check_only:
                target.write_text(text, encoding="utf-8")
    return changed
