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
