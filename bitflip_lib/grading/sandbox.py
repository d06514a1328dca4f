"""Running a student's code where it cannot take the grader down with it.

Student code may call ``sys.exit`` or ``os._exit``, raise ``KeyboardInterrupt``, catch the
grader's own timeout with ``except Exception: pass``, loop forever, crash in native code or
print a million lines. So the checks of one exercise run in a forked child process:

* the child catches every ``BaseException`` a check raises and reports it as a FAIL;
* the parent enforces the limits from outside: each check may run ``Check.timeout`` seconds,
  and all checks of the exercise (loading its notebook included) share one wall-clock budget,
  ``Exercise.budget``. A child that overruns is killed (``SIGKILL``, which no ``except`` can
  catch); a child that dies is reported with its exit status or signal. The remaining checks
  then go on in a fresh child while budget is left;
* what the checks print (Python's ``sys.stdout`` and ``sys.stderr``) is captured per check,
  keeping the first lines; the child's file descriptors 0-2 point to ``/dev/null``, so native
  output never reaches the report (nor ``--json``).

Forking keeps it fast (no new interpreter, no second ``import torch``) and works with functions
defined in a Jupyter notebook, which cannot be pickled. The child uses one CPU thread: OpenMP's
thread pool does not survive ``fork``, and a child that starts more threads can hang. Where
``os.fork`` is missing (Windows), or with ``BITFLIP_GRADER_ISOLATION=off``, the checks run in
this process instead, with the same budget and output capture but only ``SIGALRM`` timeouts
(where the platform has them) and no protection from ``os._exit``.
"""
from __future__ import annotations

import builtins
import io
import json
import os
import select
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable, Mapping

from bitflip_lib.grading.report import (
    SHOWN_LINES,
    Check,
    CheckResult,
    Exercise,
    Report,
    describe_error,
)
from bitflip_lib.grading.timeout import time_limit

ISOLATION_ENV_VAR = "BITFLIP_GRADER_ISOLATION"
LOAD_LIMIT = 30.0  # seconds the graded cells of a notebook may take to run
_POLL = 0.25  # how often the parent checks on a quiet child (a child's message wakes it at once)
_MAX_MESSAGE = 2000  # characters of one check's message sent back
_MAX_LINE = 200  # characters of one printed line kept

_in_child = False


def in_child() -> bool:
    """True inside the child process that runs the checks (there, every interrupt is the student's)."""
    return _in_child


def isolation_available() -> bool:
    setting = os.environ.get(ISOLATION_ENV_VAR, "").strip().lower()
    return hasattr(os, "fork") and setting not in {"off", "0", "no", "false", "none"}


class _Sink(io.RawIOBase):
    """Keeps the first bytes written and counts the lines; a buffer in front of it calls
    :meth:`write` once per 64 KiB, so a student loop printing 800,000 lines stays cheap."""

    def __init__(self, keep_bytes: int) -> None:
        super().__init__()
        self.head = bytearray()
        self.newlines = 0
        self.open_line = False  # text after the last newline
        self._keep = keep_bytes

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        data = bytes(data)
        if len(self.head) < self._keep:
            self.head += data[: self._keep - len(self.head)]
        if data:
            self.newlines += data.count(b"\n")
            self.open_line = not data.endswith(b"\n")
        return len(data)


class Capture(io.TextIOWrapper):
    """A text stream that keeps the first ``keep`` lines printed to it and counts them all."""

    def __init__(self, keep: int = SHOWN_LINES) -> None:
        self._sink = _Sink(keep * (_MAX_LINE + 1) * 4)
        self._keep_lines = keep
        super().__init__(io.BufferedWriter(self._sink, 1 << 16), encoding="utf-8", errors="replace", newline="\n")

    @property
    def lines(self) -> int:
        self.flush()
        return self._sink.newlines + (1 if self._sink.open_line else 0)

    def shown(self) -> list[str]:
        self.flush()
        text = self._sink.head.decode("utf-8", errors="replace")
        return [line[:_MAX_LINE] for line in text.split("\n")[: min(self._keep_lines, self.lines)]]


def _fill_output(result: CheckResult, capture: Capture) -> CheckResult:
    result.output = capture.shown()
    result.output_lines = capture.lines
    return result


def run_one(exercise: Exercise, check: Check, namespace: Mapping, limit: float | None = None) -> CheckResult:
    """Run one check here, output captured; every exception becomes a result.

    In the child a ``KeyboardInterrupt`` can only come from the student's code (the child
    ignores Ctrl-C; the parent handles it), so it is a FAIL; in this process it is the user's
    Ctrl-C and stops grading.
    """
    missing = [name for name in exercise.required if name not in namespace]
    if missing:
        return CheckResult(exercise.name, check.name, False, f"not defined: {', '.join(missing)} (run or fix the cell that defines it)")
    capture = Capture()
    saved = sys.stdout, sys.stderr
    sys.stdout = sys.stderr = capture
    start = time.perf_counter()
    try:
        with time_limit(None if _in_child else limit):
            note = check.run(namespace)
        result = CheckResult(exercise.name, check.name, True, str(note or ""))
    except AssertionError as err:
        result = CheckResult(exercise.name, check.name, False, str(err) or "assertion failed")
    except KeyboardInterrupt as err:
        if not _in_child:
            raise
        result = CheckResult(exercise.name, check.name, False, describe_error(err))
    except BaseException as err:  # noqa: BLE001 - student code must not end grading, whatever it raises
        result = CheckResult(exercise.name, check.name, False, describe_error(err))
    finally:
        sys.stdout, sys.stderr = saved
    result.seconds = time.perf_counter() - start
    return _fill_output(result, capture)


def _not_run(exercise: Exercise, check: Check, budget: float) -> CheckResult:
    return CheckResult(exercise.name, check.name, False,
                       f"not run: the {budget:g} s time budget of {exercise.name} was used up by the checks above")


def run_checks(exercise: Exercise, checks: list[Check], load: Callable[[], Mapping], budget: float | None = None,
               load_limit: float = LOAD_LIMIT) -> Report:
    """Run ``checks`` against the namespace that ``load()`` returns, within one time budget.

    ``load`` runs in the child too (so a notebook's graded cells that exit, hang or print are
    handled like a check); a :class:`~bitflip_lib.grading.notebook.LoadError` (or anything else
    it raises) fails every check with its message. It may take ``load_limit`` seconds.
    """
    budget = float(exercise.budget if budget is None else budget)
    if not budget > 0:
        raise ValueError(f"the time budget must be a positive number of seconds, got {budget}")
    run = _run_forked if isolation_available() else _run_here
    results = run(exercise, checks, load, budget, float(load_limit))
    return Report(results, budgets={exercise.name: budget})


# --- in this process (no fork) ---------------------------------------------------------------


def _run_here(exercise: Exercise, checks: list[Check], load: Callable[[], Mapping], budget: float, load_limit: float) -> list[CheckResult]:
    end = time.monotonic() + budget
    capture = Capture()
    saved = sys.stdout, sys.stderr
    sys.stdout = sys.stderr = capture
    try:
        with time_limit(min(load_limit, budget)):
            namespace = load()
    except KeyboardInterrupt:
        raise
    except BaseException as err:  # noqa: BLE001
        message = _load_message(err)
        return [_fill_output(CheckResult(exercise.name, c.name, False, message), capture) for c in checks]
    finally:
        sys.stdout, sys.stderr = saved
    results = []
    for check in checks:
        left = end - time.monotonic()
        if left <= 0:
            results.append(_not_run(exercise, check, budget))
            continue
        results.append(run_one(exercise, check, namespace, limit=min(check.timeout, left)))
    return results


def _load_message(err: BaseException) -> str:
    from bitflip_lib.grading.notebook import LoadError

    if isinstance(err, LoadError):
        return f"could not load the notebook: {err}"
    return f"could not load the notebook: {describe_error(err)}"


# --- in a child process ------------------------------------------------------------------------


def _run_forked(exercise: Exercise, checks: list[Check], load: Callable[[], Mapping], budget: float, load_limit: float) -> list[CheckResult]:
    warm_up()  # before the clock starts: it is the grader's cost, not the student's
    end = time.monotonic() + budget
    results: dict[int, CheckResult] = {}
    while len(results) < len(checks):
        todo = [i for i in range(len(checks)) if i not in results]
        if time.monotonic() >= end:
            results.update({i: _not_run(exercise, checks[i], budget) for i in todo})
            break
        before = len(results)
        load_error = _one_child(exercise, checks, todo, load, end, budget, load_limit, results)
        if load_error is not None:
            results.update({i: load_error(checks[i]) for i in todo if i not in results})
        elif len(results) == before and time.monotonic() < end:  # ended between checks: do not retry forever
            results[todo[0]] = CheckResult(exercise.name, checks[todo[0]].name, False, "the grading process ended before this check started")
    return [results[i] for i in range(len(checks))]


def _one_child(exercise, checks, todo, load, end, budget, load_limit, results) -> Callable[[Check], CheckResult] | None:
    """Fork a child that loads the namespace and runs the checks ``todo`` in order; record what
    it reports in ``results``. Returns a maker of load-failure results if it never loaded."""
    read_fd, write_fd = os.pipe()
    cuda_in_use = _cuda_initialized()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()  # nothing buffered here may be written twice
        except Exception:  # noqa: BLE001, S110 - a broken stream is not ours to fix
            pass
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # "multi-threaded process ... fork()" in a Jupyter kernel
        pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child (it reports through the pipe)
        os.close(read_fd)
        _child(write_fd, exercise, checks, todo, load, end, cuda_in_use)
    os.close(write_fd)
    child = _Child(pid, read_fd)
    try:
        return _watch(child, exercise, checks, end, budget, load_limit, results)
    finally:
        child.close()


class _Child:
    def __init__(self, pid: int, read_fd: int) -> None:
        self.pid, self.fd = pid, read_fd
        self.status: int | None = None
        self._buffer = b""

    def poll(self) -> bool:
        """Reap the child if it has ended; True once it has."""
        if self.status is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = status
        return self.status is not None

    def kill(self) -> None:
        if self.status is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            _, self.status = os.waitpid(self.pid, 0)

    def read(self, timeout: float) -> list[dict] | None:
        """Messages that arrive within ``timeout`` seconds ([] if none); None at end of file."""
        ready, _, _ = select.select([self.fd], [], [], max(0.0, timeout))
        if not ready:
            return []
        chunk = os.read(self.fd, 1 << 16)
        if not chunk:
            return None
        *lines, self._buffer = (self._buffer + chunk).split(b"\n")
        messages = []
        for line in lines:
            try:
                messages.append(json.loads(line))
            except ValueError:
                continue  # not ours (only this module writes to the pipe)
        return messages

    def ended(self) -> str:
        """Why the child ended, for the report."""
        self.poll_for(2.0)
        status = self.status
        if status is None:
            self.kill()
            return "the process running this check stopped reporting (it closed its pipe) and was stopped"
        if os.WIFSIGNALED(status):
            number = os.WTERMSIG(status)
            try:
                name = signal.Signals(number).name
            except ValueError:
                name = f"signal {number}"
            return (f"the process running this check was killed by {name} (signal {number}): "
                    "a crash in native code, or your code killed it")
        code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else status
        return (f"your code ended the grading process (exit status {code}, as os._exit({code}) does): "
                "a graded function must return its result, not end the program")

    def poll_for(self, seconds: float) -> None:
        stop = time.monotonic() + seconds
        while not self.poll() and time.monotonic() < stop:
            time.sleep(0.01)

    def close(self) -> None:
        os.close(self.fd)
        self.kill()


def _watch(child: _Child, exercise: Exercise, checks: list[Check], end: float, budget: float, load_limit: float, results: dict):
    loaded = False
    current: int | None = None
    started = time.monotonic()
    deadline = min(end, started + load_limit)

    def stop_current(message: str) -> Callable[[Check], CheckResult] | None:
        if not loaded:
            return lambda c: CheckResult(exercise.name, c.name, False, f"could not load the notebook: while its graded cells ran, {message}")
        if current is not None:
            results[current] = CheckResult(exercise.name, checks[current].name, False, message, time.monotonic() - started)
        return None

    try:
        while True:
            now = time.monotonic()
            if now >= deadline:
                child.kill()
                if deadline >= end:
                    why = f"the {budget:g} s time budget of {exercise.name} ran out"
                elif not loaded:
                    why = f"still running after {load_limit:g} s"
                else:
                    why = f"still running after {checks[current].timeout:g} s" if current is not None else "stopped"
                return stop_current(f"timed out: {why} (an endless loop, or a Python loop over every element?)")
            messages = child.read(min(_POLL, deadline - now))
            if messages is None:
                return stop_current(child.ended())
            if not messages and child.poll():
                # ended without closing the pipe for good (a grandchild holds it): read what is left
                rest = child.read(0.0) or []
                messages = rest
                if not rest:
                    return stop_current(child.ended())
            for msg in messages:
                event = msg.get("event")
                now = time.monotonic()
                if event == "loaded":
                    loaded, deadline = True, end
                elif event == "load_failed":
                    failure = CheckResult(exercise.name, "", False, msg["message"], 0.0, msg.get("output", []), msg.get("lines", 0))
                    return lambda c: CheckResult(exercise.name, c.name, False, failure.message, 0.0, list(failure.output), failure.output_lines)
                elif event == "start":
                    current, started = msg["index"], now
                    deadline = min(end, now + checks[current].timeout)
                elif event == "result":
                    results[msg["index"]] = CheckResult(exercise.name, checks[msg["index"]].name, msg["passed"], msg["message"],
                                                        msg["seconds"], msg["output"], msg["lines"])
                    current, deadline = None, end
                elif event == "done":
                    return None
    except KeyboardInterrupt:  # the user's Ctrl-C (or the notebook's interrupt): stop grading
        child.kill()
        raise


_warmed = False


def warm_up() -> None:
    """Import here, once, what training imports on first use, so each child does not again:
    the first ``torch.optim`` optimiser pulls in ``torch._dynamo``, several seconds on a slow CPU."""
    global _warmed
    torch = sys.modules.get("torch")
    if _warmed or torch is None:
        return
    _warmed = True
    torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))])


def _cuda_initialized() -> bool:
    torch = sys.modules.get("torch")
    try:
        return bool(torch is not None and torch.cuda.is_initialized())
    except Exception:  # noqa: BLE001
        return False


def _child(write_fd: int, exercise: Exercise, checks: list[Check], todo: list[int], load, end: float, cuda_in_use: bool):  # pragma: no cover
    """The child's whole life: report through ``write_fd``, never return, never run atexit."""
    global _in_child
    _in_child = True
    try:
        _isolate(end)
        _single_thread(cuda_in_use)
        send = _sender(write_fd)
        capture = Capture()
        sys.stdout = sys.stderr = capture
        try:
            namespace = load()
        except BaseException as err:  # noqa: BLE001 - even sys.exit in a graded cell is a readable failure
            send({"event": "load_failed", "message": _load_message(err)[:_MAX_MESSAGE], "output": capture.shown(), "lines": capture.lines})
            return
        send({"event": "loaded"})
        for index in todo:
            send({"event": "start", "index": index})
            result = run_one(exercise, checks[index], namespace)
            send({"event": "result", "index": index, "passed": result.passed, "message": result.message[:_MAX_MESSAGE],
                  "seconds": result.seconds, "output": result.output, "lines": result.output_lines})
        send({"event": "done"})
    except BaseException:  # noqa: BLE001, S110 - the parent reports a child that stopped early
        pass
    finally:
        os._exit(0)


def _sender(fd: int) -> Callable[[dict], None]:
    def send(message: dict) -> None:
        data = (json.dumps(message) + "\n").encode()
        while data:
            data = data[os.write(fd, data):]
    return send


def _isolate(end: float) -> None:  # pragma: no cover - child only
    """Detach the child from the terminal and the notebook: no stdin, no Ctrl-C, no output."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the parent, which stops this child
        for name in ("SIGALRM", "SIGTERM"):
            if hasattr(signal, name):
                signal.signal(getattr(signal, name), signal.SIG_DFL)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    sys.stdin = open(os.devnull, encoding="utf-8")  # noqa: SIM115 - lives as long as the child

    def no_input(prompt: str = "") -> str:
        raise EOFError("input() cannot be answered while grading: graded functions must not ask for input")

    builtins.input = no_input
    parent = os.getppid()

    def watchdog() -> None:  # an orphan (its kernel or terminal gone) must not run forever
        while os.getppid() == parent and time.monotonic() < end + 10.0:
            time.sleep(0.5)
        os._exit(70)

    threading.Thread(target=watchdog, daemon=True).start()


def _single_thread(cuda_in_use: bool) -> None:  # pragma: no cover - child only
    torch = sys.modules.get("torch")
    if torch is None:
        return
    torch.set_num_threads(1)
    torch.set_num_threads = lambda n: None  # OpenMP's pool did not survive fork: more threads hang
    if not torch.cuda.is_available():
        return
    usable = not cuda_in_use
    if usable:
        try:  # CUDA works in a forked child only if the parent never started it
            torch.zeros(1, device="cuda").add_(1).item()
        except Exception:  # noqa: BLE001
            usable = False
    if not usable:  # check on the CPU only, rather than fail a correct answer
        torch.cuda.is_available = lambda: False
        torch.cuda.device_count = lambda: 0
