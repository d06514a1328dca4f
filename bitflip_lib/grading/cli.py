"""Command line of the graders.

    python -m bitflip_lib.grading grade [EXERCISE ...] [--dir exercises] [--fast] [--json]
                                        [--time-budget SECONDS] [--gradescope FILE]
    python -m bitflip_lib.grading grade --class SUBMISSIONS --out DIR [EXERCISE ...] [--fast]
                                        [--time-budget SECONDS] [--workers N] [--deadline WHEN]
    python -m bitflip_lib.grading generate [--solutions solutions] [--exercises exercises] [--check]

``bitflip grade ...`` (the course's command) calls :func:`main` with the arguments after ``grade``.
Exit code 0 only when every check passes (``grade`` on one folder), the class was graded
(``--class``), or nothing is out of date (``generate --check``); 2 for a usage error.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from bitflip_lib.grading.model import DEFAULT_BUDGET


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line and exit 2, as every usage error
        self.exit(2, f"{self.prog}: error: {message}\n")


def _grade_parser(prog: str) -> argparse.ArgumentParser:
    parser = _Parser(prog=prog, description="Grade exercise notebooks (only their cells tagged 'graded' run), "
                                            "one student's folder or a whole class.")
    parser.add_argument("exercise", nargs="*", help="e.g. ex03 or ex03_td_target or 3 (default: all)")
    parser.add_argument("--dir", default="exercises", help="folder holding the notebooks (default: exercises)")
    parser.add_argument("--fast", action="store_true", help="skip the end-to-end training checks")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--time-budget", type=float, default=None, metavar="SECONDS",
                        help=f"wall-clock seconds all checks of one exercise may take together (default: {DEFAULT_BUDGET:g}; "
                             "a check that runs past it, or past its own limit, fails as a hang)")
    parser.add_argument("--gradescope", metavar="FILE", help="also write the report in Gradescope's results.json format "
                                                             "(in Gradescope's autograder: /autograder/results/results.json)")
    group = parser.add_argument_group("a whole class (see bitflip_lib.grading.classroom for the layouts accepted)")
    group.add_argument("--class", dest="klass", metavar="SUBMISSIONS",
                       help="grade every student in this folder (or .zip): one folder per student, or an LMS's flat "
                            "download named <student>_exNN_<name>.ipynb")
    group.add_argument("--out", metavar="DIR", help="where the gradebook, feedback and Gradescope files go (resumable)")
    group.add_argument("--workers", type=int, default=None, metavar="N", help="students graded in parallel (default: CPUs)")
    group.add_argument("--deadline", metavar="WHEN", help="files saved after this (e.g. 2025-03-01T23:59) are late: zero")
    return parser


def _generate_parser(prog: str) -> argparse.ArgumentParser:
    parser = _Parser(prog=prog, description="Write exercises/ from solutions/ (solution blocks become NotImplementedError stubs).")
    parser.add_argument("--solutions", default="solutions", help="source folder (default: solutions)")
    parser.add_argument("--exercises", default="exercises", help="output folder (default: exercises)")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if an exercise is out of date")
    return parser


def _usage(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    from bitflip_lib.grading.api import grade
    from bitflip_lib.grading.model import Report
    from bitflip_lib.grading.registry import EXERCISES, resolve
    from bitflip_lib.grading.stubs import MarkerError, generate

    args = list(sys.argv[1:] if argv is None else argv)
    command = "grade"
    if args and args[0] in ("grade", "generate"):
        command = args.pop(0)

    if command == "generate":
        opts = _generate_parser("python -m bitflip_lib.grading generate").parse_args(args)
        try:
            changed = generate(opts.solutions, opts.exercises, check_only=opts.check)
        except (MarkerError, FileNotFoundError) as err:
            return _usage(str(err))
        if opts.check:
            for path in changed:
                print(f"out of date: {path} (run `python -m bitflip_lib.grading generate`)")
            return 1 if changed else 0
        print(f"wrote {len(changed)} exercise notebook(s)" + (f": {', '.join(str(p) for p in changed)}" if changed else " (all up to date)"))
        return 0

    opts = _grade_parser("bitflip grade").parse_args(args)
    try:
        chosen = [resolve(e) for e in opts.exercise]
    except ValueError as err:
        return _usage(str(err))
    if opts.time_budget is not None and not (math.isfinite(opts.time_budget) and opts.time_budget > 0):
        return _usage(f"--time-budget must be a positive number of seconds, got {opts.time_budget:g}")
    if opts.klass is not None or opts.out is not None:
        return _grade_class(opts, chosen or list(EXERCISES.values()))
    for option, given in (("--workers", opts.workers is not None), ("--deadline", opts.deadline is not None)):
        if given:
            return _usage(f"{option} is for a whole class: add --class SUBMISSIONS --out DIR")
    if not Path(opts.dir).is_dir():
        return _usage(f"--dir {opts.dir!r} is not a folder: give the folder that holds your exercise notebooks "
                      "(default: exercises)")
    from bitflip_lib.grading.sandbox import keep_out_of_reach

    keep_out_of_reach()
    report = Report()
    for exercise in chosen or [None]:
        report.extend(grade(exercise.name if exercise else None, opts.dir, include_slow=not opts.fast, budget=opts.time_budget))
    if opts.gradescope:
        from bitflip_lib.grading.classroom import gradescope_results

        try:
            Path(opts.gradescope).parent.mkdir(parents=True, exist_ok=True)
            Path(opts.gradescope).write_text(json.dumps(gradescope_results(report), indent=1) + "\n", encoding="utf-8")
        except OSError as err:
            return _usage(f"--gradescope {opts.gradescope!r} cannot be written ({err.strerror})")
    if opts.json:
        from bitflip_lib.grading.sandbox import describe_isolation

        print(json.dumps({**report.to_dict(), "isolation": describe_isolation()}, indent=1))
    else:
        print(report)
    return 0 if report.passed else 1


def _grade_class(opts: argparse.Namespace, exercises: list) -> int:
    from bitflip_lib.grading.classroom import ClassError, grade_class
    from bitflip_lib.grading.sandbox import keep_out_of_reach

    if opts.klass is None or opts.out is None:
        return _usage("grading a class needs both --class SUBMISSIONS and --out DIR")
    if opts.json:
        return _usage("--json is for one student's folder; a class's results go to --out DIR")
    if opts.dir != "exercises":
        return _usage("--dir is for one student's folder; a class's folder is --class SUBMISSIONS")
    keep_out_of_reach()
    try:
        grade_class(opts.klass, opts.out, exercises, include_slow=not opts.fast, budget=opts.time_budget,
                    workers=opts.workers, deadline=opts.deadline)
    except ClassError as err:
        return _usage(str(err))
    return 0
