"""The built book in a real browser: every chapter page loads, figures load, math renders, no error output.

Opens ``_build/html`` (made by ``scripts/build_book.sh``) in headless Chromium, driven over the Chrome
DevTools protocol (``websocket-client``), and saves a screenshot of each page to ``_build/screenshots/``.
Chromium comes from Debian (``apt-get install chromium``; the build script installs it where apt-get is
available). Without a built book or a browser this test fails and says what to do; set
``PERTURBBOOK_SKIP_BROWSER=1`` to skip it deliberately.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
SHOTS = ROOT / "_build" / "screenshots"

pytestmark = pytest.mark.skipif(os.environ.get("PERTURBBOOK_SKIP_BROWSER") == "1",
                                reason="PERTURBBOOK_SKIP_BROWSER=1 was set")

CHECK = r"""
(() => {
  const imgs = Array.from(document.querySelectorAll('main img, article img'));
  const broken = imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src);
  const text = (document.querySelector('main') || document.body).innerText;
  return JSON.stringify({
    title: document.title,
    images: imgs.length, broken: broken,
    mathjax: document.querySelectorAll('mjx-container').length,
    math_nodes: document.querySelectorAll('.math').length,
    raw_math: (text.match(/\\\(|\\\[|\$\$/g) || []).length,
    errors: document.querySelectorAll('.output.error, .output.traceback, div.cell_output .ansi-red-fg').length
            + (text.match(/Traceback \(most recent call last\)/g) || []).length,
  });
})()
"""


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    pytest.fail("No Chromium found: install it (Debian: apt-get install chromium), or set PERTURBBOOK_SKIP_BROWSER=1.")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Browser:
    def __init__(self):
        import websocket

        self.port = _free_port()
        self.profile = tempfile.mkdtemp(prefix="chromium-")
        self.proc = subprocess.Popen(
            [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--no-first-run", "--disable-sync", "--allow-file-access-from-files",
             f"--user-data-dir={self.profile}", f"--remote-debugging-port={self.port}", "--window-size=1200,1600",
             "about:blank"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 30
        while True:
            try:
                targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{self.port}/json", timeout=2))
                page = next(t for t in targets if t["type"] == "page")
                break
            except Exception:
                if time.time() > deadline:
                    raise RuntimeError("Chromium did not start its DevTools endpoint within 30 s")
                time.sleep(0.3)
        self.ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=60)
        self.counter = 0

    def call(self, method, **params):
        self.counter += 1
        self.ws.send(json.dumps({"id": self.counter, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == self.counter:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    def open(self, url: str, settle: float = 20.0) -> dict:
        self.call("Page.enable")
        self.call("Page.navigate", url=url)
        deadline = time.time() + settle
        report = {}
        while time.time() < deadline:  # wait until MathJax has typeset the page (or time runs out)
            time.sleep(0.5)
            value = self.call("Runtime.evaluate", expression=CHECK, returnByValue=True)["result"].get("value")
            if value:
                report = json.loads(value)
                if report["math_nodes"] == 0 or report["mathjax"] > 0:
                    time.sleep(0.5)
                    report = json.loads(self.call("Runtime.evaluate", expression=CHECK, returnByValue=True)["result"]["value"])
                    break
        return report

    def screenshot(self, path: Path):
        data = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=False)["data"]
        path.write_bytes(base64.b64decode(data))

    def close(self):
        try:
            self.ws.close()
        finally:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            shutil.rmtree(self.profile, ignore_errors=True)


def pages() -> list[Path]:
    if not (HTML / "index.html").exists():
        pytest.fail(f"No built book at {HTML}: run 'bash scripts/build_book.sh' first.")
    return [HTML / "index.html", *sorted((HTML / "notebooks").glob("*.html")),
            *[HTML / f"{p}.html" for p in ("course", "glossary", "status") if (HTML / f"{p}.html").exists()]]


def test_every_page_renders_in_a_browser():
    targets = pages()
    assert len([p for p in targets if p.parent.name == "notebooks"]) >= 7, "every chapter page must be built"
    SHOTS.mkdir(parents=True, exist_ok=True)
    browser = Browser()
    problems = []
    try:
        for page in targets:
            report = browser.open(page.as_uri())
            browser.screenshot(SHOTS / f"{page.stem}.png")
            name = page.relative_to(HTML)
            if report.get("broken"):
                problems.append(f"{name}: images that did not load: {report['broken'][:3]}")
            if report.get("math_nodes", 0) and not report.get("mathjax"):
                problems.append(f"{name}: {report['math_nodes']} math nodes but nothing typeset by MathJax")
            if report.get("raw_math"):
                problems.append(f"{name}: {report['raw_math']} raw math delimiters left in the text")
            if report.get("errors"):
                problems.append(f"{name}: {report['errors']} error outputs")
            if page.parent.name == "notebooks" and report.get("images", 0) == 0:
                problems.append(f"{name}: a chapter page without any figure")
    finally:
        browser.close()
    assert not problems, "\n".join(problems)
