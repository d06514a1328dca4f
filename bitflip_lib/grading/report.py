"""Checks, running them safely, and the readable report a student sees."""
from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from bitflip_lib.grading.timeout import CheckTimeout, time_limit

CheckFn = Callable[[Mapping], "str | None"]


@dataclass(frozen=True)
class Check:
    """One graded behaviour. ``run(namespace)`` raises AssertionError with a message on failure
    and may return a short note on success. ``slow`` marks end-to-end training runs."""

    name: str
    run: CheckFn
    timeout: float = 60.0
    slow: bool = False


@dataclass(frozen=True)
class Exercise:
    """An exercise: the names the student defines and the checks that grade them."""

    name: str
    title: str
    required: tuple[str, ...]
    checks: tuple[Check, ...]

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

    @property
    def status(self) -> str:
        return "PASS" if self.passed else "FAIL"


@dataclass
class Report:
    """Results of one or more exercises; ``print(report)`` shows a table, ``report.passed`` the verdict."""

    results: list[CheckResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.results) and all(r.passed for r in self.results)

    @property
    def failures(self) -> list[CheckResult]:
        return [r for r in self.results if not r.passed]

    def extend(self, other: "Report") -> None:
        self.results.extend(other.results)

    def summary_line(self) -> str:
        ok = sum(r.passed for r in self.results)
        verdict = "all checks pass" if self.passed else f"{len(self.results) - ok} to fix"
        return f"{ok}/{len(self.results)} checks pass: {verdict}"

    def __str__(self) -> str:
        if not self.results:
            return "no checks were run"
        width = max(len(r.check) for r in self.results)
        lines = []
        current = None
        for r in self.results:
            if r.exercise != current:
                current = r.exercise
                lines.append(f"{r.exercise}")
            message = f"  {r.message}" if r.message else ""
            lines.append(f"  {r.status}  {r.check:<{width}}{message}")
        lines.append(self.summary_line())
        return "\n".join(lines)

    def _repr_pretty_(self, printer, cycle) -> None:  # IPython display: check() already printed the table
        printer.text(f"<grading report: {self.summary_line()}>")

    def to_dict(self) -> dict:
        return {
            "passed": self.passed,
            "results": [
                {"exercise": r.exercise, "check": r.check, "status": r.status, "message": r.message, "seconds": round(r.seconds, 3)}
                for r in self.results
            ],
        }


def _describe_error(err: BaseException) -> str:
    """A one-line account of an exception raised by student code, with the line it came from."""
    if isinstance(err, NotImplementedError):
        hint = str(err) or "this part"
        return f"not written yet (NotImplementedError: {hint})"
    if isinstance(err, CheckTimeout):
        return f"timed out: {err}"
    frames = traceback.extract_tb(err.__traceback__)
    student = [f for f in frames if "graded cell" in f.filename or "ipykernel" in f.filename or "<ipython" in f.filename]
    where = ""
    if student:
        last = student[-1]
        where = f" at {last.filename}, line {last.lineno}: {(last.line or '').strip()}"
    return f"your code raised {type(err).__name__}: {err}{where}"


def run_check(exercise: Exercise, check: Check, namespace: Mapping) -> CheckResult:
    """Run one check, turning every outcome (pass, assertion, crash, timeout) into a result."""
    start = time.perf_counter()
    missing = [name for name in exercise.required if name not in namespace]
    if missing:
        return CheckResult(exercise.name, check.name, False, f"not defined: {', '.join(missing)} (run or fix the cell that defines it)")
    try:
        with time_limit(check.timeout):
            note = check.run(namespace)
    except AssertionError as err:
        return CheckResult(exercise.name, check.name, False, str(err) or "assertion failed", time.perf_counter() - start)
    except Exception as err:  # noqa: BLE001 - a crash in student code is a failed check, not a crashed grader
        return CheckResult(exercise.name, check.name, False, _describe_error(err), time.perf_counter() - start)
    return CheckResult(exercise.name, check.name, True, note or "", time.perf_counter() - start)


def run_exercise(exercise: Exercise, namespace: Mapping, include_slow: bool = True) -> Report:
    """Every check of one exercise against the names in ``namespace``."""
    report = Report()
    for check in exercise.checks:
        if check.slow and not include_slow:
            continue
        report.results.append(run_check(exercise, check, namespace))
    return report


def failed_to_load(exercise: Exercise, message: str, include_slow: bool = True) -> Report:
    """Every check fails with the same loading error (so the report still lists them all)."""
    return Report([CheckResult(exercise.name, c.name, False, message) for c in exercise.checks if include_slow or not c.slow])
