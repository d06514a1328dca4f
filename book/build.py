"""Build the course's website and PDF (what `./course book` runs).

    python book/build.py [--no-pdf] [--jobs N] [--out DIR]

1. Stage the pages: the book's own pages (book/*.md), the chapters, the glossary, the exercises
   and the lab notebook are copied into DIR/src (only changed files, so Sphinx rebuilds only what
   changed).
2. Execute every chapter once, N at a time (each in its own kernel, with the chapter's folder as
   its working directory, as in JupyterLab), in the mode the environment selects (BITFLIP_QUICK).
   A cell that raises, an assert included, fails the build: the notebook's own metadata cannot
   allow errors (checked here), and the error is printed with its traceback. The executed
   notebooks go into a jupyter-cache that myst-nb reads, so Sphinx does not run them again.
3. Sphinx writes the site (DIR/html) and a single-page version (DIR/single) from the same
   doctrees, and Chromium prints the single page to DIR/html/bitflip-course.pdf once MathJax has
   typeset every formula.

The site loads nothing from another host (book/assets.py fetches MathJax and the widget embedder
from the npm registry, pinned); tests/test_site.py checks that in Chromium with the network off.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import filecmp
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import assets  # noqa: E402  (book/assets.py)
import course_book  # noqa: E402  (book/course_book.py)

CHROMIUM = os.environ.get("BITFLIP_CHROMIUM", "/usr/bin/chromium")
PDF_NAME = "bitflip-course.pdf"
CELL_TIMEOUT_S = 900  # per cell, as the test suite allows


def say(message: str) -> None:
    print(f"[book] {message}", file=sys.stderr, flush=True)


def chapters() -> list[Path]:
    return sorted((ROOT / "chapters").glob("[0-9]*.py"))


def staged_files() -> dict[Path, Path]:
    """Each page's source file and where it goes under src/."""
    files = {path: Path(path.name) for path in HERE.glob("*.md")}
    files.update({path: Path("chapters", path.name) for path in chapters()})
    files[ROOT / "chapters" / "glossary.md"] = Path("chapters", "glossary.md")
    files.update({path: Path("exercises", path.name) for path in sorted((ROOT / "exercises").glob("ex[0-9]*.py"))})
    files[ROOT / "results" / "README.md"] = Path("results", "README.md")
    return files


def stage(src: Path) -> None:
    """Copy the pages into ``src``, leaving unchanged files (and their times) alone; drop stale ones."""
    wanted = staged_files()
    for source, relative in wanted.items():
        target = src / relative
        if target.exists() and filecmp.cmp(source, target, shallow=False):
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    keep = {src / relative for relative in wanted.values()}
    for path in list(src.rglob("*")):
        if path.is_file() and path not in keep:
            path.unlink()


def _execute(path: str) -> tuple[str, dict | None, float, str | None]:
    """Run one notebook in a fresh kernel (in a worker process); return it executed, or the error."""
    import nbformat
    from jupyter_cache.executors.utils import single_nb_execution

    notebook = course_book.reads(Path(path).read_text())
    start = time.perf_counter()
    try:
        result = single_nb_execution(notebook, cwd=str(Path(path).parent), timeout=CELL_TIMEOUT_S,
                                     allow_errors=False, meta_override=False)
    except Exception as error:  # a dead kernel, a failed start: the build fails with the reason
        return path, None, time.perf_counter() - start, f"{type(error).__name__}: {error}"
    if result.err is not None:
        return path, None, result.time, result.exc_string or repr(result.err)
    return path, nbformat.from_dict(result.nb), result.time, None


def check_errors_not_allowed(paths: list[Path]) -> None:
    """No notebook may switch off the failure on error (nbval would not let it either)."""
    import jupytext
    for path in paths:
        metadata = jupytext.read(path).metadata
        if metadata.get("execution", {}).get("allow_errors") or metadata.get("mystnb", {}).get("execution_allow_errors"):
            raise SystemExit(f"book: {path.relative_to(ROOT)} allows errors in its metadata: remove that setting")


def execute(cache_path: Path, jobs: int) -> dict[str, float]:
    """Every chapter executed once (skipped when the cache already has its code's outputs).

    Returns the seconds each chapter executed in, this time (the cached ones are left out).
    """
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    cache = get_cache(str(cache_path))
    todo = []
    for path in chapters():
        notebook = course_book.reads(path.read_text())
        try:
            cache.match_cache_notebook(notebook)
            say(f"{path.name}: outputs cached from an earlier build of the same code")
        except KeyError:
            todo.append(path)
    check_errors_not_allowed(todo)
    # Longest first (by the last recorded time, else file size), so that the two workers end together.
    previous = json.loads((cache_path / "times.json").read_text()) if (cache_path / "times.json").exists() else {}
    todo.sort(key=lambda p: (previous.get(p.name, 0.0), p.stat().st_size), reverse=True)
    times, failures = {}, []
    if todo:
        say(f"executing {len(todo)} chapter(s), {jobs} at a time, in {course_book.mode()} mode")
    with concurrent.futures.ProcessPoolExecutor(max_workers=jobs) as pool:
        for path, executed, seconds, error in pool.map(_execute, [str(p) for p in todo]):
            name = Path(path).name
            times[name] = round(seconds, 1)
            if error is not None:
                failures.append(name)
                say(f"{name}: FAILED after {seconds:.0f} s\n{error}")
                continue
            say(f"{name}: executed in {seconds:.0f} s")
            cache.cache_notebook_bundle(CacheBundleIn(executed, str(path), data={"execution_seconds": seconds}),
                                        check_validity=False, overwrite=True)
    cache_path.mkdir(parents=True, exist_ok=True)
    (cache_path / "times.json").write_text(json.dumps({**previous, **times}, indent=1, sort_keys=True))
    if failures:
        raise SystemExit(f"book: {len(failures)} chapter(s) failed: {', '.join(failures)} (tracebacks above)")
    return times


def sphinx(builder: str, src: Path, out: Path, doctrees: Path, env: dict) -> None:
    command = [sys.executable, "-m", "sphinx", "-b", builder, "-c", str(HERE), "-d", str(doctrees),
               "-W", "--keep-going", "-q", str(src), str(out)]
    done = subprocess.run(command, env=env)
    if done.returncode != 0:
        raise SystemExit(f"book: sphinx ({builder}) failed: warnings and errors above")


def print_pdf(single: Path, pdf: Path) -> None:
    """Chromium prints the single-page build once MathJax has typeset it (no network)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page()
        page.route("**/*", lambda route: route.continue_() if route.request.url.startswith("file:") else route.abort())
        page.goto((single / "index.html").as_uri(), wait_until="load")
        page.wait_for_function("window.MathJax && MathJax.startup && MathJax.startup.promise", timeout=60_000)
        page.evaluate("MathJax.startup.promise")
        # Every hidden answer open in print, as in a printed book's answer key.
        page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
        page.emulate_media(media="print")
        page.pdf(path=str(pdf), format="A4", print_background=True,
                 margin={"top": "15mm", "bottom": "15mm", "left": "12mm", "right": "12mm"},
                 display_header_footer=True, header_template="<span></span>",
                 footer_template='<div style="font-size:8px;width:100%;text-align:center">'
                                 '<span class="pageNumber"></span> / <span class="totalPages"></span></div>')
        browser.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build the course's website and PDF.")
    parser.add_argument("--no-pdf", action="store_true", help="build the website only")
    parser.add_argument("--jobs", type=int, default=int(os.environ.get("BITFLIP_BOOK_JOBS", "2")),
                        help="chapters executed at once (default 2)")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "book", help="build folder (default build/book)")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    if not args.no_pdf and not Path(CHROMIUM).exists():
        raise SystemExit(f"book: the PDF needs Chromium at {CHROMIUM} (Debian/Ubuntu: apt-get install chromium; "
                         "or set BITFLIP_CHROMIUM), or build the website alone with --no-pdf")

    # The kernels draw figures inline (as JupyterLab does; a non-interactive backend such as Agg,
    # which the test suite sets, would leave the pages without figures), one torch thread each,
    # no progress bars (their widgets would only show a finished bar).
    os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("BITFLIP_PROGRESS", "0")
    start = time.perf_counter()
    out = args.out.resolve()
    mode = course_book.mode()
    src, vendor = out / "src", out / "vendor-root"
    stage(src)
    assets.unpack(vendor / "vendor")
    cache_path = out / f"jupyter_cache_{mode}"
    times = execute(cache_path, args.jobs)
    executed = time.perf_counter()

    env = {**os.environ, "BITFLIP_BOOK_VENDOR": str(vendor), "BITFLIP_BOOK_CACHE": str(cache_path)}
    doctrees = out / f"doctrees_{mode}"
    html = out / "html"
    sphinx("html", src, html, doctrees, env)
    pages = sum(1 for page in html.rglob("*.html") if "_static" not in page.parts)
    if not args.no_pdf:
        single = out / "single"
        sphinx("singlehtml", src, single, doctrees, env)
        print_pdf(single, html / PDF_NAME)
    total = time.perf_counter() - start
    if times:
        say(f"{len(times)} chapter(s) executed in {executed - start:.0f} s "
            f"({', '.join(f'{k} {v:.0f} s' for k, v in sorted(times.items()))})")
    say(f"site: {html / 'index.html'} ({pages} pages, outputs in {mode} mode)"
        + ("" if args.no_pdf else f"; PDF: {html / PDF_NAME}"))
    say(f"built in {total:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
