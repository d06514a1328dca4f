"""Diagrams for the chapters, drawn with matplotlib (the course ships no image files).

Each public function draws one picture on a new figure and returns the figure. Like
:mod:`bitflip_lib.ui.plots`, the figure is closed in pyplot at once, so a notebook cell shows it
exactly once when it is the cell's last expression, and the functions work headless (``Agg``).
The functions are independent of each other: a new diagram is a new function. The private
helpers ``_canvas``, ``_box`` and ``_arrow`` are the shared drawing primitives.

* :func:`hypercube_walk`: the n-cube of bit strings laid out by Hamming distance to the goal,
  with one random walk on it, beside the birth-death chain that the distance follows (chapter 1).
* :func:`uvfa_architecture`: the write-up's UVFA, two encoders and a bilinear form (chapter 3).
* :func:`mlp_architecture`: the HER paper's MLP on the concatenated state and goal (chapter 3).
* :func:`her_relabelling`: one failed episode and the goals HER gives one of its transitions
  (chapter 4).
* :func:`har_architecture`: the write-up's HAR, one small network on (distance, bit differs)
  shared by every bit (chapter 6).

Typical use::

    from bitflip_lib.ui import diagrams
    diagrams.hypercube_walk(n=3)
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from bitflip_lib.ui.plots import new_figure

MAX_CUBE_BITS = 5
"""Largest n that :func:`hypercube_walk` draws (2^5 = 32 strings still have readable labels)."""

_BOX_COLOURS = {"input": "#dbe9f6", "layer": "#fde7c8", "output": "#d9f0d3", "note": "#f2f2f2"}


# --- shared drawing primitives -------------------------------------------------------------

def _canvas(figsize: tuple[float, float], title: str) -> tuple[Figure, Axes]:
    """A figure with one frameless axes whose data coordinates run over [0, 1] x [0, 1]."""
    fig = new_figure(figsize=figsize)
    ax = fig.add_subplot()
    ax.set(xlim=(0, 1), ylim=(0, 1), title=title)
    ax.axis("off")
    return fig, ax


def _box(ax: Axes, x: float, y: float, text: str, kind: str = "layer", fontsize: float = 9.5) -> None:
    """A rounded box centred at (x, y) holding ``text``; ``kind`` picks the colour."""
    ax.text(x, y, text, ha="center", va="center", fontsize=fontsize, gid=f"box:{kind}",
            bbox=dict(boxstyle="round,pad=0.45", facecolor=_BOX_COLOURS[kind], edgecolor="0.3"))


def _arrow(ax: Axes, start: tuple[float, float], end: tuple[float, float], text: str | None = None) -> None:
    """An arrow from ``start`` to ``end`` (data coordinates: box edges), optionally labelled above its middle."""
    ax.annotate("", xy=end, xytext=start, arrowprops=dict(arrowstyle="-|>", color="0.25", lw=1.2,
                                                          shrinkA=0, shrinkB=0))
    if text:
        ax.text((start[0] + end[0]) / 2, (start[1] + end[1]) / 2 + 0.035, text, ha="center",
                va="bottom", fontsize=8, color="0.25")


# --- chapter 1: the random walk on the hypercube -------------------------------------------

def _check_bits(n: int) -> None:
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_CUBE_BITS:
        raise ValueError(f"n must be an integer from 1 to {MAX_CUBE_BITS} (the cube has 2^n labelled corners), got {n!r}")


def _check_goal(n: int, goal: str | None) -> str:
    if goal is None:
        return "0" * n
    if not isinstance(goal, str) or len(goal) != n or set(goal) - {"0", "1"}:
        raise ValueError(f"goal must be a string of {n} characters '0'/'1' (bit 0 first), got {goal!r}")
    return goal


def _flip(bits: str, i: int) -> str:
    return bits[:i] + ("1" if bits[i] == "0" else "0") + bits[i + 1:]


def random_walk_path(n: int, goal: str | None = None, seed: int = 0, start: str | None = None) -> list[str]:
    """One random-policy episode as bit strings (bit 0 first): start, then one string per flip.

    The start is a uniform string other than the goal (or ``start``); each step flips a uniformly
    random bit; the walk stops on reaching the goal or after n flips, as in ``BitFlipEnv``.
    """
    _check_bits(n)
    goal = _check_goal(n, goal)
    rng = np.random.default_rng(seed)
    if start is None:
        start = goal
        while start == goal:
            start = "".join(rng.choice(["0", "1"], size=n))
    elif _check_goal(n, start) == goal:
        raise ValueError("start must differ from the goal (a start equal to its goal is redrawn)")
    path = [start]
    while len(path) <= n and path[-1] != goal:
        path.append(_flip(path[-1], int(rng.integers(n))))
    return path


def hypercube_walk(n: int = 3, goal: str | None = None, seed: int = 0) -> Figure:
    """The n-bit strings as corners of a cube, by distance to the goal, and the distance chain.

    Left: every string, placed in column ``d`` = its Hamming distance to ``goal`` (default all
    zeros), joined to the n strings one flip away (``n * 2^(n-1)`` edges); one random walk
    (:func:`random_walk_path` with ``seed``) is drawn in colour with its step numbers. Right: the
    birth-death chain the distance follows under random flips, ``d -> d - 1`` with probability
    ``d / n`` and ``d -> d + 1`` with ``(n - d) / n``, absorbed at the goal (d = 0).
    """
    _check_bits(n)
    goal = _check_goal(n, goal)
    strings = ["".join(b) for b in np.array(np.meshgrid(*[["0", "1"]] * n, indexing="ij")).reshape(n, -1).T]
    distance = {s: sum(a != b for a, b in zip(s, goal)) for s in strings}
    position = {}
    for d in range(n + 1):
        column = sorted(s for s in strings if distance[s] == d)
        for k, s in enumerate(column):
            position[s] = (d, (k + 1) / (len(column) + 1))

    fig = new_figure(figsize=(9.0, 4.2))
    cube, chain = fig.subplots(1, 2, width_ratios=(1.35, 1))
    for s in strings:
        for i in range(n):
            t = _flip(s, i)
            if s < t:  # each edge once
                (x0, y0), (x1, y1) = position[s], position[t]
                cube.plot([x0, x1], [y0, y1], color="0.8", lw=0.8, zorder=1, gid="edge")
    path = random_walk_path(n, goal, seed)
    steps_on: dict[tuple[str, str], list[int]] = {}  # directed edge -> the steps that took it
    for step, (s, t) in enumerate(zip(path, path[1:]), start=1):
        steps_on.setdefault((s, t), []).append(step)
    for (s, t), steps in steps_on.items():
        (x0, y0), (x1, y1) = position[s], position[t]
        cube.annotate("", xy=(x1, y1), xytext=(x0, y0), zorder=3, gid="walk",
                      arrowprops=dict(arrowstyle="-|>", color="C3", lw=2, shrinkA=9, shrinkB=9))
        # Label nearer the head, so that the two directions of one edge get separate labels.
        cube.text(x0 + 0.62 * (x1 - x0), y0 + 0.62 * (y1 - y0), ",".join(map(str, steps)), color="C3",
                  fontsize=8, ha="center", va="center", zorder=4,
                  bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="C3", lw=0.6))
    for s, (x, y) in position.items():
        kind = "goal" if s == goal else ("start" if s == path[0] else "other")
        face = {"goal": "#b7e4a7", "start": "#f6c6c6", "other": "white"}[kind]
        cube.text(x, y, s, ha="center", va="center", fontsize=9 if n <= 4 else 7, family="monospace",
                  zorder=5, gid=f"string:{kind}", bbox=dict(boxstyle="round,pad=0.25", fc=face, ec="0.4", lw=0.7))
    cube.set(xlim=(-0.5, n + 0.5), ylim=(0, 1), xticks=range(n + 1), yticks=[],
             xlabel="Hamming distance $d$ to the goal",
             title=f"{n}-bit strings; goal {goal} (green),\na random walk from {path[0]} (red)")
    for side in ("left", "right", "top"):
        cube.spines[side].set_visible(False)

    for d in range(n + 1):
        chain.text(d, 0.5, f"{d}", ha="center", va="center", fontsize=11, zorder=3, gid="state",
                   bbox=dict(boxstyle="circle,pad=0.35", fc="#b7e4a7" if d == 0 else "white", ec="0.3"))
        if d >= 1:  # d -> d - 1, a differing bit flipped
            chain.annotate("", xy=(d - 1, 0.42), xytext=(d, 0.42), arrowprops=dict(
                arrowstyle="-|>", color="C0", connectionstyle="arc3,rad=-0.45", shrinkA=10, shrinkB=10))
            chain.text(d - 0.5, 0.2, f"{d}/{n}", ha="center", color="C0", fontsize=9)
        if d < n and d >= 1:  # d -> d + 1, a matching bit flipped (never from the goal: absorbed)
            chain.annotate("", xy=(d + 1, 0.58), xytext=(d, 0.58), arrowprops=dict(
                arrowstyle="-|>", color="C1", connectionstyle="arc3,rad=-0.45", shrinkA=10, shrinkB=10))
            chain.text(d + 0.5, 0.76, f"{n - d}/{n}", ha="center", color="C1", fontsize=9)
    chain.text(0, 0.33, "goal:\nabsorbed", ha="center", va="top", fontsize=8)
    chain.set(xlim=(-0.6, n + 0.6), ylim=(0, 1), title="The distance under random flips:\na birth-death chain")
    chain.axis("off")
    return fig


# --- chapter 3: the network architectures --------------------------------------------------

def _check_width(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")


def _size(n: int | None) -> str:
    return "n" if n is None else str(n)


def uvfa_architecture(n: int | None = None, embed: int = 128) -> Figure:
    """The write-up's UVFA: ``Q(s, g, a) = phi(s)^T W_a psi(g) + w_a``.

    The state and the goal each go through ``Linear(n, embed) + GELU``; one ``embed x embed``
    matrix ``W_a`` per action combines the two embeddings. With an integer ``n`` the boxes show
    the sizes and the parameter count (as :class:`bitflip_lib.networks.UVFA` has them); with
    ``None`` they show the symbol n.
    """
    if n is not None:
        _check_width("n", n)
    _check_width("embed", embed)
    k, e = _size(n), str(embed)
    title = "UVFA (the write-up's): separate encoders for state and goal, combined by a bilinear form"
    if n is not None:
        title += f"\nn = {n}: {2 * (n * embed + embed) + n * embed * embed + n:,} parameters"
    fig, ax = _canvas((9.0, 3.6), title)
    _box(ax, 0.08, 0.72, f"state $s$\n$\\{{0,1\\}}^{{{k}}}$", "input")
    _box(ax, 0.08, 0.28, f"goal $g$\n$\\{{0,1\\}}^{{{k}}}$", "input")
    _box(ax, 0.34, 0.72, f"Linear({k} → {e})\n+ GELU", "layer")
    _box(ax, 0.34, 0.28, f"Linear({k} → {e})\n+ GELU", "layer")
    _box(ax, 0.695, 0.5, f"bilinear form, one matrix per action:\n"
                        f"$Q(s,g,a) = \\phi(s)^\\top W_a\\, \\psi(g) + w_a$\n"
                        f"{k} matrices $W_a$ of {e} × {e}", "layer")
    _box(ax, 0.94, 0.5, f"$Q(s, g, \\cdot)$\n$\\mathbb{{R}}^{{{k}}}$", "output")
    _arrow(ax, (0.13, 0.72), (0.27, 0.72))
    _arrow(ax, (0.13, 0.28), (0.27, 0.28))
    _arrow(ax, (0.41, 0.72), (0.55, 0.60), f"$\\phi(s) \\in \\mathbb{{R}}^{{{e}}}$")
    _arrow(ax, (0.41, 0.28), (0.55, 0.40), f"$\\psi(g) \\in \\mathbb{{R}}^{{{e}}}$")
    _arrow(ax, (0.84, 0.5), (0.895, 0.5))
    return fig


def _check_hidden(hidden: Sequence[int], example: str) -> tuple[int, ...]:
    """The hidden widths as a tuple, refused with a clear message when empty or not positive."""
    hidden = tuple(hidden)
    if not hidden:
        raise ValueError(f"hidden must list at least one layer width, e.g. {example}")
    for h in hidden:
        _check_width("each hidden width", h)
    return hidden


def mlp_architecture(n: int | None = None, hidden: Sequence[int] = (256,)) -> Figure:
    """The HER paper's MLP: ``[s, g]`` concatenated, hidden ReLU layers, n outputs.

    ``hidden`` are the hidden layer widths (one layer of 256 by default, as
    :class:`bitflip_lib.networks.MLP`). With an integer ``n`` the title gives the parameter count.
    """
    if n is not None:
        _check_width("n", n)
    hidden = _check_hidden(hidden, example="(256,)")
    k = _size(n)
    title = "MLP (the HER paper's): one network on the concatenated state and goal"
    if n is not None:
        widths = (2 * n, *hidden, n)
        title += f"\nn = {n}: {sum(a * b + b for a, b in zip(widths, widths[1:])):,} parameters"
    fig, ax = _canvas((9.0, 3.2), title)
    _box(ax, 0.05, 0.75, f"state $s$\n$\\{{0,1\\}}^{{{k}}}$", "input")
    _box(ax, 0.05, 0.25, f"goal $g$\n$\\{{0,1\\}}^{{{k}}}$", "input")
    both = f"2{k}" if n is None else str(2 * n)
    _box(ax, 0.22, 0.5, f"concatenate\n$[s, g] \\in \\{{0,1\\}}^{{{both}}}$", "layer")
    _arrow(ax, (0.095, 0.70), (0.16, 0.56))
    _arrow(ax, (0.095, 0.30), (0.16, 0.44))
    layers = list(zip([both, *map(str, hidden)], [*map(str, hidden), k]))
    xs = np.linspace(0.42, 0.78, len(layers))
    half = 0.065  # half the width of a layer box, in axes coordinates
    previous = 0.285  # right edge of the concatenation box
    for i, (x, (w_in, w_out)) in enumerate(zip(xs, layers)):
        relu = "" if i == len(layers) - 1 else "\n+ ReLU"
        _box(ax, float(x), 0.5, f"Linear({w_in} → {w_out}){relu}", "layer")
        _arrow(ax, (previous, 0.5), (float(x) - half, 0.5))
        previous = float(x) + half
    _box(ax, 0.94, 0.5, f"$Q(s, g, \\cdot)$\n$\\mathbb{{R}}^{{{k}}}$", "output")
    _arrow(ax, (previous, 0.5), (0.895, 0.5))
    return fig


def her_relabelling(states: Sequence[str], goal: str, t: int = 1) -> Figure:
    """One episode ``states[0] -> ... -> states[L]`` that misses ``goal``, and the new goals that
    HER's strategies give the transition of step ``t`` (from ``states[t]`` to ``states[t + 1]``).

    Each state is a bit string and consecutive states differ in exactly one bit. ``final`` uses
    ``states[L]``; ``future`` draws from ``states[t + 1 .. L]``; ``episode`` from ``states[1 .. L]``.
    The transition earns reward 1 exactly for the goal ``states[t + 1]``.
    """
    states = list(states)
    if len(states) < 2:
        raise ValueError("states must hold an episode of at least one step (two states)")
    n = len(states[0])
    for s in [*states, goal]:
        if len(s) != n or set(s) - {"0", "1"}:
            raise ValueError(f"every state and the goal must be a bit string of length {n}, got {s!r}")
    flips = []
    for a, b in zip(states, states[1:]):
        diff = [i for i in range(n) if a[i] != b[i]]
        if len(diff) != 1:
            raise ValueError(f"consecutive states must differ in exactly one bit: {a} -> {b}")
        flips.append(diff[0])
    if goal in states[1:]:
        raise ValueError("the episode reaches its goal: HER is drawn on a failed episode")
    length = len(states) - 1
    if not 0 <= t < length:
        raise ValueError(f"t must name a step of the episode, 0 <= t < {length}, got {t}")
    fig, ax = _canvas((9.0, 4.2), f"HER on one failed episode: new goals for the transition of step t = {t}")
    xs = np.linspace(0.07, 0.78, length + 1)
    for i, (x, s) in enumerate(zip(xs, states)):
        kind = "output" if t + 1 <= i else "input"
        _box(ax, float(x), 0.72, f"$s_{i}$\n{s}", kind)
        if i < length:
            _arrow(ax, (float(x) + 0.04, 0.72), (float(xs[i + 1]) - 0.04, 0.72), f"flip {flips[i]}")
    _box(ax, 0.93, 0.72, f"goal $g$\n{goal}\nnever reached:\nreward 0 everywhere", "note")
    ax.annotate("", xy=(float(xs[t + 1]), 0.86), xytext=(float(xs[t]), 0.86),
                arrowprops=dict(arrowstyle="-|>", color="tab:red", lw=2.0, connectionstyle="arc3,rad=-0.4"))
    ax.text(float(xs[t] + xs[t + 1]) / 2, 0.98, f"transition t = {t}", ha="center", color="tab:red", fontsize=9)
    rows = [("final", f"$g' = s_{length}$ (the last state)"),
            ("future", f"$g'$ drawn from $s_{t + 1}, \\dots, s_{length}$ (green: now or later)"),
            ("episode", f"$g'$ drawn from $s_1, \\dots, s_{length}$ (anywhere in the episode)")]
    for j, (name, text) in enumerate(rows):
        ax.text(0.03, 0.42 - 0.1 * j, f"{name}:", fontsize=9.5, fontweight="bold", va="center")
        ax.text(0.14, 0.42 - 0.1 * j, text, fontsize=9.5, va="center")
    ax.text(0.03, 0.08, f"Relabelled with $g' = s_{t + 1}$, the transition reaches its goal: reward 1 and done. "
            "Any other $g'$: reward 0, and the target still bootstraps.", fontsize=9.5, va="center")
    return fig


def har_architecture(n: int | None = None, hidden: Sequence[int] = (64, 64)) -> Figure:
    """The write-up's HAR: ``Q(s, g, a) = phi(||s - g||_1 / n, |s_a - g_a|)``, one ``phi`` for all bits.

    ``hidden`` are the widths of ``phi``'s hidden ReLU layers (as
    :class:`bitflip_lib.networks.HAR`); the parameter count in the title does not depend on n.
    """
    if n is not None:
        _check_width("n", n)
    hidden = _check_hidden(hidden, example="(64, 64)")
    k = _size(n)
    widths = (2, *hidden, 1)
    count = sum(a * b + b for a, b in zip(widths, widths[1:]))
    fig, ax = _canvas((9.0, 3.8), "HAR (the write-up's): one small network phi on (distance, bit differs), shared by every bit\n"
                      f"{count:,} parameters for every n")
    _box(ax, 0.06, 0.72, f"state $s$\n$\\{{0,1\\}}^{{{k}}}$", "input")
    _box(ax, 0.06, 0.28, f"goal $g$\n$\\{{0,1\\}}^{{{k}}}$", "input")
    _box(ax, 0.24, 0.5, f"per bit:\n$x_a = |s_a - g_a|$\n{k} values", "layer")
    _box(ax, 0.42, 0.78, "distance\n$d = \\sum_a x_a$,\nfed as $d / n$", "layer")
    _arrow(ax, (0.10, 0.66), (0.17, 0.56))
    _arrow(ax, (0.10, 0.34), (0.17, 0.44))
    _arrow(ax, (0.31, 0.58), (0.36, 0.72))
    layers = " → ".join(["2", *map(str, hidden), "1"])
    _box(ax, 0.66, 0.5, f"$\\phi(d/n,\\ x_a)$ for each bit $a$\nMLP {layers}, ReLU\nthe same weights for all {k} bits", "layer")
    _arrow(ax, (0.49, 0.74), (0.60, 0.58), "same $d$ for every bit")
    _arrow(ax, (0.31, 0.46), (0.55, 0.46), "its own $x_a$")
    _box(ax, 0.93, 0.5, f"$Q(s, g, a)$\nfor all {k} bits", "output")
    _arrow(ax, (0.78, 0.5), (0.88, 0.5))
    ax.text(0.5, 0.08, "Permuting the bits permutes the outputs; XOR-ing s and g with one mask changes nothing.",
            ha="center", fontsize=9)
    return fig


__all__ = ["MAX_CUBE_BITS", "har_architecture", "her_relabelling", "hypercube_walk", "mlp_architecture",
           "random_walk_path", "uvfa_architecture"]
