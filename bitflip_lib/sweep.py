"""Experiment sweeps: run a grid of configurations, keep every finished cell on disk, tabulate.

A *cell* is one training run (one configuration, one seed). :func:`run_sweep` trains the cells
one after the other and writes each result, as soon as it finishes, to its own small JSON file
in a results directory. The file name is derived from the configuration alone
(:func:`cell_name`), so rerunning the same sweep skips the cells already on disk: an
interrupted sweep loses at most the cell that was running (files are written to a temporary
name and renamed, so a half-written file never exists). A cell file damaged all the same (a
full disk, a bad copy) is named on stderr, kept aside as ``<name>.json.damaged`` and run again.

:func:`load_results` reads a directory back into flat rows, :func:`aggregate` groups them over
seeds, and :func:`render_table` prints them beside Table 1 of the write-up (Chau, seeds/000).

:func:`run_sweep_ray` runs the same cells as Ray tasks (``bitflip sweep ... --ray [ADDRESS]``),
on a local Ray or a cluster, into the same files.

Example::

    configs = grid(ns=[5, 10], archs=["har"], hers=["none", "future"], seeds=[0, 1, 2])
    run_sweep(configs, "results/default")
    print(render_table(aggregate(load_results("results/default"))))
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import torch

from bitflip_lib import __version__
from bitflip_lib.config import TrainConfig, make_config
from bitflip_lib.device import progress_bars_enabled

# --------------------------------------------------------------------------------------------
# The write-up's Table 1 (iterations of 16 parallel episodes until solved; "fails" = never
# solved in its budget; a missing n was not run by the write-up and shows as "?").
# --------------------------------------------------------------------------------------------
FAILS = "fails"
WRITEUP_TABLE1: dict[str, dict[int, int | str]] = {
    "HER-UVFA": {5: 203, 10: 494, 15: 2590, 20: FAILS},
    "Vanilla-UVFA": {5: 209, 10: 1003, 15: FAILS, 20: FAILS},
    "HER-HAR": {20: 373, 30: 613, 40: 636, 50: 658},
    "Vanilla-HAR": {20: 483, 30: FAILS, 40: FAILS, 50: FAILS},
}
TABLE_NS: tuple[int, ...] = (5, 10, 15, 20, 30, 40, 50)
ARCH_LABELS = {"uvfa": "UVFA", "har": "HAR", "mlp": "MLP"}
# Rough relative cost of one iteration, used to run cheap cells first.
_ARCH_COST = {"har": 1.0, "mlp": 2.0, "uvfa": 8.0}


def method_label(arch: str, her: str) -> str:
    """``'HER-UVFA'``, ``'Vanilla-HAR'``... (any HER strategy other than ``none`` counts as HER)."""
    return f"{'Vanilla' if her == 'none' else 'HER'}-{ARCH_LABELS.get(arch, arch.upper())}"


# --------------------------------------------------------------------------------------------
# Naming and building cells
# --------------------------------------------------------------------------------------------
_NAMED_FIELDS = ("n", "arch", "her", "k", "seed", "preset", "device")


def config_overrides(config: TrainConfig) -> dict:
    """Fields of ``config`` that differ from its preset's defaults (besides n, arch, her, k, seed)."""
    base = make_config(config.preset, n=config.n, arch=config.arch, her=config.her, k=config.k,
                       seed=config.seed).to_dict()
    mine = config.to_dict()
    return {key: mine[key] for key in sorted(mine) if key not in _NAMED_FIELDS and mine[key] != base[key]}


def describe_overrides(overrides: dict) -> str:
    """Short text for the settings a run changed from its preset (the iteration budget left out),
    e.g. ``'batch 1024, buffer 2^20, gamma 0.95'``; ``'default preset'`` when nothing changed."""
    names = {"buffer_capacity": "buffer", "gradient_steps": "grad steps", "batch_size": "batch",
             "double_dqn": "double DQN", "polyak": "Polyak", "lr_end": "lr cosine to"}
    parts = []
    for key, value in sorted(overrides.items()):
        if key == "max_iterations":
            continue
        if key == "buffer_capacity":
            value = f"2^{int(value).bit_length() - 1}"
        name = names.get(key, key)
        parts.append(name if value is True else f"{name} {value}")
    return ", ".join(parts) or "default preset"


def cell_name(config: TrainConfig) -> str:
    """A deterministic file stem for one cell, e.g. ``default_n20_har_future-k4_s0``.

    Settings that differ from the preset get a short hash suffix, so two sweeps with different
    overrides never collide, and the same configuration always maps to the same file. The
    device is not part of the name: a result is a result wherever it was computed.
    """
    her = f"{config.her}-k{config.k}" if config.her in ("future", "episode") else config.her
    stem = f"{config.preset}_n{config.n}_{config.arch}_{her}_s{config.seed}"
    extra = config_overrides(config)
    if extra:
        digest = hashlib.sha1(json.dumps(extra, sort_keys=True, default=str).encode()).hexdigest()[:8]
        stem += f"_{digest}"
    return stem


def unused_setting(field: str, arch: str, her: str) -> str | None:
    """Why setting ``field`` would have no effect on a cell of ``arch`` and ``her`` (None if it has one).

    Such a setting must not reach a cell's configuration: it would change nothing but the cell's
    name, so the same run would be stored twice.
    """
    if field == "hidden" and arch == "uvfa":
        return "the UVFA has no hidden layers (hidden widths are for mlp and har)"
    if field == "k" and her not in ("future", "episode"):
        return f"HER strategy {her!r} draws no k goals per transition (k is for future and episode)"
    return None


def grid(
    ns: Iterable[int],
    archs: Iterable[str] = ("uvfa", "har"),
    hers: Iterable[str] = ("none", "future"),
    seeds: Iterable[int] = (0, 1, 2),
    preset: str = "default",
    cheap_first: bool = True,
    **overrides,
) -> list[TrainConfig]:
    """Every combination of n x arch x HER strategy x seed, as validated configurations.

    ``hers`` may contain ``'preset'``, meaning the preset's own HER strategy (``future`` for
    ``default``, ``seed30`` for ``writeup``). With ``cheap_first`` the cells are ordered by a
    rough cost estimate (HAR before MLP before UVFA, HER before vanilla, small n first, seeds
    interleaved), so a sweep that is cut short has done as many cells as possible.

    A setting that does not apply to some cells (``hidden`` to a UVFA, ``k`` to HER ``none``;
    see :func:`unused_setting`) is given only to the cells it applies to; one that applies to
    no cell at all is a ``ValueError``.
    """
    preset_her = make_config(preset).her
    hers = [preset_her if her == "preset" else her for her in hers]
    archs = list(archs)
    for key, value in overrides.items():
        reasons = {unused_setting(key, arch, her) for arch in archs for her in hers}
        if None not in reasons:
            raise ValueError(f"{key}={value!r} has no effect on any cell of this grid: {sorted(reasons)[0]}")
    configs = []
    for arch in archs:
        for her in hers:
            used = {key: value for key, value in overrides.items() if unused_setting(key, arch, her) is None}
            for n in ns:
                for seed in seeds:
                    configs.append(make_config(preset, n=int(n), arch=arch, her=her, seed=int(seed), **used))
    if cheap_first:
        configs.sort(key=lambda c: (_ARCH_COST.get(c.arch, 4.0) * (1 if c.her != "none" else 2) * c.n, c.seed))
    unique = {cell_name(c): c for c in configs}
    return list(unique.values())


# --------------------------------------------------------------------------------------------
# Running and saving
# --------------------------------------------------------------------------------------------
def thin_curve(history: Sequence[dict], keys: Sequence[str] = ("success_rate", "mean_distance", "loss"),
               max_points: int = 100) -> dict[str, list]:
    """At most ``max_points`` evenly spaced evaluation records (first and last kept), as columns."""
    evaluated = [h for h in history if h.get("success_rate") is not None]
    if len(evaluated) > max_points:
        step = (len(evaluated) - 1) / (max_points - 1)
        evaluated = [evaluated[round(i * step)] for i in range(max_points)]
    curve: dict[str, list] = {"iteration": [h["iteration"] for h in evaluated]}
    for key in keys:
        curve[key] = [None if h.get(key) is None else round(float(h[key]), 5) for h in evaluated]
    return curve


def result_record(result, curve_points: int = 100) -> dict:
    """The compact, JSON-ready record stored for one finished :class:`TrainResult`."""
    success = [h["success_rate"] for h in result.history if h.get("success_rate") is not None]
    return {
        "name": cell_name(result.config),
        "summary": result.summary(),
        "best_success": max(success) if success else None,
        "config": result.config.to_dict(),
        "overrides": config_overrides(result.config),
        "version": __version__,
        "torch": torch.__version__,
        "device": result.device,
        "wall_seconds": round(result.wall_seconds, 3),
        "seconds_per_iteration": round(result.wall_seconds / max(result.iterations, 1), 4),
        "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "curve": thin_curve(result.history, max_points=curve_points),
    }


def write_json_atomic(path: str | os.PathLike, data: dict) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename (never half-written)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=1, sort_keys=False)
            handle.write("\n")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def cell_path(config: TrainConfig, out_dir: str | os.PathLike) -> Path:
    return Path(out_dir) / f"{cell_name(config)}.json"


class DamagedResultError(ValueError):
    """A stored result file that cannot be read back (truncated, empty, not JSON)."""

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        self.path, self.reason = Path(path), reason
        super().__init__(f"damaged result file {self.path} ({reason})")


def read_record(path: str | os.PathLike) -> dict | None:
    """The result record stored at ``path``; ``None`` for a JSON file that holds something else.

    Raises :class:`DamagedResultError` (naming the file) when the file cannot be parsed.
    """
    try:
        with open(path, encoding="utf-8") as handle:
            record = json.load(handle)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DamagedResultError(path, " ".join(str(err).split()) or "empty file") from None
    if not isinstance(record, dict) or "summary" not in record or "config" not in record:
        return None
    return record


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def set_aside(path: Path) -> Path:
    """Rename a damaged file to ``<name>.damaged`` (``.damaged.1``, ... if taken); returns the new path."""
    aside, number = path.with_name(f"{path.name}.damaged"), 0
    while aside.exists():
        number += 1
        aside = path.with_name(f"{path.name}.damaged.{number}")
    os.rename(path, aside)
    return aside


def stored_cell(config: TrainConfig, out_dir: str | os.PathLike) -> dict | None:
    """The finished record of this cell in ``out_dir``, or ``None`` if it has to run.

    A file that is not a readable record (truncated by a full disk, say) is renamed to
    ``<name>.json.damaged`` (see :func:`set_aside`) and named on stderr; the cell then runs again.
    """
    path = cell_path(config, out_dir)
    if not path.exists():
        return None
    try:
        record = read_record(path)
        reason = None if record is not None else "not a result record"
    except DamagedResultError as err:
        reason = err.reason
    if reason is None:
        return record
    aside = set_aside(path)
    _say(f"bitflip: {path} is damaged ({reason}); kept it as {aside.name} and running the cell again")
    return None


def train_record(config: TrainConfig, progress: bool = False, curve_points: int = 100) -> dict:
    """Train one cell and return its record (nothing written): the work of one cell, wherever it runs."""
    from bitflip_lib.trainer import train

    return result_record(train(config, progress=progress), curve_points)


def run_cell(config: TrainConfig, out_dir: str | os.PathLike, progress: bool = False, skip_existing: bool = True,
             curve_points: int = 100) -> tuple[dict, bool]:
    """Train one cell and save it; returns ``(record, ran)``. A finished file is loaded instead
    (a damaged one is set aside and the cell runs again: see :func:`stored_cell`)."""
    record = stored_cell(config, out_dir) if skip_existing else None
    if record is not None:
        return record, False
    record = train_record(config, progress, curve_points)
    write_json_atomic(cell_path(config, out_dir), record)
    return record, True


def run_sweep(
    configs: Sequence[TrainConfig],
    out_dir: str | os.PathLike,
    progress: bool = True,
    skip_existing: bool = True,
    on_cell: Callable[[dict, bool], None] | None = None,
) -> list[dict]:
    """Run every configuration not yet in ``out_dir``; returns all records (old and new).

    ``on_cell(record, ran)`` is called after each cell (``ran`` is False for a skipped one).
    A progress bar counts cells; each cell's own bar shows its iterations.
    """
    if not configs:
        raise ValueError("the sweep has no cells: give at least one n, arch, HER strategy and seed")
    bar = None
    if progress and progress_bars_enabled():
        from tqdm.auto import tqdm

        bar = tqdm(total=len(configs), desc="cells", unit="cell")
    records = []
    for config in configs:
        if bar is not None:
            bar.set_postfix_str(cell_name(config))
        record, ran = run_cell(config, out_dir, progress=progress, skip_existing=skip_existing)
        records.append(record)
        if on_cell is not None:
            on_cell(record, ran)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return records


def run_sweep_ray(
    configs: Sequence[TrainConfig],
    out_dir: str | os.PathLike,
    address: str | None = None,
    progress: bool = True,
    skip_existing: bool = True,
    on_cell: Callable[[dict, bool], None] | None = None,
    num_cpus: int | None = None,
    gpus_per_cell: float = 0.0,
) -> list[dict]:
    """:func:`run_sweep` with each cell a Ray task (one CPU, ``gpus_per_cell`` GPUs); same result.

    ``address`` is a running cluster's (``ray start --head`` prints it); ``None`` starts a local
    Ray with ``num_cpus`` CPUs (all by default), or uses the one this process already started.
    The files are the local runner's: the same names, skipped when finished, written atomically
    as each cell finishes. They are written here, by this process, so the cluster's machines need
    the course installed but no shared disk. An interrupted sweep (Ctrl-C, a killed process)
    loses the cells that were running; a rerun does them. A progress bar counts finished cells;
    ``on_cell(record, ran)`` is called for the stored cells first, then as cells finish.
    """
    try:
        import ray
    except ImportError:
        raise ImportError("sweeps on Ray need Ray, an optional dependency: pip install ray") from None
    if not configs:
        raise ValueError("the sweep has no cells: give at least one n, arch, HER strategy and seed")
    started = not ray.is_initialized()
    if started:
        ray.init(address=address, num_cpus=num_cpus if address is None else None, include_dashboard=False,
                 configure_logging=False, log_to_driver=False)
    bar = None
    if progress and progress_bars_enabled():
        from tqdm.auto import tqdm

        bar = tqdm(total=len(configs), desc="cells (ray)", unit="cell")
    task = ray.remote(num_cpus=1, num_gpus=gpus_per_cell)(train_record)
    records: dict[int, dict] = {}
    pending = {}
    try:
        for index, config in enumerate(configs):
            record = stored_cell(config, out_dir) if skip_existing else None
            if record is None:
                pending[task.remote(config)] = index
                continue
            records[index] = record
            if on_cell is not None:
                on_cell(record, False)
            if bar is not None:
                bar.update(1)
        while pending:
            (done,), _ = ray.wait(list(pending), num_returns=1)
            index = pending.pop(done)
            records[index] = record = ray.get(done)
            write_json_atomic(cell_path(configs[index], out_dir), record)
            if on_cell is not None:
                on_cell(record, True)
            if bar is not None:
                bar.set_postfix_str(record["name"])
                bar.update(1)
    finally:
        for ref in pending:  # interrupted: stop the cells still running (a rerun redoes them)
            ray.cancel(ref, force=True)
        if bar is not None:
            bar.close()
        if started:
            ray.shutdown()
    return [records[index] for index in range(len(configs))]


# --------------------------------------------------------------------------------------------
# Loading, aggregating, tabulating
# --------------------------------------------------------------------------------------------
ROW_FIELDS = ("name", "preset", "n", "arch", "her", "k", "seed", "method", "solved", "solved_at", "iterations",
              "max_iterations", "success_rate", "best_success", "mean_distance", "wall_seconds", "device",
              "stopped_by")


def record_row(record: dict) -> dict:
    """One flat row from a stored record."""
    s, c = record["summary"], record["config"]
    return {
        "name": record.get("name"),
        "preset": s.get("preset", c.get("preset")),
        "n": s["n"],
        "arch": s["arch"],
        "her": s["her"],
        "k": s.get("k"),
        "seed": s["seed"],
        "method": method_label(s["arch"], s["her"]),
        "solved": s.get("solved_at") is not None,
        "solved_at": s.get("solved_at"),
        "iterations": s.get("iterations"),
        "max_iterations": c.get("max_iterations"),
        "success_rate": s.get("success_rate"),
        "best_success": record.get("best_success"),
        "mean_distance": s.get("mean_distance"),
        "wall_seconds": record.get("wall_seconds", s.get("wall_seconds")),
        "device": record.get("device"),
        "stopped_by": s.get("stopped_by"),
        "overrides": record.get("overrides", {}),
        "curve": record.get("curve"),
        "config": c,
    }


def config_from_dict(values: dict, **changes) -> TrainConfig:
    """Rebuild the :class:`TrainConfig` of a stored record (``row['config']``), with fields changed.

    Fields this version of the library does not know are dropped, so older records still load.
    """
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    values = {key: value for key, value in {**values, **changes}.items() if key in known}
    if values.get("hidden") is not None:
        values["hidden"] = tuple(values["hidden"])
    return TrainConfig(**values)


def load_results(results_dir: str | os.PathLike, recursive: bool = False, **filters) -> list[dict]:
    """Rows (see :func:`record_row`) for every stored cell in ``results_dir``.

    Keyword filters keep rows whose field equals the value, or is in it for a list/tuple/set,
    e.g. ``load_results('results/default', arch='har', n=[20, 30])``. ``overrides={}`` keeps
    only cells run with the preset's own settings. A damaged file (see :func:`read_record`) is
    skipped and named on stderr; JSON files that are not result records are skipped silently.
    """
    root = Path(results_dir)
    if not root.is_dir():
        raise ValueError(f"no results directory at {str(root)!r}: run a sweep first (bitflip sweep --out {root})")
    paths = sorted(root.rglob("*.json") if recursive else root.glob("*.json"))
    rows = []
    for path in paths:
        try:
            record = read_record(path)
        except DamagedResultError as err:
            _say(f"bitflip: skipped {err.path}: damaged ({err.reason}); rerun its sweep to redo the cell")
            continue
        if record is None:
            continue
        row = record_row(record)
        keep = True
        for key, wanted in filters.items():
            value = row.get(key)
            if isinstance(wanted, (list, tuple, set, frozenset)):
                keep &= value in wanted
            else:
                keep &= value == wanted
        if keep:
            rows.append(row)
    return rows


def missing_cells(results_root: str | os.PathLike, presets: Sequence[str] = ("writeup", "default"),
                  archs: Sequence[str] = ("har", "mlp", "uvfa"), ns: Sequence[int] = TABLE_NS,
                  seeds: Sequence[int] = (0, 1, 2)) -> dict[tuple[str, str], list[tuple[int, list[int]]]]:
    """The grid runs not stored under ``results_root/<preset>``, per ``(preset, method)``.

    Each method (vanilla and the preset's own HER, per architecture) maps to ``[(n, [seeds])]``
    for every n with at least one seed missing; methods with nothing missing are left out.
    """
    root = Path(results_root)
    missing: dict[tuple[str, str], list[tuple[int, list[int]]]] = {}
    for preset in presets:
        preset_her = make_config(preset).her
        for arch in archs:
            for her in (preset_her, "none"):
                for n in ns:
                    absent = [s for s in seeds if not cell_path(make_config(preset, n=n, arch=arch, her=her, seed=s),
                                                                root / preset).exists()]
                    if absent:
                        missing.setdefault((preset, method_label(arch, her)), []).append((n, absent))
    return missing


def aggregate(rows: Iterable[dict]) -> list[dict]:
    """One entry per (preset, method, n) over seeds: runs, solved count, median iterations to solve
    (over the seeds that solved), median final and best success, mean wall time."""
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault((row["preset"], row["method"], row["arch"], row["her"], row["n"]), []).append(row)
    out = []
    for (preset, method, arch, her, n), members in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][4])):
        solved = [m["solved_at"] for m in members if m["solved"]]
        finals = [m["success_rate"] for m in members if m["success_rate"] is not None]
        bests = [m["best_success"] for m in members if m["best_success"] is not None]
        out.append({
            "preset": preset,
            "method": method,
            "arch": arch,
            "her": her,
            "n": n,
            "seeds": sorted(m["seed"] for m in members),
            "runs": len(members),
            "solved": len(solved),
            "median_solved_at": statistics.median(solved) if solved else None,
            "solved_at": sorted(solved),
            "median_final_success": statistics.median(finals) if finals else None,
            "median_best_success": statistics.median(bests) if bests else None,
            "max_iterations": max((m["max_iterations"] or 0) for m in members),
            "mean_wall_seconds": statistics.fmean(m["wall_seconds"] for m in members),
        })
    return out


def cell_verdict(entry: dict | None) -> str:
    """``'solved'`` (every seed), ``'failed'`` (no seed), ``'mixed'``, or ``'missing'``."""
    if entry is None or entry["runs"] == 0:
        return "missing"
    if entry["solved"] == entry["runs"]:
        return "solved"
    return "failed" if entry["solved"] == 0 else "mixed"


def writeup_verdict(method: str, n: int) -> str:
    """The write-up's verdict for one cell: ``'solved'``, ``'failed'`` or ``'missing'`` (not run)."""
    value = WRITEUP_TABLE1.get(method, {}).get(n)
    if value is None:
        return "missing"
    return "failed" if value == FAILS else "solved"


def _format_number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"


def format_cell(entry: dict | None) -> str:
    """``'41 (3/3)'`` = median iteration of the solving seeds (solved/run); ``'fails (0/3)'``; ``'-'`` missing."""
    if entry is None or entry["runs"] == 0:
        return "-"
    if entry["solved"] == 0:
        best = entry["median_best_success"]
        hint = f", best {best:.2f}" if best is not None and best > 0 else ""
        return f"fails (0/{entry['runs']}{hint})"
    return f"{_format_number(entry['median_solved_at'])} ({entry['solved']}/{entry['runs']})"


def format_writeup(method: str, n: int) -> str:
    value = WRITEUP_TABLE1.get(method, {}).get(n)
    return "?" if value is None else str(value)


def table_rows(entries: Iterable[dict], ns: Sequence[int] = TABLE_NS, methods: Sequence[str] | None = None,
               writeup: bool = True) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the comparison table (strings), write-up rows interleaved with ours."""
    entries = list(entries)
    by_key = {(e["method"], e["n"]): e for e in entries}
    if methods is None:
        order = ["HER-UVFA", "Vanilla-UVFA", "HER-HAR", "Vanilla-HAR", "HER-MLP", "Vanilla-MLP"]
        present = {e["method"] for e in entries}
        methods = [m for m in order if m in present or (writeup and m in WRITEUP_TABLE1)]
        methods += sorted(present - set(methods))
    header = ["method", *[f"n={n}" for n in ns]]
    rows = []
    for method in methods:
        if writeup and method in WRITEUP_TABLE1:
            rows.append([f"{method} (write-up)", *[format_writeup(method, n) for n in ns]])
        rows.append([f"{method} (this repo)" if writeup else method, *[format_cell(by_key.get((method, n))) for n in ns]])
    return header, rows


def render_table(entries: Iterable[dict], ns: Sequence[int] = TABLE_NS, fmt: str = "markdown",
                 methods: Sequence[str] | None = None, writeup: bool = True) -> str:
    """The aggregated results as a markdown (``fmt='markdown'``) or plain-text (``'text'``) table.

    Our cells read ``median iteration solved (seeds solved/seeds run)``; ``fails (0/3, best 0.12)``
    means no seed solved it (with the median best greedy success reached); ``-`` = not computed.
    The write-up's row shows its iteration count, ``fails``, or ``?`` where it did not run the cell.
    Pass the entries of one preset at a time (see :func:`aggregate`).
    """
    entries = list(entries)
    presets = {e["preset"] for e in entries}
    if len(presets) > 1:
        raise ValueError(f"entries mix presets {sorted(presets)}: filter to one preset before rendering")
    header, rows = table_rows(entries, ns, methods, writeup)
    if fmt == "markdown":
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join(lines)
    if fmt == "text":
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
        def line(cells: list[str]) -> str:
            return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))
        return "\n".join([line(header), line(["-" * w for w in widths]), *[line(r) for r in rows]])
    raise ValueError(f"unknown table format {fmt!r}: use 'markdown' or 'text'")
