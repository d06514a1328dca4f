"""Where student code runs: a process with limits, and a supervisor that clears up after it.

Process model (see also :mod:`bitflip_lib.grading.worker` and :mod:`bitflip_lib.grading.remote`)::

    grader (verdicts, expected values; never runs student code)
      └── supervisor   a fresh interpreter that imported torch and the library and never runs
           │           student code (for a notebook's check(): a fork of the notebook's kernel);
           │           it is the "child subreaper" of everything below it
           └── student's process   one per exercise, forked from the supervisor

The student's process gets, before the student's code is loaded (:func:`enter`):

* its own session and process group, no terminal, stdin/stdout/stderr on ``/dev/null``, every
  other inherited file descriptor closed, and a scrubbed environment;
* a scratch folder of its own as working folder (``HOME`` and ``TMPDIR`` too), holding a copy
  of the notebook being graded;
* resource limits (``setrlimit``): address space, CPU seconds, size of any file it writes,
  open files, processes (where the kernel counts them: not for root);
* when run as root, no capabilities (so the limits cannot be raised);
* on Linux (x86-64 and arm64) a seccomp filter: it may signal only itself and its own process
  group, and may not ptrace or read or write another process's memory;
* on Linux with Landlock (kernel 5.13 or later, no root needed): it may write only in its
  scratch folder and read only the Python installation and system folders (not the course's
  folders, the solutions, the library's source or other students' work), it cannot open TCP
  connections (Landlock ABI 4+), and it cannot signal processes outside itself (ABI 6+).

When a check ends the supervisor kills every process the student's code started (it finds
them through ``/proc``: as subreaper it inherits the ones that tried to escape by
double-forking); when the exercise ends it kills the student's process itself.
"""
from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import importlib
import json
import os
import pkgutil
import resource
import signal
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_CAPBSET_DROP = 24
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38

DEFAULT_LIMITS = {
    "memory_mb": 3072,  # address space on top of what the supervisor had mapped at the fork
    "file_mb": 64,  # largest file the student's code may write
    "open_files": 256,
    "processes": 64,  # tasks (processes and threads) on top of those the user already runs
}

_libc = None


def _c() -> Any:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        _libc.syscall.restype = ctypes.c_long
    return _libc


def _prctl(option: int, value: int) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        return _c().prctl(option, ctypes.c_ulong(value), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def keep_out_of_reach() -> None:
    """Make this (trusted) process's memory and file descriptors unreadable to other processes of
    the same user (``/proc/PID/mem``, ``/proc/PID/fd``) and refuse ptrace: ``PR_SET_DUMPABLE 0``."""
    _prctl(PR_SET_DUMPABLE, 0)


# --- Landlock --------------------------------------------------------------------------------------

_LANDLOCK_CREATE, _LANDLOCK_ADD, _LANDLOCK_RESTRICT = 444, 445, 446
_FS = {  # access rights by the Landlock ABI that introduced them
    "execute": (1 << 0, 1), "write_file": (1 << 1, 1), "read_file": (1 << 2, 1), "read_dir": (1 << 3, 1),
    "remove_dir": (1 << 4, 1), "remove_file": (1 << 5, 1), "make_char": (1 << 6, 1), "make_dir": (1 << 7, 1),
    "make_reg": (1 << 8, 1), "make_sock": (1 << 9, 1), "make_fifo": (1 << 10, 1), "make_block": (1 << 11, 1),
    "make_sym": (1 << 12, 1), "refer": (1 << 13, 2), "truncate": (1 << 14, 3), "ioctl_dev": (1 << 15, 5),
}
_FILE_RIGHTS = ("execute", "write_file", "read_file", "truncate", "ioctl_dev")
_SCOPE_ABSTRACT_UNIX, _SCOPE_SIGNAL = 1, 2


def landlock_abi() -> int:
    """The kernel's Landlock ABI version (0 where there is none)."""
    if not sys.platform.startswith("linux"):
        return 0
    try:
        version = _c().syscall(_LANDLOCK_CREATE, None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    except (OSError, AttributeError):
        return 0
    return int(version) if version > 0 else 0


def _rights(abi: int, names) -> int:  # noqa: ANN001
    return sum(bit for name, (bit, since) in _FS.items() if name in names and since <= abi)


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def read_roots(hidden: list[Path], course: Path | None = None) -> list[str]:
    """Folders the student's process may read: the Python installation (its site-packages even
    when it lies inside the course's folder, as a virtual environment does), the folders of the
    shared libraries loaded now, and system folders. Never one inside ``hidden`` (the library's
    source, the solutions), nor anything else of ``course`` (the course's folder: its history holds
    the solutions too); a folder that holds one of them is replaced by its other children."""
    import site

    python = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    with contextlib.suppress(AttributeError):
        python |= set(site.getsitepackages())
    others = {p for p in sys.path if p and os.path.isabs(p)}
    others |= {"/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin", "/etc", "/proc", "/sys", "/dev", "/opt"}
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/maps").read_text().splitlines():
            parts = line.split(maxsplit=5)
            if len(parts) == 6 and parts[5].startswith("/"):
                others.add(os.path.dirname(parts[5]))
    specific = [os.path.realpath(p) for p in hidden]
    everything = specific + ([os.path.realpath(course)] if course is not None else [])
    roots: set[str] = set()
    for candidates, forbidden in ((python, specific), (others, everything)):
        for candidate in candidates:
            real = os.path.realpath(candidate)
            if os.path.exists(real):
                roots |= _allowed_parts(real, forbidden, depth=0)
    kept: list[str] = []
    for root in sorted(roots, key=len):  # drop roots inside other roots
        if not any(_inside(root, k) for k in kept):
            kept.append(root)
    return kept


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def _allowed_parts(root: str, forbidden: list[str], depth: int) -> set[str]:
    if any(_inside(root, f) for f in forbidden):
        return set()
    if not any(_inside(f, root) for f in forbidden):
        return {root}
    if depth > 8 or not os.path.isdir(root):
        return set()
    parts: set[str] = set()
    with contextlib.suppress(OSError):
        for entry in os.scandir(root):
            parts |= _allowed_parts(os.path.realpath(entry.path), forbidden, depth + 1)
    return parts


def _landlock(abi: int, readable: list[str], writable: list[str]) -> str:
    """Restrict this thread (and what it starts) to ``readable`` / ``writable``; says what applied."""
    libc = _c()
    every = _rights(abi, _FS)
    attr = _RulesetAttr(every, 3 if abi >= 4 else 0, (_SCOPE_ABSTRACT_UNIX | _SCOPE_SIGNAL) if abi >= 6 else 0)
    size = 24 if abi >= 6 else 16 if abi >= 4 else 8
    ruleset = libc.syscall(_LANDLOCK_CREATE, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    if ruleset < 0:
        return f"Landlock unavailable (errno {ctypes.get_errno()})"
    read = _rights(abi, ("execute", "read_file", "read_dir", "ioctl_dev"))
    try:
        for paths, access in ((readable, read), (writable, every)):
            for path in paths:
                try:
                    fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
                except OSError:
                    continue
                try:
                    allowed = access
                    if not os.path.isdir(path):
                        allowed &= _rights(abi, _FILE_RIGHTS)
                    rule = _PathBeneath(allowed, fd)
                    libc.syscall(_LANDLOCK_ADD, ctypes.c_int(ruleset), ctypes.c_int(1), ctypes.byref(rule), ctypes.c_uint32(0))
                finally:
                    os.close(fd)
        if not _prctl(PR_SET_NO_NEW_PRIVS, 1):
            return "Landlock not applied (no_new_privs refused)"
        if libc.syscall(_LANDLOCK_RESTRICT, ctypes.c_int(ruleset), ctypes.c_uint32(0)) != 0:
            return f"Landlock not applied (errno {ctypes.get_errno()})"
    finally:
        os.close(ruleset)
    what = ["files"]
    if abi >= 4:
        what.append("TCP")
    what.append("signals and ptrace" if abi >= 6 else "ptrace")
    return f"Landlock ABI {abi}: " + ", ".join(what)


# --- seccomp: signals and ptrace --------------------------------------------------------------------

_SECCOMP_ARCH = {  # machine -> (audit arch, syscalls that signal by pid, syscalls refused outright)
    "x86_64": (0xC000003E, (62, 200, 234, 129, 297), (101, 310, 311, 424)),
    "aarch64": (0xC00000B7, (129, 130, 131, 138, 240), (117, 270, 271, 424)),
}


class _SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8), ("k", ctypes.c_uint32)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_uint16), ("filter", ctypes.POINTER(_SockFilter))]


def _seccomp_signals() -> str:
    """Refuse (EPERM) signals to any process but this one (kill, tkill, tgkill, rt_sigqueueinfo:
    pid 0, this pid or its group only), pidfd_send_signal, ptrace and process_vm_readv/writev.
    Where Landlock cannot scope signals (before Linux 6.12) this is what keeps the grader alive."""
    import platform

    machine = platform.machine()
    if not sys.platform.startswith("linux") or machine not in _SECCOMP_ARCH:
        return ""
    arch, by_pid, refused = _SECCOMP_ARCH[machine]
    pid = os.getpid()
    allow, deny = 0x7FFF0000, 0x00050000 | 1  # SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO | EPERM
    ld, jeq, ret = 0x20, 0x15, 0x06  # BPF_LD|BPF_W|BPF_ABS, BPF_JMP|BPF_JEQ|BPF_K, BPF_RET|BPF_K
    checks = [(nr, True) for nr in by_pid] + [(nr, False) for nr in refused]
    first_check = 4
    pid_block = first_check + len(checks) + 1  # after the checks and their "allow"
    allowed, denied = pid_block + 4, pid_block + 5
    program = [(ld, 0, 0, 4), (jeq, 1, 0, arch), (ret, 0, 0, allow), (ld, 0, 0, 0)]  # another arch: allow
    for i, (nr, by_pid_arg) in enumerate(checks):
        at = first_check + i
        program.append((jeq, (pid_block if by_pid_arg else denied) - at - 1, 0, nr))
    program.append((ret, 0, 0, allow))
    program += [(ld, 0, 0, 16),  # the low 32 bits of the first argument: the pid
                (jeq, allowed - (pid_block + 2), 0, pid),
                (jeq, allowed - (pid_block + 3), 0, 0),
                (jeq, allowed - (pid_block + 4), denied - (pid_block + 4), (-pid) & 0xFFFFFFFF),
                (ret, 0, 0, allow), (ret, 0, 0, deny)]
    filters = (_SockFilter * len(program))(*[_SockFilter(*instruction) for instruction in program])
    prog = _SockFprog(len(program), filters)
    if not _prctl(PR_SET_NO_NEW_PRIVS, 1):
        return ""
    if _c().prctl(22, 2, ctypes.byref(prog), 0, 0) != 0:  # PR_SET_SECCOMP, SECCOMP_MODE_FILTER
        return ""
    return "seccomp: signals and ptrace"


def describe_isolation() -> str:
    """One line: what keeps a student's process in, on this machine."""
    import platform

    parts = ["own session, scratch folder, scrubbed environment, rlimits (memory, CPU, file size, files"
             + (", processes)" if os.getuid() != 0 else "; not processes under root, whose capabilities it drops)")]
    if sys.platform.startswith("linux") and platform.machine() in _SECCOMP_ARCH:
        parts.append("seccomp (no signals to other processes, no ptrace)")
    abi = landlock_abi()
    if abi:
        parts.append(f"Landlock ABI {abi} (writes only in its scratch folder, reads only Python's and the system's folders"
                     + (", no TCP" if abi >= 4 else "") + (", no signals out" if abi >= 6 else "") + ")")
    else:
        parts.append("no Landlock: it can read and write what its user can")
    return "; ".join(parts)


def signals_confined() -> bool:
    """Whether a student's process here cannot signal other processes (seccomp or Landlock 6+)."""
    import platform

    return (sys.platform.startswith("linux") and platform.machine() in _SECCOMP_ARCH) or landlock_abi() >= 6


# --- limits -----------------------------------------------------------------------------------------


def _vm_size() -> int:
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def _tasks_of(uid: int) -> int:
    count = 0
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else ():
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError):
            status = Path(f"/proc/{entry}/status").read_text()
            fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
            if int(fields["Uid"].split()[0]) == uid:
                count += int(fields.get("Threads", "1"))
    return count


def _set_limit(which: int, value: int) -> None:
    with contextlib.suppress(ValueError, OSError):
        soft, hard = resource.getrlimit(which)
        value = value if hard == resource.RLIM_INFINITY else min(value, hard)
        resource.setrlimit(which, (value, value))


def _drop_capabilities() -> None:
    """As root: give up every capability, so that the limits above cannot be raised again."""
    if os.geteuid() != 0 or not sys.platform.startswith("linux"):
        return
    libc = _c()
    with contextlib.suppress(OSError, ValueError):
        last = int(Path("/proc/sys/kernel/cap_last_cap").read_text())
        for cap in range(last + 1):
            libc.prctl(PR_CAPBSET_DROP, ctypes.c_ulong(cap), 0, 0, 0)

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]

    header, data = Header(0x20080522, 0), (Data * 2)()
    with contextlib.suppress(AttributeError):
        libc.capset(ctypes.byref(header), ctypes.byref(data))


def enter(channel: int, setup: dict, plan: dict) -> dict:
    """(Student's process, right after the fork.) Apply every limit; returns what applied.

    ``plan`` comes from :func:`prepare` in the supervisor: the folders that may be read.
    The channel to the grader becomes file descriptor 3.
    """
    os.setsid()
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    for name in ("SIGINT", "SIGTERM", "SIGHUP", "SIGALRM", "SIGCHLD"):
        with contextlib.suppress(OSError, ValueError):
            signal.signal(getattr(signal, name), signal.SIG_DFL)
    with contextlib.suppress(OSError, ValueError):
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writing past the limit is then an OSError, not death
    if channel != 3:
        os.dup2(channel, 3, inheritable=False)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.closerange(4, 1 << 16)
    scratch = setup["scratch"]  # made by the grader, holding a copy of the notebook graded
    os.makedirs(os.path.join(scratch, "tmp"), exist_ok=True)
    os.chdir(scratch)
    os.environ.clear()
    os.environ.update({"HOME": scratch, "TMPDIR": os.path.join(scratch, "tmp"), "PATH": "/usr/bin:/bin",
                       "LANG": "C.UTF-8", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONHASHSEED": "0"})
    limits = {**DEFAULT_LIMITS, **setup.get("limits", {})}
    applied = {}
    _set_limit(resource.RLIMIT_CORE, 0)
    if hasattr(resource, "RLIMIT_AS") and limits["memory_mb"]:
        _set_limit(resource.RLIMIT_AS, _vm_size() + int(limits["memory_mb"]) * 2**20)
        applied["memory"] = f"{limits['memory_mb']} MB"
    if setup.get("cpu_seconds"):
        _set_limit(resource.RLIMIT_CPU, int(setup["cpu_seconds"]))
        applied["cpu"] = f"{int(setup['cpu_seconds'])} s"
    _set_limit(resource.RLIMIT_FSIZE, int(limits["file_mb"]) * 2**20)
    applied["file size"] = f"{limits['file_mb']} MB"
    _set_limit(resource.RLIMIT_NOFILE, int(limits["open_files"]))
    if hasattr(resource, "RLIMIT_NPROC") and os.getuid() != 0:
        _set_limit(resource.RLIMIT_NPROC, _tasks_of(os.getuid()) + int(limits["processes"]))
        applied["processes"] = f"+{limits['processes']}"
    _drop_capabilities()
    abi = plan.get("landlock", 0)
    isolation = [_seccomp_signals()]
    if abi:
        writable = [scratch, os.devnull] + ([_debug_path] if _debug_path else [])
        isolation.append(_landlock(abi, plan["readable"], writable))
    applied["isolation"] = "; ".join(x for x in isolation if x) or "none (no Landlock or seccomp on this system)"
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)
    return applied


# --- the supervisor ----------------------------------------------------------------------------------


def library_root() -> Path:
    """The folder holding the ``bitflip_lib`` package the grader runs (the course's root)."""
    return Path(__file__).resolve().parents[2]


def preimport() -> None:
    """Import every module of the library (the student's process may not read its source), and
    what the first optimiser pulls in (``torch._dynamo``: seconds on a slow CPU)."""
    import torch

    import bitflip_lib

    for module in pkgutil.walk_packages(bitflip_lib.__path__, "bitflip_lib."):
        if module.name.endswith("__main__"):
            continue
        with contextlib.suppress(Exception):
            importlib.import_module(module.name)
    torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))])
    with contextlib.suppress(Exception):
        import torch.func  # noqa: F401


def prepare() -> dict:
    """(Supervisor.) What every student's process will need: modules imported, readable folders."""
    preimport()
    root = library_root()
    hidden = [root / "bitflip_lib", root / "solutions", Path(__file__).resolve().parents[1]]
    course = root if (root / "solutions").exists() or (root / ".git").exists() else None
    abi = landlock_abi()
    return {"landlock": abi, "readable": read_roots(hidden, course) if abi else []}


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = Path(f"/proc/{entry}/stat").read_text()
            state, ppid = stat[stat.rindex(")") + 2:].split()[:2]
            if state not in ("Z", "X"):  # a zombie is already dead (its parent will reap it)
                children.setdefault(int(ppid), []).append(int(entry))
    return children


def descendants(pid: int) -> list[int]:
    children, found, todo = _children_map(), [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def sweep(keep: set[int], statuses: dict[int, int]) -> int:
    """(Supervisor.) Kill every process below this one except those in ``keep`` (whatever they
    started is killed too); reap what ends. Returns how many processes were killed."""
    killed = 0
    for _ in range(100):
        victims = [p for p in descendants(os.getpid()) if p not in keep]
        if not victims:
            break
        for victim in victims:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(victim, signal.SIGKILL)
                killed += 1
        time.sleep(0.005)
        reap(statuses)
    reap(statuses)
    return killed


def reap(statuses: dict[int, int]) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        statuses[pid] = status


def describe_status(status: int | None) -> str:
    """How a student's process ended, for the report."""
    if status is None:
        return "the process running this check stopped answering and was stopped"
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = f"signal {number}"
        if number == getattr(signal, "SIGXCPU", -1):
            return "the process running this check used up its CPU time limit (an endless loop?)"
        return (f"the process running this check was killed by {name} (signal {number}): "
                "a crash in native code, or your code killed it")
    code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else status
    return (f"your code ended the grading process (exit status {code}, as os._exit({code}) does): "
            "a graded function must return its result, not end the program")


class Control:
    """One end of the grader <-> supervisor channel: JSON messages, one at a time, with fds."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._buffer = b""

    def send(self, message: dict, fds: list[int] = ()) -> None:
        data = (json.dumps(message) + "\n").encode()
        if fds:
            socket.send_fds(self.sock, [data], list(fds))
        else:
            self.sock.sendall(data)

    def recv(self, timeout: float | None = None) -> tuple[dict | None, list[int]]:
        """The next message (None at end of file) and the fds that came with it."""
        fds: list[int] = []
        self.sock.settimeout(timeout)
        while b"\n" not in self._buffer:
            try:
                data, got, _, _ = socket.recv_fds(self.sock, 1 << 16, 4)
            except (socket.timeout, BlockingIOError):
                raise TimeoutError from None
            except ConnectionResetError:
                data, got = b"", []
            fds += got
            if not data:
                return None, fds
            self._buffer += data
        line, self._buffer = self._buffer.split(b"\n", 1)
        return json.loads(line), fds


def supervise(control: socket.socket, plan: dict, run_worker: Callable[[int, dict], None]) -> None:
    """(Supervisor.) Start students' processes on request and clear up after them. Never returns."""
    _prctl(PR_SET_CHILD_SUBREAPER, 1)
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    keep_out_of_reach()
    channel = Control(control)
    workers: dict[int, int] = {}  # number -> pid
    statuses: dict[int, int] = {}
    try:
        channel.send({"event": "ready", "pid": os.getpid(), "landlock": plan.get("landlock", 0)})
        while True:
            message, fds = channel.recv()
            if message is None:
                return
            op = message.get("op")
            if op == "spawn":
                pid = os.fork()
                if pid == 0:  # pragma: no cover - the student's process
                    try:
                        control.close()
                        applied = enter(fds[0], message["setup"], plan)
                        message["setup"]["applied"] = applied
                        run_worker(3, message["setup"])
                    except BaseException:  # noqa: BLE001
                        _debug("student's process")
                    finally:
                        os._exit(70)
                for fd in fds:
                    os.close(fd)
                workers[message["number"]] = pid
                channel.send({"event": "spawned", "pid": pid})
            elif op == "sweep":  # a check ended: only the student's process itself stays
                killed = sweep(set(workers.values()), statuses)
                channel.send({"event": "swept", "killed": killed})
            elif op == "status":  # the channel closed: how did the process end?
                pid = workers.get(message["number"])
                stop = time.monotonic() + float(message.get("wait", 2.0))
                while pid is not None and pid not in statuses and time.monotonic() < stop:
                    reap(statuses)
                    time.sleep(0.01)
                channel.send({"event": "status", "status": statuses.get(pid)})
            elif op == "end":
                pid = workers.pop(message["number"], None)
                if pid is not None:
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.killpg(pid, signal.SIGKILL)
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.kill(pid, signal.SIGKILL)
                killed = sweep(set(workers.values()), statuses)
                channel.send({"event": "ended", "status": statuses.pop(pid, None) if pid else None, "killed": killed})
            elif op == "quit":
                return
    except BaseException:  # noqa: BLE001 - the grader notices a supervisor that went away
        _debug("supervisor")
    finally:
        with contextlib.suppress(BaseException):
            for pid in workers.values():
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)
            sweep(set(), statuses)
        os._exit(0)


DEBUG_ENV_VAR = "BITFLIP_GRADER_DEBUG"
_debug_path = os.environ.get(DEBUG_ENV_VAR)


def _debug(where: str) -> None:
    """With ``BITFLIP_GRADER_DEBUG=FILE``, append the current exception's traceback to FILE
    (a supervisor and a student's process have no terminal to print it on)."""
    if not _debug_path:
        return
    import traceback

    with contextlib.suppress(OSError):
        fd = os.open(_debug_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        os.write(fd, f"--- {where} (pid {os.getpid()})\n{traceback.format_exc()}\n".encode())
        os.close(fd)


def zygote_main(fd: int) -> None:  # pragma: no cover - a fresh interpreter
    """Entry point of the supervisor for graded files: it imports everything once, never runs
    student code, and forks one student's process per exercise."""
    from bitflip_lib.grading.worker import serve

    control = socket.socket(fileno=fd)
    keep_out_of_reach()
    plan = prepare()
    supervise(control, plan, lambda channel, setup: serve(channel, setup, None))


BOOT = "import sys; sys.path.insert(0, sys.argv[1]); from bitflip_lib.grading.sandbox import zygote_main; " \
       "zygote_main(int(sys.argv[2]))"


def clean_environment() -> dict[str, str]:
    """The environment a supervisor starts with: nothing of the user's but the essentials."""
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    for name in ("CUDA_VISIBLE_DEVICES", "SYSTEMROOT", DEBUG_ENV_VAR):
        if name in os.environ:
            env[name] = os.environ[name]
    return env
