"""Stored runs: named, written and loaded by bitflip_lib.runs, and every file in results/ follows the scheme."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from bitflip_lib import sweep
from bitflip_lib.config import make_config
from bitflip_lib.runs import (RECORD_KEYS, StoredRun, best_success, describe_overrides, load_run, load_runs, run_name,
                              write_run)
from bitflip_lib.trainer import TrainResult, train

RESULTS = Path(__file__).resolve().parent.parent / "results"
TINY = {"max_iterations": 3, "num_eval_agents": 16, "gradient_steps": 2, "batch_size": 16, "device": "cpu"}


def fake_result(solved_at: int | None = 4, iterations: int = 6, **config) -> TrainResult:
    history = [{"iteration": i, "success_rate": [0.0, 0.2, 0.6, 1.0, 0.9, 1.0][i - 1], "mean_distance": 6.0 - i,
                "loss": 0.1} for i in range(1, iterations + 1)]
    return TrainResult(config=make_config(n=8, arch="har", **config), history=history, solved_at=solved_at,
                       iterations=iterations)


def test_a_run_written_by_a_sweep_is_loaded_by_runs(tmp_path):
    configs = sweep.grid([3], archs=["har"], hers=["future", "none"], seeds=[0], **TINY)
    records = sweep.run_sweep(configs, tmp_path, progress=False)
    loaded = load_runs(tmp_path)
    assert [r.name for r in loaded] == sorted(sweep.cell_name(c) for c in configs)
    for record in records:
        run = load_run(tmp_path / f"{record['name']}.json")
        assert run.to_record() == record  # every key, read back exactly as sweep wrote it
        assert (run.solved_at, run.iterations, run.best_success) == (record["summary"]["solved_at"],
                                                                    record["summary"]["iterations"], record["best_success"])
        assert run.train_config(device="cpu") == make_config(**{k: v for k, v in record["config"].items() if k != "hidden"})


def test_runs_names_and_writes_what_sweep_does(tmp_path):
    config = make_config(n=3, arch="har", seed=1, **TINY)
    for c in (config, config.replace(polyak=0.1), make_config("writeup", n=5, arch="uvfa")):
        assert run_name(c) == sweep.cell_name(c)
    result = train(config, progress=False)
    ours, theirs = StoredRun.from_result(result).to_record(), sweep.result_record(result)
    assert list(ours) == list(theirs) == list(RECORD_KEYS)
    assert {k: v for k, v in ours.items() if k != "finished_utc"} == {k: v for k, v in theirs.items() if k != "finished_utc"}
    path = write_run(StoredRun.from_result(result), tmp_path)
    assert path.name == f"{sweep.cell_name(config)}.json" and not list(tmp_path.glob(".*"))  # no temporary file left
    assert sweep.load_results(tmp_path)[0]["solved_at"] == result.solved_at  # and sweep reads what runs writes


def test_a_stored_run_answers_questions_about_its_curve():
    run = StoredRun.from_result(fake_result(), evaluated_at={"50": {"success_rate": 1.0}})
    assert run.method == "HER-HAR" and run.n == 8 and run.verdict == "solved" and run.best_success == 1.0
    assert run.first_at(0.5) == 3 and run.first_at(1.0) == 4 and run.first_at(1.5) is None
    assert run.first_at(3.0, key="mean_distance") == 1
    assert run.success_by(5) == 0.9 and run.success_by(100) == 1.0
    with pytest.raises(ValueError, match="no evaluation at or before iteration 0"):
        run.success_by(0)
    assert run.evaluated_at == {50: {"success_rate": 1.0}} and run.to_record()["evaluated_at"]
    assert run.curve("no_such_metric") == ([], [])
    failed = StoredRun.from_result(fake_result(solved_at=None))
    assert failed.verdict == "failed" and not failed.solved
    assert best_success([None, 0.3, 0.1]) == 0.3 and best_success([None]) is None


def test_loading_bad_input_gives_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="no results folder"):
        load_runs(tmp_path / "absent")
    with pytest.raises(ValueError, match="no stored run at"):
        load_run(tmp_path / "absent.json")
    write_run(StoredRun.from_result(fake_result()), tmp_path)
    (tmp_path / "notes.json").write_text(json.dumps({"what": "not a run"}))
    assert len(load_runs(tmp_path)) == 1  # JSON that is not a run is skipped
    with pytest.raises(ValueError, match="not a stored run"):
        load_run(tmp_path / "notes.json")
    with pytest.raises(ValueError, match="unknown filter colour"):
        load_runs(tmp_path, colour="red")
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(ValueError, match="broken.json is not valid JSON"):
        load_runs(tmp_path)


def test_filters_keep_matching_runs(tmp_path):
    for seed in (0, 1):
        write_run(StoredRun.from_result(fake_result(seed=seed)), tmp_path)
    write_run(StoredRun.from_result(fake_result(seed=0, polyak=0.2)), tmp_path)
    assert [r.seed for r in load_runs(tmp_path, seed=[1])] == [1]
    assert len(load_runs(tmp_path, overrides={})) == 2 and len(load_runs(tmp_path, seed=0)) == 2
    assert describe_overrides(load_runs(tmp_path, overrides={"polyak": 0.2})[0].overrides) == "Polyak 0.2"


def test_every_stored_file_follows_the_naming_scheme():
    """results/<folder>/<name>.json, <name> = run_name of the configuration stored in it."""
    files = sorted(p for p in RESULTS.rglob("*.json") if p.parent.name != "bench")
    assert len(files) >= 288
    for path in files:
        run = load_run(path)
        assert path.stem == run.name == run_name(run.train_config()), path
