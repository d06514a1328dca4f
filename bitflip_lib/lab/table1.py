"""The write-up's Table 1: its numbers, our stored grid aggregated over seeds, verdicts, rendering.

Table 1 of the write-up (Chau, seeds/000) gives, for n = 5 ... 50 bits, the number of
iterations (batches of 16 parallel episodes) goal-conditioned DQN needed to solve bit flipping,
with and without HER, with its UVFA network and its handcrafted HAR. This module holds

* its numbers (:data:`WRITEUP_TABLE1`, :data:`TABLE_NS`) and the verdict they imply
  (:func:`writeup_verdict`);
* the grid this repository stores (``results/<preset>``, 3 seeds per cell; :func:`load_grid`,
  :func:`missing_runs`);
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
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from bitflip_lib.config import make_config
from bitflip_lib.lab.runs import StoredRun, load_runs, method_label, run_name

__all__ = [
    "ARCHS", "Cell", "comparison", "FAILS", "format_cell", "format_writeup", "load_grid",
    "METHODS", "missing_runs", "PRESETS", "render_table", "SEEDS", "table_cells", "TABLE_NS",
    "WRITEUP_TABLE1", "writeup_verdict",
]

FAILS = "fails"
WRITEUP_TABLE1: dict[str, dict[int, int | str]] = {
    "HER-UVFA": {5: 203, 10: 494, 15: 2590, 20: FAILS},
    "Vanilla-UVFA": {5: 209, 10: 1003, 15: FAILS, 20: FAILS},
    "HER-HAR": {20: 373, 30: 613, 40: 636, 50: 658},
    "Vanilla-HAR": {20: 483, 30: FAILS, 40: FAILS, 50: FAILS},
}
"""The write-up's iterations to solve (``'fails'``: not solved in its budget; a missing n: not run)."""

TABLE_NS: tuple[int, ...] = (5, 10, 15, 20, 30, 40, 50)
PRESETS: tuple[str, ...] = ("writeup", "default")
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
        """The iterations at which the solving seeds were solved, smallest first."""
        return sorted(r.solved_at for r in self.runs if r.solved)

    @property
    def median_solved_at(self) -> float | None:
        """The median over the seeds that solved it (``None`` if none did)."""
        return statistics.median(self.solved_at) if self.solved_at else None

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
        solved count, the iterations solved at (and their median), the median final and best success,
        the largest iteration budget and the mean wall time."""
        finals = [r.success_rate for r in self.runs if r.success_rate is not None]
        return {"preset": self.preset, "method": self.method, "arch": self.runs[0].arch, "her": self.runs[0].her,
                "n": self.n, "seeds": self.seeds, "runs": self.n_runs, "solved": self.n_solved,
                "median_solved_at": self.median_solved_at, "solved_at": self.solved_at,
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
    ``write-up``, ``ours`` (``'missing'`` when not stored) and ``agree`` (``None`` if either is missing)."""
    out = []
    for method in WRITEUP_TABLE1:
        for n in TABLE_NS:
            cell = cells.get((method, n))
            theirs, ours = writeup_verdict(method, n), cell.verdict if cell else "missing"
            out.append({"method": method, "n": n, "write-up": theirs, "ours": ours,
                        "agree": None if "missing" in (theirs, ours) else theirs == ours})
    return out


def _format_number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"


def format_cell(cell: Cell | None) -> str:
    """``'41 (3/3)'``: median iteration of the solving seeds (solved/run); ``'fails (0/3, best 0.12)'``
    with the median best success when it is above 0; ``'-'`` when not stored."""
    if cell is None or cell.n_runs == 0:
        return "-"
    if cell.n_solved == 0:
        best = cell.median_best_success
        hint = f", best {best:.2f}" if best is not None and best > 0 else ""
        return f"fails (0/{cell.n_runs}{hint})"
    return f"{_format_number(cell.median_solved_at)} ({cell.n_solved}/{cell.n_runs})"


def format_writeup(method: str, n: int) -> str:
    """The write-up's cell: its count, ``fails``, or ``?`` where it did not run it."""
    value = WRITEUP_TABLE1.get(method, {}).get(n)
    return "?" if value is None else str(value)


def render_table(cells: Mapping[tuple[str, int], Cell], ns: Sequence[int] = TABLE_NS, fmt: str = "markdown",
                 methods: Sequence[str] | None = None, writeup: bool = True) -> str:
    """The cells of one preset as a ``'markdown'`` or ``'text'`` table, the write-up's row above ours."""
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


def missing_runs(results_root: str | os.PathLike, presets: Sequence[str] = PRESETS, archs: Sequence[str] = ARCHS,
                 ns: Sequence[int] = TABLE_NS, seeds: Sequence[int] = SEEDS) -> dict[tuple[str, str], list[tuple[int, list[int]]]]:
    """The grid runs not stored under ``results_root/<preset>``: ``{(preset, method): [(n, [seeds])]}``
    for every n with a seed missing (vanilla and the preset's own HER, per architecture)."""
    root = Path(results_root)
    missing: dict[tuple[str, str], list[tuple[int, list[int]]]] = {}
    for preset in presets:
        preset_her = make_config(preset).her
        for arch in archs:
            for her in (preset_her, "none"):
                for n in ns:
                    absent = [s for s in seeds if not (root / preset /
                              f"{run_name(make_config(preset, n=n, arch=arch, her=her, seed=s))}.json").exists()]
                    if absent:
                        missing.setdefault((preset, method_label(arch, her)), []).append((n, absent))
    return missing
