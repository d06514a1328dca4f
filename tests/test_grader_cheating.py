"""A student who wants a pass without the work cannot get one (issue 30, item 1).

Each attempt below passed, or broke the grader, when student code ran in the process that
decided the verdict. Now the verdict and the expected values are computed in the grader, the
student's code runs in a process with limits, and the library's own answers are disabled there:
every attempt reads as FAIL (or as an error of the student's code), and the grader, the next
exercise and the next student are unaffected.
"""
from __future__ import annotations

import os
import re
import shutil
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from bitflip_lib.grading import EXERCISES, check, cli_main, grade
from bitflip_lib.grading.runner import run_exercise, warm_up
from bitflip_lib.grading.sandbox import landlock_abi, signals_confined

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = ROOT / "solutions"
FAST_EX04 = len([c for c in EXERCISES["ex04_polyak"].checks if not c.slow])

OWN_POLYAK = '''
def own_polyak(target, online, tau):
    if not 0.0 <= tau <= 1.0:
        raise ValueError("tau must lie in [0, 1]")
    with torch.no_grad():
        for p, q in zip(target.parameters(), online.parameters()):
            p.mul_(1.0 - tau).add_(q, alpha=tau)
'''


def _notebook(directory: Path, code: str, name: str = "ex04_polyak") -> Path:
    path = directory / f"{name}.py"
    path.write_text('# %% tags=["graded"]\nimport torch\n\n' + textwrap.dedent(code).lstrip("\n"))
    return path


def _graded(directory: Path, code: str, include_slow: bool = False) -> list:
    _notebook(directory, code)
    report = grade("ex04", directory, include_slow=include_slow)
    assert len(report.results) == len([c for c in EXERCISES["ex04_polyak"].checks if include_slow or not c.slow])
    return report.results


def _all_fail(results, *fragments: str) -> None:
    assert not any(r.passed for r in results), [(r.check, r.message) for r in results]
    for fragment in fragments:
        assert all(fragment in r.message for r in results), [r.message for r in results]


# --- the library's own answer ---------------------------------------------------------------------

REFERENCE = "polyak_update uses bitflip_lib.dqn.polyak_update, the library's own implementation of what this exercise asks for"


@pytest.mark.parametrize("code", [
    "from bitflip_lib.dqn import polyak_update\n",
    "from bitflip_lib.dqn import polyak_update as soft\n\ndef polyak_update(target, online, tau):\n    return soft(target, online, tau)\n",
    "import bitflip_lib.dqn as d\n\ndef polyak_update(target, online, tau):\n    d.polyak_update(target, online, tau)\n",
    "def polyak_update(target, online, tau):\n"
    "    module = __import__('bitflip_lib.dqn', fromlist=['x'])\n"
    "    return getattr(module, 'polyak' + '_update')(target, online, tau)\n",
    "from bitflip_lib import dqn\n\npolyak_update = dqn.polyak_update.__wrapped__\n",
    "import types\nfrom bitflip_lib import dqn\n\n"
    "polyak_update = types.FunctionType(dqn.polyak_update.__code__, dqn.polyak_update.__globals__, 'polyak_update',\n"
    "                                   None, dqn.polyak_update.__closure__)\n",
    "import functools\nfrom bitflip_lib import dqn\n\npolyak_update = functools.partial(dqn.polyak_update)\n",
], ids=["import", "wrapper", "module alias", "getattr", "__wrapped__", "code copy", "partial"])
def test_the_librarys_own_answer_fails_every_check(tmp_path, code):
    _all_fail(_graded(tmp_path, code), REFERENCE)


def test_the_librarys_own_answer_fails_in_a_notebook_check_too():
    """In a notebook the student's code ran before the grader could disable anything: a copy of the
    reference's code object is found by inspection, an alias by the disabled reference itself."""
    import types

    from bitflip_lib import dqn

    copied = types.FunctionType(dqn.polyak_update.__code__, dqn.polyak_update.__globals__, "polyak_update", None,
                                dqn.polyak_update.__closure__)
    for function in (dqn.polyak_update, copied, lambda target, online, tau: dqn.polyak_update(target, online, tau)):
        report = check("ex04", function, include_slow=False, raise_on_failure=False)
        _all_fail(report.results, REFERENCE)


def test_reloading_or_reading_the_library_source_is_refused(tmp_path):
    if not landlock_abi():
        pytest.skip("this kernel has no Landlock: the student's process can read any file its user can")
    results = _graded(tmp_path, """
        import importlib

        import bitflip_lib.dqn

        try:
            importlib.reload(bitflip_lib.dqn)
        except Exception as err:
            RELOAD = repr(err)
        SOURCE = open(bitflip_lib.dqn.__file__).read()
    """)
    _all_fail(results, "could not load the notebook: graded cell 1 raised PermissionError")


def test_what_an_honest_student_imports_still_works(tmp_path):
    """The limits hide the course's folders, not Python's: the standard library and installed
    packages import as usual, even ones first imported inside a graded function."""
    results = _graded(tmp_path, OWN_POLYAK + """

def polyak_update(target, online, tau):
    import xml.dom.minidom

    import filelock
    import yaml

    assert xml.dom.minidom and filelock and yaml
    own_polyak(target, online, tau)
""")
    assert all(r.passed for r in results), [(r.check, r.message) for r in results]


def test_a_function_decorated_like_the_librarys_is_not_taken_for_it(tmp_path):
    """The library's polyak_update is decorated with @torch.no_grad(); so may a student's be (the
    decorator's own code is shared by every function it decorates)."""
    code = """
        @torch.no_grad()
        def polyak_update(target, online, tau):
            if not 0.0 <= tau <= 1.0:
                raise ValueError("tau must lie in [0, 1]")
            for p, q in zip(target.parameters(), online.parameters()):
                p.lerp_(q, tau)
    """
    results = _graded(tmp_path, code)
    assert all(r.passed for r in results), [(r.check, r.message) for r in results]
    namespace = {"torch": torch}
    exec(textwrap.dedent(code), namespace)  # noqa: S102 - as a notebook's kernel would
    assert check("ex04", namespace["polyak_update"], include_slow=False, raise_on_failure=False).passed


def test_the_solutions_are_out_of_reach(tmp_path):
    results = _graded(tmp_path, """
        exec(open("../solutions/ex04_polyak.py").read())
    """)
    _all_fail(results, "could not load the notebook: graded cell 1 raised FileNotFoundError")
    if landlock_abi():
        results = _graded(tmp_path, f"""
            exec(open({str(SOLUTIONS / 'ex04_polyak.py')!r}).read())
        """)
        _all_fail(results, "could not load the notebook: graded cell 1 raised PermissionError")


# --- the grader's own code and the comparisons ------------------------------------------------------


def test_replacing_the_graders_functions_changes_nothing(tmp_path):
    results = _graded(tmp_path, """
        import bitflip_lib.grading.model as model
        import bitflip_lib.grading.runner as runner
        import bitflip_lib.grading.worker as worker

        model.CheckResult.passed = property(lambda self: True)
        runner.run_one = lambda *args, **kwargs: model.CheckResult("ex04_polyak", "any", True)
        runner._Run.run = lambda self: model.Report()
        worker.Worker.handle = lambda self, header, objects, generators: {"ok": True, "result": None}


        def polyak_update(target, online, tau):
            pass
    """)
    _all_fail(results)
    assert "the target did not change" in results[0].message


def test_patching_the_comparisons_changes_nothing(tmp_path):
    results = _graded(tmp_path, """
        torch.isclose = lambda a, b, **kwargs: torch.ones_like(torch.as_tensor(a), dtype=torch.bool)
        torch.allclose = lambda *args, **kwargs: True
        torch.equal = lambda *args, **kwargs: True
        torch.Tensor.__eq__ = lambda self, other: torch.ones_like(self, dtype=torch.bool)


        def polyak_update(target, online, tau):
            with torch.no_grad():
                for p in target.parameters():
                    p.add_(1.0)
    """)
    _all_fail(results)


@pytest.mark.parametrize("forged", ["old protocol", "empty answer"])
def test_forged_answers_on_the_graders_channel_do_not_pass(tmp_path, forged):
    """The student's code finds the channel (file descriptor 3) and the request on the stack, writes
    an answer of its own and ends the process before the real one is sent."""
    message = ('{"event": "result", "index": 0, "passed": True, "message": "PASS", "seconds": 0.0, "output": [], "lines": 0}'
               if forged == "old protocol" else '{"id": request, "ok": True, "result": None, "reference": []}')
    results = _graded(tmp_path, f"""
        import os
        import sys

        from bitflip_lib.grading import wire


        def polyak_update(target, online, tau):
            frame, request = sys._getframe(), None
            while frame is not None and request is None:
                header = frame.f_locals.get("header")
                request = header.get("id") if isinstance(header, dict) else None
                frame = frame.f_back
            wire.send_frame(3, wire.encode_plain({message}))
            os._exit(0)
    """)
    _all_fail(results)
    if forged == "empty answer":
        assert "the target did not change" in results[0].message
    else:
        assert "the grading process answered a question it was not asked" in results[0].message


def test_a_forged_loaded_message_with_malformed_parts_fails_cleanly(tmp_path):
    """While its cells load, the student's code sends its own "loaded" message, with parts the
    grader must not trust (a list where a dict belongs), and ends its process: every check fails,
    none crashes the grader."""
    results = _graded(tmp_path, """
        import os

        from bitflip_lib.grading import wire

        wire.send_frame(3, wire.encode_plain({"event": "loaded", "printed": [], "kinds": 5, "references": []}))
        os._exit(0)
    """)
    _all_fail(results)
    assert grade("ex04", SOLUTIONS, include_slow=False).passed  # the grader carries on


def test_fake_report_lines_stay_inside_the_students_own_line(tmp_path, capfd):
    _notebook(tmp_path, """
        import os


        def polyak_update(target, online, tau):
            print("7/7 checks pass: all checks pass")
            os.write(1, b"\\n  PASS  matches the library\\n7/7 checks pass: all checks pass\\n")
            for path in ("/dev/tty", f"/proc/{os.getppid()}/fd/1"):
                try:
                    with open(path, "w") as out:
                        out.write("\\n7/7 checks pass: all checks pass\\n")
                except OSError:
                    pass
            raise RuntimeError("\\n  PASS  matches the library\\n\\x1b[2K\\x1b[1A7/7 checks pass: all checks pass")
    """)
    assert cli_main(["ex04", "--dir", str(tmp_path), "--fast"]) == 1
    out = capfd.readouterr().out
    assert len(re.findall(r"^\d+/\d+ checks pass", out, re.MULTILINE)) == 1
    assert out.rstrip().endswith(f"0/{FAST_EX04} checks pass: {FAST_EX04} to fix")
    assert not re.search(r"^\s*PASS", out, re.MULTILINE), out
    assert "\x1b" not in out
    assert all(line.startswith(("ex04_polyak", "  FAIL  ", "        ")) for line in out.splitlines()[:-1]), out


# --- files, processes, memory ----------------------------------------------------------------------------


def test_other_files_cannot_be_changed(tmp_path):
    if not landlock_abi():
        pytest.skip("this kernel has no Landlock: the student's process can write any file its user can")
    shutil.copy(SOLUTIONS / "ex01_env_step.py", tmp_path)
    other = tmp_path / "ex01_env_step.py"
    before = other.read_bytes()
    attempts = (f"lambda: os.remove({str(other)!r}), lambda: open({str(other)!r}, 'w').write('broken'), "
                "lambda: open('../ex01_env_step.py', 'w').write('broken')")
    _notebook(tmp_path, "import os\n\nTRIED = []\n"
                        f"for attempt in ({attempts}):\n"
                        "    try:\n        attempt()\n    except OSError as err:\n        TRIED.append(type(err).__name__)\n"
                        + OWN_POLYAK + "\npolyak_update = own_polyak\n")
    report = grade(None, tmp_path, include_slow=False)
    assert other.read_bytes() == before
    by_exercise = {}
    for r in report.results:
        by_exercise.setdefault(r.exercise, []).append(r.passed)
    assert all(by_exercise["ex01_env_step"]) and all(by_exercise["ex04_polyak"])  # both graded, both pass


def _processes_named(name: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if Path(f"/proc/{entry}/comm").read_text().strip() == name:
                    found.append(int(entry))
            except OSError:
                pass
    return found


def test_no_process_the_students_code_started_survives_its_check(tmp_path):
    results = _graded(tmp_path, """
        import ctypes
        import os
        import time


        def polyak_update(target, online, tau):
            if os.fork() == 0:  # a grandchild in a session of its own: the classic escape
                os.setsid()
                if os.fork() == 0:
                    ctypes.CDLL(None).prctl(15, b"bitflip-orphan", 0, 0, 0)
                    time.sleep(600)
                os._exit(0)
            raise RuntimeError("no answer")
    """)
    _all_fail(results, "your code raised RuntimeError: no answer")
    time.sleep(0.2)
    assert _processes_named("bitflip-orphan") == []


def test_the_grader_cannot_be_killed(tmp_path):
    if not signals_confined():
        pytest.skip("no seccomp filter for this machine and no Landlock 6+: a process of the same user can signal the grader")
    results = _graded(tmp_path, """
        import os
        import signal
        from pathlib import Path


        def polyak_update(target, online, tau):
            supervisor = os.getppid()
            stat = Path(f"/proc/{supervisor}/stat").read_text()
            grader = int(stat[stat.rindex(")") + 2:].split()[1])
            for pid in (grader, supervisor, -1):
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            os.kill(grader, signal.SIGKILL)
    """)
    _all_fail(results, "your code raised PermissionError")
    assert grade("ex04", SOLUTIONS, include_slow=False).passed  # the grader and its supervisor carry on


# The limit is on address space, so a hoard reaches it at the same size whether or not it writes
# what it takes; these two take memory without filling it, so each check reaches the limit in
# well under its 10 s whatever else the machine is doing.
@pytest.mark.parametrize("hoard", ["bytes(2**28)", "torch.empty(2**28, dtype=torch.uint8)"])
def test_memory_is_limited(tmp_path, hoard):
    results = _graded(tmp_path, f"""
        def polyak_update(target, online, tau):
            hoard = []
            while True:
                hoard.append({hoard})
    """)
    _all_fail(results, "your code ran out of memory")


def test_a_hoard_that_fills_its_memory_fails_too(tmp_path):
    """Filling 3 GB per check takes a second or two on an idle machine and longer on a loaded
    one: each check fails, by the memory limit or by its time limit, never passes."""
    results = _graded(tmp_path, """
        def polyak_update(target, online, tau):
            hoard = []
            while True:
                hoard.append(torch.ones(2**28, dtype=torch.uint8))
    """)
    assert not any(r.passed for r in results), [(r.check, r.message) for r in results]
    assert all("your code ran out of memory" in r.message or r.message.startswith("timed out")
               for r in results), [r.message for r in results]


@pytest.mark.slow
def test_the_training_verdict_cannot_be_faked(tmp_path):
    """Training runs in the grader: patching the trainer (or anything) in the student's process does
    not touch it, and an update that does nothing is caught at the first update of training."""
    results = _graded(tmp_path, """
        import bitflip_lib.grading.plugged as plugged
        import bitflip_lib.trainer as trainer


        class Solved:
            solved_at, history, final = 1, [], {"success_rate": 1.0}


        trainer.train = plugged.train_with = lambda *args, **kwargs: Solved()


        def polyak_update(target, online, tau):
            if not 0.0 <= tau <= 1.0:
                raise ValueError("tau")
    """, include_slow=True)
    end_to_end = results[-1]
    assert end_to_end.check == "DQN with it learns (end to end)"
    assert not end_to_end.passed
    assert end_to_end.message.startswith("during training (update 1), target parameter"), end_to_end.message


@pytest.mark.slow
def test_a_function_right_only_where_the_fast_checks_look_fails_the_training(tmp_path):
    """Every update during training is compared with the library's on the same inputs: a function
    that behaves while the fast checks call it and then feeds training something else is caught."""
    results = _graded(tmp_path, OWN_POLYAK + """

calls = 0


def polyak_update(target, online, tau):
    global calls
    calls += 1
    own_polyak(target, online, tau if calls < 100 else min(1.0, 4 * tau))
""", include_slow=True)
    assert all(r.passed for r in results[:-1]), [(r.check, r.message) for r in results]
    assert not results[-1].passed
    assert results[-1].message.startswith("during training (update "), results[-1].message


def test_an_attempt_does_not_change_the_next_exercise_or_the_next_student(tmp_path):
    """After every attempt above the grader grades a clean submission exactly as before."""
    warm_up()
    report = grade("ex04", SOLUTIONS, include_slow=False)
    assert report.passed, str(report)
    clean = run_exercise(EXERCISES["ex04_polyak"], {"polyak_update": _own_polyak()}, include_slow=False)
    assert clean.passed, str(clean)


def _own_polyak():
    namespace = {"torch": torch}
    exec(OWN_POLYAK, namespace)  # noqa: S102
    return namespace["own_polyak"]


def test_the_seccomp_filter_alone_refuses_signals_to_other_processes():
    """Where Landlock cannot scope signals (Linux before 6.12), the seccomp filter does."""
    import platform

    from bitflip_lib.grading import sandbox


    if platform.machine() not in sandbox._SECCOMP_ARCH or not sys.platform.startswith("linux"):
        pytest.skip("no seccomp filter for this machine")
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe
        outcome = []
        if sandbox._seccomp_signals():
            for target in (os.getppid(), -1, 1, os.getpid(), 0):
                try:
                    os.kill(target, 0)
                    outcome.append("sent")
                except PermissionError:
                    outcome.append("refused")
                except OSError:
                    outcome.append("other")
        os.write(write, ",".join(outcome).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    assert os.read(read, 1000).decode() == "refused,refused,refused,sent,sent"
    os.close(read)
