"""Small concept widgets: move a slider, see the answer at once (each update takes milliseconds).

* :class:`RandomReachExplorer` (chapter 1): the exact chance that random flips reach the goal,
  against n and the episode length, with a simulation of random agents beside it.
* :class:`FlipGapExplorer` (chapter 2): the gap ``Q*(good flip) - Q*(bad flip)`` against the
  discount gamma and the distance d, and the gamma that makes it largest.
* :class:`HERStepper` (chapter 4): walk through one episode and see, step by step, which goals
  and rewards each relabelling strategy adds.
* :class:`PhiExplorer` (chapter 6): what a HAR's phi has learned, as a function of its two inputs
  (bit differs, distance), against the exact optimal values.
* :class:`StoredRunBrowser` (chapter 7): the learning curves of the stored Table 1 runs, one cell
  (preset, method, n) at a time, each seed marked where it was solved.

Each is an ``ipywidgets.VBox`` with ``controls`` (a dict of the widgets a student moves), an
``image`` (the figure as PNG; :attr:`figure` keeps the matplotlib figure) and a ``text`` (HTML).
Changing a control redraws at once; ``update()`` does it by hand. They work headless too: set
``widget.controls['n'].value = 12`` and read ``widget.text.value``. Figures are sized for the
notebook (:mod:`bitflip_lib.ui.live`); an argument outside what a control can show is a
``ValueError`` naming it and its range.
"""
from __future__ import annotations

import html
import math
from functools import lru_cache

import ipywidgets as widgets
import numpy as np
import torch
from matplotlib.figure import Figure

from bitflip_lib import theory
from bitflip_lib.env import BitFlipEnv
from bitflip_lib.her import HER_STRATEGIES, her_relabel
from bitflip_lib.trainer import play_episode
from bitflip_lib.ui.live import (FIGURE_DPI, FIGURE_WIDTH, FONT, check_int, check_number, figure_png, integer_ticks,
                                 legend_below, saved_view_note, WIDGET_CLASS)

__all__ = [
    "ConceptWidget", "FlipGapExplorer", "HERStepper", "PhiExplorer", "RandomReachExplorer", "STORED_METRICS",
    "StoredRunBrowser",
]

_STYLE = {"description_width": "150px"}
_SLIDER = widgets.Layout(width="100%", max_width="430px", min_width="0")


class ConceptWidget(widgets.VBox):
    """Controls on top, a figure and a line of text below; every control change redraws."""

    title = ""

    def __init__(self, controls: dict[str, widgets.Widget], figsize: tuple[float, float] = (FIGURE_WIDTH, 3.3)) -> None:
        self.controls = controls
        self.figsize = figsize
        self.figure: Figure | None = None
        self.redraws = 0
        self.image = widgets.Image(format="png", layout=widgets.Layout(width="100%",
                                                                       max_width=f"{FIGURE_WIDTH * FIGURE_DPI:.0f}px"))
        self.text = widgets.HTML()
        for control in controls.values():
            control.observe(lambda _: self.update(), names="value")
        grid = widgets.GridBox(list(controls.values()), layout=widgets.Layout(
            grid_template_columns="repeat(auto-fill, minmax(330px, 1fr))", grid_gap="2px 18px", width="100%"))
        super().__init__([widgets.HTML(f"<b>{self.title}</b>"), saved_view_note(), grid, self.image, self.text],
                         layout=widgets.Layout(max_width="900px"))
        self.add_class(WIDGET_CLASS)
        self.update()

    def values(self) -> dict:
        return {k: c.value for k, c in self.controls.items()}

    def update(self) -> None:
        """Redraw the figure and the text for the controls' current values."""
        fig = Figure(figsize=self.figsize)
        fig.subplots_adjust(left=0.085, right=0.985, bottom=0.17, top=0.9, wspace=0.3)  # fixed: cheaper than a layout engine
        self.text.value = self.draw(fig, **self.values())
        for ax in fig.axes:  # text at the sizes every widget uses (12-15 px)
            ax.title.set_fontsize(FONT["title"])
            ax.xaxis.label.set_fontsize(FONT["label"])
            ax.yaxis.label.set_fontsize(FONT["label"])
            ax.tick_params(labelsize=FONT["ticks"])
        self.figure = fig
        self.image.value = figure_png(fig)
        self.redraws += 1

    def draw(self, fig: Figure, **values) -> str:  # pragma: no cover - each widget defines it
        raise NotImplementedError


# ----- chapter 1 ------------------------------------------------------------------------------------
@lru_cache(maxsize=4096)
def _log_p(n: int, steps: int) -> float:
    return theory.log_random_success_probability(n, steps)


class RandomReachExplorer(ConceptWidget):
    """The exact chance that an episode of random flips reaches its goal, and a simulation beside it.

    Left: against n, for the chosen episode length. Right: against the episode length, for the
    chosen n. The black dot is ``agents`` simulated random agents in :class:`~bitflip_lib.env.BitFlipEnv`
    at the chosen (n, length), with a bar of 2 standard errors.

    Args:
        n, steps: initial values (steps None = n, the course's episode length).
        max_n, max_steps: slider ranges. agents: simulated agents per point. seed: simulation seed.
    """

    title = "Random flips: how likely is one reward?"

    def __init__(self, n: int = 10, steps: int | None = None, max_n: int = 30, max_steps: int = 120,
                 agents: int = 4096, seed: int = 0) -> None:
        max_n, max_steps = check_int("max_n", max_n, 2, 60), check_int("max_steps", max_steps, 1, 1000)
        n = check_int("n", n, 1, max_n)
        steps = n if steps is None else check_int("steps", steps, 1, max_steps)
        self.agents, self.seed = check_int("agents", agents, 16), check_int("seed", seed, 0)
        self.max_n, self.max_steps = max_n, max_steps
        controls = {
            "n": widgets.IntSlider(value=n, min=1, max=max_n, description="bits n", style=_STYLE, layout=_SLIDER),
            "steps": widgets.IntSlider(value=min(steps, max_steps), min=1, max=max_steps, description="episode length (flips)",
                                       style=_STYLE, layout=_SLIDER),
        }
        super().__init__(controls)

    def simulate(self, n: int, steps: int) -> float:
        """Fraction of ``agents`` random agents that reach their goal within ``steps`` flips."""
        env = BitFlipEnv(n, self.agents, steps, device="cpu", seed=self.seed + 1000 * n + steps)
        env.reset()
        rng = torch.Generator().manual_seed(self.seed + 7)
        while not env.episode_over:
            env.step(torch.randint(0, n, (self.agents,), generator=rng))
        return float(env.done.float().mean())

    def draw(self, fig: Figure, n: int, steps: int) -> str:
        exact = math.exp(_log_p(n, steps))
        simulated = self.simulate(n, steps)
        se = math.sqrt(max(exact * (1 - exact), 1e-300) / self.agents)
        ax_n, ax_t = fig.subplots(1, 2)
        ns = np.arange(1, self.max_n + 1)
        ax_n.semilogy(ns, [math.exp(_log_p(int(m), steps)) for m in ns], lw=2, label=f"exact, {steps} flips")
        ax_n.semilogy(ns, ns / (2.0**ns - 1), ":", color="grey", label="$n / (2^n - 1)$")
        lengths = np.arange(1, self.max_steps + 1)
        ax_t.semilogy(lengths, [math.exp(_log_p(n, int(t))) for t in lengths], lw=2, color="C1", label=f"exact, n = {n}")
        ax_t.axvline(n, color="grey", ls=":", lw=1, label="length n (the course's)")
        for ax, x in ((ax_n, n), (ax_t, steps)):
            if simulated > 0:
                ax.errorbar([x], [simulated], yerr=[[min(2 * se, simulated * 0.999)], [2 * se]], fmt="o", color="k",
                            ms=5, label=f"simulated ({self.agents} agents)")
            else:
                ax.plot([x], [exact], "x", color="k", ms=8, label=f"simulated: none of {self.agents} reached it")
            ax.grid(alpha=0.3, which="major")
            ax.legend(fontsize=FONT["legend"])
        ax_n.set(xlabel="number of bits n", ylabel="P(random episode is rewarded)", title="against n")
        ax_t.set(xlabel="episode length (flips)", title="against the episode length")
        return (f"n = {n}, {steps} flips: exact <b>{exact:.3g}</b>; simulated {simulated:.3g} "
                f"(&plusmn; {2 * se:.2g}, {self.agents} random agents). About one rewarded episode in "
                f"{1 / exact:,.0f}." if exact > 0 else f"n = {n}, {steps} flips: exact 0: too few flips to reach every goal.")


# ----- chapter 2 ------------------------------------------------------------------------------------
class FlipGapExplorer(ConceptWidget):
    """``Q*(good) - Q*(bad) = gamma^(d-1) - gamma^(d+1)``: what a learner must tell apart at distance d.

    Left: against d for the chosen gamma (and the write-up's 0.9). Right: against gamma at the
    chosen d, with its best gamma, ``sqrt((d-1)/(d+1))``, marked.
    """

    title = "The gap between a good and a bad flip"

    def __init__(self, gamma: float = 0.9, d: int = 5, max_d: int = 100) -> None:
        self.max_d = check_int("max_d", max_d, 2, 10_000)
        gamma = check_number("gamma", gamma, 0.5, 0.999)
        controls = {
            "gamma": widgets.FloatSlider(value=gamma, min=0.5, max=0.999, step=0.001, readout_format=".3f",
                                         description="discount gamma", style=_STYLE, layout=_SLIDER),
            "d": widgets.IntSlider(value=check_int("d", d, 1, self.max_d), min=1, max=self.max_d,
                                   description="distance d (bits)", style=_STYLE, layout=_SLIDER),
        }
        super().__init__(controls)

    @staticmethod
    def gap(d, gamma: float):
        return theory.optimal_q(d, True, gamma) - theory.optimal_q(d, False, gamma)

    def draw(self, fig: Figure, gamma: float, d: int) -> str:
        ax_d, ax_g = fig.subplots(1, 2)
        ds = np.arange(1, self.max_d + 1)
        ax_d.semilogy(ds, self.gap(ds, gamma), lw=2, label=f"gamma = {gamma:.3f}")
        if abs(gamma - 0.9) > 1e-9:
            ax_d.semilogy(ds, self.gap(ds, 0.9), color="grey", lw=1, label="gamma = 0.9 (the write-up)")
        ax_d.plot([d], [self.gap(d, gamma)], "o", color="k")
        ax_d.set(xlabel="distance d to the goal (bits)", ylabel="Q*(good flip) - Q*(bad flip)", title="against the distance")
        gammas = np.linspace(0.5, 0.9999, 400)
        ax_g.plot(gammas, [self.gap(d, float(g)) for g in gammas], lw=2, color="C1", label=f"d = {d}")
        best = math.sqrt((d - 1) / (d + 1))
        ax_g.axvline(best, color="grey", ls=":", label=f"best gamma for d = {d}: {best:.3f}")
        ax_g.plot([gamma], [self.gap(d, gamma)], "o", color="k")
        ax_g.set(xlabel="discount gamma", title="against gamma")
        for ax in (ax_d, ax_g):
            ax.grid(alpha=0.3)
            ax.legend(fontsize=FONT["legend"])
        good, bad = theory.optimal_q(d, True, gamma), theory.optimal_q(d, False, gamma)
        return (f"At distance {d} with gamma {gamma:.3f}: Q*(good flip) = gamma<sup>{d - 1}</sup> = {good:.4g}, "
                f"Q*(bad flip) = gamma<sup>{d + 1}</sup> = {bad:.4g}, gap <b>{good - bad:.3g}</b>. "
                f"The largest gap at this distance, {self.gap(d, best):.3g}, needs gamma = {best:.3f}.")


# ----- chapter 4 ------------------------------------------------------------------------------------
def _bits(row: torch.Tensor, goal: torch.Tensor | None = None) -> str:
    """Bits as text; those that already match ``goal`` in green."""
    out = []
    for i, b in enumerate(row.tolist()):
        ch = str(int(b))
        out.append(f"<span style='color:#080'>{ch}</span>" if goal is not None and int(goal[i]) == int(b) else ch)
    return "<code>" + "".join(out) + "</code>"


class HERStepper(widgets.VBox):
    """Walk through one episode of random flips and see what each HER strategy adds at every step.

    One agent plays one episode (random flips, n steps) from ``seed``; each strategy of
    :func:`~bitflip_lib.her.her_relabel` relabels it once (the same generator seed for all).
    The slider picks a step t; the table shows, for each strategy, the goals it gives the
    transition of step t and the reward each goal earns. Bits that match the shown goal are green.

    Controls: ``step``, ``k`` (goals per step for future and episode), ``seed`` (a new episode).
    """

    def __init__(self, n: int = 5, seed: int = 0, k: int = 4) -> None:
        self.n = check_int("n", n, 2, 16)
        d = {"description_width": "120px"}
        self.controls = {
            "step": widgets.IntSlider(value=0, min=0, max=self.n - 1, description="step t", style=d, layout=_SLIDER),
            "k": widgets.IntSlider(value=check_int("k", k, 1, 8), min=1, max=8, description="k goals / step", style=d,
                                   layout=_SLIDER),
            "seed": widgets.BoundedIntText(value=check_int("seed", seed, 0, 10**6), min=0, max=10**6, description="episode seed",
                                           style=d, layout=widgets.Layout(width="220px")),
        }
        self.episode_html = widgets.HTML()
        self.text = widgets.HTML()
        self.redraws = 0
        self.relabelled: dict = {}
        self.controls["seed"].observe(lambda _: self._new_episode(), names="value")
        self.controls["k"].observe(lambda _: self._relabel(), names="value")
        self.controls["step"].observe(lambda _: self.update(), names="value")
        grid = widgets.GridBox(list(self.controls.values()), layout=widgets.Layout(
            grid_template_columns="repeat(auto-fill, minmax(300px, 1fr))", grid_gap="2px 18px", width="100%"))
        super().__init__([widgets.HTML("<b>HER, one step at a time</b>"), saved_view_note(), grid,
                          widgets.HBox([self.episode_html, self.text], layout=widgets.Layout(grid_gap="24px", flex_flow="row wrap"))],
                         layout=widgets.Layout(max_width="900px"))
        self.add_class(WIDGET_CLASS)
        self._new_episode()

    def _new_episode(self) -> None:
        seed = self.controls["seed"].value
        env = BitFlipEnv(self.n, 1, device="cpu", seed=seed)
        rng = torch.Generator().manual_seed(seed + 1)
        self.episode = play_episode(env, lambda s, g: torch.randint(0, self.n, (1,), generator=rng))
        self.length = int(self.episode.lengths[0])
        self.controls["step"].max = max(0, self.length - 1)
        self._relabel()

    def _relabel(self) -> None:
        k, seed = self.controls["k"].value, self.controls["seed"].value
        self.relabelled = {s: her_relabel(self.episode, s, k, torch.Generator().manual_seed(seed + 2))
                           for s in HER_STRATEGIES if s not in ("none", "writeup30-whole")}
        self.update()

    def goals_at(self, strategy: str, t: int) -> list[tuple[torch.Tensor, float]]:
        """``(goal, reward)`` pairs that ``strategy`` adds for the transition of step ``t``."""
        tr = self.relabelled[strategy]
        s, a, s2 = self.episode.states[t, 0], self.episode.actions[t, 0], self.episode.states[t + 1, 0]
        rows = ((tr.state == s).all(1) & (tr.action == a) & (tr.next_state == s2).all(1)).nonzero().flatten()
        return [(tr.goal[i], float(tr.reward[i])) for i in rows.tolist()]

    def update(self) -> None:
        t = min(self.controls["step"].value, self.length - 1)
        ep, goal = self.episode, self.episode.goal[0]
        rows = []
        for i in range(self.length):
            style = " style='background:#fff3c4'" if i == t else ""
            reward = int(bool((ep.states[i + 1, 0] == goal).all()))
            rows.append(f"<tr{style}><td>{i}</td><td>{_bits(ep.states[i, 0], goal)}</td><td>{int(ep.actions[i, 0])}</td>"
                        f"<td>{_bits(ep.states[i + 1, 0], goal)}</td><td>{reward}</td></tr>")
        self.episode_html.value = (
            f"<div>Goal g = {_bits(goal)}. The episode ({self.length} steps; green bits already match g):</div>"
            "<table style='border-collapse:collapse' cellpadding='3'><tr><th>t</th><th>state</th><th>flip</th><th>next state</th><th>reward</th></tr>"
            + "".join(rows) + "</table>")
        lines = []
        for strategy, tr in self.relabelled.items():
            pairs = self.goals_at(strategy, t)
            shown = ", ".join(f"{_bits(g, ep.states[t + 1, 0])}&rarr;<b>{int(r)}</b>" for g, r in pairs) or "<i>nothing</i>"
            rewarded = int(tr.reward.sum())
            lines.append(f"<tr><td><b>{strategy}</b></td><td>{shown}</td><td>{len(tr)} added, {rewarded} rewarded</td></tr>")
        original = int(ep.transitions().reward.sum())
        self.text.value = (
            f"<div>Step t = {t}: goals each strategy adds for this transition &rarr; reward "
            "(green: bits where the next state already equals that goal)</div>"
            "<table cellpadding='3'><tr><th>strategy</th><th>new goals &rarr; reward</th><th>whole episode</th></tr>" + "".join(lines) + "</table>"
            f"<div>The episode itself earned {original} reward(s) for its real goal. <code>writeup30</code> relabels only "
            "30% of the episodes (one goal each, the steps up to where the path first reaches it), so it often "
            "adds nothing here.</div>")
        self.redraws += 1


# ----- chapter 6 ------------------------------------------------------------------------------------
class PhiExplorer(ConceptWidget):
    """What a HAR's phi has learned: ``phi(bit differs, d / n)`` against the exact optimal values.

    Args:
        networks: a HAR, or a dict of named HARs (a dropdown picks one), e.g. trained and untrained.
        gamma: the discount the exact values ``gamma^(d-1)`` (differing bit) and ``gamma^(d+1)``
            (matching bit) use: the one the network was trained with.
        n: initial size to read phi at (distance feature d / n for d = 1..n).
    """

    title = "What phi has learned"
    SIZES = (5, 10, 20, 50, 100, 200, 500, 1024)

    def __init__(self, networks, gamma: float = 0.98, n: int = 20) -> None:
        from bitflip_lib.networks import HAR

        self.networks = dict(networks) if isinstance(networks, dict) else {"HAR": networks}
        if not self.networks or not all(isinstance(v, HAR) for v in self.networks.values()):
            raise ValueError("networks must be a HAR or a dict of named HAR networks (bitflip_lib.networks.HAR)")
        self.gamma = check_number("gamma", gamma, 0.0, 1.0, low_open=True)
        sizes = tuple(sorted(set(self.SIZES) | {check_int("n", n, 2)}))
        controls = {
            "network": widgets.Dropdown(options=list(self.networks), description="network", style=_STYLE, layout=_SLIDER),
            "n": widgets.SelectionSlider(options=sizes, value=n, description="bits n", style=_STYLE, layout=_SLIDER),
            "d": widgets.IntSlider(value=max(1, n // 4), min=1, max=n, description="distance d", style=_STYLE, layout=_SLIDER),
        }
        controls["n"].observe(self._resize, names="value")
        super().__init__(controls)

    def _resize(self, change) -> None:
        d = self.controls["d"]
        d.max = change["new"]
        d.value = min(d.value, d.max)

    def draw(self, fig: Figure, network: str, n: int, d: int) -> str:
        from bitflip_lib.networks import har_phi

        d = min(d, n)
        with torch.no_grad():
            phi = har_phi(self.networks[network], n).numpy()  # [n, 2]: matches, differs
        ds = np.arange(1, n + 1)
        ax_v, ax_m = fig.subplots(1, 2)
        ax_v.plot(ds, phi[:, 1], lw=2, color="C2", label="phi(differs, d/n): flip a wrong bit")
        ax_v.plot(ds[:-1], phi[:-1, 0], lw=2, color="C3", label="phi(matches, d/n): flip a right bit")
        ax_v.plot(ds, theory.optimal_q(ds, True, self.gamma), ":", color="C2", label="exact gamma^(d-1)")
        ax_v.plot(ds[:-1], theory.optimal_q(ds[:-1], False, self.gamma), ":", color="C3", label="exact gamma^(d+1)")
        ax_v.axvline(d, color="k", lw=0.8)
        ax_v.set(xlabel="distance d to the goal", ylabel="Q-value", title=f"phi at n = {n} (input d/n)")
        margin = phi[:-1, 1] - phi[:-1, 0]
        exact = theory.optimal_q(ds[:-1], True, self.gamma) - theory.optimal_q(ds[:-1], False, self.gamma)
        if n > 1:
            ax_m.plot(ds[:-1], margin, lw=2, label="learned margin")
            ax_m.plot(ds[:-1], exact, ":", color="k", label="exact gap")
            ax_m.fill_between(ds[:-1], np.minimum(margin, 0), 0, color="red", alpha=0.3, label="wrong sign: greedy errs")
        ax_m.axhline(0, color="grey", lw=0.8)
        ax_m.axvline(d, color="k", lw=0.8)
        ax_m.set(xlabel="distance d", ylabel="phi(differs) - phi(matches)", title="the margin the greedy policy uses")
        for ax in (ax_v, ax_m):
            ax.grid(alpha=0.3)
            integer_ticks(ax)
        handles, labels = ax_v.get_legend_handles_labels()
        more = ax_m.get_legend_handles_labels()
        legend_below(fig, handles + more[0], labels + more[1], top_inches=3.3, columns=2)  # off the curves
        fig.subplots_adjust(left=0.085, right=0.985, wspace=0.3)
        wrong = int((margin <= 0).sum())
        at_d = (f"phi(differs) = {phi[d - 1, 1]:.3f} (exact {theory.optimal_q(d, True, self.gamma):.3f})"
                + (f", phi(matches) = {phi[d - 1, 0]:.3f} (exact {theory.optimal_q(d, False, self.gamma):.3f})" if d < n else
                   " (at d = n every bit differs)"))
        verdict = ("the greedy policy flips a wrong bit at every distance: optimal at this n" if wrong == 0 else
                   f"the margin has the wrong sign at {wrong} of {n - 1} distances: the greedy policy errs there")
        return f"{html.escape(network)}, n = {n}, d = {d}: {at_d}. Overall {verdict}."


# ----- chapter 7 ------------------------------------------------------------------------------------
STORED_METRICS = {"success_rate": "greedy success rate", "mean_distance": "distance to the goal at the end (bits)"}
"""The metrics :class:`StoredRunBrowser` offers: a stored column and its readable name."""


class StoredRunBrowser(ConceptWidget):
    """The learning curves of one stored Table 1 cell: pick the settings, a method, n and a metric.

    Each seed is one curve, labelled with its verdict; a dashed line and a dot mark where a seed
    was solved (a legend entry says so). Runs that stop once solved can end after a handful of
    iterations while others run 3000, so when the longest run is at least 20 times the shortest
    the iteration axis is logarithmic: a run solved at iteration 1 is then a visible stretch, not
    a few pixels behind the axis.

    Args:
        cells: ``{preset: {(method, n): cell}}``, each cell with ``runs`` (stored runs with
            ``seed``, ``solved_at``, ``iterations``, ``best_success`` and ``curve(metric)``), as
            :func:`bitflip_lib.lab.table1.table_cells` makes them.
        preset, method, n, metric: the cell and metric shown first.
    """

    title = "Stored runs of Table 1, one cell at a time"

    def __init__(self, cells, preset: str = "default", method: str = "Vanilla-HAR", n: int = 40,
                 metric: str = "success_rate") -> None:
        if not isinstance(cells, dict) or not cells or not all(isinstance(v, dict) and v for v in cells.values()):
            raise ValueError("cells must map each preset to its cells, e.g. {p: table_cells(load_grid('results', p))}")
        self.cells = cells
        methods = sorted({m for by_cell in cells.values() for m, _ in by_cell})
        ns = sorted({size for by_cell in cells.values() for _, size in by_cell})
        for name, value, allowed in (("preset", preset, list(cells)), ("method", method, methods), ("n", n, ns),
                                     ("metric", metric, list(STORED_METRICS))):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(map(str, allowed))}, got {value!r}")
        d = {"description_width": "90px"}
        controls = {
            "preset": widgets.Dropdown(options=list(cells), value=preset, description="settings", style=d, layout=_SLIDER),
            "method": widgets.Dropdown(options=methods, value=method, description="method", style=d, layout=_SLIDER),
            "n": widgets.SelectionSlider(options=ns, value=n, description="bits n", style=d, layout=_SLIDER),
            "metric": widgets.Dropdown(options=[(label, key) for key, label in STORED_METRICS.items()], value=metric,
                                       description="show", style=d, layout=_SLIDER),
        }
        super().__init__(controls)

    def draw(self, fig: Figure, preset: str, method: str, n: int, metric: str) -> str:
        cell = self.cells[preset].get((method, n))
        ax = fig.add_subplot()
        if cell is None:
            ax.set(xticks=[], yticks=[])
            ax.text(0.5, 0.5, f"{method} at n = {n} is not stored under the {preset} settings", ha="center",
                    va="center", transform=ax.transAxes, color="grey", fontsize=FONT["note"])
            return f"{html.escape(method)} at n = {n} was not run under the <code>{html.escape(preset)}</code> settings."
        runs = sorted(cell.runs, key=lambda r: r.seed)
        lengths = [max(r.curve(metric)[0], default=1) for r in runs]
        logarithmic = max(lengths) >= 20 * min(lengths)
        for i, r in enumerate(runs):  # the first seed widest: seeds with the same curve stay visible
            x, y = r.curve(metric)
            verdict = (f"solved at {r.solved_at}" if r.solved_at is not None
                       else f"not solved in {r.iterations} (best success {r.best_success:.2f})")
            (line,) = ax.plot(x, y, lw=max(3.4 - 1.0 * i, 1.2), marker="o" if len(x) < 12 else None, ms=3.5,
                              label=f"seed {r.seed}: {verdict}")
            if r.solved_at is not None:
                ax.axvline(r.solved_at, color=line.get_color(), ls="--", lw=1.1, alpha=0.9)
                at_solved = dict(zip(x, y)).get(r.solved_at)
                if at_solved is not None:
                    ax.plot([r.solved_at], [at_solved], "o", color=line.get_color(), ms=7, mec="k", mew=0.8)
        if any(r.solved_at is not None for r in runs):
            ax.plot([], [], ls="--", color="grey", lw=1.1, marker="o", ms=7, mec="k", mew=0.8,
                    label="where a seed was solved (its run of good evaluations began)")
        if logarithmic:
            ax.set_xscale("log")
            ax.set_xlim(0.8, max(lengths) * 1.2)
        if metric == "success_rate":
            ax.set_ylim(-0.03, 1.03)
        ax.set_xlabel("iteration" + (" (log scale: runs stop once solved)" if logarithmic else ""))
        ax.set_ylabel(STORED_METRICS[metric])
        ax.set_title(f"{method}, n = {n}, {preset} settings: {cell.n_solved} of {cell.n_runs} seeds solved")
        ax.grid(alpha=0.3)
        handles, labels = ax.get_legend_handles_labels()
        legend_below(fig, handles, labels, top_inches=3.2, columns=2)
        fig.subplots_adjust(left=0.085, right=0.985)
        solved = ", ".join(f"seed {r.seed} at iteration {r.solved_at}" for r in runs if r.solved_at is not None)
        return (f"{html.escape(method)}, n = {n}, <code>{html.escape(preset)}</code> settings: {cell.n_solved} of "
                f"{cell.n_runs} seeds solved" + (f" ({solved})." if solved else "."))
