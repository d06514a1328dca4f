"""The ``bitflip`` command line: exit codes, one JSON line on stdout, one-line errors."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from bitflip_lib.cli import main


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_train_prints_exactly_one_json_line(capsys):
    code, out, _ = run_cli(capsys, "train", "--n", "5", "--arch", "har", "--max-iterations", "20", "--quiet",
                           "--device", "cpu")
    assert code == 0
    lines = out.strip().splitlines()
    assert len(lines) == 1
    summary = json.loads(lines[0])
    for key in ("n", "arch", "her", "seed", "iterations", "solved_at", "success_rate", "mean_distance",
                "wall_seconds", "device"):
        assert key in summary
    assert summary["n"] == 5 and summary["arch"] == "har" and summary["her"] == "future"
    assert 1 <= summary["iterations"] <= 20
    assert summary["solved_at"] is None or isinstance(summary["solved_at"], int)
    assert summary["device"].startswith("cpu")


def test_train_overrides_reach_the_config(capsys, tmp_path):
    path = tmp_path / "run.json"
    code, out, _ = run_cli(capsys, "train", "--n", "4", "--arch", "mlp", "--her", "none", "--max-iterations", "2",
                           "--no-target", "--no-clip", "--gradient-steps", "3", "--batch-size", "8", "--gamma", "0.5",
                           "--buffer-capacity", "64", "--eval-agents", "32", "--quiet", "--device", "cpu",
                           "--lr-end", "1e-4", "--save", str(path))
    assert code == 0
    assert json.loads(out)["her"] == "none"
    config = json.loads(path.read_text())["config"]
    assert config["polyak"] is None and config["clip_targets"] is False
    assert (config["gradient_steps"], config["batch_size"], config["gamma"]) == (3, 8, 0.5)
    assert (config["buffer_capacity"], config["num_eval_agents"], config["max_iterations"]) == (64, 32, 2)
    assert config["lr_end"] == 1e-4


def test_writeup_preset_uses_its_own_her(capsys):
    code, out, _ = run_cli(capsys, "train", "--n", "3", "--preset", "writeup", "--max-iterations", "1", "--quiet",
                           "--device", "cpu", "--eval-agents", "16")
    assert code == 0
    summary = json.loads(out)
    assert summary["her"] == "seed30" and summary["preset"] == "writeup"


@pytest.mark.parametrize("argv", [
    ["train", "--n", "0"],
    ["train", "--n", "-3"],
    ["train", "--n", "five"],
    ["train", "--n", "5", "--arch", "transformer"],
    ["train", "--n", "5", "--her", "sometimes"],
    ["train", "--n", "5", "--gamma", "1.5"],
    ["train", "--n", "5", "--polyak", "0"],
    ["train", "--n", "5", "--device", "tpu"],
    ["train"],
    ["fly"],
    [],
    ["sweep", "--n", "5"],
    ["table", "--results", "/nonexistent/results/dir"],
    ["bench", "--skip", "everything"],
    ["bench", "--only", "memory", "--skip", "env"],
    ["bench", "--only", "ram"],
])
def test_bad_arguments_exit_2_with_one_line(capsys, argv):
    code, out, err = run_cli(capsys, *argv)
    assert code == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err


def test_grade_delegates_to_the_grader(capsys, monkeypatch):
    import types

    seen = []
    fake = types.ModuleType("bitflip_lib.grading")
    fake.cli_main = lambda argv: seen.append(argv) or 3
    monkeypatch.setitem(sys.modules, "bitflip_lib.grading", fake)
    assert main(["grade", "ex01_env_step", "--verbose"]) == 3
    assert seen == [["ex01_env_step", "--verbose"]]


def test_grade_without_grader_exits_2(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "bitflip_lib.grading", None)  # import fails
    code, out, err = run_cli(capsys, "grade")
    assert code == 2 and out == "" and "grader" in err and len(err.strip().splitlines()) == 1


def test_python_dash_m_entry_point():
    proc = subprocess.run([sys.executable, "-m", "bitflip_lib", "train", "--n", "0"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "n" in proc.stderr and "Traceback" not in proc.stderr


def test_a_reader_that_goes_away_ends_the_command_quietly(tmp_path):
    """``bitflip sweep --dry-run | head`` must not end in a BrokenPipeError traceback."""
    argv = [sys.executable, "-m", "bitflip_lib", "sweep", "--dry-run", "--out", str(tmp_path),
            "--n", *map(str, range(1, 60)), "--arch", "uvfa", "mlp", "har", "--her", "none", "future",
            "--seeds", *map(str, range(10))]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.readline()
    proc.stdout.close()  # the reader leaves after one line, before the ~3500 names are written
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.wait(timeout=120) == 141
    assert "Traceback" not in err and "BrokenPipe" not in err


def test_sweep_and_table_commands(capsys, tmp_path):
    out_dir = tmp_path / "res"
    argv = ["sweep", "--n", "3", "--arch", "har", "--her", "future", "--seeds", "0", "--max-iterations", "3",
            "--eval-agents", "16", "--gradient-steps", "2", "--quiet", "--device", "cpu", "--out", str(out_dir)]
    code, out, err = run_cli(capsys, *argv)
    assert code == 0
    first = [json.loads(line) for line in out.strip().splitlines()]
    assert [c["status"] for c in first] == ["ran"]
    code, out, _ = run_cli(capsys, *argv)
    assert code == 0 and json.loads(out)["status"] == "kept"
    code, out, _ = run_cli(capsys, "table", "--results", str(out_dir), "--all-settings", "--ns", "3", "5")
    assert code == 0
    assert "HER-HAR (this repo)" in out and "n=3" in out
    code, out, _ = run_cli(capsys, "table", "--results", str(out_dir), "--all-settings", "--json")
    assert code == 0 and json.loads(out)[0]["runs"] == 1
