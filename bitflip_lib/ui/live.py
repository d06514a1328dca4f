"""What every live widget shares: figures sized for the notebook, argument checks, Train / Stop.

* :func:`figure_png` draws a matplotlib figure to PNG bytes with the Agg canvas (no pyplot, so it
  is safe in a thread), at :data:`FIGURE_DPI`.
* :class:`LiveTraining` is the part of a training widget that is the same everywhere: the Train,
  Stop and Clear runs buttons, a status line, a plot, and the training on one background thread
  that a lock keeps to one run at a time. The dashboards of chapters 1-6 build on it.
* :func:`saved_view_note` makes a widget read well when a saved notebook is reopened without its
  kernel: JupyterLab then draws each control from the notebook's saved widget state with a
  "disconnected" icon in front of it, which squeezes the controls; the note hides those icons
  inside the course's widgets and says, once, what to do.
* :func:`check_int`, :func:`check_number` and :func:`check_flag` check a widget's constructor
  arguments: a value that a control cannot show is a ``ValueError`` naming the argument and the
  allowed range, never a silent clamp (an ipywidgets ``Bounded...`` control would clamp it).

Sizes: on a laptop screen JupyterLab gives a notebook's outputs about 930 px (1366 px wide, file
browser open). A wider image is scaled down to fit, and its text with it: a 16-inch figure at
100 dpi shows at about 55 %, so 10-point labels read at 7 px. The widgets therefore draw
:data:`FIGURE_WIDTH` inches at :data:`FIGURE_DPI` (880 px, shown at its own size), and their
text at 9-11 points (12-15 px).
"""
from __future__ import annotations

import html
import io
import math
import numbers
import threading
from typing import Any

import ipywidgets as widgets
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import LogLocator, MaxNLocator, NullFormatter

__all__ = [
    "check_flag", "check_int", "check_number", "CONTROL_STYLE", "control_layout", "controls_grid", "FIGURE_DPI", "FIGURE_WIDTH", "figure_png", "FONT",
    "integer_ticks", "legend_below", "LiveTraining", "saved_view_note", "use_log_scale", "WIDGET_CLASS",
]

FIGURE_DPI = 100
"""Dots per inch of every widget figure (and of matplotlib's own default)."""

FIGURE_WIDTH = 8.8
"""Width of a widget figure in inches: 880 px at :data:`FIGURE_DPI`, what a notebook shows unscaled."""

FONT = {"title": 11, "label": 10, "ticks": 9, "legend": 9, "note": 10}
"""Font sizes (points) of the widget figures: 12-15 px at :data:`FIGURE_DPI`."""


def figure_png(fig: Figure, dpi: int = FIGURE_DPI) -> bytes:
    """A matplotlib figure as PNG bytes (Agg canvas: no pyplot, safe in a thread)."""
    if not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def use_log_scale(ax: Axes, values: list[float]) -> bool:
    """Put ``ax`` on a tidy log y-axis if ``values`` are positive and span more than a decade.

    Over less than a decade a log axis shows next to nothing (one labelled tick, or crowded
    minor labels: 2x10^-2, 3x10^-2, ...), so the axis stays linear there. Over up to three
    decades the labels are at 1, 2 and 5 times a power of ten; over more, at the powers of ten.
    Returns whether the axis is logarithmic.
    """
    positive = [v for v in values if v is not None and math.isfinite(v)]
    if not positive or min(positive) <= 0 or max(positive) / min(positive) < 10:
        return False
    ax.set_yscale("log")
    decades = math.log10(max(positive) / min(positive))
    ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0,) if decades >= 3 else (1.0, 2.0, 5.0)))
    ax.yaxis.set_minor_formatter(NullFormatter())
    return True


def legend_below(fig: Figure, handles: list, labels: list[str], top_inches: float, columns: int | None = None) -> None:
    """One legend under the panels, off the data: the figure is :data:`FIGURE_WIDTH` wide and
    ``top_inches`` (the panels, their titles and x labels) plus the rows the legend needs high."""
    if columns is None:
        columns = 2 if max((len(x) for x in labels), default=0) > 38 else 3
    rows = -(-len(labels) // columns)
    legend_inches = 0.12 + 0.24 * rows
    height = top_inches + legend_inches
    fig.set_size_inches(FIGURE_WIDTH, height)
    fig.subplots_adjust(bottom=(legend_inches + 0.45) / height, top=1 - 0.32 / height)
    if labels:
        fig.legend(handles, labels, loc="lower center", bbox_to_anchor=(0.5, 0.005), ncol=columns, frameon=False,
                   fontsize=FONT["legend"], handlelength=2.2, columnspacing=1.6)


def integer_ticks(ax: Axes, span: tuple[int, int] | None = None) -> None:
    """Whole numbers on the x-axis: iterations, never 1.25.

    With ``span`` (the first and last iteration drawn) a short run gets the room of whole
    iterations around it: matplotlib would draw a single point from 2.85 to 3.15.
    """
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, steps=[1, 2, 5, 10], min_n_ticks=1))
    if span is not None and span[1] - span[0] <= 20:
        ax.set_xlim(span[0] - 0.5, span[1] + 0.5)


WIDGET_CLASS = "bitflip-widget"
"""The DOM class of every course widget's outer box (:func:`saved_view_note` styles by it)."""

# ipywidgets marks a view whose model has no live kernel with "jupyter-widgets-disconnected" and
# draws an icon before it; a <style> element in an HTML widget is saved and restored with it.
_SAVED_VIEW_CSS = (
    f"<style>.{WIDGET_CLASS}.jupyter-widgets-disconnected::before,"
    f".{WIDGET_CLASS} .jupyter-widgets-disconnected::before{{display:none}}"
    ".bitflip-saved-note{display:none}"
    f".{WIDGET_CLASS}.jupyter-widgets-disconnected .bitflip-saved-note{{display:block}}</style>"
)


def saved_view_note() -> widgets.HTML:
    """A line shown only when its widget is redrawn from a saved notebook without its kernel.

    Put it among the children of a box that has the DOM class :data:`WIDGET_CLASS`.
    """
    return widgets.HTML(_SAVED_VIEW_CSS + "<div class='bitflip-saved-note' style='color:#a35a00'>"
                        "This is the picture saved with the notebook: run this cell again (or Run All) to use "
                        "the controls.</div>")


# ----- argument checks ------------------------------------------------------------------------------
def _show(x: float) -> str:
    return str(x) if isinstance(x, int) else f"{x:g}"


def _range(low: float | None, high: float | None, low_open: bool = False) -> str:
    if high is None:
        return f"{'>' if low_open else '>='} {_show(low)}"
    if low is None:
        return f"<= {_show(high)}"
    return f"in ({_show(low)}, {_show(high)}]" if low_open else f"from {_show(low)} to {_show(high)}"


def check_int(name: str, value: Any, low: int | None = None, high: int | None = None) -> int:
    """``value`` as an int, or a ValueError naming ``name`` and the range ``low..high``."""
    allowed = "an integer" + (f" {_range(low, high)}" if low is not None or high is not None else "")
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be {allowed}, got {value!r} (a {type(value).__name__})")
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
    return int(value)


def check_number(name: str, value: Any, low: float | None = None, high: float | None = None,
                 low_open: bool = False) -> float:
    """``value`` as a finite float in ``[low, high]`` (``(low, high]`` with ``low_open``), or a ValueError."""
    allowed = "a number" + (f" {_range(low, high, low_open)}" if low is not None or high is not None else "")
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be {allowed}, got {value!r} (a {type(value).__name__})")
    value = float(value)
    below = low is not None and (value <= low if low_open else value < low)
    if not math.isfinite(value) or below or (high is not None and value > high):
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
    return value


def check_flag(name: str, value: Any) -> bool:
    """``value`` if it is True or False, else a ValueError (``'no'`` is not False)."""
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return value


CONTROL_STYLE = {"description_width": "115px"}
"""The style of a training widget's controls: their labels in a column of one width."""


def control_layout(width: str = "96%") -> widgets.Layout:  # a little under 100%: the widget's own margin fits too
    """The layout of one control in a :func:`controls_grid` cell."""
    return widgets.Layout(width=width, min_width="0")


def controls_grid(children: list[widgets.Widget]) -> widgets.GridBox:
    """Controls in columns of at least 250 px that wrap on a narrow screen: nothing overlaps."""
    return widgets.GridBox(children, layout=widgets.Layout(
        grid_template_columns="repeat(auto-fill, minmax(250px, 1fr))", grid_gap="4px 18px", width="100%"))


def _button_layout(width: str) -> widgets.Layout:  # buttons keep their width: a squeezed label reads "Tr..."
    return widgets.Layout(width=width, min_width=width, flex="0 0 auto")


# ----- Train / Stop -----------------------------------------------------------------------------------
class LiveTraining(widgets.VBox):
    """Train / Stop / Clear runs, a status line and a plot, with the training on one background thread.

    A subclass builds its controls, calls ``super().__init__(header, controls, ...)`` (``header``:
    a title line, or None) and defines:

    * ``_prepare()``: read and check the controls, and return what ``_train`` needs. It runs where
      Train was pressed, so a ``ValueError`` is shown in the status line and nothing starts.
    * ``_train(settings)``: train, calling :meth:`show` to redraw and setting ``self.status``;
      between steps it asks :attr:`stop_requested`. It sets ``self.result``.
    * ``_forget()``, with ``clearable=True``: forget the finished runs (the Clear runs button).

    Pressing Train trains in a background thread (``background=True``: the notebook stays
    responsive and Stop acts at the next step) or inside the click handler (``background=False``:
    the kernel is busy, Stop acts only after the run). :meth:`_run_blocking` trains in the
    caller's thread and re-raises errors: the subclasses' ``run()`` for unattended notebooks.
    A lock makes claiming the widget atomic, so two quick clicks never start two runs.

    Attributes:
        result: what the last finished run returned (None before). error: the exception of the
        last run, if it failed. figure: the matplotlib figure shown last. redraws: how many
        figures have been shown.
    """

    def __init__(self, header: widgets.Widget | None, controls: widgets.Widget, *, background: bool = True,
                 clearable: bool = True, below: tuple[widgets.Widget, ...] = ()) -> None:
        self.background = check_flag("background", background)
        self.result: Any = None
        self.error: BaseException | None = None
        self.figure: Figure | None = None
        self.redraws = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._running = False
        self._thread: threading.Thread | None = None

        self.train_button = widgets.Button(description="Train", button_style="success", icon="play",
                                           layout=_button_layout("100px"))
        self.stop_button = widgets.Button(description="Stop", button_style="danger", icon="stop", disabled=True,
                                          layout=_button_layout("100px"))
        self.clear_button = widgets.Button(description="Clear runs", icon="trash", layout=_button_layout("120px"),
                                           tooltip="forget the runs drawn so far") if clearable else None
        self.status = widgets.HTML("Set the controls and press <b>Train</b>.",
                                   layout=widgets.Layout(flex="1 1 auto", min_width="0"))
        # Hidden until there is something to draw: no empty axes with meaningless ranges.
        self.image = widgets.Image(format="png", layout=widgets.Layout(width="100%", max_width=f"{FIGURE_WIDTH * FIGURE_DPI:.0f}px",
                                                                       display="none"))
        self.train_button.on_click(self._on_train)
        self.stop_button.on_click(lambda _button: self.stop())
        buttons = [self.train_button, self.stop_button]
        if self.clear_button is not None:
            self.clear_button.on_click(lambda _button: self.clear())
            buttons.append(self.clear_button)
        row = widgets.HBox([*buttons, self.status], layout=widgets.Layout(width="100%", align_items="center", grid_gap="8px"))
        top = [header] if header is not None else []
        super().__init__([*top, saved_view_note(), controls, row, self.image, *below], layout=widgets.Layout(max_width="900px"))
        self.add_class(WIDGET_CLASS)

    # ----- what subclasses define ---------------------------------------------------------------
    def _prepare(self) -> Any:  # pragma: no cover - each widget defines it
        raise NotImplementedError

    def _train(self, settings: Any) -> None:  # pragma: no cover - each widget defines it
        raise NotImplementedError

    def _forget(self) -> None:  # pragma: no cover - clearable widgets define it
        raise NotImplementedError

    # ----- public -------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        """True while a run is going on (pressed Train, or a blocking ``run()``)."""
        return self._running

    @property
    def stop_requested(self) -> bool:
        """True once Stop was pressed during the current run: ``_train`` ends at its next step."""
        return self._stop.is_set()

    def stop(self) -> None:
        """Ask the running training to stop after its current step."""
        self._stop.set()
        if self._running:
            self.status.value = "Stopping after this step..."

    def wait(self, timeout: float | None = None) -> Any:
        """Wait for a background run to end (at most ``timeout`` seconds); return ``self.result``."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return self.result

    def clear(self) -> None:
        """Forget the finished runs: the plot and the last run's settings line go too."""
        if self.clear_button is None:
            raise RuntimeError(f"{type(self).__name__} keeps no runs to clear")
        if self._running:
            raise RuntimeError("a run is going on: press Stop (or call stop() and wait()) before clearing")
        self._forget()
        self.figure = None
        self.image.layout.display = "none"
        self.image.value = b""
        self.status.value = "Runs cleared. Set the controls and press <b>Train</b>."

    def show(self, fig: Figure) -> None:
        """Draw ``fig`` into the widget's image (from any thread)."""
        self.figure = fig
        self.image.value = figure_png(fig)
        self.image.layout.display = None
        self.redraws += 1

    # ----- running ------------------------------------------------------------------------------
    def _claim(self) -> None:
        with self._lock:
            if self._running:
                raise RuntimeError("a run is already going on: press Stop (or call stop() and wait()) first")
            self._running = True
        self._stop.clear()

    def _release(self) -> None:
        with self._lock:
            self._running = False

    def _on_train(self, _button: widgets.Button | None = None) -> None:
        try:
            settings = self._prepare()
            self._claim()
        except (ValueError, RuntimeError) as err:
            self.status.value = f"<span style='color:#b00'>{html.escape(str(err))}</span>"
            return
        if self.background:
            self._thread = threading.Thread(target=self._run, args=(settings,), daemon=True,
                                            name=f"bitflip-{type(self).__name__}")
            self._thread.start()
        else:
            self._run(settings)

    def _run_blocking(self, settings: Any) -> Any:
        """Train in the caller's thread, as pressing Train would; errors are raised. Returns ``result``."""
        self._claim()
        self._run(settings, reraise=True)
        return self.result

    def _run(self, settings: Any, reraise: bool = False) -> None:
        """One run (the caller has claimed the widget); always releases it and restores the buttons."""
        self.error = None
        self.train_button.disabled = True
        self.stop_button.disabled = False
        if self.clear_button is not None:
            self.clear_button.disabled = True
        try:
            self._train(settings)
        except Exception as err:  # shown in the widget; re-raised for blocking calls
            self.error = err
            self.status.value = (f"<span style='color:#b00'>Training failed: {html.escape(type(err).__name__)}: "
                                 f"{html.escape(str(err))}</span>")
            if reraise:
                raise
        finally:
            self.train_button.disabled = False
            self.stop_button.disabled = True
            if self.clear_button is not None:
                self.clear_button.disabled = False
            self._release()
