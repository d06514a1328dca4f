"""HER relabelling: every relabelled transition obeys the environment's reward rule, and goals come
from the right part of the episode."""
import pytest
import torch

from bitflip_lib import BitFlipEnv, goal_reached
from bitflip_lib.her import HER_STRATEGIES, her_relabel
from bitflip_lib.replay import EpisodeBatch
from bitflip_lib.trainer import play_episode


def play_random_episode(n=6, agents=32, seed=0) -> EpisodeBatch:
    g = torch.Generator().manual_seed(seed)
    return play_episode(BitFlipEnv(n, agents, seed=seed), lambda state, goal: torch.randint(0, n, (agents,), generator=g))


def locate(episode: EpisodeBatch, state, action, next_state):
    """(t, b) of the counted step with this state, action and next state (unique enough for tests)."""
    for t, b in zip(*episode.step_index()):
        if (int(episode.actions[t, b]) == int(action) and torch.equal(episode.states[t, b], state)
                and torch.equal(episode.states[t + 1, b], next_state)):
            yield int(t), int(b)


@pytest.mark.parametrize("strategy", [s for s in HER_STRATEGIES if s != "none"])
def test_rewards_and_dones_follow_the_environment_rule(strategy):
    ep = play_random_episode(seed=1)
    out = her_relabel(ep, strategy, k=3, generator=torch.Generator().manual_seed(0))
    assert len(out) > 0
    expected = goal_reached(out.next_state, out.goal).float()
    assert torch.equal(out.reward, expected)
    assert torch.equal(out.done, expected)
    assert out.reward.sum() > 0  # hindsight goals make rewards appear


def test_future_goals_come_from_the_same_episode_at_or_after_the_step():
    ep = play_random_episode(n=5, agents=8, seed=2)
    out = her_relabel(ep, "future", k=4, generator=torch.Generator().manual_seed(1))
    assert len(out) == 4 * int(ep.active.sum())
    lengths = ep.lengths
    for i in range(len(out)):
        matches = list(locate(ep, out.state[i], out.action[i], out.next_state[i]))
        assert matches, "relabelled transition not found in the episode"
        ok = False
        for t, b in matches:
            later = ep.states[t + 1 : int(lengths[b]) + 1, b]  # states reached at or after step t
            ok = ok or bool((later == out.goal[i]).all(1).any())
        assert ok, f"goal of transition {i} was not reached at or after its step in the same episode"


def test_final_uses_last_achieved_state_and_episode_any_state():
    ep = play_random_episode(n=5, agents=8, seed=3)
    final = her_relabel(ep, "final")
    t, b = ep.step_index()
    assert torch.equal(final.goal, ep.states[ep.lengths[b], b])
    episode = her_relabel(ep, "episode", k=2, generator=torch.Generator().manual_seed(0))
    assert len(episode) == 2 * len(t)


def test_writeup30_whole_relabels_about_30_percent_of_trajectories_with_one_goal_each():
    ep = play_random_episode(n=40, agents=500, seed=4)  # 40 random bits: steps are unique to their agent
    key = lambda s, s2: bytes(s.to(torch.uint8).tolist()) + bytes(s2.to(torch.uint8).tolist())  # noqa: E731
    owner = {key(ep.states[t, b], ep.states[t + 1, b]): int(b) for t, b in zip(*ep.step_index())}
    out = her_relabel(ep, "writeup30-whole", generator=torch.Generator().manual_seed(0))
    goals: dict[int, set] = {}
    for i in range(len(out)):
        goals.setdefault(owner[key(out.state[i], out.next_state[i])], set()).add(bytes(out.goal[i].to(torch.uint8).tolist()))
    assert 0.2 < len(goals) / 500 < 0.4  # 30% +- 4.9 standard deviations
    assert all(len(g) == 1 for g in goals.values()), "a relabelled trajectory must get one goal for all its steps"
    for b, (goal,) in ((b, g) for b, g in goals.items()):
        achieved = {bytes(ep.states[t, b].to(torch.uint8).tolist()) for t in range(1, int(ep.lengths[b]) + 1)}
        assert goal in achieved
    relabelled_steps = sum(int(ep.lengths[b]) for b in goals)
    assert len(out) == relabelled_steps  # every step of a picked trajectory, once


def writeup_code_relabelling(episode: EpisodeBatch, seed: int) -> list[tuple]:
    """The write-up's 30% HER as its code does it, loop by loop (src/agents/agent_dqn_target_her.py,
    lines 25-63 of louis845/BitSeqRLToyProblem): pick each trajectory with probability 0.3, give
    it one goal, the next state of a uniformly drawn valid step (lines 39-43), then walk the steps
    in order and keep each while no state so far, its own start included, equals that goal (lines
    46-51). The random draws are the library's (one uniform per agent for the pick, one for the
    step), so the same generator seed picks the same trajectories and goals."""
    generator = torch.Generator().manual_seed(seed)
    lengths = episode.lengths.tolist()
    picks = (torch.rand(len(lengths), generator=generator) < 0.3).tolist()
    draws = torch.rand(len(lengths), generator=generator).tolist()
    goals = {b: episode.states[min(int(u * L), L - 1) + 1, b] for b, (u, L) in enumerate(zip(draws, lengths))
             if picks[b] and L > 0}
    still_valid = {b: True for b in goals}
    kept = []
    for t in range(episode.actions.shape[0]):
        for b, goal in goals.items():
            still_valid[b] = still_valid[b] and t < lengths[b] and not torch.equal(episode.states[t, b], goal)
            if still_valid[b]:
                reward = float(torch.equal(episode.states[t + 1, b], goal))
                kept.append((t, b, bytes(goal.tolist()), reward))
    return kept


@pytest.mark.parametrize("n, seed", [(3, 0), (3, 1), (4, 2), (8, 3)])
def test_writeup30_keeps_what_the_writeup_code_keeps(n, seed):
    # At n = 3 random flips revisit states often, so goals reached before their drawn step and
    # trajectories that come back to their start both occur.
    ep = play_random_episode(n=n, agents=200, seed=seed)
    out = her_relabel(ep, "writeup30", generator=torch.Generator().manual_seed(seed))
    expected = writeup_code_relabelling(ep, seed)
    assert len(out) == len(expected) > 0
    t, b = zip(*[(t, b) for t, b, _, _ in expected])
    assert torch.equal(out.state, ep.states[list(t), list(b)])
    assert torch.equal(out.next_state, ep.states[[i + 1 for i in t], list(b)])
    assert [bytes(g.tolist()) for g in out.goal] == [goal for _, _, goal, _ in expected]
    assert out.reward.tolist() == [reward for _, _, _, reward in expected]
    # Each relabelled trajectory ends on its goal: exactly one reward per picked trajectory that kept a step.
    assert int(out.reward.sum()) == len({b for _, b, _, _ in expected})


def test_writeup30_stores_a_prefix_of_what_writeup30_whole_stores():
    ep = play_random_episode(n=3, agents=300, seed=5)
    part = her_relabel(ep, "writeup30", generator=torch.Generator().manual_seed(7))
    whole = her_relabel(ep, "writeup30-whole", generator=torch.Generator().manual_seed(7))
    assert 0 < len(part) < len(whole)  # the same picks and goals, cut where the goal is first reached
    assert int(part.reward.sum()) <= int(whole.reward.sum())


def test_none_and_bad_arguments():
    ep = play_random_episode()
    assert len(her_relabel(ep, "none")) == 0
    with pytest.raises(ValueError, match="unknown HER strategy"):
        her_relabel(ep, "sometimes")
    with pytest.raises(ValueError, match="k"):
        her_relabel(ep, "future", k=0)
