"""The built book as a reader sees it: every page opened in a real browser, over its
full height.

Opens every page of ``_build/html`` (made by ``bash scripts/build_book.sh``) in Debian's
Chromium, driven by Selenium through Debian's ``chromium-driver`` (Debian ships the two
at the same version; command 1 installs both with apt-get where it runs as root), served
over a loopback HTTP server as a reader would get it. For each page :func:`check_page`
scrolls through the whole document and reports, as readable messages:

- images that did not load (``complete`` and ``naturalWidth > 0``),
- math that MathJax did not typeset, and raw ``$...$``, ``\\(``, ``\\[`` delimiters left
  in the text,
- error output or tracebacks in cell outputs,
- code cells (input or output ``pre``) wider than the content column,
- tables, figures (``img``) and cell outputs wider than the content column or starting
  outside it, measured by the box a reader sees: the element itself, or the box it
  scrolls in (the theme puts output and Markdown tables in boxes that scroll sideways
  inside the column); what starts left of its scroll box, or is hidden by an
  ``overflow: hidden`` box, is reported too,
- exercise solutions (cells starting with ``# Solution``) whose input or output shows
  before the reader opens them, or that do not show after their toggle is clicked (each
  one is opened).

Full-page screenshots go to ``_build/screenshots/``. The second group of tests breaks a
copy of a built page on purpose (a missing figure, no MathJax, an opened solution, a
solution's output outside its toggle, an error output, an overlong code line, a too-wide
table outside any scroll box, a too-wide figure) and checks that the checker reports it,
beyond what it reports for the intact page. Without a built book or a browser these
tests fail and say what to do; set ``PERTURBBOOK_SKIP_BROWSER=1`` to skip them
deliberately.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import http.server
import os
import re
import shutil
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HTML = ROOT / "_build" / "html"
SHOTS = ROOT / "_build" / "screenshots"
# the scripts the browser runs on each page (JavaScript, kept in their own files)
BROWSER_JS = Path(__file__).resolve().parent / "browser_js"
BUILD_HINT = "run 'bash scripts/build_book.sh' (command 1 of the README) first"
# a common laptop screen, wide enough for the theme's full content column (854 px)
WINDOW = (1440, 900)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        os.environ.get("PERTURBBOOK_SKIP_BROWSER") == "1",
        reason="PERTURBBOOK_SKIP_BROWSER=1 was set",
    ),
]


# -------------------------------------------------------------------------- the browser


def _executables() -> tuple[str, str]:
    browser = next(
        (shutil.which(n) for n in ("chromium", "chromium-browser") if shutil.which(n)),
        None,
    )
    driver = shutil.which("chromedriver")
    if browser is None or driver is None:
        missing = " and ".join(
            n for n, p in (("chromium", browser), ("chromedriver", driver)) if p is None
        )
        pytest.fail(
            f"No {missing} found: {BUILD_HINT}; it installs Debian's chromium "
            "and chromium-driver "
            "(or: apt-get install chromium chromium-driver). "
            "PERTURBBOOK_SKIP_BROWSER=1 skips this test."
        )
    return browser, driver


def start_browser():
    """Headless Chromium driven by Selenium through the chromium-driver that matches it
    (no driver download)."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.fail(
            f"selenium is not installed in this environment: {BUILD_HINT} (it "
            "installs requirements.txt)."
        )
    browser, driver = _executables()
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
    ):
        options.add_argument(arg)
    try:
        chrome = webdriver.Chrome(
            options=options, service=Service(executable_path=driver)
        )
    except Exception as error:  # e.g. driver and browser of different versions
        pytest.fail(
            f"Could not start {browser} through {driver}: {error}\n{BUILD_HINT} "
            "to install Debian's "
            "matching chromium and chromium-driver."
        )
    chrome.set_script_timeout(90)
    chrome.set_page_load_timeout(90)
    return chrome


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serve(folder: Path):
    """Serve a built book from 127.0.0.1 (as a reader gets it); yields the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


# --------------------------------------------------------------------- the page checker

# Scroll through the whole page so that lazily loaded content loads, then wait for
# images and for MathJax.
SETTLE = (BROWSER_JS / "settle.js").read_text()

# Everything the checks need, measured over the whole document (not the viewport).
MEASURE = (BROWSER_JS / "measure.js").read_text()

OPEN_SOLUTIONS = (BROWSER_JS / "open_solutions.js").read_text()


def screenshot(driver, path: Path, slice_height: int = 8000) -> None:
    """A PNG of the full page height, not just the first screen, stitched with Pillow
    from viewport captures: the window is made as tall as a slice (Chrome DevTools'
    ``Emulation.setDeviceMetricsOverride``; a capture taller than Chromium's texture
    limit comes back blank, hence slices) and scrolled slice by slice. Not
    ``captureBeyondViewport``: on these pages it renders the content shifted sideways by
    up to a few hundred pixels although the layout is right, which made tables look as
    if they started left of the column. The sticky header is hidden after the first
    slice so that it does not cover the content."""
    import io

    from PIL import Image

    width = WINDOW[0]

    def content_height() -> int:
        metrics = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})
        return int(metrics["cssContentSize"]["height"])

    view = max(1, min(slice_height, content_height()))
    window = {"width": width, "height": view, "deviceScaleFactor": 1, "mobile": False}
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", window)
    try:
        height = content_height()
        page = Image.new("RGB", (width, height), "white")
        for top in range(0, height, view):
            y = driver.execute_script(
                "window.scrollTo(0, arguments[0]);"
                "const header = document.querySelector('header');"
                "if (header) header.style.visibility = arguments[0] ? 'hidden' : '';"
                "return window.scrollY;",
                top,
            )
            time.sleep(0.1)
            shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png"})
            image = Image.open(io.BytesIO(base64.b64decode(shot["data"])))
            page.paste(image.convert("RGB"), (0, int(y)))
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
        driver.execute_script(
            "window.scrollTo(0, 0);"
            "const header = document.querySelector('header');"
            "if (header) header.style.visibility = '';"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    page.save(path, compress_level=1)


def _box_problem(name: str, box: dict) -> str:
    return f"{name}: {box['kind']} {'; '.join(box['problems'])}: {box['text']!r}"


def check_page(
    driver,
    url: str,
    name: str | None = None,
    shot: Path | None = None,
    require_solution: bool = False,
) -> list[str]:
    """Open ``url`` and return what a reader would see go wrong on it, one readable
    message per problem.

    Solutions on the page are checked closed, then opened one by one by clicking their
    toggles and checked visible. ``shot``: where to save a full-page screenshot (taken
    with the solutions still closed). ``require_solution``: report a page without any
    solution to open (every chapter has exercises).
    """
    name = name or url
    driver.get(url)
    mathjax = driver.execute_async_script(SETTLE)
    page = driver.execute_script(MEASURE)
    if shot is not None:
        screenshot(driver, shot)
    problems = []
    for image in page["images"]:
        if not image["ok"]:
            problems.append(f"{name}: image did not load: {image['src']}")
    if page["untypeset"]:
        problems.append(
            f"{name}: {len(page['untypeset'])} of {page['math']} math elements "
            "not typeset by "
            f"MathJax ({mathjax}), e.g. {page['untypeset'][0]!r}"
        )
    if page["raw_math"]:
        problems.append(
            f"{name}: {len(page['raw_math'])} raw math delimiters left in the "
            "text, e.g. "
            f"{page['raw_math'][0]!r}"
        )
    for error in page["errors"]:
        problems.append(f"{name}: error output in a cell: {error!r}")
    for pre in page["wide"]:
        problems.append(
            f"{name}: code cell wider than the content column ({pre['scroll']} "
            "px of content in "
            f"{pre['client']} px; column {page['column']} px): {pre['text']!r}"
        )
    for box in page["boxes"]:
        problems.append(_box_problem(name, box))
    if require_solution and not page["solutions"]:
        problems.append(
            f"{name}: no exercise solution (a cell starting with '# Solution') "
            "on the page"
        )
    for n, solution in enumerate(page["solutions"], start=1):
        if solution["toggles"] == 0:
            problems.append(
                f"{name}: solution {n} has no toggle: it is shown to every reader"
            )
        elif solution["open"] or solution["visible"]:
            problems.append(
                f"{name}: solution {n} is visible before it is opened "
                f"({solution['visible']} of "
                f"{solution['parts']} parts shown: input and output must stay hidden)"
            )
    # open each closed solution by clicking its toggle, as a reader would, and check
    # that it shows then
    toggles = driver.execute_script(OPEN_SOLUTIONS)
    for n, summaries in enumerate(toggles, start=1):
        for summary in summaries:
            driver.execute_script(
                "arguments[0].scrollIntoView({block: 'center'});", summary
            )
            summary.click()
        time.sleep(0.2)
        after = driver.execute_script(MEASURE)["solutions"][n - 1]
        if summaries and after["visible"] < after["parts"]:
            problems.append(
                f"{name}: solution {n} did not show when its toggle was clicked "
                f"({after['visible']} of "
                f"{after['parts']} parts shown)"
            )
    if toggles:  # what the opened solutions show must fit the column too
        opened = driver.execute_script(MEASURE)
        known = {pre["text"] for pre in page["wide"]}
        for pre in opened["wide"]:
            if pre["text"] not in known:
                problems.append(
                    f"{name}: code cell wider than the content column "
                    f"({pre['scroll']} px of content "
                    f"in {pre['client']} px; column {page['column']} px): "
                    f"{pre['text']!r}"
                )
        known_boxes = {(box["kind"], box["text"]) for box in page["boxes"]}
        for box in opened["boxes"]:
            if (box["kind"], box["text"]) not in known_boxes:
                problems.append(_box_problem(name, box))
    return problems


# ----------------------------------------------------------------------- the whole book


def book_pages(html: Path = HTML) -> list[Path]:
    if not (html / "index.html").exists():
        pytest.fail(f"No built book at {html}: {BUILD_HINT}.")
    return [
        html / "index.html",
        *sorted((html / "notebooks").glob("*.html")),
        *[
            html / f"{p}.html"
            for p in ("course", "glossary", "status")
            if (html / f"{p}.html").exists()
        ],
    ]


@pytest.fixture(scope="module")
def browser():
    if not (
        HTML / "index.html"
    ).exists():  # say what is missing before starting a browser
        pytest.fail(f"No built book at {HTML}: {BUILD_HINT}.")
    driver = start_browser()
    try:
        yield driver
    finally:
        driver.quit()


def test_every_page_renders_in_a_browser(browser):
    pages = book_pages()
    chapters = [p for p in pages if p.parent.name == "notebooks"]
    assert len(chapters) >= 7, "every chapter page must be built"
    problems = []
    with serve(HTML) as base:
        for page in pages:
            relative = page.relative_to(HTML)
            shot = SHOTS / f"{page.stem}.png"
            problems += check_page(
                browser,
                f"{base}/{relative.as_posix()}",
                str(relative),
                shot=shot,
                require_solution=page in chapters,
            )
            assert shot.stat().st_size > 0
    assert not problems, "what a reader of the book would see go wrong:\n" + "\n".join(
        problems
    )


# -------------------------------------- the checker finds each problem on a broken copy


def _example_chapter(html: Path) -> Path:
    """A chapter page with math, a figure and a solution: the page the broken copies are
    made from."""
    for page in book_pages(html):
        text = page.read_text()
        if (
            page.parent.name == "notebooks"
            and 'class="math' in text
            and "_images/" in text
            and "# Solution" in text
        ):
            return page
    pytest.fail(
        f"No chapter page of {html} has math, a figure and a solution to break: "
        f"{BUILD_HINT}."
    )


def _copy_book(folder: Path) -> tuple[Path, Path]:
    book_pages()
    copy = folder / "html"
    shutil.copytree(HTML, copy, ignore=shutil.ignore_patterns("_sources", "*.ipynb"))
    return copy, _example_chapter(copy)


def _check_copy(browser, copy: Path, page: Path) -> list[str]:
    with serve(copy) as base:
        return check_page(
            browser, f"{base}/{page.relative_to(copy).as_posix()}", page.name
        )


@pytest.fixture(scope="module")
def intact(browser, tmp_path_factory) -> set[str]:
    """What the checker says about the intact page: each test below looks only at what
    its breakage adds."""
    return set(_check_copy(browser, *_copy_book(tmp_path_factory.mktemp("intact"))))


@pytest.fixture
def book_copy(tmp_path):
    """A copy of the built book in a temporary folder, and the chapter page in it to
    break."""
    return _copy_book(tmp_path)


def _new_problems(browser, book_copy, intact: set[str]) -> list[str]:
    return [p for p in _check_copy(browser, *book_copy) if p not in intact]


def _edit(page: Path, pattern: str, replacement: str, count: int = 1) -> None:
    text = page.read_text()
    new, n = re.subn(pattern, replacement, text, count=count, flags=re.S)
    assert n, (
        f"{pattern!r} not found in {page}: the built page's layout changed; "
        "update this test"
    )
    page.write_text(new)


def test_missing_figure_is_reported(browser, book_copy, intact):
    copy, page = book_copy
    image = re.search(
        r'<img[^>]*src="(?:\.\./)*(_images/[^"]+)"', page.read_text()
    ).group(1)
    (copy / image).unlink()
    problems = _new_problems(browser, book_copy, intact)
    assert any(
        "image did not load" in p and image.split("/")[-1] in p for p in problems
    ), problems


def test_untypeset_math_is_reported(browser, book_copy, intact):
    copy, page = book_copy
    _edit(page, r'<script[^>]*src="[^"]*mathjax[^"]*"[^>]*>\s*</script>', "", count=0)
    problems = _new_problems(browser, book_copy, intact)
    assert any("math elements not typeset by MathJax" in p for p in problems), problems
    assert any("raw math delimiters left in the text" in p for p in problems), problems


def test_solution_shown_before_opening_is_reported(browser, book_copy, intact):
    copy, page = book_copy
    _edit(
        page,
        r'<details class="([^"]*)">(\s*<summary[^>]*>\s*<p[^>]*>Show solution)',
        r'<details class="\1" open>\2',
    )
    problems = _new_problems(browser, book_copy, intact)
    assert any("solution 1 is visible before it is opened" in p for p in problems), (
        problems
    )


def test_solution_output_outside_its_toggle_is_reported(browser, book_copy, intact):
    # the layout of the old 'hide-input' tag: the code is behind the toggle, its output
    # (the answer) is not
    copy, page = book_copy
    _edit(
        page,
        r"(Show solution.*?)"
        r'(<div class="cell_output docutils container">.*?</div>\s*</div>\s*)'
        r"(</details>)",
        r"\1\3\2",
    )
    problems = _new_problems(browser, book_copy, intact)
    assert any("solution 1 is visible before it is opened" in p for p in problems), (
        problems
    )


def test_error_output_is_reported(browser, book_copy, intact):
    copy, page = book_copy
    traceback = (
        '<div class="cell_output docutils container"><div class="output '
        'traceback highlight-ipythontb">'
        '<div class="highlight"><pre>Traceback (most recent call '
        "last)\nValueError: broken on purpose</pre>"
        "</div></div></div>"
    )
    _edit(page, r'(<div class="cell_input docutils container">)', traceback + r"\1")
    problems = _new_problems(browser, book_copy, intact)
    assert any(
        "error output in a cell" in p and "broken on purpose" in p for p in problems
    ), problems


def test_overflowing_code_cell_is_reported(browser, book_copy, intact):
    copy, page = book_copy
    _edit(
        page,
        r'(<div class="cell_input docutils container">\s*'
        r'<div class="highlight[^"]*"><div class="highlight">'
        r"<pre>)",
        r"\1overlong = " + "9" * 300 + "\n",
    )
    problems = _new_problems(browser, book_copy, intact)
    assert any(
        "code cell wider than the content column" in p and "overlong = 999" in p
        for p in problems
    ), problems


WIDE_TABLE = (
    '<table class="docutils" id="too-wide"><thead><tr>'
    + "".join(f"<th>column_{i:02d}_with_a_long_name</th>" for i in range(30))
    + "</tr></thead><tbody><tr>"
    + "".join(f"<td>{i}.000</td>" for i in range(30))
    + "</tr></tbody></table>"
)


def test_wide_output_table_scrolls_inside_the_column(browser, book_copy, intact):
    # a too-wide table where pandas puts one, in a cell output: it scrolls in the column
    copy, page = book_copy
    output = (
        '<div class="cell_output docutils container">'
        f'<div class="output text_html">{WIDE_TABLE}</div></div>'
    )
    _edit(page, r'(<div class="cell_input docutils container">)', output + r"\1")
    problems = _new_problems(browser, book_copy, intact)
    assert not problems, problems


def test_too_wide_table_is_reported(browser, book_copy, intact):
    # the same table in the prose, outside any box that scrolls (as raw HTML in a
    # Markdown cell would put it)
    copy, page = book_copy
    _edit(page, r"(<article[^>]*>.*?<h1[^>]*>.*?</h1>)", r"\1" + WIDE_TABLE)
    problems = _new_problems(browser, book_copy, intact)
    assert any(
        ": table is wider than the content column" in p
        and "column_00_with_a_long_name" in p
        for p in problems
    ), problems


def test_too_wide_figure_is_reported(browser, book_copy, intact):
    copy, page = book_copy
    _edit(
        page,
        r'<img ([^>]*src="(?:\.\./)*_images/)',
        r'<img style="width: 2400px; max-width: none" \1',
    )
    problems = _new_problems(browser, book_copy, intact)
    assert any(
        ": figure " in p and "wider than the content column" in p for p in problems
    ), problems


BUILD_LABEL = (BROWSER_JS / "build_label.js").read_text()


def test_front_page_and_every_chapter_say_what_they_were_executed_on(browser):
    """The build's note (helpers.execute) right under each page's title: profile, data
    and their checksums."""
    pages = [
        p
        for p in book_pages()
        if p.name == "index.html" or p.parent.name == "notebooks"
    ]
    problems = []
    with serve(HTML) as base:
        for page in pages:
            relative = page.relative_to(HTML).as_posix()
            browser.get(f"{base}/{relative}")
            found = browser.execute_script(BUILD_LABEL)
            if not found:
                problems.append(
                    f"{relative}: no note saying which profile and data the page was "
                    "executed on"
                )
                continue
            if found["height"] <= 0 or "profile" not in found["text"]:
                problems.append(
                    f"{relative}: the build note is empty or hidden: "
                    f"{found['text'][:80]!r}"
                )
            if found["h2"] is not None and found["top"] > found["h2"]:
                problems.append(
                    f"{relative}: the build note is not in the page's first lines "
                    "(below the first section)"
                )
            if page.parent.name == "notebooks" and "Data it read" not in found["text"]:
                problems.append(
                    f"{relative}: the build note does not list the data the chapter "
                    "read"
                )
    assert not problems, "\n".join(problems)


FRONT_PAGE = (BROWSER_JS / "front_page.js").read_text()

OPEN_NOTE = (BROWSER_JS / "open_note.js").read_text()


def test_front_page_shows_the_figure_and_folds_the_provenance(browser):
    """Issue 33: the front page leads with the figure (loaded, above the first section)
    and its answer; the build's provenance table is folded and opens when clicked."""
    with serve(HTML) as base:
        browser.get(f"{base}/index.html")
        browser.execute_async_script(SETTLE)
        found = browser.execute_script(FRONT_PAGE)
        assert found["figure"], "the front page has no figure1 image"
        assert found["figure"]["ok"] and found["figure"]["shown"], found["figure"]
        assert found["figure"]["above_h2"], "the figure is not above the first section"
        assert found["answer"], "the answer under the figure is missing"
        assert found["note"] and not found["note"]["table_shown"], (
            "the build's provenance must be folded",
            found["note"],
        )
        browser.execute_script(OPEN_NOTE)
        time.sleep(1)
        opened = browser.execute_script(FRONT_PAGE)["note"]
        chapters = len(list((ROOT / "notebooks").glob("*.ipynb")))
        assert opened["table_shown"] and opened["rows"] == chapters + 1, opened
