"""Checks for exercise 5: hindsight relabelling with the ``future`` strategy (Andrychowicz et al., 2017).

The student writes ``her_relabel_future(episode, k, generator=None) -> Transitions``: for every
counted step t of agent b (episode length L_b), k copies of the transition whose goal is the
state reached after a step t' drawn uniformly from [t, L_b - 1], with reward and done recomputed.
Reference: :func:`bitflip_lib.her.her_relabel` with ``strategy='future'``.

Test episodes flip a different bit at every step, so no state repeats within an agent's
trajectory and each relabelled goal tells exactly which step t' it came from.
"""
from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping

import torch

from bitflip_lib.config import make_config
from bitflip_lib.env import goal_reached
from bitflip_lib.grading.helpers import devices, expect, expect_equal, expect_tensor, generator
from bitflip_lib.grading.plugged import train_with
from bitflip_lib.grading.model import Check, Exercise
from bitflip_lib.grading.remote import kind
from bitflip_lib.lab.runs import best_success
from bitflip_lib.replay import EpisodeBatch, Transitions


def make_episode(n: int = 20, agents: int = 48, steps: int = 10, seed: int = 0, device="cpu",
                 dtype: torch.dtype = torch.float32, lengths: torch.Tensor | None = None) -> EpisodeBatch:
    """A synthetic episode with distinct states along each trajectory and varied lengths.

    Agent b acts for ``lengths[b]`` steps (some 1, some the full ``steps``), then is done: its
    state stays put and its later actions are junk, as in the environment. The last bits of the
    string (never flipped) spell the agent's index, so no two agents share a state.
    """
    if steps > n - max(1, (agents - 1).bit_length()):
        raise ValueError("n must exceed steps plus the agent-index bits, so that every step flips a new bit")
    g = generator(seed, device)
    if lengths is None:
        lengths = torch.randint(1, steps + 1, (agents,), generator=g, device=device)
        lengths[0], lengths[1] = 1, steps
    lengths = lengths.to(device)
    free = n - max(1, (agents - 1).bit_length())  # bits that may be flipped
    order = torch.argsort(torch.rand(agents, free, generator=g, device=device), dim=1)[:, :steps]  # distinct bits
    junk = torch.randint(0, n, (steps, agents), generator=g, device=device)
    active = torch.arange(steps, device=device)[:, None] < lengths[None, :]
    actions = torch.where(active, order.T, junk)
    id_bits = max(1, (agents - 1).bit_length())
    rows = torch.arange(agents, device=device)
    agent_id = ((rows[:, None] >> torch.arange(id_bits, device=device)) & 1).float()
    states = [torch.cat([torch.randint(0, 2, (agents, n - id_bits), generator=g, device=device).float(), agent_id], dim=1)]
    for t in range(steps):
        nxt = states[-1].clone()
        nxt[rows, actions[t]] = torch.where(active[t], 1.0 - nxt[rows, actions[t]], nxt[rows, actions[t]])
        states.append(nxt)
    states_t = torch.stack(states)
    final = states_t[lengths, rows]
    random_goal = torch.randint(0, 2, (agents, n), generator=g, device=device).float()
    goal = torch.where((lengths < steps)[:, None], final, random_goal)  # agents that stopped early reached their goal
    return EpisodeBatch(states_t.to(dtype), goal.to(dtype), actions, active)


def _codes(bits: torch.Tensor) -> list[int]:
    weights = 2 ** torch.arange(bits.shape[-1], device=bits.device, dtype=torch.int64)
    return (bits.to(torch.int64) * weights).sum(-1).tolist()


def _index(episode: EpisodeBatch):
    """Map each counted step's (state, next_state) to (t, b), and each agent's states to positions."""
    steps, agents = episode.actions.shape
    codes = [_codes(episode.states[j]) for j in range(steps + 1)]
    lengths = episode.lengths.tolist()
    by_transition, position = {}, []
    for b in range(agents):
        position.append({codes[j][b]: j for j in range(lengths[b] + 1)})
        for t in range(lengths[b]):
            key = (codes[t][b], codes[t + 1][b])
            if key in by_transition:
                raise RuntimeError("internal: test episode has a repeated transition, change the seed")
            by_transition[key] = (t, b)
    return by_transition, position, lengths


def _call(ns: Mapping, episode: EpisodeBatch, k: int, seed: int) -> Transitions:
    before = [x.clone() for x in (episode.states, episode.goal, episode.actions, episode.active)]
    out = ns["her_relabel_future"](episode, k, generator(seed, episode.states.device))
    for name, b, now in zip(("states", "goal", "actions", "active"), before,
                            (episode.states, episode.goal, episode.actions, episode.active)):
        expect(torch.equal(b, now), f"her_relabel_future changed episode.{name} in place")
    expect(all(hasattr(out, f) for f in ("state", "goal", "action", "reward", "next_state", "done")),
           f"her_relabel_future must return a Transitions (e.g. Transitions.with_goals(...)), got {kind(out)}")
    return out


def _located(ns: Mapping, episode: EpisodeBatch, k: int, seed: int, check_goals: bool = True):
    """Run the student's function and place every output row: (t, b, t') per row (t' is None when
    ``check_goals`` is off and the goal is not one of the agent's states)."""
    out = _call(ns, episode, k, seed)
    n = episode.states.shape[-1]
    device = episode.states.device
    total = int(episode.active.sum())
    m = k * total
    expect_tensor(out.state, "relabelled state", shape=(m, n), device=device)
    expect_tensor(out.next_state, "relabelled next_state", shape=(m, n), device=device)
    expect_tensor(out.goal, "relabelled goal", shape=(m, n), device=device)
    expect_tensor(out.action, "relabelled action", shape=(m,), dtype=torch.int64, device=device)
    expect_tensor(out.reward, "relabelled reward", shape=(m,), device=device)
    expect_tensor(out.done, "relabelled done", shape=(m,), device=device)
    by_transition, position, lengths = _index(episode)
    s_codes, s2_codes, g_codes = _codes(out.state), _codes(out.next_state), _codes(out.goal)
    actions = out.action.tolist()
    placed = []
    for i in range(m):
        key = (s_codes[i], s2_codes[i])
        expect(key in by_transition, f"relabelled row {i}: (state, next_state) is not a counted step of the episode "
               "(only steps with active = True may be relabelled; steps after an agent is done must be skipped)")
        t, b = by_transition[key]
        expect(actions[i] == int(episode.actions[t, b]), f"relabelled row {i}: action {actions[i]} is not the action played at that step ({int(episode.actions[t, b])})")
        j = position[b].get(g_codes[i])
        if not check_goals:
            placed.append((t, b, None if j is None else j - 1))
            continue
        expect(j is not None, f"relabelled row {i}: the goal is not a state that agent {b} reached in this episode")
        expect(t + 1 <= j <= lengths[b], f"relabelled row {i}: the goal is the state after step {j - 1} of agent {b}, "
               f"but for step {t} the future strategy allows only steps {t}..{lengths[b] - 1}")
        placed.append((t, b, j - 1))
    return out, placed


def check_size(ns: Mapping) -> str:
    for k in (1, 4):
        episode = make_episode(seed=1)
        out = _call(ns, episode, k, seed=2)
        total = int(episode.active.sum())
        expect(len(out.action) == k * total, f"with k = {k} and {total} counted steps, expected {k * total} relabelled transitions, got {len(out.action)}")
    return "k copies of every counted step"


def check_steps(ns: Mapping) -> str:
    episode = make_episode(seed=3)
    _, placed = _located(ns, episode, 3, seed=4, check_goals=False)
    counts = Counter((t, b) for t, b, _ in placed)
    wrong = [(tb, c) for tb, c in counts.items() if c != 3]
    expect(not wrong, f"every counted step should appear exactly k = 3 times; (step, agent) {wrong[0][0]} appears {wrong[0][1]} times" if wrong else "")
    return "each counted step relabelled k times, no done steps"


def check_future(ns: Mapping) -> str:
    for device in devices():
        for dtype in (torch.float32, torch.uint8):  # the trainer stores bits as uint8
            episode = make_episode(seed=5, device=device, dtype=dtype)
            _located(ns, episode, 4, seed=6)
    return "goals come from the same or later steps"


def check_reward(ns: Mapping) -> str:
    for device in devices():
        episode = make_episode(seed=7, device=device)
        out, _ = _located(ns, episode, 4, seed=8, check_goals=False)
        expected = goal_reached(out.next_state, out.goal).float()
        expect_equal(out.reward.float(), expected, "relabelled reward (1 where next_state equals the new goal)")
        expect_equal(out.done.float(), expected, "relabelled done (1 where next_state equals the new goal)")
        expect(float(expected.sum()) > 0, "no relabelled transition has reward 1: the step whose own next state is chosen as goal must be rewarded")
    return "reward and done recomputed for the new goal"


def _uniform_picks(placed, lengths: list[int], length: int, steps: int, what: str) -> None:
    """Goals of agents whose episode lasted ``length`` steps: for each step t, uniform over t..length - 1."""
    for t in range(length):
        picks = Counter(tp for tt, b, tp in placed if tt == t and lengths[b] == length)
        choices = length - t
        total = sum(picks.values())
        p = 1.0 / choices
        sd = math.sqrt(total * p * (1 - p)) if choices > 1 else 0.0
        off = [tp for tp in range(t, length) if abs(picks.get(tp, 0) - total * p) > 5 * sd + 1e-9]
        if not off:
            continue
        last = picks.get(length - 1, 0)
        if length < steps and last > total * p + 5 * sd:
            raise AssertionError(
                f"for agents that finished early ({length} of the episode's {steps} steps), the goal of step {t} "
                f"came from their last step {last} times of {total}, not about {total * p:.0f} (one in {choices}): "
                f"draw t' from each agent's own steps t..L_b - 1 (episode.lengths), not from the episode's "
                f"{steps} steps (their later states all equal the final one)")
        raise AssertionError(f"for step {t} of {what}, the goal should come from steps {t}..{length - 1} equally often "
                             f"({total * p:.0f} each of {total}); got {dict(sorted(picks.items()))}")


def check_uniform(ns: Mapping) -> str:
    steps, agents, k = 4, 400, 8
    episode = make_episode(n=16, agents=agents, steps=steps, seed=9, lengths=torch.full((agents,), steps))
    _, placed = _located(ns, episode, k, seed=10)
    _uniform_picks(placed, [steps] * agents, steps, steps, "4-step episodes")
    # Agents that finish early: their future steps end with their own episode, not the batch's T.
    steps = 6
    lengths = torch.tensor([2, steps] * (agents // 2))
    episode = make_episode(n=16, agents=agents, steps=steps, seed=16, lengths=lengths)
    _, placed = _located(ns, episode, k, seed=17)
    for length in (2, steps):
        _uniform_picks(placed, lengths.tolist(), length, steps, f"{length}-step episodes among {steps}-step ones")
    return "future step drawn uniformly from [t, L_b - 1], agents that finish early included"


def check_generator(ns: Mapping) -> str:
    """The generator passed in drives the draws: not the global RNG, nor a generator of its own."""
    for device in devices():
        episode = make_episode(seed=13, device=device)
        with torch.random.fork_rng(devices=[]):  # leave the caller's global RNG as it was
            torch.manual_seed(100)
            a = _call(ns, episode, 4, seed=14)
            torch.manual_seed(101)  # a different global state must not matter
            b = _call(ns, episode, 4, seed=14)
            c = _call(ns, episode, 4, seed=15)
        same = all(torch.equal(x, y) for x, y in ((a.state, b.state), (a.goal, b.goal)))
        expect(same, "her_relabel_future must draw its randomness from the generator passed in: the same generator "
               "seed gave different goals (is it drawing from the global random state, torch.rand(...) without generator=?)")
        expect(a.goal.shape != c.goal.shape or not torch.equal(a.goal, c.goal),
               "different generator seeds gave identical goals: draw the future steps with the generator passed in "
               "(torch.rand(..., generator=generator)), not with a fixed seed or a generator of your own")
    return "reproducible with a generator"


def check_fast(ns: Mapping) -> str:
    g = generator(11)
    agents, steps, n = 1024, 50, 50
    lengths = torch.randint(1, steps + 1, (agents,), generator=g)
    states = torch.randint(0, 2, (steps + 1, agents, n), generator=g).float()
    actions = torch.randint(0, n, (steps, agents), generator=g)
    active = torch.arange(steps)[:, None] < lengths[None, :]
    episode = EpisodeBatch(states, states[-1], actions, active)
    out = _call(ns, episode, 4, seed=12)
    expect(len(out.action) == 4 * int(active.sum()), f"expected {4 * int(active.sum())} transitions for 1024 agents x 50 steps, got {len(out.action)}")
    return "1024 agents x 50 steps within the time limit"


def valid_future(episode: EpisodeBatch, k: int, out, when: str) -> None:
    """Every relabelled row is a counted step, with a goal its own agent reached at or after that
    step; reward and done follow the goal. (For training episodes, whose states may repeat.)"""
    expect(all(hasattr(out, f) for f in ("state", "goal", "action", "reward", "next_state", "done")),
           f"{when}: her_relabel_future must return a Transitions, got {kind(out)}")
    lengths = episode.lengths.tolist()
    expect(len(out.action) == k * sum(lengths), f"{when}: expected {k * sum(lengths)} relabelled transitions, got {len(out.action)}")
    codes = [_codes(episode.states[j]) for j in range(episode.states.shape[0])]
    steps: dict[tuple[int, int, int], list[tuple[int, int]]] = {}
    reached: list[dict[int, list[int]]] = []
    for b, length in enumerate(lengths):
        where: dict[int, list[int]] = {}
        for j in range(1, length + 1):
            where.setdefault(codes[j][b], []).append(j)
        reached.append(where)
        for t in range(length):
            steps.setdefault((codes[t][b], codes[t + 1][b], int(episode.actions[t, b])), []).append((t, b))
    s_codes, s2_codes, g_codes = _codes(out.state), _codes(out.next_state), _codes(out.goal)
    for i, action in enumerate(out.action.tolist()):
        candidates = steps.get((s_codes[i], s2_codes[i], action))
        expect(candidates is not None, f"{when}: relabelled row {i} is not a counted step of the episode")
        expect(any(t + 1 <= j for t, b in candidates for j in reached[b].get(g_codes[i], [])),
               f"{when}: the goal of relabelled row {i} is not a state its agent reached at or after that step")
    expected = goal_reached(out.next_state, out.goal).float()
    expect_equal(out.reward.float(), expected, f"{when}: relabelled reward (1 where next_state equals the new goal)")
    expect_equal(out.done.float(), expected, f"{when}: relabelled done (1 where next_state equals the new goal)")


def checked_relabel(student):  # noqa: ANN001, ANN201
    """The student's relabelling during training, each answer checked (see :func:`valid_future`)."""
    episodes = 0

    def relabel(episode, k, generator):
        nonlocal episodes
        episodes += 1
        out = student(episode, k, generator)
        valid_future(episode, k, out, f"during training (episode {episodes})")
        return out

    return relabel


def check_training(ns: Mapping) -> str:
    relabel = checked_relabel(ns["her_relabel_future"])
    config = make_config(n=30, arch="har", her="future", k=4, max_iterations=40, seed=0)
    result = train_with(config, relabel_future=relabel)
    expect(result.solved_at is not None, f"DQN (HAR) with your relabelling should solve n = 30 within {config.max_iterations} "
           f"iterations; best success rate {best_success(result):.3f}")
    return f"DQN with it solves n = 30 at iteration {result.solved_at}"


EXERCISE = Exercise(
    name="ex05_her_future",
    title="HER relabelling with the future strategy",
    required=("her_relabel_future",),
    references=("bitflip_lib.her:her_relabel", "bitflip_lib.her:hindsight_goal_steps", "bitflip_lib.her:_uniform_int"),
    checks=(
        Check("returns k transitions per step", check_size),
        Check("only counted steps, k times each", check_steps),
        Check("goals are future achieved states", check_future),
        Check("reward and done follow the new goal", check_reward),
        Check("future step is uniform", check_uniform),
        Check("uses the generator", check_generator),
        Check("vectorised (1024 x 50 in time)", check_fast, timeout=30.0),
        Check("DQN with it learns (end to end)", check_training, timeout=240.0, slow=True),
    ),
)
