"""Live training dashboards for notebooks: pick the settings, press Train, watch it learn.

::

    from bitflip_lib.ui.dashboards import TrainingDashboard
    dash = TrainingDashboard(n=10, arch="uvfa", her="none", max_iterations=300)
    dash                      # the controls, Train / Stop / Clear runs and the live plots
    result = dash.run()       # the same as pressing Train, but blocking; returns the TrainResult

* :class:`TrainingDashboard` (deep Q-learning) plots success rate, distance to goal, loss and
  the online network's Q-values (mean and max, against the bound 1 that clipping enforces).
  Every finished run is kept (``dash.runs``, shared by the dashboards of one notebook) and
  drawn again, in its own colour with a legend entry, under the runs that follow, so HER on and
  off, or two gammas, end up on the same axes. **Clear runs** forgets them.
* :class:`TabularDashboard` (chapter 2) runs tabular Q-learning and shows the table converging
  to the exact Q*: the error ``|Q - Q*|``, the greedy success, and every entry of the table
  against its exact value.

How they run: **pressing Train** in JupyterLab trains in a background thread of the kernel, so
the notebook stays responsive; the plots (PNG images drawn with matplotlib's Agg canvas into an
``ipywidgets.Image``: no extension needed, safe from a thread) redraw about every
``redraw_seconds``, and **Stop** ends the run after the current iteration.
``background=False`` trains inside the button handler instead (the kernel is busy, so Stop only
acts after the run). ``dash.run(**overrides)`` trains in the calling thread and returns the
result: use it in notebooks that run unattended, bounded with ``max_iterations``.
``dash.wait()`` waits for a background run and returns ``dash.result``.
"""
from __future__ import annotations

import dataclasses
import html
import io
import threading
import time
from typing import Any

import ipywidgets as widgets
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from bitflip_lib.config import PRESETS, TrainConfig, default_gamma, make_config
from bitflip_lib.her import HER_STRATEGIES, K_STRATEGIES
from bitflip_lib.networks import ARCHITECTURES
from bitflip_lib.trainer import TrainResult, train

__all__ = [
    "CONTROLLED_FIELDS", "evaluation_streak", "figure_png", "MAX_OVERLAID_RUNS", "Q_BOUND",
    "run_labels", "SESSION_RUNS", "settings_line", "summary_html", "TabularDashboard",
    "TrainingDashboard", "verdict",
]

CONTROLLED_FIELDS = ("n", "arch", "her", "k", "max_iterations", "gamma", "polyak", "clip_targets", "seed")
"""The TrainConfig fields that have a control on the dashboard; other fields are fixed at construction."""

SESSION_RUNS: list[TrainResult] = []
"""Finished dashboard runs since the kernel (the notebook) started, shared by its dashboards."""

MAX_OVERLAID_RUNS = 6
"""At most this many of the latest runs are drawn together (all stay in ``dash.runs``)."""

Q_BOUND = 1.0
"""Every optimal Q-value lies in [0, 1] (reward 1 once, at the goal): the bound clipping enforces."""

_CONFIG_FIELDS = {f.name for f in dataclasses.fields(TrainConfig)}
_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")
_DESCRIPTION = {"description_width": "115px"}


def _cell(width: str = "96%") -> widgets.Layout:  # a little under 100%: the widget's own margin fits too
    return widgets.Layout(width=width, min_width="0")


def _button_layout(width: str) -> widgets.Layout:  # buttons keep their width: a squeezed label reads "Tr..."
    return widgets.Layout(width=width, min_width=width, flex="0 0 auto")


def _controls_grid(children: list[widgets.Widget]) -> widgets.GridBox:
    """Controls in columns of at least 250 px that wrap on a narrow screen: nothing overlaps."""
    return widgets.GridBox(children, layout=widgets.Layout(
        grid_template_columns="repeat(auto-fill, minmax(250px, 1fr))", grid_gap="4px 18px", width="100%"))


def figure_png(fig: Figure, dpi: int = 80) -> bytes:
    """A matplotlib figure as PNG bytes (Agg canvas: no pyplot, safe in a thread)."""
    if fig.canvas is None or not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def _num(value: Any, digits: int = 3) -> str:
    """A number as a student wants to read it: 0.0498046875 -> '0.0498', 12.3456 s -> '12.3'."""
    if value is None:
        return "-"
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.floating, np.integer)):
        return str(value)
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    value = float(value)
    return f"{value:.0f}" if abs(value) >= 10**digits else f"{value:.{digits}g}"


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


def verdict(result: TrainResult, stopped_by_user: bool = False) -> str:
    """One plain sentence: solved or not, and why not (HTML)."""
    c = result.config
    rule = f"{c.solved_window} evaluations in a row at &ge; {_num(c.solved_threshold)}"
    final = result.final
    if result.solved:
        text = f"<b style='color:#070'>Solved</b> at iteration {result.solved_at} ({rule})"
    elif not final:
        text = f"<b>Not evaluated</b> after {result.iterations} iterations"
    else:
        end, best = evaluation_streak(result)
        text = (f"<b style='color:#b00'>Not solved</b> after {result.iterations} iterations: success "
                f"{_num(final['success_rate'])}; solved needs {rule}, this run "
                + (f"ended with {end} in a row" if end else "ended below the threshold")
                + (f" (longest {best})" if best > end else ""))
    reason = {"callback": "stopped by you" if stopped_by_user else "stopped by a callback",
              "max_seconds": f"time limit of {_num(c.max_seconds)} s reached",
              "max_iterations": "budget used up", "solved": "stopped once solved"}.get(result.stopped_by, result.stopped_by)
    return f"{text}. {reason[0].upper() + reason[1:]}, {_num(result.wall_seconds, 3)} s."


def settings_line(result: TrainResult) -> str:
    """The run's settings in one line (HTML), with k only where the strategy uses it."""
    c = result.config
    her = c.her + (f" (k = {c.k})" if c.her in K_STRATEGIES else "")
    polyak = f"Polyak {_num(c.polyak)}" if c.polyak is not None else "no target network"
    parts = [f"n = {c.n}", c.arch, f"HER {her}", f"gamma {_num(c.effective_gamma, 4)}", polyak,
             f"clipping {'on' if c.clip_targets else 'off'}", f"seed {c.seed}", result.device]
    return html.escape(" · ".join(parts))


def run_labels(runs: list[tuple[int, TrainResult]]) -> list[str]:
    """Legend labels: the run number and the settings that differ between the runs drawn."""
    def fields(c: TrainConfig) -> dict[str, str]:
        return {"n": f"n={c.n}", "arch": c.arch, "her": f"her={c.her}" + (f" k={c.k}" if c.her in K_STRATEGIES else ""),
                "gamma": f"γ={_num(c.effective_gamma, 4)}", "polyak": f"τ={_num(c.polyak)}" if c.polyak is not None else "no target",
                "clip": "clip" if c.clip_targets else "no clip", "seed": f"seed {c.seed}",
                "budget": f"{c.max_iterations} it"}
    described = [fields(r.config) for _, r in runs]
    differing = [k for k in described[0] if len({d[k] for d in described}) > 1] if len(runs) > 1 else ["n", "arch", "her"]
    return [f"#{i} " + (" ".join(d[k] for k in differing) if differing else "same settings") for (i, _), d in zip(runs, described)]


class TrainingDashboard(widgets.VBox):
    """Controls, Train / Stop / Clear runs, live plots of every run so far, and a status line.

    Args:
        background: press-Train runs train in a background thread (default; Stop works while it
            trains). False trains inside the click handler (blocking the kernel).
        redraw_seconds: minimum time between two redraws of the live plots (longer when drawing
            itself is slow, so that drawing takes at most about a third of the time).
        runs: the list finished runs are kept in; default :data:`SESSION_RUNS` (every dashboard of
            the notebook, since it started).
        **defaults: :class:`~bitflip_lib.config.TrainConfig` fields (and ``preset``). Those in
            :data:`CONTROLLED_FIELDS` set the controls' initial values; the others (e.g.
            ``num_eval_agents``, ``max_seconds``, ``gradient_steps``) are fixed for every run.

    Raises:
        ValueError: on an unknown field name or an invalid value (from :class:`TrainConfig`).
    """

    def __init__(
        self,
        background: bool = True,
        redraw_seconds: float = 1.0,
        runs: list[TrainResult] | None = None,
        **defaults: Any,
    ) -> None:
        unknown = set(defaults) - _CONFIG_FIELDS
        if unknown:
            raise ValueError(f"unknown TrainingDashboard setting(s) {', '.join(sorted(unknown))}: pass TrainConfig fields "
                             f"such as {', '.join(CONTROLLED_FIELDS)}")
        preset = defaults.pop("preset", "default")
        if preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}: choose one of {', '.join(PRESETS)}")
        base = make_config(preset, **defaults)  # validates every value
        self.preset = preset
        self.fixed = {k: v for k, v in defaults.items() if k not in CONTROLLED_FIELDS}
        self.background = background
        self.redraw_seconds = redraw_seconds
        self.runs: list[TrainResult] = SESSION_RUNS if runs is None else runs
        self.result: TrainResult | None = None
        self.error: BaseException | None = None
        self.figure: Figure | None = None
        self.redraws = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._running = False

        d, cell = _DESCRIPTION, _cell
        self.controls: dict[str, widgets.Widget] = {
            "n": widgets.BoundedIntText(value=base.n, min=1, max=4096, description="bits n", style=d, layout=cell()),
            "arch": widgets.Dropdown(options=list(ARCHITECTURES), value=base.arch, description="network", style=d, layout=cell()),
            "her": widgets.Dropdown(options=list(HER_STRATEGIES), value=base.her, description="HER strategy", style=d, layout=cell()),
            "k": widgets.BoundedIntText(value=base.k, min=1, max=64, description="k goals / step", style=d, layout=cell()),
            "max_iterations": widgets.BoundedIntText(value=base.max_iterations, min=1, max=1_000_000,
                                                     description="budget (iter.)", style=d, layout=cell()),
            "seed": widgets.BoundedIntText(value=base.seed, min=0, max=2**31 - 1, description="seed", style=d, layout=cell()),
            "gamma": widgets.BoundedFloatText(value=round(base.effective_gamma, 4), min=0.01, max=1.0, step=0.001,
                                              description="gamma", style=d, layout=cell("190px")),
            "polyak": widgets.BoundedFloatText(value=base.polyak if base.polyak is not None else 0.05, min=0.001, max=1.0,
                                               step=0.005, description="Polyak fraction", style=d, layout=cell("190px")),
            "clip_targets": widgets.Checkbox(value=base.clip_targets, description="clip targets to [0, 1]", indent=False,
                                             layout=cell("auto")),
        }
        self.gamma_auto = widgets.Checkbox(value=base.gamma is None, description="auto", indent=False, layout=cell("auto"),
                                           tooltip="automatic gamma = max(0.98, 1 - 1/n)")
        self.use_target = widgets.Checkbox(value=base.polyak is not None, description="on", indent=False, layout=cell("auto"),
                                           tooltip="use a target network, moved towards the online one by this fraction per step")
        self.train_button = widgets.Button(description="Train", button_style="success", icon="play", layout=_button_layout("100px"))
        self.stop_button = widgets.Button(description="Stop", button_style="danger", icon="stop", disabled=True,
                                          layout=_button_layout("100px"))
        self.clear_button = widgets.Button(description="Clear runs", icon="trash",
                                           layout=_button_layout("120px"),
                                           tooltip="forget the runs drawn so far")
        self.status = widgets.HTML(value="Set the controls and press <b>Train</b>.", layout=widgets.Layout(flex="1 1 auto", min_width="0"))
        self.image = widgets.Image(format="png", layout=widgets.Layout(width="100%", max_width="880px"))
        self.summary = widgets.HTML()

        self.gamma_auto.observe(lambda _: self._sync_enabled(), names="value")
        self.use_target.observe(lambda _: self._sync_enabled(), names="value")
        self.controls["her"].observe(lambda _: self._sync_enabled(), names="value")
        self.controls["n"].observe(lambda _: self._sync_enabled(), names="value")
        self.train_button.on_click(self._on_train)
        self.stop_button.on_click(lambda _: self.stop())
        self.clear_button.on_click(lambda _: self.clear())
        self._sync_enabled()

        c = self.controls
        pair = widgets.Layout(width="100%", min_width="0", align_items="center", grid_gap="8px")
        grid = _controls_grid([
            c["n"], c["arch"], c["seed"],
            c["her"], c["k"], c["max_iterations"],
            widgets.HBox([c["gamma"], self.gamma_auto], layout=pair),
            widgets.HBox([c["polyak"], self.use_target], layout=pair),
            c["clip_targets"],
        ])
        fixed = ", ".join(f"{k}={v}" for k, v in self.fixed.items())
        header = widgets.HTML(f"<b>Goal-conditioned DQN on bit flipping</b> (preset <code>{preset}</code>"
                              + (f"; fixed: <code>{html.escape(fixed)}</code>" if fixed else "") + ")")
        buttons = widgets.HBox([self.train_button, self.stop_button, self.clear_button, self.status],
                               layout=widgets.Layout(width="100%", align_items="center", grid_gap="8px"))
        super().__init__([header, grid, buttons, self.image, self.summary], layout=widgets.Layout(max_width="900px"))
        if self.runs:
            self._draw(None)

    # ----- reading and setting the controls -------------------------------------------------
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
        None polyak = no target network)."""
        unknown = set(values) - set(CONTROLLED_FIELDS)
        if unknown:
            raise ValueError(f"no control for {', '.join(sorted(unknown))}: controls are {', '.join(CONTROLLED_FIELDS)}")
        make_config(self.preset, **{**self.fixed, **self.values(), **values})  # validate before touching anything
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
    @property
    def running(self) -> bool:
        return self._running

    def run(self, **overrides: Any) -> TrainResult:
        """Train now, blocking, exactly as pressing Train would; return the result.

        Overrides of controlled fields set the controls first (so the dashboard shows what ran);
        other TrainConfig fields apply to this run only.
        """
        controlled = {k: v for k, v in overrides.items() if k in CONTROLLED_FIELDS}
        other = {k: v for k, v in overrides.items() if k not in CONTROLLED_FIELDS}
        self.config(**overrides)  # validates everything before any control changes
        if controlled:
            self.set(**controlled)
        config = self.config(**other)
        self._claim()
        self._train(config, reraise=True)
        assert self.result is not None
        return self.result

    def stop(self) -> None:
        """Ask the running training to stop after its current iteration."""
        self._stop.set()
        if self._running:
            self.status.value = "Stopping after this iteration..."

    def clear(self) -> None:
        """Forget the finished runs (the one training now, if any, stays)."""
        self.runs.clear()
        self._draw(None)
        if not self._running:
            self.status.value = "Runs cleared. Set the controls and press <b>Train</b>."

    def wait(self, timeout: float | None = None) -> TrainResult | None:
        """Wait for a background run to end (at most ``timeout`` seconds); return ``dash.result``."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return self.result

    def _claim(self) -> None:
        with self._lock:
            if self._running:
                raise RuntimeError("a training run is already going on: press Stop (or call dash.stop()) and dash.wait() first")
            self._running = True
        self._stop.clear()

    def _on_train(self, _button: widgets.Button | None = None) -> None:
        try:
            config = self.config()
            self._claim()
        except (ValueError, RuntimeError) as err:
            self.status.value = f"<span style='color:#b00'>{html.escape(str(err))}</span>"
            return
        if self.background:
            self._thread = threading.Thread(target=self._train, args=(config,), daemon=True, name="bitflip-dashboard")
            self._thread.start()
        else:
            self._train(config)

    def _train(self, config: TrainConfig, reraise: bool = False) -> None:
        """Run one training (the caller has claimed the dashboard); always releases it."""
        records: list[dict] = []
        last_draw, wait = [0.0], [self.redraw_seconds]
        number = len(self.runs) + 1

        def callback(record: dict) -> bool:
            records.append(record)
            parts = [f"run #{number}: iteration {record['iteration']} / {config.max_iterations}"]
            if record.get("success_rate") is not None:
                parts.append(f"success {_num(record['success_rate'])}, distance {_num(record['mean_distance'])}")
            if record.get("max_q") is not None:
                parts.append(f"Q mean {_num(record['mean_q'], 2)}, max {_num(record['max_q'], 2)}")
            parts.append(f"{_num(record['wall_seconds'], 3)} s")
            self.status.value = " · ".join(parts)
            now = time.perf_counter()
            if now - last_draw[0] >= wait[0]:
                self._draw(TrainResult(config=config, history=list(records), iterations=record["iteration"]))
                last_draw[0] = time.perf_counter()
                # Drawing costs time too: never spend more than about a third of the run on it.
                wait[0] = max(self.redraw_seconds, 2.0 * (last_draw[0] - now))
            return self._stop.is_set()

        self.error = None
        self.train_button.disabled = True
        self.clear_button.disabled = True
        self.stop_button.disabled = False
        self.summary.value = ""
        self.status.value = f"run #{number}: starting n = {config.n}, {config.arch}, HER {config.her}..."
        try:
            result = train(config, callbacks=[callback], progress=False)
            self.result = result
            self.runs.append(result)
            self._draw(None)
            self.status.value = f"Run #{number}: " + verdict(result, stopped_by_user=self._stop.is_set())
            self.summary.value = f"<small>Run #{number}: {settings_line(result)}</small>"
        except Exception as err:  # shown in the dashboard; re-raised for blocking calls
            self.error = err
            self.status.value = f"<span style='color:#b00'>error: {html.escape(repr(err))}</span>"
            if reraise:
                raise
        finally:
            self.train_button.disabled = False
            self.clear_button.disabled = False
            self.stop_button.disabled = True
            self._running = False

    def _draw(self, current: TrainResult | None) -> None:
        """Draw the kept runs (the latest :data:`MAX_OVERLAID_RUNS`) and the run in progress."""
        fig = Figure(figsize=(11.0, 5.4))
        fig.subplots_adjust(left=0.07, right=0.98, bottom=0.09, top=0.94, wspace=0.18, hspace=0.32)
        axes = fig.subplots(2, 2).ravel()
        numbered = list(enumerate(self.runs, start=1))[-MAX_OVERLAID_RUNS:]
        if current is not None:
            numbered = numbered[-(MAX_OVERLAID_RUNS - 1):] + [(len(self.runs) + 1, current)]
        labels = run_labels(numbered) if numbered else []
        for (number, result), label in zip(numbered, labels):
            colour = _COLOURS[(number - 1) % len(_COLOURS)]
            live = result is current
            width = 2.0 if live or result is self.result else 1.3
            for ax, key in zip(axes[:3], ("success_rate", "mean_distance", "loss")):
                x, y = result.curve(key)
                if x:
                    ax.plot(x, y, color=colour, lw=width, label=label + (" (running)" if live else ""))
            for key, style in (("mean_q", "-"), ("max_q", "--")):
                x, y = result.curve(key)
                if x:
                    axes[3].plot(x, y, style, color=colour, lw=width)
        axes[3].axhline(Q_BOUND, color="k", lw=1, ls=":")
        axes[3].plot([], [], "k-", label="mean Q (replayed batch)")
        axes[3].plot([], [], "k--", label="max Q")
        axes[3].plot([], [], "k:", label=f"bound {Q_BOUND:g} (clipping keeps targets below it)")
        titles = ("Success rate (greedy, test agents)", "Distance to goal at the end", "Loss", "Q-values of the online network")
        for ax, title in zip(axes, titles):
            ax.set_title(title, fontsize=10)
            ax.grid(alpha=0.3)
            ax.tick_params(labelsize=8)
        axes[0].set_ylim(-0.03, 1.03)
        if any(result.curve("loss")[0] for _, result in numbered):
            axes[2].set_yscale("log")
        for ax in axes[2:]:
            ax.set_xlabel("iteration", fontsize=9)
        if labels:
            axes[0].legend(fontsize=7, loc="best")
        else:
            axes[0].text(0.5, 0.5, "press Train", ha="center", va="center", transform=axes[0].transAxes, color="grey")
        axes[3].legend(fontsize=7, loc="best")
        self.figure = fig
        self.image.value = figure_png(fig)
        self.redraws += 1


class TabularDashboard(widgets.VBox):
    """Tabular Q-learning live (chapter 2): the goal-conditioned Q table converging to the exact Q*.

    Three plots: the largest and the mean error ``|Q - Q*|`` over the table, the greedy policy's
    success, and every entry of the table against its exact value (at convergence they lie on the
    diagonal). Train / Stop work as on :class:`TrainingDashboard`; ``run()`` trains blocking.

    Args:
        n, iterations, alpha, gamma, epsilon, seed: initial control values (see
            :func:`bitflip_lib.tabular.q_learning`); n is limited to 2..8 so a run takes seconds.
        eval_every: compare with Q* and redraw every this many iterations.
        background: as in :class:`TrainingDashboard`.
    """

    MAX_N = 8

    def __init__(self, n: int = 4, iterations: int = 300, alpha: float = 0.5, gamma: float = 0.9, epsilon: float = 1.0,
                 seed: int = 0, eval_every: int = 10, background: bool = True) -> None:
        if isinstance(n, bool) or not isinstance(n, int) or not 2 <= n <= self.MAX_N:
            raise ValueError(f"n must be an integer from 2 to {self.MAX_N} for the live table, got {n!r}")
        if isinstance(eval_every, bool) or not isinstance(eval_every, int) or eval_every < 1:
            raise ValueError(f"eval_every must be an integer >= 1, got {eval_every!r}")
        for name, value, low, high in (("alpha", alpha, 0.0, 1.0), ("gamma", gamma, 0.0, 1.0), ("epsilon", epsilon, -1e-12, 1.0)):
            if not low < float(value) <= high:
                raise ValueError(f"{name} must be in ({max(low, 0.0)}, {high}], got {value!r}")
        self.eval_every, self.background = eval_every, background
        self.result = None
        self.error: BaseException | None = None
        self.figure: Figure | None = None
        self.redraws = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._running = False
        d = _DESCRIPTION
        self.controls = {
            "n": widgets.BoundedIntText(value=n, min=2, max=self.MAX_N, description="bits n", style=d, layout=_cell()),
            "iterations": widgets.BoundedIntText(value=iterations, min=1, max=100_000, description="iterations", style=d, layout=_cell()),
            "alpha": widgets.BoundedFloatText(value=alpha, min=0.01, max=1.0, step=0.05, description="alpha (step)", style=d, layout=_cell()),
            "gamma": widgets.BoundedFloatText(value=gamma, min=0.01, max=1.0, step=0.01, description="gamma", style=d, layout=_cell()),
            "epsilon": widgets.BoundedFloatText(value=epsilon, min=0.0, max=1.0, step=0.05, description="epsilon", style=d, layout=_cell()),
            "seed": widgets.BoundedIntText(value=seed, min=0, max=2**31 - 1, description="seed", style=d, layout=_cell()),
        }
        self.train_button = widgets.Button(description="Train", button_style="success", icon="play", layout=_cell("100px"))
        self.stop_button = widgets.Button(description="Stop", button_style="danger", icon="stop", disabled=True, layout=_cell("100px"))
        self.status = widgets.HTML("Set the controls and press <b>Train</b>.", layout=widgets.Layout(flex="1 1 auto", min_width="0"))
        self.image = widgets.Image(format="png", layout=widgets.Layout(width="100%", max_width="880px"))
        self.train_button.on_click(self._on_train)
        self.stop_button.on_click(lambda _: self._stop.set())
        header = widgets.HTML("<b>Tabular Q-learning</b>: the goal-conditioned Q table against the exact Q*")
        buttons = widgets.HBox([self.train_button, self.stop_button, self.status],
                               layout=widgets.Layout(width="100%", align_items="center", grid_gap="8px"))
        super().__init__([header, _controls_grid(list(self.controls.values())), buttons, self.image],
                         layout=widgets.Layout(max_width="900px"))

    @property
    def running(self) -> bool:
        return self._running

    def values(self) -> dict[str, Any]:
        return {k: c.value for k, c in self.controls.items()}

    def run(self, **values: Any):
        """Set the given controls, train blocking, and return the :class:`~bitflip_lib.tabular.TabularResult`."""
        unknown = set(values) - set(self.controls)
        if unknown:
            raise ValueError(f"no control for {', '.join(sorted(unknown))}: controls are {', '.join(self.controls)}")
        if self._running:
            raise RuntimeError("a run is already going on: press Stop and wait for it first")
        for name, value in values.items():
            self.controls[name].value = value
        self._running = True
        self._train(self.values(), reraise=True)
        return self.result

    def wait(self, timeout: float | None = None):
        if self._thread is not None:
            self._thread.join(timeout)
        return self.result

    def _on_train(self, _button=None) -> None:
        if self._running:
            return
        self._running = True
        settings = self.values()
        if self.background:
            self._thread = threading.Thread(target=self._train, args=(settings,), daemon=True, name="bitflip-tabular")
            self._thread.start()
        else:
            self._train(settings)

    def _train(self, s: dict[str, Any], reraise: bool = False) -> None:
        from bitflip_lib.tabular import q_learning

        self._stop.clear()
        self.error = None
        self.train_button.disabled, self.stop_button.disabled = True, False
        history: list[dict] = []

        def callback(record: dict, q) -> bool:
            history.append(record)
            self.status.value = (f"iteration {record['iteration']} / {s['iterations']} · max |Q - Q*| "
                                 f"{_num(record['max_error'])} · greedy success {_num(record['success_rate'])}")
            self._draw(history, q, q_star)
            return self._stop.is_set()

        try:
            from bitflip_lib.tabular import value_iteration

            q_star, _ = value_iteration(s["n"], float(s["gamma"]), device="cpu")
            result = q_learning(s["n"], iterations=s["iterations"], alpha=float(s["alpha"]), gamma=float(s["gamma"]),
                                epsilon=float(s["epsilon"]), seed=s["seed"], eval_every=self.eval_every, device="cpu",
                                callback=callback)
            self.result = result
            final = result.final
            stopped = " (stopped by you)" if self._stop.is_set() else ""
            self.status.value = (f"Done after {final['iteration']} iterations{stopped}: max |Q - Q*| {_num(final['max_error'])}, "
                                 f"mean {_num(final['mean_error'])}, greedy success {_num(final['success_rate'])}.")
        except Exception as err:
            self.error = err
            self.status.value = f"<span style='color:#b00'>error: {html.escape(repr(err))}</span>"
            if reraise:
                raise
        finally:
            self.train_button.disabled, self.stop_button.disabled = False, True
            self._running = False

    def _draw(self, history: list[dict], q, q_star) -> None:
        import torch

        fig = Figure(figsize=(11.0, 3.4))
        fig.subplots_adjust(left=0.06, right=0.98, bottom=0.16, top=0.9, wspace=0.25)
        ax_err, ax_success, ax_table = fig.subplots(1, 3)
        it = [h["iteration"] for h in history]
        ax_err.semilogy(it, [max(h["max_error"], 1e-6) for h in history], label="largest |Q - Q*|")
        ax_err.semilogy(it, [max(h["mean_error"], 1e-6) for h in history], label="mean |Q - Q*|")
        ax_err.set(title="Error of the table", xlabel="iteration (16 episodes each)")
        ax_err.legend(fontsize=8)
        ax_success.plot(it, [h["success_rate"] for h in history], color="C2")
        ax_success.set(title="Greedy policy: success", xlabel="iteration", ylim=(-0.03, 1.03))
        size = q.shape[0]
        off_goal = ~torch.eye(size, dtype=torch.bool)
        learned, exact = q.detach().cpu()[off_goal].flatten(), q_star.detach().cpu()[off_goal].flatten()
        if learned.numel() > 4000:  # a fixed sample keeps drawing fast at n = 7, 8
            pick = torch.randperm(learned.numel(), generator=torch.Generator().manual_seed(0))[:4000]
            learned, exact = learned[pick], exact[pick]
        ax_table.scatter(exact.numpy(), learned.numpy(), s=4, alpha=0.4)
        ax_table.plot([0, 1], [0, 1], "k:", lw=1)
        ax_table.set(title="Every entry: learned against exact", xlabel="Q*(s, g, a)", ylabel="learned Q(s, g, a)",
                     xlim=(-0.03, 1.03), ylim=(-0.03, 1.03))
        for ax in (ax_err, ax_success, ax_table):
            ax.grid(alpha=0.3)
            ax.title.set_fontsize(10)
        self.figure = fig
        self.image.value = figure_png(fig)
        self.redraws += 1


def summary_html(result: TrainResult) -> str:
    """A short HTML account of a finished run: the verdict and its settings, numbers rounded."""
    return f"<p>{verdict(result)}</p><p><small>{settings_line(result)}</small></p>"
