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
    assert summary["her"] == "writeup30" and summary["preset"] == "writeup"


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


# --- issue 15, cases 6-10: contradictions, options that do not apply, out-of-range numbers, output paths,
# damaged cell files. Every bad case must stop before any training (one line on stderr, exit 2).
FAST = ["--max-iterations", "2", "--eval-agents", "16", "--gradient-steps", "1", "--quiet", "--device", "cpu"]


@pytest.fixture
def no_training(monkeypatch):
    """Fail the test if the command starts training (the error must come first)."""
    import bitflip_lib.trainer

    def refuse(*args, **kwargs):
        raise AssertionError("training started before the bad option was reported")

    monkeypatch.setattr(bitflip_lib.trainer, "train", refuse)


def assert_one_line_error(code: int, out: str, err: str, *words: str) -> None:
    assert code == 2, (code, err)
    assert out == ""
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err and err.startswith("bitflip")
    for word in words:
        assert word in err, (word, err)


@pytest.mark.parametrize("argv, words", [
    (["train", "--n", "5", "--polyak", "0.1", "--no-target"], ("--polyak", "--no-target")),
    (["sweep", "--n", "5", "--polyak", "0.1", "--no-target", "--seeds", "0"], ("--polyak", "--no-target")),
    (["train", "--n", "5", "--double-dqn", "--no-target"], ("--double-dqn", "--no-target")),
    (["train", "--n", "5", "--her", "none", "--k", "8"], ("--k", "none")),
    (["train", "--n", "5", "--her", "final", "--k", "8"], ("--k", "final")),
    (["train", "--n", "5", "--preset", "writeup", "--k", "8"], ("--k", "writeup30")),
    (["sweep", "--n", "5", "--her", "none", "final", "--k", "8", "--seeds", "0"], ("--k",)),
    (["sweep", "--n", "5", "--seeds", "0", "--ray-gpus", "0.5"], ("--ray-gpus", "--ray")),
    (["sweep", "--n", "5", "--seeds", "0", "--ray", "--threads", "1"], ("--threads", "--ray")),
])
def test_contradictory_options_are_an_error(capsys, tmp_path, no_training, argv, words):
    if argv[0] == "sweep":
        argv = [*argv, "--out", str(tmp_path / "res")]
    assert_one_line_error(*run_cli(capsys, *argv, *FAST), *words)
    assert not (tmp_path / "res").exists() or not any((tmp_path / "res").iterdir())


def test_k_in_a_sweep_applies_to_the_strategies_that_draw_goals(capsys, tmp_path):
    code, out, _ = run_cli(capsys, "sweep", "--n", "5", "--arch", "har", "--her", "none", "future", "--k", "8",
                           "--seeds", "0", "--dry-run", "--out", str(tmp_path))
    assert code == 0
    assert sorted(out.split()) == ["default_n5_har_future-k8_s0", "default_n5_har_none_s0"]


@pytest.mark.parametrize("command", ["train", "sweep"])
def test_hidden_widths_do_not_apply_to_the_uvfa(capsys, tmp_path, no_training, command):
    argv = [command, "--n", "5", "--arch", "uvfa", "--hidden", "32", *FAST]
    if command == "sweep":
        argv += ["--seeds", "0", "--out", str(tmp_path)]
    assert_one_line_error(*run_cli(capsys, *argv), "--hidden", "uvfa")


def test_a_mixed_sweep_gives_hidden_widths_only_to_the_networks_that_have_them(capsys, tmp_path):
    """``--arch uvfa har --hidden 32``: the UVFA cells are the default ones (no new cell name)."""
    code, out, _ = run_cli(capsys, "sweep", "--n", "5", "--arch", "uvfa", "har", "--her", "future", "--hidden", "32",
                           "--seeds", "0", "--dry-run", "--out", str(tmp_path))
    assert code == 0
    names = out.split()
    assert "default_n5_uvfa_future-k4_s0" in names
    assert len(names) == 2 and any(n.startswith("default_n5_har_future-k4_s0_") for n in names)


@pytest.mark.parametrize("argv, flag", [
    (["train", "--n", "5", "--max-seconds", "-5"], "--max-seconds"),
    (["train", "--n", "5", "--max-seconds", "0"], "--max-seconds"),
    (["train", "--n", "5", "--max-seconds", "nan"], "--max-seconds"),
    (["train", "--n", "5", "--max-iterations", "0"], "--max-iterations"),
    (["train", "--n", "5", "--max-iterations", "-3"], "--max-iterations"),
    (["train", "--n", "5", "--lr", "0"], "--lr"),
    (["train", "--n", "5", "--lr", "inf"], "--lr"),
    (["train", "--n", "5", "--lr-end", "-0.0001"], "--lr-end"),
    (["train", "--n", "5", "--gamma", "0"], "--gamma"),
    (["train", "--n", "5", "--gamma", "nan"], "--gamma"),
    (["train", "--n", "5", "--polyak", "1.5"], "--polyak"),
    (["train", "--n", "5", "--gradient-steps", "-1"], "--gradient-steps"),
    (["train", "--n", "5", "--seed", "-1"], "--seed"),
    (["train", "--n", "5", "--batch-size", "0"], "--batch-size"),
    (["sweep", "--n", "5", "--seeds", "0", "-2"], "--seeds"),
    (["sweep", "--n", "5", "--seeds", "0", "--max-seconds", "-5"], "--max-seconds"),
    (["bench", "--uvfa-budget", "-1"], "--uvfa-budget"),
    (["bench", "--seeds", "0"], "--seeds"),
])
def test_out_of_range_numbers_are_rejected_by_name(capsys, tmp_path, no_training, argv, flag):
    if argv[0] == "train":
        argv = [*argv[:3], *FAST, *argv[3:]]  # the bad value last, so it overrides FAST's
    elif argv[0] == "sweep":
        argv = [*argv, "--out", str(tmp_path), "--quiet", "--device", "cpu"]
    assert_one_line_error(*run_cli(capsys, *argv), flag)


def test_save_path_is_checked_before_training(capsys, tmp_path, no_training):
    assert_one_line_error(*run_cli(capsys, "train", "--n", "3", *FAST, "--save", "/dev/null/x.json"),
                          "--save", "/dev/null/x.json")
    assert_one_line_error(*run_cli(capsys, "train", "--n", "3", *FAST, "--save", str(tmp_path)), "--save", "folder")


def test_sweep_out_must_be_a_writable_folder(capsys, tmp_path, no_training):
    existing = tmp_path / "notes.txt"
    existing.write_text("keep me\n")
    argv = ["sweep", "--n", "3", "--arch", "har", "--her", "future", "--seeds", "0", *FAST]
    assert_one_line_error(*run_cli(capsys, *argv, "--out", str(existing)), "--out", str(existing), "not a folder")
    assert existing.read_text() == "keep me\n"
    assert_one_line_error(*run_cli(capsys, *argv, "--out", "/dev/null/x"), "--out", "/dev/null/x")


def test_a_damaged_cell_is_set_aside_and_run_again(capsys, tmp_path):
    out_dir = tmp_path / "res"
    argv = ["sweep", "--n", "3", "--arch", "har", "--her", "future", "--seeds", "0", *FAST, "--out", str(out_dir)]
    assert run_cli(capsys, *argv)[0] == 0
    (cell,) = out_dir.glob("*.json")
    text = cell.read_text()
    cell.write_text(text[: len(text) // 2])  # as a full disk or a crashed copy leaves it

    code, out, err = run_cli(capsys, "table", "--results", str(out_dir), "--all-settings")
    assert cell.name in err and "damaged" in err

    code, out, err = run_cli(capsys, *argv)
    assert code == 0, err
    assert json.loads(out)["status"] == "ran"
    assert str(cell) in err and f"{cell.name}.damaged" in err
    assert (out_dir / f"{cell.name}.damaged").read_text() == text[: len(text) // 2]
    assert json.loads(cell.read_text())["name"] == cell.stem


def test_sweep_on_ray_without_ray_says_how_to_get_it(capsys, tmp_path, no_training, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import fails
    assert_one_line_error(*run_cli(capsys, "sweep", "--n", "3", "--seeds", "0", *FAST, "--ray", "--out", str(tmp_path)),
                          "--ray", "pip install")
