"""Regenerate the tables in ``README.md`` and ``results/README.md`` from the stored runs.

The READMEs hold blocks between ``<!-- generated: NAME -->`` and ``<!-- end generated -->``
lines; this script rewrites every such block from the JSON files under ``results/`` and leaves
the prose around them alone. Run it after storing new runs::

    python results/make_readme.py          # rewrite the blocks
    python results/make_readme.py --check  # exit 1 (listing the stale blocks) if out of date

``tests/test_results_readme.py`` runs the check, so a table can never silently disagree with
the stored files.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

from bitflip_lib.sweep import (  # noqa: E402
    TABLE_NS,
    WRITEUP_TABLE1,
    aggregate,
    describe_overrides,
    format_cell,
    format_writeup,
    load_results,
    missing_cells,
    render_table,
)

RESULTS = ROOT / "results"
PRESETS = ("writeup", "default")
ARCHS = ("har", "uvfa", "mlp")
SEEDS = (0, 1, 2)
BLOCK = re.compile(r"(<!-- generated: (?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- end generated -->)", re.S)


def grid_runs(preset: str) -> list[dict]:
    """The stored grid runs of one preset (runs with settings off the preset are excluded)."""
    return load_results(RESULTS / preset, overrides={})


def preset_table(preset: str) -> str:
    runs = grid_runs(preset)
    return f"{len(runs)} runs stored.\n\n" + render_table(aggregate(runs))


def missing_runs() -> tuple[int, list[str]]:
    """How many grid runs are not stored, and one line per method listing them."""
    missing = missing_cells(RESULTS, PRESETS, ARCHS, TABLE_NS, SEEDS)
    lines = []
    for (preset, method), cells in missing.items():
        text = [str(n) if len(absent) == len(SEEDS) else
                f"{n} (seed{'s' if len(absent) > 1 else ''} {', '.join(map(str, absent))})" for n, absent in cells]
        lines.append(f"- `{preset}` {method}: n = {', '.join(text)}")
    return sum(len(absent) for cells in missing.values() for _, absent in cells), lines


def missing_block() -> str:
    total, lines = missing_runs()
    grid = len(TABLE_NS) * 2 * len(ARCHS) * len(SEEDS) * len(PRESETS)
    if not lines:
        return f"All {grid} grid runs are stored.\n"
    return f"{total} of {grid} grid runs are not stored yet:\n\n" + "\n".join(lines) + "\n"


def mlp_ablation_block() -> str:
    """One row per stored HER-MLP screening run at n = 30, 50 and 100 (seed 0), best first."""
    out = ["| n | changed from the default preset | budget | solved at | best success | final success | wall time |",
           "|---|---|---|---|---|---|---|"]
    for n in (30, 50, 100):
        if not (RESULTS / "beyond" / f"mlp_n{n}").is_dir():
            continue
        runs = load_results(RESULTS / "beyond" / f"mlp_n{n}")
        runs += load_results(RESULTS / "default", overrides={}, arch="mlp", her="future", n=n, seed=0)
        for run in sorted(runs, key=lambda r: (r["solved_at"] or 10**9, -(r["best_success"] or 0))):
            out.append(f"| {n} | {describe_overrides(run['overrides'])} | {run['max_iterations']} | {run['solved_at'] or 'not solved'} | "
                       f"{run['best_success']:.2f} | {run['success_rate']:.2f} | {run['wall_seconds']:.0f} s |")
    return "\n".join(out) + "\n"


def headline_block() -> str:
    """The main README's table: the write-up's row beside both presets, per method."""
    cells = {p: {(e["method"], e["n"]): e for e in aggregate(grid_runs(p))} for p in PRESETS}
    out = ["| method | " + " | ".join(f"n={n}" for n in TABLE_NS) + " |", "|---|" + "---|" * len(TABLE_NS)]
    for method in ("HER-HAR", "Vanilla-HAR", "HER-UVFA", "Vanilla-UVFA", "HER-MLP", "Vanilla-MLP"):
        if method in WRITEUP_TABLE1:
            out.append(f"| {method}, write-up | " + " | ".join(format_writeup(method, n) for n in TABLE_NS) + " |")
        for preset, label in (("writeup", "write-up settings here"), ("default", "default settings here")):
            row = [cells[preset].get((method, n)) for n in TABLE_NS]
            if any(row):
                name = method + (" (HER paper's network)" if method == "HER-MLP" and preset == "default" else "")
                out.append(f"| {name}, {label} | " + " | ".join(format_cell(c) for c in row) + " |")
    return "\n".join(out) + "\n"


def wall_time_block() -> str:
    """Stored wall time per preset and architecture: all seeds, and seed 0 alone (one grid pass)."""
    out = ["| preset | architecture | runs stored (of 42) | wall time, all stored seeds | seed 0: runs (of 14) | seed 0 wall time |",
           "|---|---|---|---|---|---|"]
    every = []
    for preset in PRESETS:
        runs = grid_runs(preset)
        every += runs
        for arch in ARCHS:
            mine = [r for r in runs if r["arch"] == arch]
            first = [r for r in mine if r["seed"] == 0]
            out.append(f"| `{preset}` | {arch.upper()} | {len(mine)} | "
                       f"{sum(r['wall_seconds'] for r in mine) / 60:.1f} min | {len(first)} | "
                       f"{sum(r['wall_seconds'] for r in first) / 60:.1f} min |")
    total = sum(r["wall_seconds"] for r in every) / 3600
    return "\n".join(out) + f"\n\nAll {len(every)} stored grid runs together: {total:.1f} hours of run time.\n"


def bench_block() -> str:
    return "```\n" + (RESULTS / "bench" / "bench_cpu_quiet.txt").read_text().rstrip() + "\n```\n"


GENERATORS = {
    "writeup-table": lambda: preset_table("writeup") + "\n",
    "default-table": lambda: preset_table("default") + "\n",
    "missing": missing_block,
    "mlp-ablation": mlp_ablation_block,
    "headline-table": headline_block,
    "bench": bench_block,
    "wall-time": wall_time_block,
}
FILES = (ROOT / "README.md", RESULTS / "README.md")


def regenerate(text: str) -> str:
    """``text`` with every generated block rewritten; unknown block names are an error."""
    def fill(match: re.Match) -> str:
        name = match["name"]
        if name not in GENERATORS:
            raise ValueError(f"unknown generated block {name!r}: known are {', '.join(GENERATORS)}")
        return match.group(1) + GENERATORS[name]() + match.group(4)
    return BLOCK.sub(fill, text)


def stale_blocks() -> list[str]:
    """``file: block`` for every generated block whose text differs from what the runs give."""
    stale = []
    for path in FILES:
        text = path.read_text()
        for match in BLOCK.finditer(text):
            if match.group(1) + GENERATORS[match["name"]]() + match.group(4) != match.group(0):
                stale.append(f"{path.relative_to(ROOT)}: {match['name']}")
    return stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only report stale blocks (exit 1 if any)")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_blocks()
        for entry in stale:
            print(f"stale: {entry}  (run: python results/make_readme.py)")
        return 1 if stale else 0
    for path in FILES:
        text = path.read_text()
        new = regenerate(text)
        if new != text:
            path.write_text(new)
            print(f"rewrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
