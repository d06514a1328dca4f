"""Graders for the course exercises, usable from a notebook and from the command line.

In a notebook, after writing the functions of an exercise::

    from bitflip_lib.grading import check
    check("ex05_her_future", her_relabel_future)   # or check("ex05", globals())

prints a report (one line per check: PASS or FAIL and what was expected) and raises
:class:`GradingFailed` when something is still wrong. From a terminal::

    bitflip grade                 # every exercise in ./exercises
    bitflip grade ex03            # one exercise
    python -m bitflip_lib.grading grade ex03 --dir exercises

grades the saved notebooks (only their cells tagged ``graded``), and ::

    bitflip grade --class SUBMISSIONS --out DIR

grades a whole class (see :mod:`bitflip_lib.grading.classroom`). The student versions in
``exercises/`` are generated from ``solutions/`` by ``python -m bitflip_lib.grading generate``.

Student code never runs in the process that decides a verdict: see
:mod:`bitflip_lib.grading.runner` (who runs what), :mod:`bitflip_lib.grading.sandbox` (the
limits on the student's process) and :mod:`bitflip_lib.grading.remote` (how a check calls the
student's code). Helpers for the exercises' own experiments (``example_batch``,
``numbered_transitions``, ``numbers_of``, and ``train_with``: the library's training loop with a
student's part in place of its own) are public here.
"""
from __future__ import annotations

from bitflip_lib.grading.api import GradingFailed, check, grade
from bitflip_lib.grading.examples import example_batch, numbered_transitions, numbers_of
from bitflip_lib.grading.model import Check, CheckResult, Exercise, Report
from bitflip_lib.grading.plugged import train_with
from bitflip_lib.grading.registry import EXERCISES, resolve
from bitflip_lib.grading.stubs import generate, make_stub


def cli_main(argv: list[str] | None = None) -> int:
    """``bitflip grade`` / ``python -m bitflip_lib.grading``: see :mod:`bitflip_lib.grading.cli`."""
    from bitflip_lib.grading.cli import main

    return main(argv)


__all__ = [
    "EXERCISES",
    "Check",
    "CheckResult",
    "Exercise",
    "GradingFailed",
    "Report",
    "check",
    "cli_main",
    "example_batch",
    "generate",
    "grade",
    "make_stub",
    "numbered_transitions",
    "numbers_of",
    "resolve",
    "train_with",
]
