"""The generation playground of chapters 8 and 9: two samplers trained side by side on one reward.

::

    from bitflip_lib.ui.playground import GenerationPlayground
    play = GenerationPlayground(methods=("reinforce", "kl"), beta=0.5)   # chapter 8
    play = GenerationPlayground(methods=("kl", "gflownet"), beta=0.5)    # chapter 9
    play                      # controls, Train / Stop, one live panel per sampler
    play.run(steps=20)        # the same as pressing Train, blocking (scripts, automated runs)

The samplers (:data:`PLAY_METHODS`): ``reinforce`` maximises E[R] and has no target distribution
(its maximisers put all their mass on the best strings); ``kl`` maximises
``E[R] - beta KL(pi || pi_ref)``, whose target is ``pi_ref exp(R / beta) / Z``; ``gflownet``
trains with trajectory balance, whose target is ``R / Z``. Each panel shows, over all ``2^L``
strings, the target (grey area), the sampler's exact distribution (line), the fraction of 512
fresh samples on each string (dots) and the hidden target strings (triangles); its title gives
the step and the total variation to the target (or the success rate). Before Train the panels
show the untrained samplers, and they follow the controls.

Both samplers start from the same initial network (same seed) and advance in turn, ``redraw_every``
steps at a time, so they are always at the same step: Stop (at the next redraw) leaves both
panels drawn. Pressing Train runs in a background thread; the figure is a PNG drawn with
matplotlib's Agg canvas at 100 dpi, 880 pixels wide (no extension needed, safe from a thread).
"""
from __future__ import annotations

import html
import time
from typing import Any

import ipywidgets as widgets
import numpy as np
import torch
from matplotlib import transforms
from matplotlib.figure import Figure

from bitflip_lib.generation.sequences import (
    MultiModalReward,
    Reward,
    all_strings,
    empirical_distribution,
    exact_log_probs,
)
from bitflip_lib.generation.training import (
    GenerateConfig,
    GenerationResult,
    GeneratorTraining,
)
from bitflip_lib.ui.live import CONTROL_STYLE, FIGURE_WIDTH, LiveTraining, check_int, control_layout, controls_grid

__all__ = [
    "BETAS", "GenerationPlayground", "MAX_LENGTH", "PLAY_METHODS", "PLAY_REWARDS", "SPARSE_FLOOR",
]

PLAY_METHODS = {"reinforce": "REINFORCE (maximise E[R])", "kl": "REINFORCE + KL", "gflownet": "GFlowNet (TB)"}
"""The samplers a panel can show, with their panel titles."""

PLAY_REWARDS = {"sparse": "sparse: one target", "dense": "dense: exp(-0.2 d)", "multimodal": "multimodal: 4 targets"}
"""The rewards the playground offers, with the labels of its menu."""

BETAS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)
"""The KL weights the beta slider offers (round numbers on a roughly logarithmic scale)."""

MAX_LENGTH = 10
"""Longest L: every one of the 2^L strings is drawn and its probability computed exactly."""

SPARSE_FLOOR = 1e-3
"""The GFlowNet needs log R finite: the sparse reward gets this floor, for every panel alike."""

SAMPLES = 512
"""Fresh samples drawn for the dots of each panel."""

FIGURE_INCHES = (FIGURE_WIDTH, 3.5)  # 880 x 350 pixels: the notebook's width, drawn 1:1
_TARGET_COLOUR, _SAMPLER_COLOUR, _SAMPLES_COLOUR = "0.82", "#1f77b4", "#ff7f0e"


def _number(value: float) -> str:
    """0.0312345 -> '0.0312', 1.0 -> '1', 8.6e-05 -> '< 0.001': short, no float noise."""
    return "< 0.001" if 0 < abs(value) < 0.001 else f"{value:.3g}"


class GenerationPlayground(LiveTraining):
    """Controls (L, reward, beta, steps, seed), Train / Stop, a status line and one panel per sampler.

    Args:
        methods: two (or one or three) of :data:`PLAY_METHODS`, one panel each, left to right.
        length, reward, beta, steps, seed: the controls' initial values; ``beta`` must be one of
            :data:`BETAS` (the slider's values).
        redraw_every: steps between two evaluations and redraws (also how soon Stop acts).
        background: pressing Train trains in a background thread (default); False trains inside
            the click handler (the kernel is busy meanwhile).

    Train, Stop, the status line, the figure and the one-run-at-a-time lock are
    :class:`~bitflip_lib.ui.live.LiveTraining`'s, as on the dashboards.

    Raises:
        ValueError: for an unknown method or reward, a length outside 2..10, a beta that is not
            on the slider, steps outside the slider's 10..2000, a redraw_every below 1 or a
            seed outside the seed box's 0..2^31 - 1.
    """

    def __init__(self, methods: tuple[str, ...] = ("kl", "gflownet"), length: int = 6, reward: str = "multimodal",
                 beta: float = 0.5, steps: int = 300, seed: int = 0, redraw_every: int = 25,
                 background: bool = True) -> None:
        methods = tuple(methods)
        unknown = [m for m in methods if m not in PLAY_METHODS]
        if unknown or not 1 <= len(methods) <= 3 or len(set(methods)) != len(methods):
            raise ValueError(f"methods must be one to three different names from {', '.join(PLAY_METHODS)}, "
                             f"got {methods!r}")
        check_int("length", length, 2, MAX_LENGTH)  # every one of the 2^L strings is drawn
        if reward not in PLAY_REWARDS:
            raise ValueError(f"reward must be one of {', '.join(PLAY_REWARDS)}, got {reward!r}")
        if beta not in BETAS:
            raise ValueError(f"beta must be one of the slider's values {', '.join(map(str, BETAS))}, got {beta!r}")
        check_int("steps", steps, 10, 2000)  # the slider's range
        check_int("redraw_every", redraw_every, 1)
        check_int("seed", seed, 0, 2**31 - 1)  # the seed box's range
        self.methods, self.redraw_every = methods, redraw_every
        self.results: dict[str, GenerationResult] = {}
        self.panels: dict[str, dict] = {}
        self.outcome = "untrained"  # then "running", "finished", "stopped" or "error"

        d = CONTROL_STYLE
        self.controls: dict[str, widgets.Widget] = {
            "length": widgets.IntSlider(value=length, min=2, max=MAX_LENGTH, description="L (bits)", style=d,
                                        layout=control_layout()),
            "reward": widgets.Dropdown(options=[(label, key) for key, label in PLAY_REWARDS.items()], value=reward,
                                       description="reward", style=d, layout=control_layout()),
            "beta": widgets.SelectionSlider(options=[(_number(b), b) for b in BETAS], value=beta,
                                            description="beta (KL weight)", style=d, layout=control_layout(),
                                            disabled="kl" not in methods),
            "steps": widgets.IntSlider(value=steps, min=10, max=2000, step=10, description="steps", style=d,
                                       layout=control_layout()),
            "seed": widgets.BoundedIntText(value=seed, min=0, max=2**31 - 1, description="seed", style=d,
                                           layout=control_layout()),
        }
        names = " and ".join(PLAY_METHODS[m] for m in methods)
        header = widgets.HTML(f"<b>Generation playground</b>: {html.escape(names)}, side by side on one reward, "
                              "over all 2<sup>L</sup> strings")
        grid = controls_grid(list(self.controls.values()))
        super().__init__(header, grid, background=background, clearable=False)
        self.status.add_class("bitflip-status")  # what the browser tests read
        for control in self.controls.values():
            control.observe(lambda _change: self._preview(), names="value")
        self._preview()

    # ----- settings ------------------------------------------------------------------------------
    def values(self) -> dict[str, Any]:
        return {k: c.value for k, c in self.controls.items()}

    def configs(self, steps: int | None = None) -> dict[str, GenerateConfig]:
        """The runs the controls describe, one per panel: same reward, same seed, same network."""
        v = self.values()
        steps = int(steps if steps is not None else v["steps"])
        base = GenerateConfig(length=int(v["length"]), reward=v["reward"], steps=steps, batch_size=64, lr=2e-3,
                              floor=SPARSE_FLOOR if v["reward"] == "sparse" else None,
                              eval_every=min(self.redraw_every, steps), eval_samples=SAMPLES, seed=int(v["seed"]),
                              beta=float(v["beta"]), device="cpu")
        return {method: base.replace(method=method) for method in self.methods}

    # ----- training --------------------------------------------------------------------------------
    def run(self, steps: int | None = None) -> dict[str, GenerationResult]:
        """Train every panel's sampler (blocking) with the current controls; returns ``{method: result}``.
        Stop acts at the next redraw."""
        self._run_blocking(self.configs(steps))
        return self.results

    def wait(self, timeout: float | None = None) -> dict[str, GenerationResult]:
        """Wait for a background run to end (at most ``timeout`` seconds); return the results."""
        super().wait(timeout)
        return self.results

    def _prepare(self) -> dict[str, GenerateConfig]:
        return self.configs()

    def _runs(self, configs: dict[str, GenerateConfig]) -> dict[str, GeneratorTraining]:
        """One run per panel, all on the same reward and from copies of the same initial network."""
        first = next(iter(configs.values()))
        reward = first.build_reward("cpu")
        return {method: GeneratorTraining(config, reward=reward) for method, config in configs.items()}

    def _train(self, configs: dict[str, GenerateConfig]) -> None:
        """Train the panels' runs in turn, ``redraw_every`` steps at a time (the base has claimed the widget)."""
        self.results, self.outcome = {}, "running"
        self._lock_controls(True)
        start = time.perf_counter()
        total = next(iter(configs.values())).steps
        samples = torch.Generator().manual_seed(12345)  # the dots: the same draws for the same settings
        try:
            runs = self._runs(configs)
            self.results = {method: run.result for method, run in runs.items()}
            while True:
                records = {method: next(run, None) for method, run in runs.items()}
                if any(record is None for record in records.values()):
                    break  # every run has done its last step (they advance together)
                self.panels = {method: self._panel(run, record, samples) for (method, run), record
                               in zip(runs.items(), records.values())}
                step = next(iter(records.values()))["step"]
                self.status.value = self._report(f"step {step} of {total}", time.perf_counter() - start)
                self._draw()
                if self.stop_requested:
                    break
            step = next(iter(self.panels.values()))["step"]
            seconds = time.perf_counter() - start
            if step < total:
                self.outcome = "stopped"
                self.status.value = self._report(f"<b>Stopped</b> by you at step {step} of {total}", seconds)
            else:
                self.outcome = "finished"
                self.status.value = self._report(f"<b style='color:#070'>Finished</b> all {total} steps", seconds)
        except Exception:  # the base shows it, and re-raises it for run()
            self.outcome = "error"
            raise
        finally:
            self._lock_controls(False)
            self.result = self.results

    def _lock_controls(self, busy: bool) -> None:
        """Lock the controls while training (the base handles Train and Stop)."""
        for name, control in self.controls.items():
            control.disabled = busy or (name == "beta" and "kl" not in self.methods)

    # ----- what is shown ---------------------------------------------------------------------------
    def _preview(self) -> None:
        """The untrained samplers against their targets, for the controls' current values."""
        if self.running:
            return
        try:
            runs = self._runs(self.configs())
            samples = torch.Generator().manual_seed(12345)
            self.panels = {method: self._panel(run, next(run), samples) for method, run in runs.items()}
        except Exception as err:  # a bad control value: say so, keep the last figure
            self.error = err
            self.status.value = f"<span style='color:#b00'>error: {html.escape(repr(err))}</span>"
            return
        self.results, self.outcome = {}, "untrained"
        self.status.value = "Untrained samplers against their targets. Set the controls and press <b>Train</b>."
        self._draw()

    @staticmethod
    def _panel(run: GeneratorTraining, record: dict, samples: torch.Generator) -> dict:
        policy, reward = run.result.policy, run.result.reward
        return {"exact": exact_log_probs(policy).exp(), "sampled": empirical_distribution(policy.sample(SAMPLES, samples)),
                "target": run.target, "targets": _target_strings(reward), "record": record, "step": record["step"]}

    def _report(self, head: str, seconds: float) -> str:
        """The status line: where the run is, and each sampler's distance to its target."""
        parts = []
        for method, panel in self.panels.items():
            record = panel["record"]
            numbers = [f"TV to target {_number(record['tv'])}"] if "tv" in record else []
            numbers.append(f"success {record['success']:.2f}")
            if "modes_covered" in record:
                numbers.append(f"targets kept {record['modes_covered']} of {len(record['mode_mass'])}")
            parts.append(f"{html.escape(PLAY_METHODS[method])}: {', '.join(numbers)}")
        return f"{head}, {seconds:.1f} s. " + "; ".join(parts) + "."

    def _draw(self) -> None:
        fig = Figure(figsize=FIGURE_INCHES)  # fixed margins: cheaper than a layout engine
        fig.subplots_adjust(left=0.075, right=0.99, bottom=0.27, top=0.86, wspace=0.16)
        axes = np.atleast_1d(fig.subplots(1, len(self.methods)))  # own scales: targets differ a lot
        for ax, method in zip(axes, self.methods):
            panel = self.panels[method]
            x = np.arange(len(panel["exact"]))
            if panel["target"] is not None:
                ax.fill_between(x, panel["target"].cpu().numpy(), step="mid", color=_TARGET_COLOUR, lw=0,
                                label="target distribution")
            ax.plot(x, panel["exact"].cpu().numpy(), color=_SAMPLER_COLOUR, lw=1.2, label="sampler (exact)")
            ax.plot(x, panel["sampled"].cpu().numpy(), ".", color=_SAMPLES_COLOUR, ms=3.5,
                    label=f"{SAMPLES} samples")
            on_axis = transforms.blended_transform_factory(ax.transData, ax.transAxes)
            ax.plot(panel["targets"], np.zeros(len(panel["targets"])), "^", color="k", ms=6, clip_on=False,
                    transform=on_axis, label="target strings")
            record = panel["record"]
            score = f"TV to target {_number(record['tv'])}" if "tv" in record else f"success {record['success']:.2f}"
            ax.set_title(f"{PLAY_METHODS[method]}\nstep {panel['step']}, {score}", fontsize=10)
            ax.set_xlim(-0.5, len(x) - 0.5)
            ax.set_ylim(0, 1.08 * max(float(panel["exact"].max()), float(panel["sampled"].max()),
                                      float(panel["target"].max()) if panel["target"] is not None else 0.0))
            ax.set_xlabel(f"string (all {len(x)}, in binary order)", fontsize=9)
            ax.grid(alpha=0.3)
            ax.tick_params(labelsize=8)
        axes[0].set_ylabel("probability", fontsize=9)
        handles, labels = axes[0].get_legend_handles_labels()
        if len(self.methods) > 1 and self.panels[self.methods[0]]["target"] is None:
            handles, labels = axes[-1].get_legend_handles_labels()  # a panel that has a target draws it
        fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=9, frameon=False)
        self.show(fig)


def _target_strings(reward: Reward) -> np.ndarray:
    """Indices of the strings that count as a success (the hidden targets), for the triangles."""
    strings = all_strings(reward.length)
    hit = reward.mode_index(strings) >= 0 if isinstance(reward, MultiModalReward) else reward.is_success(strings)
    return torch.nonzero(hit).flatten().numpy()
