"""How long a class takes to grade (a script, not a test: the figure depends on the machine).

    python -m bitflip_lib.grading.benchmark [--students 30] [--workers 2] [--fast] [--keep DIR]

Fabricates a class from the course's own notebooks: every third student submits every solution,
every third the untouched stubs, and the rest solutions for half the exercises and stubs for the
others; then grades all ten exercises with ``bitflip grade --class`` (end-to-end checks included
unless ``--fast``) and prints the wall-clock time, with the machine's CPU count and load average
(other jobs on the machine slow it down: say so with the figure).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bitflip_lib.grading.registry import EXERCISES
from bitflip_lib.grading.classroom import grade_class
from bitflip_lib.grading.sandbox import library_root
from bitflip_lib.grading.stubs import exercise_text


def make_class(folder: Path, students: int, solutions: Path) -> None:
    names = sorted(EXERCISES)
    for i in range(students):
        student = folder / f"student{i:02d}"
        student.mkdir(parents=True)
        for j, name in enumerate(names):
            solved = i % 3 == 0 or (i % 3 == 2 and j % 2 == 0)
            source = solutions / f"{name}.py"
            text = source.read_text() if solved else exercise_text(source)
            (student / f"{name}.py").write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bitflip_lib.grading.benchmark", description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, default=30)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--fast", action="store_true", help="skip the end-to-end training checks")
    parser.add_argument("--keep", metavar="DIR", help="keep the class and its gradebook in DIR")
    opts = parser.parse_args(argv)
    solutions = library_root() / "solutions"
    if not solutions.is_dir():
        print(f"error: the benchmark needs the course's solutions/ folder, not found at {solutions}", file=sys.stderr)
        return 2
    work = Path(opts.keep) if opts.keep else Path(tempfile.mkdtemp(prefix="bitflip-bench-"))
    try:
        make_class(work / "class", opts.students, solutions)
        load_before = os.getloadavg()
        start = time.monotonic()
        reports = grade_class(work / "class", work / "out", EXERCISES.values(), include_slow=not opts.fast,
                              workers=opts.workers, log=lambda line: None)
        seconds = time.monotonic() - start
        load_after = os.getloadavg()
        checks = sum(len(r.results) for r in reports.values())
        print(json.dumps({
            "students": opts.students, "exercises": len(EXERCISES), "checks": checks, "workers": opts.workers,
            "end_to_end": not opts.fast, "seconds": round(seconds, 1),
            "seconds_per_student": round(seconds / opts.students, 1), "cpus": os.cpu_count(),
            "load_average_before": [round(x, 2) for x in load_before], "load_average_after": [round(x, 2) for x in load_after],
        }))
    finally:
        if not opts.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
