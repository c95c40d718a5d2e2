"""The site as readers get it: no console errors, accessible controls (issue 12).

A small Sphinx extension, loaded through ``_config.yml`` (``sphinx.local_extensions``),
that works around three defects of the theme stack jupyter-book 1 assembles, each found
by the browser tests in ``tests/site``:

- sphinx-thebe's configuration script is added to every page twice, and the second
  copy throws ``Identifier 'THEBE_JS_URL' has already been declared``: keep one;
- pydata-sphinx-theme logs ``Got invalid theme mode`` on a reader's first visit
  because jupyter-book sets no ``default_mode`` (an ``html_context`` value): set
  "auto" (follow the system);
- axe-core finds theme controls whose accessible name differs from their visible text,
  and link text too pale on a note's background: ``static/reader_site.js`` and
  ``static/reader_site.css`` fix them.
"""

from __future__ import annotations

from pathlib import Path

STATIC = Path(__file__).parent / "static"


def _default_mode(app, config) -> None:
    config.html_context.setdefault("default_mode", "auto")
    config.html_static_path = [*config.html_static_path, str(STATIC)]


def _one_copy_of_each_script(app, pagename, templatename, context, doctree) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for script in scripts:
        attributes = getattr(script, "attributes", {})
        key = (
            getattr(script, "filename", None) or "",  # None and "" both mean inline
            tuple(sorted(attributes.items())),
        )
        if key not in seen:
            seen.add(key)
            unique.append(script)
    scripts[:] = unique


def setup(app):
    app.connect("config-inited", _default_mode)
    # late: after every extension has added its scripts to the page
    app.connect("html-page-context", _one_copy_of_each_script, priority=900)
    app.add_css_file("reader_site.css")
    app.add_js_file("reader_site.js")
    return {"parallel_read_safe": True, "parallel_write_safe": True}
