"""Benchmark figures: how fast the environment steps and how fast the methods solve the task.

``bitflip bench`` (or :func:`run_bench`) measures, on the chosen device:

1. environment throughput in agent-steps per second at n = 50 with 16, 1024 and 16384 agents
   (uniformly random actions; every step checks the reward, episodes restart when over);
2. seconds per training iteration of each architecture at n = 50 (default settings, a few
   iterations after a warm-up one, evaluation included);
3. HER ``future`` + HAR at n = 50: iterations to solve and wall seconds, median over seeds;
4. HER ``future`` + HAR at n = 1024 (gamma = 1 - 1/n automatically): one seed;
5. vanilla UVFA at n = 15 with the write-up's settings, within a stated wall-clock budget
   (the full 3000-iteration run is in the stored sweep, ``results/writeup``);
6. resident memory of a default vanilla UVFA run at n = 40 over 150 iterations (start, peak,
   end), with glibc heap trimming as configured (``BITFLIP_MALLOC_TRIM=0`` switches it off, to
   compare; see :mod:`bitflip_lib.runtime.memory`).

``quick=True`` shrinks every size so the whole thing takes seconds (a smoke test of the code
paths, not figures to quote). Timings depend on the machine and on what else runs on it.
"""
from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Iterable

import torch

from bitflip_lib._version import __version__
from bitflip_lib.config import make_config
from bitflip_lib.env import BitFlipEnv
from bitflip_lib.networks import ARCHITECTURES
from bitflip_lib.runtime.device import default_device, describe_device
from bitflip_lib.runtime import strict_json
from bitflip_lib.runtime.memory import resident_memory_mb, trimming_enabled

SECTIONS = ("env", "iteration", "har50", "har1024", "uvfa15", "memory")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def env_throughput(n: int, num_agents: int, seconds: float = 1.0, device: str | torch.device | None = None,
                   seed: int = 0) -> float:
    """Agent-steps per second of :class:`BitFlipEnv` with random actions, measured over about ``seconds``."""
    device = default_device(device)
    generator = torch.Generator(device=device).manual_seed(seed)
    env = BitFlipEnv(n, num_agents, device=device, generator=generator)
    env.reset()
    for _ in range(3):  # warm-up
        env.step(torch.randint(n, (num_agents,), device=device, generator=generator))
    _sync(device)
    steps, start = 0, time.perf_counter()
    while True:
        for _ in range(20):
            if env.episode_over:
                env.reset()
            actions = torch.randint(n, (num_agents,), device=device, generator=generator)
            env.step(actions)
            steps += 1
        _sync(device)
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return steps * num_agents / elapsed


def seconds_per_iteration(arch: str, n: int = 50, iterations: int = 3, device: str | torch.device | None = None,
                          seed: int = 0) -> float:
    """Mean wall seconds of one default-settings training iteration (the first one, a warm-up, excluded)."""
    from bitflip_lib.trainer import train

    config = make_config("default", n=n, arch=arch, seed=seed, max_iterations=iterations + 1, early_stop=False,
                         device=str(default_device(device)))
    result = train(config, progress=False)
    wall = [h["wall_seconds"] for h in result.history]
    return (wall[-1] - wall[0]) / max(len(wall) - 1, 1)


def time_to_solve(n: int, arch: str = "har", her: str = "future", seeds: Iterable[int] = (0,), preset: str = "default",
                  device: str | torch.device | None = None, **overrides) -> dict:
    """Train ``seeds`` runs; returns per-seed ``solved_at``/wall seconds and their medians over solved seeds."""
    from bitflip_lib.trainer import train

    runs = []
    for seed in seeds:
        config = make_config(preset, n=n, arch=arch, her=her, seed=seed, device=str(default_device(device)), **overrides)
        result = train(config, progress=False)
        runs.append({"seed": seed, "solved_at": result.solved_at, "iterations": result.iterations,
                     "success_rate": result.final.get("success_rate"), "wall_seconds": round(result.wall_seconds, 2),
                     "stopped_by": result.stopped_by})
    solved = [r for r in runs if r["solved_at"] is not None]
    return {
        "n": n, "arch": arch, "her": her, "preset": preset, "overrides": overrides,
        "runs": runs,
        "solved": len(solved),
        "median_solved_at": statistics.median(r["solved_at"] for r in solved) if solved else None,
        "median_wall_seconds": statistics.median(r["wall_seconds"] for r in solved) if solved else None,
    }


def memory_growth(n: int = 40, iterations: int = 150, device: str | torch.device | None = None, seed: int = 0) -> dict:
    """Resident memory (MB) of this process during a default vanilla UVFA run: at the start, its peak, at the end.

    Evaluation (every iteration) is what fragments the heap, so this is the run that shows whether
    :mod:`bitflip_lib.runtime.memory` keeps it flat. None figures where ``/proc`` is missing (not Linux).
    """
    from bitflip_lib.trainer import train

    config = make_config("default", n=n, arch="uvfa", her="none", seed=seed, max_iterations=iterations,
                         early_stop=False, device=str(default_device(device)))
    start_mb = resident_memory_mb()
    samples: list[float] = []

    def record(_record: dict) -> None:
        rss = resident_memory_mb()
        if rss is not None:
            samples.append(rss)

    result = train(config, callbacks=[record], progress=False)
    return {
        "n": n, "arch": "uvfa", "her": "none", "iterations": result.iterations, "trimming": trimming_enabled(),
        "rss_start_mb": None if start_mb is None else round(start_mb),
        "rss_peak_mb": round(max(samples)) if samples else None,
        "rss_end_mb": round(samples[-1]) if samples else None,
        "seconds_per_iteration": round(result.wall_seconds / max(result.iterations, 1), 4),
    }


def bench(quick: bool = False, device: str | torch.device | None = None, seeds: int = 5,
          skip: Iterable[str] = (), uvfa_budget_seconds: float = 300.0, log=None) -> dict:
    """All benchmark figures as one JSON-ready dict (see the module docstring).

    ``log`` (e.g. ``print`` to stderr) is called with a line before each section.
    """
    skip = set(skip)
    unknown = skip - set(SECTIONS)
    if unknown:
        raise ValueError(f"unknown bench section(s) {sorted(unknown)}: choose from {', '.join(SECTIONS)}")
    if seeds < 1:
        raise ValueError(f"seeds must be >= 1, got {seeds}")
    device = default_device(device)
    say = log or (lambda _line: None)
    out: dict = {"device": describe_device(device), "torch": torch.__version__, "version": __version__,
                 "quick": quick, "threads": torch.get_num_threads()}
    n_env = 10 if quick else 50
    if "env" not in skip:
        sizes = (16, 256) if quick else (16, 1024, 16384)
        say(f"environment throughput, n = {n_env}, agents {sizes}")
        out["env_steps_per_second"] = {
            "n": n_env,
            "agents": {str(b): round(env_throughput(n_env, b, 0.2 if quick else 2.0, device)) for b in sizes},
        }
    if "iteration" not in skip:
        say(f"seconds per iteration, n = {n_env}, architectures {ARCHITECTURES}")
        out["seconds_per_iteration"] = {
            "n": n_env,
            "arch": {a: round(seconds_per_iteration(a, n_env, 1 if quick else 3, device), 4) for a in ARCHITECTURES},
        }
    if "har50" not in skip:
        n = 10 if quick else 50
        count = min(seeds, 2) if quick else seeds
        say(f"HER future + HAR at n = {n}, {count} seeds")
        out["her_har_50"] = time_to_solve(n, "har", "future", range(count), device=device,
                                         max_iterations=50 if quick else 3000)
    if "har1024" not in skip:
        n = 32 if quick else 1024
        say(f"HER future + HAR at n = {n}, one seed")
        out["her_har_1024"] = time_to_solve(n, "har", "future", (0,), device=device,
                                           max_iterations=50 if quick else 3000)
    if "uvfa15" not in skip:
        n = 5 if quick else 15
        budget = 5.0 if quick else uvfa_budget_seconds
        say(f"vanilla UVFA at n = {n}, write-up settings, budget {budget:.0f} s")
        run = time_to_solve(n, "uvfa", "none", (0,), preset="writeup", device=device, max_seconds=budget,
                            max_iterations=3000)
        run["budget_seconds"] = budget
        run["note"] = "full 3000-iteration runs over 3 seeds: results/writeup (bitflip table --results results/writeup)"
        out["vanilla_uvfa_15"] = run
    if "memory" not in skip:
        n, iterations = (10, 10) if quick else (40, 150)
        say(f"resident memory, vanilla UVFA at n = {n}, {iterations} iterations")
        out["memory"] = memory_growth(n, iterations, device)
    return out


def format_bench(figures: dict) -> str:
    """A human-readable table of :func:`bench` figures."""
    lines = [f"device: {figures['device']}   torch {figures['torch']}   bitflip_lib {figures['version']}"
             f"{'   (QUICK sizes: smoke test only)' if figures['quick'] else ''}"]
    if "env_steps_per_second" in figures:
        env = figures["env_steps_per_second"]
        lines.append(f"\nenvironment, n = {env['n']}, random actions (agent-steps/s)")
        for agents, rate in env["agents"].items():
            lines.append(f"  {int(agents):>6} agents  {rate:>14,.0f}")
    if "seconds_per_iteration" in figures:
        it = figures["seconds_per_iteration"]
        lines.append(f"\nseconds per training iteration, n = {it['n']}, default settings")
        for arch, seconds in it["arch"].items():
            lines.append(f"  {arch:<6} {seconds:8.3f} s")
    for key, title in (("her_har_50", "HER future + HAR"), ("her_har_1024", "HER future + HAR"),
                       ("vanilla_uvfa_15", "vanilla UVFA (write-up settings)")):
        if key not in figures:
            continue
        r = figures[key]
        lines.append(f"\n{title}, n = {r['n']}: solved {r['solved']}/{len(r['runs'])} seeds"
                     + (f", median {r['median_solved_at']} iterations, {r['median_wall_seconds']} s"
                        if r["solved"] else ""))
        if "budget_seconds" in r:
            lines.append(f"  budget {r['budget_seconds']:.0f} s; {r['note']}")
        for run in r["runs"]:
            lines.append(f"  seed {run['seed']}: solved_at {run['solved_at']}, {run['iterations']} iterations, "
                         f"final success {run['success_rate']}, {run['wall_seconds']} s ({run['stopped_by']})")
    if "memory" in figures:
        m = figures["memory"]
        lines.append(f"\nresident memory, default vanilla UVFA at n = {m['n']}, {m['iterations']} iterations "
                     f"(heap trimming {'on' if m['trimming'] else 'off'})")
        lines.append(f"  start {m['rss_start_mb']} MB, peak {m['rss_peak_mb']} MB, end {m['rss_end_mb']} MB; "
                     f"{m['seconds_per_iteration']} s per iteration")
    return "\n".join(lines)


def run_bench(quick: bool = False, device: str = "auto", seeds: int = 5, as_json: bool = False,
              skip: Iterable[str] = (), uvfa_budget_seconds: float = 300.0) -> int:
    """What ``bitflip bench`` does: measure, then print a table (or one JSON document)."""
    if uvfa_budget_seconds <= 0:
        raise ValueError(f"the UVFA budget must be positive seconds, got {uvfa_budget_seconds}")
    figures = bench(quick=quick, device=device, seeds=seeds, skip=skip, uvfa_budget_seconds=uvfa_budget_seconds,
                    log=lambda line: print(f"bench: {line}", file=sys.stderr, flush=True))
    print(strict_json.dumps(figures) if as_json else format_bench(figures), flush=True)
    return 0
