"""Checks for exercise 2: the tabular Q-learning update and value iteration.

The student writes ``q_learning_update(Q, s, g, a, r, s2, done, alpha, gamma)`` (in place,
returning the TD errors) and ``value_iteration(n, gamma, tol)`` (returning Q*). References:
:func:`bitflip_lib.tabular.q_learning_update`, :func:`bitflip_lib.tabular.value_iteration` and
the closed form :func:`bitflip_lib.tabular.optimal_q_table`.
"""
from __future__ import annotations

from collections.abc import Mapping

import torch

from bitflip_lib import tabular
from bitflip_lib.grading.helpers import devices, expect, expect_close, expect_tensor, generator
from bitflip_lib.grading.model import Check, Exercise


def _batch(n: int, batch: int, seed: int, device, terminal_fraction: float = 0.3):
    """Random transitions with distinct (s, g, a) triples; a share of them end on the goal."""
    g_ = generator(seed, device)
    size = 2**n
    batch = min(batch, size * size * n // 2)
    flat = torch.randperm(size * size * n, generator=g_, device=device)[:batch]
    s, g, a = flat // (size * n), (flat // n) % size, flat % n
    s2 = s ^ (1 << a)
    # Make some transitions terminal by choosing the goal to be the next state.
    terminal = torch.rand(batch, generator=g_, device=device) < terminal_fraction
    g = torch.where(terminal, s2, g)
    # Keep triples distinct after that change (drop any duplicate and any start already at its goal).
    key = ((s * size + g) * n + a).tolist()
    seen: set[int] = set()
    keep = []
    for i, k in enumerate(key):
        keep.append(k not in seen and bool(s[i] != g[i]))
        seen.add(k)
    keep = torch.tensor(keep, device=device)
    s, g, a, s2 = s[keep], g[keep], a[keep], s2[keep]
    done = s2 == g
    r = done.float()
    return s, g, a, r, s2, done


def _random_table(n: int, seed: int, device) -> torch.Tensor:
    g_ = generator(seed, device)
    return torch.rand(2**n, 2**n, n, generator=g_, device=device, dtype=torch.float64)


def _compare_update(ns: Mapping, n: int, alpha: float, gamma: float, seed: int, device) -> None:
    q = _random_table(n, seed, device)
    s, g, a, r, s2, done = _batch(n, 200, seed + 1, device)
    expected = q.clone()
    expected_td = tabular.q_learning_update(expected, s, g, a, r, s2, done, alpha, gamma)
    student = q.clone()
    td = ns["q_learning_update"](student, s, g, a, r, s2, done, alpha, gamma)
    what = f"Q after q_learning_update(n={n}, alpha={alpha}, gamma={gamma})"
    expect_close(student, expected, what, atol=1e-9)
    td = expect_tensor(td, f"returned TD errors (n={n})", shape=(len(s),))
    expect_close(td, expected_td, f"returned TD errors target - Q[s, g, a] (n={n}, alpha={alpha}, gamma={gamma})", atol=1e-9)


def check_update(ns: Mapping) -> str:
    for device in devices():
        for n, alpha, gamma in ((3, 0.5, 0.9), (4, 0.1, 0.98), (2, 1.0, 0.5)):
            _compare_update(ns, n, alpha, gamma, seed=n, device=device)
    return "matches the library on random tables"


def check_terminal(ns: Mapping) -> str:
    q = torch.full((8, 8, 3), 0.7, dtype=torch.float64)
    s = torch.tensor([0, 5]); a = torch.tensor([1, 0]); s2 = s ^ (1 << a)
    g = s2.clone()  # both transitions reach their goal
    r = torch.ones(2, dtype=torch.float64); done = torch.ones(2, dtype=torch.bool)
    ns["q_learning_update"](q, s, g, a, r, s2, done, 1.0, 0.9)
    expect_close(q[s, g, a], torch.ones(2, dtype=torch.float64), "Q[s, g, a] after a terminal transition with alpha = 1 (target = r, no bootstrap)")
    return "no bootstrapping past the goal"


def check_in_place(ns: Mapping) -> str:
    n = 3
    q = _random_table(n, 7, "cpu")
    before = q.clone()
    s, g, a, r, s2, done = _batch(n, 20, 8, "cpu")
    ns["q_learning_update"](q, s, g, a, r, s2, done, 0.5, 0.9)
    touched = torch.zeros_like(q, dtype=torch.bool)
    touched[s, g, a] = True
    expect(bool((q[touched] != before[touched]).any()), "Q did not change: the update must modify the table passed in (in place)")
    expect(torch.equal(q[~touched], before[~touched]), "entries of Q that are not in the batch changed: update only Q[s, g, a]")
    return "in place, only the visited entries"


def check_value_iteration(ns: Mapping) -> str:
    for device in devices():
        for n, gamma in ((1, 0.9), (2, 0.9), (3, 0.95), (4, 0.5)):
            q = ns["value_iteration"](n, gamma)
            q = expect_tensor(q, f"value_iteration({n}, {gamma})", shape=(2**n, 2**n, n))
            expected = tabular.optimal_q_table(n, gamma, device=device)
            d = tabular.distance_table(n, device=device)
            mask = (d > 0).to(q.device)
            expect_close(q[mask], expected[mask.to(expected.device)].to(q.device),
                         f"value_iteration({n}, {gamma}) against the closed form gamma^(d-1) / gamma^(d+1) (rows with s != g)", atol=1e-6)
    return "equals the closed-form Q*"


def check_learning(ns: Mapping) -> str:
    """Off-policy Q-learning with the student's update, on random transitions, reaches Q*."""
    n, gamma = 3, 0.9
    q_star = tabular.optimal_q_table(n, gamma, device="cpu")
    q = torch.zeros(2**n, 2**n, n, dtype=torch.float64)
    size = 2**n
    everything = torch.arange(size * size * n)
    s_all, g_all, a_all = everything // (size * n), (everything // n) % size, everything % n
    keep = s_all != g_all
    s_all, g_all, a_all = s_all[keep], g_all[keep], a_all[keep]
    s2_all = s_all ^ (1 << a_all)
    done_all = s2_all == g_all
    for _sweep in range(3 * (n + 2)):
        ns["q_learning_update"](q, s_all, g_all, a_all, done_all.double(), s2_all, done_all, 0.7, gamma)
    mask = tabular.distance_table(n) > 0
    err = (q - q_star).abs()[mask].max().item()
    expect(err < 1e-3, f"after {3 * (n + 2)} sweeps of updates over every transition, max |Q - Q*| should be < 1e-3, got {err:.4f}")
    return f"sweeps of updates converge to Q* (max error {err:.1e})"


EXERCISE = Exercise(
    name="ex02_tabular",
    title="Tabular Q-learning update and value iteration",
    required=("q_learning_update", "value_iteration"),
    references=("bitflip_lib.tabular:q_learning_update", "bitflip_lib.tabular:value_iteration",
                "bitflip_lib.tabular:optimal_q_table", "bitflip_lib.theory:optimal_q", "bitflip_lib.theory:optimal_value"),
    checks=(
        Check("update matches the library", check_update, uses=("q_learning_update",)),
        Check("terminal transitions do not bootstrap", check_terminal, uses=("q_learning_update",)),
        Check("update is in place and local", check_in_place, uses=("q_learning_update",)),
        Check("value iteration equals Q*", check_value_iteration, uses=("value_iteration",)),
        Check("repeated updates converge to Q*", check_learning, uses=("q_learning_update",)),
    ),
)
