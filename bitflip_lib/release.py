"""What a released copy of the course carries: its version, its install line, its stored results.

The version lives in one place, ``bitflip_lib/_version.py`` (pyproject.toml reads it from there; the
package re-exports it as ``bitflip_lib.__version__``).
A notebook opened outside the course folder (a downloaded chapter, Colab, any hosted Jupyter)
starts with :data:`FIRST_CELL`: it checks that the library is importable and, if it is not, says
the one pinned line that installs it. tests/test_release.py checks that every notebook's first
code cell is that text, so the line always names the current version.

The stored runs that chapters 7 and 7b read (``results/`` in the course folder) also ship inside
the wheel, as ``bitflip_lib/stored_results``; :func:`results_dir` finds whichever is there.
"""
from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from bitflip_lib._version import __version__

__all__ = ["DISTRIBUTION", "FIRST_CELL", "INSTALL_LINE", "PACKAGED_RESULTS", "packaged_results", "results_dir"]

DISTRIBUTION = "bitflip-course"
INSTALL_LINE = f"%pip install {DISTRIBUTION}=={__version__}"
"""The one line that installs this release into a notebook's kernel."""

FIRST_CELL = f'''\
# The course library. Outside the course folder (Colab, a downloaded notebook), install it with
#   {INSTALL_LINE}
try:
    import bitflip_lib
except ModuleNotFoundError:
    raise ModuleNotFoundError(
        "bitflip_lib is missing: run `{INSTALL_LINE}`, then rerun this cell"
    ) from None'''
"""The first code cell of every notebook (self-contained: it runs before the library is importable)."""

PACKAGED_RESULTS = "stored_results"


def packaged_results() -> Path | None:
    """The stored runs inside the installed package, or None (a source checkout has none there)."""
    folder = resources.files("bitflip_lib") / PACKAGED_RESULTS
    return Path(str(folder)) if folder.is_dir() else None


def results_dir(start: str | os.PathLike | None = None) -> Path:
    """The stored runs: ``results/`` of the course folder at or above ``start`` (default: the
    working directory), else the copy shipped in the installed package.

    Raises FileNotFoundError, saying what to do, when neither is there.
    """
    here = Path(start) if start is not None else Path.cwd()
    for folder in (here, *here.parents):
        if (folder / "results" / "default").is_dir():
            return folder / "results"
    packaged = packaged_results()
    if packaged is not None and (packaged / "default").is_dir():
        return packaged
    raise FileNotFoundError(
        f"no stored results: open this notebook inside the course folder, or install the release "
        f"({INSTALL_LINE}), which ships them")
