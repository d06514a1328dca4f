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
* :func:`generation_tree`: writing a string left to right as a tree of prefixes, the target
  hidden in the reward at one leaf (chapter 8).
* :func:`rlhf_pipeline`: supervised model, comparisons, reward model, RL with a KL penalty, and
  DPO's shortcut (chapter 8).
* :func:`tree_and_dag`: one parent per state (writing left to right, ``P_B = 1``) against
  several (setting bits in any order), where the backward policy matters (chapter 9).

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


# --- chapters 8 and 9: generation ------------------------------------------------------------

MAX_TREE_BITS = 4
"""Longest target that :func:`generation_tree` draws (2^4 = 16 leaves still have readable labels)."""


def generation_tree(target: str = "101") -> Figure:
    """Writing ``L = len(target)`` bits left to right: every prefix is a state, each action appends
    one bit, and only the finished strings (the leaves) are scored, 1 for ``target``, 0 otherwise.

    The path that writes the target is drawn in red; every state has exactly one parent.
    """
    if not isinstance(target, str) or not 1 <= len(target) <= MAX_TREE_BITS or set(target) - {"0", "1"}:
        raise ValueError(f"target must be a string of 1 to {MAX_TREE_BITS} characters '0'/'1', got {target!r}")
    L = len(target)
    fig, ax = _canvas((9, 1.1 + 0.38 * 2**L), f"Writing L = {L} bits left to right: {2**L} strings, the target "
                      f"{target} hidden in the reward")
    xs = np.linspace(0.05, 0.64, L + 1)

    def y(depth: int, index: int) -> float:  # leaves evenly spaced, each parent centred on its children
        span = 2 ** (L - depth)
        return 0.94 - 0.88 * (index * span + (span - 1) / 2) / (2**L - 1)

    for depth in range(L + 1):
        for index in range(2**depth):
            prefix = format(index, f"0{depth}b") if depth else ""
            on_path = target.startswith(prefix)
            if depth < L:
                for bit in (0, 1):
                    child = 2 * index + bit
                    red = on_path and target[depth] == str(bit)
                    ax.annotate("", xy=(float(xs[depth + 1]) - 0.03, y(depth + 1, child)),
                                xytext=(float(xs[depth]) + 0.03, y(depth, index)),
                                arrowprops=dict(arrowstyle="-|>", lw=2.0 if red else 0.9,
                                                color="tab:red" if red else "0.55", shrinkA=0, shrinkB=0))
            kind = "output" if prefix == target else ("layer" if on_path else "note")
            label = "start" if depth == 0 else prefix
            _box(ax, float(xs[depth]), y(depth, index), label, kind, fontsize=8.5 if L < 4 else 7.5)
            if depth == L:
                reward = "R = 1" if prefix == target else "R = 0"
                ax.text(float(xs[depth]) + 0.05, y(depth, index), reward, va="center", fontsize=8,
                        color="tab:red" if prefix == target else "0.35",
                        fontweight="bold" if prefix == target else "normal")
    for depth in range(L):
        ax.text(float(xs[depth] + xs[depth + 1]) / 2, -0.02, f"bit {depth + 1}", ha="center", va="top",
                fontsize=8, color="0.3")
    ax.text(0.76, 0.5, "state = the prefix written so far\naction = the next bit\nreward only at the end\n"
            "each state has one parent:\nthe states form a tree", fontsize=9, va="center", ha="left", color="0.2")
    return fig


def rlhf_pipeline() -> Figure:
    """The RLHF pipeline (Christiano et al. 2017; Ziegler et al. 2019; Ouyang et al. 2022) and DPO's
    shortcut (Rafailov et al. 2023): supervised model, compared pairs, a Bradley-Terry reward model,
    RL with a KL penalty to the supervised model, and the tuned policy."""
    fig, ax = _canvas((9.2, 4.4), "Where the chapter's pieces sit in RL from human feedback (RLHF)")
    _box(ax, 0.09, 0.8, "pretrained\nlanguage model", "input")
    _box(ax, 0.36, 0.8, "supervised fine-tuning\non demonstrations:\n$\\pi_{\\mathrm{ref}}$", "layer")
    _box(ax, 0.77, 0.8, "pairs $y_1, y_2$ sampled from $\\pi_{\\mathrm{ref}}$;\npeople pick the better one:\n"
         "$y_w \\succ y_l$", "input")
    _box(ax, 0.82, 0.22, "reward model $R_\\phi$\nfitted to the comparisons\n(Bradley-Terry)", "layer")
    _box(ax, 0.47, 0.22, "RL: maximise $\\mathbb{E}_\\pi[R_\\phi] - \\beta\\,\\mathrm{KL}(\\pi \\| \\pi_{\\mathrm{ref}})$\n"
         "PPO (a learned value as baseline),\nRLOO / GRPO (baselines from a group of samples)", "layer")
    _box(ax, 0.1, 0.22, "tuned policy $\\pi$", "output")
    _arrow(ax, (0.165, 0.8), (0.255, 0.8))
    _arrow(ax, (0.465, 0.8), (0.615, 0.8))
    _arrow(ax, (0.82, 0.66), (0.82, 0.36))
    _arrow(ax, (0.72, 0.22), (0.68, 0.22))
    _arrow(ax, (0.26, 0.22), (0.16, 0.22))
    ax.annotate("", xy=(0.4, 0.35), xytext=(0.4, 0.66), arrowprops=dict(arrowstyle="-|>", color="0.45", lw=1.0,
                                                                        ls="--", shrinkA=0, shrinkB=0))
    ax.text(0.415, 0.42, "starts from $\\pi_{\\mathrm{ref}}$;\nKL keeps it near", fontsize=8, color="0.35",
            ha="left", va="center")
    ax.annotate("", xy=(0.13, 0.33), xytext=(0.64, 0.7),
                arrowprops=dict(arrowstyle="-|>", color="tab:purple", lw=1.6, ls="--", shrinkA=0, shrinkB=0,
                                connectionstyle="arc3,rad=0.12"))
    ax.text(0.2, 0.6, "DPO: the same optimum, straight\nfrom the comparisons (no reward model,\n"
            "no sampling while training)", fontsize=8.5, color="tab:purple", ha="center", va="center")
    ax.text(0.82, 0.02, "optimised too hard, $R_\\phi$ is exploited:\nreward over-optimisation", fontsize=8,
            color="tab:red", ha="center", va="bottom")
    return fig


def tree_and_dag() -> Figure:
    """Two ways to build 2-bit strings. Left: left to right, every state has one parent, so the
    backward policy is ``P_B = 1``. Right: set the bits in any order; a finished string has two
    parents, and ``P_B`` chooses which step to undo (here each with probability 1/2)."""
    fig = new_figure(figsize=(9, 3.6))
    left, right = fig.subplots(1, 2)
    for ax, title in ((left, "Left to right: one parent each, $P_B = 1$"),
                      (right, "Any order: each finished string has two parents, $P_B = 1/2$")):
        ax.set(xlim=(0, 1), ylim=(0, 1), title=title)
        ax.title.set_fontsize(10)
        ax.axis("off")
    tree = {"start": (0.1, 0.5), "0": (0.45, 0.75), "1": (0.45, 0.25),
            "00": (0.85, 0.89), "01": (0.85, 0.63), "10": (0.85, 0.37), "11": (0.85, 0.11)}
    for child, parent in (("0", "start"), ("1", "start"), ("00", "0"), ("01", "0"), ("10", "1"), ("11", "1")):
        _arrow(left, (tree[parent][0] + 0.07, tree[parent][1]), (tree[child][0] - 0.07, tree[child][1]))
    for name, (x, y) in tree.items():
        _box(left, x, y, name, "output" if len(name) == 2 else "layer", fontsize=9)
    dag = {"start": (0.08, 0.5), "0_": (0.42, 0.89), "1_": (0.42, 0.63), "_0": (0.42, 0.37), "_1": (0.42, 0.11),
           "00": (0.86, 0.89), "01": (0.86, 0.63), "10": (0.86, 0.37), "11": (0.86, 0.11)}
    for full in ("00", "01", "10", "11"):
        for parent in (full[0] + "_", "_" + full[1]):
            red = full == "01"
            right.annotate("", xy=(dag[full][0] - 0.07, dag[full][1]), xytext=(dag[parent][0] + 0.07, dag[parent][1]),
                           arrowprops=dict(arrowstyle="-|>", color="tab:red" if red else "0.45", lw=1.8 if red else 0.9,
                                           shrinkA=0, shrinkB=0))
    for half in ("0_", "1_", "_0", "_1"):
        _arrow(right, (dag["start"][0] + 0.07, dag["start"][1]), (dag[half][0] - 0.07, dag[half][1]))
    for name, (x, y) in dag.items():
        _box(right, x, y, name, "output" if "_" not in name and name != "start" else "layer", fontsize=9)
    right.text(0.64, 0.73, "1/2", color="tab:red", fontsize=8.5, ha="center")
    right.text(0.64, 0.47, "1/2", color="tab:red", fontsize=8.5, ha="center")
    return fig


__all__ = ["generation_tree", "MAX_CUBE_BITS", "MAX_TREE_BITS", "har_architecture", "her_relabelling",
           "hypercube_walk", "mlp_architecture", "random_walk_path", "rlhf_pipeline", "tree_and_dag",
           "uvfa_architecture"]
