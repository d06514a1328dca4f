"""The hindsight bound: how many steps the episode's own path took to each goal, and the TD
targets raised to what that path achieved (never above what is achievable)."""
import pytest
import torch

from bitflip_lib import BitFlipEnv
from bitflip_lib.cli import main as cli_main
from bitflip_lib.config import make_config
from bitflip_lib.dqn import td_target
from bitflip_lib.env import hamming_distance as hamming
from bitflip_lib.her import HER_STRATEGIES, her_relabel
from bitflip_lib.lab.runs import describe_overrides
from bitflip_lib.lab.studies import PathReplayBuffer, PathTransitions, StudyLearner, make_run_config, path_transitions
from bitflip_lib.networks import MLP
from bitflip_lib.replay import ReplayBuffer
from bitflip_lib.trainer import play_episode, train


def random_episode(n=6, agents=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return play_episode(BitFlipEnv(n, agents, seed=seed), lambda state, goal: torch.randint(0, n, (agents,), generator=g))


@pytest.mark.parametrize("strategy", [s for s in HER_STRATEGIES if s != "none"])
def test_steps_to_goal_are_paths_that_exist(strategy):
    episode = random_episode(seed=2)
    for batch in path_transitions(episode, strategy, 3, torch.Generator().manual_seed(1)):
        steps = batch.steps_to_goal
        assert steps is not None and steps.dtype == torch.long and steps.shape == (len(batch),)
        known = steps > 0
        # A path of `steps` flips reached the goal: the goal is at most that many bits away, and
        # after this step's flip at most steps - 1.
        assert bool((hamming(batch.state, batch.goal)[known] <= steps[known]).all())
        assert bool((hamming(batch.next_state, batch.goal)[known] <= steps[known] - 1).all())
        # (A path may pass its goal earlier than the step the goal was taken from: the count is
        # then an upper bound on the steps needed, and the bound it gives is looser, not wrong.)


@pytest.mark.parametrize("strategy", HER_STRATEGIES)
def test_path_transitions_are_the_played_and_relabelled_transitions_with_their_step_counts(strategy):
    # The same transitions, goals and draws as the core's: the study only adds the counts.
    episode = random_episode(n=5, agents=32, seed=7)
    played, relabelled = path_transitions(episode, strategy, 3, torch.Generator().manual_seed(4))
    core = her_relabel(episode, strategy, 3, torch.Generator().manual_seed(4))
    for mine, theirs in ((played, episode.transitions()), (relabelled, core)):
        for name in ("state", "goal", "action", "reward", "next_state", "done"):
            assert torch.equal(getattr(mine, name), getattr(theirs, name)), name


def test_future_always_knows_its_steps_and_played_episodes_only_when_they_succeeded():
    episode = random_episode(n=4, agents=128, seed=3)
    played, future = path_transitions(episode, "future", 4, torch.Generator().manual_seed(0))
    assert bool((future.steps_to_goal >= 1).all())  # every future goal lies on the path ahead
    t, b = episode.step_index()
    lengths = episode.lengths
    succeeded = (episode.states[lengths, torch.arange(128)] == episode.goal).all(1)
    assert torch.equal(played.steps_to_goal > 0, succeeded[b])
    assert torch.equal(played.steps_to_goal[succeeded[b]], (lengths[b] - t)[succeeded[b]])
    assert 0 < int(succeeded.sum()) < 128  # both kinds occur in this sample


def test_buffer_stores_steps_and_cat_keeps_them():
    episode = random_episode(n=5, agents=16, seed=4)
    played, relabelled = path_transitions(episode, "future", 2, torch.Generator().manual_seed(0))
    joined = PathTransitions.cat([played, relabelled])
    assert torch.equal(joined.steps_to_goal, torch.cat([played.steps_to_goal, relabelled.steps_to_goal]))
    buffer = PathReplayBuffer(5, capacity=len(joined))
    buffer.add(joined)
    sample = buffer.sample(4096, torch.Generator().manual_seed(0))
    assert isinstance(sample, PathTransitions)
    assert set(sample.steps_to_goal.tolist()) == set(joined.steps_to_goal.tolist())
    # The core's buffer and transitions know nothing of it.
    assert not hasattr(episode.transitions(), "steps_to_goal") and not hasattr(ReplayBuffer(5), "steps_to_goal")


def test_learner_raises_targets_to_the_path_value_and_no_further():
    torch.manual_seed(0)
    episode = random_episode(n=6, agents=64, seed=5)
    raw = PathTransitions.cat(path_transitions(episode, "future", 4, torch.Generator().manual_seed(2)))
    buffer = PathReplayBuffer(6, capacity=len(raw))
    buffer.add(raw)
    batch = buffer.sample(2048, torch.Generator().manual_seed(3))  # bits as float32, as training sees them
    gamma = 0.9
    plain, bounded = (StudyLearner(MLP(6, hidden=(16,)), gamma=gamma, hindsight_bound=on) for on in (False, True))
    bounded.online.load_state_dict(plain.online.state_dict())
    bounded.target.load_state_dict(plain.target.state_dict())
    with torch.no_grad():
        next_q = plain.target(batch.next_state, batch.goal)
    unbounded = td_target(batch.reward, batch.done, next_q, gamma, True, None)
    steps = batch.steps_to_goal
    path_value = torch.where(steps > 0, gamma ** (steps - 1).float(), torch.zeros(len(batch)))
    achievable = gamma ** hamming(batch.next_state, batch.goal).float()  # Q* of the action taken
    assert bool((path_value <= achievable + 1e-6).all())
    assert float(plain.update(batch)["mean_target"]) == pytest.approx(float(unbounded.mean()), rel=1e-6)
    assert float(bounded.update(batch)["mean_target"]) == pytest.approx(float(torch.maximum(unbounded, path_value).mean()), rel=1e-6)
    assert float(torch.maximum(unbounded, path_value).mean()) > float(unbounded.mean())  # the bound bites here


def test_training_with_the_bound_is_seeded_and_differs_from_without(capsys):
    config = make_config(n=8, arch="mlp", max_iterations=6, early_stop=False, gradient_steps=4, num_eval_agents=64)
    a = train(make_run_config(**{**config.to_dict(), "hindsight_bound": True}), progress=False)
    b = train(make_run_config(**{**config.to_dict(), "hindsight_bound": True}), progress=False)
    c = train(config, progress=False)
    assert [h["loss"] for h in a.history] == [h["loss"] for h in b.history]
    assert [h["mean_target"] for h in a.history] != [h["mean_target"] for h in c.history]
    assert describe_overrides({"hindsight_bound": True}) == "hindsight bound"


def test_cli_flag_reaches_the_configuration(tmp_path, capsys):
    out = tmp_path / "run.json"
    code = cli_main(["train", "--n", "5", "--arch", "mlp", "--max-iterations", "2", "--hindsight-bound", "--quiet",
                     "--save", str(out)])
    assert code in (0, None)
    import json
    record = json.loads(out.read_text())
    assert record["config"]["hindsight_bound"] is True and record["overrides"]["hindsight_bound"] is True
