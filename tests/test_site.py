"""The course's website, read as a reader would: in Chromium, with every other host unreachable.

The site is the one ``./course book`` builds (``build/book/html``; ``./course test`` builds it
before running the tests; ``BITFLIP_SITE`` names another). It is served from 127.0.0.1 by a
static server, and every request to any other host is aborted and recorded. Checked: every page
loads with no failed request and no request elsewhere (and from the file system too); formulas
are typeset (no raw ``$...$`` or ``\\(...\\)`` left); every figure is an image that loads; every
internal link and anchor resolves; the search finds "hindsight" and lands on chapter 4; hidden
answers open; widgets show their last state; each notebook page says its mode and offers its
notebook; axe finds no serious or critical accessibility violation; the PDF has the course in it.

Skipped, saying why, when Playwright or Chromium is missing, or the site has not been built
(outside CI; in CI a missing site fails).
"""
from __future__ import annotations

import functools
import http.server
import json
import os
import re
import threading
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import pytest

import bitflip_lib

ROOT = Path(__file__).resolve().parents[1]
SITE = Path(os.environ.get("BITFLIP_SITE", ROOT / "build" / "book" / "html"))
CHROMIUM = os.environ.get("BITFLIP_CHROMIUM", "/usr/bin/chromium")
PDF = SITE / "bitflip-course.pdf"
ARTIFACTS = Path(os.environ.get("BITFLIP_BROWSER_ARTIFACTS", "/tmp/bitflip-browser-artifacts")) / "site"
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
CHAPTERS = sorted(p.stem for p in (ROOT / "chapters").glob("[0-9]*.py"))

try:
    from playwright.sync_api import Page, sync_playwright
except ImportError:  # pragma: no cover - depends on the machine
    sync_playwright = None

pytestmark = [
    pytest.mark.skipif(sync_playwright is None, reason="Playwright is not installed (pip install playwright): site tests skipped"),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"Chromium not found at {CHROMIUM} (apt-get install chromium): site tests skipped"),
]


@pytest.fixture(scope="module")
def site() -> Path:
    if not (SITE / "index.html").exists():
        message = f"the website is not built at {SITE}: run ./course book (./course test builds it first)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return SITE


def pages(site: Path) -> list[str]:
    return sorted(str(p.relative_to(site)) for p in site.rglob("*.html") if "_static" not in p.parts)


# --------------------------------------------------------------------------------------------
# A static server on 127.0.0.1 and a browser that may reach nothing else
# --------------------------------------------------------------------------------------------
class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def server(site: Path) -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(site)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()


class Visit:
    """One page load: the requests that failed, those sent to another host, and script errors."""

    def __init__(self) -> None:
        self.failed: list[str] = []
        self.elsewhere: list[str] = []
        self.errors: list[str] = []


def _local(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in {"file", "data", "blob", "about"} or parts.hostname in {"127.0.0.1", "localhost"}


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run", "--allow-file-access-from-files"])
        yield chromium
        chromium.close()


@pytest.fixture()
def open_page(browser):
    """``open_page(url)`` -> (page, visit): loaded, MathJax finished, every other host blocked."""
    contexts = []

    def _open(url: str, wait_for_math: bool = True) -> tuple[Page, Visit]:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        contexts.append(context)
        visit = Visit()

        def route(route):
            if _local(route.request.url):
                route.continue_()
            else:
                visit.elsewhere.append(route.request.url)
                route.abort()

        context.route("**/*", route)
        page = context.new_page()
        page.on("requestfailed", lambda r: visit.failed.append(f"{r.url} ({r.failure})"))
        page.on("response", lambda r: r.status >= 400 and visit.failed.append(f"{r.url} (HTTP {r.status})"))
        page.on("pageerror", lambda e: visit.errors.append(str(e)))
        page.goto(url, wait_until="load")
        if wait_for_math:
            page.wait_for_function("() => !document.querySelector('.math') || "
                                   "(window.MathJax && MathJax.startup && MathJax.startup.promise)", timeout=30_000)
            page.evaluate("() => window.MathJax && MathJax.startup && MathJax.startup.promise")
        page.wait_for_load_state("networkidle")
        return page, visit

    yield _open
    for context in contexts:
        context.close()


# What a reader reads: the article's text without code, outputs of code, or typeset maths.
_PROSE_TEXT = """() => {
  const article = document.querySelector('article') || document.body;
  const copy = article.cloneNode(true);
  copy.querySelectorAll('pre, code, script, style, mjx-container, .cell_output, .highlight').forEach(e => e.remove());
  return copy.innerText;
}"""
_RAW_MATH = re.compile(r"\$[^$\s][^$]*?\$|\\\(|\\\[")


def _check_page(page: Page, visit: Visit, name: str) -> list[str]:
    problems = [f"failed request: {u}" for u in visit.failed]
    problems += [f"request to another host: {u}" for u in visit.elsewhere]
    problems += [f"script error: {e}" for e in visit.errors]
    untypeset = page.evaluate("() => [...document.querySelectorAll('.math')].filter(e => !e.querySelector('mjx-container')).length")
    if untypeset:
        problems.append(f"{untypeset} formulas not typeset")
    raw = _RAW_MATH.findall(page.evaluate(_PROSE_TEXT))
    if raw:
        problems.append(f"raw maths left in the text: {raw[:5]}")
    broken = page.evaluate("() => [...document.images].filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src)")
    problems += [f"image that does not load: {src}" for src in broken]
    return [f"{name}: {p}" for p in problems]


def test_every_page_loads_offline_with_its_formulas_and_figures(site, server, open_page):
    problems = []
    for name in pages(site):
        page, visit = open_page(server + name)
        problems += _check_page(page, visit, name)
        page.context.close()
    assert not problems, "\n".join(problems)


def test_the_site_opens_from_the_file_system(site, open_page):
    for name in ("index.html", "chapters/04_her.html"):
        page, visit = open_page((site / name).as_uri())
        assert not _check_page(page, visit, name)
        assert page.locator("mjx-container").count() > 0


def test_chapter_pages_have_figures_formulas_and_their_mode(site, server, open_page):
    version = bitflip_lib.__version__
    for chapter in CHAPTERS:
        page, _ = open_page(f"{server}chapters/{chapter}.html")
        figures = page.evaluate("() => [...document.querySelectorAll('.cell_output img')].filter(i => i.naturalWidth > 0).length")
        assert figures >= 1, f"{chapter}: no figure in the outputs"
        if "$" in (ROOT / "chapters" / f"{chapter}.py").read_text():
            assert page.locator("mjx-container").count() >= 1, f"{chapter}: its maths is not typeset"
        # A display formula wider than the text column is cut off at its edge (it scrolls).
        too_wide = page.evaluate("""() => [...document.querySelectorAll('mjx-container[display="true"]')]
            .filter(c => c.scrollWidth > c.clientWidth + 1).map(c => c.textContent.slice(0, 60))""")
        assert not too_wide, f"{chapter}: display formulas wider than the text column: {too_wide}"
        note = page.locator(".course-page-note").inner_text()
        assert "quick mode" in note or "full mode" in note, f"{chapter}: the page does not say its mode"
        assert f"./course lab chapters/{chapter}.ipynb" in note
        assert f"pip install bitflip-course=={version}" in note
        download = page.locator("a.course-download").get_attribute("href")
        notebook = json.loads((site / "chapters" / download).read_text())
        assert notebook["nbformat"] == 4 and len(notebook["cells"]) > 10
        if chapter == "04_her":
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "chapter4.png"))
        page.context.close()
    footer = open_page(server + "index.html")[0].locator("footer.bd-footer-content").inner_text()
    assert "mode" in footer and version in footer


def test_the_widgets_show_their_last_state(site, server, open_page):
    """Every widget view in a chapter's outputs renders from its stored state (none missing or broken)."""
    rendered = 0
    for chapter in CHAPTERS:
        html = (site / "chapters" / f"{chapter}.html").read_text()
        views = html.count("application/vnd.jupyter.widget-view+json")
        if not views:
            continue
        page, visit = open_page(f"{server}chapters/{chapter}.html")
        page.wait_for_function(f"() => document.querySelectorAll('.jupyter-widgets.widget-container, "
                               f".jupyter-widgets.widget-inline-hbox, .jupyter-widgets').length > 0", timeout=30_000)
        text = page.locator("article").inner_text()
        assert "Error displaying widget" not in text, f"{chapter}: a widget failed to render"
        assert not visit.errors, f"{chapter}: {visit.errors}"
        rendered += 1
        page.context.close()
    assert rendered >= 3, f"only {rendered} chapter pages have widgets"


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.ids.add(attrs["id"])
        if tag == "a" and attrs.get("name"):
            self.ids.add(attrs["name"])
        for key in ("href", "src"):
            value = attrs.get(key)
            if value and (tag in {"a", "img", "script"} or (tag == "link" and key == "href")):
                self.hrefs.append(value)


def test_every_internal_link_resolves(site):
    parsed = {}
    for name in pages(site):
        links = _Links()
        links.feed((site / name).read_text())
        parsed[name] = links
    broken, checked = [], 0
    for name, links in parsed.items():
        for href in links.hrefs:
            parts = urlsplit(href)
            if parts.scheme or href.startswith("//"):
                continue  # a link to another site is only a link: nothing loads it
            target = unquote(urljoin(name, parts.path)) if parts.path else name
            checked += 1
            if not (site / target).is_file():
                broken.append(f"{name}: {href} (no file {target})")
            elif parts.fragment and target.endswith(".html"):
                ids = parsed[target].ids if target in parsed else set()
                if unquote(parts.fragment) not in ids:
                    broken.append(f"{name}: {href} (no anchor #{parts.fragment} in {target})")
    assert checked > 200, f"only {checked} internal links found: is the site complete?"
    assert not broken, f"{len(broken)} broken links:\n" + "\n".join(broken[:40])


def test_search_finds_hindsight_and_lands_on_chapter_4(site, server, open_page):
    page, visit = open_page(server + "index.html")
    page.locator("button.search-button-field, button.search-button").first.click()
    box = page.locator("input[name=q]:visible").first
    box.fill("hindsight")
    box.press("Enter")
    page.wait_for_url("**/search.html?q=hindsight**")
    results = page.locator("#search-results ul.search li a")
    results.first.wait_for(timeout=30_000)
    # The search fetches every result page for its summary; clicking before it has finished
    # aborts those fetches, which would read as failed requests.
    page.get_by_text("Search finished", exact=False).wait_for(timeout=60_000)
    page.wait_for_load_state("networkidle")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "search.png"))
    assert "chapters/04_her.html" in results.first.get_attribute("href"), (
        f"first result: {results.first.get_attribute('href')}")
    results.first.click()
    page.wait_for_load_state("load")
    assert page.url.split("#")[0].endswith("chapters/04_her.html")
    assert "Hindsight Experience Replay" in page.locator("h1").first.inner_text()
    assert not visit.failed and not visit.elsewhere


def test_hidden_answers_open(site, server, open_page):
    page, _ = open_page(server + "chapters/04_her.html")
    answers = page.locator("article details")
    assert answers.count() >= 2
    first = answers.first
    assert first.get_attribute("open") is None
    body = first.locator(":scope > :not(summary)").first
    assert not body.is_visible(), "an answer is visible before it is opened"
    first.locator("summary").click()
    assert first.get_attribute("open") is not None and body.is_visible()
    assert first.locator("mjx-container").count() >= 1, "the answer's maths is not typeset"
    for chapter in CHAPTERS:  # every chapter's answers are <details> blocks with a body
        html = (site / "chapters" / f"{chapter}.html").read_text()
        assert len(re.findall(r"<details>\s*<summary>", html)) >= 2, f"{chapter}: fewer than two hidden answers"


# The landing page, the book's own pages, and chapters with each kind of widget and output (every
# chapter page is built from the same templates; axe takes 10-20 s a page on a busy 2-core machine).
AXE_PAGES = ["index.html", "chapters/01_sparse_rewards.html", "chapters/04_her.html", "chapters/07_table1.html",
             "chapters/08_policy_gradients.html", "chapters/glossary.html", "exercises/ex01_env_step.html",
             "search.html?q=hindsight", "references.html", "results/README.html"]


def test_no_serious_accessibility_violations(site, server, open_page):
    axe_playwright = pytest.importorskip("axe_playwright_python", reason="axe-playwright-python is not installed")
    axe_js = Path(axe_playwright.__file__).parent / "axe.min.js"
    found = []
    for name in AXE_PAGES:
        page, _ = open_page(server + name)
        page.add_script_tag(path=str(axe_js))
        result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
        for violation in result["violations"]:
            if violation["impact"] in {"serious", "critical"}:
                targets = [", ".join(node["target"]) for node in violation["nodes"][:3]]
                found.append(f"{name}: {violation['id']} ({violation['impact']}, {len(violation['nodes'])} elements, "
                             f"e.g. {targets}): {violation['help']}")
        page.context.close()
    assert not found, "\n".join(found)


def test_the_pdf_has_the_whole_course(site):
    if not PDF.exists():
        message = f"no PDF at {PDF}: ./course book builds it (it needs Chromium)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    data = PDF.read_bytes()
    assert data.startswith(b"%PDF-")
    pages_count = len(re.findall(rb"/Type\s*/Page\b", data))
    images = len(re.findall(rb"/Subtype\s*/Image", data))
    assert pages_count >= 100, f"the PDF has {pages_count} pages"
    assert images >= 2 * len(CHAPTERS), f"the PDF has {images} images"
    index = (site / "index.html").read_text()
    assert 'href="bitflip-course.pdf"' in index, "the landing page does not link the PDF"
