"""Experiment sweeps: run a grid of configurations, keeping every finished cell on disk.

A *cell* is one training run (one configuration, one seed). :func:`run_sweep` trains the cells
one after the other and writes each, as soon as it finishes, to its own small JSON file in a
results folder, as a :class:`~bitflip_lib.lab.runs.StoredRun` (named by
:func:`bitflip_lib.lab.runs.run_name`: the configuration alone decides it). Rerunning the same sweep
therefore skips the cells already on disk: an interrupted sweep loses at most the cells that were
running (files are written to a temporary name and renamed, so a half-written file never
exists). A cell file damaged all the same (a full disk, a bad copy, another cell's run under
this cell's name: see :func:`bitflip_lib.lab.runs.record_problem`) is named on stderr, kept
aside as ``<name>.json.damaged`` and run again, never kept as the cell's result.

:func:`run_sweep_ray` runs the same cells as Ray tasks (``bitflip sweep ... --ray [ADDRESS]``),
on a local Ray or a cluster, into the same files.

This module only runs cells. Naming, writing and loading stored runs is
:mod:`bitflip_lib.lab.runs`; the write-up's Table 1 (aggregating seeds, verdicts, rendering) is
:mod:`bitflip_lib.lab.table1`.

Example::

    from bitflip_lib.lab.runs import load_runs
    from bitflip_lib.lab.table1 import render_table, table_cells

    configs = grid(ns=[5, 10], archs=["har"], hers=["none", "future"], seeds=[0, 1, 2])
    run_sweep(configs, "results/default")
    print(render_table(table_cells(load_runs("results/default"))))
"""
from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from bitflip_lib.config import TrainConfig, make_config
from bitflip_lib.her import K_STRATEGIES
from bitflip_lib.lab.runs import DamagedRunError, StoredRun, load_run, run_name, write_run
from bitflip_lib.lab.studies import make_run_config
from bitflip_lib.networks import HIDDEN_LAYER_ARCHITECTURES
from bitflip_lib.runtime.budget import NotEnoughMemory, check_memory
from bitflip_lib.runtime.device import default_device
from bitflip_lib.runtime.switches import progress_bars_enabled
from bitflip_lib.trainer import memory_estimate

__all__ = [
    "cell_path", "check_applies", "check_cells_fit", "grid", "run_cell", "run_sweep", "run_sweep_ray", "set_aside",
    "stored_cell", "train_cell", "unused_setting",
]

# Rough relative cost of one iteration, used to run cheap cells first.
_ARCH_COST = {"har": 1.0, "mlp": 2.0, "uvfa": 8.0}


# --------------------------------------------------------------------------------------------
# Building cells
# --------------------------------------------------------------------------------------------
def unused_setting(field: str, arch: str, her: str) -> str | None:
    """Why setting ``field`` would have no effect on a cell of ``arch`` and ``her`` (None if it has one).

    Such a setting must not reach a cell's configuration: it would change nothing but the cell's
    name, so the same run would be stored twice.
    """
    if field in ("hidden", "activation") and arch not in HIDDEN_LAYER_ARCHITECTURES:
        return f"the {arch} has no hidden layers ({field} is for {', '.join(HIDDEN_LAYER_ARCHITECTURES)})"
    if field == "k" and her not in K_STRATEGIES:
        return f"HER strategy {her!r} draws no k goals per transition (k is for {' and '.join(K_STRATEGIES)})"
    return None


def check_applies(settings: dict, archs: Sequence[str], hers: Sequence[str]) -> None:
    """A ``ValueError`` for a setting that has no effect on any cell of ``archs`` x ``hers``."""
    for key, value in settings.items():
        reasons = {unused_setting(key, arch, her) for arch in archs for her in hers}
        if None not in reasons:
            shown = " ".join(map(str, value)) if isinstance(value, tuple) else value
            raise ValueError(f"{key}={shown} has no effect with arch {' '.join(archs)} and her {' '.join(hers)}: "
                             f"{sorted(reasons)[0]}; leave it out")


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
    ``default``, ``writeup30`` for ``writeup``). With ``cheap_first`` the cells are ordered by a
    rough cost estimate (HAR before MLP before UVFA, HER before vanilla, small n first, seeds
    interleaved), so a sweep that is cut short has done as many cells as possible.

    A setting that does not apply to some cells (``hidden`` to a UVFA, ``k`` to HER ``none``;
    see :func:`unused_setting`) is given only to the cells it applies to; one that applies to
    no cell at all is a ``ValueError`` (:func:`check_applies`).
    """
    hers = [make_config(preset, her=her).her for her in hers]
    archs = list(archs)
    check_applies(overrides, archs, hers)
    configs = []
    for arch in archs:
        for her in hers:
            used = {key: value for key, value in overrides.items() if unused_setting(key, arch, her) is None}
            for n in ns:
                for seed in seeds:
                    configs.append(make_run_config(preset, n=int(n), arch=arch, her=her, seed=int(seed), **used))
    if cheap_first:
        configs.sort(key=lambda c: (_ARCH_COST.get(c.arch, 4.0) * (1 if c.her != "none" else 2) * c.n, c.seed))
    unique = {run_name(c): c for c in configs}
    return list(unique.values())


# --------------------------------------------------------------------------------------------
# Running and saving
# --------------------------------------------------------------------------------------------
def cell_path(config: TrainConfig, out_dir: str | os.PathLike) -> Path:
    """Where the cell of ``config`` is stored in ``out_dir``."""
    return Path(out_dir) / f"{run_name(config)}.json"


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


def stored_cell(config: TrainConfig, out_dir: str | os.PathLike) -> StoredRun | None:
    """The finished run of this cell in ``out_dir``, or ``None`` if it has to run.

    A file that is not this cell's consistent record (truncated by a full disk, another cell's
    run, a FIFO...) is renamed to ``<name>.json.damaged`` (see :func:`set_aside`) and named on
    stderr; the cell then runs again.
    """
    path = cell_path(config, out_dir)
    if not path.exists():
        return None
    try:
        return load_run(path)
    except DamagedRunError as err:
        reason = err.reason
    except ValueError:  # valid JSON, but not a stored run
        reason = "not a result record"
    aside = set_aside(path)
    _say(f"bitflip: {path} is damaged ({reason}); kept it as {aside.name} and running the cell again")
    return None


def check_cells_fit(configs: Sequence[TrainConfig], out_dir: str | os.PathLike) -> None:
    """A :class:`~bitflip_lib.runtime.budget.NotEnoughMemory` (a ``ValueError``) naming the first
    cell not yet in ``out_dir`` that needs more memory than this machine has, before any cell runs
    (a sweep that can only fail at its tenth cell should say so at once)."""
    for config in configs:
        if not cell_path(config, out_dir).exists():
            try:
                check_memory(memory_estimate(config), default_device(config.device))
            except NotEnoughMemory as error:
                raise NotEnoughMemory(f"cell {run_name(config)}: {error}") from None


def train_cell(config: TrainConfig, progress: bool = False, curve_points: int = 100) -> StoredRun:
    """Train one cell and return its stored form (nothing written): the work of one cell, wherever it runs."""
    from bitflip_lib.trainer import TrainingDiverged, train

    try:
        return StoredRun.from_result(train(config, progress=progress), curve_points)
    except TrainingDiverged as error:  # name the cell: a sweep runs many
        raise TrainingDiverged(f"cell {run_name(config)}: {error}") from None


def run_cell(config: TrainConfig, out_dir: str | os.PathLike, progress: bool = False, skip_existing: bool = True,
             curve_points: int = 100) -> tuple[StoredRun, bool]:
    """Train one cell and save it; returns ``(run, ran)``. A finished file is loaded instead
    (a damaged one is set aside and the cell runs again: see :func:`stored_cell`)."""
    run = stored_cell(config, out_dir) if skip_existing else None
    if run is not None:
        return run, False
    run = train_cell(config, progress, curve_points)
    write_run(run, out_dir)
    return run, True


def run_sweep(
    configs: Sequence[TrainConfig],
    out_dir: str | os.PathLike,
    progress: bool = True,
    skip_existing: bool = True,
    on_cell: Callable[[StoredRun, bool], None] | None = None,
) -> list[StoredRun]:
    """Run every configuration not yet in ``out_dir``; returns all runs (old and new), in order.

    ``on_cell(run, ran)`` is called after each cell (``ran`` is False for a skipped one).
    A progress bar counts cells; each cell's own bar shows its iterations. A cell to run that
    needs more memory than this machine has stops the sweep before any cell runs
    (:func:`check_cells_fit`).
    """
    if not configs:
        raise ValueError("the sweep has no cells: give at least one n, arch, HER strategy and seed")
    check_cells_fit(configs, out_dir)
    bar = None
    if progress and progress_bars_enabled():
        from tqdm.auto import tqdm

        bar = tqdm(total=len(configs), desc="cells", unit="cell")
    runs = []
    for config in configs:
        if bar is not None:
            bar.set_postfix_str(run_name(config))
        run, ran = run_cell(config, out_dir, progress=progress, skip_existing=skip_existing)
        runs.append(run)
        if on_cell is not None:
            on_cell(run, ran)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return runs


def run_sweep_ray(
    configs: Sequence[TrainConfig],
    out_dir: str | os.PathLike,
    address: str | None = None,
    progress: bool = True,
    skip_existing: bool = True,
    on_cell: Callable[[StoredRun, bool], None] | None = None,
    num_cpus: int | None = None,
    gpus_per_cell: float = 0.0,
) -> list[StoredRun]:
    """:func:`run_sweep` with each cell a Ray task (one CPU, ``gpus_per_cell`` GPUs); same result.

    ``address`` is a running cluster's (``ray start --head`` prints it); ``None`` starts a local
    Ray with ``num_cpus`` CPUs (all by default), or uses the one this process already started.
    The files are the local runner's: the same names, skipped when finished, written atomically
    as each cell finishes. They are written here, by this process, so the cluster's machines need
    the course installed but no shared disk. An interrupted sweep (Ctrl-C, a killed process)
    loses the cells that were running; a rerun does them. A progress bar counts finished cells;
    ``on_cell(run, ran)`` is called for the stored cells first, then as cells finish.
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
    task = ray.remote(num_cpus=1, num_gpus=gpus_per_cell)(train_cell)
    runs: dict[int, StoredRun] = {}
    pending = {}
    try:
        for index, config in enumerate(configs):
            run = stored_cell(config, out_dir) if skip_existing else None
            if run is None:
                pending[task.remote(config)] = index
                continue
            runs[index] = run
            if on_cell is not None:
                on_cell(run, False)
            if bar is not None:
                bar.update(1)
        while pending:
            (done,), _ = ray.wait(list(pending), num_returns=1)
            index = pending.pop(done)
            runs[index] = run = ray.get(done)
            write_run(run, out_dir)
            if on_cell is not None:
                on_cell(run, True)
            if bar is not None:
                bar.set_postfix_str(run.name)
                bar.update(1)
    finally:
        for ref in pending:  # interrupted: stop the cells still running (a rerun redoes them)
            ray.cancel(ref, force=True)
        if bar is not None:
            bar.close()
        if started:
            ray.shutdown()
    return [runs[index] for index in range(len(configs))]
