"""Live training dashboards for notebooks: pick the settings, press Train, watch it learn.

::

    from bitflip_lib.ui.dashboards import TrainingDashboard
    dash = TrainingDashboard(n=10, arch="uvfa", her="none", max_iterations=300)
    dash                      # the controls, Train / Stop / Clear runs and the live plots
    result = dash.run()       # the same as pressing Train, but blocking; returns the TrainResult

* :class:`TrainingDashboard` (deep Q-learning) plots success rate, distance to goal, loss and
  the online network's Q-values (mean and max, against the bound 1 that clipping enforces).
* :class:`TabularDashboard` (chapter 2) runs tabular Q-learning and shows the table converging
  to the exact Q*: the error ``|Q - Q*|``, the greedy success, and every entry of the table
  against its exact value.

Both keep every finished run (``dash.runs``) and draw it again, in its own colour with a legend
entry, under the runs that follow, so HER on and off, or two gammas, end up on the same axes.
**Clear runs** forgets them. A dashboard's runs are its own: running its cell again (or Run All)
makes a new dashboard that starts from run #1.

How they run (:class:`~bitflip_lib.ui.live.LiveTraining`): **pressing Train** in JupyterLab
trains in a background thread of the kernel, so the notebook stays responsive; the plots (PNG
images drawn with matplotlib's Agg canvas into an ``ipywidgets.Image``: no extension needed,
safe from a thread) redraw about every ``redraw_seconds``, and **Stop** ends the run after the
current iteration. ``background=False`` trains inside the button handler instead.
``dash.run(**overrides)`` trains in the calling thread and returns the result: use it in
notebooks that run unattended. ``dash.wait()`` waits for a background run and returns
``dash.result``.

A setting that a control cannot show (``TrainingDashboard(n=5000)``: the n control goes to
4096) is a ``ValueError`` naming the setting and the range, never silently clamped.
"""
from __future__ import annotations

import dataclasses
import html
import numbers
import time
from collections.abc import Sequence
from typing import Any

import ipywidgets as widgets
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from bitflip_lib.config import PRESETS, TrainConfig, default_gamma, make_config
from bitflip_lib.her import HER_STRATEGIES, K_STRATEGIES
from bitflip_lib.networks import ARCHITECTURES
from bitflip_lib.tabular import TabularResult, q_learning, value_iteration
from bitflip_lib.trainer import TrainResult, train
from bitflip_lib.ui.live import (
    CONTROL_STYLE,
    FONT,
    LiveTraining,
    check_int,
    check_number,
    control_layout,
    controls_grid,
    integer_ticks,
    legend_below,
    use_log_scale,
)

__all__ = [
    "CONTROL_RANGES", "CONTROLLED_FIELDS", "evaluation_streak", "MAX_OVERLAID_RUNS", "Q_BOUND", "run_labels",
    "settings_line", "summary_text", "TABULAR_RANGES", "TabularDashboard", "TabularRun",
    "TrainingDashboard", "verdict",
]

CONTROLLED_FIELDS = ("n", "arch", "her", "k", "max_iterations", "gamma", "polyak", "clip_targets", "seed")
"""The TrainConfig fields that have a control on the dashboard; other fields are fixed at construction."""

CONTROL_RANGES: dict[str, tuple[float, float]] = {
    "n": (1, 4096), "k": (1, 64), "max_iterations": (1, 1_000_000), "seed": (0, 2**31 - 1),
    "gamma": (0.01, 1.0), "polyak": (0.001, 1.0),
}
"""What the numeric controls of :class:`TrainingDashboard` can show; a setting outside is refused."""

TABULAR_RANGES: dict[str, tuple[float, float]] = {
    "n": (2, 8), "iterations": (1, 100_000), "alpha": (0.01, 1.0), "gamma": (0.01, 1.0), "epsilon": (0.0, 1.0),
    "seed": (0, 2**31 - 1),
}
"""What the controls of :class:`TabularDashboard` can show (n up to 8 so that a run takes seconds)."""

_TABULAR_INTEGERS = ("n", "iterations", "seed")

MAX_OVERLAID_RUNS = 6
"""At most this many of the latest runs are drawn together (all stay in ``dash.runs``)."""

Q_BOUND = 1.0
"""Every optimal Q-value lies in [0, 1] (reward 1 once, at the goal): the bound clipping enforces."""

_CONFIG_FIELDS = {f.name for f in dataclasses.fields(TrainConfig)}
_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")
def _num(value: Any, digits: int = 3) -> str:
    """A number as a student wants to read it: 0.0498046875 -> '0.0498', 12.3456 s -> '12.3'."""
    if value is None:
        return "-"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return str(value)
    if isinstance(value, numbers.Integral):
        return str(int(value))
    value = float(value)
    return f"{value:.0f}" if abs(value) >= 10**digits else f"{value:.{digits}g}"


def _iterations(count: int) -> str:
    return f"{count} iteration" + ("" if count == 1 else "s")


def _rate(value: float | None) -> str:
    """A success rate with two decimals: 1.00, not 1 (which reads like a count)."""
    return "-" if value is None else f"{float(value):.2f}"


def _check_in_range(name: str, value: Any, ranges: dict[str, tuple[float, float]], what: str, integer: bool) -> Any:
    """``value`` checked against ``ranges[name]``; the error names the argument, the range and ``what`` it is."""
    low, high = ranges[name]
    try:
        return check_int(name, value, int(low), int(high)) if integer else check_number(name, value, low, high)
    except ValueError as err:
        raise ValueError(f"{err}: that is the range of {what}") from None


# ----- how a run is described ---------------------------------------------------------------------
def evaluation_streak(result: TrainResult) -> tuple[int, int]:
    """``(streak at the end, longest streak)`` of evaluations at or above the solved threshold."""
    threshold = result.config.solved_threshold
    current = best = 0
    for h in result.history:
        if h.get("success_rate") is None:
            continue
        current = current + 1 if h["success_rate"] >= threshold else 0
        best = max(best, current)
    return current, best


def _verdict_parts(result: TrainResult, stopped_by_user: bool) -> tuple[str, str, str]:
    """``(headline, colour, the rest of the sentence)`` of :func:`verdict`, as plain text."""
    c = result.config
    rule = f"{c.solved_window} evaluations in a row at ≥ {_num(c.solved_threshold)}"
    final = result.final
    if result.solved:
        head, colour, rest = "Solved", "#070", f" at iteration {result.solved_at} ({rule})"
    elif not final or final.get("success_rate") is None:
        head, colour, rest = "Not evaluated", "#000", f" after {_iterations(result.iterations)}"
    else:
        end, best = evaluation_streak(result)
        evaluations = sum(1 for h in result.history if h.get("success_rate") is not None)
        success = final["success_rate"]
        rest = f" after {_iterations(result.iterations)}: success {_rate(success)} on the last evaluation"
        if success >= c.solved_threshold:
            rest += f", but solved needs {rule}, and this run ended with {end} in a row"
        else:
            rest += f"; solved needs {rule}" + (f" (this run's longest: {best})" if best else "")
        if result.stopped_by == "max_iterations" and evaluations < c.solved_window:
            every = "every iteration" if c.eval_every == 1 else f"every {c.eval_every} iterations"
            rest += f"; a budget of {_iterations(result.iterations)} holds only {evaluations} (one {every})"
        head, colour = "Not solved", "#b00"
    how = {"callback": f"stopped by you at iteration {result.iterations}" if stopped_by_user
           else f"stopped by a callback at iteration {result.iterations}",
           "max_seconds": f"time limit of {_num(c.max_seconds)} s reached",
           "max_iterations": "budget used up", "solved": "stopped once solved"}.get(result.stopped_by, result.stopped_by)
    return head, colour, f"{rest}. {how[0].upper() + how[1:]}, {_num(result.wall_seconds)} s."


def verdict(result: TrainResult, stopped_by_user: bool = False) -> str:
    """One plain sentence (HTML): solved or not, why not, and how the run ended; numbers rounded."""
    head, colour, rest = _verdict_parts(result, stopped_by_user)
    return f"<b style='color:{colour}'>{head}</b>{html.escape(rest)}"


def _settings(result: TrainResult) -> str:
    c = result.config
    her = c.her + (f" (k = {c.k})" if c.her in K_STRATEGIES else "")
    polyak = f"Polyak {_num(c.polyak)}" if c.polyak is not None else "no target network"
    parts = [f"n = {c.n}", c.arch, f"HER {her}", f"gamma {_num(c.effective_gamma, 4)}", polyak,
             f"clipping {'on' if c.clip_targets else 'off'}", f"seed {c.seed}", result.device]
    return " · ".join(parts)


def settings_line(result: TrainResult) -> str:
    """The run's settings in one line (HTML), with k only where the strategy uses it."""
    return html.escape(_settings(result))


def summary_text(result: TrainResult) -> str:
    """The verdict and the settings as plain text, for ``print`` (numbers rounded for reading)."""
    head, _, rest = _verdict_parts(result, stopped_by_user=False)
    return f"{head}{rest}\n{_settings(result)}"


def _labels(numbers_: Sequence[int], described: Sequence[dict[str, str]], suffixes: Sequence[str],
            when_alone: Sequence[str]) -> list[str]:
    """Legend labels: ``#number`` and the settings that differ between the runs drawn.

    One run alone shows the ``when_alone`` settings; a run whose settings repeat an earlier
    run's says so (the same settings and seed give the same curve, drawn over it).
    """
    if not described:
        return []
    if len(described) == 1:
        keys = list(when_alone)
    else:
        keys = [k for k in described[0] if len({d[k] for d in described}) > 1]
    labels = []
    for i, (number, d, suffix) in enumerate(zip(numbers_, described, suffixes)):
        twin = next((numbers_[j] for j in range(i) if described[j] == d), None)
        if twin is not None:
            text = f"#{number} = #{twin}'s settings (same curve)"
        else:
            text = f"#{number} " + " ".join(d[k] for k in keys if d[k])
        labels.append(text.rstrip() + suffix)
    return labels


def _ending(stopped: bool, iterations: int, live: bool) -> str:
    if live:
        return " (running)"
    return f" (stopped at {iterations})" if stopped else ""


def _stopped_early(result: TrainResult) -> bool:
    return result.stopped_by in ("callback", "max_seconds")


def run_labels(runs: list[tuple[int, TrainResult]], live: TrainResult | None = None) -> list[str]:
    """Legend labels: the run number and the settings that differ between the runs drawn.

    A run stopped before its budget is labelled with the iteration it stopped at, not its budget;
    the run in progress (``live``) is marked as running.
    """
    def fields(r: TrainResult) -> dict[str, str]:
        c = r.config
        return {"n": f"n={c.n}", "arch": c.arch, "her": f"her={c.her}" + (f" k={c.k}" if c.her in K_STRATEGIES else ""),
                "gamma": f"γ={_num(c.effective_gamma, 4)}",
                "polyak": f"τ={_num(c.polyak)}" if c.polyak is not None else "no target",
                "clip": "clip" if c.clip_targets else "no clip", "seed": f"seed {c.seed}",
                "budget": "" if _stopped_early(r) and r is not live else f"budget {c.max_iterations}"}
    described = [fields(r) for _, r in runs]
    suffixes = [_ending(_stopped_early(r), r.iterations, r is live) for _, r in runs]
    return _labels([i for i, _ in runs], described, suffixes, when_alone=("n", "arch", "her"))


def _line_style(number: int, newest: int, colour: str) -> dict[str, Any]:
    """The newest run thick and underneath, older ones thinner on top: a curve that a later run
    repeats (same settings, same seed) stays visible inside it. The newest run's markers are
    larger too, so that a run of one or two points shows around older points at the same place."""
    return dict(color=colour, lw=3.0 if number == newest else 1.4, zorder=2 if number == newest else 3,
                ms=8.0 if number == newest else 4.0)


def _style_panel(ax, title: str, has_data: bool, empty_note: str, span: tuple[int, int] | None = None) -> None:
    """Title, ticks and grid; ``span``: the x-axis counts iterations, from ``span[0]`` to ``span[1]``."""
    ax.set_title(title, fontsize=FONT["title"])
    ax.tick_params(labelsize=FONT["ticks"])
    if not has_data:  # no axes with meaningless ranges: say what will appear there
        ax.tick_params(labelbottom=False, labelleft=False, length=0)  # (the x-axis may be shared)
        ax.set_yticks([])
        ax.text(0.5, 0.5, empty_note, ha="center", va="center", transform=ax.transAxes, color="grey",
                fontsize=FONT["note"])
        return
    ax.grid(alpha=0.3)
    if span is not None:
        integer_ticks(ax, span)


# ----- deep Q-learning ----------------------------------------------------------------------------
class TrainingDashboard(LiveTraining):
    """Controls, Train / Stop / Clear runs, live plots of every run so far, and a status line.

    Args:
        background: press-Train runs train in a background thread (default; Stop works while it
            trains). False trains inside the click handler (blocking the kernel).
        redraw_seconds: minimum time between two redraws of the live plots (longer when drawing
            itself is slow, so that drawing takes at most about a third of the time).
        runs: a list to keep the finished runs in (pass one list to several dashboards to share
            their runs); default: a new, empty list.
        **defaults: :class:`~bitflip_lib.config.TrainConfig` fields (and ``preset``). Those in
            :data:`CONTROLLED_FIELDS` set the controls' initial values; the others (e.g.
            ``num_eval_agents``, ``max_seconds``, ``gradient_steps``) are fixed for every run.

    Raises:
        ValueError: on an unknown field name, an invalid value (from :class:`TrainConfig`), or a
            value outside what its control shows (:data:`CONTROL_RANGES`), naming the range.
    """

    def __init__(
        self,
        background: bool = True,
        redraw_seconds: float = 1.0,
        runs: list[TrainResult] | None = None,
        **defaults: Any,
    ) -> None:
        self.redraw_seconds = check_number("redraw_seconds", redraw_seconds, 0.0)
        if runs is not None and (not isinstance(runs, list) or not all(isinstance(r, TrainResult) for r in runs)):
            raise ValueError(f"runs must be a list of finished runs (TrainResult), e.g. [] or another dashboard's "
                             f"dash.runs, got {runs!r}")
        unknown = set(defaults) - _CONFIG_FIELDS
        if unknown:
            raise ValueError(f"unknown TrainingDashboard setting(s) {', '.join(sorted(unknown))}: pass TrainConfig fields "
                             f"such as {', '.join(CONTROLLED_FIELDS)}")
        preset = defaults.pop("preset", "default")
        if preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}: choose one of {', '.join(PRESETS)}")
        base = make_config(preset, **defaults)  # validates every value
        self._check_controls(dataclasses.asdict(base))
        self.preset = preset
        self.fixed = {k: v for k, v in defaults.items() if k not in CONTROLLED_FIELDS}
        self.runs: list[TrainResult] = [] if runs is None else runs

        d, cell, r = CONTROL_STYLE, control_layout, CONTROL_RANGES
        self.controls: dict[str, widgets.Widget] = {
            "n": widgets.BoundedIntText(value=base.n, min=r["n"][0], max=r["n"][1], description="bits n", style=d,
                                        layout=cell()),
            "arch": widgets.Dropdown(options=list(ARCHITECTURES), value=base.arch, description="network", style=d,
                                     layout=cell()),
            "her": widgets.Dropdown(options=list(HER_STRATEGIES), value=base.her, description="HER strategy", style=d,
                                    layout=cell()),
            "k": widgets.BoundedIntText(value=base.k, min=r["k"][0], max=r["k"][1], description="k goals / step",
                                        style=d, layout=cell()),
            "max_iterations": widgets.BoundedIntText(value=base.max_iterations, min=r["max_iterations"][0],
                                                     max=r["max_iterations"][1], description="budget (iter.)",
                                                     style=d, layout=cell()),
            "seed": widgets.BoundedIntText(value=base.seed, min=r["seed"][0], max=r["seed"][1], description="seed",
                                           style=d, layout=cell()),
            "gamma": widgets.BoundedFloatText(value=base.gamma if base.gamma is not None else round(base.effective_gamma, 4),
                                              min=r["gamma"][0], max=r["gamma"][1], step=0.001, description="gamma",
                                              style=d, layout=cell("190px")),
            "polyak": widgets.BoundedFloatText(value=base.polyak if base.polyak is not None else 0.05,
                                               min=r["polyak"][0], max=r["polyak"][1], step=0.005,
                                               description="Polyak fraction", style=d, layout=cell("190px")),
            "clip_targets": widgets.Checkbox(value=base.clip_targets, description="clip targets to [0, 1]", indent=False,
                                             layout=cell("auto")),
        }
        self.gamma_auto = widgets.Checkbox(value=base.gamma is None, description="auto", indent=False, layout=cell("auto"),
                                           tooltip="automatic gamma = max(0.98, 1 - 1/n)")
        self.use_target = widgets.Checkbox(value=base.polyak is not None, description="on", indent=False, layout=cell("auto"),
                                           tooltip="use a target network, moved towards the online one by this fraction per step")
        self.summary = widgets.HTML()

        self.gamma_auto.observe(lambda _: self._sync_enabled(), names="value")
        self.use_target.observe(lambda _: self._sync_enabled(), names="value")
        self.controls["her"].observe(lambda _: self._sync_enabled(), names="value")
        self.controls["n"].observe(lambda _: self._sync_enabled(), names="value")
        self._sync_enabled()

        c = self.controls
        pair = widgets.Layout(width="100%", min_width="0", align_items="center", grid_gap="8px")
        grid = controls_grid([
            c["n"], c["arch"], c["seed"],
            c["her"], c["k"], c["max_iterations"],
            widgets.HBox([c["gamma"], self.gamma_auto], layout=pair),
            widgets.HBox([c["polyak"], self.use_target], layout=pair),
            c["clip_targets"],
        ])
        fixed = ", ".join(f"{k}={v}" for k, v in self.fixed.items())
        header = widgets.HTML(f"<b>Goal-conditioned DQN on bit flipping</b> (preset <code>{preset}</code>"
                              + (f"; fixed: <code>{html.escape(fixed)}</code>" if fixed else "") + ")")
        super().__init__(header, grid, background=background, below=(self.summary,))
        if self.runs:
            self._draw(None)

    # ----- reading and setting the controls -------------------------------------------------
    @staticmethod
    def _check_controls(values: dict[str, Any]) -> None:
        """Refuse a controlled value that its control cannot show (the control would clamp it)."""
        for name in CONTROL_RANGES:
            if values.get(name) is not None:
                _check_in_range(name, values[name], CONTROL_RANGES,
                                "the dashboard's control (bitflip_lib.train takes other values)",
                                integer=name not in ("gamma", "polyak"))

    def _sync_enabled(self) -> None:
        c = self.controls
        c["gamma"].disabled = self.gamma_auto.value
        if self.gamma_auto.value:
            c["gamma"].value = round(default_gamma(max(1, c["n"].value)), 4)
        c["polyak"].disabled = not self.use_target.value
        uses_k = c["her"].value in K_STRATEGIES
        c["k"].disabled = not uses_k
        c["k"].layout.display = None if uses_k else "none"  # k means nothing to the other strategies

    def values(self) -> dict[str, Any]:
        """The controlled TrainConfig fields as the controls show them now."""
        c = self.controls
        return {
            "n": c["n"].value,
            "arch": c["arch"].value,
            "her": c["her"].value,
            "k": c["k"].value,
            "max_iterations": c["max_iterations"].value,
            "gamma": None if self.gamma_auto.value else float(c["gamma"].value),
            "polyak": float(c["polyak"].value) if self.use_target.value else None,
            "clip_targets": bool(c["clip_targets"].value),
            "seed": c["seed"].value,
        }

    def set(self, **values: Any) -> None:
        """Set controls, e.g. ``dash.set(n=15, her='future', polyak=None)`` (None gamma = automatic,
        None polyak = no target network). A value the control cannot show is refused, not clamped."""
        unknown = set(values) - set(CONTROLLED_FIELDS)
        if unknown:
            raise ValueError(f"no control for {', '.join(sorted(unknown))}: controls are {', '.join(CONTROLLED_FIELDS)}")
        make_config(self.preset, **{**self.fixed, **self.values(), **values})  # validate before touching anything
        self._check_controls(values)
        for name, value in values.items():
            if name == "gamma":
                self.gamma_auto.value = value is None
                if value is not None:
                    self.controls["gamma"].value = value
            elif name == "polyak":
                self.use_target.value = value is not None
                if value is not None:
                    self.controls["polyak"].value = value
            else:
                self.controls[name].value = value
        self._sync_enabled()

    def config(self, **overrides: Any) -> TrainConfig:
        """The TrainConfig that Train would use now (controls, fixed settings, then ``overrides``)."""
        unknown = set(overrides) - _CONFIG_FIELDS
        if unknown:
            raise ValueError(f"unknown configuration field(s): {', '.join(sorted(unknown))}")
        return make_config(self.preset, **{**self.fixed, **self.values(), **overrides})

    # ----- training ------------------------------------------------------------------------------
    def run(self, **overrides: Any) -> TrainResult:
        """Train now, blocking, exactly as pressing Train would; return the result.

        Overrides of controlled fields set the controls first (so the dashboard shows what ran);
        other TrainConfig fields apply to this run only.
        """
        controlled = {k: v for k, v in overrides.items() if k in CONTROLLED_FIELDS}
        other = {k: v for k, v in overrides.items() if k not in CONTROLLED_FIELDS}
        self.config(**overrides)  # validates everything before any control changes
        self._check_controls(controlled)
        if self.running:
            raise RuntimeError("a run is already going on: press Stop (or call stop() and wait()) first")
        if controlled:
            self.set(**controlled)
        return self._run_blocking(self.config(**other))

    def _prepare(self) -> TrainConfig:
        return self.config()

    def _forget(self) -> None:
        self.runs.clear()
        self.summary.value = ""

    def _train(self, config: TrainConfig) -> None:
        records: list[dict] = []
        last_draw, wait = [0.0], [self.redraw_seconds]
        number = len(self.runs) + 1

        def callback(record: dict) -> bool:
            records.append(record)
            parts = [f"Run #{number}: iteration {record['iteration']} / {config.max_iterations}"]
            if record.get("success_rate") is not None:
                parts.append(f"success {_rate(record['success_rate'])}, distance {_num(record['mean_distance'])}")
            if record.get("max_q") is not None:
                parts.append(f"Q mean {_num(record['mean_q'], 2)}, max {_num(record['max_q'], 2)}")
            parts.append(f"{_num(record['wall_seconds'])} s")
            self.status.value = " · ".join(parts)
            now = time.perf_counter()
            if now - last_draw[0] >= wait[0]:
                self._draw(TrainResult(config=config, history=list(records), iterations=record["iteration"]))
                last_draw[0] = time.perf_counter()
                # Drawing costs time too: never spend more than about a third of the run on it.
                wait[0] = max(self.redraw_seconds, 2.0 * (last_draw[0] - now))
            return self.stop_requested

        self.summary.value = ""
        self.status.value = f"Run #{number}: starting n = {config.n}, {config.arch}, HER {config.her}..."
        result = train(config, callbacks=[callback], progress=False)
        self.result = result
        self.runs.append(result)
        self._draw(None)
        self.status.value = f"Run #{number}: " + verdict(result, stopped_by_user=self.stop_requested)
        self.summary.value = f"<small>Run #{number}: {settings_line(result)}</small>"

    def _draw(self, current: TrainResult | None) -> None:
        """Draw the kept runs (the latest :data:`MAX_OVERLAID_RUNS`) and the run in progress."""
        numbered = list(enumerate(self.runs, start=1))[-MAX_OVERLAID_RUNS:]
        if current is not None:
            numbered = numbered[-(MAX_OVERLAID_RUNS - 1):] + [(len(self.runs) + 1, current)]
        labels = run_labels(numbered, live=current)
        fig = Figure()
        axes = fig.subplots(2, 2, sharex=True).ravel()  # one iteration axis: a single evaluation is not alone
        for ax in axes[:2]:
            ax.tick_params(labelbottom=True)
        fig.subplots_adjust(left=0.075, right=0.985, wspace=0.2, hspace=0.42)
        has_data = [False] * 4
        handles = []
        for number, result in numbered:
            style = _line_style(number, numbered[-1][0], _COLOURS[(number - 1) % len(_COLOURS)])
            for i, key in enumerate(("success_rate", "mean_distance", "loss")):
                x, y = result.curve(key)
                if x:  # a marker too: a run of one evaluation is a point, not an invisible line
                    axes[i].plot(x, y, **style, marker="o" if len(x) < 3 else None)
                    has_data[i] = True
            for key, ls in (("mean_q", "-"), ("max_q", "--")):
                x, y = result.curve(key)
                if x:
                    axes[3].plot(x, y, ls, **style, marker="o" if len(x) < 3 else None)
                    has_data[3] = True
            handles.append(Line2D([], [], color=style["color"], lw=style["lw"]))
        if has_data[3]:
            axes[3].axhline(Q_BOUND, color="k", lw=1, ls=":")
        use_log_scale(axes[2], [y for _, r in numbered for y in r.curve("loss")[1]])
        notes = ("no evaluation yet", "no evaluation yet", "no loss yet", "no Q-values yet")
        titles = ("Success rate (greedy, test agents)", "Distance to goal at the end", "Loss",
                  "Q-values of the online network")
        span = (1, max((r.iterations for _, r in numbered), default=1))
        for ax, title, data, note in zip(axes, titles, has_data, notes):
            _style_panel(ax, title, data, note, span)
        if has_data[0]:
            axes[0].set_ylim(-0.03, 1.03)
        for ax, data in zip(axes[2:], has_data[2:]):
            if data:
                ax.set_xlabel("iteration", fontsize=FONT["label"])
        handles += [Line2D([], [], color="k", ls=ls, lw=1.2) for ls in ("-", "--", ":")]
        labels += ["Q: mean on replayed batch", "Q: max", f"Q bound {Q_BOUND:g} (clipping keeps targets below it)"]
        legend_below(fig, handles, labels, top_inches=4.6)
        self.show(fig)


# ----- tabular Q-learning (chapter 2) -------------------------------------------------------------
@dataclasses.dataclass
class TabularRun:
    """One run of :class:`TabularDashboard`: its settings, its result, whether Stop ended it."""

    settings: dict[str, Any]
    result: TabularResult
    stopped: bool = False

    @property
    def iterations(self) -> int:
        return int(self.result.final.get("iteration", 0))


class TabularDashboard(LiveTraining):
    """Tabular Q-learning live (chapter 2): the goal-conditioned Q table converging to the exact Q*.

    Three plots: the largest and the mean error ``|Q - Q*|`` over the table, the greedy policy's
    success, and every entry of the latest run's table against its exact value (at convergence
    they lie on the diagonal). Every finished run is kept (``dash.runs``) and drawn under the
    next ones; Train / Stop / Clear runs work as on :class:`TrainingDashboard`; ``run()`` trains
    blocking and returns the :class:`~bitflip_lib.tabular.TabularResult`.

    Args:
        n, iterations, alpha, gamma, epsilon, seed: initial control values (see
            :func:`bitflip_lib.tabular.q_learning`), within :data:`TABULAR_RANGES`.
        eval_every: compare with Q* and redraw every this many iterations.
        background: as in :class:`TrainingDashboard`.

    Raises:
        ValueError: for a value outside what its control shows, naming the argument and range.
    """

    def __init__(self, n: int = 4, iterations: int = 300, alpha: float = 0.5, gamma: float = 0.9, epsilon: float = 1.0,
                 seed: int = 0, eval_every: int = 10, background: bool = True) -> None:
        start = self._checked(dict(n=n, iterations=iterations, alpha=alpha, gamma=gamma, epsilon=epsilon, seed=seed))
        self.eval_every = check_int("eval_every", eval_every, 1)
        self.runs: list[TabularRun] = []
        d, r = CONTROL_STYLE, TABULAR_RANGES
        self.controls = {
            "n": widgets.BoundedIntText(value=start["n"], min=r["n"][0], max=r["n"][1], description="bits n", style=d,
                                        layout=control_layout()),
            "iterations": widgets.BoundedIntText(value=start["iterations"], min=r["iterations"][0],
                                                 max=r["iterations"][1], description="iterations", style=d,
                                                 layout=control_layout()),
            "alpha": widgets.BoundedFloatText(value=start["alpha"], min=r["alpha"][0], max=r["alpha"][1], step=0.05,
                                              description="alpha (step)", style=d, layout=control_layout()),
            "gamma": widgets.BoundedFloatText(value=start["gamma"], min=r["gamma"][0], max=r["gamma"][1], step=0.01,
                                              description="gamma", style=d, layout=control_layout()),
            "epsilon": widgets.BoundedFloatText(value=start["epsilon"], min=r["epsilon"][0], max=r["epsilon"][1],
                                                step=0.05, description="epsilon", style=d, layout=control_layout()),
            "seed": widgets.BoundedIntText(value=start["seed"], min=r["seed"][0], max=r["seed"][1], description="seed",
                                           style=d, layout=control_layout()),
        }
        header = widgets.HTML("<b>Tabular Q-learning</b>: the goal-conditioned Q table against the exact Q*")
        super().__init__(header, controls_grid(list(self.controls.values())), background=background)

    @staticmethod
    def _checked(values: dict[str, Any]) -> dict[str, Any]:
        return {name: _check_in_range(name, value, TABULAR_RANGES, "the dashboard's control",
                                      integer=name in _TABULAR_INTEGERS) for name, value in values.items()}

    def values(self) -> dict[str, Any]:
        return {k: c.value for k, c in self.controls.items()}

    def run(self, **values: Any) -> TabularResult:
        """Set the given controls, train blocking, and return the :class:`~bitflip_lib.tabular.TabularResult`."""
        unknown = set(values) - set(self.controls)
        if unknown:
            raise ValueError(f"no control for {', '.join(sorted(unknown))}: controls are {', '.join(self.controls)}")
        checked = self._checked(values)
        if self.running:
            raise RuntimeError("a run is already going on: press Stop (or call stop() and wait()) first")
        for name, value in checked.items():
            self.controls[name].value = value
        return self._run_blocking(self._prepare())

    def _prepare(self) -> dict[str, Any]:
        return self._checked(self.values())

    def _forget(self) -> None:
        self.runs.clear()

    def _train(self, s: dict[str, Any]) -> None:
        number = len(self.runs) + 1
        q_star, _ = value_iteration(s["n"], s["gamma"], device="cpu")
        history: list[dict] = []

        def callback(record: dict, q) -> bool:
            history.append(record)
            self.status.value = (f"Run #{number}: iteration {record['iteration']} / {s['iterations']} · largest |Q - Q*| "
                                 f"{_num(record['max_error'])} · greedy success {_rate(record['success_rate'])}")
            self._draw(TabularRun(s, TabularResult(q=q, q_star=q_star, history=list(history))))
            return self.stop_requested

        self.status.value = f"Run #{number}: starting..."
        result = q_learning(s["n"], iterations=s["iterations"], alpha=s["alpha"], gamma=s["gamma"], epsilon=s["epsilon"],
                            seed=s["seed"], eval_every=self.eval_every, device="cpu", callback=callback)
        finished = TabularRun(s, result, stopped=self.stop_requested)
        self.result = result
        self.runs.append(finished)
        self._draw(None)
        final = result.final
        how = (f"stopped by you at iteration {final['iteration']}" if finished.stopped
               else f"done after {_iterations(final['iteration'])}")
        self.status.value = (f"Run #{number}: {how}: largest |Q - Q*| {_num(final['max_error'])}, mean "
                             f"{_num(final['mean_error'])}, greedy success {_rate(final['success_rate'])}.")

    @staticmethod
    def _run_labels(numbered: list[tuple[int, TabularRun]], live: TabularRun | None) -> list[str]:
        described = [{"n": f"n={r.settings['n']}", "alpha": f"α={_num(r.settings['alpha'])}",
                      "gamma": f"γ={_num(r.settings['gamma'])}", "epsilon": f"ε={_num(r.settings['epsilon'])}",
                      "seed": f"seed {r.settings['seed']}",
                      "budget": "" if r.stopped and r is not live else f"{r.settings['iterations']} it"}
                     for _, r in numbered]
        suffixes = [_ending(r.stopped, r.iterations, r is live) for _, r in numbered]
        return _labels([i for i, _ in numbered], described, suffixes, when_alone=("n", "alpha", "gamma", "epsilon"))

    def _draw(self, current: TabularRun | None) -> None:
        import torch

        numbered = list(enumerate(self.runs, start=1))[-MAX_OVERLAID_RUNS:]
        if current is not None:
            numbered = numbered[-(MAX_OVERLAID_RUNS - 1):] + [(len(self.runs) + 1, current)]
        labels = self._run_labels(numbered, current)
        fig = Figure()
        ax_err, ax_success, ax_table = fig.subplots(1, 3)
        ax_success.sharex(ax_err)
        fig.subplots_adjust(left=0.075, right=0.985, wspace=0.36)
        handles = []
        for number, run in numbered:
            style = _line_style(number, numbered[-1][0], _COLOURS[(number - 1) % len(_COLOURS)])
            it = [h["iteration"] for h in run.result.history]
            marker = "o" if len(it) < 3 else None
            ax_err.plot(it, [max(h["max_error"], 1e-6) for h in run.result.history], **style, marker=marker)
            ax_err.plot(it, [max(h["mean_error"], 1e-6) for h in run.result.history], "--", **style, marker=marker)
            ax_success.plot(it, [h["success_rate"] for h in run.result.history], **style, marker=marker)
            handles.append(Line2D([], [], color=style["color"], lw=style["lw"]))
        has_data = bool(numbered)
        use_log_scale(ax_err, [max(h[key], 1e-6) for _, run in numbered for h in run.result.history
                               for key in ("max_error", "mean_error")])
        if has_data:  # every entry of the newest run's table against its exact value
            number, latest = numbered[-1]
            q, q_star = latest.result.q, latest.result.q_star
            off_goal = ~torch.eye(q.shape[0], dtype=torch.bool)
            learned, exact = q.detach().cpu()[off_goal].flatten(), q_star.detach().cpu()[off_goal].flatten()
            if learned.numel() > 4000:  # a fixed sample keeps drawing fast at n = 7, 8
                pick = torch.randperm(learned.numel(), generator=torch.Generator().manual_seed(0))[:4000]
                learned, exact = learned[pick], exact[pick]
            ax_table.scatter(exact.numpy(), learned.numpy(), s=5, alpha=0.4, color=_COLOURS[(number - 1) % len(_COLOURS)])
            ax_table.plot([0, 1], [0, 1], "k:", lw=1)
            ax_table.set(xlim=(-0.03, 1.03), ylim=(-0.03, 1.03))
        span = (0, max((run.iterations for _, run in numbered), default=1))  # evaluated before training too
        _style_panel(ax_err, "Error of the table", has_data, "press Train", span)
        _style_panel(ax_success, "Greedy policy: success", has_data, "press Train", span)
        _style_panel(ax_table, f"Run #{numbered[-1][0]}: learned against exact" if has_data else "Every entry",
                     has_data, "press Train")
        if has_data:
            ax_success.set_ylim(-0.03, 1.03)
            ax_err.set_xlabel("iteration (16 episodes each)", fontsize=FONT["label"])
            ax_success.set_xlabel("iteration", fontsize=FONT["label"])
            ax_table.set_xlabel("exact Q*(s, g, a)", fontsize=FONT["label"])
            ax_table.set_ylabel("learned Q(s, g, a)", fontsize=FONT["label"])
        handles += [Line2D([], [], color="k", lw=1.2), Line2D([], [], color="k", ls="--", lw=1.2)]
        labels += ["largest |Q - Q*|", "mean |Q - Q*|"]
        legend_below(fig, handles, labels, top_inches=3.0)
        self.show(fig)
