"""Stored runs: named, written and loaded by bitflip_lib.lab.runs, and every file in results/ follows the scheme."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from bitflip_lib.config import make_config
from bitflip_lib.lab import sweep
from bitflip_lib.lab.runs import (
    RECORD_KEYS,
    DamagedRunError,
    StoredRun,
    best_success,
    describe_overrides,
    load_run,
    load_runs,
    run_name,
    thin_curve,
    write_run,
)
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
    assert [r.name for r in loaded] == sorted(run_name(c) for c in configs)
    for made in records:
        run = load_run(tmp_path / f"{made.name}.json")
        record = json.loads((tmp_path / f"{made.name}.json").read_text())
        assert list(record) == list(RECORD_KEYS)
        assert run.to_record() == made.to_record() == record  # every key, read back exactly as the sweep wrote it
        assert (run.solved_at, run.iterations, run.best_success) == (record["summary"]["solved_at"],
                                                                    record["summary"]["iterations"], record["best_success"])
        assert run.train_config(device="cpu") == make_config(**{k: v for k, v in record["config"].items() if k != "hidden"})


def test_runs_writes_atomically_under_the_run_s_name(tmp_path):
    config = make_config(n=3, arch="har", seed=1, **TINY)
    result = train(config, progress=False)
    path = write_run(StoredRun.from_result(result), tmp_path)
    assert path.name == f"{run_name(config)}.json" and not list(tmp_path.glob(".*"))  # no temporary file left
    assert load_runs(tmp_path)[0].solved_at == result.solved_at
    other = write_run(StoredRun.from_result(result), tmp_path / "sub", filename="mine.json")  # as train --save does
    assert other == tmp_path / "sub" / "mine.json" and load_run(other, named=False).name == run_name(config)
    with pytest.raises(DamagedRunError, match=f"it holds the run {run_name(config)} \\(by its config\\), not mine"):
        load_run(other)  # in a results folder, a file must be named by the run it holds


def test_run_names_are_deterministic_and_distinguish_overrides():
    a = make_config("default", n=5, arch="har", seed=1)
    assert run_name(a) == "default_n5_har_future-k4_s1" and run_name(make_config("writeup", n=5, arch="uvfa")) == \
        "writeup_n5_uvfa_writeup30_s0"
    tweaked = run_name(a.replace(polyak=0.1))
    assert tweaked.startswith("default_n5_har_future-k4_s1_") and tweaked != run_name(a)
    assert run_name(a.replace(device="cpu")) == run_name(a)  # results do not depend on where they ran


def test_describe_overrides_names_what_changed():
    assert describe_overrides({}) == describe_overrides({"max_iterations": 1000}) == "default preset"
    text = describe_overrides({"buffer_capacity": 2**20, "double_dqn": True, "gamma": 0.95, "max_iterations": 1500})
    assert text == "buffer 2^20, double DQN, gamma 0.95"


def test_thin_curve_keeps_ends():
    history = [{"iteration": i, "success_rate": i / 500, "mean_distance": 1.0, "loss": None} for i in range(1, 501)]
    curve = thin_curve(history, max_points=50)
    assert len(curve["iteration"]) == 50
    assert curve["iteration"][0] == 1 and curve["iteration"][-1] == 500
    assert curve["loss"][0] is None


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
    with pytest.raises(DamagedRunError, match="broken.json is damaged, not valid JSON"):
        load_run(tmp_path / "broken.json")


def test_damaged_files_are_named_and_skipped_and_foreign_ones_ignored(tmp_path, capsys):
    sweep.run_sweep(sweep.grid([3], archs=["har"], hers=["future"], seeds=[0], **TINY), tmp_path, progress=False)
    (tmp_path / "broken.json").write_text('{"name": "default_n3_har_fut')
    (tmp_path / "empty.json").write_text("")
    (tmp_path / "other.json").write_text("[1, 2]")
    assert len(load_runs(tmp_path)) == 1
    err = capsys.readouterr().err
    assert "broken.json" in err and "empty.json" in err and "other.json" not in err and "damaged" in err


def test_filters_keep_matching_runs(tmp_path):
    for seed in (0, 1):
        write_run(StoredRun.from_result(fake_result(seed=seed)), tmp_path)
    write_run(StoredRun.from_result(fake_result(seed=0, polyak=0.2)), tmp_path)
    assert [r.seed for r in load_runs(tmp_path, seed=[1])] == [1]
    assert len(load_runs(tmp_path, overrides={})) == 2 and len(load_runs(tmp_path, seed=0)) == 2
    assert describe_overrides(load_runs(tmp_path, overrides={"polyak": 0.2})[0].overrides) == "Polyak 0.2"


def test_every_stored_file_follows_the_naming_scheme():
    """results/<folder>/<name>.json, <name> = run_name of the configuration stored in it."""
    # bench/ holds benchmark output and beyond/tail/ the diagnosis reports of results/beyond/tail/diagnose.py
    files = sorted(p for p in RESULTS.rglob("*.json") if p.parent.name not in ("bench", "tail"))
    assert len(files) >= 288
    for path in files:
        run = load_run(path)
        assert path.stem == run.name == run_name(run.train_config()), path


def _git(root, *args):
    import subprocess

    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)


def test_a_new_run_records_the_commit_that_produced_it(tmp_path):
    import shutil
    import subprocess

    from bitflip_lib.lab.runs import SOURCE_ROOT, source_commit

    record = StoredRun.from_result(fake_result()).to_record()
    assert list(record) == list(RECORD_KEYS) and source_commit() == (record["commit"], record["dirty"])
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    head = subprocess.run(["git", "-C", str(SOURCE_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True)
    if head.returncode == 0:  # this checkout: its HEAD, and a dirty flag
        assert record["commit"] == head.stdout.strip() and isinstance(record["dirty"], bool)
    else:
        assert record["commit"] is None and record["dirty"] is None
    # A repository of its own: clean, then a tracked file under bitflip_lib/ changed; untracked files do not count.
    repo = tmp_path / "repo"
    (repo / "bitflip_lib").mkdir(parents=True)
    (repo / "bitflip_lib" / "env.py").write_text("x = 1\n")
    (repo / "README.md").write_text("hello\n")
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "first")
    commit = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    (repo / "bitflip_lib" / "new.py").write_text("")
    (repo / "README.md").write_text("changed outside bitflip_lib\n")
    assert source_commit.__wrapped__(repo) == (commit, False)
    (repo / "bitflip_lib" / "env.py").write_text("x = 2\n")
    assert source_commit.__wrapped__(repo) == (commit, True)
    # Not a checkout at all, or a folder inside some other checkout (an installed package in a .venv).
    (tmp_path / "plain").mkdir()
    assert source_commit.__wrapped__(tmp_path / "plain") == (None, None)
    (repo / "inner").mkdir()
    assert source_commit.__wrapped__(repo / "inner") == (None, None)


def test_records_with_and_without_the_commit_load(tmp_path):
    record = StoredRun.from_result(fake_result()).to_record()
    old = {key: value for key, value in record.items() if key not in ("commit", "dirty")}  # stored before it was kept
    for folder, stored in (("old", old), ("new", {**record, "commit": "abc123", "dirty": True})):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / f"{record['name']}.json").write_text(json.dumps(stored))
    new_run, old_run = load_runs(tmp_path, recursive=True)  # sorted by path: new/ before old/
    assert (old_run.commit, old_run.dirty) == (None, None) and "commit" not in old_run.extra
    assert (new_run.commit, new_run.dirty) == ("abc123", True) and new_run.to_record()["dirty"]


def test_a_result_and_its_stored_run_are_one_protocol_with_the_same_answers():
    """Issue 28, item 5: TrainResult and StoredRun are both TrainingRun, and answer alike."""
    from bitflip_lib.trainer import TrainingRun

    result = fake_result(solved_at=4, hidden=(16, 16))
    stored = StoredRun.from_result(result)
    reloaded = StoredRun.from_record(json.loads(json.dumps(stored.to_record())))
    assert isinstance(result, TrainingRun) and isinstance(stored, TrainingRun) and isinstance(reloaded, TrainingRun)
    assert not isinstance([0.5, None], TrainingRun)
    for run in (stored, reloaded):
        for name in ("solved_at", "confirmed_at", "solved", "iterations", "best_success", "success_rate",
                     "mean_distance"):
            assert getattr(run, name) == getattr(result, name), name
        assert run.summary() == result.summary() and run.train_config() == result.train_config()
        assert run.train_config(seed=3) == result.train_config(seed=3) != result.train_config()
        assert run.settings() == {**result.settings(), "hidden": run.settings()["hidden"]}
        assert list(run.settings()["hidden"]) == [16, 16]
        assert run.metrics == {"success_rate", "mean_distance", "loss"} == result.metrics
        for metric in run.metrics:
            assert run.curve(metric) == result.curve(metric), metric
    assert result.best_success == 1.0 and best_success(result) == best_success(stored) == 1.0
    assert best_success([None, 0.3, 0.1]) == 0.3 and best_success([]) is None
