"""The write-up's Table 1: its numbers, our stored grid aggregated over seeds, verdicts, rendering.

Table 1 of the write-up (Chau Yu Hei, "Documentation of Bit Sequence mini RL project") marks,
for n = 5 ... 50 bits, which cells goal-conditioned DQN solved within 3000 iterations (batches
of 16 parallel episodes), with and without HER, with its UVFA network and its handcrafted HAR.
The counts come from its notebooks, which print "Early stopping at episode N" when the last
100 evaluations were all 1.00: N counts from 0 and marks the *end* of that streak, so the run
had trained N + 1 iterations. This library records the same moment as ``confirmed_at`` (and
the streak's first iteration as ``solved_at``), so the two are compared like with like. This
module holds

* the write-up's numbers (:data:`WRITEUP_TABLE1` as printed, :func:`writeup_iterations` as
  iterations trained) and the verdict they imply (:func:`writeup_verdict`);
* the grids this repository stores (``results/<preset>``; :data:`TABLE_PRESETS`,
  :func:`load_grid`, :func:`missing_runs`);
* :class:`Cell`, the seeds of one (method, n) aggregated, with its verdict; :func:`table_cells`;
* the comparison cell by cell (:func:`comparison`) and the table as markdown or text
  (:func:`render_table`).

Example::

    from bitflip_lib.lab.table1 import load_grid, render_table, table_cells
    print(render_table(table_cells(load_grid("results", "writeup"))))
"""
from __future__ import annotations

import dataclasses
import os
import statistics
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path

from bitflip_lib.config import make_config
from bitflip_lib.lab.runs import StoredRun, load_run, load_runs, method_label, run_name

__all__ = [
    "ARCHS", "Cell", "comparison", "FAILS", "format_cell", "format_writeup", "load_grid", "METHODS",
    "missing_run_names", "missing_runs", "render_table", "SEEDS", "table_cells", "TABLE_NS", "TABLE_PRESETS", "WRITEUP_CELLS",
    "WRITEUP_TABLE1", "writeup_iterations", "writeup_verdict",
]

FAILS = "fails"
WRITEUP_TABLE1: dict[str, dict[int, int | str]] = {
    "HER-UVFA": {5: 203, 10: 494, 15: 2590, 20: FAILS},
    "Vanilla-UVFA": {5: 209, 10: 1003, 15: FAILS, 20: FAILS},
    "HER-HAR": {20: 373, 30: 613, 40: 636, 50: 658},
    "Vanilla-HAR": {20: 483, 30: FAILS, 40: FAILS, 50: FAILS},
}
"""The write-up's counts as its notebooks print them: the episode, counted from 0, at which its
streak of 100 evaluations at 1.00 completed (``'fails'``: not solved in its 3000 iterations; a
missing n: not run). Each is one unseeded run."""

WRITEUP_CELLS: tuple[tuple[str, int], ...] = tuple((m, n) for m, row in WRITEUP_TABLE1.items() for n in row)
"""The sixteen (method, n) cells the write-up ran."""

TABLE_NS: tuple[int, ...] = (5, 10, 15, 20, 30, 40, 50)
TABLE_PRESETS: tuple[str, ...] = ("writeup", "writeup_v1", "default")
"""The presets with a stored grid: ``writeup`` (the write-up's code; its sixteen cells),
``writeup_v1`` (the course's first reading of it) and ``default`` (the full 7 x 6 grid each)."""
ARCHS: tuple[str, ...] = ("har", "uvfa", "mlp")
SEEDS: tuple[int, ...] = (0, 1, 2)
METHODS: tuple[str, ...] = ("HER-UVFA", "Vanilla-UVFA", "HER-HAR", "Vanilla-HAR", "HER-MLP", "Vanilla-MLP")
"""The rows of the table, in the order it prints them."""


def writeup_verdict(method: str, n: int) -> str:
    """The write-up's verdict for one cell: ``'solved'``, ``'failed'`` or ``'missing'`` (not run)."""
    value = WRITEUP_TABLE1.get(method, {}).get(n)
    if value is None:
        return "missing"
    return "failed" if value == FAILS else "solved"


def writeup_iterations(method: str, n: int) -> int | str | None:
    """How many iterations the write-up's run had trained when its solved streak completed: the
    printed episode + 1, the moment :attr:`Cell.confirmed_at` holds here (``'fails'``, or None
    where it did not run the cell)."""
    value = WRITEUP_TABLE1.get(method, {}).get(n)
    return value + 1 if isinstance(value, int) else value


@dataclasses.dataclass(frozen=True)
class Cell:
    """The stored runs of one method at one n under one preset (one run per seed)."""

    preset: str
    method: str
    n: int
    runs: tuple[StoredRun, ...]

    @property
    def seeds(self) -> list[int]:
        return sorted(r.seed for r in self.runs)

    @property
    def n_runs(self) -> int:
        return len(self.runs)

    @property
    def n_solved(self) -> int:
        return sum(r.solved for r in self.runs)

    @property
    def solved_at(self) -> list[int]:
        """The first iterations of the solving seeds' streaks, smallest first."""
        return sorted(r.solved_at for r in self.runs if r.solved)

    @property
    def confirmed_at(self) -> list[int]:
        """The iterations at which the solving seeds' streaks completed (where an early-stopping
        run stops), smallest first: the write-up's moment."""
        return sorted(r.confirmed_at for r in self.runs if r.solved)

    @property
    def median_solved_at(self) -> float | None:
        """The median first iteration of the streak over the seeds that solved (``None`` if none did)."""
        return statistics.median(self.solved_at) if self.solved_at else None

    @property
    def median_confirmed_at(self) -> float | None:
        """The median iteration of the streak's completion over the seeds that solved (``None`` if none did)."""
        return statistics.median(self.confirmed_at) if self.confirmed_at else None

    @property
    def median_best_success(self) -> float | None:
        bests = [r.best_success for r in self.runs if r.best_success is not None]
        return statistics.median(bests) if bests else None

    @property
    def verdict(self) -> str:
        """``'solved'`` (every seed), ``'failed'`` (no seed) or ``'mixed'``."""
        if self.n_solved == self.n_runs:
            return "solved"
        return "failed" if self.n_solved == 0 else "mixed"

    def to_dict(self) -> dict:
        """The cell as JSON-ready numbers (what ``bitflip table --json`` prints): its seeds, runs and
        solved count, the iterations the streaks began and completed at (and their medians), the
        median final and best success, the largest iteration budget and the mean wall time."""
        finals = [r.success_rate for r in self.runs if r.success_rate is not None]
        return {"preset": self.preset, "method": self.method, "arch": self.runs[0].arch, "her": self.runs[0].her,
                "n": self.n, "seeds": self.seeds, "runs": self.n_runs, "solved": self.n_solved,
                "median_solved_at": self.median_solved_at, "solved_at": self.solved_at,
                "median_confirmed_at": self.median_confirmed_at, "confirmed_at": self.confirmed_at,
                "median_final_success": statistics.median(finals) if finals else None,
                "median_best_success": self.median_best_success,
                "max_iterations": max((r.max_iterations or 0) for r in self.runs),
                "mean_wall_seconds": statistics.fmean(r.wall_seconds for r in self.runs)}

    def run(self, seed: int) -> StoredRun:
        """The run of one seed."""
        for r in self.runs:
            if r.seed == seed:
                return r
        raise KeyError(f"{self.method} n = {self.n} ({self.preset}) has no run with seed {seed}: seeds {self.seeds}")


def load_grid(results_root: str | os.PathLike, preset: str) -> list[StoredRun]:
    """The stored grid runs of one preset (``results_root/<preset>``, the preset's own settings only)."""
    return load_runs(Path(results_root) / preset, overrides={})


def table_cells(runs: Iterable[StoredRun]) -> dict[tuple[str, int], Cell]:
    """The runs of one preset grouped over seeds: ``{(method, n): Cell}``, sorted by method and n."""
    groups: dict[tuple[str, int], list[StoredRun]] = {}
    presets = set()
    for run in runs:
        presets.add(run.preset)
        groups.setdefault((run.method, run.n), []).append(run)
    if len(presets) > 1:
        raise ValueError(f"the runs mix presets {sorted(presets)}: make the cells of one preset at a time")
    preset = presets.pop() if presets else ""
    return {key: Cell(preset, key[0], key[1], tuple(sorted(members, key=lambda r: r.seed)))
            for key, members in sorted(groups.items())}


def comparison(cells: Mapping[tuple[str, int], Cell]) -> list[dict]:
    """Every cell the write-up has a method for, with both verdicts: ``method``, ``n``,
    ``write-up``, ``ours`` (``'missing'`` when not stored), ``agree`` (``None`` if either is
    missing) and, where both solved, ``ratio``: our median iterations at the streak's
    completion over the write-up's iterations at that moment (1.0: as fast; 2.0: twice as long)."""
    out = []
    for method in WRITEUP_TABLE1:
        for n in TABLE_NS:
            cell = cells.get((method, n))
            theirs, ours = writeup_verdict(method, n), cell.verdict if cell else "missing"
            ratio = None
            if theirs == "solved" and cell is not None and cell.median_confirmed_at is not None:
                ratio = cell.median_confirmed_at / writeup_iterations(method, n)
            out.append({"method": method, "n": n, "write-up": theirs, "ours": ours,
                        "agree": None if "missing" in (theirs, ours) else theirs == ours, "ratio": ratio})
    return out


def _format_number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"


def format_cell(cell: Cell | None) -> str:
    """``'412 (3/3)'``: the median iteration at which the solving seeds' streaks completed
    (solved/run); ``'fails (0/3, best 0.12)'`` with the median best success when it is above 0;
    ``'-'`` when not stored."""
    if cell is None or cell.n_runs == 0:
        return "-"
    if cell.n_solved == 0:
        best = cell.median_best_success
        hint = f", best {best:.2f}" if best is not None and best > 0 else ""
        return f"fails (0/{cell.n_runs}{hint})"
    return f"{_format_number(cell.median_confirmed_at)} ({cell.n_solved}/{cell.n_runs})"


def format_writeup(method: str, n: int) -> str:
    """The write-up's cell as iterations trained (its printed episode + 1), ``fails``, or ``?``
    where it did not run it."""
    value = writeup_iterations(method, n)
    return "?" if value is None else str(value)


def render_table(cells: Mapping[tuple[str, int], Cell], ns: Sequence[int] = TABLE_NS, fmt: str = "markdown",
                 methods: Sequence[str] | None = None, writeup: bool = True) -> str:
    """The cells of one preset as a ``'markdown'`` or ``'text'`` table, the write-up's row above ours.

    Every number is the same moment on both rows: the iterations trained when the solved streak
    completed (the write-up's printed episode + 1; :attr:`Cell.median_confirmed_at` here).
    """
    if fmt not in ("markdown", "text"):
        raise ValueError(f"unknown table format {fmt!r}: use 'markdown' or 'text'")
    present = {method for method, _ in cells}
    if methods is None:
        methods = [m for m in METHODS if m in present or (writeup and m in WRITEUP_TABLE1)]
        methods += sorted(present - set(methods))
    header = ["method", *[f"n={n}" for n in ns]]
    rows = []
    for method in methods:
        if writeup and method in WRITEUP_TABLE1:
            rows.append([f"{method} (write-up)", *[format_writeup(method, n) for n in ns]])
        rows.append([f"{method} (this repo)" if writeup else method, *[format_cell(cells.get((method, n))) for n in ns]])
    if fmt == "markdown":
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
        return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(texts: list[str]) -> str:
        return "  ".join(t.ljust(w) if i == 0 else t.rjust(w) for i, (t, w) in enumerate(zip(texts, widths)))
    return "\n".join([line(header), line(["-" * w for w in widths]), *[line(r) for r in rows]])


def _grid_cells(preset: str, archs: Sequence[str], ns: Sequence[int]) -> list[tuple[str, str, int]]:
    """``(arch, her, n)`` of the cells a preset's stored grid holds among ``archs`` x ``ns``: the
    write-up's sixteen for ``writeup``; every arch x (preset HER, none) x n for the others."""
    preset_her = make_config(preset).her
    cells = [(arch, her, n) for arch in archs for her in (preset_her, "none") for n in ns]
    if preset == "writeup":  # the cells whose method label the write-up's table has
        return [(arch, her, n) for arch, her, n in cells if (method_label(arch, her), n) in WRITEUP_CELLS]
    return cells


def _absent_runs(results_root: str | os.PathLike, presets: Sequence[str], archs: Sequence[str], ns: Sequence[int],
                 seeds: Sequence[int]) -> Iterator[tuple[str, str, str, int, dict[int, str]]]:
    """``(preset, arch, her, n, {absent seed: its run name})`` of every grid cell with runs not
    stored (the rule of :func:`missing_runs`)."""
    root = Path(results_root)
    for preset in presets:
        for arch, her, n in _grid_cells(preset, archs, ns):
            name = {s: run_name(make_config(preset, n=n, arch=arch, her=her, seed=s)) for s in seeds}
            needed = list(seeds)
            if preset == "writeup" and (root / preset / f"{name[seeds[0]]}.json").is_file():
                first = load_run(root / preset / f"{name[seeds[0]]}.json")
                if not first.solved and first.iterations == first.max_iterations:
                    needed = [seeds[0]]
            absent = {s: name[s] for s in needed if not (root / preset / f"{name[s]}.json").exists()}
            if absent:
                yield preset, arch, her, n, absent


def missing_runs(results_root: str | os.PathLike, presets: Sequence[str] = TABLE_PRESETS, archs: Sequence[str] = ARCHS,
                 ns: Sequence[int] = TABLE_NS, seeds: Sequence[int] = SEEDS) -> dict[tuple[str, str], list[tuple[int, list[int]]]]:
    """The grid runs not stored under ``results_root/<preset>``: ``{(preset, method): [(n, [seeds])]}``.

    A cell needs every seed, except in the ``writeup`` grid, where a cell whose seed 0 failed
    after its full budget is complete with that one seed (three seeds for the cells that solve,
    at least one full-budget seed for those that fail).
    """
    missing: dict[tuple[str, str], list[tuple[int, list[int]]]] = {}
    for preset, arch, her, n, absent in _absent_runs(results_root, presets, archs, ns, seeds):
        missing.setdefault((preset, method_label(arch, her)), []).append((n, list(absent)))
    return missing


def missing_run_names(results_root: str | os.PathLike, presets: Sequence[str] = TABLE_PRESETS) -> set[str]:
    """The names (as :func:`~bitflip_lib.lab.runs.run_name` gives them) of the runs
    :func:`missing_runs` lists."""
    return {name for *_, absent in _absent_runs(results_root, presets, ARCHS, TABLE_NS, SEEDS)
            for name in absent.values()}
