"""Where the built site is, and which of its files are pages (for the site tests)."""

from __future__ import annotations

from pathlib import Path

SITE = Path(__file__).resolve().parents[2] / "_build" / "html"
SCREENSHOTS = SITE.parent / "screenshots"
# Folders of assets, not pages.
NOT_PAGES = {"_static", "_sources", "_images", "mathjax", "_downloads"}


def site_pages() -> list[str]:
    """Every HTML page of the built site, as paths relative to its root."""
    if not (SITE / "index.html").exists():
        raise RuntimeError(
            f"no built site in {SITE}: build the book first (`make book`)"
        )
    return sorted(
        path.relative_to(SITE).as_posix()
        for path in SITE.rglob("*.html")
        if path.relative_to(SITE).parts[0] not in NOT_PAGES
    )
