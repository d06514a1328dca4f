"""The device helpers and the one torch thread policy the library applies for every chapter."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from bitflip_lib.runtime import device as device_module
from bitflip_lib.runtime.device import configure_threads, describe_device


def _threads_in_fresh_process(env: dict[str, str], code: str = "") -> str:
    script = ("import torch\nfrom bitflip_lib.runtime.device import default_device, describe_device\n"
              f"{code}\ndefault_device()\nprint(describe_device('cpu'))")
    clean = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "BITFLIP_THREADS")}
    return subprocess.run([sys.executable, "-c", script], env={**clean, **env}, capture_output=True, text=True,
                          check=True).stdout.strip()


def test_describe_device_says_thread_in_the_singular_for_one():
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert describe_device("cpu") == "cpu (1 thread)"
        torch.set_num_threads(2)
        assert describe_device("cpu") == "cpu (2 threads)"
    finally:
        torch.set_num_threads(before)


def test_the_library_picks_one_thread_unless_told_otherwise():
    assert _threads_in_fresh_process({}) == "cpu (1 thread)"  # the policy, whatever the machine's cores
    assert _threads_in_fresh_process({"BITFLIP_THREADS": "2"}) == "cpu (2 threads)"
    assert _threads_in_fresh_process({"OMP_NUM_THREADS": "2"}) == "cpu (2 threads)"  # an explicit choice is kept
    chosen = _threads_in_fresh_process({}, "torch.set_num_threads(torch.get_num_threads() + 1)")
    assert chosen.endswith(" threads)") and chosen != "cpu (1 thread)"  # set before the first call: kept


def test_bad_thread_settings_get_a_clear_error(monkeypatch):
    monkeypatch.setattr(device_module, "_threads_configured", False)
    monkeypatch.setenv("BITFLIP_THREADS", "many")
    before = torch.get_num_threads()
    with pytest.raises(ValueError, match="BITFLIP_THREADS='many'"):
        configure_threads()
    with pytest.raises(ValueError, match="threads must be an integer >= 1"):
        configure_threads(0)
    assert torch.get_num_threads() == before
