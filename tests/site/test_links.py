"""No broken internal link or anchor anywhere in the built site (issue 12).

Every ``href`` and ``src`` of every page that stays inside the site (cross-references,
figure references, the table of contents, downloads, scripts, styles, images) must name
a file of the build, and its ``#anchor``, if any, an ``id`` in that file. Read from the
HTML the build wrote, without a browser.
"""

from __future__ import annotations

from functools import cache
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from _site import SITE, site_pages

LINKING = {"a": "href", "link": "href", "img": "src", "script": "src", "source": "src"}


class _Page(HTMLParser):
    """The links and the anchor ids of one HTML file."""

    def __init__(self):
        super().__init__()
        self.links: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.ids.add(attrs["id"])
        if tag == "a" and attrs.get("name"):
            self.ids.add(attrs["name"])
        target = attrs.get(LINKING.get(tag, ""))
        if target:
            self.links.append(target)


@cache
def parsed(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def broken_links(name: str) -> list[str]:
    source = SITE / name
    problems = []
    for link in parsed(source).links:
        parts = urlsplit(link)
        if parts.scheme or link.startswith("//"):  # http(s), mailto, data: not ours
            continue
        target = (
            (source.parent / unquote(parts.path)).resolve() if parts.path else source
        )
        if target.is_dir():
            target = target / "index.html"
        if not target.is_relative_to(SITE) or not target.is_file():
            problems.append(f"{link}: no such file")
        elif parts.fragment and target.suffix == ".html":
            if unquote(parts.fragment) not in parsed(target).ids:
                problems.append(f"{link}: no such anchor")
    return problems


@pytest.mark.parametrize("name", site_pages())
def test_every_internal_link_and_anchor_exists(name):
    problems = broken_links(name)
    assert not problems, f"{name}:\n" + "\n".join(problems)


def test_the_checker_finds_a_broken_link_and_a_broken_anchor(tmp_path, monkeypatch):
    import _site

    (tmp_path / "index.html").write_text(
        '<p id="here"><a href="#here">ok</a> <a href="#gone">anchor</a> '
        '<a href="missing.html">file</a> <a href="https://example.org">away</a>'
        '<img src="index.html"></p>'
    )
    monkeypatch.setattr(_site, "SITE", tmp_path)
    monkeypatch.setitem(globals(), "SITE", tmp_path)
    assert broken_links("index.html") == [
        "#gone: no such anchor",
        "missing.html: no such file",
    ]
