"""Command line of the graders.

    python -m bitflip_lib.grading grade [EXERCISE ...] [--dir exercises] [--fast] [--json] [--time-budget SECONDS]
    python -m bitflip_lib.grading generate [--solutions solutions] [--exercises exercises] [--check]

``bitflip grade ...`` (the course's command) calls :func:`main` with the arguments after ``grade``.
Exit code 0 only when every check passes (``grade``) or nothing is out of date (``generate --check``).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from bitflip_lib.grading.model import DEFAULT_BUDGET


def _grade_parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="Grade exercise notebooks (only their cells tagged 'graded' run).")
    parser.add_argument("exercise", nargs="*", help="e.g. ex03 or ex03_td_target or 3 (default: all)")
    parser.add_argument("--dir", default="exercises", help="folder holding the notebooks (default: exercises)")
    parser.add_argument("--fast", action="store_true", help="skip the end-to-end training checks")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--time-budget", type=float, default=None, metavar="SECONDS",
                        help=f"wall-clock seconds all checks of one exercise may take together (default: {DEFAULT_BUDGET:g}; "
                             "a check that runs past it, or past its own limit, fails as a hang)")
    return parser


def _generate_parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="Write exercises/ from solutions/ (solution blocks become NotImplementedError stubs).")
    parser.add_argument("--solutions", default="solutions", help="source folder (default: solutions)")
    parser.add_argument("--exercises", default="exercises", help="output folder (default: exercises)")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if an exercise is out of date")
    return parser


def main(argv: list[str] | None = None) -> int:
    from bitflip_lib.grading import Report, grade, resolve
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
            print(f"error: {err}", file=sys.stderr)
            return 2
        if opts.check:
            for path in changed:
                print(f"out of date: {path} (run `python -m bitflip_lib.grading generate`)")
            return 1 if changed else 0
        print(f"wrote {len(changed)} exercise notebook(s)" + (f": {', '.join(str(p) for p in changed)}" if changed else " (all up to date)"))
        return 0

    opts = _grade_parser("bitflip grade").parse_args(args)
    try:
        names = [resolve(e).name for e in opts.exercise] or [None]
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if not Path(opts.dir).is_dir():
        print(f"error: --dir {opts.dir!r} is not a folder: give the folder that holds your exercise notebooks "
              "(default: exercises)", file=sys.stderr)
        return 2
    if opts.time_budget is not None and not (math.isfinite(opts.time_budget) and opts.time_budget > 0):
        print(f"error: --time-budget must be a positive number of seconds, got {opts.time_budget:g}", file=sys.stderr)
        return 2
    report = Report()
    for name in names:
        report.extend(grade(name, opts.dir, include_slow=not opts.fast, budget=opts.time_budget))
    if opts.json:
        print(json.dumps(report.to_dict(), indent=1))
    else:
        print(report)
    return 0 if report.passed else 1
