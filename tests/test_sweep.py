"""Sweeps: cells saved as they finish, skipped on rerun, loaded back; damaged cells set aside and run again.

Naming, writing and loading stored runs are tested in test_runs.py, Table 1 in test_table1.py."""
from __future__ import annotations

import json

import pytest

from bitflip_lib.config import make_config
from bitflip_lib.lab.runs import config_from_dict, load_runs, run_name
from bitflip_lib.lab.runs import run_name as cell_name
from bitflip_lib.lab.sweep import grid, run_sweep

TINY = {"max_iterations": 3, "num_eval_agents": 16, "gradient_steps": 2, "batch_size": 16, "device": "cpu"}


def test_cell_names_are_deterministic_and_distinguish_overrides():
    a = make_config("default", n=5, arch="har", seed=1)
    assert cell_name(a) == cell_name(make_config("default", n=5, arch="har", seed=1)) == "default_n5_har_future-k4_s1"
    assert cell_name(make_config("writeup", n=5, arch="uvfa")) == "writeup_n5_uvfa_writeup30_s0"
    tweaked = cell_name(a.replace(polyak=0.1))
    assert tweaked.startswith("default_n5_har_future-k4_s1_") and tweaked != cell_name(a)
    assert cell_name(a.replace(device="cpu")) == cell_name(a)  # results do not depend on where they ran
    assert cell_name is run_name  # one naming rule


def test_grid_covers_every_combination_cheapest_first():
    configs = grid([10, 5], archs=["uvfa", "har"], hers=["none", "preset"], seeds=[0, 1], preset="writeup")
    assert len(configs) == 2 * 2 * 2 * 2
    assert {c.her for c in configs} == {"none", "writeup30"}
    assert configs[0].arch == "har" and configs[0].n == 5 and configs[0].her == "writeup30"
    assert configs[-1].arch == "uvfa" and configs[-1].n == 10 and configs[-1].her == "none"
    with pytest.raises(ValueError):
        grid([5], archs=["nope"])


def test_sweep_saves_skips_and_loads_back(tmp_path):
    configs = grid([3, 4], archs=["har"], hers=["future", "none"], seeds=[0], **TINY)
    seen = []
    records = run_sweep(configs, tmp_path, progress=False, on_cell=lambda r, ran: seen.append(ran))
    assert seen == [True] * 4 and len(records) == 4
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == sorted(f"{cell_name(c)}.json" for c in configs)  # no temporary files left behind
    stored = json.loads((tmp_path / files[0]).read_text())
    assert {"config", "summary", "version", "device", "wall_seconds", "curve"} <= set(stored)
    assert len(stored["curve"]["iteration"]) == len(stored["curve"]["success_rate"]) <= 100

    # A rerun trains nothing and returns the same records.
    seen.clear()
    again = run_sweep(configs, tmp_path, progress=False, on_cell=lambda r, ran: seen.append(ran))
    assert seen == [False] * 4
    assert [r.summary() for r in again] == [r.summary() for r in records]
    assert [r.to_record() for r in again] == [r.to_record() for r in records]  # what was written is what was run

    runs = load_runs(tmp_path)
    assert len(runs) == 4 and {r.method for r in runs} == {"HER-HAR", "Vanilla-HAR"}
    assert len(load_runs(tmp_path, her="none")) == 2
    assert len(load_runs(tmp_path, n=[3])) == 2
    (tmp_path / "broken.json").write_text("{not json")
    (tmp_path / "other.json").write_text("[1, 2]")
    assert len(load_runs(tmp_path)) == 4  # unreadable and foreign files are ignored


def test_interrupted_sweep_keeps_finished_cells(tmp_path):
    configs = grid([3], archs=["har"], hers=["future"], seeds=[0, 1, 2], **TINY)

    def stop_after_first(record, ran):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_sweep(configs, tmp_path, progress=False, on_cell=stop_after_first)
    assert len(list(tmp_path.glob("*.json"))) == 1
    ran = []
    run_sweep(configs, tmp_path, progress=False, on_cell=lambda r, was_run: ran.append(was_run))
    assert ran == [False, True, True]


def test_stored_cell_names_still_match_their_configurations():
    """Every stored run keeps its name: the file a rerun of its command would look for."""
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent / "results"
    records = [(p, json.loads(p.read_text())) for p in sorted(root.rglob("*.json"))]
    records = [(p, r) for p, r in records if isinstance(r, dict) and "config" in r]
    assert len(records) >= 252
    for path, record in records:
        assert cell_name(config_from_dict(record["config"])) == record["name"], path
        if path.parent.name in ("default", "writeup") or path.parent.parent.name == "beyond":
            assert path.stem == record["name"], path


def test_the_regenerating_commands_still_name_the_stored_cells(capsys, tmp_path):
    """Each ``bitflip sweep``/``train`` command in results/README.md parses, and names only stored cells."""
    import re
    import subprocess
    from pathlib import Path

    from bitflip_lib.cli import build_parser, main, train_config

    root = Path(__file__).resolve().parent.parent
    blocks = re.findall(r"```bash\n(.*?)```", (root / "results" / "README.md").read_text(), re.S)
    # Each block's own shell expands its variables and loops; bitflip and nice only print their
    # arguments (blocks that redirect or pipe, the benchmarks', are left out; cwd is a scratch folder).
    shim = "bitflip() { printf '%s\\037' \"$@\"; printf '\\n'; }\nnice() { shift 2; \"$@\"; }\n"
    commands = []
    for block in blocks:
        if ("bitflip sweep" in block or "bitflip train" in block) and not re.search(r"[>|]", block):
            lines = subprocess.run(["bash", "-c", shim + block], capture_output=True, text=True, check=True,
                                   cwd=tmp_path).stdout.splitlines()
            commands += [line.rstrip("\x1f").split("\x1f") for line in lines]
    assert sum(c[0] == "sweep" for c in commands) >= 10
    # A grid still being filled: the lab notebook lists its missing runs (tests/test_results_readme.py
    # checks that list), and its commands are the ones that make them.
    from bitflip_lib.lab.table1 import missing_run_names
    not_stored_yet = missing_run_names(root / "results")
    for argv in commands:
        if argv[0] == "sweep":
            assert main([*argv, "--dry-run"]) == 0, argv
            out_dir = root / argv[argv.index("--out") + 1]
            names = capsys.readouterr().out.split()
            assert names and all((out_dir / f"{name}.json").is_file() or name in not_stored_yet
                                 for name in names), argv
        elif argv[0] == "train":
            config = train_config(build_parser().parse_args(argv))
            stored = json.loads((root / argv[argv.index("--save") + 1]).read_text())
            assert cell_name(config) == stored["name"], argv


def test_a_damaged_cell_is_run_again_and_kept_aside(tmp_path, capsys):
    configs = grid([3], archs=["har"], hers=["future"], seeds=[0], **TINY)
    path = tmp_path / f"{cell_name(configs[0])}.json"
    for attempt in range(2):  # the second time, a .damaged file is already there and is kept too
        path.write_text('{"name": "trunc')
        ran = []
        run_sweep(configs, tmp_path, progress=False, on_cell=lambda r, was_run: ran.append(was_run))
        assert ran == [True]
        assert json.loads(path.read_text())["name"] == path.stem
        err = capsys.readouterr().err
        assert str(path) in err and "Unterminated string" in err
    assert (tmp_path / f"{path.name}.damaged").read_text() == '{"name": "trunc'
    assert (tmp_path / f"{path.name}.damaged.1").read_text() == '{"name": "trunc'
    assert f"{path.name}.damaged.1" in err


def test_grid_gives_a_setting_only_to_the_cells_it_applies_to():
    mixed = {c.arch: c for c in grid([5], archs=["uvfa", "har"], hers=["future"], seeds=[0], hidden=(32,))}
    assert mixed["uvfa"].hidden is None and mixed["har"].hidden == (32,)
    assert cell_name(mixed["uvfa"]) == cell_name(make_config("default", n=5, arch="uvfa"))  # no new cell name
    configs = {c.her: c for c in grid([5], archs=["har"], hers=["none", "future"], seeds=[0], k=8)}
    assert (configs["none"].k, configs["future"].k) == (make_config().k, 8)
    with pytest.raises(ValueError, match="hidden.*no effect.*uvfa"):
        grid([5], archs=["uvfa"], hidden=(32,))
    with pytest.raises(ValueError, match="k=8 has no effect.*'final'"):
        grid([5], archs=["har"], hers=["none", "final"], k=8)


# --- Sweeps on Ray (optional dependency): the same files as the local runner, and a killed sweep resumes.
# Facts about the run, not results: its timing, and the commit and dirty flag of the code (another
# engineer's edit during the test may change them between the two runners).
_WALL = {"wall_seconds", "seconds_per_iteration", "finished_utc", "commit", "dirty"}


def _without_wall_times(record: dict) -> dict:
    record = {key: value for key, value in record.items() if key not in _WALL}
    record["summary"] = {key: value for key, value in record["summary"].items() if key not in _WALL}
    return record


def _stored(folder) -> dict:
    return {p.name: _without_wall_times(json.loads(p.read_text())) for p in sorted(folder.glob("*.json"))}


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install ray): the Ray runner is optional")
    ray.init(num_cpus=2, include_dashboard=False, configure_logging=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture
def one_thread():
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each Ray task runs (one CPU, one thread), so that the floats agree
    yield
    torch.set_num_threads(threads)


@pytest.mark.timeout(600)  # a Ray that does not start must fail the test, not hang the suite
def test_a_ray_sweep_writes_the_local_runners_files(local_ray, one_thread, tmp_path):
    from bitflip_lib.lab.sweep import run_sweep_ray

    configs = grid([3, 4], archs=["har"], hers=["future", "none"], seeds=[0], **TINY)
    run_sweep(configs, tmp_path / "local", progress=False)
    seen = []
    records = run_sweep_ray(configs, tmp_path / "ray", progress=False, on_cell=lambda r, ran: seen.append(ran))
    assert seen == [True] * 4 and [r.name for r in records] == [cell_name(c) for c in configs]
    assert sorted(p.name for p in (tmp_path / "ray").iterdir()) == sorted(p.name for p in (tmp_path / "local").iterdir())
    assert _stored(tmp_path / "ray") == _stored(tmp_path / "local")
    seen.clear()
    run_sweep_ray(configs, tmp_path / "ray", progress=False, on_cell=lambda r, ran: seen.append(ran))
    assert seen == [False] * 4  # finished cells are kept


@pytest.mark.timeout(600)  # a Ray that does not start must fail the test, not hang the suite
def test_a_killed_ray_sweep_resumes(local_ray, one_thread, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    from bitflip_lib.lab.sweep import run_sweep_ray

    out = tmp_path / "ray"
    argv = [sys.executable, "-m", "bitflip_lib", "sweep", "--n", "3", "4", "--arch", "har", "--her", "future",
            "--seeds", "0", "1", "2", "--max-iterations", "6", "--eval-agents", "16", "--gradient-steps", "2",
            "--batch-size", "16", "--device", "cpu", "--quiet", "--out", str(out),
            "--ray", local_ray.get_runtime_context().gcs_address]
    # Its own session, so that the kill reaches the sweep and nothing else.
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 300
    while not list(out.glob("*.json")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    _, err = proc.communicate()
    finished = {p.name for p in out.glob("*.json")}
    configs = grid([3, 4], archs=["har"], hers=["future"], seeds=[0, 1, 2], max_iterations=6, num_eval_agents=16,
                   gradient_steps=2, batch_size=16, device="cpu")
    assert finished and len(finished) < len(configs), (finished, err.decode()[-2000:])

    ran = {}
    run_sweep_ray(configs, out, progress=False, on_cell=lambda r, was_run: ran.__setitem__(f"{r.name}.json", was_run))
    assert {name for name, was_run in ran.items() if not was_run} == finished  # kept, not redone
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == sorted(
        f"{cell_name(c)}.json" for c in configs)
    run_sweep(configs, tmp_path / "local", progress=False)
    assert _stored(out) == _stored(tmp_path / "local")
