"""The built site in a real browser: headless Chromium (the system's `chromium`), driven by Playwright.

Every page of the build is opened once in a 1440-pixel-wide window, from a local HTTP server on
127.0.0.1; requests to other hosts are blocked (the tests run offline). For each page the tests
check that no script throws and no local file fails to load, that every image loads, that every
internal link and anchor resolves, that no code cell scrolls sideways, and that each chapter's
Colab button opens that chapter's learner notebook. The cardinality/width explorer is driven
through its controls and its numbers are compared with `resnext_lessons.explorer.explorer_point`.

The pages come from the session's book build (tests/test_book.py's `site` tests, which run
first; see conftest.py); if no site test ran in this session, the fixture builds the book the same
way. To check another build, point RESNEXT_SITE_HTML at its html directory.

With CI=true these tests fail, never skip, when Chromium or Playwright is missing.
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
import yaml
from test_book import BUILD_COMMAND, _toc_files  # one build command, one reading of _toc.yml

ROOT = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
TOC = yaml.safe_load((ROOT / "_toc.yml").read_text())
REPO_URL = CONFIG["repository"]["url"]
ORG_REPO = REPO_URL.removeprefix("https://github.com/").strip("/")
COLAB = "https://colab.research.google.com"
NOTEBOOKS_BRANCH = "notebooks"  # the pages workflow publishes _build/html/notebooks/ there
EXPLORER = '[data-explorer="cardinality-width"]'
WINDOW = {"width": 1440, "height": 900}
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PAGE_TIMEOUT_MS = 60_000
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

pytestmark = pytest.mark.browser


DOCNAMES = [TOC["root"]] + _toc_files(TOC.get("parts", []))
CHAPTERS = [doc for doc in DOCNAMES if (ROOT / f"{doc}.ipynb").exists()]
# Every page of the build: the TOC's pages plus what Sphinx adds (index.html redirects to the root),
# in both editions: English at the root, Korean under ko/ (`python _ext/korean.py build`).
EDITIONS = ("", "ko/")
EDITION_PAGES = [f"{doc}.html" for doc in DOCNAMES] + ["index.html", "genindex.html", "search.html"]
PAGES = [f"{edition}{name}" for edition in EDITIONS for name in EDITION_PAGES]
by_page = pytest.mark.parametrize("page", PAGES)


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"CI=true: the browser test must run, but {reason}")
    pytest.skip(reason)


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        _unavailable("Chromium is not installed (Debian/Ubuntu: `sudo apt-get install chromium`)")
    return path


# --- the site and the browser ----------------------------------------------------------------


@pytest.fixture(scope="module")
def html_dir(request) -> Path:
    """The html directory of the session's book build (built here if no site test built it)."""
    override = os.environ.get("RESNEXT_SITE_HTML")
    if override:
        path = Path(override).resolve()
        assert (path / "index.html").exists(), f"RESNEXT_SITE_HTML={override} holds no index.html"
        return path
    if os.environ.get("PYTEST_XDIST_WORKER"):
        _unavailable("the browser test opens the build of the site tests, which pytest-xdist cannot order: "
                     "run `pytest -p no:xdist`")
    built = request.getfixturevalue("site_build")
    if built is None:  # no site test in this session (e.g. `pytest -m browser`): build it the same way
        jupyter_book = Path(sys.executable).with_name("jupyter-book")
        command = [str(jupyter_book) if jupyter_book.exists() else "jupyter-book", *BUILD_COMMAND]
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=3600)
        built = (done.returncode, done.stdout + done.stderr, ROOT / "_build" / "html")
    returncode, log, path = built
    assert (Path(path) / "index.html").exists(), f"the book build wrote no site:\n{log[-4000:]}"
    ko_code, ko_log, _ = request.getfixturevalue("korean_site")  # built once per session
    assert ko_code == 0, f"the Korean build failed:\n{ko_log[-4000:]}"
    return Path(path)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    timeout = 30  # seconds a connection may sit idle: no thread outlives the tests for long

    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        pass


@pytest.fixture(scope="module")
def server(html_dir):
    """Serve the html directory on 127.0.0.1 (loopback only), from a thread, for this module."""
    handler = functools.partial(_QuietHandler, directory=str(html_dir))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.timeout = 5
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser():
    executable = _chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("Playwright for Python is not installed (`pip install playwright`)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS, timeout=PAGE_TIMEOUT_MS
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def context(browser, server):
    ctx = browser.new_context(viewport=WINDOW, base_url=server, service_workers="block")
    ctx.set_default_timeout(PAGE_TIMEOUT_MS)
    origin = server.rstrip("/")

    def only_local(route):
        if route.request.url.startswith(origin + "/") or route.request.url.startswith("data:"):
            route.continue_()
        else:  # offline: fonts, MathJax and the like from CDNs are not fetched
            route.abort()

    ctx.route("**/*", only_local)
    yield ctx
    ctx.close()


# --- one visit per page ------------------------------------------------------------------------

# Collects, after load: images, links, ids, Colab hrefs and code blocks that overflow. Closed
# <details> (hidden cells, dropdown solutions) are opened first so their code is laid out.
PAGE_SCRIPT = """
async () => {
  document.querySelectorAll("details").forEach(d => { d.open = true; });
  document.querySelectorAll(".toggle-hidden").forEach(e => e.classList.remove("toggle-hidden"));
  const images = Array.from(document.images);
  await Promise.all(images.map(img => {
    img.loading = "eager";
    if (img.complete) return null;
    return new Promise(done => {
      img.addEventListener("load", done); img.addEventListener("error", done);
      setTimeout(done, 15000);
    });
  }));
  await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  // Code (cell inputs, code blocks in the text), not what the cells print.
  const code = Array.from(document.querySelectorAll("div.highlight pre"))
    .filter(pre => !pre.closest(".cell_output, .output"));
  const overflow = [];
  code.forEach(pre => {
    if (pre.scrollWidth > pre.clientWidth) {
      const line = pre.innerText.split("\\n").reduce((a, b) => (b.length > a.length ? b : a), "");
      const box = pre.closest("details, .admonition, .cell");
      const where = box ? box.tagName.toLowerCase() + "." + Array.from(box.classList).join(".") : "text";
      overflow.push({scroll: pre.scrollWidth, client: pre.clientWidth, where: where, line: line.slice(0, 200)});
    }
  });
  return {
    url: location.href,
    images: images.map(img => ({src: img.currentSrc || img.src, ok: img.complete && img.naturalWidth > 0})),
    links: Array.from(document.querySelectorAll("a[href]"), a => a.href),
    ids: Array.from(document.querySelectorAll("[id]"), e => e.id)
      .concat(Array.from(document.querySelectorAll("a[name]"), a => a.name)),
    colab: Array.from(document.querySelectorAll("a[href]"), a => a.href).filter(h => h.startsWith("%s")),
    code_blocks: code.length,
    overflow: overflow,
  };
}
""" % COLAB


EMPTY_VISIT = {"url": "", "images": [], "links": [], "ids": [], "colab": [], "code_blocks": 0, "overflow": []}


@dataclass
class Visit:
    url: str = ""
    errors: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    data: dict = field(default_factory=dict)


@pytest.fixture(scope="module")
def visits(context, server) -> dict[str, Visit]:
    """Open every page once and record what the checks need."""
    from playwright.sync_api import Error as PlaywrightError

    origin = server.rstrip("/")
    found: dict[str, Visit] = {}
    for name in PAGES:
        visit = Visit()
        page = context.new_page()
        page.on("pageerror", lambda error, v=visit: v.errors.append(f"uncaught: {error}"))

        def on_console(message, v=visit):
            if message.type == "error":
                where = (message.location or {}).get("url", "")
                if where and not where.startswith(origin):
                    return  # a blocked request to another host, reported as a console error
                if "net::ERR_FAILED" in message.text and not where.startswith(origin):
                    return
                v.errors.append(f"console.error: {message.text} ({where})")

        page.on("console", on_console)
        page.on("response", lambda r, v=visit: r.status >= 400 and v.failed.append(f"{r.status} {r.url}"))
        page.on("requestfailed", lambda r, v=visit: r.url.startswith(origin) and v.failed.append(
            f"{r.failure} {r.url}"))
        try:
            response = page.goto(server + name, wait_until="load")
            if response is not None and response.status >= 400:
                visit.failed.append(f"{response.status} {response.url}")
            for attempt in range(3):  # index.html redirects (meta refresh) to the root page
                try:
                    page.wait_for_load_state("load")
                    visit.data = page.evaluate(PAGE_SCRIPT)
                    break
                except PlaywrightError as error:
                    if "context was destroyed" not in str(error) or attempt == 2:
                        raise
            visit.url = visit.data["url"]
        except PlaywrightError as error:
            visit.errors.append(f"could not open or read the page: {error}")
            visit.data = dict(EMPTY_VISIT)
        finally:
            page.close()
        found[name] = visit
    return found


def _local_target(html_dir: Path, url: str, origin: str) -> tuple[Path, str] | None:
    """The file and fragment a same-site URL names, or None for other sites."""
    if not url.startswith(origin + "/"):
        return None
    parts = urlsplit(url)
    path = html_dir / unquote(parts.path).lstrip("/")
    if path.is_dir():
        path = path / "index.html"
    return path, unquote(parts.fragment)


@functools.lru_cache(maxsize=None)
def _ids_in_file(path: Path) -> frozenset[str]:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(path.read_text(encoding="utf-8"), "html.parser")
    return frozenset([tag["id"] for tag in soup.select("[id]")] + [a["name"] for a in soup.select("a[name]")])


# --- the checks ----------------------------------------------------------------------------------


def test_every_built_page_is_visited(html_dir):
    skip = {"_static", "_sources", "_images", "notebooks", "_panels_static"}
    built = sorted(
        p.relative_to(html_dir).as_posix()
        for p in html_dir.rglob("*.html")
        if not skip & set(p.relative_to(html_dir).parts)
    )
    assert set(built) == set(PAGES), (
        f"built but not checked: {sorted(set(built) - set(PAGES))}; "
        f"checked but not built: {sorted(set(PAGES) - set(built))}"
    )


@by_page
def test_page_has_no_javascript_errors(visits, page):
    visit = visits[page]
    assert not visit.errors, f"{page}: JavaScript errors:\n" + "\n".join(visit.errors)
    assert not visit.failed, f"{page}: local files that did not load:\n" + "\n".join(visit.failed)


@by_page
def test_every_image_loads(visits, page):
    broken = [img["src"] for img in visits[page].data["images"] if not img["ok"]]
    assert not broken, f"{page}: images that did not load (naturalWidth 0): {broken}"


@by_page
def test_every_internal_link_and_anchor_resolves(visits, page, html_dir, server):
    origin = server.rstrip("/")
    visit = visits[page]
    live_ids = {v.url.split("#")[0]: set(v.data["ids"]) for v in visits.values()}
    problems, checked = [], 0
    for url in sorted(set(visit.data["links"])):
        target = _local_target(html_dir, url, origin)
        if target is None:
            continue
        checked += 1
        path, fragment = target
        if not path.is_file():
            problems.append(f"{url}: no file {path.relative_to(html_dir)}")
            continue
        if not fragment or path.suffix != ".html":
            continue
        ids = live_ids.get(url.split("#")[0]) or _ids_in_file(path)
        if fragment not in ids:
            problems.append(f"{url}: no element with id {fragment!r}")
    assert not problems, f"{page}: links that do not resolve:\n" + "\n".join(problems)
    assert checked > 0 or visit.errors, f"{page}: no internal link found (the navigation is missing)"


@by_page
def test_no_code_cell_scrolls_sideways(visits, page):
    """At 1440 px the code column holds 88 characters (`ruff format book` keeps code within)."""
    wide = visits[page].data["overflow"]
    if page.removeprefix("ko/").removesuffix(".html") in CHAPTERS:
        assert visits[page].data["code_blocks"] > 0, f"{page}: no code block was found to measure"
    assert not wide, f"{page}: code blocks wider than the column at {WINDOW['width']} px:\n" + "\n".join(
        f"  scrollWidth {w['scroll']} > clientWidth {w['client']} in {w['where']}: {w['line']!r}" for w in wide
    )


def learner_notebook(doc: str) -> str:
    """Where the build writes a page's learner notebook, under _build/html/notebooks/ and on the
    `notebooks` branch: the page's file name (book/04_x -> 04_x.ipynb), as _ext/learner_notebooks.py."""
    return f"{Path(doc).name}.ipynb"


@pytest.mark.parametrize("edition", EDITIONS)
@pytest.mark.parametrize("doc", CHAPTERS)
def test_colab_button_opens_the_learner_notebook(visits, html_dir, doc, edition):
    notebook = edition + learner_notebook(doc)  # the Korean ones under ko/ on the branch
    expected = f"{COLAB}/github/{ORG_REPO}/blob/{NOTEBOOKS_BRANCH}/{notebook}"
    hrefs = set(visits[f"{edition}{doc}.html"].data["colab"])
    assert hrefs == {expected}, f"{doc}: the Colab button links {sorted(hrefs)}, expected {expected}"
    learner = html_dir / edition / "notebooks" / learner_notebook(doc)
    assert learner.is_file(), f"the build has no learner notebook at {learner.relative_to(html_dir)}"


def test_pages_hold_no_colab_link_except_the_chapters(visits):
    chapters = {f"{edition}{doc}.html" for edition in EDITIONS for doc in CHAPTERS}
    stray = {page: v.data["colab"] for page, v in visits.items() if page not in chapters and v.data["colab"]}
    assert not stray, f"Colab links on pages that are not chapter notebooks: {stray}"


# --- the explorer ----------------------------------------------------------------------------------


def _explorer_pages(html_dir: Path) -> list[str]:
    marker = EXPLORER.strip("[]")
    return [name for name in PAGES if (html_dir / name).is_file() and marker in (html_dir / name).read_text()]


def _shown(root) -> dict:
    rows = root.locator(".rxl-panel table.rxl-numbers tr")
    cells = {}
    for i in range(rows.count()):
        row = rows.nth(i)
        cells[row.locator("th").inner_text().strip()] = row.locator("td").inner_text().strip()
    return {"d": root.locator(".rxl-d").inner_text().strip(), "cells": cells}


def _expected_cells(cardinality: int, d: int) -> dict[str, str]:
    from bs4 import BeautifulSoup

    from resnext_lessons.explorer import explorer_point, panel_html

    soup = BeautifulSoup(panel_html(explorer_point(cardinality, d), explorer_point(1, 64)), "html.parser")
    return {tr.th.get_text().strip(): tr.td.get_text().strip() for tr in soup.select("table.rxl-numbers tr")}


def _assert_numbers_match(shown: dict, cardinality: int, d: int, where: str) -> None:
    from resnext_lessons.explorer import explorer_point

    point = explorer_point(cardinality, d)
    assert shown["d"] == str(d), f"{where}: shows d = {shown['d']}, expected {d}"
    cells = shown["cells"]

    def cell(pattern: str) -> str:
        matches = [value for label, value in cells.items() if re.search(pattern, label)]
        assert len(matches) == 1, f"{where}: no single row matching {pattern!r} in {list(cells)}"
        return matches[0]

    # (shown cell, the value as the panel formats it, how it appears: "==" whole cell, "^" first)
    checks = {
        "group_width": (cell(r"\(C·d\)"), f"{cardinality} × {d} = {point['group_width']:,} channels", "^"),
        "template_params": (cell(r"Table 2 count"), f"{point['template_params']:,} (", "^"),
        "block_params": (cell(r"with BN"), f"{point['block_params']:,}", "=="),
        "block_macs": (cell(r"^block multiply-adds"), f"{point['block_macs']:,}", "=="),
        "model_params": (cell(r"^ResNeXt-50 .* parameters"), f"{point['model_params']:,} (", "^"),
        "model_macs": (cell(r"^ResNeXt-50 .* multiply-adds"), f"{point['model_macs']:,} (", "^"),
        "stage_widths": (cell(r"conv2 to conv5"), ", ".join(f"{s:,}" for s in point["stage_widths"]), "=="),
        "budget_d": (cell(r"budget"), str(point["budget_d"]), "=="),
    }
    wrong = {
        name: (text, want)
        for name, (text, want, how) in checks.items()
        if not (text == want if how == "==" else text.startswith(want))
    }
    assert not wrong, f"{where}: shown numbers differ from explorer_point({cardinality}, {d}): {wrong}"
    assert cells == _expected_cells(cardinality, d), f"{where}: the panel differs from panel_html"


def test_explorer_controls_change_its_numbers_to_explorer_point(context, server, html_dir):
    pages = _explorer_pages(html_dir)
    assert pages, f"no page holds the explorer ({EXPLORER})"
    for name in pages:
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        try:
            page.goto(server + name, wait_until="load")
            roots = page.locator(EXPLORER)
            assert roots.count() >= 1, f"{name}: the explorer did not render"
            for k in range(roots.count()):
                root = roots.nth(k)
                where = f"{name} explorer {k + 1}"
                root.scroll_into_view_if_needed()
                grid = root.evaluate(
                    "r => JSON.parse(r.querySelector(\"script[type='application/json']\").textContent)"
                )
                cardinalities, widths = grid["cardinalities"], grid["widths"]
                select, slider = root.locator("select"), root.locator("input[type='range']")

                def state():
                    return int(select.input_value()), widths[int(slider.input_value())]

                c0, d0 = state()
                first = _shown(root)
                _assert_numbers_match(first, c0, d0, f"{where}, as loaded")

                # A different cardinality, chosen from the list.
                c1 = next(c for c in [8, 2, 4, 16, *cardinalities] if c in cardinalities and c != c0)
                select.select_option(str(c1))
                after_c = _shown(root)
                assert after_c != first, f"{where}: choosing C = {c1} did not change the numbers"
                _assert_numbers_match(after_c, c1, d0, f"{where}, C = {c1}")

                # The slider moved with the keyboard, as a reader would.
                slider.focus()
                slider.press("ArrowRight" if int(slider.input_value()) < len(widths) - 1 else "ArrowLeft")
                c, d1 = state()
                assert d1 != d0, f"{where}: the slider did not move"
                after_d = _shown(root)
                assert after_d != after_c, f"{where}: moving the slider did not change the numbers"
                _assert_numbers_match(after_d, c, d1, f"{where}, d = {d1}")

                # The button snaps d to the width that keeps ResNet's budget at this C.
                button = root.locator("button")
                if button.is_enabled():
                    button.click()
                    c, d2 = state()
                    from resnext_lessons.explorer import explorer_point

                    assert d2 == explorer_point(c, d1)["budget_d"], f"{where}: the budget button set d = {d2}"
                    _assert_numbers_match(_shown(root), c, d2, f"{where}, budget d = {d2}")
            assert not errors, f"{name}: JavaScript errors while using the explorer: {errors}"
        finally:
            page.close()
