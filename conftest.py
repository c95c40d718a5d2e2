"""pytest settings for nbval on the executed chapters (_build/jupyter_execute)."""

# myst-nb keeps glue outputs out of the notebooks it writes, so a re-run cell that
# glues has an output the reference lacks. Glued values are checked by each
# chapter's own assert cells.
GLUE_MIME_TYPES = tuple(
    f"application/papermill.record/{mime}"
    for mime in (
        "text/plain",
        "text/html",
        "text/markdown",
        "text/latex",
        "image/png",
        "image/svg+xml",
        "application/json",
    )
)


def pytest_collectstart(collector):
    if (
        getattr(collector, "path", None) is not None
        and collector.path.suffix == ".ipynb"
    ):
        collector.skip_compare += GLUE_MIME_TYPES
