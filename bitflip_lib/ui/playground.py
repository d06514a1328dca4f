"""Chapter 8's playground: REINFORCE (KL-regularised) and a GFlowNet side by side on one reward.

::

    from bitflip_lib.ui.playground import GenerationPlayground
    play = GenerationPlayground(length=6, reward="multimodal", beta=0.5, steps=300)
    play                      # controls, Train / Stop, live plots of both samplers against their targets
    play.run(steps=20)        # the same as pressing Train, blocking (scripts, automated runs)

Left: REINFORCE on ``E[R] - beta KL(pi || pi_ref)``, whose target is ``pi_ref exp(R / beta) / Z``
(small beta: reward maximisation). Right: trajectory balance, whose target is ``R / Z``. Each
panel shows, over all ``2^L`` strings, the target (grey area), the sampler's exact distribution
(line) and the fraction of 512 fresh samples on each string (dots); the title gives the total
variation. Train / Stop and the background thread are :class:`~bitflip_lib.ui.live.LiveTraining`'s,
shared with the dashboards (Stop ends a run at the next redraw); the images are PNGs drawn with
:func:`~bitflip_lib.ui.live.figure_png`, so no extension is needed.
"""
from __future__ import annotations

import copy
import html

import ipywidgets as widgets
import torch
from matplotlib.figure import Figure

from bitflip_lib.generation.sequences import empirical_distribution, exact_log_probs, make_reward, total_variation
from bitflip_lib.generation.training import (
    GenerateConfig,
    GenerationResult,
    seeded_policy,
    target_distribution,
    train_generator,
)
from bitflip_lib.ui.live import LiveTraining

__all__ = [
    "GenerationPlayground", "PLAY_REWARDS", "SPARSE_FLOOR",
]

PLAY_REWARDS = ("sparse", "dense", "multimodal")
SPARSE_FLOOR = 1e-3  # the GFlowNet needs log R finite: the sparse reward gets this floor on both sides


class GenerationPlayground(LiveTraining):
    """Controls (L, reward, beta, steps, seed), Train / Stop, and two live panels.

    Raises ValueError for a length outside 2..10 (exact enumeration draws every string) or an
    unknown reward.
    """

    def __init__(self, length: int = 6, reward: str = "multimodal", beta: float = 0.5, steps: int = 300,
                 seed: int = 0, redraw_every: int = 25, background: bool = True) -> None:
        if isinstance(length, bool) or not isinstance(length, int) or not 2 <= length <= 10:
            raise ValueError(f"length must be an integer from 2 to 10 (every string is drawn), got {length!r}")
        if reward not in PLAY_REWARDS:
            raise ValueError(f"reward must be one of {', '.join(PLAY_REWARDS)}, got {reward!r}")
        if not beta > 0:
            raise ValueError(f"beta must be > 0, got {beta!r}")
        self.redraw_every = redraw_every
        self.controls = {
            "length": widgets.IntSlider(value=length, min=2, max=10, description="L (bits)"),
            "reward": widgets.Dropdown(options=PLAY_REWARDS, value=reward, description="reward"),
            "beta": widgets.FloatLogSlider(value=beta, base=10, min=-2, max=1, step=0.1, description="beta (KL)"),
            "steps": widgets.IntSlider(value=steps, min=10, max=2000, step=10, description="steps"),
            "seed": widgets.IntText(value=seed, description="seed"),
        }
        self.results: dict[str, GenerationResult] = {}
        self.panels: dict[str, dict] = {}
        controls = widgets.VBox([widgets.HBox(list(self.controls.values())[:3]),
                                 widgets.HBox(list(self.controls.values())[3:])])
        super().__init__(None, controls, background=background, clearable=False)

    def configs(self, steps: int | None = None) -> dict[str, GenerateConfig]:
        """The two runs the controls describe (same reward, same seed)."""
        v = {k: c.value for k, c in self.controls.items()}
        floor = SPARSE_FLOOR if v["reward"] == "sparse" else None
        steps = int(steps if steps is not None else v["steps"])
        base = GenerateConfig(length=int(v["length"]), reward=v["reward"], steps=steps, batch_size=64, lr=2e-3,
                              floor=floor, eval_every=max(1, min(self.redraw_every, steps)), eval_samples=512,
                              seed=int(v["seed"]), device="cpu")
        return {"REINFORCE + KL": base.replace(method="kl", beta=float(v["beta"])), "GFlowNet (TB)": base.replace(method="gflownet")}

    def run(self, steps: int | None = None) -> dict[str, GenerationResult]:
        """Train both (blocking) with the current controls; returns ``{panel: result}``."""
        return self._run_blocking(self.configs(steps))

    def _prepare(self) -> dict[str, GenerateConfig]:
        return self.configs()

    def _train(self, configs: dict[str, GenerateConfig]) -> None:
        self.results, self.panels = {}, {}
        self.result = self.results  # what wait() returns
        generator = torch.Generator().manual_seed(12345)
        for name, config in configs.items():
            reward = make_reward(config.reward, config.length, seed=config.seed, floor=config.floor, device="cpu")
            policy = seeded_policy(config.length, config.hidden, config.seed, torch.device("cpu"))
            reference = copy.deepcopy(policy)
            target = target_distribution(config, reward, reference)

            def callback(record: dict, policy, name=name, config=config, target=target) -> bool:
                exact = exact_log_probs(policy).exp()
                sampled = empirical_distribution(policy.sample(512, generator))
                self.panels[name] = {"exact": exact, "sampled": sampled, "target": target, "step": record["step"]}
                self.status.value = html.escape(f"{name}: step {record['step']} / {config.steps}")
                self._draw()
                return self.stop_requested

            self.results[name] = train_generator(config, reward=reward, policy=policy, reference=reference, callback=callback)
            if self.stop_requested:
                break
        self.status.value = "stopped" if self.stop_requested else "done"

    def _draw(self) -> None:
        fig = Figure(figsize=(10, 3.2))  # no constrained layout: it costs more than the drawing
        fig.subplots_adjust(left=0.07, right=0.99, bottom=0.16, top=0.9, wspace=0.05)
        axes = fig.subplots(1, 2, sharey=True)
        for ax, name in zip(axes, ("REINFORCE + KL", "GFlowNet (TB)")):
            panel = self.panels.get(name)
            ax.set_xlabel("string (index in binary order)")
            if panel is None:
                ax.set_title(f"{name}: not trained yet")
                continue
            x = range(len(panel["exact"]))
            target = panel["target"]
            title = f"{name}, step {panel['step']}"
            if target is not None:
                ax.fill_between(x, target.cpu().numpy(), step="mid", color="0.8", label="target")  # one patch, not 2^L bars
                title += f", TV {total_variation(panel['exact'], target):.3f}"
            ax.plot(x, panel["exact"].cpu().numpy(), color="tab:blue", lw=1, label="sampler (exact)")
            ax.plot(x, panel["sampled"].cpu().numpy(), ".", color="tab:orange", ms=3, label="512 samples")
            ax.set_title(title, fontsize=9)
            ax.legend(fontsize=7)
        axes[0].set_ylabel("probability")
        self.show(fig)

