"""Checks for exercise 1: the environment step (bit flip, reward rule, done masking).

The student writes ``goal_reward(next_state, goal)`` and ``env_step(state, goal, done, action)``;
both are compared with :class:`bitflip_lib.env.BitFlipEnv`, the library's reference.
"""
from __future__ import annotations

from collections.abc import Mapping

import torch

from bitflip_lib.env import BitFlipEnv, flip_bits, goal_reached
from bitflip_lib.grading.helpers import devices, expect, expect_equal, expect_tensor, generator
from bitflip_lib.grading.model import Check, Exercise
from bitflip_lib.grading.remote import kind


def reference_step(state: torch.Tensor, goal: torch.Tensor, done: torch.Tensor, action: torch.Tensor):
    """What BitFlipEnv.step does, as a pure function: ``(next_state, reward, done, active)``."""
    active = ~done
    next_state = flip_bits(state, action, active)
    reward = (active & goal_reached(next_state, goal)).float()
    return next_state, reward, done | (reward > 0), active


def _random_case(n: int, batch: int, seed: int, device, done_fraction: float = 0.3):
    g = generator(seed, device)
    state = torch.randint(0, 2, (batch, n), generator=g, device=device).float()
    goal = torch.randint(0, 2, (batch, n), generator=g, device=device).float()
    # Put a third of the agents one flip from their goal so that rewards actually occur.
    near = torch.rand(batch, generator=g, device=device) < 0.35
    bit = torch.randint(0, n, (batch,), generator=g, device=device)
    one_off = goal.clone()
    rows = torch.arange(batch, device=device)
    one_off[rows, bit] = 1.0 - one_off[rows, bit]
    state = torch.where(near[:, None], one_off, state)
    action = torch.where(near & (torch.rand(batch, generator=g, device=device) < 0.7), bit,
                         torch.randint(0, n, (batch,), generator=g, device=device))
    done = torch.rand(batch, generator=g, device=device) < done_fraction
    return state, goal, done, action


def _call_step(ns: Mapping, state, goal, done, action):
    inputs = [x.clone() for x in (state, goal, done, action)]
    out = ns["env_step"](state, goal, done, action)
    expect(isinstance(out, tuple) and len(out) == 4,
           f"env_step must return a tuple (next_state, reward, done, active), got {kind(out)}"
           + (f" of length {len(out)}" if isinstance(out, tuple) else ""))
    for name, before, now in zip(("state", "goal", "done", "action"), inputs, (state, goal, done, action)):
        expect(torch.equal(before, now), f"env_step changed its input '{name}' in place: return new tensors instead")
    return out


def check_reward_rule(ns: Mapping) -> str:
    for device in devices():
        for n in (1, 4, 37):
            g = generator(n, device)
            goal = torch.randint(0, 2, (64, n), generator=g, device=device).float()
            state = torch.randint(0, 2, (64, n), generator=g, device=device).float()
            state[:20] = goal[:20]  # equal rows
            state[20:30] = goal[20:30]
            state[20:30, -1] = 1 - state[20:30, -1]  # one bit off in the last position
            expected = goal_reached(state, goal).float()
            got = expect_tensor(ns["goal_reward"](state, goal), f"goal_reward(n={n})", shape=(64,), dtype=torch.float32, device=device)
            expect_equal(got, expected, f"goal_reward(n={n}) (1.0 where all bits match, else 0.0)")
    return "reward 1 exactly where every bit matches"


def check_flip(ns: Mapping) -> str:
    for device in devices():
        for n in (1, 5, 33):
            state, goal, _, action = _random_case(n, 128, seed=10 + n, device=device)
            done = torch.zeros(128, dtype=torch.bool, device=device)
            next_state, *_ = _call_step(ns, state, goal, done, action)
            expected, *_ = reference_step(state, goal, done, action)
            expect_tensor(next_state, f"next_state (n={n})", shape=(128, n), dtype=torch.float32, device=device)
            expect_equal(next_state, expected, f"next_state (n={n}): only bit action[i] of row i flips")
    return "flips exactly the chosen bit"


def check_reward_and_done(ns: Mapping) -> str:
    for device in devices():
        state, goal, _, action = _random_case(8, 256, seed=3, device=device)
        done = torch.zeros(256, dtype=torch.bool, device=device)
        _, reward, new_done, active = _call_step(ns, state, goal, done, action)
        _, e_reward, e_done, e_active = reference_step(state, goal, done, action)
        expect_tensor(reward, "reward", shape=(256,), dtype=torch.float32, device=device)
        expect_tensor(new_done, "done", shape=(256,), dtype=torch.bool, device=device)
        expect_tensor(active, "active", shape=(256,), dtype=torch.bool, device=device)
        expect(bool(e_reward.sum() > 10), "internal: the test case should contain rewarded steps")
        expect_equal(reward, e_reward, "reward (1.0 on the step that reaches the goal)")
        expect_equal(new_done, e_done, "done (True once the goal is reached)")
        expect_equal(active, e_active, "active (True for agents that were not done before the step)")
    return "reward 1 and done on reaching the goal"


def check_masking(ns: Mapping) -> str:
    for device in devices():
        state, goal, done, action = _random_case(6, 256, seed=5, device=device, done_fraction=0.5)
        # Agents that are done sit on their goal, as they do in the environment.
        state = torch.where(done[:, None], goal, state)
        next_state, reward, new_done, active = _call_step(ns, state, goal, done, action)
        e_state, e_reward, e_done, e_active = reference_step(state, goal, done, action)
        expect_equal(next_state[done], e_state[done], "next_state of agents already done (they must not move)")
        expect_equal(reward[done], torch.zeros(int(done.sum()), device=device), "reward of agents already done (they earn nothing more)")
        expect(bool(new_done[done].all()), "done: an agent that was done must stay done")
        expect(not bool(active[done].any()), "active: agents that were already done must be inactive")
        expect_equal(next_state, e_state, "next_state with a mix of done and active agents")
        expect_equal(reward, e_reward, "reward with a mix of done and active agents")
        expect_equal(new_done, e_done, "done with a mix of done and active agents")
    return "done agents are frozen"


def check_episode(ns: Mapping) -> str:
    """Play whole random episodes with the student's step beside BitFlipEnv."""
    for device in devices():
        env = BitFlipEnv(8, num_agents=64, device=device, seed=11)
        state, goal = (x.clone() for x in env.reset())  # the environment updates its own tensors in place
        done = env.done.clone()
        g = generator(12, device)
        rewards = 0.0
        for t in range(env.max_steps):
            # Mostly good flips, so that many agents finish before the end.
            differs = (state != goal).float() + 0.05
            action = torch.multinomial(differs, 1, generator=g).squeeze(1)
            expected = env.step(action)
            state, reward, done, active = _call_step(ns, state, goal, done, action)
            expect_equal(state, expected.state, f"state after step {t} of a played episode")
            expect_equal(reward, expected.reward, f"reward at step {t} of a played episode")
            expect_equal(done, expected.done, f"done after step {t} of a played episode")
            expect_equal(active, expected.active, f"active at step {t} of a played episode")
            rewards += float(reward.sum())
        expect(rewards > 0, "internal: the played episodes should reach some goals")
    return "agrees with BitFlipEnv over whole episodes"


EXERCISE = Exercise(
    name="ex01_env_step",
    title="The environment step: flip, reward, done masking",
    required=("goal_reward", "env_step"),
    references=("bitflip_lib.env:goal_reached", "bitflip_lib.env:flip_bits", "bitflip_lib.env:flip_bits_",
                "bitflip_lib.env:BitFlipEnv.step"),
    checks=(
        Check("reward rule", check_reward_rule, uses=("goal_reward",)),
        Check("flips the chosen bit", check_flip, uses=("env_step",)),
        Check("reward and done", check_reward_and_done, uses=("env_step",)),
        Check("done agents are masked", check_masking, uses=("env_step",)),
        Check("whole episodes match BitFlipEnv", check_episode, uses=("env_step",)),
    ),
)
