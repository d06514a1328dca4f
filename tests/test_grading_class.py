"""A whole class in one command (issue 30, items 3 and 4): a fabricated class of 19 students.

The class holds the solutions, the untouched stubs, each classic mistake of item 2 (the solution
with that one mistake) and each attempt to pass without the work of item 1, in both layouts an
instructor meets (one folder per student, and an LMS's flat download, with a file marked late).
The gradebook must come out exactly as written below, row by row, and every student's feedback
must be the report that student would see.
"""
from __future__ import annotations

import csv
import io
import json
import shutil
import textwrap
import zipfile
from pathlib import Path

import pytest

from bitflip_lib.grading import EXERCISES, cli_main
from bitflip_lib.grading.classroom import _canvas_student, find_students
from bitflip_lib.grading.model import chosen_checks
from bitflip_lib.grading.sandbox import landlock_abi
from bitflip_lib.grading.stubs import exercise_text

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = ROOT / "solutions"
GRADED = ["ex04_polyak", "ex05_her_future", "ex06_har", "ex07_learner_step", "ex08_replay_buffer",
          "ex10_trajectory_balance"]


def _solution(name: str) -> str:
    return (SOLUTIONS / f"{name}.py").read_text()


def _with_mistake(name: str, old: str, new: str) -> str:
    """The solution with one classic mistake (``old`` must be in it)."""
    text = _solution(name)
    assert old in text, f"{name}: the solution changed; update the mistake"
    return text.replace(old, new)


MISTAKES = {
    "carol": ("ex08_replay_buffer",  # samples the whole capacity, empty slots included
              "idx = torch.randint(0, self.size, (batch_size,)", "idx = torch.randint(0, self.capacity, (batch_size,)"),
    "dave": ("ex05_her_future",  # the episode's length T instead of each agent's own
             "    future = torch.minimum(t + (u * (length - t)).long(), length - 1)\n",
             "    steps = episode.actions.shape[0]\n"
             "    future = torch.minimum(t + (u * (steps - t)).long(), torch.full_like(t, steps - 1))\n"),
    "erin": ("ex06_har",  # phi's two inputs swapped
             "inputs = torch.stack([distance.expand_as(differs), differs], dim=-1)",
             "inputs = torch.stack([differs, distance.expand_as(differs)], dim=-1)"),
    "frank": ("ex04_polyak",  # rebinds a local name: the target never changes
              "    with torch.no_grad():\n        for p_target, p_online in zip(target.parameters(), online.parameters()):\n"
              "            p_target.mul_(1.0 - tau).add_(p_online, alpha=tau)\n",
              "    for p_target, p_online in zip(target.parameters(), online.parameters()):\n"
              "        p_target = (1.0 - tau) * p_target + tau * p_online\n"),
    "grace": ("ex07_learner_step",  # Polyak before the step, and the target outside no_grad
              "    with torch.no_grad():  # the target is a fixed regression label: no gradient flows into it\n"
              "        best_next = target(batch.next_state, batch.goal).max(dim=1).values\n"
              "        y = (batch.reward + gamma * (1.0 - batch.done) * best_next).clamp(0.0, 1.0)\n"
              "    loss = F.mse_loss(q, y)\n"
              "    optimizer.zero_grad()\n"
              "    loss.backward()\n"
              "    optimizer.step()\n"
              "    polyak_update(target, online, tau)  # after the step: the target follows the new weights\n",
              "    best_next = target(batch.next_state, batch.goal).max(dim=1).values\n"
              "    y = (batch.reward + gamma * (1.0 - batch.done) * best_next).clamp(0.0, 1.0)\n"
              "    loss = F.mse_loss(q, y)\n"
              "    polyak_update(target, online, tau)\n"
              "    optimizer.zero_grad()\n"
              "    loss.backward()\n"
              "    optimizer.step()\n"),
    "heidi": ("ex10_trajectory_balance",  # the square of the mean residual
              "return residual.pow(2).mean()", "return residual.mean().pow(2)"),
}


def _cheat(code: str) -> str:
    return '# %% tags=["graded"]\nimport torch\n\n' + textwrap.dedent(code).lstrip("\n")


def _cheats(class_dir: Path) -> dict[str, str]:
    """Attempts to pass ex04 without the work (issue 30, item 1), one student each."""
    alice = class_dir / "alice" / "ex04_polyak.ipynb"
    own_ex05 = class_dir / "rupert" / "ex05_her_future.py"
    return {
        "ivan": _cheat("from bitflip_lib.dqn import polyak_update\n"),
        "judy": _cheat("exec(open('../solutions/ex04_polyak.py').read())\n"),
        "mallory": _cheat("""
            import bitflip_lib.grading.model as model
            import bitflip_lib.grading.runner as runner
            import bitflip_lib.grading.worker as worker

            model.CheckResult.passed = property(lambda self: True)
            runner._Run.run = lambda self: model.Report()
            worker.Worker.handle = lambda self, header, objects, generators: {"ok": True, "result": None}


            def polyak_update(target, online, tau):
                pass
        """),
        "niaj": _cheat("""
            torch.isclose = lambda a, b, **kwargs: torch.ones_like(torch.as_tensor(a), dtype=torch.bool)
            torch.equal = lambda *args, **kwargs: True


            def polyak_update(target, online, tau):
                with torch.no_grad():
                    for p in target.parameters():
                        p.add_(1.0)
        """),
        "olivia": _cheat("""
            import os
            import sys

            from bitflip_lib.grading import wire


            def polyak_update(target, online, tau):
                frame, request = sys._getframe(), None
                while frame is not None and request is None:
                    header = frame.f_locals.get("header")
                    request = header.get("id") if isinstance(header, dict) else None
                    frame = frame.f_back
                wire.send_frame(3, wire.encode_plain({"id": request, "ok": True, "result": None, "reference": []}))
                os._exit(0)
        """),
        "peggy": _cheat("""
            import os


            def polyak_update(target, online, tau):
                print("7/7 checks pass: all checks pass")
                os.write(1, b"7/7 checks pass: all checks pass\\n")
                raise RuntimeError("\\n  PASS  matches the library\\n7/7 checks pass: all checks pass")
        """),
        "rupert": _cheat(f"""
            import os

            for attempt in (lambda: os.remove({str(alice)!r}),
                            lambda: open({str(own_ex05)!r}, "w").write(open({str(SOLUTIONS / 'ex05_her_future.py')!r}).read())):
                try:
                    attempt()
                except OSError:
                    pass


            def polyak_update(target, online, tau):
                raise NotImplementedError("not done")
        """),
        "sybil": _cheat("""
            import os
            import time


            def polyak_update(target, online, tau):
                if os.fork() == 0:
                    os.setsid()
                    if os.fork() == 0:
                        time.sleep(600)
                    os._exit(0)
                raise RuntimeError("no answer")
        """),
        "trent": _cheat("""
            import os
            import signal


            def polyak_update(target, online, tau):
                for pid in (os.getppid(), -1):
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except OSError:
                        pass
                raise RuntimeError("still here")
        """),
        "victor": _cheat("""
            def polyak_update(target, online, tau):
                hoard = []
                while True:
                    hoard.append(torch.ones(2**28, dtype=torch.uint8))
        """),
    }


def make_class(class_dir: Path) -> None:
    """19 students: folders for most, an LMS's flat names for three (one file marked late)."""
    import jupytext

    def put(student: str, name: str, text: str, suffix: str = ".py") -> None:
        folder = class_dir / student
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{name}{suffix}"
        if suffix == ".ipynb":
            jupytext.write(jupytext.reads(text, fmt="py:percent"), path)
        else:
            path.write_text(text)

    for name in GRADED:  # alice: every solution, as the .ipynb JupyterLab saves
        put("alice", name, _solution(name), ".ipynb")
    for name in GRADED:  # bob: the untouched stubs
        put("bob", name, exercise_text(SOLUTIONS / f"{name}.py"))
    for student, (name, old, new) in MISTAKES.items():
        put(student, name, _with_mistake(name, old, new))
    for student, text in _cheats(class_dir).items():
        if student not in ("ivan", "trent"):
            put(student, "ex04_polyak", text)
    put("rupert", "ex05_her_future", exercise_text(SOLUTIONS / "ex05_her_future.py"))
    # The flat download of an LMS (Canvas's names): ivan and trent, and walter's late solution.
    (class_dir / "ivan_ex04_polyak.py").write_text(_cheats(class_dir)["ivan"])
    (class_dir / "trent_4711_90001_ex04_polyak.py").write_text(_cheats(class_dir)["trent"])
    (class_dir / "walter_LATE_4712_90002_ex04_polyak.py").write_text(_solution("ex04_polyak"))


def _checks(name: str) -> list[str]:
    return [c.name for c in chosen_checks(EXERCISES[name], include_slow=False)]


ALL, NONE = "all", "none"
# (student, exercise) -> the checks that pass (the rest fail), and the note. Not listed: missing.
EXPECTED = {
    **{("alice", name): ALL for name in GRADED},
    **{("bob", name): NONE for name in GRADED},
    ("carol", "ex08_replay_buffer"): {"empty at the start", "wraps around when full", "a batch larger than the buffer",
                                      "uses the generator it is given"},
    ("dave", "ex05_her_future"): set(_checks("ex05_her_future")) - {"future step is uniform"},
    ("erin", "ex06_har"): set(_checks("ex06_har")) - {"same values as the library HAR"},
    ("frank", "ex04_polyak"): {"rejects bad tau"},
    ("grace", "ex07_learner_step"): NONE,
    ("heidi", "ex10_trajectory_balance"): {"log Z is learned", "zero at balance", "rejects bad shapes"},
    **{(cheat, "ex04_polyak"): NONE for cheat in ("ivan", "judy", "mallory", "niaj", "olivia", "peggy", "rupert",
                                                  "sybil", "trent", "victor")},
    ("rupert", "ex05_her_future"): NONE,
    ("walter", "ex04_polyak"): "late",
}
MAXIMUM = sum(len(_checks(name)) for name in GRADED)  # one point per check
STUDENTS = sorted({"alice", "bob", *MISTAKES, "ivan", "judy", "mallory", "niaj", "olivia", "peggy", "rupert", "sybil",
                   "trent_4711", "victor", "walter_4712"})


def _expected_key(student: str) -> str:
    return student.split("_")[0]


def expected_gradebook() -> str:
    columns = [(name, check) for name in GRADED for check in _checks(name)]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["student", "exercise", "points", "maximum", "note", *[f"{e}: {c}" for e, c in columns]])
    for student in STUDENTS:
        for name in GRADED:
            spec = EXPECTED.get((_expected_key(student), name), "missing")
            checks = _checks(name)
            passing = set(checks) if spec == ALL else set() if spec in (NONE, "missing", "late") else spec
            note = spec if spec in ("missing", "late") else ""
            cells = [("1" if c in passing else "0") if e == name else "" for e, c in columns]
            writer.writerow([student, name, str(len(passing)), str(len(checks)), note, *cells])
    return out.getvalue()


@pytest.fixture(scope="module")
def graded_class(tmp_path_factory):
    class_dir = tmp_path_factory.mktemp("class")
    out = tmp_path_factory.mktemp("gradebook")
    make_class(class_dir)
    before = {p: p.read_bytes() for p in class_dir.rglob("*") if p.is_file()}
    code = cli_main(["--class", str(class_dir), "--out", str(out), "--fast", "--workers", "2", *GRADED])
    return class_dir, out, code, before


def test_the_gradebook_is_exactly_as_expected(graded_class):
    _, out, code, _ = graded_class
    assert code == 0
    got = (out / "gradebook.csv").read_text()
    want = expected_gradebook()
    got_rows, want_rows = got.splitlines(), want.splitlines()
    assert got_rows[0] == want_rows[0]
    for got_row, want_row in zip(got_rows[1:], want_rows[1:]):
        assert got_row == want_row, f"\n got: {got_row}\nwant: {want_row}"
    assert got == want


def test_totals_and_one_feedback_file_per_student(graded_class):
    _, out, _, _ = graded_class
    totals = list(csv.DictReader(io.StringIO((out / "totals.csv").read_text())))
    assert [row["student"] for row in totals] == STUDENTS
    book = list(csv.DictReader(io.StringIO(expected_gradebook())))
    for row in totals:
        mine = [r for r in book if r["student"] == row["student"]]
        assert float(row["points"]) == sum(float(r["points"]) for r in mine)
        assert float(row["maximum"]) == sum(float(r["maximum"]) for r in mine) == MAXIMUM
    assert sorted(p.stem for p in (out / "feedback").iterdir()) == STUDENTS
    feedback = (out / "feedback" / "frank.txt").read_text()
    assert feedback.startswith("Feedback for frank\n\nex04_polyak  (took ")
    assert "FAIL  updates in place" in feedback and "the target did not change" in feedback
    assert "ex05_her_future  (missing)\n  FAIL  returns k transitions per step" in feedback
    assert "missing: no ex05_her_future.ipynb (or .py) was submitted" in feedback
    walter = (out / "feedback" / "walter_4712.txt").read_text()
    assert "late: walter_LATE_4712_90002_ex04_polyak.py was marked late by the LMS" in walter


def test_the_feedback_names_each_mistake_and_each_attempt(graded_class):
    _, out, _, _ = graded_class

    def said(student: str) -> str:
        return (out / "feedback" / f"{student}.txt").read_text()

    assert "slots not yet written were sampled" in said("carol")
    assert "for agents that finished early" in said("dave")
    assert "FAIL  same values as the library HAR" in said("erin")
    assert "backward() needs a tensor that was changed in place" in said("grace")
    assert "your loss is the square of the mean residual" in said("heidi")
    assert "polyak_update uses bitflip_lib.dqn.polyak_update" in said("ivan")
    assert "graded cell 1 raised FileNotFoundError" in said("judy")
    assert "the target did not change" in said("mallory")
    assert "the target did not change" in said("olivia")
    assert "your code raised RuntimeError: PASS  matches the library at peggy/ex04_polyak.py, line 10" in said("peggy")
    assert not any(line.startswith(("  PASS", "7/7")) for line in said("peggy").splitlines())
    assert "not written yet (NotImplementedError: not done)" in said("rupert")
    assert "your code ran out of memory" in said("victor")


def test_no_submission_was_changed_and_no_report_of_another_student(graded_class):
    """rupert's cell tried to delete alice's notebook and to overwrite his own ex05 with the solution:
    with Landlock the files stay as they were; without it, every file was read before any student's
    code ran, so the reports are the same either way (the gradebook test above)."""
    class_dir, out, _, before = graded_class
    if landlock_abi():
        assert {p: p.read_bytes() for p in class_dir.rglob("*") if p.is_file()} == before
    assert "FAIL" not in (out / "feedback" / "alice.txt").read_text()


def test_gradescope_results(graded_class):
    _, out, _, _ = graded_class
    data = json.loads((out / "gradescope" / "alice" / "results.json").read_text())
    assert data["score"] == MAXIMUM and len(data["tests"]) == MAXIMUM
    assert all(t["score"] == t["max_score"] == 1 and t["status"] == "passed" for t in data["tests"])
    assert {"name", "score", "max_score", "status", "output"} <= set(data["tests"][0])
    frank = json.loads((out / "gradescope" / "frank" / "results.json").read_text())
    assert frank["score"] == 1
    assert frank["tests"][3] == {"name": "ex04_polyak: updates in place", "score": 0.0, "max_score": 1.0, "status": "failed",
                                 "output": frank["tests"][3]["output"]}
    assert "the target did not change" in frank["tests"][3]["output"]


def test_a_second_run_grades_nothing_again(graded_class, capsys):
    class_dir, out, _, _ = graded_class
    before = (out / "gradebook.csv").read_text()
    assert cli_main(["--class", str(class_dir), "--out", str(out), "--fast", "--workers", "2", *GRADED]) == 0
    assert ": 0 to grade," in capsys.readouterr().out
    assert (out / "gradebook.csv").read_text() == before


def test_a_zip_of_the_class_is_graded_the_same(graded_class, tmp_path, capsys):
    class_dir, out, _, _ = graded_class
    archive = tmp_path / "download.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(class_dir.rglob("*")):
            if path.is_file() and path.name.startswith(("alice", "walter")) or "alice" in path.parts:
                zf.write(path, Path("submissions") / path.relative_to(class_dir))
    zipped = tmp_path / "out"
    zipped.mkdir()
    shutil.copy(out / ".journal.jsonl", zipped / ".journal.jsonl")  # resumable: alice's results are reused
    capsys.readouterr()
    assert cli_main(["--class", str(archive), "--out", str(zipped), "--fast", *GRADED]) == 0
    said = capsys.readouterr()
    assert f"{len(GRADED)} already graded in an earlier run" in said.out + said.err  # alice's, by content
    rows = (zipped / "gradebook.csv").read_text().splitlines()
    assert rows[1:] == [r for r in expected_gradebook().splitlines()[1:] if r.startswith(("alice,", "walter_4712,"))]


def test_a_file_too_large_to_be_a_notebook_scores_zero_with_the_reason(tmp_path):
    student = tmp_path / "class" / "zoe"
    student.mkdir(parents=True)
    (student / "ex04_polyak.py").write_bytes(b"#" * (21 << 20))
    out = tmp_path / "out"
    assert cli_main(["--class", str(tmp_path / "class"), "--out", str(out), "--fast", "ex04_polyak"]) == 0
    row = next(csv.DictReader(io.StringIO((out / "gradebook.csv").read_text())))
    assert row["student"] == "zoe" and float(row["points"]) == 0
    assert "larger than 20 MB" in (out / "feedback" / "zoe.txt").read_text()


# --- layouts and usage errors ------------------------------------------------------------------------


@pytest.mark.parametrize("prefix, student, late", [
    ("doejane_12345_67890_", "doejane_12345", False),
    ("doejane_LATE_12345_67890_", "doejane_12345", True),
    ("jane_doe_", "jane_doe", False),
    ("s1234567-", "s1234567", False),
])
def test_flat_names_of_an_lms(prefix, student, late):
    assert _canvas_student(prefix) == (student, late)


def test_both_layouts_are_found(tmp_path):
    (tmp_path / "amy" / "deep").mkdir(parents=True)
    (tmp_path / "amy" / "deep" / "ex04.ipynb").write_text("{}")
    (tmp_path / "amy" / "notes.txt").write_text("")
    (tmp_path / "ben_ex04_polyak.py").write_text("")
    (tmp_path / "ben_ex05_her_future (1).ipynb").write_text("{}")
    (tmp_path / "ex04_polyak.py").write_text("")  # no student: ignored
    found = find_students(tmp_path, {n: EXERCISES[n] for n in ("ex04_polyak", "ex05_her_future")})
    assert sorted(found) == ["amy", "ben"]
    assert sorted(found["ben"].files) == ["ex04_polyak", "ex05_her_future"]
    assert found["amy"].files["ex04_polyak"][0].path.name == "ex04.ipynb"


@pytest.mark.parametrize("args, message", [
    (["--class", "{tmp}/nowhere", "--out", "{tmp}/out"], "does not exist"),
    (["--class", "{tmp}"], "needs both --class SUBMISSIONS and --out DIR"),
    (["--out", "{tmp}/out"], "needs both --class SUBMISSIONS and --out DIR"),
    (["--class", "{tmp}", "--out", "{tmp}/out", "--workers", "0"], "--workers must be at least 1"),
    (["--class", "{tmp}", "--out", "{tmp}/out", "--deadline", "friday"], "--deadline 'friday' is not a date and time"),
    (["--class", "{tmp}", "--out", "{tmp}/inside"], "must not lie inside the submissions folder"),
    (["--class", "{tmp}/file.txt", "--out", "{tmp}/../o"], "is a file but not a .zip archive"),
    (["--class", "{tmp}", "--out", "{tmp}/../o2", "--json"], "--json is for one student's folder"),
    (["--workers", "2"], "--workers is for a whole class"),
    (["--dir", "{tmp}/nowhere"], "is not a folder"),
    (["--class", "{tmp}/empty", "--out", "{tmp}/../o3"], "no submissions found"),
])
def test_usage_errors_are_one_line_and_exit_2(tmp_path, capsys, args, message):
    (tmp_path / "file.txt").write_text("")
    (tmp_path / "empty").mkdir()
    assert cli_main([a.format(tmp=tmp_path) for a in args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
