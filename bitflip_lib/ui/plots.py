"""Plotting helpers for training runs: learning curves, seed bands, and Table 1 against n.

The curve helpers draw any :class:`~bitflip_lib.trainer.TrainingRun`: a
:class:`~bitflip_lib.trainer.TrainResult` just trained, or a :class:`~bitflip_lib.lab.runs.StoredRun`
read from ``results/`` (both have ``curve(metric) -> (iterations, values)``, ``metrics``,
``settings()``, ``solved_at`` and ``iterations``).

Every function draws on a figure it creates (or on axes you pass) and returns the figure or
axes, so the helpers work with any backend, including the non-interactive ``Agg`` used by the
tests and by CI. Figures are closed in pyplot as soon as they are made: in a notebook a figure
is drawn when it is the cell's last expression (or passed to ``display``), never twice. The
functions that return axes (``plot_metric``...) leave a figure they create open, so Jupyter
draws it at the end of the cell (``ax.figure`` is the figure). In a script call
``fig.savefig(...)``.

Typical use::

    from bitflip_lib.ui.plots import plot_training
    fig = plot_training([result_vanilla, result_her], labels=["vanilla", "HER"])
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from matplotlib import pyplot as plt  # importing pyplot lets Jupyter's inline backend display returned figures
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from bitflip_lib.trainer import TrainingRun

__all__ = [
    "default_labels", "METRIC_LABELS", "METRIC_TITLES", "new_figure", "plot_iterations_vs_n",
    "plot_metric", "plot_seed_bands", "plot_training",
]

METRIC_LABELS: dict[str, str] = {
    "success_rate": "greedy success rate (test agents)",
    "mean_distance": "mean final distance to goal (bits)",
    "loss": "TD loss (mean over the iteration)",
    "mean_q": "mean Q(s, g, a) on replayed batches",
    "mean_target": "mean TD target",
    "epsilon": "exploration rate epsilon",
    "train_success": "success rate of training episodes",
    "rewards_seen": "rewarded transitions played (cumulative)",
    "relabelled_rewards": "rewarded relabelled transitions (per iteration)",
    "buffer_size": "transitions in the replay buffer",
    "mean_steps": "mean steps of successful test agents",
    "mean_start_distance": "mean start distance (bits)",
    "wall_seconds": "wall-clock seconds",
}
"""Axis labels of the metrics recorded in ``TrainResult.history``."""

METRIC_TITLES: dict[str, str] = {
    "success_rate": "Success rate",
    "mean_distance": "Distance to goal",
    "loss": "Loss",
    "mean_q": "Mean Q-value",
    "mean_target": "Mean TD target",
    "epsilon": "Exploration",
    "train_success": "Training success",
    "rewards_seen": "Rewards seen",
    "relabelled_rewards": "Relabelled rewards",
    "buffer_size": "Replay buffer",
    "mean_steps": "Steps to goal",
    "mean_start_distance": "Start distance",
    "wall_seconds": "Wall-clock time",
}

def new_figure(keep_open: bool = False, **kwargs: Any) -> Figure:
    """A new figure made through pyplot (keyword arguments go to ``plt.figure``).

    Going through pyplot lets Jupyter's inline backend register its display hook. Functions
    that return a figure close it in pyplot at once (``keep_open=False``): the cell draws it
    when it is the last expression, and only once. Functions that return axes keep their new
    figure open, so that the inline backend draws it at the end of the cell.
    """
    kwargs.setdefault("layout", "constrained")
    fig = plt.figure(**kwargs)
    if not keep_open:
        plt.close(fig)
    return fig


_LOG_METRICS = {"loss"}  # drawn on a log scale when every value is positive
_LABEL_FIELDS_SKIP = {"preset", "device"}


def _as_list(results: TrainingRun | Iterable[TrainingRun] | None) -> list[TrainingRun]:
    """One run or a sequence of runs, as a list."""
    if results is None:
        raise ValueError("no results to plot: pass a TrainResult, a StoredRun or a list of them")
    if isinstance(results, TrainingRun):
        return [results]
    results = list(results)
    if not results:
        raise ValueError("no results to plot: the list is empty")
    for r in results:
        if not isinstance(r, TrainingRun):
            raise ValueError(f"expected runs with a curve (TrainResult or StoredRun objects), got {type(r).__name__}")
    return results


def default_labels(results: Sequence[TrainingRun]) -> list[str]:
    """Legend labels from the configuration fields in which the runs differ.

    One run is labelled ``n=.. arch her=..``; several runs by what differs between them, e.g.
    ``her=future, k=4`` against ``her=none, k=4`` gives ``her=future`` and ``her=none``.
    """
    configs = [r.settings() for r in results]
    if not any(configs):
        return [f"run {i}" for i in range(len(results))]

    def short(c: dict) -> str:
        return f"n={c.get('n')} {c.get('arch')} her={c.get('her')}"

    if len(results) == 1:
        return [short(configs[0])]
    keys = [k for k in configs[0] if k not in _LABEL_FIELDS_SKIP and len({repr(c.get(k)) for c in configs}) > 1]
    if not keys:
        return [f"{short(c)} #{i}" for i, c in enumerate(configs)]
    return [", ".join(f"{k}={c.get(k)}" for k in keys) for c in configs]


def _check_labels(labels: Sequence[str] | None, results: Sequence[TrainingRun]) -> list[str]:
    if labels is None:
        return default_labels(results)
    labels = list(labels)
    if len(labels) != len(results):
        raise ValueError(f"got {len(labels)} labels for {len(results)} results: pass one label per result")
    return labels


def _check_metric(results: Sequence[TrainingRun], metric: str) -> None:
    known = set().union(*(r.metrics for r in results))
    if known and metric not in known:
        raise ValueError(f"unknown metric {metric!r}: the runs record {', '.join(sorted(known))}")


def plot_metric(
    results: TrainingRun | Sequence[TrainingRun],
    metric: str,
    labels: Sequence[str] | None = None,
    ax: Axes | None = None,
    x: str = "iteration",
    mark_solved: bool = True,
    title: str | None = None,
) -> Axes:
    """Plot one metric of one or several runs against iterations (or ``x='wall_seconds'``).

    Args:
        results: a run (``TrainResult`` or ``StoredRun``) or a list of them.
        metric: a recorded metric, e.g. ``success_rate``, ``mean_distance``, ``loss``.
        labels: legend labels, one per result (default: the configuration fields that differ).
        ax: axes to draw on (default: a new figure).
        x: ``iteration`` or ``wall_seconds``.
        mark_solved: draw a dashed vertical line where each run was solved (``solved_at``).
        title: axes title (default: the metric's name).

    Returns:
        The axes.
    """
    results = _as_list(results)
    labels = _check_labels(labels, results)
    _check_metric(results, metric)
    if x not in ("iteration", "wall_seconds"):
        raise ValueError(f"x must be 'iteration' or 'wall_seconds', got {x!r}")
    if ax is None:
        fig = new_figure(keep_open=True, figsize=(6, 4))
        ax = fig.add_subplot()
    all_positive, drawn = True, False
    for result, label in zip(results, labels):
        iterations, ys = result.curve(metric)
        xs = iterations
        if x == "wall_seconds":
            seconds = dict(zip(*result.curve("wall_seconds")))
            if not seconds:
                raise ValueError("x='wall_seconds' needs runs that recorded wall-clock time (a stored run keeps none)")
            points = [(seconds[i], y) for i, y in zip(iterations, ys) if i in seconds]
            xs, ys = [p[0] for p in points], [p[1] for p in points]
        drawn |= bool(ys)
        all_positive &= all(y > 0 for y in ys)
        (line,) = ax.plot(xs, ys, label=label, lw=1.5)
        solved_at = result.solved_at
        if mark_solved and solved_at is not None:
            position = solved_at
            if x == "wall_seconds":
                position = dict(zip(*result.curve("wall_seconds"))).get(solved_at)
            if position is not None:
                ax.axvline(position, color=line.get_color(), ls="--", lw=1, alpha=0.8)
    if metric in _LOG_METRICS and all_positive and drawn:
        ax.set_yscale("log")
    if metric in ("success_rate", "train_success"):
        ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel("iteration (16 training episodes each)" if x == "iteration" else METRIC_LABELS["wall_seconds"])
    ax.set_ylabel(METRIC_LABELS.get(metric, metric))
    ax.set_title(title if title is not None else METRIC_TITLES.get(metric, metric))
    ax.grid(alpha=0.3)
    if any(labels):
        ax.legend(fontsize="small")
    return ax


def plot_training(
    results: TrainingRun | Sequence[TrainingRun],
    metrics: Sequence[str] = ("success_rate", "mean_distance", "loss", "mean_q"),
    labels: Sequence[str] | None = None,
    axes: Sequence[Axes] | None = None,
    title: str | None = None,
    x: str = "iteration",
) -> Figure:
    """One subplot per metric for one or several training runs; dashed lines mark ``solved_at``.

    Args:
        results: a run (``TrainResult`` or ``StoredRun``) or a list of them.
        metrics: recorded metrics to plot, one subplot each.
        labels: legend labels, one per result (default: the configuration fields that differ).
        axes: existing axes, one per metric (default: a new figure with a row of subplots).
        title: figure title.
        x: ``iteration`` or ``wall_seconds``.

    Returns:
        The figure.
    """
    results = _as_list(results)
    metrics = list(metrics)
    if not metrics:
        raise ValueError("metrics is empty: name at least one history key, e.g. 'success_rate'")
    if axes is None:
        # At most 9 inches wide: JupyterLab shows a notebook's outputs about 930 px wide and
        # scales a wider figure down, text and all (four panels in a row, 16.8 inches, read at 55 %).
        cols = 2 if len(metrics) == 4 else min(len(metrics), 3)
        rows = (len(metrics) + cols - 1) // cols
        fig = new_figure(figsize=(min(4.5 * cols, 9.0), 3.4 * rows))
        axes = list(fig.subplots(rows, cols, squeeze=False).ravel())
        for extra in axes[len(metrics):]:
            extra.set_visible(False)
    else:
        axes = list(axes)
        if len(axes) < len(metrics):
            raise ValueError(f"got {len(axes)} axes for {len(metrics)} metrics: pass one axes per metric")
        fig = axes[0].figure
    for ax, metric in zip(axes, metrics):
        plot_metric(results, metric, labels=labels, ax=ax, x=x)
    if title:
        fig.suptitle(title)
    return fig


def _padded_curve(result: TrainingRun, metric: str, length: int) -> list[float]:
    """A metric per iteration 1..length; between evaluations, and after a run stopped, it keeps its last value."""
    values: dict[int, float] = dict(zip(*result.curve(metric)))
    curve, last = [], float("nan")
    for i in range(1, length + 1):
        last = values.get(i, last)
        curve.append(last)
    return curve


def plot_seed_bands(
    groups: Mapping[str, Sequence[TrainingRun]],
    metric: str = "success_rate",
    ax: Axes | None = None,
    title: str | None = None,
    max_iteration: int | None = None,
) -> Axes:
    """Mean (line) and min-max range (band) over seeds, one colour per group.

    ``groups`` maps a label (e.g. ``"future, k=4"``) to the runs of that setting on several
    seeds. Runs stop early once solved; a stopped run is held at its last recorded value up
    to ``max_iteration`` (default: the longest run); longer runs are cut there. The legend
    counts the runs solved by then.
    """
    if not groups:
        raise ValueError("groups is empty: map a label to a list of runs (TrainResult or StoredRun objects)")
    import numpy as np

    if ax is None:
        fig = new_figure(keep_open=True, figsize=(6.5, 4))
        ax = fig.add_subplot()
    for label, runs in groups.items():
        runs = _as_list(runs)
        _check_metric(runs, metric)
        length = max_iteration or max(r.iterations for r in runs)
        curves = np.array([_padded_curve(r, metric, length) for r in runs], dtype=float)
        xs = np.arange(1, length + 1)
        mean = np.nanmean(curves, axis=0) if np.isfinite(curves).any() else curves[0]
        solved = sum(1 for r in runs if r.solved_at is not None and r.solved_at <= length)
        (line,) = ax.plot(xs, mean, lw=1.8, label=f"{label} ({solved}/{len(runs)} solved)")
        ax.fill_between(xs, np.nanmin(curves, axis=0), np.nanmax(curves, axis=0), color=line.get_color(), alpha=0.18)
    if metric in ("success_rate", "train_success"):
        ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel("iteration (16 training episodes each)")
    ax.set_ylabel(METRIC_LABELS.get(metric, metric))
    ax.set_title(title or f"{METRIC_TITLES.get(metric, metric)}: mean and range over seeds (solved runs held at their last value)",
                 fontsize="medium")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return ax


def plot_iterations_vs_n(
    cells: Mapping[tuple[str, int], Any] | Iterable[Any],
    methods: Sequence[str] | None = None,
    writeup: bool = True,
    ax: Axes | None = None,
    title: str | None = None,
) -> Axes:
    """Iterations to solve against the number of bits, one colour per method: Table 1 as a picture.

    Args:
        cells: the cells of one preset (:func:`bitflip_lib.lab.table1.table_cells`), or any objects
            with ``method``, ``n``, ``median_confirmed_at`` and ``verdict``.
        methods: the methods to draw (default: every method in ``cells``).
        writeup: also draw the write-up's numbers for the same methods (dashed, square markers).
        ax: axes to draw on (default: a new figure).
        title: axes title.

    Both sides count the same moment, the iterations trained when the solved streak completed
    (the write-up's printed episode + 1). A filled circle is a cell every seed solved (the median
    of the seeds), a hollow one a cell only some seeds solved (the median of those), and a cross
    on the top edge a cell no seed solved ("fails"), the write-up's included.
    """
    from bitflip_lib.lab.table1 import FAILS, WRITEUP_TABLE1, writeup_iterations

    cells = list(cells.values()) if isinstance(cells, Mapping) else list(cells)
    if not cells:
        raise ValueError("cells is empty: pass the cells of one preset, e.g. table_cells(load_grid('results', 'default'))")
    if methods is None:
        methods = list(dict.fromkeys(c.method for c in cells))
    unknown = set(methods) - {c.method for c in cells}
    if unknown:
        raise ValueError(f"no cells for {', '.join(sorted(unknown))}: the cells hold {sorted({c.method for c in cells})}")
    if ax is None:
        fig = new_figure(keep_open=True, figsize=(6.5, 4.2))
        ax = fig.add_subplot()
    counts = [c.median_confirmed_at for c in cells if c.method in methods and c.median_confirmed_at is not None]
    if writeup:
        counts += [writeup_iterations(m, n) for m in methods for n, v in WRITEUP_TABLE1.get(m, {}).items() if v != FAILS]
    ceiling = 2.0 * max(counts) if counts else 10.0
    for method in methods:
        mine = sorted((c for c in cells if c.method == method), key=lambda c: c.n)
        points = [(c.n, c.median_confirmed_at, c.verdict) for c in mine if c.median_confirmed_at is not None]
        (line,) = ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", lw=1.5, label=f"{method} (here)")
        color = line.get_color()
        for n, y, verdict in points:
            if verdict == "mixed":
                ax.plot([n], [y], marker="o", color=color, mfc="white", mec=color, ms=8, ls="none")
        failed = [c.n for c in mine if c.verdict == "failed"]
        ax.plot(failed, [ceiling] * len(failed), marker="x", color=color, ms=9, mew=2, ls="none")
        theirs = WRITEUP_TABLE1.get(method, {}) if writeup else {}
        if theirs:
            solved = sorted((n, writeup_iterations(method, n)) for n, v in theirs.items() if v != FAILS)
            ax.plot([p[0] for p in solved], [p[1] for p in solved], marker="s", ls="--", lw=1.2, color=color,
                    alpha=0.7, label=f"{method} (write-up)")
            failed = sorted(n for n, v in theirs.items() if v == FAILS)
            ax.plot(failed, [ceiling * 1.3] * len(failed), marker="x", ls="none", color=color, alpha=0.6, ms=7)
    ax.set_yscale("log")
    ax.set_xlabel("number of bits n")
    ax.set_ylabel("iterations until solved (x on top = fails)")
    ax.set_title(title or "Iterations to solve against n (hollow = some seeds only)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return ax
