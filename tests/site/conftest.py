"""The built site (``_build/html``) served on loopback, and a real browser to read it.

These tests check the site as readers get it (issue 12). They need the book built
first (``make test`` builds it; ``make unit`` leaves them out) and Debian's Chromium
(``apt-get install chromium``; elsewhere set ``CHROMIUM`` to a Chrome or Chromium
binary). Playwright drives that browser; it never downloads one of its own.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import threading

import pytest
from _site import SITE, site_pages


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # one line per request would drown pytest's output
        pass


@pytest.fixture(scope="session")
def origin():
    """The site's address: a static server on a free loopback port."""
    site_pages()  # fail early and clearly without a built site
    handler = functools.partial(_QuietHandler, directory=str(SITE))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def chromium_path() -> str:
    path = os.environ.get("CHROMIUM") or shutil.which("chromium")
    if not path:
        raise RuntimeError(
            "the site tests need Chromium: `apt-get install chromium` (Debian), or "
            "set CHROMIUM to the path of a Chrome or Chromium binary"
        )
    return path


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start
        launched = playwright.chromium.launch(
            executable_path=chromium_path(), args=["--no-sandbox"]
        )
        yield launched
        launched.close()


@pytest.fixture
def context(browser):
    """A fresh browser profile (no stored tab choice, no cache) per test."""
    fresh = browser.new_context(viewport={"width": 1280, "height": 900})
    yield fresh
    fresh.close()
