"""exercises/ is exactly what the generator makes from solutions/, and the generator is sound."""
from __future__ import annotations

from pathlib import Path

import pytest

from bitflip_lib.grading import EXERCISES
from bitflip_lib.grading.notebook import graded_sources
from bitflip_lib.grading.stubs import MarkerError, exercise_text, generate, make_stub, solution_files

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = ROOT / "solutions"
EXERCISES_DIR = ROOT / "exercises"


def test_exercises_are_generated_from_solutions(tmp_path):
    stale = generate(SOLUTIONS, EXERCISES_DIR, check_only=True)
    assert not stale, (
        f"out of date: {[str(p) for p in stale]}. Edit solutions/ only, then run `python -m bitflip_lib.grading generate`"
    )
    assert sorted(p.name for p in EXERCISES_DIR.glob("ex*.py")) == sorted(p.name for p in solution_files(SOLUTIONS))


def test_every_exercise_has_a_solution_notebook_and_grader():
    assert sorted(p.stem for p in solution_files(SOLUTIONS)) == sorted(EXERCISES)


@pytest.mark.parametrize("path", solution_files(SOLUTIONS), ids=lambda p: p.stem)
def test_stub_hides_the_solution_and_still_compiles(path):
    solution = path.read_text()
    stub = exercise_text(path)
    assert "### BEGIN SOLUTION" in solution
    assert "BEGIN SOLUTION" not in stub and "END SOLUTION" not in stub
    assert stub.count("raise NotImplementedError(") == solution.count("### BEGIN SOLUTION")
    compile(stub, str(path), "exec")  # the whole notebook is valid Python
    stub_path = EXERCISES_DIR / path.name
    graded = graded_sources(stub_path)
    assert any("NotImplementedError" in src for src in graded), "the graded cells must contain the stubs"
    assert "Student version" in stub


def test_make_stub_keeps_indentation_and_hints():
    source = (
        "def f(x):\n"
        '    """doc"""\n'
        "    ### BEGIN SOLUTION HINT: use x + 1\n"
        "    # HINT: and nothing else\n"
        "    return x + 1\n"
        "    ### END SOLUTION\n"
        "\n"
        "### BEGIN SOLUTION\n"
        "y = 2\n"
        "### END SOLUTION\n"
        "z = 3\n"
    )
    stub = make_stub(source)
    assert stub == (
        "def f(x):\n"
        '    """doc"""\n'
        '    raise NotImplementedError("use x + 1 and nothing else")\n'
        "\n"
        'raise NotImplementedError("write this part (see the docstring above), then run the check cell")\n'
        "z = 3\n"
    )


def test_make_stub_escapes_quotes_in_hints():
    stub = make_stub('### BEGIN SOLUTION HINT: say "hi" \\ now\nx = 1\n### END SOLUTION\n')
    namespace: dict = {}
    with pytest.raises(NotImplementedError, match=r'say "hi" \\ now'):
        exec(stub, namespace)


@pytest.mark.parametrize(
    "source, problem",
    [
        ("### BEGIN SOLUTION\nx = 1\n", "never closed"),
        ("x = 1\n### END SOLUTION\n", "without a matching BEGIN"),
        ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION\n", "nested"),
        ("x = 1\n", "no '### BEGIN SOLUTION' block"),
        ("x = 1  ### BEGIN SOLUTION\n", "malformed"),
    ],
)
def test_bad_markers_are_reported(source, problem):
    with pytest.raises(MarkerError, match=problem):
        make_stub(source)


def test_generate_writes_and_then_reports_nothing_to_do(tmp_path):
    written = generate(SOLUTIONS, tmp_path)
    assert len(written) == len(solution_files(SOLUTIONS))
    assert generate(SOLUTIONS, tmp_path, check_only=True) == []
    (tmp_path / written[0].name).write_text("edited")
    assert generate(SOLUTIONS, tmp_path, check_only=True) == [tmp_path / written[0].name]
