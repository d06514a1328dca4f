"""Opening and saving a notebook in JupyterLab must not rewrite its versioned .py file.

JupyterLab writes the running kernel's spec into the notebook it saves; jupytext then writes that
into the paired .py header. So every header must name the kernel exactly as the installed
ipykernel does ("Python 3 (ipykernel)"), or the first autosave changes a file the student never
edited (and a later git pull fails). tests/test_browser.py checks the whole round trip.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from jupyter_client.kernelspec import KernelSpecManager

ROOT = Path(__file__).resolve().parents[1]
PAIRED = sorted(p for folder in ("chapters", "exercises", "solutions") for p in (ROOT / folder).glob("*.py")
                if p.read_text().startswith("# ---\n# jupyter:"))


def test_there_are_paired_notebooks():
    assert len(PAIRED) >= 10


@pytest.mark.parametrize("path", PAIRED, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_header_names_the_kernel_as_jupyterlab_will_save_it(path):
    spec = KernelSpecManager().get_kernel_spec("python3")
    header = path.read_text().split("# ---\n", 2)[1]
    kernelspec = re.search(r"#   kernelspec:\n#     display_name: (.*)\n#     language: (.*)\n#     name: (.*)\n", header)
    assert kernelspec, f"{path.name}: no kernelspec block in the jupytext header"
    assert kernelspec.groups() == (spec.display_name, spec.language, "python3"), (
        f"{path.name}: the header's kernelspec differs from the kernel JupyterLab will record; "
        f"set display_name: {spec.display_name}")
