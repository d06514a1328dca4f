"""Smoke test of the benchmark code paths at minimal sizes (no timing assertions)."""
from __future__ import annotations

import json

import pytest

from bitflip_lib.lab.bench import (
    bench,
    env_throughput,
    format_bench,
    memory_growth,
    run_bench,
    seconds_per_iteration,
    time_to_solve,
)


def test_env_throughput_is_a_positive_rate():
    assert env_throughput(6, 8, seconds=0.01, device="cpu") > 0


def test_seconds_per_iteration_runs_every_architecture():
    for arch in ("har", "mlp", "uvfa"):
        assert seconds_per_iteration(arch, n=4, iterations=1, device="cpu") >= 0


def test_time_to_solve_reports_each_seed():
    figures = time_to_solve(4, "har", "future", seeds=(0, 1), device="cpu", max_iterations=3, num_eval_agents=16,
                            gradient_steps=2)
    assert [r["seed"] for r in figures["runs"]] == [0, 1]
    assert 0 <= figures["solved"] <= 2
    assert (figures["median_solved_at"] is None) == (figures["solved"] == 0)


def test_bench_json_and_table(capsys):
    code = run_bench(quick=True, device="cpu", seeds=1, as_json=True, skip=("iteration", "har50", "har1024", "uvfa15", "memory"))
    assert code == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["quick"] is True and figures["device"].startswith("cpu")
    assert set(figures["env_steps_per_second"]["agents"]) == {"16", "256"}
    text = format_bench(figures)
    assert "agent-steps/s" in text and "QUICK" in text


def test_bench_rejects_unknown_sections():
    with pytest.raises(ValueError, match="unknown bench section"):
        bench(quick=True, skip=("gpu-magic",))


def test_memory_growth_reports_start_peak_and_end(monkeypatch):
    readings = iter(range(100, 10_000, 7))  # a resident size that keeps growing, one reading per call
    monkeypatch.setattr("bitflip_lib.lab.bench.resident_memory_mb", lambda: float(next(readings)))
    figures = memory_growth(n=4, iterations=3, device="cpu")
    assert figures["iterations"] == 3 and figures["arch"] == "uvfa"
    assert figures["rss_start_mb"] == 100
    assert figures["rss_peak_mb"] == figures["rss_end_mb"] > figures["rss_start_mb"]
    assert "resident memory" in format_bench({"device": "cpu", "torch": "x", "version": "y", "quick": True,
                                              "memory": figures})
