"""Checks, the results they give, and the readable report a student sees.

Running the checks is :mod:`bitflip_lib.grading.sandbox`'s job (a child process per exercise,
with one time budget for the whole exercise); :func:`run_check` and :func:`run_exercise` here
are its entry points.
"""
from __future__ import annotations

import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from bitflip_lib.grading.timeout import CheckTimeout

CheckFn = Callable[[Mapping], "str | None"]

DEFAULT_BUDGET = 60.0
"""Seconds of wall-clock time for all the checks of one exercise, end-to-end training included."""

DEFAULT_CHECK_LIMIT = 10.0
"""Seconds one check may run (within its exercise's budget) before it is stopped as a hang."""

SHOWN_LINES = 5
"""How many lines printed during a failing check the report shows."""

STUDENT_FILES: set[str] = set()
"""File names under which the student's graded cells were compiled (see ``notebook.load_graded``):
a traceback frame from one of them is the student's own line."""


@dataclass(frozen=True)
class Check:
    """One graded behaviour. ``run(namespace)`` raises AssertionError with a message on failure
    and may return a short note on success. ``slow`` marks end-to-end training runs.

    ``timeout`` is the most this one check may run (seconds); every check of an exercise also
    shares the exercise's :attr:`Exercise.budget`, so a hang never costs more than that.
    """

    name: str
    run: CheckFn
    timeout: float = DEFAULT_CHECK_LIMIT
    slow: bool = False


@dataclass(frozen=True)
class Exercise:
    """An exercise: the names the student defines, the checks that grade them, and the
    wall-clock ``budget`` (seconds) that all its checks share, loading included."""

    name: str
    title: str
    required: tuple[str, ...]
    checks: tuple[Check, ...]
    budget: float = DEFAULT_BUDGET

    @property
    def short(self) -> str:
        return self.name.split("_", 1)[0]


@dataclass
class CheckResult:
    exercise: str
    check: str
    passed: bool
    message: str = ""
    seconds: float = 0.0
    output: list[str] = field(default_factory=list)
    """The first lines the student's code printed during the check (at most :data:`SHOWN_LINES`)."""
    output_lines: int = 0
    """How many lines it printed in all."""

    @property
    def status(self) -> str:
        return "PASS" if self.passed else "FAIL"


@dataclass
class Report:
    """Results of one or more exercises; ``print(report)`` shows a table, ``report.passed`` the verdict."""

    results: list[CheckResult] = field(default_factory=list)
    budgets: dict[str, float] = field(default_factory=dict)
    """Time budget (seconds) each graded exercise ran under."""
    shown: bool = field(default=False, repr=False, compare=False)
    """Set once the report was printed (by ``check``), so a notebook does not show it twice."""

    @property
    def passed(self) -> bool:
        return bool(self.results) and all(r.passed for r in self.results)

    @property
    def failures(self) -> list[CheckResult]:
        return [r for r in self.results if not r.passed]

    def extend(self, other: "Report") -> None:
        self.results.extend(other.results)
        self.budgets.update(other.budgets)

    def summary_line(self) -> str:
        ok = sum(r.passed for r in self.results)
        verdict = "all checks pass" if self.passed else f"{len(self.results) - ok} to fix"
        return f"{ok}/{len(self.results)} checks pass: {verdict}"

    def _header(self, exercise: str) -> str:
        if exercise not in self.budgets:
            return exercise
        took = sum(r.seconds for r in self.results if r.exercise == exercise)
        return f"{exercise}  (took {took:.1f} s; time budget {self.budgets[exercise]:g} s per exercise)"

    def __str__(self) -> str:
        if not self.results:
            return "no checks were run"
        width = max(len(r.check) for r in self.results)
        lines = []
        current = previous = None
        for r in self.results:
            if r.exercise != current:
                current, previous = r.exercise, None
                lines.append(self._header(r.exercise))
            message = f"  {r.message}" if r.message else ""
            if not r.passed and r.message and r.message == previous:
                message = "  (the same as above)"  # e.g. a notebook that did not load: one reason, said once
            previous = None if r.passed else r.message
            lines.append(f"  {r.status}  {r.check:<{width}}{message}")
            if not r.passed and r.output_lines:
                lines.extend(_output_lines(r, indent=" " * 8))
        lines.append(self.summary_line())
        return "\n".join(lines)

    def _ipython_display_(self) -> None:
        # IPython shows a cell's last value; check() has printed the table already.
        if not self.shown:
            print(self)

    def to_dict(self) -> dict:
        return {
            "passed": self.passed,
            "time_budget_s": dict(self.budgets),
            "results": [
                {"exercise": r.exercise, "check": r.check, "status": r.status, "message": r.message,
                 "seconds": round(r.seconds, 3), "output": list(r.output), "output_lines": r.output_lines}
                for r in self.results
            ],
        }


def _output_lines(result: CheckResult, indent: str) -> list[str]:
    count = result.output_lines
    shown = result.output[:SHOWN_LINES]
    if count == 1:
        head = "your code printed 1 line during this check:"
    elif len(shown) < count:
        head = f"your code printed {count} lines during this check; the first {len(shown)}:"
    else:
        head = f"your code printed {count} lines during this check:"
    return [indent + head] + [f"{indent}| {line}" for line in shown]


def _student_frame(filename: str) -> str | None:
    """How to name a traceback frame's file if it is the student's code, else None."""
    if filename in STUDENT_FILES:
        return filename
    if "ipykernel" in filename or filename.startswith("<ipython"):
        return "your notebook cell"
    return None


def where(err: BaseException) -> str:
    """`` at <file>, line <n>: <code>`` for the student's innermost line in the traceback, or ''."""
    for frame in reversed(traceback.extract_tb(err.__traceback__)):
        name = _student_frame(frame.filename)
        if name is not None:
            code = (frame.line or "").strip()
            return f" at {name}, line {frame.lineno}" + (f": {code}" if code else "")
    return ""


def describe_error(err: BaseException) -> str:
    """A one-line account of an exception raised by student code, with the line it came from."""
    if isinstance(err, NotImplementedError):
        hint = str(err) or "this part"
        return f"not written yet (NotImplementedError: {hint})"
    if isinstance(err, CheckTimeout):
        return f"timed out: {err}"
    if isinstance(err, SystemExit):
        call = "sys.exit()" if err.code is None else f"sys.exit({err.code!r})"
        return f"your code called {call}{where(err)}: a graded function must return its result, not end the program"
    if isinstance(err, KeyboardInterrupt):
        return f"your code raised KeyboardInterrupt{where(err)}"
    kind = type(err).__name__
    if not isinstance(err, Exception):
        kind += " (a BaseException that is not an Exception)"
    text = f": {err}" if str(err) else ""
    return f"your code raised {kind}{text}{where(err)}"


def run_check(exercise: Exercise, check: Check, namespace: Mapping, budget: float | None = None) -> CheckResult:
    """Run one check in a child process, turning every outcome (pass, assertion, crash, exit,
    timeout) into a result."""
    from bitflip_lib.grading.sandbox import run_checks

    return run_checks(exercise, [check], lambda: namespace, budget=budget).results[0]


def run_exercise(exercise: Exercise, namespace: Mapping, include_slow: bool = True, budget: float | None = None) -> Report:
    """Every check of one exercise against the names in ``namespace``, in one child process
    under one time budget (``exercise.budget`` unless ``budget`` is given)."""
    from bitflip_lib.grading.sandbox import run_checks

    return run_checks(exercise, chosen_checks(exercise, include_slow), lambda: namespace, budget=budget)


def chosen_checks(exercise: Exercise, include_slow: bool = True) -> list[Check]:
    return [c for c in exercise.checks if include_slow or not c.slow]


def failed_to_load(exercise: Exercise, message: str, include_slow: bool = True) -> Report:
    """Every check fails with the same loading error (so the report still lists them all)."""
    return Report([CheckResult(exercise.name, c.name, False, message) for c in chosen_checks(exercise, include_slow)])
