"""Running an exercise's checks: verdicts here, the student's code in the student's process.

For each exercise the runner starts one student's process (:mod:`bitflip_lib.grading.sandbox`),
which loads the graded cells (or, for a notebook's ``check()``, inherits its functions), then
runs every check *here*, in the grader: the check builds its inputs, computes what the
library's reference gives, calls the student's code through stand-ins
(:mod:`bitflip_lib.grading.remote`) and compares. All checks of an exercise share one
wall-clock budget (loading included) and each has its own limit; a process that overruns is
killed and the next check starts a fresh one. After each check every process the student's
code started is killed; after the exercise, the student's process and its scratch folder go.

``BITFLIP_GRADER_ISOLATION=off`` (or a platform without ``fork``) runs everything in this
process instead: the same checks and messages, but no protection at all from the student's
code (``SIGALRM`` timeouts only).
"""
from __future__ import annotations

import atexit
import math
import os
import shutil
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from bitflip_lib.grading import helpers, remote
from bitflip_lib.grading.capture import Capture, Printed
from bitflip_lib.grading.errors import describe_error, first_line
from bitflip_lib.grading.model import Check, CheckResult, Exercise, Report, all_failed, chosen_checks, result
from bitflip_lib.grading.notebook import GradedCell, LoadError, cells_of, exec_cells
from bitflip_lib.grading.timeout import CheckTimeout, time_limit

ISOLATION_ENV_VAR = "BITFLIP_GRADER_ISOLATION"
LOAD_LIMIT = 30.0
"""Seconds the graded cells of a notebook may take to run."""
HANG_HINT = "(an endless loop, or a Python loop over every element?)"


def isolation_available() -> bool:
    setting = os.environ.get(ISOLATION_ENV_VAR, "").strip().lower()
    return hasattr(os, "fork") and sys.platform != "win32" and setting not in {"off", "0", "no", "false", "none"}


@dataclass
class Submission:
    """One notebook to grade, read once, before any student code runs (so that no student's
    code can change what is graded later: another exercise's file, another student's)."""

    exercise: Exercise
    path: Path
    data: bytes
    cells: list[GradedCell] | None
    problem: str | None = None
    """Why it cannot be graded (not a notebook, no graded cell), or None."""


def submission_from(exercise: Exercise, path: Path, data: bytes, shown: str | None = None) -> Submission:
    """The submission a notebook's bytes make (read before any student code runs)."""
    from bitflip_lib.grading.notebook import _text

    try:
        cells = cells_of(path, _text(path, data), shown)
    except LoadError as err:
        return Submission(exercise, path, data, None, f"could not load the notebook: {err}")
    return Submission(exercise, path, data, cells)


def read_submission(exercise: Exercise, path: str | Path, shown: str | None = None) -> Submission:
    from bitflip_lib.grading.notebook import read_notebook_bytes

    path = Path(path)
    try:
        data = read_notebook_bytes(path)
    except LoadError as err:
        return Submission(exercise, path, b"", None, f"could not load the notebook: {err}")
    return submission_from(exercise, path, data, shown)


# --- the supervisor of graded files (one per grading process, reused) ---------------------------------

_supervisor: remote.Supervisor | None = None
_supervisor_lock = threading.Lock()


def file_supervisor() -> remote.Supervisor:
    """The supervisor that forks students' processes for graded files (started once, kept)."""
    global _supervisor
    with _supervisor_lock:
        if _supervisor is None or not _supervisor.alive:
            if _supervisor is not None:
                _supervisor.close()
            _supervisor = remote.start_file_supervisor()
        return _supervisor


@atexit.register
def _stop_supervisor() -> None:
    global _supervisor
    if _supervisor is not None:
        _supervisor.close()
        _supervisor = None


_grader_warm = False


def _warm_grader() -> None:
    """Import here, once, what the checks' own code imports on first use (the first optimiser
    pulls in ``torch._dynamo``: seconds on a slow CPU), before any check's clock starts."""
    global _grader_warm
    if not _grader_warm:
        import torch

        torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))])
        _grader_warm = True


def warm_up() -> None:
    """Start the grader's supervisor now (importing torch and the library takes seconds), and do
    the grader's own first-use imports: their cost is the grader's, not part of any budget."""
    _warm_grader()
    if isolation_available():
        file_supervisor().wait_ready()


# --- running checks ----------------------------------------------------------------------------------


def reference_message(function: str, label: str) -> str:
    return (f"{function} uses {label}, the library's own implementation of what this exercise asks for: "
            "write it yourself (the library's other parts are fine to use)")


def _not_run(exercise: Exercise, check: Check, budget: float) -> CheckResult:
    return result(exercise, check, False, f"not run: the {budget:g} s time budget of {exercise.name} was used up by the checks above")


def run_checks(exercise: Exercise, checks: list[Check], source: Submission | Mapping, budget: float | None = None,
               load_limit: float = LOAD_LIMIT, supervisor: remote.Supervisor | None = None) -> Report:
    """Run ``checks`` of ``exercise`` against ``source``: a notebook file read into a
    :class:`Submission`, or a mapping of names already defined in this process (a notebook's
    ``check()``). One time budget for all of them; returns the report."""
    budget = float(exercise.budget if budget is None else budget)
    if not (math.isfinite(budget) and budget > 0):
        raise ValueError(f"the time budget must be a positive number of seconds, got {budget}")
    if isinstance(source, Submission) and source.problem is not None:
        report = all_failed(exercise, source.problem)
        report.results = [r for r in report.results if r.check in {c.name for c in checks}]
        report.budgets[exercise.name] = budget
        return report
    _warm_grader()
    if not isolation_available():
        return _run_here(exercise, checks, source, budget, load_limit)
    return _Run(exercise, checks, source, budget, load_limit, supervisor).run()


class _Run:
    def __init__(self, exercise: Exercise, checks: list[Check], source, budget: float, load_limit: float,
                 supervisor: remote.Supervisor | None) -> None:
        self.exercise, self.checks, self.source = exercise, checks, source
        self.budget, self.load_limit = budget, load_limit
        self.supervisor = supervisor
        self.results: dict[int, CheckResult] = {}
        self.references: dict[str, str] = {}
        self.kinds: dict[str, str] = {}

    def run(self) -> Report:
        own = None
        if isinstance(self.source, Submission):
            supervisor = self.supervisor or file_supervisor()
        else:
            supervisor = own = remote.start_memory_supervisor(dict(self.source))
        supervisor.wait_ready()
        self.start = time.monotonic()
        self.end = self.start + self.budget
        link: remote.StudentProcess | None = None
        scratch = None
        try:
            for index, check in enumerate(self.checks):
                if time.monotonic() >= self.end:
                    self.results[index] = _not_run(self.exercise, check, self.budget)
                    continue
                if link is None:
                    if scratch is not None:
                        shutil.rmtree(scratch, ignore_errors=True)
                    scratch = self._scratch()
                    link = self._spawn(supervisor, scratch, index)
                    if link is None:
                        break
                link = self._one(supervisor, link, index, check)
        finally:
            if link is not None:
                link.kill()
            if own is not None:
                own.close()
            if scratch is not None:
                shutil.rmtree(scratch, ignore_errors=True)
        ordered = [self.results[i] for i in range(len(self.checks))]
        for r, check in zip(ordered, self.checks):  # a function that used the reference fails every check that uses it
            used = [n for n in self.exercise.uses(check) if n in self.references]
            if r.passed and used:
                r.passed, r.points = False, 0.0
                r.message = reference_message(used[0], self.references[used[0]])
        return Report(ordered, budgets={self.exercise.name: self.budget},
                      seconds={self.exercise.name: time.monotonic() - self.start})

    def _scratch(self) -> str:
        if isinstance(self.source, Submission):
            return remote.new_scratch(self.source.path, self.source.data)
        return remote.new_scratch()

    def _setup(self, scratch: str) -> dict:
        setup = {"scratch": scratch, "references": list(self.exercise.references), "required": list(self.exercise.required),
                 "cpu_seconds": int(self.budget + self.load_limit) + 30}
        if isinstance(self.source, Submission):
            setup["cells"] = [[c.source, c.filename, c.first_line] for c in self.source.cells]
            setup["module"] = f"graded_{self.source.path.stem}"
        return setup

    def _spawn(self, supervisor: remote.Supervisor, scratch: str, first: int) -> remote.StudentProcess | None:
        """Start a student's process and wait for it to load; on failure, fail the checks left."""
        try:
            link = supervisor.spawn(self._setup(scratch), self.exercise.name)
        except remote.StudentProcessEnded as err:
            self._fail_rest(first, str(err))
            return None
        deadline = min(self.end, time.monotonic() + self.load_limit)
        why = (f"the {self.budget:g} s time budget of {self.exercise.name} ran out" if deadline >= self.end
               else f"still running after {self.load_limit:g} s")
        link.timeout_message = f"{why} {HANG_HINT}"
        try:
            message = link.receive(deadline)
        except CheckTimeout as err:
            self._fail_rest(first, f"could not load the notebook: while its graded cells ran, timed out: {err}")
            return None
        except (remote.StudentProcessEnded, remote.GraderProtocolError) as err:
            link.kill()
            self._fail_rest(first, f"could not load the notebook: while its graded cells ran, {err}")
            return None
        lines, count = Printed.from_wire(message.get("printed") if isinstance(message, dict) else None)
        if not isinstance(message, dict) or message.get("event") != "loaded":
            link.kill()
            text = str(message.get("message", "")) if isinstance(message, dict) else ""
            self._fail_rest(first, f"could not load the notebook: {text}" if text else "could not load the notebook",
                            lines, count)
            return None
        kinds, references = message.get("kinds"), message.get("references")  # forgeable: plain dicts only
        kinds = kinds if isinstance(kinds, dict) else {}
        references = references if isinstance(references, dict) else {}
        self.kinds = {str(k): str(v) for k, v in kinds.items() if k in self.exercise.required}
        for name, label in references.items():
            if name in self.exercise.required:
                self.references[name] = str(label)
        return link

    def _fail_rest(self, first: int, message: str, lines: list[str] = (), count: int = 0) -> None:
        for index in range(first, len(self.checks)):
            if index not in self.results:
                self.results[index] = result(self.exercise, self.checks[index], False, message, 0.0, list(lines), count)

    def _one(self, supervisor: remote.Supervisor, link: remote.StudentProcess, index: int,
             check: Check) -> remote.StudentProcess | None:
        """Run one check; returns the student's process to use next (None: start a new one)."""
        exercise = self.exercise
        missing = [name for name in exercise.required if name not in self.kinds]
        if missing:
            self.results[index] = result(exercise, check, False,
                                         f"not defined: {', '.join(missing)} (run or fix the cell that defines it)")
            return link
        used = [name for name in exercise.uses(check) if name in self.references]
        if used:
            self.results[index] = result(exercise, check, False, reference_message(used[0], self.references[used[0]]))
            return link
        started = time.monotonic()
        deadline = min(self.end, started + check.timeout)
        why = (f"the {self.budget:g} s time budget of {exercise.name} ran out" if deadline >= self.end
               else f"still running after {check.timeout:g} s")
        link.deadline, link.timeout_message, link.printed = deadline, f"{why} {HANG_HINT}", Printed()
        helpers.set_cuda_usable(link.usable_cuda)
        keep: remote.StudentProcess | None = link
        try:
            note = check.run(remote.StudentNamespace(link, self.kinds))
            outcome = (True, str(note or ""))
        except AssertionError as err:
            outcome = (False, str(err) or "assertion failed")
        except remote.ReferenceUsed as err:
            self.references.setdefault(err.function, err.label)
            outcome = (False, reference_message(err.function, err.label))
        except CheckTimeout as err:
            outcome, keep = (False, f"timed out: {err}"), None
        except (remote.StudentProcessEnded, remote.GraderProtocolError) as err:
            outcome, keep = (False, str(err)), None
        except remote.StudentError as err:
            outcome = (False, err.description)
        except KeyboardInterrupt:
            raise
        except Exception as err:  # noqa: BLE001 - what the student's code returned broke the check's own code
            outcome = (False, f"the grader could not use what your code returned ({type(err).__name__}: "
                              f"{first_line(str(err))})")
        finally:
            helpers.set_cuda_usable(True)
        self.results[index] = result(exercise, check, outcome[0], outcome[1], time.monotonic() - started,
                                     link.printed.shown, link.printed.count)
        if keep is not None and keep.ended:
            keep = None
        if keep is not None:
            try:
                supervisor.sweep()
            except remote.StudentProcessEnded:
                keep = None
        elif not link.ended:
            link.kill()
        return keep


# --- in this process (no isolation) ---------------------------------------------------------------


def _run_here(exercise: Exercise, checks: list[Check], source, budget: float, load_limit: float) -> Report:
    start = time.monotonic()
    end = start + budget
    capture = Capture()
    saved = sys.stdout, sys.stderr
    sys.stdout = sys.stderr = capture
    try:
        if isinstance(source, Submission):
            with time_limit(min(load_limit, budget)):
                namespace = exec_cells(source.cells, f"graded_{source.path.stem}", interruptible=True)
        else:
            namespace = dict(source)
    except KeyboardInterrupt:
        raise
    except BaseException as err:  # noqa: BLE001
        message = f"could not load the notebook: {err}" if isinstance(err, LoadError) else \
            f"could not load the notebook: {describe_error(err)}"
        return Report([result(exercise, c, False, message, 0.0, capture.shown(), capture.lines) for c in checks],
                      budgets={exercise.name: budget})
    finally:
        sys.stdout, sys.stderr = saved
    results = []
    for check in checks:
        left = end - time.monotonic()
        if left <= 0:
            results.append(_not_run(exercise, check, budget))
            continue
        results.append(run_one(exercise, check, namespace, limit=min(check.timeout, left)))
    return Report(results, budgets={exercise.name: budget}, seconds={exercise.name: time.monotonic() - start})


def run_one(exercise: Exercise, check: Check, namespace: Mapping, limit: float | None = None) -> CheckResult:
    """Run one check in this process, output captured; every exception becomes a result."""
    missing = [name for name in exercise.required if name not in namespace]
    if missing:
        return result(exercise, check, False, f"not defined: {', '.join(missing)} (run or fix the cell that defines it)")
    capture = Capture()
    saved = sys.stdout, sys.stderr
    sys.stdout = sys.stderr = capture
    start = time.perf_counter()
    try:
        with time_limit(limit):
            note = check.run(namespace)
        outcome = (True, str(note or ""))
    except AssertionError as err:
        outcome = (False, str(err) or "assertion failed")
    except KeyboardInterrupt:
        raise
    except BaseException as err:  # noqa: BLE001 - student code must not end grading, whatever it raises
        outcome = (False, describe_error(err))
    finally:
        sys.stdout, sys.stderr = saved
    return result(exercise, check, outcome[0], outcome[1], time.perf_counter() - start, capture.shown(), capture.lines)


# --- entry points ------------------------------------------------------------------------------------


def run_exercise(exercise: Exercise, namespace: Mapping, include_slow: bool = True, budget: float | None = None) -> Report:
    """Every check of one exercise against names defined in this process (a notebook's)."""
    return run_checks(exercise, chosen_checks(exercise, include_slow), namespace, budget=budget)


def run_check(exercise: Exercise, check: Check, namespace: Mapping, budget: float | None = None) -> CheckResult:
    """One check against names defined in this process."""
    return run_checks(exercise, [check], namespace, budget=budget).results[0]


def grade_file(exercise: Exercise, path: str | Path, include_slow: bool = True, budget: float | None = None,
               load_timeout: float = LOAD_LIMIT, supervisor: remote.Supervisor | None = None) -> Report:
    """Grade one saved notebook."""
    return run_checks(exercise, chosen_checks(exercise, include_slow), read_submission(exercise, path), budget=budget,
                      load_limit=load_timeout, supervisor=supervisor)


__all__ = ["ISOLATION_ENV_VAR", "LOAD_LIMIT", "Submission", "grade_file", "isolation_available", "read_submission",
           "run_check", "run_checks", "run_exercise", "warm_up"]
