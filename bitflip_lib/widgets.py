"""A live training dashboard for notebooks: pick the settings, press Train, watch it learn.

::

    from bitflip_lib.widgets import TrainingDashboard
    dash = TrainingDashboard(n=10, arch="uvfa", her="none", max_iterations=300)
    dash                      # shows the controls, Train / Stop and the live plots
    result = dash.run()       # the same as pressing Train, but blocking; returns the TrainResult

How it runs:

* **Pressing Train** in JupyterLab starts training in a background thread of the kernel, so
  the notebook stays responsive: the plots (success rate, distance to goal, loss) redraw about every
  ``redraw_seconds`` while it trains, and **Stop** ends the run after the current iteration
  (the dashboard's ``train()`` callback returns True). The plots are PNG images rendered with
  matplotlib's Agg canvas into an ``ipywidgets.Image``, which works in plain JupyterLab with no
  extension and from a thread. ``background=False`` trains inside the button handler instead:
  the plots still update, but the kernel is busy, so Stop only takes effect after the run.
* **dash.run(**overrides)** trains in the calling thread with the current control values (the
  overrides first set the controls), updates the plots and returns the result. Use it in
  scripts and in notebooks that CI executes. While a cell is running, the kernel cannot
  receive button clicks, so use ``max_iterations`` / ``max_seconds`` to bound such runs.
* ``dash.result`` keeps the last :class:`~bitflip_lib.trainer.TrainResult`; ``dash.wait()``
  waits for a background run to finish and returns it.
"""
from __future__ import annotations

import dataclasses
import html
import io
import threading
import time
from typing import Any

import ipywidgets as widgets
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from bitflip_lib.config import PRESETS, TrainConfig, make_config
from bitflip_lib.her import HER_STRATEGIES
from bitflip_lib.networks import ARCHITECTURES
from bitflip_lib.plots import plot_training
from bitflip_lib.trainer import TrainResult, train

CONTROLLED_FIELDS = ("n", "arch", "her", "k", "max_iterations", "gamma", "polyak", "clip_targets", "seed")
"""The TrainConfig fields that have a control on the dashboard; other fields are fixed at construction."""

_CONFIG_FIELDS = {f.name for f in dataclasses.fields(TrainConfig)}
_MULTI_GOAL = ("future", "episode")  # strategies that use k


class TrainingDashboard(widgets.VBox):
    """Controls, Train / Stop buttons, live plots and a summary for one training run at a time.

    Args:
        background: press-Train runs train in a background thread (default; Stop works while it
            trains). False trains inside the click handler (blocking the kernel).
        redraw_seconds: minimum time between two redraws of the live plots (longer when drawing
            itself is slow, so that drawing takes at most about a third of the time).
        metrics: history keys to plot live.
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
        metrics: tuple[str, ...] = ("success_rate", "mean_distance", "loss"),
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
        self.metrics = tuple(metrics)
        self.result: TrainResult | None = None
        self.error: BaseException | None = None
        self.figure: Figure | None = None
        self.redraws = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._running = False

        style = {"description_width": "initial"}
        wide = widgets.Layout(width="230px")
        self.controls: dict[str, widgets.Widget] = {
            "n": widgets.BoundedIntText(value=base.n, min=1, max=4096, description="bits n", style=style, layout=wide),
            "arch": widgets.Dropdown(options=list(ARCHITECTURES), value=base.arch, description="network", style=style, layout=wide),
            "her": widgets.Dropdown(options=list(HER_STRATEGIES), value=base.her, description="HER strategy", style=style, layout=wide),
            "k": widgets.BoundedIntText(value=base.k, min=1, max=64, description="k (goals per step)", style=style, layout=wide),
            "max_iterations": widgets.BoundedIntText(value=base.max_iterations, min=1, max=1_000_000,
                                                     description="budget (iterations)", style=style, layout=wide),
            "gamma": widgets.BoundedFloatText(value=base.effective_gamma, min=0.01, max=1.0, step=0.001,
                                              description="gamma", style=style, layout=wide),
            "polyak": widgets.BoundedFloatText(value=base.polyak if base.polyak is not None else 0.05, min=0.001, max=1.0,
                                               step=0.005, description="Polyak fraction", style=style, layout=wide),
            "clip_targets": widgets.Checkbox(value=base.clip_targets, description="clip targets to [0, 1]", indent=False),
            "seed": widgets.BoundedIntText(value=base.seed, min=0, max=2**31 - 1, description="seed", style=style, layout=wide),
        }
        self.gamma_auto = widgets.Checkbox(value=base.gamma is None, description="automatic gamma = max(0.98, 1 - 1/n)", indent=False)
        self.use_target = widgets.Checkbox(value=base.polyak is not None, description="target network", indent=False)
        self.train_button = widgets.Button(description="Train", button_style="success", icon="play")
        self.stop_button = widgets.Button(description="Stop", button_style="danger", icon="stop", disabled=True)
        self.status = widgets.HTML(value="Set the controls and press <b>Train</b>.")
        self.image = widgets.Image(format="png", layout=widgets.Layout(max_width="100%"))
        self.summary = widgets.HTML()

        self.gamma_auto.observe(lambda _: self._sync_enabled(), names="value")
        self.use_target.observe(lambda _: self._sync_enabled(), names="value")
        self.controls["her"].observe(lambda _: self._sync_enabled(), names="value")
        self.controls["n"].observe(lambda _: self._sync_enabled(), names="value")
        self.train_button.on_click(self._on_train)
        self.stop_button.on_click(lambda _: self.stop())
        self._sync_enabled()

        c = self.controls
        columns = widgets.HBox([
            widgets.VBox([c["n"], c["arch"], c["seed"]]),
            widgets.VBox([c["her"], c["k"], c["max_iterations"]]),
            widgets.VBox([self.gamma_auto, c["gamma"], c["clip_targets"]]),
            widgets.VBox([self.use_target, c["polyak"]]),
        ])
        fixed = ", ".join(f"{k}={v}" for k, v in self.fixed.items())
        header = widgets.HTML(f"<b>Goal-conditioned DQN on bit flipping</b> (preset <code>{preset}</code>"
                              + (f"; fixed: <code>{html.escape(fixed)}</code>" if fixed else "") + ")")
        super().__init__([header, columns, widgets.HBox([self.train_button, self.stop_button, self.status]),
                          self.image, self.summary])

    # ----- reading and setting the controls -------------------------------------------------
    def _sync_enabled(self) -> None:
        c = self.controls
        c["gamma"].disabled = self.gamma_auto.value
        if self.gamma_auto.value:
            c["gamma"].value = max(0.98, 1.0 - 1.0 / max(1, c["n"].value))
        c["polyak"].disabled = not self.use_target.value
        c["k"].disabled = c["her"].value not in _MULTI_GOAL

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
        config = self.config(**overrides)  # validates everything before any control changes
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

        def callback(record: dict) -> bool:
            records.append(record)
            success = record.get("success_rate")
            self.status.value = (f"iteration {record['iteration']} / {config.max_iterations}"
                                 + (f", success {success:.3f}" if success is not None else "")
                                 + f", {record['wall_seconds']:.1f} s")
            now = time.perf_counter()
            if now - last_draw[0] >= wait[0]:
                self._draw(TrainResult(config=config, history=list(records), iterations=record["iteration"]))
                last_draw[0] = time.perf_counter()
                # Drawing costs time too: never spend more than about a third of the run on it.
                wait[0] = max(self.redraw_seconds, 2.0 * (last_draw[0] - now))
            return self._stop.is_set()

        self.error = None
        self.train_button.disabled = True
        self.stop_button.disabled = False
        self.summary.value = ""
        self.status.value = f"training n={config.n} {config.arch} her={config.her}..."
        try:
            result = train(config, callbacks=[callback], progress=False)
            self.result = result
            self._draw(result)
            self.summary.value = summary_html(result)
            self.status.value = "done" if result.stopped_by != "callback" else "stopped"
        except Exception as err:  # shown in the dashboard; re-raised for blocking calls
            self.error = err
            self.status.value = f"<span style='color:#b00'>error: {html.escape(repr(err))}</span>"
            if reraise:
                raise
        finally:
            self.train_button.disabled = False
            self.stop_button.disabled = True
            self._running = False

    def _draw(self, result: TrainResult) -> None:
        """Render the live plots to PNG (Agg canvas: no pyplot, safe in a thread)."""
        fig = Figure(figsize=(4.0 * len(self.metrics), 3.2), layout="constrained")
        FigureCanvasAgg(fig)
        axes = fig.subplots(1, len(self.metrics), squeeze=False).ravel()
        label = f"n={result.config.n} {result.config.arch} her={result.config.her}"
        if any(h.get(m) is not None for h in result.history for m in self.metrics):
            plot_training(result, metrics=self.metrics, labels=[label], axes=axes)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=80)
        self.figure = fig
        self.image.value = buffer.getvalue()
        self.redraws += 1


def summary_html(result: TrainResult) -> str:
    """A short HTML account of a finished run: what ran, whether it was solved, and its numbers."""
    s = result.summary()
    if result.solved:
        verdict = f"<b style='color:#070'>Solved</b> at iteration {s['solved_at']}"
    else:
        rate = s["success_rate"]
        verdict = (f"<b style='color:#b00'>Not solved</b>: success {rate:.3f}" if rate is not None else "<b>Not evaluated</b>")
        verdict += f" after {s['iterations']} iterations (stopped by {s['stopped_by']})"
    keys = ("n", "arch", "her", "k", "seed", "iterations", "solved_at", "success_rate", "mean_distance", "wall_seconds", "device")
    cells = "".join(f"<tr><td style='padding-right:1em'>{k}</td><td>{html.escape(str(s[k]))}</td></tr>" for k in keys)
    gamma = result.config.effective_gamma
    polyak = result.config.polyak if result.config.polyak is not None else "no target network"
    return (f"<p>{verdict}. gamma {gamma:.4g}, Polyak {polyak}, clipping {'on' if result.config.clip_targets else 'off'}.</p>"
            f"<table>{cells}</table>")
