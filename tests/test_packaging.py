"""Set-up files agree with each other, and every notebook pair is in sync."""
from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ;]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_environment_yml_names_the_same_packages_as_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {_name(r) for r in project["dependencies"]}
    for extra in project["optional-dependencies"].values():
        declared |= {_name(r) for r in extra}
    lines = (ROOT / "environment.yml").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "- pip:")
    conda = {_name(line.strip()[2:]) for line in lines[start + 1 :] if line.strip().startswith("- ")}
    assert conda == declared, f"only in environment.yml: {conda - declared}; only in pyproject.toml: {declared - conda}"


def test_constraints_pin_every_declared_package():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pinned = {_name(line) for line in (ROOT / "constraints.txt").read_text().splitlines() if "==" in line}
    declared = {_name(r) for r in project["dependencies"]}
    for extra in project["optional-dependencies"].values():
        declared |= {_name(r) for r in extra}
    assert declared <= pinned, f"not pinned in constraints.txt: {declared - pinned}"


def _pairs():
    for folder, pattern in (("chapters", "[0-9]*.py"), ("solutions", "ex*.py"), ("exercises", "ex*.py")):
        for py in sorted((ROOT / folder).glob(pattern)):
            yield pytest.param(py, id=f"{folder}/{py.name}")


@pytest.mark.parametrize("py", list(_pairs()))
def test_notebook_pair_in_sync(py: Path):
    """A paired .ipynb (made by ./course or saved from JupyterLab) has the same cells as its .py."""
    jupytext = pytest.importorskip("jupytext")
    text_version = jupytext.read(py)
    assert text_version.cells, f"{py.name} has no cells"
    ipynb = py.with_suffix(".ipynb")
    if not ipynb.exists():
        pytest.skip(f"{ipynb.name} not generated yet (./course creates it)")
    notebook = jupytext.read(ipynb)
    def sources(nb):
        return [(c.cell_type, c.source.strip()) for c in nb.cells]
    assert sources(notebook) == sources(text_version), (
        f"{ipynb.name} and {py.name} differ: run `jupytext --sync {py.relative_to(ROOT)}` (the newer one wins)")
