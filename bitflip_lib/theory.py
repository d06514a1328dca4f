"""Exact results about bit flipping that the chapters compute, plot and check against simulation.

Two facts carry everything here.

1. **A random policy only sees the Hamming distance.** Let ``d`` be the number of bits where the
   state differs from the goal. A uniformly random flip picks one of the ``d`` differing bits
   with probability ``d / n`` (the distance drops by one) and one of the ``n - d`` matching bits
   otherwise (it grows by one). So the distance performs a birth-death random walk on
   ``{0, ..., n}`` that is absorbed at 0 (the goal is reached and the episode ends). The
   probability that a random agent ever sees a reward is the probability that this walk hits 0
   within the episode's step limit.

2. **The optimal Q-values only depend on the distance.** With reward 1 for the step that reaches
   the goal (0 otherwise) and discount ``gamma``, the best plan from distance ``d >= 1`` takes
   ``d`` flips, so ``V*(d) = gamma^(d - 1)``. Flipping a differing bit leads to distance
   ``d - 1``, flipping a matching bit to ``d + 1``, hence
   ``Q*(d, differs) = gamma^(d - 1)`` and ``Q*(d, matches) = gamma^(d + 1)``.

Probabilities can be astronomically small (about ``2^-n`` and below), so the random-walk
computations run in log space with float64 numpy arrays; the plain versions exponentiate at the
end and underflow to 0.0 once the value drops below the smallest double, 2^-1074 (from about
n = 1090 on for :func:`random_success_probability`), while the ``log_`` versions stay finite.
"""
from __future__ import annotations

import math

import numpy as np
import torch



def _check_n(n: int) -> None:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be an integer >= 1 (the number of bits), got {n!r}")


def _check_steps(n: int, steps: int | None) -> int:
    if steps is None:
        return int(n)
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
        raise ValueError(f"steps must be an integer >= 0 or None (meaning n, the episode length), got {steps!r}")
    return int(steps)


def _check_gamma(gamma: float) -> None:
    if not isinstance(gamma, (int, float, np.floating)) or not 0.0 < float(gamma) <= 1.0:
        raise ValueError(f"gamma must be a number in (0, 1], got {gamma!r}")


def log_distance_distribution(n: int) -> np.ndarray:
    """Natural log of :func:`distance_distribution` (``-inf`` at distance 0), float64 ``[n + 1]``."""
    _check_n(n)
    d = np.arange(n + 1, dtype=np.float64)
    log_binom = np.array([math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) for k in range(n + 1)])
    # Start and goal uniform and independent: d ~ Binomial(n, 1/2). The environment redraws a
    # goal equal to its start, so condition on d >= 1: divide by 1 - 2^-n.
    log_norm = n * math.log(2.0) + math.log1p(-(2.0 ** -n))
    out = log_binom - log_norm
    out[d == 0] = -np.inf
    return out


def distance_distribution(n: int) -> np.ndarray:
    """Probability of each start-goal Hamming distance ``d = 0..n`` in a fresh episode.

    Start and goal are uniform bit strings, so ``d`` is Binomial(n, 1/2); a goal equal to its
    start is redrawn, so the distribution is conditioned on ``d >= 1`` (entry 0 is 0).
    Returns a float64 array of length ``n + 1`` that sums to 1.
    """
    return np.exp(log_distance_distribution(n))


def _log_hit_table(n: int, steps: int) -> np.ndarray:
    """``log P(walk from distance d hits 0 within `steps` flips)`` for every ``d = 0..n``.

    Backward recursion on the number of flips left, h_0(d) = [d == 0], and for d >= 1
    h_t(d) = (d / n) h_{t-1}(d - 1) + ((n - d) / n) h_{t-1}(d + 1), with h_t(0) = 1.
    """
    d = np.arange(n + 1, dtype=np.float64)
    with np.errstate(divide="ignore"):
        log_down = np.log(d / n)  # prob. to flip a differing bit: -inf at d = 0 (never used)
        log_up = np.log((n - d) / n)  # prob. to flip a matching bit: -inf at d = n
    log_h = np.full(n + 1, -np.inf)
    log_h[0] = 0.0
    for _ in range(steps):
        from_below = np.full(n + 1, -np.inf)
        from_below[1:] = log_down[1:] + log_h[:-1]
        from_above = np.full(n + 1, -np.inf)
        from_above[:-1] = log_up[:-1] + log_h[1:]
        new = np.logaddexp(from_below, from_above)
        new[0] = 0.0  # already at the goal: absorbed, success
        log_h = new
    return log_h


def _distances(n: int, d) -> tuple[np.ndarray, bool]:
    arr = np.asarray(d.cpu().numpy() if isinstance(d, torch.Tensor) else d)
    if arr.dtype.kind not in "iu" and not (arr.dtype.kind == "f" and np.all(arr == np.round(arr))):
        raise ValueError(f"distance must be an integer or an array of integers, got {d!r}")
    arr = arr.astype(np.int64)
    if np.any(arr < 0) or np.any(arr > n):
        raise ValueError(f"distance must lie in [0, n] = [0, {n}], got {d!r}")
    return arr, arr.ndim == 0


def log_success_probability_from_distance(n: int, d, steps: int | None = None):
    """Natural log of :func:`success_probability_from_distance` (finite even when it underflows)."""
    _check_n(n)
    steps = _check_steps(n, steps)
    arr, scalar = _distances(n, d)
    table = _log_hit_table(int(n), steps)
    out = table[arr]
    return float(out) if scalar else out


def success_probability_from_distance(n: int, d, steps: int | None = None):
    """Probability that a uniformly random policy reaches its goal within ``steps`` flips.

    Args:
        n: number of bits.
        d: start-goal Hamming distance (an int, or an array of ints in ``[0, n]``).
        steps: step limit (default n, the episode length).

    Returns a float for an int ``d``, a float64 numpy array for an array. Distance 0 gives 1.
    Exact: it runs the distance random walk (see the module docstring) for ``steps`` flips.
    """
    out = log_success_probability_from_distance(n, d, steps)
    return math.exp(out) if isinstance(out, float) else np.exp(out)


def log_random_success_probability(n: int, steps: int | None = None) -> float:
    """Natural log of :func:`random_success_probability`; finite up to n = 1024 and beyond."""
    _check_n(n)
    steps = _check_steps(n, steps)
    terms = log_distance_distribution(n) + _log_hit_table(int(n), steps)
    return float(np.logaddexp.reduce(terms[1:]))


def random_success_probability(n: int, steps: int | None = None) -> float:
    """Exact probability that one random-policy episode reaches its goal.

    Start and goal are uniform with start != goal (as :class:`~bitflip_lib.env.BitFlipEnv`
    draws them) and every step flips a uniformly random bit; the episode lasts ``steps`` flips
    (default n) or until the goal is reached. This is the chance that an epsilon = 1 agent earns
    its one possible reward in an episode. Underflows to 0.0 from about n = 1090 on: use
    :func:`log_random_success_probability` there.
    """
    return math.exp(log_random_success_probability(n, steps))


def expected_rewarded_transitions(n: int, iterations: int, agents: int = 16, steps: int | None = None) -> float:
    """Expected number of rewarded transitions a purely random explorer collects.

    Each iteration plays ``agents`` episodes of at most ``steps`` (default n) random flips, and an
    episode holds at most one rewarded transition (it ends when the goal is reached), so the
    expectation is ``iterations * agents * random_success_probability(n, steps)``. Without
    relabelling, this is all the learning signal a DQN agent gets while it explores at random.
    """
    for name, value in (("iterations", iterations), ("agents", agents)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
    return float(iterations) * float(agents) * random_success_probability(n, steps)


def _as_array(x):
    if isinstance(x, torch.Tensor):
        return x, True
    return np.asarray(x), False


def optimal_q(distance, differs, gamma: float):
    """Closed-form optimal Q-value of flipping one bit at start-goal distance ``distance >= 1``.

    ``gamma^(distance - 1)`` when the flipped bit differs from the goal (one step closer; 1 when it
    completes the goal), ``gamma^(distance + 1)`` when it already matches (one step further).
    Reward 1 on reaching the goal, 0 otherwise, no time limit in the values (as DQN learns them).

    Works elementwise on Python numbers, numpy arrays or torch tensors (returns the same kind;
    a float for scalar inputs).
    """
    _check_gamma(gamma)
    d, is_tensor = _as_array(distance)
    diff, _ = _as_array(differs)
    if is_tensor:
        if bool((d < 1).any()):
            raise ValueError("distance must be >= 1: at distance 0 the goal is reached and no action is taken")
        diff = torch.as_tensor(diff, device=d.device).bool()
        dtype = d.dtype if d.dtype.is_floating_point else torch.float64
        exponent = d.to(dtype) + torch.where(diff, -1.0, 1.0).to(dtype)
        return torch.pow(torch.as_tensor(float(gamma), dtype=dtype, device=d.device), exponent)
    if np.any(d < 1):
        raise ValueError("distance must be >= 1: at distance 0 the goal is reached and no action is taken")
    out = np.power(float(gamma), d.astype(np.float64) + np.where(np.asarray(diff, dtype=bool), -1.0, 1.0))
    return float(out) if out.ndim == 0 else out


def optimal_value(distance, gamma: float):
    """Closed-form optimal value ``V*(d) = gamma^(d - 1)`` for ``d >= 1``, and 0 at the goal (d = 0).

    Works elementwise on Python numbers, numpy arrays or torch tensors (returns the same kind).
    """
    _check_gamma(gamma)
    d, is_tensor = _as_array(distance)
    if is_tensor:
        if bool((d < 0).any()):
            raise ValueError("distance must be >= 0")
        dtype = d.dtype if d.dtype.is_floating_point else torch.float64
        value = torch.pow(torch.as_tensor(float(gamma), dtype=dtype, device=d.device), d.to(dtype) - 1)
        return torch.where(d > 0, value, torch.zeros_like(value))
    if np.any(d < 0):
        raise ValueError("distance must be >= 0")
    out = np.where(d > 0, np.power(float(gamma), d.astype(np.float64) - 1), 0.0)
    return float(out) if out.ndim == 0 else out


__all__ = [
    "distance_distribution",
    "expected_rewarded_transitions",
    "log_distance_distribution",
    "log_random_success_probability",
    "log_success_probability_from_distance",
    "optimal_q",
    "optimal_value",
    "random_success_probability",
    "success_probability_from_distance",
]
