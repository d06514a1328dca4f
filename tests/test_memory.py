"""Heap trimming: it runs when the resident size has grown past the margin, and can be switched off."""
from __future__ import annotations

import sys

import pytest
import torch

import bitflip_lib.runtime.memory as memory
from bitflip_lib.networks import make_network
from bitflip_lib.trainer import evaluate


@pytest.fixture
def fake_heap(monkeypatch):
    """A fake resident size (``state["rss"]``) and a fake ``malloc_trim`` that counts its calls."""
    state = {"rss": 500.0, "trims": 0}

    def fake_trim(_pad):
        state["trims"] += 1
        return 1

    monkeypatch.setattr(memory, "_malloc_trim", fake_trim)
    monkeypatch.setattr(memory, "resident_memory_mb", lambda: state["rss"])
    monkeypatch.setattr(memory, "_rss_after_trim", None)
    monkeypatch.delenv(memory.TRIM_ENV_VAR, raising=False)
    return state


def test_trims_once_growth_passes_the_margin(fake_heap):
    assert memory.trim_if_grown(margin_mb=100) is True  # the first call sets the baseline
    fake_heap["rss"] = 590.0
    assert memory.trim_if_grown(margin_mb=100) is False
    fake_heap["rss"] = 610.0
    assert memory.trim_if_grown(margin_mb=100) is True
    assert fake_heap["trims"] == 2


def test_baseline_follows_memory_given_back(fake_heap):
    memory.trim_if_grown(margin_mb=100)
    fake_heap["rss"] = 200.0  # e.g. a large replay buffer was freed
    assert memory.trim_if_grown(margin_mb=100) is False
    fake_heap["rss"] = 350.0  # 150 above the new low, although below the first baseline
    assert memory.trim_if_grown(margin_mb=100) is True


@pytest.mark.parametrize("value", ["0", "off", "False"])
def test_environment_variable_switches_trimming_off(fake_heap, monkeypatch, value):
    monkeypatch.setenv(memory.TRIM_ENV_VAR, value)
    assert memory.trimming_enabled() is False
    assert memory.trim_if_grown() is False and memory.release_freed_memory() is False
    assert fake_heap["trims"] == 0


def test_without_malloc_trim_nothing_happens(monkeypatch):
    monkeypatch.setattr(memory, "_malloc_trim", None)
    assert memory.trimming_enabled() is False
    assert memory.trim_if_grown() is False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")
def test_resident_memory_is_measured_on_linux():
    assert memory.resident_memory_mb() > 10  # the interpreter plus torch


def test_cpu_evaluation_checks_the_heap(monkeypatch):
    calls = []
    monkeypatch.setattr(memory, "trim_if_grown", lambda: calls.append(1) or True)
    torch.manual_seed(0)
    evaluate(make_network("uvfa", 6), 6, num_agents=32, device="cpu")
    assert calls == [1]
    assert memory.trim_after_evaluation(torch.device("cuda", 0)) is False and calls == [1]  # a GPU's memory is not glibc's heap
    assert memory.trim_after_evaluation("cpu") is True and calls == [1, 1]
