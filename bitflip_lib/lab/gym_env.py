"""The course's bit-flipping task behind Gymnasium's API, for stable-baselines3 and other libraries.

Two classes, both driven by the rules of :mod:`bitflip_lib.env` (the flip, the reward, the draw
of starts and goals), so they behave exactly like :class:`~bitflip_lib.env.BitFlipEnv`:

* :class:`BitFlipGoalEnv`, one agent, with the goal-conditioned convention that HER libraries
  expect: a ``Dict`` observation with ``observation`` (the bits), ``achieved_goal`` (the bits
  again: in this task the state *is* what was achieved) and ``desired_goal``; a vectorised
  :meth:`~BitFlipGoalEnv.compute_reward`; ``terminated`` on reaching the goal and ``truncated``
  at the step limit (n steps by default). Registered as ``"BitFlip-v0"``, so after
  ``import bitflip_lib.lab.gym_env``, ``gymnasium.make("BitFlip-v0", n=15)`` works.
* :class:`BitFlipVectorEnv`, a Gymnasium vector environment of ``num_envs`` agents stepped as one
  batch of torch tensors (on any device), with next-step autoreset like Gymnasium's own vector
  environments: a user of vector environments keeps the batched environment's speed.

Observations are ``int8`` arrays of zeros and ones; actions are bit indices. Gymnasium is an
optional dependency of the course (``pip install -e ".[peers]"``).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

try:
    import gymnasium as gym
    from gymnasium import spaces
    from gymnasium.vector import AutoresetMode, VectorEnv
    from gymnasium.vector.utils import batch_space
except ImportError as err:  # pragma: no cover - depends on what is installed
    raise ImportError(
        "bitflip_lib.lab.gym_env needs Gymnasium: pip install -e '.[peers]' (or pip install gymnasium)"
    ) from err

from bitflip_lib.env import BitFlipEnv, check_seed, flip_bits, goal_reached, hamming_distance, random_bits, random_goals
from bitflip_lib.runtime.budget import check_memory, vector_env_memory
from bitflip_lib.runtime.device import default_device

__all__ = [
    "BitFlipGoalEnv", "BitFlipVectorEnv", "compute_reward", "ENV_ID",
]

ENV_ID = "BitFlip-v0"


def _goal_space(n: int) -> spaces.Dict:
    bits = spaces.MultiBinary(n)
    return spaces.Dict({"observation": bits, "achieved_goal": bits, "desired_goal": bits})


def _check_n_steps(n: Any, max_steps: Any) -> None:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be an integer >= 1 (the number of bits), got {n!r}")
    if max_steps is not None and (isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1):
        raise ValueError(f"max_steps must be an integer >= 1 or None (meaning n), got {max_steps!r}")


def compute_reward(achieved_goal: np.ndarray, desired_goal: np.ndarray) -> np.ndarray:
    """The task's reward for any batch of goals: 1.0 where all bits match, else 0.0 (float32).

    Accepts one goal pair (shape ``[n]``, returns a 0-d array) or a batch (``[..., n]``): HER
    replay buffers recompute rewards for relabelled goals with it.
    """
    achieved = torch.as_tensor(np.asarray(achieved_goal))
    desired = torch.as_tensor(np.asarray(desired_goal))
    return goal_reached(achieved, desired).numpy().astype(np.float32)


class BitFlipGoalEnv(gym.Env):
    """One n-bit flipping episode at a time, as a goal-conditioned Gymnasium environment.

    Args:
        n: number of bits (n >= 1).
        max_steps: step limit of an episode (default n, as in the course).
        render_mode: ``"ansi"`` renders the state and goal as a line of text, or None.

    The environment underneath is a :class:`~bitflip_lib.env.BitFlipEnv` with one agent on the
    CPU; ``reset(seed=s)`` reseeds its random generator, so a seed fixes every start and goal.
    """

    metadata = {"render_modes": ["ansi"]}

    def __init__(self, n: int = 15, max_steps: int | None = None, render_mode: str | None = None) -> None:
        _check_n_steps(n, max_steps)
        if render_mode not in (None, "ansi"):
            raise ValueError(f"render_mode must be None or 'ansi', got {render_mode!r}")
        self.n = n
        self.render_mode = render_mode
        self._env = BitFlipEnv(n, num_agents=1, max_steps=max_steps, device="cpu", seed=0)
        self.max_steps = self._env.max_steps
        self.observation_space = _goal_space(n)
        self.action_space = spaces.Discrete(n)

    def _observation(self) -> dict[str, np.ndarray]:
        state = self._env.state[0].numpy().astype(np.int8)
        return {"observation": state, "achieved_goal": state.copy(),
                "desired_goal": self._env.goal[0].numpy().astype(np.int8)}

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """Draw a new start and goal (they differ: every episode needs at least one flip)."""
        check_seed(seed)
        super().reset(seed=seed)
        if seed is not None:
            self._env.generator.manual_seed(int(seed))
        self._env.reset()
        return self._observation(), {"distance": int(self._env.distance[0])}

    def step(self, action):
        """Flip bit ``action``; reward 1.0 on the step that reaches the goal."""
        if isinstance(action, (bool, np.bool_)) or not self.action_space.contains(action):  # True is not bit 1
            raise ValueError(f"action must be a bit index, an integer in [0, {self.n - 1}], got {action!r} "
                             f"(a {type(action).__name__})")
        result = self._env.step(torch.tensor([int(action)]))
        terminated = bool(result.done[0])
        truncated = not terminated and self._env.t >= self.max_steps
        info = {"distance": int(self._env.distance[0]), "is_success": terminated}
        return self._observation(), float(result.reward[0]), terminated, truncated, info

    def compute_reward(self, achieved_goal, desired_goal, info) -> np.ndarray:
        """Vectorised reward for (relabelled) goals; ``info`` is unused (the reward needs only goals)."""
        return compute_reward(achieved_goal, desired_goal)

    def render(self) -> str | None:
        if self.render_mode != "ansi":
            return None
        bits = lambda row: "".join(str(int(b)) for b in row)  # noqa: E731
        return f"state {bits(self._env.state[0])}  goal {bits(self._env.goal[0])}  distance {int(self._env.distance[0])}"


class BitFlipVectorEnv(VectorEnv):
    """``num_envs`` bit-flipping agents stepped as one batch of torch tensors, with next-step autoreset.

    Args:
        num_envs: agents in the batch.
        n: number of bits.
        max_steps: step limit of each agent's episode (default n).
        device: torch device of the batch (default: CUDA when available, else CPU).

    Each agent runs its own episode: when one reaches its goal (``terminated``) or its step limit
    (``truncated``), the next call to :meth:`step` ignores its action and starts it afresh
    (Gymnasium's next-step autoreset), while the others go on. The flip, the reward and the draw
    of starts and goals are :mod:`bitflip_lib.env`'s own functions; only the per-agent episode
    bookkeeping lives here. Observations come back as NumPy ``int8`` arrays batched by
    :func:`gymnasium.vector.utils.batch_space`.
    """

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(self, num_envs: int = 16, n: int = 15, max_steps: int | None = None,
                 device: str | torch.device | None = None) -> None:
        _check_n_steps(n, max_steps)
        if isinstance(num_envs, bool) or not isinstance(num_envs, int) or num_envs < 1:
            raise ValueError(f"num_envs must be an integer >= 1, got {num_envs!r}")
        self.num_envs = num_envs
        self.n = n
        self.max_steps = n if max_steps is None else max_steps
        self.device = default_device(device)
        check_memory(vector_env_memory(num_envs, n), self.device)  # before any batch (or batched space) is made
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(0)
        self.single_observation_space = _goal_space(n)
        self.single_action_space = spaces.Discrete(n)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self._rows = torch.arange(num_envs, device=self.device)
        self.state = torch.zeros(num_envs, n, device=self.device)
        self.goal = torch.ones(num_envs, n, device=self.device)
        self.elapsed = torch.zeros(num_envs, dtype=torch.long, device=self.device)
        self._needs_reset = torch.zeros(num_envs, dtype=torch.bool, device=self.device)
        self._started = False

    def _observations(self) -> dict[str, np.ndarray]:
        state = self.state.cpu().numpy().astype(np.int8)
        return {"observation": state, "achieved_goal": state.copy(),
                "desired_goal": self.goal.cpu().numpy().astype(np.int8)}

    def _info(self) -> dict[str, np.ndarray]:
        return {"distance": hamming_distance(self.state, self.goal).cpu().numpy()}

    def _restart(self, rows: torch.Tensor) -> None:
        state = random_bits(len(rows), self.n, self.generator)
        self.state[rows] = state
        self.goal[rows] = random_goals(state, self.generator)
        self.elapsed[rows] = 0

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """Start every agent afresh; ``seed`` fixes every start and goal from here on."""
        check_seed(seed)
        super().reset(seed=seed)
        if seed is not None:
            self.generator.manual_seed(int(seed))
        self._restart(self._rows)
        self._needs_reset.zero_()
        self._started = True
        return self._observations(), self._info()

    def step(self, actions):
        """Flip bit ``actions[i]`` for every agent ``i`` whose episode is running; restart finished ones."""
        if not self._started:
            raise RuntimeError("call reset() before step()")
        actions = torch.as_tensor(np.asarray(actions), device=self.device)
        if tuple(actions.shape) != (self.num_envs,) or actions.dtype.is_floating_point or actions.dtype == torch.bool:
            raise ValueError(f"actions must be {self.num_envs} integer bit indices, got shape {tuple(actions.shape)} "
                             f"and dtype {actions.dtype}")
        actions = actions.long()
        if bool(((actions < 0) | (actions >= self.n)).any()):
            raise ValueError(f"actions must be bit indices in [0, {self.n - 1}], got {actions.tolist()}")
        running = ~self._needs_reset
        self.state = flip_bits(self.state, actions, running)
        self.elapsed = self.elapsed + running.long()
        terminated = running & goal_reached(self.state, self.goal)
        truncated = running & ~terminated & (self.elapsed >= self.max_steps)
        restarting = torch.nonzero(~running).flatten()
        if len(restarting):
            self._restart(restarting)
        self._needs_reset = terminated | truncated
        info = {**self._info(), "is_success": terminated.cpu().numpy()}
        return (self._observations(), terminated.float().cpu().numpy(), terminated.cpu().numpy(),
                truncated.cpu().numpy(), info)

    def compute_reward(self, achieved_goal, desired_goal, info) -> np.ndarray:
        """Vectorised reward for (relabelled) goals, as :meth:`BitFlipGoalEnv.compute_reward`."""
        return compute_reward(achieved_goal, desired_goal)


if ENV_ID not in gym.registry:
    gym.register(id=ENV_ID, entry_point=BitFlipGoalEnv, kwargs={"n": 15},
                 vector_entry_point=BitFlipVectorEnv)
