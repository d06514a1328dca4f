"""What a student calls: ``check`` in a notebook, ``grade`` on saved notebooks."""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from bitflip_lib.grading.model import Exercise, Report, all_failed, chosen_checks
from bitflip_lib.grading.notebook import LoadError, notebook_source
from bitflip_lib.grading.registry import EXERCISES, resolve
from bitflip_lib.grading.runner import LOAD_LIMIT, read_submission, run_checks, run_exercise


class GradingFailed(AssertionError):
    """Raised by :func:`check` when at least one check fails (the report is attached)."""

    def __init__(self, report: Report) -> None:
        failed, total = len(report.failures), len(report.results)
        super().__init__(f"{failed} of {total} checks failed: the report above says what to fix, then run this cell again")
        self.report = report

    def _render_traceback_(self) -> list[str]:
        # IPython shows this instead of a traceback: the report above is the useful part.
        return [f"\x1b[0;31mGradingFailed\x1b[0m: {self}"]


def _namespace(exercise: Exercise, objects: tuple, namespace: Mapping | None) -> dict:
    ns: dict = dict(namespace or {})
    for obj in objects:
        if isinstance(obj, Mapping):
            ns.update(obj)
            continue
        name = getattr(obj, "__name__", None)
        if name in exercise.required:
            ns[name] = obj
        elif len(exercise.required) == 1:
            ns[exercise.required[0]] = obj
        else:
            raise ValueError(f"cannot tell which of {', '.join(exercise.required)} {obj!r} is: "
                             f"pass the notebook's globals() instead, e.g. check('{exercise.short}', globals())")
    return ns


def check(exercise: str, *objects, namespace: Mapping | None = None, include_slow: bool = True,
          raise_on_failure: bool = True, budget: float | None = None) -> Report:
    """Grade functions defined in this notebook and print the report.

    Args:
        exercise: ``'ex05_her_future'``, ``'ex05'`` or ``5``.
        objects: the graded functions or classes themselves, or one dict of names such as
            ``globals()``.
        namespace: a dict of names to take them from (alternative to ``objects``).
        include_slow: also run the end-to-end training checks.
        raise_on_failure: raise :class:`GradingFailed` when a check fails (so the cell shows
            an error and an automated run of the notebook stops).
        budget: seconds all checks may take together (default: the exercise's budget).

    Your functions run in a separate process with limits (see :mod:`bitflip_lib.grading.sandbox`):
    what they print there is captured, and a crash, ``sys.exit`` or endless loop is a FAIL.
    """
    ex = resolve(exercise)
    report = run_exercise(ex, _namespace(ex, objects, namespace), include_slow=include_slow, budget=budget)
    print(report)
    report.shown = True
    if raise_on_failure and not report.passed:
        raise GradingFailed(report)
    return report


def grade(exercise: str | None = None, directory: str | Path = "exercises", include_slow: bool = True,
          load_timeout: float = LOAD_LIMIT, budget: float | None = None) -> Report:
    """Grade saved notebooks in ``directory`` (one exercise, or all when ``exercise`` is None).

    Every notebook is read before any student code runs. Only its cells tagged ``graded`` are
    executed, in the student's process that answers the exercise's checks (``load_timeout``
    seconds at most); ``budget`` overrides each exercise's time budget. Nothing is printed;
    ``print(report)`` shows it.
    """
    chosen = [resolve(exercise)] if exercise is not None else list(EXERCISES.values())
    found = {}
    for ex in chosen:
        try:
            found[ex.name] = read_submission(ex, notebook_source(directory, ex.name))
        except LoadError as err:
            found[ex.name] = err
    report = Report()
    for ex in chosen:
        source = found[ex.name]
        if isinstance(source, LoadError):
            report.extend(all_failed(ex, f"could not load the notebook: {source}", include_slow))
            continue
        report.extend(run_checks(ex, chosen_checks(ex, include_slow), source, budget=budget, load_limit=load_timeout))
    return report
