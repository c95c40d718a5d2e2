"""A chapter opened and run in JupyterLab reads as on the site (issue 13).

``make lab`` opens ``chapters/`` in JupyterLab, where jupytext shows a chapter (.md) as
a notebook and jupyterlab-myst renders its Markdown. This test does the same in
Chromium: it opens every chapter, runs all its cells, and checks what the student sees:

- every code cell ran (a numbered prompt), none raised;
- no raw or unknown MyST: no role or fence left as text, no "Unknown Directive" box,
  no eval role that failed, no cross-reference left unresolved (its label as text);
- every figure displayed: as many images in the rendered text as the chapter has
  ``{figure}`` directives, and no image anywhere that failed to load.

A screenshot of each whole notebook lands in ``_build/screenshots/lab/`` to look at.
The chapters run in the kernel here as in the book build, so this takes about as long.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from _site import SCREENSHOTS
from playwright.sync_api import TimeoutError

BOOK = Path(__file__).resolve().parents[2]
# The chapters that are notebooks (a kernel), the ones a student runs; the intro, the
# course kit and the run-time table are pages of the site only.
CHAPTERS = sorted(
    p.name for p in (BOOK / "chapters").glob("*.md") if "kernelspec:" in p.read_text()
)
TOKEN = "lab-test"
RUN_LIMIT_MS = (
    int(os.environ.get("LAB_RUN_LIMIT_S", 15 * 60)) * 1000
)  # the slowest chapter runs in about 1.5 minutes

# What `make lab` sets (Makefile, LAB_SETTINGS: jupytext's notebook view for .md), plus
# every cell rendered at once (the test reads the whole notebook, not only what is
# scrolled into view), no autosave (jupytext would write a saved notebook back to its
# .md) and no news pop-up.
MAKE_LAB = json.loads(
    re.search(r"echo '(?P<json>\{.*\})' > \$@", (BOOK / "Makefile").read_text())["json"]
)
SETTINGS = {
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {
        **MAKE_LAB["@jupyterlab/docmanager-extension:plugin"],
        "autosave": False,
    },
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {
        "windowingMode": "none"
    },
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false"
    },
}

RAW_MYST = [
    (re.compile(r"\{[a-z][\w:-]*\}`"), "a role left as text"),
    (re.compile(r"```|:::"), "a fence left as text"),
    (re.compile(r"Unknown Directive|Unknown Role"), "MyST unknown to jupyterlab-myst"),
    (re.compile(r"\b\w+Error: "), "an eval role that failed"),
]
LABEL = re.compile(
    r"^\((?P<label>[\w-]+)\)=$|^:(?:name|label): (?P<option>[\w-]+)$", re.M
)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server on a copy of the chapters, with `make lab`'s settings.

    A copy, so that nothing the test does in JupyterLab can rewrite a chapter.
    """
    root = tmp_path_factory.mktemp("lab-root")
    shutil.copytree(BOOK / "chapters", root / "chapters")
    settings = tmp_path_factory.mktemp("lab-settings")
    for name, values in SETTINGS.items():
        path = settings / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    port = _free_port()
    log = open(settings / "server.log", "w")  # noqa: SIM115 (closed below)
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}",
         f"--ServerApp.token={TOKEN}", f"--ServerApp.root_dir={root}",
         f"--LabApp.user_settings_dir={settings}",
         f"--LabApp.workspaces_dir={settings}", "--allow-root"],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "TQDM_DISABLE": "1"},
    )  # fmt: skip
    origin = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            try:
                urllib.request.urlopen(f"{origin}/api/status?token={TOKEN}")
                break
            except OSError:
                time.sleep(0.5)
        else:
            raise RuntimeError(f"JupyterLab did not start: see {settings}/server.log")
        yield origin
    finally:
        server.terminate()
        server.wait(timeout=60)
        log.close()


def _run_all(page) -> None:
    # Restart and run all: the restart waits for a kernel that is ready to run cells
    # (Run All in a kernel still starting drops cells).
    page.locator("li.lm-MenuBar-item", has_text="Kernel").click()
    page.locator('li[data-command="runmenu:restart-and-run-all"]').click()
    page.locator(".jp-Dialog-button.jp-mod-accept").click()
    # Done when every code cell has run, or when some ran, none is queued or running
    # ("[*]") and the kernel is idle (Run All stops at a cell that raises).
    try:
        page.wait_for_function(
            """() => {
                const prompts = [...document.querySelectorAll(
                    '.jp-CodeCell .jp-InputPrompt')].map(p => p.textContent);
                const ran = prompts.filter(p => /\\[\\d+\\]/.test(p)).length;
                const busy = prompts.some(p => p.includes('*'));
                const status = document.querySelector(
                    '.jp-Notebook-ExecutionIndicator');
                const idle = status && status.getAttribute('data-status') === 'idle';
                return ran === prompts.length || (ran > 0 && !busy && idle);
            }""",
            timeout=RUN_LIMIT_MS,
            polling=1000,
        )
    except TimeoutError as timeout:
        prompts = page.locator(".jp-CodeCell .jp-InputPrompt").all_inner_texts()
        raise AssertionError(f"Run All did not finish: prompts {prompts}") from timeout


def _screenshot(page, chapter: str) -> None:
    height = page.evaluate(
        """() => Math.max(...['.jp-Notebook', '.jp-WindowedPanel-outer',
            '.jp-WindowedPanel-inner'].map(s => [...document.querySelectorAll(s)]
            .reduce((m, e) => Math.max(m, e.scrollHeight), 0)))"""
    )
    page.set_viewport_size({"width": 1280, "height": min(height + 200, 30000)})
    page.evaluate(
        "() => document.querySelectorAll('.jp-WindowedPanel-outer, .jp-Notebook')"
        ".forEach(e => e.scrollTop = 0)"
    )
    page.wait_for_timeout(1000)
    folder = SCREENSHOTS / "lab"
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"{Path(chapter).stem}.png"))


def test_the_chapters_are_notebooks():
    assert len(CHAPTERS) >= 10, CHAPTERS


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_a_chapter_opened_and_run_in_jupyterlab_reads_as_on_the_site(
    lab, browser, chapter
):
    source = (BOOK / "chapters" / chapter).read_text(encoding="utf-8")
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    try:
        # a workspace of its own, reset: nothing restored from an earlier chapter
        page.goto(
            f"{lab}/lab/workspaces/{Path(chapter).stem}/tree/chapters/{chapter}"
            f"?reset&token={TOKEN}"
        )
        page.wait_for_selector(
            ".jp-Notebook .jp-Cell", state="attached", timeout=120_000
        )
        page.get_by_text("Python 3 (ipykernel) | Idle").wait_for(timeout=120_000)
        _run_all(page)
        page.wait_for_timeout(2000)  # the last Markdown cells re-render
        _screenshot(page, chapter)

        prompts = page.locator(".jp-CodeCell .jp-InputPrompt").all_inner_texts()
        assert all(re.fullmatch(r"\s*\[\d+\]:\s*", p) for p in prompts), (
            f"not every code cell ran: {[p.strip() for p in prompts]}"
        )
        errors = page.locator(
            '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'
        ).all_inner_texts()
        assert not [e for e in errors if "Traceback" in e], errors

        text = "\n".join(page.locator(".jp-MarkdownCell .myst").all_inner_texts())
        assert text.strip(), "no Markdown rendered by jupyterlab-myst"
        for pattern, what in RAW_MYST:
            found = pattern.search(text)
            assert not found, (
                f"{what}: ...{text[max(found.start() - 80, 0) : found.end() + 80]}..."
            )
        labels = {m["label"] or m["option"] for m in LABEL.finditer(source)}
        shown = [label for label in labels if re.search(rf"\b{label}\b", text)]
        assert not shown, f"cross-references left unresolved: {shown}"

        figures = len(re.findall(r"^`{3,}\{figure\}", source, re.M))
        images = page.evaluate(
            """() => [...document.querySelectorAll('.jp-Notebook img')].map(img => ({
                inText: !!img.closest('.jp-MarkdownCell'),
                loaded: img.complete && img.naturalWidth > 0,
                src: img.src.slice(0, 80)}))"""
        )
        assert all(i["loaded"] for i in images), [i for i in images if not i["loaded"]]
        assert sum(i["inText"] for i in images) >= figures, (
            f"{figures} figures in the chapter, "
            f"{sum(i['inText'] for i in images)} shown in its text"
        )
    finally:
        context.close()
        _shut_down_kernels(lab)


def _shut_down_kernels(origin: str) -> None:
    """End every kernel of the server (a chapter's kernel is not needed after it)."""
    api = f"{origin}/api/sessions?token={TOKEN}"
    with urllib.request.urlopen(api) as response:
        sessions = json.load(response)
    for session in sessions:
        request = urllib.request.Request(
            f"{origin}/api/sessions/{session['id']}?token={TOKEN}", method="DELETE"
        )
        urllib.request.urlopen(request).close()
