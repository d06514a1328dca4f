"""The Gymnasium environments: Gymnasium's and stable-baselines3's checkers, the same dynamics as
BitFlipEnv, next-step autoreset, and SB3's DQN + HER learning the task at a small n."""
from __future__ import annotations

import numpy as np
import pytest
import torch

gym = pytest.importorskip("gymnasium", reason="Gymnasium is an optional extra: pip install -e '.[peers]'")

from gymnasium.utils.env_checker import check_env as gym_check_env  # noqa: E402
from gymnasium.utils.passive_env_checker import check_obs  # noqa: E402

from bitflip_lib.env import BitFlipEnv  # noqa: E402
from bitflip_lib.lab.gym_env import ENV_ID, BitFlipGoalEnv, BitFlipVectorEnv  # noqa: E402


def test_gymnasium_make_finds_the_registered_id():
    env = gym.make(ENV_ID, n=7)
    obs, info = env.reset(seed=3)
    assert set(obs) == {"observation", "achieved_goal", "desired_goal"}
    assert obs["observation"].shape == (7,) and obs["observation"].dtype == np.int8
    assert info["distance"] >= 1


def test_gymnasium_checker_passes_on_the_single_env():
    gym_check_env(BitFlipGoalEnv(n=6), skip_render_check=False)


def test_sb3_checker_passes_on_the_single_env():
    sb3_env_checker = pytest.importorskip("stable_baselines3.common.env_checker")
    sb3_env_checker.check_env(BitFlipGoalEnv(n=6), warn=True)


def test_single_env_plays_the_same_episode_as_bitflipenv():
    env = BitFlipGoalEnv(n=9)
    obs, _ = env.reset(seed=5)
    reference = BitFlipEnv(9, num_agents=1, device="cpu", seed=5)
    state, goal = reference.reset()
    assert np.array_equal(obs["observation"], state[0].numpy()) and np.array_equal(obs["desired_goal"], goal[0].numpy())
    rng = np.random.default_rng(0)
    for t in range(9):
        action = int(rng.integers(9))
        obs, reward, terminated, truncated, info = env.step(action)
        ref = reference.step(torch.tensor([action]))
        assert np.array_equal(obs["observation"], ref.state[0].numpy())
        assert reward == float(ref.reward[0]) and terminated == bool(ref.done[0])
        assert truncated == (not terminated and t == 8)
        assert env.compute_reward(obs["achieved_goal"], obs["desired_goal"], info) == reward
        if terminated or truncated:
            break


def test_reset_seed_fixes_the_episode_and_bad_actions_are_refused():
    env = BitFlipGoalEnv(n=12)
    first, _ = env.reset(seed=11)
    env.step(0)
    again, _ = env.reset(seed=11)
    assert all(np.array_equal(first[k], again[k]) for k in first)
    with pytest.raises(ValueError, match="bit index"):
        env.step(12)
    with pytest.raises(ValueError, match="n must be"):
        BitFlipGoalEnv(n=0)


def test_compute_reward_is_vectorised_over_relabelled_goals():
    env = BitFlipGoalEnv(n=4)
    achieved = np.array([[0, 1, 1, 0], [1, 1, 1, 1], [0, 0, 0, 0]], dtype=np.int8)
    desired = np.array([[0, 1, 1, 0], [1, 1, 1, 0], [0, 0, 0, 0]], dtype=np.int8)
    assert env.compute_reward(achieved, desired, {}).tolist() == [1.0, 0.0, 1.0]


def test_vector_env_observations_fit_its_spaces_and_autoreset_next_step():
    envs = BitFlipVectorEnv(num_envs=32, n=3, device="cpu")
    obs, info = envs.reset(seed=0)
    check_obs(obs, envs.observation_space, "reset")
    rng = np.random.default_rng(1)
    ended = np.zeros(32, dtype=bool)
    restarts = 0
    for _ in range(20):
        before = {k: v.copy() for k, v in obs.items()}
        actions = rng.integers(3, size=32)
        obs, reward, terminated, truncated, info = envs.step(actions)
        check_obs(obs, envs.observation_space, "step")
        # Agents that ended last step restart now: no reward, a fresh start that differs from its goal.
        assert not reward[ended].any() and not terminated[ended].any() and not truncated[ended].any()
        assert (obs["observation"][ended] != obs["desired_goal"][ended]).any(axis=1).all()
        restarts += int(ended.sum())
        # The others flipped exactly the chosen bit, and are rewarded exactly when they reach the goal.
        going = ~ended
        expected = before["observation"].copy()
        rows = np.nonzero(going)[0]
        expected[rows, actions[rows]] ^= 1
        assert np.array_equal(obs["observation"][going], expected[going])
        assert np.array_equal(obs["desired_goal"][going], before["desired_goal"][going])
        assert np.array_equal(reward[going], envs.compute_reward(obs["achieved_goal"], obs["desired_goal"], info)[going])
        assert np.array_equal(terminated, reward == 1.0)
        ended = terminated | truncated
    assert restarts > 0
    assert envs.elapsed.max() <= 3


def test_vector_env_truncates_at_its_step_limit():
    envs = BitFlipVectorEnv(num_envs=4, n=6, max_steps=2, device="cpu")
    obs, _ = envs.reset(seed=2)
    # Flip the same bit twice: back where it started, never at the goal (starts differ from goals).
    _, _, term1, trunc1, _ = envs.step(np.zeros(4, dtype=np.int64))
    _, _, term2, trunc2, _ = envs.step(np.zeros(4, dtype=np.int64))
    assert not term1.any() and not trunc1.any()
    assert not term2.any() and trunc2.all()
    with pytest.raises(ValueError, match="integer bit indices"):
        envs.step(np.zeros(3))


def test_sb3_dqn_with_her_learns_the_course_env_at_small_n():
    pytest.importorskip("stable_baselines3", reason="stable-baselines3 is an optional extra: pip install -e '.[peers]'")
    from bitflip_lib.lab.peers import make_sb3_dqn, sb3_success_rate, sb3_time_to_solve

    untrained = sb3_success_rate(make_sb3_dqn(n=4, seed=0), n=4, episodes=512, seed=1)
    # SB3's own test settings, a budget of 3000 steps, greedy evaluations on 512 fresh random goals.
    run = sb3_time_to_solve(n=4, settings="sb3-tests", seed=0, max_timesteps=3000, eval_episodes=512,
                            window=1, threshold=0.95)
    assert untrained < 0.6
    assert run["solved"], run
    assert run["best_success"] >= 0.95


def test_sb3_training_leaves_nothing_in_the_temporary_directory(tmp_path, monkeypatch):
    """SB3's default logger makes an SB3-<date> folder in the temporary directory on every learn()."""
    pytest.importorskip("stable_baselines3", reason="stable-baselines3 is an optional extra: pip install -e '.[peers]'")
    import tempfile

    from bitflip_lib.lab.peers import make_sb3_dqn

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    make_sb3_dqn(n=3, seed=0).learn(200)
    assert not list(tmp_path.glob("SB3-*"))
