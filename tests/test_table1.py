"""bitflip_lib.lab.table1: the write-up's numbers, cells over seeds, verdicts and the rendered table."""
from __future__ import annotations

from pathlib import Path

import pytest

from bitflip_lib.config import make_config
from bitflip_lib.lab.runs import StoredRun, write_run
from bitflip_lib.lab.table1 import (
    TABLE_NS,
    WRITEUP_TABLE1,
    comparison,
    format_cell,
    load_grid,
    missing_runs,
    render_table,
    table_cells,
    writeup_iterations,
    writeup_verdict,
)
from bitflip_lib.trainer import TrainResult

RESULTS = Path(__file__).resolve().parent.parent / "results"


def run(arch: str, her: str, n: int, seed: int, solved_at: int | None, best: float = 1.0, preset: str = "default",
        window: int = 5) -> StoredRun:
    """A stored run whose streak began at ``solved_at`` and completed ``window - 1`` iterations later."""
    config = make_config(preset, n=n, arch=arch, her=her, seed=seed)
    confirmed = None if solved_at is None else solved_at + window - 1
    result = TrainResult(config=config, history=[{"iteration": 1, "success_rate": best}], solved_at=solved_at,
                         confirmed_at=confirmed, iterations=confirmed or 3000)
    return StoredRun.from_result(result)


def test_cells_aggregate_seeds_and_give_verdicts():
    runs = [run("har", "future", 20, s, at) for s, at in enumerate([10, 30, 20])]
    runs += [run("uvfa", "none", 15, s, None, best=0.1) for s in range(3)]
    runs += [run("uvfa", "future", 15, 0, 100), run("uvfa", "future", 15, 1, None, best=0.5)]
    cells = table_cells(runs)
    har = cells["HER-HAR", 20]
    assert (har.n_runs, har.n_solved, har.median_solved_at, har.solved_at) == (3, 3, 20, [10, 20, 30])
    assert (har.median_confirmed_at, har.confirmed_at) == (24, [14, 24, 34])
    # The table shows when the streak completed: the moment the write-up's counts report.
    assert har.verdict == "solved" and format_cell(har) == "24 (3/3)" and har.run(1).solved_at == 30
    failed = cells["Vanilla-UVFA", 15]
    assert failed.verdict == "failed" and format_cell(failed) == "fails (0/3, best 0.10)"
    assert cells["HER-UVFA", 15].verdict == "mixed" and format_cell(cells["HER-UVFA", 15]) == "104 (1/2)"
    assert format_cell(None) == "-"
    with pytest.raises(KeyError, match="no run with seed 7"):
        har.run(7)
    with pytest.raises(ValueError, match="mix presets"):
        table_cells(runs + [run("har", "none", 5, 0, 3, preset="writeup")])


def test_the_write_up_s_verdicts_and_the_comparison():
    assert WRITEUP_TABLE1["HER-HAR"][20] == 373 and writeup_verdict("HER-HAR", 20) == "solved"
    # Printed "Early stopping at episode 373", counted from 0: 374 iterations trained.
    assert writeup_iterations("HER-HAR", 20) == 374 and writeup_iterations("Vanilla-HAR", 30) == "fails"
    assert writeup_iterations("HER-HAR", 5) is None
    assert writeup_verdict("Vanilla-HAR", 30) == "failed" and writeup_verdict("HER-HAR", 5) == "missing"
    rows = comparison(table_cells([run("har", "none", 30, 0, 12), run("har", "future", 20, 0, None, best=0.5)]))
    by_cell = {(r["method"], r["n"]): r for r in rows}
    assert len(rows) == len(WRITEUP_TABLE1) * len(TABLE_NS)
    assert by_cell["Vanilla-HAR", 30] == {"method": "Vanilla-HAR", "n": 30, "write-up": "failed", "ours": "solved",
                                          "agree": False, "ratio": None}
    assert by_cell["HER-HAR", 20]["agree"] is False and by_cell["HER-HAR", 30]["agree"] is None
    solved = comparison(table_cells([run("har", "future", 20, 0, 275, window=100)]))
    assert next(r for r in solved if r["n"] == 20 and r["method"] == "HER-HAR")["ratio"] == 1.0  # 374 and 374


def test_render_table_side_by_side():
    cells = table_cells([run("har", "future", 20, 0, 12), run("uvfa", "none", 15, 0, None, best=0.0)])
    lines = render_table(cells).splitlines()
    assert lines[0] == "| method | n=5 | n=10 | n=15 | n=20 | n=30 | n=40 | n=50 |"
    assert "| HER-HAR (write-up) | ? | ? | ? | 374 | 614 | 637 | 659 |" in lines
    assert "| HER-HAR (this repo) | - | - | - | 16 (1/1) | - | - | - |" in lines
    assert "| Vanilla-UVFA (this repo) | - | - | fails (0/1) | - | - | - | - |" in lines
    text = render_table(cells, fmt="text", ns=(15, 20))
    assert "Vanilla-UVFA (write-up)" in text and "16 (1/1)" in text and "|" not in text
    with pytest.raises(ValueError, match="unknown table format"):
        render_table(cells, fmt="html")


def test_a_cell_as_json_numbers():
    runs = [run("uvfa", "future", 15, 0, 100), run("uvfa", "future", 15, 1, None, best=0.5)]
    assert table_cells(runs)["HER-UVFA", 15].to_dict() == {
        "preset": "default", "method": "HER-UVFA", "arch": "uvfa", "her": "future", "n": 15, "seeds": [0, 1],
        "runs": 2, "solved": 1, "median_solved_at": 100, "solved_at": [100], "median_confirmed_at": 104,
        "confirmed_at": [104], "median_final_success": 0.75,
        "median_best_success": 0.75, "max_iterations": 3000, "mean_wall_seconds": 0.0}


def test_bitflip_table_prints_this_module_s_table_of_the_stored_grid(capsys):
    from bitflip_lib.cli import main

    for preset in ("writeup", "writeup_v1", "default"):
        for fmt in ("markdown", "text"):
            assert main(["table", "--results", str(RESULTS / preset), "--format", fmt]) == 0
            expected = render_table(table_cells(load_grid(RESULTS, preset)), fmt=fmt)
            assert capsys.readouterr().out == f"preset {preset}:\n{expected}\n\n"


def test_missing_runs_lists_what_is_not_stored(tmp_path):
    def missing():
        return missing_runs(tmp_path, presets=["default"], archs=["har"], ns=[3, 4], seeds=[0, 1])

    assert missing() == {("default", "HER-HAR"): [(3, [0, 1]), (4, [0, 1])],
                         ("default", "Vanilla-HAR"): [(3, [0, 1]), (4, [0, 1])]}
    write_run(run("har", "future", 3, 1, 5), tmp_path / "default")
    write_run(StoredRun.from_result(TrainResult(config=make_config(n=3, arch="har", seed=0, polyak=0.2),
                                                history=[], iterations=1)), tmp_path / "default")
    assert missing()[("default", "HER-HAR")] == [(3, [0]), (4, [0, 1])]  # settings off the preset do not count


def test_a_failing_writeup_cell_is_complete_with_one_full_budget_seed(tmp_path):
    def missing():
        return missing_runs(tmp_path, presets=["writeup"], archs=["uvfa"], ns=[20])

    assert missing() == {("writeup", "HER-UVFA"): [(20, [0, 1, 2])], ("writeup", "Vanilla-UVFA"): [(20, [0, 1, 2])]}
    short = make_config("writeup", n=20, arch="uvfa", her="none", seed=0)
    write_run(StoredRun.from_result(TrainResult(config=short, history=[], iterations=2999)), tmp_path / "writeup")
    assert missing()[("writeup", "Vanilla-UVFA")] == [(20, [1, 2])]  # stopped short of its budget: not a failure
    write_run(StoredRun.from_result(TrainResult(config=short, history=[], iterations=3000)), tmp_path / "writeup")
    assert ("writeup", "Vanilla-UVFA") not in missing()  # failed after all 3000 iterations: one seed is enough
    write_run(run("uvfa", "writeup30", 20, 0, 500, preset="writeup", window=100), tmp_path / "writeup")
    assert missing()[("writeup", "HER-UVFA")] == [(20, [1, 2])]  # a cell that solves needs three seeds


def test_missing_run_names_name_exactly_the_runs_missing_runs_lists(tmp_path):
    from bitflip_lib.lab.table1 import missing_run_names

    names = missing_run_names(tmp_path)  # an empty results folder: every grid run is missing
    assert len(names) == sum(len(seeds) for found in missing_runs(tmp_path).values() for _, seeds in found)
    assert "default_n20_har_future-k4_s0" in names and "writeup_n20_har_writeup30_s2" in names
    assert not missing_run_names(Path(__file__).resolve().parent.parent / "results")  # every run is stored
