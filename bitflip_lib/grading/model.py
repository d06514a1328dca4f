"""The graders' shared types: a check, an exercise, the result of a check, and the report.

Nothing here runs student code or imports another module of the package: every other module
of :mod:`bitflip_lib.grading` builds on these types.
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

CheckFn = Callable[[Mapping], "str | None"]

DEFAULT_BUDGET = 60.0
"""Seconds of wall-clock time for all the checks of one exercise, end-to-end training included."""

DEFAULT_CHECK_LIMIT = 10.0
"""Seconds one check may run (within its exercise's budget) before it is stopped as a hang."""

SHOWN_LINES = 5
"""How many lines printed during a failing check the report shows."""

MAX_MESSAGE = 600
"""Characters of one result's message kept (a message is always one line)."""

MAX_SHOWN_LINE = 200
"""Characters of one printed line kept."""


@dataclass(frozen=True)
class Check:
    """One graded behaviour.

    ``run(namespace)`` raises AssertionError with a message on failure and may return a short
    note on success; it runs in the grader, and ``namespace`` maps the exercise's required names
    to stand-ins that call the student's code in the student's process.

    Attributes:
        timeout: the most this one check may run (seconds); every check of an exercise also
            shares the exercise's :attr:`Exercise.budget`.
        slow: an end-to-end training run (``bitflip grade --fast`` skips these).
        points: what the check is worth in a gradebook.
        uses: the required names the check calls (default: all of them); a check that uses a
            function found to call the library's own answer fails with that reason.
    """

    name: str
    run: CheckFn
    timeout: float = DEFAULT_CHECK_LIMIT
    slow: bool = False
    points: float = 1.0
    uses: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Exercise:
    """An exercise: the names the student defines, the checks that grade them, the wall-clock
    ``budget`` (seconds) that all its checks share, loading included, and ``references``: the
    library's own implementations of what the student writes (``"module:attribute"``), which
    the student's code may not use."""

    name: str
    title: str
    required: tuple[str, ...]
    checks: tuple[Check, ...]
    budget: float = DEFAULT_BUDGET
    references: tuple[str, ...] = ()

    @property
    def short(self) -> str:
        return self.name.split("_", 1)[0]

    def uses(self, check: Check) -> tuple[str, ...]:
        return self.required if check.uses is None else check.uses


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
    points: float = 0.0
    """Points earned: the check's points if it passed, else 0."""
    max_points: float = 1.0

    def __post_init__(self) -> None:
        self.message = one_line(self.message)
        self.output = [one_line(line, MAX_SHOWN_LINE) for line in self.output]

    @property
    def status(self) -> str:
        return "PASS" if self.passed else "FAIL"


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def one_line(text: str, limit: int = MAX_MESSAGE) -> str:
    """``text`` as one printable line: no newlines, no terminal control sequences, at most
    ``limit`` characters. Student code chooses some of the text in a report; it must not be able
    to draw extra lines (a fake ``PASS``) or move the terminal's cursor."""
    text = str(text)
    text = text.replace("\r\n", " ").replace("\n", " ").replace("\t", " ")
    text = _CONTROL.sub("?", text)
    text = "".join(c if unicodedata.category(c) not in ("Cf", "Zl", "Zp") else "?" for c in text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass
class Report:
    """Results of one or more exercises; ``print(report)`` shows a table, ``report.passed`` the verdict."""

    results: list[CheckResult] = field(default_factory=list)
    budgets: dict[str, float] = field(default_factory=dict)
    """Time budget (seconds) each graded exercise ran under."""
    seconds: dict[str, float] = field(default_factory=dict)
    """Wall-clock seconds each exercise took, loading included."""
    notes: dict[str, str] = field(default_factory=dict)
    """One line per exercise that was not graded (missing, late), shown instead of its checks' time."""
    shown: bool = field(default=False, repr=False, compare=False)
    """Set once the report was printed (by ``check``), so a notebook does not show it twice."""

    @property
    def passed(self) -> bool:
        return bool(self.results) and all(r.passed for r in self.results)

    @property
    def failures(self) -> list[CheckResult]:
        return [r for r in self.results if not r.passed]

    @property
    def points(self) -> float:
        return sum(r.points for r in self.results)

    @property
    def max_points(self) -> float:
        return sum(r.max_points for r in self.results)

    def extend(self, other: Report) -> None:
        self.results.extend(other.results)
        self.budgets.update(other.budgets)
        self.seconds.update(other.seconds)
        self.notes.update(other.notes)

    def exercises(self) -> list[str]:
        return list(dict.fromkeys(r.exercise for r in self.results))

    def summary_line(self) -> str:
        ok = sum(r.passed for r in self.results)
        verdict = "all checks pass" if self.passed else f"{len(self.results) - ok} to fix"
        return f"{ok}/{len(self.results)} checks pass: {verdict}"

    def _header(self, exercise: str) -> str:
        if exercise in self.notes:
            return f"{exercise}  ({self.notes[exercise]})"
        if exercise not in self.budgets:
            return exercise
        took = self.seconds.get(exercise, sum(r.seconds for r in self.results if r.exercise == exercise))
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
            "points": self.points,
            "max_points": self.max_points,
            "time_budget_s": dict(self.budgets),
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
            "notes": dict(self.notes),
            "results": [
                {"exercise": r.exercise, "check": r.check, "status": r.status, "message": r.message,
                 "seconds": round(r.seconds, 3), "output": list(r.output), "output_lines": r.output_lines,
                 "points": r.points, "max_points": r.max_points}
                for r in self.results
            ],
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> Report:
        """The inverse of :meth:`to_dict` (for a class's grading journal)."""
        results = [CheckResult(r["exercise"], r["check"], r["status"] == "PASS", r["message"], r["seconds"],
                               list(r["output"]), r["output_lines"], r["points"], r["max_points"])
                   for r in data["results"]]
        return cls(results, dict(data["time_budget_s"]), dict(data.get("seconds", {})), dict(data.get("notes", {})))


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


def chosen_checks(exercise: Exercise, include_slow: bool = True) -> list[Check]:
    return [c for c in exercise.checks if include_slow or not c.slow]


def result(exercise: Exercise, check: Check, passed: bool, message: str = "", seconds: float = 0.0,
           output: list[str] | None = None, output_lines: int = 0) -> CheckResult:
    """A result with the check's points filled in."""
    return CheckResult(exercise.name, check.name, passed, message, seconds, list(output or []), output_lines,
                       check.points if passed else 0.0, check.points)


def all_failed(exercise: Exercise, message: str, include_slow: bool = True, note: str | None = None) -> Report:
    """Every check fails with the same reason (so the report still lists them all): a notebook
    that did not load, a missing or late exercise."""
    report = Report([result(exercise, c, False, message) for c in chosen_checks(exercise, include_slow)])
    if note is not None:
        report.notes[exercise.name] = note
    return report
