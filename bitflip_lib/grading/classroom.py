"""Grading a whole class in one command.

    bitflip grade --class SUBMISSIONS --out DIR [--exercises ex01 ex04 ...] [--workers N]
                  [--fast] [--deadline 2025-03-01T23:59] [--time-budget SECONDS]

``SUBMISSIONS`` is a folder (or a ``.zip`` of one) in either layout, or a mix of both:

* **one folder per student**: ``SUBMISSIONS/<student>/ex04_polyak.ipynb`` (``.py`` too; the file
  may sit deeper in the student's folder, and its name need only start with ``exNN``: ``ex04.ipynb``,
  ``ex04_polyak (1).ipynb``). Moodle's download (``Full Name_12345_assignsubmission_file_/``) is
  this layout.
* **a flat archive**, as an LMS download gives it: ``SUBMISSIONS/<student>_ex04_polyak.ipynb``,
  the student being everything before ``_exNN``. Canvas's names
  (``doejane_12345_67890_ex04_polyak.ipynb``, ``doejane_LATE_12345_67890_ex04_polyak.ipynb``) are
  recognised: ``LATE`` marks a late file, and the second number (the file's own id) is dropped so
  that a student's files stay together.

When a student has both forms of an exercise, the ``.ipynb`` is graded if it is at least as new as
the ``.py`` (as ``bitflip grade`` does); when several files claim one exercise, the one named
exactly like the exercise wins, then the newest, and the feedback says which was graded.

Every student is graded by parallel workers (``--workers``, default: the number of CPUs), each
with its own supervisor and the same limits as ``bitflip grade``. Every file is read before any
student code runs. Results are journalled in ``DIR/.journal.jsonl`` as each exercise finishes: run
the command again after an interruption and finished exercises (same file, same options) are
not graded again. A missing exercise, or a late one (marked so, or with ``--deadline`` saved after
it), scores zero with the reason; nothing a submission holds stops the others from being graded.

Outputs, written when every student is done:

* ``DIR/gradebook.csv``: one row per student and exercise: student, exercise, points, maximum,
  note, then one column per check (``exNN_name: check``) with the points it earned;
* ``DIR/totals.csv``: one row per student: student, points, maximum;
* ``DIR/feedback/<student>.txt``: the report the student would see from ``bitflip grade``;
* ``DIR/gradescope/<student>/results.json``: Gradescope's autograder format (``score``, and one
  entry per check in ``tests`` with ``name``, ``score``, ``max_score``, ``status``, ``output``).

Each check's points are declared beside it (``Check(points=...)``, 1 by default).
"""
from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import multiprocessing
import os
import re
import shutil
import tempfile
import time
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from bitflip_lib.grading.model import Exercise, Report, all_failed, chosen_checks
from bitflip_lib.grading.notebook import LoadError, read_notebook_bytes

NOTEBOOK_SUFFIXES = (".ipynb", ".py")
_EXERCISE_TOKEN = re.compile(r"(?i)(?:^|[_\-. ])ex(\d{1,2})(?=[_\-. (]|$)")
MAX_ARCHIVE_BYTES = 2 << 30
"""Uncompressed bytes a class archive may hold."""


class ClassError(ValueError):
    """The class folder or the options cannot be used (a usage error: one line, exit 2)."""


@dataclass
class Found:
    """A student's file for one exercise."""

    path: Path
    late: bool = False
    saved: float = 0.0
    """When it was saved (seconds since the epoch)."""


@dataclass
class Student:
    name: str
    files: dict[str, list[Found]] = field(default_factory=dict)
    """Exercise name -> candidate files."""


# --- finding the submissions ----------------------------------------------------------------------


def _exercise_of(filename: str, exercises: dict[str, Exercise]) -> tuple[str, int] | None:
    """(exercise name, position of its token) when ``filename`` names one of ``exercises``."""
    stem = filename.rsplit(".", 1)[0]
    for match in _EXERCISE_TOKEN.finditer(stem):
        short = f"ex{int(match.group(1)):02d}"
        for name, exercise in exercises.items():
            if exercise.short == short:
                return name, match.start()
    return None


def _canvas_student(prefix: str) -> tuple[str, bool]:
    """The student of a flat file's name prefix, and whether it is marked late."""
    tokens = [t for t in re.split(r"[_\s]+", prefix.strip("_- .")) if t]
    late = any(t.lower() == "late" for t in tokens)
    tokens = [t for t in tokens if t.lower() != "late"]
    if len(tokens) >= 3 and tokens[-1].isdigit() and tokens[-2].isdigit():
        tokens = tokens[:-1]  # Canvas: name_userid_fileid_...: the file's own id differs per file
    return "_".join(tokens), late


def find_students(root: Path, exercises: dict[str, Exercise]) -> dict[str, Student]:
    """Every student in ``root`` (either layout, see the module's docstring)."""
    students: dict[str, Student] = {}

    def add(student: str, exercise: str, found: Found) -> None:
        students.setdefault(student, Student(student)).files.setdefault(exercise, []).append(found)

    for entry in sorted(root.iterdir()):
        if entry.name.startswith(".") or entry.is_symlink():
            continue
        if entry.is_dir():
            students.setdefault(entry.name, Student(entry.name))
            for path in sorted(p for p in entry.rglob("*") if p.suffix in NOTEBOOK_SUFFIXES and p.is_file()
                               and not p.is_symlink() and not any(part.startswith(".") for part in p.relative_to(entry).parts)):
                which = _exercise_of(path.name, exercises)
                if which is not None:
                    add(entry.name, which[0], Found(path, saved=path.stat().st_mtime))
        elif entry.is_file() and entry.suffix in NOTEBOOK_SUFFIXES:
            which = _exercise_of(entry.name, exercises)
            if which is None or which[1] == 0:
                continue  # no student before the exercise's name
            student, late = _canvas_student(entry.name[:which[1]])
            if student:
                add(student, which[0], Found(entry, late=late, saved=entry.stat().st_mtime))
    return students


def choose(exercise: Exercise, candidates: list[Found]) -> tuple[Found, str]:
    """The file to grade among a student's candidates, and a note when there was a choice."""
    exact = [f for f in candidates if f.path.stem.lower() == exercise.name]
    pool = exact or candidates
    ipynb = [f for f in pool if f.path.suffix == ".ipynb"]
    py = [f for f in pool if f.path.suffix == ".py"]
    newest = lambda fs: max(fs, key=lambda f: f.saved) if fs else None  # noqa: E731
    best_ipynb, best_py = newest(ipynb), newest(py)
    if best_ipynb is not None and (best_py is None or best_ipynb.saved >= best_py.saved):
        chosen = best_ipynb
    else:
        chosen = best_py
    note = ""
    if len(candidates) > 1 and not (len(candidates) == 2 and len(ipynb) == 1 and len(py) == 1
                                    and ipynb[0].path.stem == py[0].path.stem):
        note = f"several files for {exercise.name}: graded {chosen.path.name}"
    return chosen, note


def _safe_extract(archive: Path, into: Path) -> Path:
    """Extract a zip without letting a member escape ``into`` or fill the disk."""
    try:
        with zipfile.ZipFile(archive) as zf:
            total = 0
            for info in zf.infolist():
                total += info.file_size
                if total > MAX_ARCHIVE_BYTES:
                    raise ClassError(f"{archive} unpacks to more than {MAX_ARCHIVE_BYTES >> 30} GB")
                name = info.filename
                if info.is_dir() or name.startswith("__MACOSX/"):
                    continue
                target = (into / name).resolve()
                if not target.is_relative_to(into.resolve()) or (info.external_attr >> 16) & 0o170000 == 0o120000:
                    continue  # absolute paths, '..' and symbolic links stay out
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as source, open(target, "wb") as out:
                    shutil.copyfileobj(source, out, 1 << 20)
                stamp = dt.datetime(*info.date_time).timestamp()
                os.utime(target, (stamp, stamp))
    except zipfile.BadZipFile as err:
        raise ClassError(f"{archive} is not a zip archive ({err})") from None
    entries = [p for p in into.iterdir() if not p.name.startswith((".", "__MACOSX"))]
    # An archive of the class's folder: its one top folder holds the students (a student's own
    # folder would hold files named exNN_... directly).
    if len(entries) == 1 and entries[0].is_dir() and not any(
            p.is_file() and re.match(r"(?i)ex\d", p.name) for p in entries[0].iterdir()):
        return entries[0]
    return into


def _parse_deadline(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ClassError(f"--deadline {text!r} is not a date and time: write it as 2025-03-01T23:59 "
                         "(local time, or with an offset such as +01:00)") from None
    return moment.timestamp()


# --- grading --------------------------------------------------------------------------------------


@dataclass
class Task:
    student: str
    exercise: str
    path: str
    shown: str
    data: bytes
    digest: str


def _options_key(include_slow: bool, budget: float | None) -> str:
    from bitflip_lib._version import __version__

    return f"v{__version__}|slow={include_slow}|budget={budget}"


def _lane_start() -> None:
    """(A worker of the class grader.) One thread, and a supervisor of its own, started now."""
    import torch

    from bitflip_lib.grading import runner

    torch.set_num_threads(1)
    runner.warm_up()


def _grade_task(task: Task, include_slow: bool, budget: float | None) -> dict:
    """(A worker of the class grader.) One student's exercise; the report as a dict."""
    from bitflip_lib.grading.registry import EXERCISES
    from bitflip_lib.grading.runner import run_checks, submission_from

    exercise = EXERCISES[task.exercise]
    source = submission_from(exercise, Path(task.path), task.data, task.shown)
    return run_checks(exercise, chosen_checks(exercise, include_slow), source, budget=budget).to_dict()


def _read_journal(path: Path) -> dict[tuple[str, str], dict]:
    done: dict[tuple[str, str], dict] = {}
    if not path.exists():
        return done
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            entry = json.loads(line)
            done[(entry["student"], entry["exercise"])] = entry
        except (ValueError, KeyError, TypeError):
            continue  # a line cut short by an interruption
    return done


def grade_class(submissions: str | Path, out: str | Path, exercises: Iterable[Exercise], include_slow: bool = True,
                budget: float | None = None, workers: int | None = None, deadline: str | None = None,
                log=print) -> dict[str, Report]:  # noqa: ANN001
    """Grade every student in ``submissions`` into ``out`` (see the module's docstring).
    Returns each student's report."""
    submissions, out = Path(submissions), Path(out)
    chosen = {e.name: e for e in exercises}
    due = _parse_deadline(deadline)
    if workers is not None and workers < 1:
        raise ClassError(f"--workers must be at least 1, got {workers}")
    if not submissions.exists():
        raise ClassError(f"--class {str(submissions)!r} does not exist: give the folder (or .zip) of the class's submissions")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ClassError(f"--out {str(out)!r} cannot be created ({err.strerror})") from None
    if submissions.is_dir() and out.resolve().is_relative_to(submissions.resolve()):
        raise ClassError("--out must not lie inside the submissions folder (the gradebook would be taken for a submission)")
    unpacked = None
    if submissions.is_file():
        if submissions.suffix.lower() != ".zip":
            raise ClassError(f"--class {str(submissions)!r} is a file but not a .zip archive")
        unpacked = Path(tempfile.mkdtemp(prefix="bitflip-class-"))
        root = _safe_extract(submissions, unpacked)
    else:
        root = submissions
    try:
        return _grade(root, out, chosen, include_slow, budget, workers, due, log)
    finally:
        if unpacked is not None:
            shutil.rmtree(unpacked, ignore_errors=True)


def _grade(root: Path, out: Path, chosen: dict[str, Exercise], include_slow: bool, budget: float | None,
           workers: int | None, due: float | None, log) -> dict[str, Report]:  # noqa: ANN001
    started = time.monotonic()
    students = find_students(root, chosen)
    if not students:
        raise ClassError(f"no submissions found in {root}: expected one folder per student, or files named "
                         "<student>_exNN_<name>.ipynb")
    options = _options_key(include_slow, budget)
    journal_path = out / ".journal.jsonl"
    journal = {k: v for k, v in _read_journal(journal_path).items() if v.get("options") == options}
    reports: dict[tuple[str, str], Report] = {}
    notes: dict[str, list[str]] = {name: [] for name in students}
    tasks: list[Task] = []
    for name in sorted(students):
        student = students[name]
        for exercise in chosen.values():
            candidates = student.files.get(exercise.name, [])
            if not candidates:
                reports[(name, exercise.name)] = all_failed(
                    exercise, f"missing: no {exercise.name}.ipynb (or .py) was submitted", include_slow, note="missing")
                continue
            found, note = choose(exercise, candidates)
            if note:
                notes[name].append(note)
            if found.late or (due is not None and found.saved > due):
                when = dt.datetime.fromtimestamp(found.saved).isoformat(timespec="minutes")
                why = "marked late by the LMS" if found.late else f"saved {when}, after the deadline"
                reports[(name, exercise.name)] = all_failed(exercise, f"late: {found.path.name} was {why}", include_slow,
                                                            note="late")
                continue
            try:
                data = read_notebook_bytes(found.path)
            except LoadError as err:  # not a regular file, too large to be a notebook, unreadable
                reports[(name, exercise.name)] = all_failed(exercise, f"could not load the notebook: {err}",
                                                            include_slow)
                continue
            digest = hashlib.sha256(data).hexdigest()
            entry = journal.get((name, exercise.name))
            if entry is not None and entry.get("sha256") == digest:
                reports[(name, exercise.name)] = Report.from_dict(entry["report"])
                continue
            shown = str(found.path.relative_to(root)) if found.path.is_relative_to(root) else found.path.name
            tasks.append(Task(name, exercise.name, str(found.path), shown, data, digest))
    from bitflip_lib.grading.sandbox import describe_isolation

    log(f"isolation of student code: {describe_isolation()}")
    reused = sum(1 for (s, e) in reports if (s, e) in journal)
    log(f"{len(students)} students, {len(chosen)} exercises: {len(tasks)} to grade"
        + (f", {reused} already graded in an earlier run" if reused else ""))
    if tasks:
        _run_tasks(tasks, include_slow, budget, workers, journal_path, options, reports, log)
    by_student = {}
    for name in sorted(students):
        report = Report()
        for exercise in chosen.values():
            report.extend(reports[(name, exercise.name)])
        by_student[name] = report
    _write_outputs(out, by_student, chosen, notes, include_slow)
    log(f"graded in {time.monotonic() - started:.0f} s: {out / 'gradebook.csv'}, {out / 'totals.csv'}, "
        f"{out / 'feedback'}/, {out / 'gradescope'}/")
    return by_student


def _lane_main(connection, include_slow: bool, budget: float | None) -> None:  # pragma: no cover - a lane
    """(A worker of the class grader.) Grade the tasks sent until told to stop (None)."""
    _lane_start()
    while True:
        task = connection.recv()
        if task is None:
            return
        try:
            answer = _grade_task(task, include_slow, budget)
        except Exception as err:  # noqa: BLE001 - reported for this task; the lane carries on
            answer = {"error": f"{type(err).__name__}: {err}"}
        connection.send(answer)


class _Lane:
    """One worker process of the class grader (trusted: it runs checks, never student code),
    with its own supervisor. It grades one task at a time, so a lane that dies names its task."""

    def __init__(self, context, include_slow: bool, budget: float | None) -> None:  # noqa: ANN001
        self.connection, child = context.Pipe()
        self.process = context.Process(target=_lane_main, args=(child, include_slow, budget), daemon=True)
        self.process.start()
        child.close()
        self.task: Task | None = None

    def give(self, task: Task) -> None:
        self.task = task
        self.connection.send(task)

    def stop(self) -> None:
        try:
            self.connection.send(None)
        except OSError:
            pass
        self.process.join(timeout=30)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()


def _run_tasks(tasks: list[Task], include_slow: bool, budget: float | None, workers: int | None, journal_path: Path,
               options: str, reports: dict, log) -> None:  # noqa: ANN001
    from multiprocessing.connection import wait

    from bitflip_lib.grading.registry import EXERCISES

    count = min(workers or max(1, os.cpu_count() or 1), len(tasks))
    context = multiprocessing.get_context("fork")
    todo = list(reversed(tasks))
    lanes: list[_Lane] = []
    done = 0
    with open(journal_path, "a", encoding="utf-8") as journal:
        try:
            while todo or any(lane.task is not None for lane in lanes):
                while todo and len([lane for lane in lanes if lane.task is not None]) < count:
                    idle = next((lane for lane in lanes if lane.task is None), None)
                    if idle is None:
                        idle = _Lane(context, include_slow, budget)
                        lanes.append(idle)
                    idle.give(todo.pop())
                busy = [lane for lane in lanes if lane.task is not None]
                ready = wait([lane.connection for lane in busy] + [lane.process.sentinel for lane in busy])
                for lane in busy:
                    task = lane.task
                    if lane.connection in ready:
                        try:
                            answer = lane.connection.recv()
                        except (EOFError, OSError):
                            answer = None
                    elif lane.process.sentinel in ready:
                        answer = None
                    else:
                        continue
                    lane.task = None
                    exercise = EXERCISES[task.exercise]
                    if answer is None:  # the lane died grading this task: the student's code stopped it
                        lanes.remove(lane)
                        lane.process.kill()
                        report = all_failed(exercise, "the process grading this file was killed while it ran your code "
                                            "(did your code kill it?): it could not be graded", include_slow)
                    elif "error" in answer:
                        report = all_failed(exercise, f"the grader could not grade this file ({answer['error']})", include_slow)
                    else:
                        report = Report.from_dict(answer)
                        journal.write(json.dumps({"student": task.student, "exercise": task.exercise, "sha256": task.digest,
                                                  "options": options, "report": answer}) + "\n")
                        journal.flush()
                    reports[(task.student, task.exercise)] = report
                    done += 1
                    log(f"  [{done}/{len(tasks)}] {task.student} {task.exercise}: {report.points:g}/{report.max_points:g}")
        finally:
            for lane in lanes:
                if lane.task is not None:
                    lane.process.kill()
                lane.stop()


# --- outputs ---------------------------------------------------------------------------------------


def _cell(value: object) -> str:
    """A CSV cell that a spreadsheet shows as text, never runs as a formula."""
    text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _number(x: float) -> str:
    return f"{x:g}"


def _file_name(student: str, taken: set[str]) -> str:
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", student).strip("._") or "student"
    name, i = base, 2
    while name.lower() in taken:
        name, i = f"{base}_{i}", i + 1
    taken.add(name.lower())
    return name


def gradescope_results(report: Report, notes: Iterable[str] = ()) -> dict:
    """Gradescope's ``results.json`` for one student's report."""
    tests = []
    for r in report.results:
        output = r.message
        if r.output_lines:
            output += f"\nyour code printed {r.output_lines} line(s); the first: " + " | ".join(r.output)
        tests.append({"name": f"{r.exercise}: {r.check}", "score": r.points, "max_score": r.max_points,
                      "status": "passed" if r.passed else "failed", "output": output})
    seconds = sum(report.seconds.values())
    return {"score": report.points, "execution_time": round(seconds), "output": "\n".join([*notes, report.summary_line()]),
            "tests": tests}


def _write_outputs(out: Path, by_student: dict[str, Report], chosen: dict[str, Exercise], notes: dict[str, list[str]],
                   include_slow: bool) -> None:
    columns = [(e.name, c.name) for e in chosen.values() for c in chosen_checks(e, include_slow)]
    book = io.StringIO()
    writer = csv.writer(book, lineterminator="\n")
    writer.writerow(["student", "exercise", "points", "maximum", "note", *[f"{e}: {c}" for e, c in columns]])
    totals = io.StringIO()
    total_writer = csv.writer(totals, lineterminator="\n")
    total_writer.writerow(["student", "points", "maximum"])
    for student, report in by_student.items():
        for exercise in chosen.values():
            results = {r.check: r for r in report.results if r.exercise == exercise.name}
            points = sum(r.points for r in results.values())
            maximum = sum(r.max_points for r in results.values())
            cells = [_number(results[c].points) if e == exercise.name and c in results else "" for e, c in columns]
            writer.writerow([_cell(student), exercise.name, _number(points), _number(maximum),
                             report.notes.get(exercise.name, ""), *cells])
        total_writer.writerow([_cell(student), _number(report.points), _number(report.max_points)])
    _write(out / "gradebook.csv", book.getvalue())
    _write(out / "totals.csv", totals.getvalue())
    feedback, gradescope = out / "feedback", out / "gradescope"
    for folder in (feedback, gradescope):
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir()
    taken: set[str] = set()
    for student, report in by_student.items():
        name = _file_name(student, taken)
        text = "\n".join([f"Feedback for {student}", *notes.get(student, []), "", str(report), ""])
        _write(feedback / f"{name}.txt", text)
        (gradescope / name).mkdir()
        _write(gradescope / name / "results.json", json.dumps(gradescope_results(report, notes.get(student, [])), indent=1) + "\n")


def _write(path: Path, text: str) -> None:
    """Write whole or not at all (an interrupted run leaves the previous file)."""
    temporary = path.with_name(path.name + ".part")
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(path)
