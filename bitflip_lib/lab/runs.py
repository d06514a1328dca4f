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

A file that cannot be parsed (truncated by a full disk, say) is a :class:`DamagedRunError`;
:func:`load_runs` names it on stderr and skips it.

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
import os
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
    "DamagedRunError", "describe_overrides", "load_run", "load_runs", "method_label",
    "overrides_hash", "read_record", "RECORD_KEYS", "run_name", "source_commit", "SOURCE_ROOT",
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
    def from_record(cls, record: dict, path: Path | None = None) -> StoredRun:
        """A run from the dict of its file; a clear ValueError if it is not a stored run."""
        where = f" in {path}" if path else ""
        missing = [key for key in ("summary", "config", "curve") if key not in record]
        if missing:
            raise ValueError(f"not a stored run{where}: it lacks {', '.join(missing)}")
        extra = {key: value for key, value in record.items() if key not in RECORD_KEYS}
        return cls(name=record.get("name") or (path.stem if path else ""), config=record["config"],
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

        from bitflip_lib import __version__

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


class DamagedRunError(ValueError):
    """A stored run's file that cannot be parsed (truncated, empty, not JSON)."""

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        self.path, self.reason = Path(path), reason
        super().__init__(f"{self.path} is damaged, not valid JSON ({reason}): restore it from git or rerun it")


def read_record(path: str | os.PathLike) -> dict | None:
    """The dict stored in one run's file; ``None`` for a JSON file that is not a stored run (no
    ``summary``, ``config`` or ``curve``). A file that cannot be parsed is a :class:`DamagedRunError`."""
    try:
        with open(path, encoding="utf-8") as handle:
            record = json.load(handle)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DamagedRunError(path, " ".join(str(error).split()) or "empty file") from None
    if not isinstance(record, dict) or any(key not in record for key in ("summary", "config", "curve")):
        return None
    return record


def load_run(path: str | os.PathLike) -> StoredRun:
    """The stored run in one JSON file; a ValueError naming the file if it is not one
    (a :class:`DamagedRunError` if it cannot be parsed)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no stored run at {str(path)!r}: the commands that make it are in results/README.md")
    record = read_record(path)
    if record is None:
        raise ValueError(f"not a stored run in {path}: expected a JSON object with summary, config and curve")
    return StoredRun.from_record(record, path)


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
    root = Path(folder)
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
        except DamagedRunError as error:
            print(f"bitflip: skipped {error.path}: damaged ({error.reason}); rerun its sweep to redo the cell",
                  file=sys.stderr, flush=True)
            continue
        if record is None:
            continue
        run = StoredRun.from_record(record, path)
        if _matches(run, filters):
            runs.append(run)
    return runs
