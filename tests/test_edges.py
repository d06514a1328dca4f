"""Bad input at the edges (issue 27): each case gets one clear line that says what to do, before
anything is built, never a traceback, a hang, a silent wrong answer or a wrong file kept.

Sections: devices that cannot compute (item 5); damaged stored runs (item 1); empty paths
(item 2); non-finite and absurd numbers (item 3); sizes past the machine (item 4); seeds, actions
and steps out of order in the environments (item 7).
"""
from __future__ import annotations

import pytest
import torch

from bitflip_lib.cli import main
from bitflip_lib.config import make_config
from bitflip_lib.lab.runs import run_name

CUDA = torch.cuda.is_available()
FAST = ["--max-iterations", "2", "--eval-agents", "16", "--gradient-steps", "1", "--quiet", "--device", "cpu"]


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line(code: int, out: str, err: str, expected_code: int, *words: str) -> str:
    """The command failed with ``expected_code``, printed nothing on stdout and one line on stderr
    that contains every word; returns that line."""
    assert code == expected_code, (code, err)
    assert out == "", out
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err and err.startswith("bitflip"), err
    for word in words:
        assert word in err, (word, err)
    return lines[0]


@pytest.fixture
def no_training(monkeypatch):
    """Fail the test if the command starts training (the refusal must come first)."""
    import bitflip_lib.trainer

    def refuse(*args, **kwargs):
        raise AssertionError("training started before the bad input was reported")

    monkeypatch.setattr(bitflip_lib.trainer, "train", refuse)


# --------------------------------------------------------------------------------------------
# Item 5: devices that cannot compute are refused where settings are validated
# --------------------------------------------------------------------------------------------
BAD_DEVICES = [
    ("meta", "meta tensors hold no data"),
    ("xpu", "the course computes on cpu, cuda or mps, not xpu"),
    ("tpu", "not a torch device"),
    ("cuda:99", "this machine has") if CUDA else ("cuda", "CUDA is not available on this machine"),
]


@pytest.mark.parametrize("device, why", BAD_DEVICES)
def test_a_device_that_cannot_compute_is_refused_by_the_settings(device, why):
    with pytest.raises(ValueError, match=r"^device must be 'auto' .* got ") as caught:
        make_config(device=device)
    assert why in str(caught.value) and repr(device) in str(caught.value)


@pytest.mark.parametrize("device, why", BAD_DEVICES)
def test_environments_refuse_a_device_that_cannot_compute(device, why):
    from bitflip_lib.env import BitFlipEnv

    with pytest.raises(ValueError, match=rf"^device '{device}' cannot be used here \(.*\): use 'cpu' or 'auto'$"):
        BitFlipEnv(5, 2, device=device)
    gym_env = pytest.importorskip("bitflip_lib.lab.gym_env")
    with pytest.raises(ValueError, match=rf"^device '{device}' cannot be used here"):
        gym_env.BitFlipVectorEnv(num_envs=4, n=5, device=device)


@pytest.mark.parametrize("command", ["train", "sweep", "generate"])
@pytest.mark.parametrize("device, why", BAD_DEVICES[:1] + BAD_DEVICES[-1:])
def test_the_command_line_refuses_the_device_before_creating_anything(capsys, tmp_path, no_training, command,
                                                                       device, why):
    out_dir = tmp_path / "res"
    argv = {"train": ["train", "--n", "3", "--quiet", "--save", str(out_dir / "run.json")],
            "sweep": ["sweep", "--n", "3", "--seeds", "0", "--quiet", "--out", str(out_dir)],
            "generate": ["generate", "--steps", "2", "--quiet"]}[command]
    line = assert_one_line(*run_cli(capsys, *argv, "--device", device), 2, "--device", why)
    assert line.startswith(f"bitflip {command}: --device must be"), line
    assert not out_dir.exists()  # sweep --device cuda used to leave an empty results folder


# --------------------------------------------------------------------------------------------
# Item 3: non-finite and absurd numbers are refused where settings are validated; a loss that
# turns non-finite stops the run naming the step and the setting; JSON output is standard JSON
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("argv, words", [
    (["train", "--n", "3", *FAST, "--lr", "1e308"], ("--lr must be a number in (0, 1]", "got 1e+308")),
    (["train", "--n", "3", *FAST, "--lr", "inf"], ("--lr must be a number in (0, 1]", "got inf")),
    (["generate", "--lr", "inf"], ("--lr must be a number in (0, 1]", "got inf")),
    (["generate", "--lr", "nan"], ("--lr must be a number in (0, 1]", "got nan")),
    (["generate", "--method", "kl", "--beta", "inf"], ("--beta must be a finite number > 0", "got inf")),
    (["generate", "--method", "gflownet", "--floor", "0.001", "--log-z-lr", "inf"],
     ("--log-z-lr must be a number in (0, 1]", "got inf")),
    (["generate", "--seed", "-1"], ("--seed must be an integer >= 0 and below 2**63", "got -1")),
    (["generate", "--seed", str(2**63)], ("--seed must be an integer >= 0 and below 2**63",)),
    (["generate", "--epsilon", "nan"], ("--epsilon must be a number in [0, 1]",)),
    (["generate", "--reward", "sparse", "--floor", "inf"], ("--floor must be a finite number >= 0",)),
    (["generate", "--reward", "dense", "--sharpness", "inf"], ("--sharpness must be a number > 0", "multimodal only")),
    (["generate", "--reward", "multimodal", "--length", "2", "--num-modes", "5"], ("--num-modes must be at most 2^L = 4",)),
    (["generate", "--hidden", "0"], ("--hidden must be a non-empty tuple of layer widths",)),
])
def test_non_finite_and_absurd_numbers_are_refused_by_name(capsys, no_training, argv, words):
    line = assert_one_line(*run_cli(capsys, *argv, *(["--steps", "2", "--quiet"] if argv[0] == "generate" else [])), 2,
                           *words)
    assert line.startswith(f"bitflip {argv[0]}: --"), line


def test_a_loss_that_turns_non_finite_stops_generation_naming_the_step_and_setting(capsys):
    # beta = 1e300 is finite, but the KL-shaped reward overflows float32: the run must stop, not go on.
    line = assert_one_line(*run_cli(capsys, "generate", "--method", "kl", "--beta", "1e300", "--steps", "5",
                                    "--quiet", "--device", "cpu"), 1)
    assert line == "bitflip generate: the kl loss became nan at step 1: training diverged; lower --beta=1e+300"


def test_a_loss_that_turns_non_finite_stops_training_naming_the_step_and_setting():
    from bitflip_lib.trainer import TrainingDiverged, build_network, train

    config = make_config(n=4, arch="mlp", max_iterations=3, num_eval_agents=16, gradient_steps=4, batch_size=8,
                         device="cpu", lr=0.5, clip_targets=False)
    network = build_network(config, torch.device("cpu"))
    with torch.no_grad():
        network.body[-1].bias.fill_(3e38)  # Q-values at the edge of float32: the first squared error overflows
    with pytest.raises(TrainingDiverged) as caught:
        train(config, network=network, progress=False)
    assert str(caught.value) == ("the TD loss became inf at iteration 1 (gradient step 1): training diverged; lower "
                                 "lr=0.5 (the preset's is 0.001), or train with target clipping and a target network "
                                 "(chapter 5)")


def test_json_output_never_holds_a_non_standard_number(capsys):
    import json
    import math

    from bitflip_lib.generation.training import GenerateConfig, GenerationResult
    from bitflip_lib.runtime import strict_json

    assert strict_json.finite({"a": [1.0, math.nan, (math.inf, -math.inf)], "b": 2}) == {"a": [1.0, None, [None, None]],
                                                                                          "b": 2}
    result = GenerationResult(GenerateConfig(), history=[{"step": 0, "success": 0.5, "kl": math.inf, "tv": math.nan}])
    line = strict_json.dumps(result.summary())

    def refuse(constant):
        raise AssertionError(f"non-standard JSON number {constant}")

    assert json.loads(line, parse_constant=refuse)["kl"] is None
    assert main(["generate", "--method", "kl", "--length", "3", "--steps", "2", "--eval-every", "1", "--eval-samples",
                 "8", "--device", "cpu"]) == 0
    out, err = capsys.readouterr()
    for text in [out, *(line.removeprefix("[generate] ") for line in err.splitlines())]:
        json.loads(text, parse_constant=refuse)


# --------------------------------------------------------------------------------------------
# Item 1: a stored run is checked once, where runs are loaded, against its own name; a file that
# fails is named on stderr, set aside and rerun by sweeps, skipped by tables, never kept
# --------------------------------------------------------------------------------------------
SWEEP = ["sweep", "--n", "3", "--arch", "har", "--her", "future", "--seeds", "0", "1", *FAST]
S0, S1 = (run_name(make_config(n=3, arch="har", her="future", seed=seed, max_iterations=2, num_eval_agents=16,
                               gradient_steps=1, device="cpu")) for seed in (0, 1))


@pytest.fixture(scope="module")
def good_cells(tmp_path_factory):
    """Two stored cells (seeds 0 and 1) made by a real sweep: the record of each, by name."""
    import json

    folder = tmp_path_factory.mktemp("cells")
    assert main([*SWEEP, "--out", str(folder)]) == 0
    return {path.stem: json.loads(path.read_text()) for path in folder.glob("*.json")}


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def _damage(case: str, cells: dict, path) -> None:
    """Write the damaged form ``case`` of seed 0's cell at ``path``."""
    import copy
    import json
    import os

    record = copy.deepcopy(cells[S0])
    text = {
        "empty parts": '{"summary": {}, "config": {}, "curve": {}}',
        "wrong kinds": '{"summary": {}, "config": 5, "curve": null}',
        "200k-deep array": '{"summary": {}, "config": {}, "curve": ' + _nested(200_000) + "}",
        "100-deep array": '{"summary": {}, "config": {}, "curve": ' + _nested(100) + "}",
        "NaN in the curve": json.dumps(record).replace('"loss": [', '"loss": [NaN, ', 1),
        "truncated": json.dumps(record)[:200],
    }.get(case)
    if case == "another cell's run":
        text = json.dumps(cells[S1])  # seed 1's run saved under seed 0's name
    elif case == "renamed record":
        text = json.dumps({**record, "name": S1})
    elif case == "summary against config":
        record["summary"]["n"] = 4
        text = json.dumps(record)
    elif case == "curve of unequal columns":
        record["curve"]["loss"] = record["curve"]["loss"][:-1]
        text = json.dumps(record)
    elif case == "curve null":
        text = json.dumps({**record, "curve": None})
    elif case == "config 5":
        text = json.dumps({**record, "config": 5})
    elif case == "config not valid":
        record["config"]["gamma"] = 7
        text = json.dumps(record)
    if case == "FIFO":
        os.mkfifo(path)
    elif case == "folder":
        path.mkdir()
    elif case == "9 MB":
        with open(path, "wb") as handle:
            handle.truncate(9 * 2**20)
    else:
        path.write_text(text)


DAMAGED = [
    ("empty parts", "its name is missing or not text"),
    ("wrong kinds", "its config is not a JSON object"),
    ("200k-deep array", "nested too deeply to be a stored run"),
    ("100-deep array", "nested more than 8 levels deep, unlike any stored run"),
    ("NaN in the curve", "not valid JSON (the non-standard number NaN"),
    ("truncated", "not valid JSON (Unterminated string"),
    ("another cell's run", f"it holds the run {S1} (by its config), not {S0}"),
    ("renamed record", f"its config is the run {S0}, but the record is named {S1}"),
    ("summary against config", "its summary says n = 4, its config 3"),
    ("curve of unequal columns", "its curve's columns have different lengths"),
    ("config not valid", "its config is not a valid configuration (gamma must be a number in (0, 1]"),
    ("curve null", "its curve is not a JSON object"),
    ("config 5", "its config is not a JSON object"),
    ("FIFO", "not a regular file (a FIFO)"),
    ("folder", "not a regular file (a folder)"),
    ("9 MB", "larger than 8 MB, far more than any stored run"),
]


@pytest.mark.parametrize("case, reason", DAMAGED, ids=[case for case, _ in DAMAGED])
def test_a_damaged_stored_run_is_named_skipped_by_tables_and_rerun_by_sweeps(capsys, tmp_path, good_cells, case,
                                                                               reason):
    import json

    folder = tmp_path / "res"
    folder.mkdir()
    (folder / f"{S1}.json").write_text(json.dumps(good_cells[S1]))
    cell = folder / f"{S0}.json"
    _damage(case, good_cells, cell)

    # bitflip table: the damaged cell is named and skipped (an alarm ends the test if a FIFO blocks the read)
    import signal

    def blocked(*_):
        raise AssertionError("bitflip table blocked reading the damaged file")

    signal.signal(signal.SIGALRM, blocked)
    signal.alarm(60)
    try:
        code, out, err = run_cli(capsys, "table", "--results", str(folder), "--all-settings", "--json")
    finally:
        signal.alarm(0)
    assert code == 0 and "Traceback" not in err, err
    (line,) = err.splitlines()
    assert line.startswith(f"bitflip: skipped {cell}: damaged ({reason}") and line.endswith("; rerun its sweep to redo the cell")
    assert [c["runs"] for c in json.loads(out)] == [1]  # seed 1's cell only

    # bitflip sweep: the damaged cell is set aside and run again; the good one is kept
    code, out, err = run_cli(capsys, *SWEEP, "--out", str(folder))
    assert code == 0 and "Traceback" not in err, err
    status = {line["cell"]: line["status"] for line in map(json.loads, out.splitlines())}
    assert status == {S0: "ran", S1: "kept"}
    assert f"bitflip: {cell} is damaged ({reason}" in err and f"kept it as {cell.name}.damaged" in err
    assert (folder / f"{cell.name}.damaged").exists() and json.loads(cell.read_text())["name"] == S0
    assert json.loads(cell.read_text())["summary"]["seed"] == 0



# --------------------------------------------------------------------------------------------
# Item 2 (and item 7's table --results FILE): empty or wrong paths are usage errors
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("argv, expected", [
    (["train", "--n", "3", *FAST, "--save", ""], "bitflip train: --save is empty; give a file name, e.g. run.json"),
    (["train", "--n", "3", *FAST, "--save", "  "], "bitflip train: --save is empty; give a file name, e.g. run.json"),
    (["sweep", "--n", "3", "--seeds", "0", *FAST, "--out", ""],
     "bitflip sweep: --out is empty; give a new or existing folder you can write to"),
    (["sweep", "--n", "3", "--seeds", "0", *FAST, "--out", "{tmp}/res", "--ray", ""],
     "bitflip sweep: --ray's address is empty; give a cluster's address, or --ray alone for a local Ray"),
    (["table", "--results", ""], "bitflip table: --results is empty: give the folder a sweep wrote its cells to"),
    (["table", "--results", "{tmp}/notes.json"],
     "bitflip table: --results '{tmp}/notes.json' is a file, not a results folder: give the folder a sweep wrote its "
     "cells to (bitflip sweep --out FOLDER), e.g. '{tmp}'"),
])
def test_empty_and_wrong_paths_are_usage_errors(capsys, tmp_path, monkeypatch, no_training, argv, expected):
    monkeypatch.chdir(tmp_path)  # an empty path must not quietly mean the current folder
    (tmp_path / "notes.json").write_text("{}")
    argv = [arg.replace("{tmp}", str(tmp_path)) for arg in argv]
    line = assert_one_line(*run_cli(capsys, *argv), 2)
    assert line == expected.replace("{tmp}", str(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.json"]  # nothing written anywhere


# --------------------------------------------------------------------------------------------
# Item 7 (environments): seeds out of range, a bool action, a step before reset
# --------------------------------------------------------------------------------------------
SEED_MESSAGE = r"^seed must be an integer >= 0 and below 2\*\*63 or None, got "


@pytest.mark.parametrize("seed", [2**64, 2**63, -1, 1.5, True])
def test_a_seed_out_of_range_is_named_with_its_range(seed):
    from bitflip_lib.env import BitFlipEnv

    with pytest.raises(ValueError, match=SEED_MESSAGE):  # was "Overflow when unpacking long long"
        BitFlipEnv(5, 2, seed=seed)
    BitFlipEnv(5, 2, seed=2**63 - 1).reset()  # the largest seed works


@pytest.mark.parametrize("seed", [2**70, 2**63, -1])
def test_gymnasium_resets_name_the_seed_and_its_range(seed):
    gym_env = pytest.importorskip("bitflip_lib.lab.gym_env")
    for env in (gym_env.BitFlipGoalEnv(5), gym_env.BitFlipVectorEnv(num_envs=3, n=5)):
        with pytest.raises(ValueError, match=SEED_MESSAGE):
            env.reset(seed=seed)
        env.reset(seed=2**63 - 1)


def test_gymnasium_refuses_a_bool_action_instead_of_flipping_bit_1():
    import numpy as np

    gym_env = pytest.importorskip("bitflip_lib.lab.gym_env")
    env = gym_env.BitFlipGoalEnv(5)
    env.reset(seed=0)
    for action in (True, np.True_, False):
        with pytest.raises(ValueError, match=r"^action must be a bit index, an integer in \[0, 4\], got .* \(a bool\)$"):
            env.step(action)
    assert env._env.t == 0  # nothing was flipped
    env.step(np.int64(1))  # a NumPy integer is a bit index


def test_stepping_before_reset_says_to_reset_not_that_a_step_limit_was_reached():
    from bitflip_lib.env import BitFlipEnv

    with pytest.raises(RuntimeError, match=r"^no episode has started: call reset\(\) before step\(\)$"):
        BitFlipEnv(5, 2).step(torch.tensor([0, 1]))
    gym_env = pytest.importorskip("bitflip_lib.lab.gym_env")
    with pytest.raises(RuntimeError, match=r"^no episode has started: call reset\(\) before step\(\)$"):
        gym_env.BitFlipGoalEnv(5).step(0)
    env = BitFlipEnv(2, 1)
    env.reset()
    env.step(torch.tensor([0]))
    env.step(torch.tensor([0]))
    with pytest.raises(RuntimeError, match=r"step limit 2 reached\): call reset\(\) first"):
        env.step(torch.tensor([0]))


# --------------------------------------------------------------------------------------------
# Item 4: HER relabelling's memory grows no faster than the data it keeps
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("strategy", ["none", "final", "future", "episode", "writeup30", "writeup30-whole"])
@pytest.mark.parametrize("capacity", [1, 50, 10_000])
def test_the_newest_transitions_are_those_the_buffer_kept_of_everything(strategy, capacity):
    from bitflip_lib.env import BitFlipEnv
    from bitflip_lib.her import her_relabel
    from bitflip_lib.replay import ReplayBuffer, Transitions, newest
    from bitflip_lib.trainer import play_episode

    generator = torch.Generator().manual_seed(3)
    env = BitFlipEnv(6, 8, generator=generator, device="cpu")
    episode = play_episode(env, lambda s, g: torch.randint(0, 6, (8,), generator=generator))
    played, relabelled = episode.transitions(), her_relabel(episode, strategy, 3, generator)
    kept = newest([played, relabelled], capacity)
    assert "_copied" not in vars(played) and "_copied" not in vars(relabelled)  # no view was copied out whole
    everything = Transitions.cat([played, relabelled])  # copies every transition, as the trainer used to
    for name in ("state", "goal", "action", "reward", "next_state", "done"):
        assert torch.equal(getattr(kept, name), getattr(everything, name)[-capacity:]), name
    old, new = ReplayBuffer(6, capacity), ReplayBuffer(6, capacity)
    for _ in range(2):
        old.add(everything)
        new.add(kept)
    assert all(torch.equal(getattr(old, f), getattr(new, f)) for f in ("state", "goal", "action", "reward", "done"))
    assert old.position == new.position and len(old) == len(new)


def test_storing_an_iteration_at_large_n_takes_memory_like_the_buffer_not_16_k_n_squared(tmp_path):
    """The store step at n = 2000 (k = 4): its resident-memory growth stays within 3 buffers' worth
    (it was 9: 16 k n^2 bits copied out three times, concatenated, then mostly dropped)."""
    import subprocess
    import sys

    script = tmp_path / "store.py"
    script.write_text("""
import resource, torch
from bitflip_lib.config import make_config
from bitflip_lib.dqn import DQNLearner
from bitflip_lib.env import BitFlipEnv
from bitflip_lib.replay import newest
from bitflip_lib.trainer import build_network, play_episode
n = 2000
config = make_config(n=n, arch="har", her="future", k=4, device="cpu")
generator = torch.Generator().manual_seed(0)
learner = DQNLearner.from_config(build_network(config, torch.device("cpu")), config)
buffer = learner.replay_buffer(n, config.buffer_capacity, torch.device("cpu"))
env = BitFlipEnv(n, config.num_train_agents, device="cpu", generator=generator)
episode = play_episode(env, lambda s, g: torch.randint(n, (s.shape[0],), generator=generator))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
played, relabelled = learner.experience(episode, config.her, config.k, generator)
buffer.add(newest([played, relabelled], config.buffer_capacity))
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before, len(relabelled))
""")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    grown_kb, relabelled = map(int, done.stdout.split())
    buffer_kb = 2**15 * 3 * 2000 / 1024
    assert relabelled == 16 * 2000 * 4  # every step relabelled k times: 128,000 transitions named...
    assert grown_kb < 3 * buffer_kb, (grown_kb, buffer_kb)  # ...but only the 2^15 the buffer keeps copied out


# --------------------------------------------------------------------------------------------
# Item 4: sizes past the machine are refused before anything is built, with the estimate, what
# is available and the setting to lower
# --------------------------------------------------------------------------------------------
PAST_THE_MACHINE = [
    (["train", "--n", "1000000000"], "the episode", "lower --n=1000000000"),
    (["train", "--n", "10", "--arch", "mlp", "--hidden", "200000", "200000"], "the network",
     "lower --hidden=(200000, 200000)"),
    (["train", "--n", "10", "--buffer-capacity", str(10**12)], "the replay buffer", f"lower --buffer-capacity={10**12}"),
    (["train", "--n", "10", "--batch-size", str(10**9)], "the training batch", f"lower --batch-size={10**9}"),
    (["train", "--n", "10", "--eval-agents", str(10**9)], "the evaluation", f"lower --eval-agents={10**9}"),
    (["train", "--n", "10", "--k", str(10**7)], "the relabelled transitions", f"lower --k={10**7}"),
    (["train", "--n", "10", "--num-train-agents", str(10**9)], "the relabelled transitions",
     f"lower --num-train-agents={10**9}"),
    (["train", "--n", "10", "--evaluate-at", str(10**9)], f"the evaluation at n = {10**9}",
     f"lower --evaluate-at={10**9}"),  # used to fail only after training
    (["sweep", "--n", "5", str(10**9), "--seeds", "0"], "the episode", f"lower --n={10**9}"),
    (["generate", "--length", "100000"], "the training batch", "lower --length=100000"),
    (["generate", "--batch-size", str(10**9)], "the training batch", f"lower --batch-size={10**9}"),
    (["generate", "--method", "dpo", "--num-pairs", str(10**11)], "the preference pairs", f"lower --num-pairs={10**11}"),
]


@pytest.mark.parametrize("argv, part, advice", PAST_THE_MACHINE, ids=[" ".join(a[0][:3]) + " " + a[0][-1] for a in
                                                                      PAST_THE_MACHINE])
def test_a_run_past_the_machine_is_refused_with_its_estimate_before_anything_is_built(capsys, tmp_path, no_training,
                                                                                       argv, part, advice):
    import re

    extra = {"train": ["--max-iterations", "1", "--quiet", "--device", "cpu", "--save", str(tmp_path / "out" / "r.json")],
             "sweep": ["--max-iterations", "1", "--quiet", "--device", "cpu", "--out", str(tmp_path / "out")],
             "generate": ["--steps", "1", "--quiet", "--device", "cpu"]}[argv[0]]
    line = assert_one_line(*run_cli(capsys, *argv, *extra), 2)
    pattern = (rf"^bitflip {argv[0]}: (cell \S+: )?this run needs about [\d.,e+]+ [MGT]B of memory, most of it "
               rf"{re.escape(part)} \([\d.,e+]+ [MGT]B\), but about [\d.,]+ [MGT]B is available in RAM: {re.escape(advice)}$")
    assert re.match(pattern, line), line
    assert not (tmp_path / "out").exists()


def test_more_threads_than_cpus_are_refused(capsys, no_training):
    import os

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    line = assert_one_line(*run_cli(capsys, "train", "--n", "3", *FAST, "--threads", "100000"), 2)
    assert line == f"bitflip train: argument --threads: this machine has {cpus} CPUs: give at most {cpus}, got 100000"


def test_the_library_refuses_runs_and_environments_past_the_machine(tmp_path):
    from bitflip_lib.lab.sweep import grid, run_sweep
    from bitflip_lib.runtime.budget import NotEnoughMemory
    from bitflip_lib.trainer import train

    with pytest.raises(NotEnoughMemory, match=r"^this run needs about .* lower n=1000000000$"):
        train(make_config(n=10**9, device="cpu"), progress=False)
    cells = grid([3, 10**9], archs=["har"], hers=["future"], seeds=[0], max_iterations=1, device="cpu")
    with pytest.raises(NotEnoughMemory, match=r"^cell default_n1000000000_\S+: this run needs"):
        run_sweep(cells, tmp_path, progress=False)
    assert not list(tmp_path.iterdir())  # refused before the first (small) cell ran
    gym_env = pytest.importorskip("bitflip_lib.lab.gym_env")
    with pytest.raises(NotEnoughMemory, match=r"^the vector environment needs about .* lower num_envs=10000000000$"):
        gym_env.BitFlipVectorEnv(num_envs=10**10, n=15, device="cpu")


def test_the_estimate_is_within_a_factor_of_two_of_what_a_run_takes(tmp_path):
    """One iteration at n = 2000 (HER future, the default buffer): the resident memory it adds to
    the process, against the estimate of the same run."""
    import subprocess
    import sys

    script = tmp_path / "run.py"
    script.write_text("""
import resource, torch
from bitflip_lib.config import make_config
from bitflip_lib.trainer import memory_estimate, train
config = make_config(n=2000, max_iterations=1, num_eval_agents=16, gradient_steps=1, device="cpu")
estimate = memory_estimate(config).total
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
train(config, progress=False)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before, estimate)
""")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    grown, estimate = map(int, done.stdout.split())
    assert estimate / 2 <= grown <= 2 * estimate, (grown, estimate)
