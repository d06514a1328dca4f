"""Stored runs: one finished training run on disk, its type, its name, and how to write and read it.

Every stored run is one JSON file ``results/<study>/<name>.json``. ``<name>`` is
:func:`run_name` of its configuration (``default_n20_har_future-k4_s0``, plus an 8-character
hash of the settings that differ from the preset, e.g. ``..._s0_96ff9b20``), so the same
configuration always lands in the same file and a rerun can skip it. The file holds the keys
of :data:`RECORD_KEYS`: the name, the run's summary, its best greedy success, the full
configuration and the settings it changed from its preset (``overrides``), the library and torch
versions, the device, the wall time, when it finished, the commit of the code that produced it
(``commit``, ``dirty``: see :func:`source_commit`; files stored before it was recorded lack both)
and a thinned learning curve (at most 100 evaluations, as columns). A run may carry more keys
(``evaluated_at``: the trained network evaluated unchanged at other n); they are kept in
:attr:`StoredRun.extra`.

A stored run is checked once, when it is loaded (:func:`record_problem`): only regular files are
read, and the record must be consistent with itself and with its own name (the name its
configuration gives must be the record's and the file's). A file that fails (truncated by a full
disk, another cell's run copied under this cell's name, a FIFO named ``x.json``...) is a
:class:`DamagedRunError`: :func:`load_runs` names it on stderr and skips it, and a sweep sets it
aside and runs its cell again (:func:`bitflip_lib.lab.sweep.stored_cell`).

:class:`StoredRun` is the one type for such a run. Like a :class:`~bitflip_lib.trainer.TrainResult`
it is a :class:`~bitflip_lib.trainer.TrainingRun` (``curve(metric)``, ``solved_at``,
``iterations``, ``best_success``, ``summary()``, ``settings()``...), so the plotting helpers and
tables read either. (:func:`best_success`, the rule, is re-exported here from the trainer.)

Example::

    from bitflip_lib.lab.runs import load_runs
    runs = load_runs("results/default", arch="har", n=20)
    runs[0].solved_at, runs[0].first_at(0.5), runs[0].success_by(10)
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import os
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bitflip_lib.config import TrainConfig, make_config
from bitflip_lib.her import K_STRATEGIES
from bitflip_lib.lab.studies import STUDY_FIELDS, StudyConfig, make_run_config
from bitflip_lib.runtime import strict_json
from bitflip_lib.trainer import TrainResult, best_success

__all__ = [
    "ARCH_LABELS", "best_success", "config_from_dict", "config_overrides", "CURVE_KEYS",
    "DamagedRunError", "describe_overrides", "load_run", "load_runs", "MAX_RECORD_BYTES", "MAX_RECORD_DEPTH",
    "method_label", "overrides_hash", "read_record", "record_problem", "RECORD_KEYS", "run_name", "source_commit", "SOURCE_ROOT",
    "StoredRun", "thin_curve", "write_json_atomic", "write_run",
]

RECORD_KEYS: tuple[str, ...] = ("name", "summary", "best_success", "config", "overrides", "version", "torch",
                                "device", "wall_seconds", "seconds_per_iteration", "finished_utc", "commit",
                                "dirty", "curve")
"""The keys of a stored run's JSON file, in the order they are written."""

CURVE_KEYS: tuple[str, ...] = ("success_rate", "mean_distance", "loss")
"""The metrics a stored curve keeps, besides ``iteration``."""

ARCH_LABELS: dict[str, str] = {"uvfa": "UVFA", "har": "HAR", "mlp": "MLP", "deepsets": "DeepSets"}

# Fields that are part of the name itself (or, for the device, deliberately not): the rest of the
# configuration goes into the hash when it differs from the preset.
_NAMED_FIELDS = ("n", "arch", "her", "k", "seed", "preset", "device")

_OVERRIDE_WORDS = {"buffer_capacity": "buffer", "gradient_steps": "grad steps", "batch_size": "batch",
                   "double_dqn": "double DQN", "polyak": "Polyak", "lr_end": "lr cosine to",
                   "hindsight_bound": "hindsight bound", "action_gap": "advantage learning alpha",
                   "batch_without_replacement": "batches without replacement"}


def method_label(arch: str, her: str) -> str:
    """``'HER-UVFA'``, ``'Vanilla-HAR'``... (any HER strategy other than ``none`` counts as HER)."""
    return f"{'Vanilla' if her == 'none' else 'HER'}-{ARCH_LABELS.get(arch, arch.upper())}"


# --------------------------------------------------------------------------------------------
# Naming
# --------------------------------------------------------------------------------------------
def config_overrides(config: TrainConfig) -> dict:
    """The fields of ``config`` that differ from its preset's defaults (n, arch, her, k and seed aside)."""
    base = {**STUDY_FIELDS, **make_config(config.preset, n=config.n, arch=config.arch, her=config.her, k=config.k,
                                          seed=config.seed).to_dict()}
    mine = config.to_dict()
    return {key: mine[key] for key in sorted(mine) if key not in _NAMED_FIELDS and mine[key] != base[key]}


def overrides_hash(overrides: dict) -> str:
    """The 8-character hash that names a set of overrides (``''`` for none)."""
    if not overrides:
        return ""
    return hashlib.sha1(json.dumps(overrides, sort_keys=True, default=str).encode()).hexdigest()[:8]


def run_name(config: TrainConfig) -> str:
    """The file stem of a run, e.g. ``default_n20_har_future-k4_s0``.

    Settings that differ from the preset add a hash suffix (:func:`overrides_hash`), so runs
    with different settings never collide and the same configuration always gets the same
    name. The device is not part of the name: a result is a result wherever it was computed.
    """
    her = f"{config.her}-k{config.k}" if config.her in K_STRATEGIES else config.her
    stem = f"{config.preset}_n{config.n}_{config.arch}_{her}_s{config.seed}"
    digest = overrides_hash(config_overrides(config))
    return f"{stem}_{digest}" if digest else stem


def describe_overrides(overrides: dict) -> str:
    """The settings a run changed from its preset, in words (the iteration budget left out),
    e.g. ``'batch 1024, buffer 2^20, gamma 0.95'``; ``'default preset'`` when nothing changed."""
    parts = []
    for key, value in sorted(overrides.items()):
        if key == "max_iterations":
            continue
        if key == "buffer_capacity":
            value = f"2^{int(value).bit_length() - 1}"
        name = _OVERRIDE_WORDS.get(key, key)
        parts.append(name if value is True else f"{name} {value}")
    return ", ".join(parts) or "default preset"


def config_from_dict(values: dict, **changes: Any) -> TrainConfig:
    """The :class:`TrainConfig` of a stored ``config`` dict, with ``changes`` applied (a
    :class:`~bitflip_lib.lab.studies.StudyConfig` for a run that used a study setting).

    Fields this version of the library does not know are dropped, so older records still load.
    """
    known = {f.name for f in dataclasses.fields(StudyConfig)}
    values = {key: value for key, value in {**values, **changes}.items() if key in known}
    if values.get("hidden") is not None:
        values["hidden"] = tuple(values["hidden"])
    return make_run_config(**values)


# --------------------------------------------------------------------------------------------
# Provenance: which code produced a run
# --------------------------------------------------------------------------------------------
SOURCE_ROOT = Path(__file__).resolve().parents[2]
"""The checkout this library is imported from (its git repository, when it is one)."""


def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


@functools.lru_cache(maxsize=None)
def source_commit(root: Path = SOURCE_ROOT) -> tuple[str | None, bool | None]:
    """``(commit, dirty)`` of the code in ``root``: the git HEAD hash, and whether tracked files under
    ``bitflip_lib/`` had uncommitted changes. ``(None, None)`` outside a git checkout (an installed
    package, no git); ``dirty`` is ``None`` if git could not say. Asked once per process.
    """
    root = Path(root).resolve()
    # An installed package inside some other repository (a .venv in a checkout) is not that checkout.
    top = _git(root, "rev-parse", "--show-toplevel")
    if top is None or Path(top.strip()).resolve() != root:
        return None, None
    head = _git(root, "rev-parse", "HEAD")
    if head is None:
        return None, None
    status = _git(root, "status", "--porcelain", "--untracked-files=no", "--", "bitflip_lib")
    return head.strip(), None if status is None else bool(status.strip())


# --------------------------------------------------------------------------------------------
# The type
# --------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class StoredRun:
    """One finished training run as stored on disk (see the module docstring for the file)."""

    name: str
    """The file stem, :func:`run_name` of the configuration."""
    config: dict
    """The full configuration, as :meth:`TrainConfig.to_dict` wrote it."""
    overrides: dict
    """The settings that differ from the preset (see :func:`describe_overrides`)."""
    stored_summary: dict
    """What ``TrainResult.summary()`` returned (iterations, solved_at, final success and distance...):
    :meth:`summary` returns it."""
    columns: dict[str, list]
    """The thinned learning curve: ``iteration`` and :data:`CURVE_KEYS`, one list each."""
    best_success: float | None
    """The best greedy success of any evaluation (of the full run, not only of the thinned curve)."""
    device: str = ""
    wall_seconds: float = 0.0
    seconds_per_iteration: float | None = None
    version: str = ""
    torch: str = ""
    finished_utc: str = ""
    commit: str | None = None
    """The git commit of the code that produced the run (``None``: not recorded, or not a git checkout)."""
    dirty: bool | None = None
    """Whether ``bitflip_lib/`` had uncommitted changes then (``None``: not recorded or unknown)."""
    extra: dict = dataclasses.field(default_factory=dict)
    """Any further keys of the file, e.g. ``evaluated_at``."""
    path: Path | None = None
    """Where it was loaded from (``None`` for a run made in memory)."""

    # -- what the file says ------------------------------------------------------------------
    @property
    def preset(self) -> str:
        return self.stored_summary.get("preset", self.config.get("preset"))

    @property
    def n(self) -> int:
        return self.stored_summary["n"]

    @property
    def arch(self) -> str:
        return self.stored_summary["arch"]

    @property
    def her(self) -> str:
        return self.stored_summary["her"]

    @property
    def k(self) -> int | None:
        return self.stored_summary.get("k")

    @property
    def seed(self) -> int:
        return self.stored_summary["seed"]

    @property
    def method(self) -> str:
        """``'HER-HAR'``, ``'Vanilla-UVFA'``..."""
        return method_label(self.arch, self.her)

    @property
    def solved_at(self) -> int | None:
        """The iteration at which the preset's success rule was first met (``None``: never)."""
        return self.stored_summary.get("solved_at")

    @property
    def confirmed_at(self) -> int | None:
        """The iteration at which the solved streak was complete (``solved_at`` plus the rest of the
        window): the moment the write-up's counts report (``None``: never solved)."""
        return self.stored_summary.get("confirmed_at")

    @property
    def solved(self) -> bool:
        return self.solved_at is not None

    @property
    def verdict(self) -> str:
        """``'solved'`` or ``'failed'`` (within its budget)."""
        return "solved" if self.solved else "failed"

    @property
    def iterations(self) -> int:
        """How many iterations the run trained for."""
        return self.stored_summary["iterations"]

    @property
    def max_iterations(self) -> int | None:
        return self.config.get("max_iterations")

    @property
    def success_rate(self) -> float | None:
        """The greedy success of the last evaluation."""
        return self.stored_summary.get("success_rate")

    @property
    def mean_distance(self) -> float | None:
        """How far, in bits, the greedy agents ended from their goals at the last evaluation."""
        return self.stored_summary.get("mean_distance")

    @property
    def stopped_by(self) -> str | None:
        return self.stored_summary.get("stopped_by")

    @property
    def evaluated_at(self) -> dict[int, dict]:
        """``{n: evaluation}`` of the trained network used unchanged at other n (empty if not done)."""
        return {int(n): ev for n, ev in self.extra.get("evaluated_at", {}).items()}

    def summary(self) -> dict[str, Any]:
        """The run's summary as ``TrainResult.summary()`` gave it when it finished."""
        return self.stored_summary

    def settings(self) -> dict[str, Any]:
        """Every setting of the run by field name, as stored (:attr:`config`)."""
        return dict(self.config)

    # -- reading the curve -------------------------------------------------------------------
    @property
    def metrics(self) -> frozenset[str]:
        """The metrics of the stored curve (:data:`CURVE_KEYS`)."""
        return frozenset(self.columns) - {"iteration"}

    def curve(self, key: str) -> tuple[list[int], list[float]]:
        """``(iterations, values)`` of one stored metric, like ``TrainResult.curve``."""
        if key not in self.columns:
            return [], []
        points = [(i, v) for i, v in zip(self.columns["iteration"], self.columns[key]) if v is not None]
        return [p[0] for p in points], [p[1] for p in points]

    def first_at(self, level: float, key: str = "success_rate") -> int | None:
        """The first evaluated iteration at which ``key`` reached ``level`` (``None``: never)."""
        return next((i for i, v in zip(*self.curve(key)) if v >= level), None)

    def success_by(self, iteration: int) -> float:
        """The greedy success of the last evaluation at or before ``iteration``."""
        before = [v for i, v in zip(*self.curve("success_rate")) if i <= iteration]
        if not before:
            raise ValueError(f"{self.name}: no evaluation at or before iteration {iteration}")
        return before[-1]

    def train_config(self, **changes: Any) -> TrainConfig:
        """The run's :class:`TrainConfig` (fields this library version does not know are dropped),
        with ``changes`` applied, e.g. ``run.train_config(device="auto")`` to rerun it."""
        return config_from_dict(self.config, **changes)

    # -- to and from a record ----------------------------------------------------------------
    def to_record(self) -> dict:
        """The JSON-ready dict of the file (the keys of :data:`RECORD_KEYS`, then ``extra``)."""
        record = {"name": self.name, "summary": self.stored_summary, "best_success": self.best_success,
                  "config": self.config, "overrides": self.overrides, "version": self.version,
                  "torch": self.torch, "device": self.device, "wall_seconds": self.wall_seconds,
                  "seconds_per_iteration": self.seconds_per_iteration, "finished_utc": self.finished_utc,
                  "commit": self.commit, "dirty": self.dirty, "curve": self.columns}
        return {**record, **self.extra}

    @classmethod
    def from_record(cls, record: dict, path: Path | None = None, named: bool = True) -> StoredRun:
        """A run from the dict of its file, checked once here (:func:`record_problem`): a record that
        is not a consistent stored run is a :class:`DamagedRunError` naming the file and what is wrong.

        ``named``: the file's stem must be the run's name, as in a results folder (False for a
        record saved under a name of one's own, ``bitflip train --save my.json``).
        """
        problem = record_problem(record, path.stem if path is not None and named else None)
        if problem is not None:
            raise DamagedRunError(path, problem)
        extra = {key: value for key, value in record.items() if key not in RECORD_KEYS}
        return cls(name=record["name"], config=record["config"],
                   overrides=record.get("overrides", {}), stored_summary=record["summary"], columns=record["curve"],
                   best_success=record.get("best_success"), device=record.get("device", ""),
                   wall_seconds=record.get("wall_seconds", record["summary"].get("wall_seconds", 0.0)),
                   seconds_per_iteration=record.get("seconds_per_iteration"), version=record.get("version", ""),
                   torch=record.get("torch", ""), finished_utc=record.get("finished_utc", ""),
                   commit=record.get("commit"), dirty=record.get("dirty"), extra=extra, path=path)

    @classmethod
    def from_result(cls, result: TrainResult, curve_points: int = 100, **extra: Any) -> StoredRun:
        """The stored form of a finished :class:`~bitflip_lib.trainer.TrainResult`."""
        import torch

        from bitflip_lib._version import __version__

        history = result.history
        commit, dirty = source_commit()
        return cls(name=run_name(result.config), config=result.config.to_dict(),
                   overrides=config_overrides(result.config), stored_summary=result.summary(),
                   columns=thin_curve(history, max_points=curve_points),
                   best_success=result.best_success,
                   device=result.device, wall_seconds=round(result.wall_seconds, 3),
                   seconds_per_iteration=round(result.wall_seconds / max(result.iterations, 1), 4),
                   version=__version__, torch=torch.__version__,
                   finished_utc=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), commit=commit, dirty=dirty,
                   extra=dict(extra))


def thin_curve(history: Sequence[dict], keys: Sequence[str] = CURVE_KEYS, max_points: int = 100) -> dict[str, list]:
    """At most ``max_points`` evenly spaced evaluation records (first and last kept), as columns."""
    evaluated = [h for h in history if h.get("success_rate") is not None]
    if len(evaluated) > max_points:
        step = (len(evaluated) - 1) / (max_points - 1)
        evaluated = [evaluated[round(i * step)] for i in range(max_points)]
    curve: dict[str, list] = {"iteration": [h["iteration"] for h in evaluated]}
    for key in keys:
        curve[key] = [None if h.get(key) is None else round(float(h[key]), 5) for h in evaluated]
    return curve


# --------------------------------------------------------------------------------------------
# Writing and loading
# --------------------------------------------------------------------------------------------
def write_json_atomic(path: str | os.PathLike, data: dict) -> Path:
    """Write ``data`` as JSON to ``path`` through a temporary file and a rename, so that a file is
    never half-written (an interrupted run leaves the old file or none); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            strict_json.dump(data, handle, indent=1, sort_keys=False)
            handle.write("\n")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def write_run(run: StoredRun, folder: str | os.PathLike, filename: str | None = None) -> Path:
    """Write ``run`` to ``folder/<run.name>.json`` (or ``folder/<filename>``) atomically (see
    :func:`write_json_atomic`); returns the path."""
    if not run.name:
        raise ValueError("the run has no name: make it with StoredRun.from_result(result)")
    return write_json_atomic(Path(folder) / (filename or f"{run.name}.json"), run.to_record())


MAX_RECORD_BYTES = 8 * 2**20
"""The largest file read as a stored run (stored runs are a few kB; their curves are thinned)."""
MAX_RECORD_DEPTH = 8
"""The deepest nesting of lists and objects in a stored run's file (a real one has 3 levels)."""


class DamagedRunError(ValueError):
    """A stored run's file that is not a consistent stored run: unreadable, not a regular file, not
    valid JSON, or a record whose contents do not agree with each other or with its own name."""

    def __init__(self, path: str | os.PathLike | None, reason: str) -> None:
        self.path, self.reason = (Path(path) if path is not None else None), reason
        where = str(self.path) if self.path is not None else "the stored run"
        super().__init__(f"{where} is damaged, {reason}: restore it from git or rerun its sweep")


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def record_problem(record: object, stem: str | None = None) -> str | None:
    """What is wrong with a stored run's record (``None``: nothing), checked once when runs are loaded.

    The record must hold ``name``, ``summary``, ``config`` and ``curve`` of the right kinds; its
    configuration must be a valid one whose :func:`run_name` is the record's name and, when
    ``stem`` is given, the file's stem (a run saved under another cell's name is not that cell);
    the summary must agree with the configuration and the stored overrides with what the
    configuration changed from its preset; the curve's columns must be equally long lists of
    numbers. Extra keys are kept as they are (``evaluated_at`` must map n to an evaluation).
    """
    if not isinstance(record, dict):
        return f"not a JSON object (a {type(record).__name__})"
    for key in ("summary", "config", "curve"):
        if not isinstance(record.get(key), dict):
            return f"its {key} is not a JSON object" if key in record else f"it lacks {key}"
    if not isinstance(record.get("name"), str):
        return "its name is missing or not text"
    try:
        config = config_from_dict(record["config"], device="cpu")  # where it ran is not part of the run
    except (TypeError, ValueError) as error:
        return f"its config is not a valid configuration ({' '.join(str(error).split())})"
    name = run_name(config)
    if record["name"] != name:
        return f"its config is the run {name}, but the record is named {record['name']}"
    if stem is not None and stem != name:
        return f"it holds the run {name} (by its config), not {stem}"
    summary = record["summary"]
    for key in ("n", "arch", "her", "k", "seed", "preset"):
        if key in summary or key != "k":
            if summary.get(key) != getattr(config, key):
                return f"its summary says {key} = {summary.get(key)!r}, its config {getattr(config, key)!r}"
    iterations = summary.get("iterations")
    if not _is_int(iterations) or iterations < 0:
        return f"its summary's iterations is not a count, got {iterations!r}"
    for key in ("solved_at", "confirmed_at"):
        if summary.get(key) is not None and not (_is_int(summary[key]) and 1 <= summary[key] <= iterations):
            return f"its summary's {key} is not an iteration in [1, {iterations}], got {summary[key]!r}"
    for key in ("success_rate", "mean_distance", "wall_seconds"):
        if summary.get(key) is not None and not _is_number(summary[key]):
            return f"its summary's {key} is not a number, got {summary[key]!r}"
    if "overrides" in record and record["overrides"] != json.loads(json.dumps(config_overrides(config))):
        return "its overrides do not match its config"
    curve = record["curve"]
    columns = ("iteration", *CURVE_KEYS)
    if any(not isinstance(curve.get(key), list) for key in columns):
        return f"its curve lacks one of the columns {', '.join(columns)}"
    if len({len(curve[key]) for key in columns}) != 1:
        return "its curve's columns have different lengths"
    if not all(_is_int(i) and 1 <= i <= iterations for i in curve["iteration"]):
        return f"its curve's iterations are not iterations in [1, {iterations}]"
    if not all(value is None or _is_number(value) for key in CURVE_KEYS for value in curve[key]):
        return "its curve holds values that are not numbers"
    best = record.get("best_success")
    if best is not None and not (_is_number(best) and 0 <= best <= 1):
        return f"its best_success is not a success rate in [0, 1], got {best!r}"
    for key in ("wall_seconds", "seconds_per_iteration"):
        if record.get(key) is not None and not _is_number(record[key]):
            return f"its {key} is not a number, got {record[key]!r}"
    for key in ("device", "version", "torch", "finished_utc"):
        if not isinstance(record.get(key, ""), str):
            return f"its {key} is not text, got {record[key]!r}"
    if record.get("commit") is not None and not isinstance(record["commit"], str):
        return f"its commit is not text, got {record['commit']!r}"
    if record.get("dirty") is not None and not isinstance(record["dirty"], bool):
        return f"its dirty flag is not true or false, got {record['dirty']!r}"
    evaluated = record.get("evaluated_at", {})
    if not isinstance(evaluated, dict) or not all(
            isinstance(n, str) and n.isdigit() and isinstance(ev, dict) for n, ev in evaluated.items()):
        return "its evaluated_at does not map numbers of bits to evaluations"
    return None


def _depth(value: object) -> int:
    """How deeply lists and objects nest in ``value`` (0 for a number or text), without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        deepest = max(deepest, level)
        if level > MAX_RECORD_DEPTH:
            break
        stack.extend((child, level + 1) for child in children)
    return deepest


def _refuse_constant(constant: str) -> float:
    raise ValueError(f"the non-standard number {constant}")


def read_record(path: str | os.PathLike) -> dict | None:
    """The dict stored in one run's file; ``None`` for a JSON file that is not a stored run (no
    ``summary``, ``config`` or ``curve``).

    Only a regular file is read (a FIFO, a device or a folder named ``*.json`` is a
    :class:`DamagedRunError`: reading it could block forever or never end), of at most
    :data:`MAX_RECORD_BYTES`, nested at most :data:`MAX_RECORD_DEPTH` deep, holding standard JSON.
    """
    try:
        # O_NONBLOCK: opening a FIFO with no writer returns at once instead of waiting for one.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as error:
        raise DamagedRunError(path, f"unreadable ({error.strerror or error})") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = "a folder" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else "a device or socket"
        raise DamagedRunError(path, f"not a regular file ({kind})")
    with os.fdopen(fd, "rb") as handle:
        data = handle.read(MAX_RECORD_BYTES + 1)
    if len(data) > MAX_RECORD_BYTES:
        raise DamagedRunError(path, f"larger than {MAX_RECORD_BYTES // 2**20} MB, far more than any stored run")
    try:
        record = json.loads(data.decode("utf-8"), parse_constant=_refuse_constant)
    except RecursionError:
        raise DamagedRunError(path, "nested too deeply to be a stored run") from None
    except (ValueError, UnicodeDecodeError) as error:  # JSONDecodeError is a ValueError
        raise DamagedRunError(path, f"not valid JSON ({' '.join(str(error).split()) or 'empty file'})") from None
    if _depth(record) > MAX_RECORD_DEPTH:
        raise DamagedRunError(path, f"nested more than {MAX_RECORD_DEPTH} levels deep, unlike any stored run")
    if not isinstance(record, dict) or any(key not in record for key in ("summary", "config", "curve")):
        return None
    return record


def load_run(path: str | os.PathLike, named: bool = True) -> StoredRun:
    """The stored run in one JSON file; a ValueError naming the file if it is not one, a
    :class:`DamagedRunError` if it is damaged (see :meth:`StoredRun.from_record`).

    ``named``: the file's stem must be the run's name, as in a results folder; False for a record
    saved under a name of one's own (``bitflip train --save my.json``).
    """
    path = Path(path)
    if not path.exists():
        raise ValueError(f"no stored run at {str(path)!r}: the commands that make it are in results/README.md")
    record = read_record(path)
    if record is None:
        raise ValueError(f"not a stored run in {path}: expected a JSON object with summary, config and curve")
    return StoredRun.from_record(record, path, named=named)


def _matches(run: StoredRun, filters: dict) -> bool:
    for key, wanted in filters.items():
        value = getattr(run, key)
        if isinstance(wanted, (list, tuple, set, frozenset)):
            if value not in wanted:
                return False
        elif value != wanted:
            return False
    return True


def load_runs(folder: str | os.PathLike, recursive: bool = False, **filters: Any) -> list[StoredRun]:
    """Every stored run in ``folder`` (sorted by file name) whose attributes match ``filters``.

    A filter keeps runs whose attribute equals the value, or is in it for a list, tuple or set:
    ``load_runs('results/default', arch='har', n=[20, 30])``; ``overrides={}`` keeps only runs with
    the preset's own settings. JSON files that are not runs (no ``summary``/``config``/``curve``)
    are skipped silently; a damaged file (see :class:`DamagedRunError`) is skipped and named on stderr.
    """
    if not str(folder).strip():
        raise ValueError("folder is empty: give the folder a sweep wrote its cells to")
    root = Path(folder)
    if root.exists() and not root.is_dir():
        raise ValueError(f"folder {str(root)!r} is a file, not a results folder: give the folder a sweep wrote its "
                         f"cells to (bitflip sweep --out FOLDER), e.g. {str(root.parent)!r}")
    if not root.is_dir():
        raise ValueError(f"no results folder at {str(root)!r}: run a sweep first (bitflip sweep --out {root})")
    unknown = [key for key in filters if not hasattr(StoredRun, key) and key not in
               {f.name for f in dataclasses.fields(StoredRun)}]
    if unknown:
        raise ValueError(f"unknown filter {', '.join(unknown)}: filter on a StoredRun attribute such as n, arch, seed")
    runs = []
    for path in sorted(root.rglob("*.json") if recursive else root.glob("*.json")):
        try:
            record = read_record(path)
            run = StoredRun.from_record(record, path) if record is not None else None
        except DamagedRunError as error:
            print(f"bitflip: skipped {error.path}: damaged ({error.reason}); rerun its sweep to redo the cell",
                  file=sys.stderr, flush=True)
            continue
        if run is not None and _matches(run, filters):
            runs.append(run)
    return runs
