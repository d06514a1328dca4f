"""End to end in a real browser: JupyterLab, opened by Chromium, runs the notebooks a student opens first.

What a student does in the first hour, checked the way they would see it: a temporary copy of the
course (committed to a throwaway git repository), JupyterLab on a free port, Debian's Chromium
driven by Playwright. Chapters 1, 4, 8 and 9 and an exercise are opened and run in quick mode
(every cell), and the tests check that widgets render (no "Error displaying widget", no widget stuck
on "Loading widget"), that pressing Train changes the dashboard's plot and ends with a status
line, that moving a concept widget's slider changes its figure, that the generation playground
of chapters 8 and 9 shows the value a slider chose, trains to the end and stops with every panel
drawn, and that saving leaves ``git status`` clean.

Screenshots go to ``$BITFLIP_BROWSER_ARTIFACTS`` (default ``/tmp/bitflip-browser-artifacts``).
The tests skip, saying why, when Playwright or Chromium is missing
(``apt-get install chromium``; ``pip install playwright``).
"""
from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("BITFLIP_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("BITFLIP_BROWSER_ARTIFACTS", "/tmp/bitflip-browser-artifacts"))
JUPYTER = Path(sys.executable).parent / "jupyter"
CELL_TIMEOUT_S = 240  # one notebook's "run all", in quick mode, on a busy 2-core machine
CHAPTER_4_TIMEOUT_S = 900  # chapter 4 trains several agents: about 2 minutes on a quiet 2-core machine

try:
    from playwright.sync_api import Page, sync_playwright
except ImportError:  # pragma: no cover - depends on the machine
    sync_playwright = None

pytestmark = [
    pytest.mark.skipif(sync_playwright is None, reason="Playwright is not installed (pip install playwright): browser tests skipped"),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"Chromium not found at {CHROMIUM} (apt-get install chromium): browser tests skipped"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def _copy_course(dest: Path) -> None:
    """The course's files as git sees them (tracked and untracked, not ignored: no .venv), committed."""
    listed = _git(ROOT, "ls-files", "-z", "--cached", "--others", "--exclude-standard").split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    _git(dest, "init", "-q")
    _git(dest, "-c", "user.name=test", "-c", "user.email=test@example.com", "add", "-A")
    _git(dest, "-c", "user.name=test", "-c", "user.email=test@example.com", "commit", "-q", "-m", "course")
    subprocess.run([sys.executable, "-m", "jupytext", "--sync", "--quiet",
                    *[str(p.relative_to(dest)) for p in sorted(dest.glob("chapters/0*.py")) + sorted(dest.glob("exercises/ex*.py"))]],
                   cwd=dest, check=True, capture_output=True)


class Lab:
    """A JupyterLab server on a free port, serving ``root``, with its own config and settings."""

    def __init__(self, root: Path, home: Path) -> None:
        self.root, self.port, self.token = root, _free_port(), uuid.uuid4().hex
        settings = home / "settings" / "@jupyterlab"
        (settings / "apputils-extension").mkdir(parents=True)
        (settings / "notebook-extension").mkdir(parents=True)
        # No "would you like news?" toast over the notebook; every cell rendered (no windowing),
        # so that the checks below see the outputs a student sees by scrolling.
        (settings / "apputils-extension" / "notification.jupyterlab-settings").write_text(
            '{"fetchNews": "false", "checkForUpdates": false}')
        (settings / "notebook-extension" / "tracker.jupyterlab-settings").write_text('{"windowingMode": "none"}')
        env = {**os.environ, "BITFLIP_QUICK": "1", "MPLBACKEND": "module://matplotlib_inline.backend_inline",
               "OMP_NUM_THREADS": "1", "JUPYTER_CONFIG_DIR": str(home / "config"), "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
               "PYTHONPATH": str(root)}
        env.pop("BITFLIP_PROGRESS", None)  # progress bars on, as a student sees them
        self.log = open(home / "lab.log", "w")
        self.process = subprocess.Popen(
            [str(JUPYTER), "lab", "--no-browser", f"--port={self.port}", "--ip=127.0.0.1", f"--ServerApp.root_dir={root}",
             f"--IdentityProvider.token={self.token}", "--LabApp.expose_app_in_browser=True",
             f"--LabApp.user_settings_dir={home / 'settings'}", f"--LabApp.workspaces_dir={home / 'workspaces'}",
             "--ServerApp.allow_root=True"],
            cwd=root, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        while True:
            try:
                urllib.request.urlopen(f"{self.base}/api/status?token={self.token}", timeout=2)
                break
            except OSError:
                if self.process.poll() is not None or time.time() > deadline:
                    raise RuntimeError(f"JupyterLab did not start: see {home / 'lab.log'}")
                time.sleep(0.3)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        """``path`` opened alone, in a fresh workspace (JupyterLab would otherwise reopen earlier tabs)."""
        return f"{self.base}/lab/workspaces/{uuid.uuid4().hex[:8]}/tree/{path}?token={self.token}&reset"

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("course")
    _copy_course(root)
    return root


@pytest.fixture(scope="module")
def lab(course, tmp_path_factory) -> Iterator[Lab]:
    server = Lab(course, tmp_path_factory.mktemp("jupyter"))
    yield server
    server.close()


@pytest.fixture(scope="module")
def browser():
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1366, "height": 900})  # a laptop screen
    page = context.new_page()
    yield page
    context.close()


# ----- driving JupyterLab ---------------------------------------------------------------------------
def shot(page: Page, name: str) -> Path:
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=False)
    return path


def command(page: Page, name: str, args: dict | None = None) -> None:
    page.evaluate("([name, args]) => window.jupyterapp.commands.execute(name, args)", [name, args or {}])


def open_notebook(page: Page, lab: Lab, path: str) -> None:
    page.goto(lab.url(path))
    page.wait_for_function("(path) => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;"
                           " return w && w.context && w.context.path === path && w.context.isReady"
                           " && w.content.widgets.length > 0; }", arg=path, timeout=60_000)
    wait_kernel_idle(page, 60)


KERNEL_STATUS = """() => { const w = window.jupyterapp.shell.currentWidget;
  const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
  return k ? k.status : 'none'; }"""


def wait_kernel_idle(page: Page, timeout_s: float) -> None:
    page.wait_for_function(f"() => ({KERNEL_STATUS})() === 'idle'", timeout=timeout_s * 1000)


def run_all(page: Page, timeout_s: float = CELL_TIMEOUT_S) -> float:
    """Run every cell (Run > Run All Cells) and wait until none is queued or running."""
    start = time.time()
    command(page, "notebook:run-all-cells")
    page.wait_for_function(
        """() => { const nb = window.jupyterapp.shell.currentWidget.content;
                   return nb.widgets.every(c => c.model.type !== 'code' || c.promptNode === null
                                           || !c.promptNode.textContent.includes('*')); }""",
        timeout=timeout_s * 1000, polling=500)
    wait_kernel_idle(page, 60)
    return time.time() - start


def save(page: Page) -> None:
    command(page, "docmanager:save")
    page.wait_for_function("() => !window.jupyterapp.shell.currentWidget.context.model.dirty", timeout=30_000)
    time.sleep(1.0)  # the paired .py file is written by the same request; give the disk a moment


NOTEBOOK_TEXT = "() => window.jupyterapp.shell.currentWidget.content.node.textContent"


def widget_problems(page: Page, settle_s: float = 30) -> list[str]:
    """Widgets that failed ("Error displaying widget") or never loaded ("Loading widget" after ``settle_s``)."""
    deadline = time.time() + settle_s
    while "Loading widget" in page.evaluate(NOTEBOOK_TEXT) and time.time() < deadline:
        time.sleep(0.5)
    text = page.evaluate(NOTEBOOK_TEXT)
    return [p for p in ("Error displaying widget", "Loading widget") if p in text]


def tracebacks(page: Page) -> list[str]:
    """Text of the error outputs (an exception raised by a cell)."""
    return page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']").all_inner_texts()


def widget_box(page: Page, title: str):
    """The widget whose bold title line reads ``title`` (a dashboard or a concept widget)."""
    return page.locator(".widget-vbox", has=page.locator(f".widget-html b:text-is('{title}')")).last


def image_source(box) -> str:
    return box.locator("img").first.get_attribute("src") or ""


def press_slider_key(box, label: str, key: str = "ArrowRight") -> None:
    """Move a slider with the keyboard, as a student can (focus its handle, press an arrow)."""
    slider = box.locator(".widget-slider", has=box.page.locator(f"label:text-is('{label}')")).first
    slider.scroll_into_view_if_needed()
    handle = slider.locator(".noUi-handle").first
    handle.focus()
    handle.press(key)


def wait_until(predicate, timeout_s: float, what: str) -> None:
    deadline = time.time() + timeout_s
    while not predicate():
        if time.time() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(0.25)


def git_status(course: Path) -> str:
    return _git(course, "status", "--porcelain")


# ----- the tests --------------------------------------------------------------------------------------
def test_chapter_1_widgets_render_train_and_slider_update_and_saving_keeps_git_clean(page, lab, course):
    open_notebook(page, lab, "chapters/01_sparse_rewards.ipynb")
    # Opening marks the notebook unsaved (JupyterLab stores the kernel's language_info, which the
    # .py does not keep); what matters to a student's git pull is that saving changes nothing.
    seconds = run_all(page)
    print(f"chapter 1: run all in {seconds:.0f} s")
    assert widget_problems(page) == []
    assert tracebacks(page) == []
    assert page.locator(".jupyter-widgets").count() > 0

    # The concept widget: a slider step changes its figure and its numbers at once.
    reach = widget_box(page, "Random flips: how likely is one reward?")
    reach.scroll_into_view_if_needed()
    shot(page, "chapter1_concept_widget_before")
    before_src, before_text = image_source(reach), reach.locator(".widget-html").last.inner_text()
    press_slider_key(reach, "bits n")
    wait_until(lambda: image_source(reach) != before_src, 30, "the concept widget's figure to change")
    assert reach.locator(".widget-html").last.inner_text() != before_text
    assert "n = 11" in reach.locator(".widget-html").last.inner_text()
    shot(page, "chapter1_concept_widget_after_slider")

    # The dashboard: pressing Train adds a run to the plot and ends with a status line.
    dash = widget_box(page, "Goal-conditioned DQN on bit flipping")
    dash.scroll_into_view_if_needed()
    before_src = image_source(dash)
    assert before_src, "the dashboard shows the run the notebook made"
    dash.locator("button:has-text('Train')").click()
    status = dash.locator(".widget-html", has_text="Run #2")
    wait_until(lambda: status.count() > 0 and ("Solved" in status.first.inner_text() or "Not solved" in status.first.inner_text()),
               120, "the second run to finish with a verdict in the status line")
    wait_until(lambda: image_source(dash) != before_src, 30, "the dashboard's plot to change")
    assert "in a row" in status.first.inner_text()  # says why (not) solved
    dash.scroll_into_view_if_needed()
    shot(page, "chapter1_dashboard_after_train")
    assert widget_problems(page, settle_s=5) == []

    save(page)
    assert git_status(course) == "", "saving chapter 1 changed versioned files"


def test_chapter_4_runs_all_cells_its_her_stepper_steps_and_saving_keeps_git_clean(page, lab, course):
    open_notebook(page, lab, "chapters/04_her.ipynb")
    # Every cell, training experiments included: a few minutes in quick mode.
    seconds = run_all(page, timeout_s=CHAPTER_4_TIMEOUT_S)
    print(f"chapter 4: all cells in {seconds:.0f} s")
    assert widget_problems(page) == []
    assert tracebacks(page) == []
    stepper = widget_box(page, "HER, one step at a time")
    stepper.scroll_into_view_if_needed()
    table = stepper.locator(".widget-html").last
    before = table.inner_text()
    assert "Step t = 0" in before
    press_slider_key(stepper, "step t")
    wait_until(lambda: "Step t = 1" in table.inner_text(), 30, "the stepper to show step 1")
    shot(page, "chapter4_her_stepper_step1")
    save(page)
    assert git_status(course) == "", "saving chapter 4 changed versioned files"


def test_an_exercise_runs_to_its_check_and_saving_keeps_git_clean(page, lab, course):
    open_notebook(page, lab, "exercises/ex01_env_step.ipynb")
    run_all(page)
    assert widget_problems(page) == []
    check = page.locator(".jp-CodeCell", has=page.locator(".jp-InputArea", has_text='check("ex01_env_step"')).first
    check.scroll_into_view_if_needed()
    shot(page, "exercise1_check_cell")
    assert "ex01_env_step" in check.locator(".jp-OutputArea").inner_text()  # the grading report is shown
    save(page)
    assert git_status(course) == "", "saving an exercise changed versioned files"


def _playground_status(box) -> str:
    return box.locator(".bitflip-status").inner_text()


def _playground_step(box) -> int:
    """The step the running playground reports ("step 125 of 300, ..."), or -1."""
    match = re.search(r"step (\d+) of", _playground_status(box))
    return int(match.group(1)) if match else -1


def _check_playground(page: Page, course: Path, chapter: str, name: str, panels: tuple[str, str]) -> None:
    """Use a generation chapter's playground (after Run All) as a student would: move the beta
    slider (its readout and the preview follow), Train to the end, Train again and Stop."""
    play = widget_box(page, "Generation playground")
    play.scroll_into_view_if_needed()
    shot(page, f"{name}_playground_after_run_all")
    status = _playground_status(play)
    assert "Finished" in status and "all 20 steps" in status  # the notebook's own short run
    for panel in panels:
        assert panel in status

    # The beta slider shows round values (0.5, then 1), and the preview redraws at once.
    readout = play.locator(".widget-slider", has=page.locator("label:text-is('beta (KL weight)')")).locator(
        ".widget-readout").first
    assert readout.inner_text().strip() == "0.5"
    before = image_source(play)
    press_slider_key(play, "beta (KL weight)")
    wait_until(lambda: readout.inner_text().strip() == "1", 30, "the beta readout to read 1")
    wait_until(lambda: image_source(play) != before and "Untrained" in _playground_status(play), 60,
               "the preview to redraw for beta = 1")
    shot(page, f"{name}_playground_beta_1_preview")

    # Train to the end: both panels are drawn and the status says what happened.
    play.locator("button:has-text('Train')").click()
    wait_until(lambda: "Finished" in _playground_status(play), 300, "the run to finish")
    status = _playground_status(play)
    assert "all 300 steps" in status and all(panel in status for panel in panels)
    play.scroll_into_view_if_needed()
    shot(page, f"{name}_playground_trained")

    # Train again and Stop: the status names the step it stopped at; every panel is still drawn.
    before = image_source(play)
    play.locator("button:has-text('Train')").click()
    wait_until(lambda: 50 <= _playground_step(play) < 300, 120, "the second run to pass step 50")
    play.locator("button:has-text('Stop')").click()
    wait_until(lambda: "Stopped" in _playground_status(play), 60, "the run to stop")
    status = _playground_status(play)
    assert "Stopped by you at step" in status and 50 <= _playground_step(play) < 300
    assert all(panel in status for panel in panels)  # no panel left empty
    assert image_source(play) != before
    play.scroll_into_view_if_needed()
    shot(page, f"{name}_playground_stopped")
    assert widget_problems(page, settle_s=5) == []
    save(page)
    assert git_status(course) == "", f"saving {chapter} changed versioned files"


def test_chapter_8_runs_all_cells_and_its_playground_previews_trains_and_stops(page, lab, course):
    open_notebook(page, lab, "chapters/08_policy_gradients.ipynb")
    seconds = run_all(page, timeout_s=CHAPTER_4_TIMEOUT_S)
    print(f"chapter 8: all cells in {seconds:.0f} s")
    assert widget_problems(page) == []
    assert tracebacks(page) == []
    _check_playground(page, course, "chapters/08_policy_gradients.ipynb", "chapter8",
                      ("REINFORCE (maximise E[R])", "REINFORCE + KL"))


def test_chapter_9_runs_all_cells_and_its_playground_previews_trains_and_stops(page, lab, course):
    open_notebook(page, lab, "chapters/09_gflownets.ipynb")
    seconds = run_all(page, timeout_s=CHAPTER_4_TIMEOUT_S)
    print(f"chapter 9: all cells in {seconds:.0f} s")
    assert widget_problems(page) == []
    assert tracebacks(page) == []
    _check_playground(page, course, "chapters/09_gflownets.ipynb", "chapter9", ("REINFORCE + KL", "GFlowNet (TB)"))
