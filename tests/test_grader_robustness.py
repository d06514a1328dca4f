"""Broken or hostile student code cannot fool, stop or flood the grader (issue 15, cases 1-5;
issue 18, item 9).

Each test wrote down a case that failed before the graders ran student code in a child process:
``sys.exit`` passed silently or stopped every exercise, ``except Exception: pass`` swallowed the
timeout, a hang cost 60 s per check, prints flooded the report and ``--json``, ex05 passed a
relabeller with a fixed seed, and a notebook showed a traceback wall and the report twice.
"""
from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
import textwrap
import time
from pathlib import Path

import pytest
import torch

from bitflip_lib.grading import EXERCISES, GradingFailed, cli_main, grade
from bitflip_lib.grading.model import DEFAULT_BUDGET, Check, Exercise
from bitflip_lib.grading.runner import run_exercise, warm_up
from bitflip_lib.replay import Transitions

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = ROOT / "solutions"
POLYAK = EXERCISES["ex04_polyak"]


def _notebook(directory: Path, name: str, code: str) -> Path:
    """A one-cell exercise notebook (percent format) whose graded cell is ``code``."""
    path = directory / f"{name}.py"
    path.write_text('# %% [markdown]\n# A student notebook.\n\n# %% tags=["graded"]\n' + textwrap.dedent(code).lstrip("\n"))
    return path


def _line_of(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), start=1) if text in line)


def _polyak_failures(function, **kwargs) -> list:
    report = run_exercise(POLYAK, {"polyak_update": function}, include_slow=False, **kwargs)
    assert len(report.results) == len([c for c in POLYAK.checks if not c.slow])
    return report.results


# --- case 1: sys.exit, os._exit, KeyboardInterrupt, BaseException are FAILs -------------------


class Custom(BaseException):
    pass


def _exit_0(target, online, tau):
    import sys

    sys.exit(0)


def _exit_3(target, online, tau):
    raise SystemExit(3)


def _interrupt(target, online, tau):
    raise KeyboardInterrupt


def _base_exception(target, online, tau):
    raise Custom("not an Exception")


def _os_exit(target, online, tau):
    import os

    os._exit(0)


def _kill_self(target, online, tau):
    import os
    import signal

    os.kill(os.getpid(), signal.SIGKILL)


@pytest.mark.parametrize("function, expected", [
    (_exit_0, "your code called sys.exit(0)"),
    (_exit_3, "your code called sys.exit(3)"),
    (_interrupt, "your code raised KeyboardInterrupt"),
    (_base_exception, "your code raised Custom (a BaseException that is not an Exception): not an Exception"),
    (_os_exit, "your code ended the grading process (exit status 0"),
    (_kill_self, "killed by SIGKILL"),
], ids=["sys.exit(0)", "SystemExit(3)", "KeyboardInterrupt", "BaseException", "os._exit(0)", "SIGKILL"])
def test_a_function_that_exits_or_interrupts_fails_every_check_it_reaches(function, expected):
    results = _polyak_failures(function)
    assert not any(r.passed for r in results)
    assert all(expected in r.message for r in results), [r.message for r in results]


def test_sys_exit_in_a_function_fails_the_command_line(tmp_path, capsys):
    path = _notebook(tmp_path, "ex04_polyak", """
        import sys


        def polyak_update(target, online, tau):
            sys.exit(0)
    """)
    assert cli_main(["ex04", "--dir", str(tmp_path), "--fast"]) == 1
    out = capsys.readouterr().out
    line = _line_of(path, "sys.exit(0)")
    assert f"FAIL  matches the library" in out
    assert f"your code called sys.exit(0) at {path}, line {line}: sys.exit(0)" in out
    assert "0/7 checks pass" in out


def test_sys_exit_in_a_graded_cell_fails_that_exercise_only(tmp_path, capsys):
    shutil.copy(SOLUTIONS / "ex01_env_step.py", tmp_path)
    path = _notebook(tmp_path, "ex04_polyak", """
        import sys

        def polyak_update(target, online, tau):
            pass

        sys.exit(3)
    """)
    assert cli_main(["ex01", "ex04", "--dir", str(tmp_path), "--fast"]) == 1
    out = capsys.readouterr().out
    ex01, ex04 = (len([c for c in EXERCISES[name].checks if not c.slow]) for name in ("ex01_env_step", "ex04_polyak"))
    assert "PASS  whole episodes match BitFlipEnv" in out  # ex01 still graded
    assert out.count(f"graded cell 1 called sys.exit(3) at {path}, line {_line_of(path, 'sys.exit(3)')}") == 1
    assert out.count("(the same as above)") == ex04 - 1  # one reason, said once
    report = grade("ex04", tmp_path, include_slow=False)
    assert all("graded cell 1 called sys.exit(3)" in r.message for r in report.results)  # each result carries it
    assert f"{ex01}/{ex01 + ex04} checks pass: {ex04} to fix" in out


# --- case 2: a swallowed timeout cannot hang the grader ----------------------------------------


def _swallows_exception(target, online, tau):
    while True:
        try:
            time.sleep(0.001)
        except Exception:  # noqa: BLE001, S110 - the student's mistake under test
            pass


def _swallows_everything(target, online, tau):
    while True:
        try:
            sum(range(1000))
        except:  # noqa: E722, S110
            pass


@pytest.mark.timeout(120)
@pytest.mark.parametrize("function", [_swallows_exception, _swallows_everything], ids=["except Exception", "bare except"])
def test_a_loop_that_swallows_exceptions_is_stopped(function):
    warm_up()
    start = time.monotonic()
    results = _polyak_failures(function, budget=1.0)
    assert time.monotonic() - start < 10
    assert results[0].message.startswith("timed out: the 1 s time budget of ex04_polyak ran out")
    assert all(r.message.startswith("not run: the 1 s time budget") for r in results[1:])


# --- case 3: one time budget per exercise, said in the report ----------------------------------


def test_an_endless_loop_costs_one_budget_per_exercise(tmp_path, capsys):
    _notebook(tmp_path, "ex04_polyak", """
        def polyak_update(target, online, tau):
            while True:
                pass
    """)
    warm_up()  # the grader's one-off imports, outside the budget
    start = time.monotonic()
    assert cli_main(["ex04", "--dir", str(tmp_path), "--time-budget", "1.5"]) == 1  # slow check included
    assert time.monotonic() - start < 8
    out = capsys.readouterr().out
    assert re.search(r"^ex04_polyak  \(took 1\.\d s; time budget 1\.5 s per exercise\)$", out, re.MULTILINE), out
    assert re.search(r"FAIL  matches the library +timed out: the 1\.5 s time budget of ex04_polyak ran out", out), out
    assert out.count("not run: the 1.5 s time budget of ex04_polyak was used up by the checks above") == 1
    assert out.count("(the same as above)") == 6


def test_a_hang_stops_at_the_check_limit_and_the_other_checks_still_run():
    exercise = Exercise("ex99_demo", "demo", ("f", "g"), (
        Check("hangs", lambda ns: ns["f"](), timeout=0.5),
        Check("passes", lambda ns: ns["g"]()),
    ), budget=20.0)

    def forever():
        while True:
            try:
                pass
            except BaseException:  # noqa: BLE001, S110
                pass

    report = run_exercise(exercise, {"f": forever, "g": lambda: "fine"})
    hang, ok = report.results
    assert hang.message == "timed out: still running after 0.5 s (an endless loop, or a Python loop over every element?)"
    assert ok.passed and ok.message == "fine"
    assert report.budgets == {"ex99_demo": 20.0}


def test_the_default_budget_is_in_the_report_and_a_bad_one_is_refused(capsys):
    assert cli_main(["ex01", "--dir", str(SOLUTIONS), "--fast"]) == 0
    assert f"time budget {DEFAULT_BUDGET:g} s per exercise" in capsys.readouterr().out
    assert cli_main(["ex01", "--dir", str(SOLUTIONS), "--time-budget", "0"]) == 2
    assert "--time-budget must be a positive number of seconds" in capsys.readouterr().err


# --- case 4: prints are captured -----------------------------------------------------------------


def test_prints_are_captured_and_the_first_lines_shown(tmp_path, capfd):
    _notebook(tmp_path, "ex04_polyak", """
        import sys

        def polyak_update(target, online, tau):
            for i in range(5_000):
                print("step", i)
            print("to stderr", file=sys.stderr)
    """)
    assert cli_main(["ex04", "--dir", str(tmp_path), "--fast", "--json"]) == 1
    data = json.loads(capfd.readouterr().out)  # nothing the student printed is mixed in
    first = data["results"][0]
    assert first["status"] == "FAIL"
    assert first["output"] == ["step 0", "step 1", "step 2", "step 3", "step 4"]
    assert first["output_lines"] == 5_001
    assert data["time_budget_s"] == {"ex04_polyak": DEFAULT_BUDGET}

    assert cli_main(["ex04", "--dir", str(tmp_path), "--fast"]) == 1
    out = capfd.readouterr().out
    assert len(out.splitlines()) < 100
    assert "        your code printed 5001 lines during this check; the first 5:\n        | step 0\n        | step 1\n" in out


def own_polyak(target, online, tau):
    """A correct Polyak update written as a student would (the library's own is off limits)."""
    if not 0.0 <= tau <= 1.0:
        raise ValueError(f"tau must lie in [0, 1], got {tau}")
    with torch.no_grad():
        for p, q in zip(target.parameters(), online.parameters()):
            p.mul_(1.0 - tau).add_(q, alpha=tau)


def test_prints_of_a_passing_check_are_not_shown():
    def chatty(target, online, tau):
        print("debugging")
        own_polyak(target, online, tau)

    report = run_exercise(POLYAK, {"polyak_update": chatty}, include_slow=False)
    assert report.passed, str(report)
    assert all(r.output_lines >= 1 and r.output[0] == "debugging" for r in report.results)
    assert "debugging" not in str(report)


# --- case 5: ex05 checks that the generator drives the draws -----------------------------------


def future_relabel(episode, k, generator):
    """The future strategy as a student writes it (the library's own is off limits)."""
    t, b = episode.active.nonzero(as_tuple=True)
    t, b = t.repeat(k), b.repeat(k)
    length = episode.lengths[b]
    u = torch.rand(t.shape, generator=generator, device=t.device)
    future = torch.minimum(t + (u * (length - t)).long(), length - 1)
    return Transitions.with_goals(episode.states[t, b], episode.states[future + 1, b], episode.actions[t, b],
                                  episode.states[t + 1, b])


def test_ex05_fails_a_relabeller_with_its_own_fixed_seed():
    def fixed_seed(episode, k=4, generator=None):
        return future_relabel(episode, k, torch.Generator(device=episode.states.device).manual_seed(0))

    report = run_exercise(EXERCISES["ex05_her_future"], {"her_relabel_future": fixed_seed}, include_slow=False)
    failed = {r.check: r.message for r in report.results if not r.passed}
    assert list(failed) == ["uses the generator"]
    assert "different generator seeds gave identical goals" in failed["uses the generator"]


def test_ex05_fails_a_relabeller_that_uses_the_global_random_state():
    def global_rng(episode, k=4, generator=None):
        return future_relabel(episode, k, None)

    report = run_exercise(EXERCISES["ex05_her_future"], {"her_relabel_future": global_rng}, include_slow=False)
    failed = {r.check: r.message for r in report.results if not r.passed}
    assert list(failed) == ["uses the generator"]
    assert "the same generator seed gave different goals" in failed["uses the generator"]


# --- issue 18, item 9: the check cell in a notebook --------------------------------------------


@pytest.fixture
def shell():
    from IPython.core.interactiveshell import InteractiveShell

    ipython = InteractiveShell.instance()
    yield ipython
    InteractiveShell.clear_instance()


def _run_cell(shell, code: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        shell.run_cell(code)
    return out.getvalue()


def test_a_failing_check_cell_shows_the_report_once_and_no_traceback(shell):
    out = _run_cell(shell, textwrap.dedent("""
        from bitflip_lib.grading import check

        def polyak_update(target, online, tau):
            return None

        check("ex04", polyak_update, include_slow=False)
    """))
    assert out.count("ex04_polyak  (took") == 1 and out.count("checks pass") == 1
    assert "Traceback" not in out and "raise GradingFailed" not in out
    error = [line for line in out.splitlines() if "GradingFailed" in line]
    # 7: a function that leaves the target unchanged also fails "updates in place" and "outside
    # autograd", which it used to pass (issue 30, item 2)
    assert len(error) == 1 and error[0].endswith("GradingFailed\x1b[0m: 7 of 7 checks failed: "
                                                 "the report above says what to fix, then run this cell again")


def test_a_passing_check_cell_shows_the_report_once(shell):
    out = _run_cell(shell, textwrap.dedent("""
        import torch

        from bitflip_lib.grading import check

        def polyak_update(target, online, tau):
            if not 0.0 <= tau <= 1.0:
                raise ValueError("tau must lie in [0, 1]")
            with torch.no_grad():
                for p, q in zip(target.parameters(), online.parameters()):
                    p.lerp_(q, tau)

        report = check("ex04", polyak_update, include_slow=False)
        report
    """))
    assert out.count("7/7 checks pass: all checks pass") == 1
    assert "<grading report" not in out
    report = shell.user_ns["report"]
    assert shell.display_formatter.format(report) == ({}, {})  # a kernel sends no execute_result for it
    assert report.passed


def test_grading_failed_renders_as_one_line():
    with pytest.raises(GradingFailed) as caught:
        from bitflip_lib.grading import check

        check("ex04", lambda target, online, tau: None, include_slow=False)
    assert len(caught.value._render_traceback_()) == 1


def test_a_syntax_error_names_the_line_of_the_file(tmp_path):
    path = _notebook(tmp_path, "ex04_polyak", """
        import torch


        def polyak_update(target, online, tau):
            with torch.no_grad():
                for p, q in zip(target.parameters(), online.parameters()):
                    p.mul_((1 - tau).add_(q, alpha=tau)
    """)
    line = _line_of(path, "p.mul_(")
    report = grade("ex04", tmp_path, include_slow=False)
    message = report.results[0].message
    assert message == (f"could not load the notebook: syntax error at {path}, line {line} (graded cell 1): "
                       "'(' was never closed: p.mul_((1 - tau).add_(q, alpha=tau)")


def test_an_ipynb_quotes_the_lines_of_its_paired_py(tmp_path):
    import jupytext

    path = _notebook(tmp_path, "ex04_polyak", """
        def polyak_update(target, online, tau):
            return 1 / 0
    """)
    notebook = jupytext.read(path)
    jupytext.write(notebook, tmp_path / "ex04_polyak.ipynb")
    message = grade("ex04", tmp_path, include_slow=False).results[0].message
    assert message.startswith(f"your code raised ZeroDivisionError: division by zero at {path}, line {_line_of(path, '1 / 0')}")

    notebook.cells[-1].source = "def polyak_update(target, online, tau):\n    x = 1\n    return x / 0"  # no longer the .py's code
    jupytext.write(notebook, tmp_path / "ex04_polyak.ipynb")
    message = grade("ex04", tmp_path, include_slow=False).results[0].message
    assert message.endswith(f"at {tmp_path / 'ex04_polyak.ipynb'} (graded cell 1), line 3: return x / 0")
