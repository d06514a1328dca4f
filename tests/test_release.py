"""The release: one version, a first cell that names it, and a wheel that works outside the course folder.

The slow test builds the sdist and, from it, the wheel (``python -m build``), installs the wheel
into a fresh virtual environment in a temporary folder, and from a folder with no ``bitflip_lib/``
beside it runs chapter 1 (quick mode) and exercise 1 (the filled-in notebook, then the grader on
it and on the untouched stubs), and finds the stored runs that chapters 7 and 7b read. To stay
fast and offline, the fresh environment borrows the course environment's third-party packages
(torch, numpy, Jupyter) through a ``.pth`` line; ``bitflip_lib`` itself must come from the wheel,
which the test checks before running anything.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import tomllib
import venv
import zipfile
from pathlib import Path

import jupytext
import pytest

import bitflip_lib
from bitflip_lib.release import FIRST_CELL, INSTALL_LINE, packaged_results, results_dir

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted([*ROOT.glob("chapters/[0-9]*.py"), *ROOT.glob("exercises/ex[0-9]*.py"), *ROOT.glob("solutions/ex[0-9]*.py")])


def test_the_version_is_written_once():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in project["project"], "pyproject.toml must not write the version: it reads bitflip_lib/_version.py"
    assert project["project"]["dynamic"] == ["version"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "bitflip_lib._version.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+", bitflip_lib.__version__)
    written = [p.relative_to(ROOT) for p in (ROOT / "bitflip_lib").rglob("*.py")
               if re.search(r"^__version__\s*=", p.read_text(), re.MULTILINE)]
    assert written == [Path("bitflip_lib/_version.py")], written


def test_the_changelog_has_the_current_version():
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert f"## [{bitflip_lib.__version__}]" in changelog, f"CHANGELOG.md has no section for {bitflip_lib.__version__}"


def test_the_install_line_pins_the_current_version():
    assert INSTALL_LINE == f"%pip install bitflip-course=={bitflip_lib.__version__}"
    assert INSTALL_LINE in FIRST_CELL


def test_the_first_cell_fits_the_code_width():
    assert max(len(line) for line in FIRST_CELL.splitlines()) <= 100


def _run_first_cell(block_library: bool, tmp_path: Path) -> subprocess.CompletedProcess:
    """FIRST_CELL run by a fresh interpreter outside the course folder, the library hidden or not."""
    hide = "import sys; sys.modules['bitflip_lib'] = None\n" if block_library else ""
    script = tmp_path / "first_cell.py"
    script.write_text(hide + FIRST_CELL + "\nprint('library found')\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True)


def test_first_cell_says_the_pinned_install_line_when_the_library_is_missing(tmp_path):
    done = _run_first_cell(block_library=True, tmp_path=tmp_path)
    assert done.returncode != 0
    last_line = done.stderr.strip().splitlines()[-1]
    assert last_line == (f"ModuleNotFoundError: bitflip_lib is missing: run `{INSTALL_LINE}`, "
                         "then rerun this cell"), done.stderr
    assert "library found" not in done.stdout


def test_first_cell_is_silent_when_the_library_is_there(tmp_path):
    done = _run_first_cell(block_library=False, tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "library found\n" and done.stderr == ""


def _first_code_cell(path: Path) -> str:
    return next(c.source for c in jupytext.read(path).cells if c.cell_type == "code").strip()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_notebook_starts_by_checking_the_library(path):
    assert _first_code_cell(path) == FIRST_CELL.strip(), (
        f"{path.relative_to(ROOT)}: the first code cell must be bitflip_lib.release.FIRST_CELL "
        f"(it names {INSTALL_LINE})")


def test_results_dir_finds_the_course_folder_first():
    assert results_dir(ROOT / "chapters") == ROOT / "results"


def test_results_dir_says_what_to_do_when_there_are_no_stored_runs(tmp_path):
    if packaged_results() is not None:
        pytest.skip("this bitflip_lib is an installed release, which ships the stored runs")
    with pytest.raises(FileNotFoundError, match=re.escape(INSTALL_LINE)):
        results_dir(tmp_path)


# --------------------------------------------------------------------------------------------
# The wheel, installed outside the course folder
# --------------------------------------------------------------------------------------------
def _borrow_site_packages(env_python: Path) -> None:
    """The fresh environment sees the course environment's packages, after its own (a .pth line)."""
    purelib = subprocess.run([str(env_python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    (Path(purelib) / "borrowed_course_env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    """The sdist and wheel built by ``python -m build`` (the wheel built from the sdist)."""
    pytest.importorskip("build", reason="the 'build' package is not installed (pip install build)")
    dist = tmp_path_factory.mktemp("dist")
    done = subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(dist), str(ROOT)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    wheels, sdists = sorted(dist.glob("*.whl")), sorted(dist.glob("*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1, sorted(p.name for p in dist.iterdir())
    return wheels[0], sdists[0]


@pytest.mark.slow
def test_the_wheel_and_sdist_are_named_by_the_version_and_carry_the_stored_runs(release):
    wheel, sdist = release
    version = bitflip_lib.__version__
    assert wheel.name == f"bitflip_course-{version}-py3-none-any.whl"
    assert sdist.name == f"bitflip_course-{version}.tar.gz"
    names = zipfile.ZipFile(wheel).namelist()
    stored = {n for n in names if n.startswith("bitflip_lib/stored_results/")}
    in_repo = {str(p.relative_to(ROOT / "results")) for p in (ROOT / "results").rglob("*")
               if p.is_file() and p.suffix in {".json", ".txt", ".md"} and p.name != "README.template.md"}
    assert {n.removeprefix("bitflip_lib/stored_results/") for n in stored} == in_repo
    assert "bitflip_lib/py.typed" in names and "bitflip_lib/grading/ex01_env_step.py" in names
    assert not any(n.startswith(("chapters/", "tests/", "book/")) for n in names)


def _execute(python: Path, notebook: Path, cwd: Path) -> None:
    """Run every cell of ``notebook`` in a kernel of ``python``'s environment (a cell error fails)."""
    script = textwrap.dedent(f"""
        import jupytext, nbclient
        nb = jupytext.read({str(notebook)!r})
        nbclient.NotebookClient(nb, timeout=900, kernel_name="python3",
                                resources={{"metadata": {{"path": {str(cwd)!r}}}}}).execute()
        print("executed", len(nb.cells), "cells")
    """)
    env = {**os.environ, "BITFLIP_QUICK": "1", "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1", "BITFLIP_PROGRESS": "0"}
    env.pop("PYTHONPATH", None)
    done = subprocess.run([str(python), "-c", script], cwd=cwd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, f"{notebook.name} failed with the installed wheel:\n{done.stdout[-2000:]}{done.stderr[-6000:]}"


@pytest.mark.slow
def test_the_wheel_runs_chapter_1_and_exercise_1_outside_the_course_folder(release, tmp_path):
    wheel, _ = release
    env_dir, work = tmp_path / "env", tmp_path / "student"
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    _borrow_site_packages(python)
    done = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index",
                           "--disable-pip-version-check", "-q", str(wheel)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr

    # The student's folder: the notebooks and nothing else (no bitflip_lib/, no results/).
    work.mkdir()
    shutil.copy(ROOT / "chapters" / "01_sparse_rewards.py", work)
    (work / "solutions").mkdir()
    (work / "exercises").mkdir()
    shutil.copy(ROOT / "solutions" / "ex01_env_step.py", work / "solutions")
    shutil.copy(ROOT / "exercises" / "ex01_env_step.py", work / "exercises")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}

    where = subprocess.run([str(python), "-c", "import bitflip_lib, json; print(json.dumps([bitflip_lib.__file__, "
                            "bitflip_lib.__version__]))"], cwd=work, env=env, capture_output=True, text=True)
    assert where.returncode == 0, where.stderr
    location, version = json.loads(where.stdout)
    assert Path(location).is_relative_to(env_dir), f"bitflip_lib came from {location}, not from the installed wheel"
    assert version == bitflip_lib.__version__

    # Chapters 7 and 7b's stored runs come with the wheel, found from the student's folder: the
    # same run files as the course folder's results/.
    stored = subprocess.run([str(python), "-c", "from bitflip_lib.release import results_dir; r = results_dir(); "
                             "print(r); print(sorted(str(p.relative_to(r)) for p in r.rglob('*.json')))"],
                            cwd=work, env=env, capture_output=True, text=True)
    assert stored.returncode == 0, stored.stderr
    found, runs = stored.stdout.strip().splitlines()
    assert Path(found).is_relative_to(env_dir)
    assert runs == repr(sorted(str(p.relative_to(ROOT / "results")) for p in (ROOT / "results").rglob("*.json")))

    _execute(python, work / "01_sparse_rewards.py", work)
    _execute(python, work / "solutions" / "ex01_env_step.py", work / "solutions")
    bitflip = env_dir / "bin" / "bitflip"
    solved = subprocess.run([str(bitflip), "grade", "ex01", "--dir", "solutions"], cwd=work, env=env,
                            capture_output=True, text=True)
    assert solved.returncode == 0, solved.stdout[-3000:] + solved.stderr[-3000:]
    stubs = subprocess.run([str(bitflip), "grade", "ex01", "--dir", "exercises"], cwd=work, env=env,
                           capture_output=True, text=True)
    assert stubs.returncode != 0 and "FAIL" in stubs.stdout, stubs.stdout[-3000:] + stubs.stderr[-3000:]
