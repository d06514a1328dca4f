"""The library's folders are its layers: every import goes to the same layer or one above it.

Top to bottom (README, "The library and the command line"): run time, the algorithm and the
maths of chapters 1-2, the generation of chapters 8-9, the lab tooling, diagnosis, the notebook UI, the
graders, and the entry points. A module that imported from a layer below its own would tie the
core to what is built on it (a trainer that knows the graders, say).
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "bitflip_lib"
TOP_LEVEL = {"env", "replay", "her", "networks", "dqn", "config", "trainer", "theory", "tabular"}
LAYERS = ["runtime", "algorithm", "generation", "lab", "diagnosis", "ui", "grading", "entry"]


def layer(module: str) -> str:
    head = module.split(".")[0]
    if head == "_version":
        return "runtime"  # a constant every layer may read
    if head in TOP_LEVEL:
        return "algorithm"
    if head in ("cli", "options", "release", "__main__", "__init__"):
        return "entry"
    return head


def imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("bitflip_lib."):
            found.append(node.module.removeprefix("bitflip_lib."))
        elif isinstance(node, ast.ImportFrom) and node.module == "bitflip_lib":
            found += [alias.name for alias in node.names if (PACKAGE / f"{alias.name}.py").exists()
                      or (PACKAGE / alias.name).is_dir()]
        elif isinstance(node, ast.Import):
            found += [a.name.removeprefix("bitflip_lib.") for a in node.names if a.name.startswith("bitflip_lib.")]
    return found


MODULES = sorted(p for p in PACKAGE.rglob("*.py"))


def test_every_module_belongs_to_a_layer():
    for path in MODULES:
        module = str(path.relative_to(PACKAGE))[:-3].replace("/", ".")
        assert layer(module) in LAYERS, f"{module} is in no layer of the README's table"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_go_to_the_same_layer_or_above(path):
    module = str(path.relative_to(PACKAGE))[:-3].replace("/", ".")
    own = LAYERS.index(layer(module))
    below = [m for m in imports(path) if LAYERS.index(layer(m)) > own]
    assert not below, f"{module} ({layer(module)}) imports from layers below it: {below}"


def names_from_the_package(path: Path) -> list[str]:
    """Names a module imports from ``bitflip_lib`` itself that are not modules or folders of it."""
    tree = ast.parse(path.read_text())
    return [alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module == "bitflip_lib"
            for alias in node.names
            if not ((PACKAGE / f"{alias.name}.py").exists() or (PACKAGE / alias.name).is_dir())]


def test_no_module_imports_the_package_it_belongs_to():
    """``from bitflip_lib import __version__`` in a module the package imports is an import circle
    that works only while the name is set before that import; the package's names come from
    the modules that define them."""
    found = {str(p.relative_to(PACKAGE)): names_from_the_package(p) for p in MODULES if p.name != "__init__.py"}
    assert not {k: v for k, v in found.items() if v}


def test_the_package_check_sees_an_import_of_the_package(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("from bitflip_lib import __version__, dqn\n")
    assert names_from_the_package(module) == ["__version__"]


def test_the_check_sees_a_layer_violation(tmp_path):
    # The test above must be able to fail: a trainer that imported the graders would be caught.
    fake = tmp_path / "trainer.py"
    fake.write_text("from bitflip_lib.grading.plugged import train_with\n")
    assert [m for m in imports(fake) if LAYERS.index(layer(m)) > LAYERS.index("algorithm")] == ["grading.plugged"]


def names_imported_by_the_course() -> dict[str, set[str]]:
    """``{module: names}`` the chapters, exercises and solutions import from the library."""
    root = PACKAGE.parent
    files = [*root.glob("chapters/*.py"), *root.glob("exercises/*.py"), *root.glob("solutions/*.py")]
    found: dict[str, set[str]] = {}
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "bitflip_lib":
                found.setdefault(node.module, set()).update(alias.name for alias in node.names)
    return found


def test_every_module_the_course_imports_names_from_declares_them_public():
    """The public API is what ``__all__`` lists: every name a chapter, exercise or solution
    imports from a library module is in that module's ``__all__`` (importing a submodule from a
    package, ``from bitflip_lib.ui import diagrams``, needs none)."""
    import importlib

    problems = []
    for module, names in sorted(names_imported_by_the_course().items()):
        path = PACKAGE.parent / (module.replace(".", "/") + ".py")
        package = PACKAGE.parent / module.replace(".", "/")
        names = {n for n in names if not ((package / f"{n}.py").exists() or (package / n).is_dir())}
        if not names:
            continue
        public = getattr(importlib.import_module(module), "__all__", None)
        if public is None:
            problems.append(f"{module} has no __all__ ({path.name if path.exists() else 'package'})")
        elif missing := sorted(names - set(public)):
            problems.append(f"{module}: imported but not in __all__: {missing}")
    assert not problems, "\n".join(problems)
    assert len(names_imported_by_the_course()) > 10  # the scan found the course's imports
