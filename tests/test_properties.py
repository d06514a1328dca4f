"""Property tests (Hypothesis): the environment's invariants for any size, batch, start, goal and
action sequence; HER's relabelling rules for any played episode; and the configuration's
validation for any invalid (or valid) field value. Small example counts keep them to seconds."""
import dataclasses
import math

import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from bitflip_lib.config import MAX_SEED, PRESETS, TrainConfig
from bitflip_lib.dqn import EPS_SCHEDULES, LOSSES
from bitflip_lib.env import BitFlipEnv, goal_reached, hamming_distance
from bitflip_lib.her import HER_STRATEGIES, her_relabel
from bitflip_lib.networks import ACTIVATIONS, ARCHITECTURES
from bitflip_lib.replay import EpisodeBatch, Transitions
from bitflip_lib.trainer import play_episode

FAST = settings(max_examples=40, deadline=None, database=None)  # nothing written into the checkout


def bit_rows(n: int, agents: int) -> st.SearchStrategy:
    return st.lists(st.lists(st.integers(0, 1), min_size=n, max_size=n), min_size=agents, max_size=agents).map(
        lambda rows: torch.tensor(rows, dtype=torch.float32))


# ---------------------------------------------------------------------------------------------
# The environment


@FAST
@given(data=st.data())
def test_environment_invariants_hold_for_any_episode(data):
    n = data.draw(st.integers(1, 10), label="n")
    agents = data.draw(st.integers(1, 6), label="agents")
    max_steps = data.draw(st.none() | st.integers(1, 2 * n + 2), label="max_steps")
    env = BitFlipEnv(n, agents, max_steps=max_steps, seed=data.draw(st.integers(0, 2**32), label="seed"))
    if data.draw(st.booleans(), label="explicit start and goal"):
        state, goal = env.reset(data.draw(bit_rows(n, agents), label="start"), data.draw(bit_rows(n, agents), label="goal"))
    else:
        state, goal = env.reset()
        assert not bool(goal_reached(state, goal).any()), "a random start is never its own goal"
    start = state.clone()
    done = goal_reached(state, goal)
    assert torch.equal(env.done, done) and torch.equal(env.distance, hamming_distance(state, goal))
    actions = data.draw(st.lists(st.lists(st.integers(0, n - 1), min_size=agents, max_size=agents),
                                 max_size=env.max_steps), label="actions")
    rows = torch.arange(agents)
    rewards = torch.zeros(agents)
    counted = torch.zeros(agents, dtype=torch.long)
    before, distance = state, env.distance.clone()
    for step in actions:
        action = torch.tensor(step)
        out = env.step(action)
        assert torch.equal(out.active, ~done), "exactly the agents not yet done act"
        expected = before.clone()
        flipped = expected[rows, action]
        expected[rows, action] = torch.where(out.active, 1 - flipped, flipped)
        assert torch.equal(out.state, expected), "an active agent flips its chosen bit; a done one does not move"
        assert torch.equal(env.distance, hamming_distance(out.state, goal))
        assert torch.equal((env.distance - distance).abs(), out.active.long()), "a flip moves the distance by one"
        reached = goal_reached(out.state, goal)
        assert torch.equal(out.reward, (out.active & reached).float()), "reward 1 exactly on the step that reaches the goal"
        assert torch.equal(out.done, done | reached) and torch.equal(out.done, env.distance == 0)
        rewards += out.reward
        counted += out.active.long()
        before, distance, done = out.state, env.distance.clone(), out.done
    assert bool((rewards <= 1).all()), "at most one reward per agent and episode"
    assert torch.equal(rewards, (done & ~goal_reached(start, goal)).float()), "rewarded once iff the goal was reached by acting"
    assert torch.equal(env.steps, counted)
    assert env.episode_over == (len(actions) >= env.max_steps or bool(done.all()))
    assert torch.equal(state, start), "reset's return value is a copy: steps do not change it"


# ---------------------------------------------------------------------------------------------
# HER relabelling


def random_episode(n: int, agents: int, max_steps: int | None, seed: int) -> EpisodeBatch:
    g = torch.Generator().manual_seed(seed)
    env = BitFlipEnv(n, agents, max_steps=max_steps, seed=seed)
    return play_episode(env, lambda state, goal: torch.randint(0, n, (agents,), generator=g))


@FAST
@given(n=st.integers(1, 8), agents=st.integers(1, 6), max_steps=st.none() | st.integers(1, 12),
       seed=st.integers(0, 2**16), strategy=st.sampled_from([s for s in HER_STRATEGIES if s != "none"]),
       k=st.integers(1, 5))
def test_her_relabelling_rules_hold_for_any_episode(n, agents, max_steps, seed, strategy, k):
    episode = random_episode(n, agents, max_steps, seed)
    out = her_relabel(episode, strategy, k, torch.Generator().manual_seed(seed + 1))
    played = episode.transitions()
    # Reward and done follow the environment's rule for the new goal: reward = [s' == g'].
    assert torch.equal(out.reward, goal_reached(out.next_state, out.goal).float())
    assert torch.equal(out.done, out.reward)
    # How many: k new goals per played transition for future and episode, so the relabelled
    # share of what is stored is k / (k + 1); one for final; parts of picked trajectories for writeup30.
    copies = {"future": k, "episode": k, "final": 1}.get(strategy)
    if copies is not None:
        assert len(out) == copies * len(played)
        stored = len(Transitions.cat([played, out]))
        assert math.isclose(len(out) / stored, copies / (copies + 1))
    # Where the goals come from: a goal is a state the same agent reached after a step t' with
    # t' in [t, L - 1] (future), t' = L - 1 (final), any t' (episode, writeup30-whole), and for
    # writeup30 the step that first reaches it (see below).
    t, b = episode.step_index()
    lengths = episode.lengths

    def goal_allowed(i: int, ti: int, bi: int) -> bool:
        first = {"future": ti, "final": int(lengths[bi]) - 1}.get(strategy, 0)
        reachable = episode.states[first + 1: int(lengths[bi]) + 1, bi]
        return bool((reachable == out.goal[i]).all(1).any())

    def same_step(i: int, ti: int, bi: int) -> bool:
        return (torch.equal(out.state[i], episode.states[ti, bi]) and int(out.action[i]) == int(episode.actions[ti, bi])
                and torch.equal(out.next_state[i], episode.states[ti + 1, bi]))

    if copies is not None:
        # The copies follow episode.step_index(), copy after copy (her_relabel's documented order).
        t, b = t.repeat(copies), b.repeat(copies)
        for i in range(len(out)):
            ti, bi = int(t[i]), int(b[i])
            assert same_step(i, ti, bi), f"transition {i} is not step ({ti}, {bi}) of the episode"
            assert goal_allowed(i, ti, bi), f"{strategy}: the goal of transition {i} is not reached at an allowed step"
        return
    # writeup30-whole relabels whole trajectories of some agents, with one goal each; writeup30 the
    # steps of those trajectories before the goal is first stood on. Some set of agents must give
    # exactly these transitions, in step_index() order, with allowed goals.
    def explains(picked: set[int]) -> bool:
        steps = [(int(ti), int(bi)) for ti, bi in zip(t, b) if int(bi) in picked]
        if strategy == "writeup30":
            # Each picked agent's goal is the goal of its step-0 row (rows follow step_index(), so
            # those come first, by agent); its kept steps are those before it first stands on it.
            if len(out) < len(picked):
                return False
            goal_of = {bi: out.goal[i] for i, bi in enumerate(sorted(picked))}
            steps = [(ti, bi) for ti, bi in steps if not (episode.states[: ti + 1, bi] == goal_of[bi]).all(1).any()]
            reached = [(episode.states[ti + 1, bi] == goal_of[bi]).all() for ti, bi in steps]
            if out.reward.tolist() != [float(r) for r in reached]:
                return False
        if len(steps) != len(out) or not all(same_step(i, ti, bi) for i, (ti, bi) in enumerate(steps)):
            return False
        goals = {}
        for i, (ti, bi) in enumerate(steps):
            if not goal_allowed(i, ti, bi) or not torch.equal(goals.setdefault(bi, out.goal[i]), out.goal[i]):
                return False
        return True

    assert any(explains({bi for bi in range(agents) if mask >> bi & 1}) for mask in range(2**agents)), \
        f"{strategy}: not (the first part of) the trajectories of some agents, each with one goal it reached"


# ---------------------------------------------------------------------------------------------
# Configuration validation

not_an_int = st.one_of(st.booleans(), st.floats(allow_nan=True), st.text(max_size=3), st.lists(st.integers(), max_size=2))
not_a_number = st.one_of(st.booleans(), st.text(max_size=3), st.lists(st.floats(), max_size=2))
not_a_str = st.one_of(st.integers(), st.floats(), st.booleans(), st.none())


def integer_below(low: int) -> st.SearchStrategy:
    return st.integers(max_value=low - 1) | not_an_int | st.none()


def number_outside(ok, optional: bool = False) -> st.SearchStrategy:
    outside = st.floats(allow_nan=True, allow_infinity=True).filter(lambda x: not ok(x)) | not_a_number
    return outside if optional else outside | st.none()


def choice_other_than(options) -> st.SearchStrategy:
    return st.text(max_size=8).filter(lambda s: s not in options) | not_a_str


bad_width = st.one_of(st.integers(max_value=0), st.booleans(), st.floats(), st.text(max_size=2))
INVALID = {
    **{name: integer_below(1) for name in ("n", "k", "batch_size", "buffer_capacity", "num_train_agents",
                                            "num_eval_agents", "max_iterations", "eval_every", "solved_window",
                                            "eps_decay_steps")},
    "gradient_steps": integer_below(0),
    "seed": st.integers(max_value=-1) | st.integers(min_value=MAX_SEED + 1) | not_an_int | st.none(),
    "max_steps": st.integers(max_value=0) | not_an_int,
    "arch": choice_other_than(ARCHITECTURES),
    "her": choice_other_than(HER_STRATEGIES),
    "loss": choice_other_than(LOSSES),
    "eps_schedule": choice_other_than(EPS_SCHEDULES),
    "activation": choice_other_than(ACTIVATIONS),
    "preset": choice_other_than(PRESETS),
    "gamma": number_outside(lambda x: 0 < x <= 1, optional=True),
    "lr": number_outside(lambda x: 0 < x <= 1),
    "lr_end": number_outside(lambda x: 0 < x <= 1e-3, optional=True),  # the default lr is 1e-3
    "polyak": number_outside(lambda x: 0 < x <= 1, optional=True),
    "max_seconds": number_outside(lambda x: x > 0, optional=True),
    "solved_threshold": number_outside(lambda x: 0 <= x <= 1),
    "eps_start": number_outside(lambda x: 0 <= x <= 1),
    "eps_end": number_outside(lambda x: 0 <= x <= 1),
    "eps_decay": number_outside(lambda x: 0 < x <= 1),
    **{name: st.one_of(st.integers(), st.floats(), st.text(max_size=3), st.none())
       for name in ("amsgrad", "clip_targets", "double_dqn", "early_stop", "har_normalize_distance",
                    "batch_without_replacement")},
    "hidden": st.one_of(st.integers(), st.text(max_size=3),
                        st.tuples(st.lists(st.integers(1, 64), max_size=2), bad_width, st.lists(st.integers(1, 64), max_size=2))
                        .map(lambda parts: (*parts[0], parts[1], *parts[2]))),
    "device": st.sampled_from(["gpu", "", "cuda:x", "tpu", "auto "]) | st.integers() | st.none(),
}


def test_every_field_has_an_invalid_strategy():
    assert set(INVALID) == {f.name for f in dataclasses.fields(TrainConfig)}


@settings(max_examples=150, deadline=None, database=None)
@given(data=st.data())
def test_any_invalid_field_gives_a_value_error_naming_field_and_value(data):
    name = data.draw(st.sampled_from(sorted(INVALID)), label="field")
    value = data.draw(INVALID[name], label="value")
    try:
        TrainConfig(**{name: value})
    except ValueError as err:
        message = str(err)
    else:
        raise AssertionError(f"TrainConfig({name}={value!r}) was accepted")
    assert message.startswith(f"{name} must be "), message
    assert f"got {value!r}" in message, message


VALID = {
    "n": st.integers(1, 2048), "k": st.integers(1, 16), "seed": st.integers(0, MAX_SEED),
    "arch": st.sampled_from(ARCHITECTURES), "her": st.sampled_from(HER_STRATEGIES),
    "gamma": st.none() | st.floats(0, 1, exclude_min=True) | st.just(1), "lr": st.floats(1e-6, 1.0),
    "polyak": st.none() | st.floats(0, 1, exclude_min=True), "amsgrad": st.booleans(), "clip_targets": st.booleans(),
    "loss": st.sampled_from(sorted(LOSSES)), "double_dqn": st.booleans(), "batch_size": st.integers(1, 4096),
    "gradient_steps": st.integers(0, 256), "max_steps": st.none() | st.integers(1, 100),
    "max_seconds": st.none() | st.floats(0, 1e6, exclude_min=True), "solved_threshold": st.floats(0, 1),
    "eps_start": st.floats(0, 1), "eps_end": st.floats(0, 1), "eps_decay": st.floats(0, 1, exclude_min=True),
    "eps_schedule": st.sampled_from(EPS_SCHEDULES), "hidden": st.none() | st.lists(st.integers(1, 512), max_size=3).map(tuple),
    "early_stop": st.booleans(),
    # The devices this machine computes on (a device it cannot use is refused: tests/test_edges.py).
    "device": st.sampled_from(["auto", "cpu", *(["cuda", "cuda:0"] if torch.cuda.is_available() else [])]),
}


@settings(max_examples=60, deadline=None, database=None)
@given(values=st.fixed_dictionaries({}, optional=VALID))
def test_any_valid_configuration_is_accepted_unchanged(values):
    # The one rule between two fields: double DQN needs the target network (tests/test_config.py).
    assume(not (values.get("double_dqn") and "polyak" in values and values["polyak"] is None))
    config = TrainConfig(**values)
    assert all(getattr(config, name) == value for name, value in values.items())
