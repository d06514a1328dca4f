"""The peer a student would pick instead: stable-baselines3's DQN with its HER replay buffer,
trained on the course's own task and timed beside the course's learner.

Both learners face the same task (random starts and random goals on n bits, n steps per episode:
:class:`~bitflip_lib.lab.gym_env.BitFlipGoalEnv`) and the same success criterion: a greedy evaluation
on 1024 fresh episodes after every 16 episodes of experience (one course iteration), and
"solved" once 5 evaluations in a row reach a success rate of at least 0.99. Time to solve is the
wall time from the start of training to the evaluation that completes the run of five,
evaluation included, for both.

``bitflip bench --peers`` (or :func:`run_peer_bench`) prints one line per run and the ratio of
the times. stable-baselines3 and Gymnasium are optional: ``pip install -e ".[peers]"``.
"""
from __future__ import annotations

import sys
import time
from collections.abc import Sequence

import numpy as np
import torch

from bitflip_lib.runtime import strict_json

# Two sets of SB3 settings: the ones its own test suite uses to show that DQN + HER solves bit
# flipping (stable_baselines3 tests/test_her.py, test_performance_her), and the ones its HER
# documentation shows (its defaults with four "future" goals per transition).
SB3_SETTINGS: dict[str, dict] = {
    "sb3-tests": dict(replay_buffer_kwargs=dict(n_sampled_goal=5, goal_selection_strategy="future"),
                      learning_rate=5e-4, train_freq=1, learning_starts=100, exploration_final_eps=0.02,
                      target_update_interval=500, batch_size=32, buffer_size=100_000),
    "sb3-docs": dict(replay_buffer_kwargs=dict(n_sampled_goal=4, goal_selection_strategy="future")),
}
EVAL_EPISODES = 1024
SOLVED_THRESHOLD = 0.99
SOLVED_WINDOW = 5
EPISODES_PER_EVALUATION = 16  # one course iteration: 16 training agents, one episode each


def _require_sb3():
    try:
        import stable_baselines3
    except ImportError as err:
        raise ImportError("the peer benchmark needs stable-baselines3: pip install -e '.[peers]'") from err
    return stable_baselines3


def make_sb3_dqn(n: int, settings: str = "sb3-tests", seed: int = 0):
    """SB3's DQN with ``HerReplayBuffer`` on the course's environment at n bits, on the CPU."""
    sb3 = _require_sb3()
    from stable_baselines3.her import HerReplayBuffer

    from bitflip_lib.lab.gym_env import BitFlipGoalEnv

    if settings not in SB3_SETTINGS:
        raise ValueError(f"settings must be one of {sorted(SB3_SETTINGS)}, got {settings!r}")
    kwargs = {key: (dict(value) if isinstance(value, dict) else value) for key, value in SB3_SETTINGS[settings].items()}
    model = sb3.DQN("MultiInputPolicy", BitFlipGoalEnv(n=n), replay_buffer_class=HerReplayBuffer, seed=seed,
                    device="cpu", **kwargs)
    # SB3's default logger makes an empty folder in the temporary directory on every learn();
    # a logger with no folder writes nothing (and prints nothing: the benchmark reports itself).
    from stable_baselines3.common.logger import Logger

    model.set_logger(Logger(folder=None, output_formats=[]))
    return model


def sb3_success_rate(model, n: int, episodes: int = EVAL_EPISODES, seed: int = 0) -> float:
    """Fraction of ``episodes`` fresh episodes that the model's greedy policy solves within n steps.

    All episodes run at once in a :class:`~bitflip_lib.lab.gym_env.BitFlipVectorEnv`; only each
    agent's first episode counts (the vector environment restarts finished agents).
    """
    from bitflip_lib.lab.gym_env import BitFlipVectorEnv

    envs = BitFlipVectorEnv(num_envs=episodes, n=n, device="cpu")
    obs, _ = envs.reset(seed=seed)
    solved = np.zeros(episodes, dtype=bool)
    finished = np.zeros(episodes, dtype=bool)
    while not finished.all():
        actions, _ = model.predict(obs, deterministic=True)
        obs, _, terminated, truncated, _ = envs.step(actions)
        solved |= terminated & ~finished
        finished |= terminated | truncated
    return float(solved.mean())


def sb3_time_to_solve(n: int, settings: str = "sb3-tests", seed: int = 0, max_seconds: float = 600.0,
                      max_timesteps: int = 150_000, eval_episodes: int = EVAL_EPISODES,
                      window: int = SOLVED_WINDOW, threshold: float = SOLVED_THRESHOLD) -> dict:
    """Train SB3's DQN + HER until solved (the course's criterion) or a budget runs out; return the figures.

    ``max_timesteps`` is the budget SB3 is told about (its exploration schedule decays over the
    first tenth of it, as SB3 does by default), ``max_seconds`` a wall-clock limit on top.
    Every 16 n environment steps (the data of one course iteration) the greedy policy is
    evaluated on ``eval_episodes`` fresh episodes; ``window`` evaluations in a row at
    ``threshold`` or better count as solved.
    """
    _require_sb3()
    from stable_baselines3.common.callbacks import BaseCallback

    torch.manual_seed(seed)
    model = make_sb3_dqn(n, settings, seed)
    every = EPISODES_PER_EVALUATION * n
    state = {"streak": 0, "evaluations": 0, "best": 0.0, "solved": False}
    start = time.perf_counter()

    class SolvedCallback(BaseCallback):
        def _on_step(self) -> bool:
            if self.num_timesteps % every:
                return time.perf_counter() - start < max_seconds
            rate = sb3_success_rate(self.model, n, episodes=eval_episodes, seed=seed + 1000 + state["evaluations"])
            state["evaluations"] += 1
            state["best"] = max(state["best"], rate)
            state["streak"] = state["streak"] + 1 if rate >= threshold else 0
            state["solved"] = state["streak"] >= window
            return not state["solved"] and time.perf_counter() - start < max_seconds

    model.learn(total_timesteps=max_timesteps, callback=SolvedCallback())
    seconds = time.perf_counter() - start
    return {"learner": f"SB3 DQN + HER ({settings})", "n": n, "seed": seed, "solved": state["solved"],
            "seconds": round(seconds, 2), "timesteps": int(model.num_timesteps),
            "iterations": state["evaluations"], "best_success": state["best"]}


def course_time_to_solve(n: int, seed: int = 0, arch: str = "mlp", max_seconds: float = 600.0) -> dict:
    """The course's learner (default preset, HER future, the given network) on the same task and criterion."""
    from bitflip_lib.config import make_config
    from bitflip_lib.trainer import train

    config = make_config("default", n=n, arch=arch, her="future", seed=seed, device="cpu", max_seconds=max_seconds)
    result = train(config, progress=False)
    summary = result.summary()
    return {"learner": f"course {arch.upper()} + HER (default preset)", "n": n, "seed": seed,
            "solved": summary["solved_at"] is not None, "seconds": round(result.wall_seconds, 2),
            "timesteps": result.iterations * EPISODES_PER_EVALUATION * n, "iterations": result.iterations,
            "best_success": max(h["success_rate"] for h in result.history if h.get("success_rate") is not None)}


def run_peer_bench(ns: Sequence[int] = (15, 20), seed: int = 0, settings: Sequence[str] = ("sb3-tests", "sb3-docs"),
                   max_seconds: float = 600.0, as_json: bool = False, out=sys.stdout) -> list[dict]:
    """Time SB3 and the course's learner one after the other at each n; print each run and the ratios.

    Runs on one CPU thread (``torch.set_num_threads(1)``) so that neither learner gets more of
    the machine than the other. A learner that does not solve within ``max_seconds`` is reported
    as not solved, and its ratio as a lower bound.
    """
    torch.set_num_threads(1)
    rows = []
    for n in ns:
        course = course_time_to_solve(n, seed=seed, max_seconds=max_seconds)
        rows.append(course)
        for name in settings:
            peer = sb3_time_to_solve(n, name, seed=seed, max_seconds=max_seconds)
            bound = "" if peer["solved"] else ">= "
            peer["ratio_to_course"] = round(peer["seconds"] / course["seconds"], 2) if course["solved"] else None
            peer["ratio_is_lower_bound"] = not peer["solved"]
            rows.append(peer)
            if not as_json:
                print(f"n = {n}: {peer['learner']}: {'solved' if peer['solved'] else 'not solved'} in "
                      f"{peer['seconds']:.1f} s ({peer['timesteps']} steps, best {peer['best_success']:.3f}); "
                      f"time ratio SB3 / course: {bound}{peer['ratio_to_course']}", file=out)
        if not as_json:
            print(f"n = {n}: {course['learner']}: {'solved' if course['solved'] else 'not solved'} in "
                  f"{course['seconds']:.1f} s ({course['iterations']} iterations, best {course['best_success']:.3f})",
                  file=out)
    if as_json:
        print(strict_json.dumps({"torch": torch.__version__, "threads": 1, "runs": rows}), file=out)
    return rows
