"""The grading package imports itself without a circle (issue 28, item 8).

Every import counts, at module level or inside a function: the circle notebook -> report ->
sandbox -> notebook used to be held apart by imports inside functions. Shared types live in
``model``; what students call is re-exported by the package (``bitflip_lib.grading``), which no
module of the package imports.
"""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "bitflip_lib" / "grading"
MODULES = {p.stem for p in PACKAGE.glob("*.py")}


def edges(path: Path) -> set[str]:
    """The package's modules ``path`` imports ('__init__' for the package itself)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "bitflip_lib.grading":
                for alias in node.names:
                    found.add(alias.name if alias.name in MODULES else "__init__")
            elif node.module.startswith("bitflip_lib.grading."):
                found.add(node.module.split(".")[2])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "bitflip_lib.grading":
                    found.add("__init__")
                elif alias.name.startswith("bitflip_lib.grading."):
                    found.add(alias.name.split(".")[2])
    return found


def graph() -> dict[str, set[str]]:
    return {p.stem: edges(p) - {p.stem} for p in PACKAGE.glob("*.py")}


def cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        state[node] = 2
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_no_import_circle_in_the_grading_package():
    assert cycle(graph()) is None, " -> ".join(cycle(graph()))


def test_no_module_of_the_package_imports_the_package_itself():
    importers = sorted(name for name, targets in graph().items() if "__init__" in targets and name != "__main__")
    assert importers == [], importers


def test_the_check_sees_a_circle():
    assert cycle({"notebook": {"report"}, "report": {"sandbox"}, "sandbox": {"notebook"}}) == \
        ["notebook", "report", "sandbox", "notebook"]
    assert cycle({"a": {"b"}, "b": set()}) is None


def test_the_exercises_use_only_the_public_helpers():
    """An exercise imports what it needs from ``bitflip_lib.grading``, never a grader's internals."""
    root = PACKAGE.parents[1]
    for folder in ("exercises", "solutions"):
        for path in (root / folder).glob("ex*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("bitflip_lib.grading"):
                    assert node.module == "bitflip_lib.grading", f"{path.name} imports {node.module}"
