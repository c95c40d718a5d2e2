"""How long the whole book takes to execute, against one run of the study's own code.

The book build and nbval each execute every chapter, and students wait for the book on
their laptops, so its run time is measured against a fixed yardstick: one 200-epoch
run of the original study's code ported naively to Keras 3 (``model.fit`` on NumPy
arrays, :func:`keras_fit.run_naive_keras`), timed in this same job after the chapters.
The budget: the complete book, with every chapter still planned, under 20 times that
run (less than running the study's 24 single-seed experiments once). The first six
chapters were held to 10 times (issue 8: 167 s against 19.6 s, 8.5 times, when they were
the whole book).

Every chapter of ``_toc.yml`` runs as the build runs it: its MyST source converted by
jupytext, executed by nbclient in a fresh Python kernel with ``TQDM_DISABLE=1``, from
the repository root's ``chapters/`` folder. The report gives each chapter's seconds
(kernel start included), its slowest cells (from nbclient's own timestamps), the total,
the yardstick and the ratio. The last line reads
``book: X s, naive keras run: Y s, ratio: Z``.

Run from the repository root::

    .venv/bin/python benchmarks/book.py [--top 3] [--chapters lr_sweep robustness]
"""

from __future__ import annotations

import argparse
import os
import time
from datetime import datetime
from pathlib import Path

import jupytext
import nbclient
import yaml
from _cli import positive_int

ROOT = Path(__file__).resolve().parent.parent
BUDGET_RATIO = 20  # the complete book, planned chapters included


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--top", type=positive_int, default=3, help="slowest cells shown (3)"
    )
    parser.add_argument(
        "--chapters",
        nargs="*",
        help="chapter names to run (default: every chapter of _toc.yml)",
    )
    return parser.parse_args(argv)


def toc_chapters() -> list[Path]:
    """The book's executed pages in reading order: MyST notebooks, i.e. the ``.md``
    files of ``_toc.yml`` whose front matter names a kernel (as myst-nb decides)."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in [toc, *toc.get("parts", [])]:
        files += [entry["file"] for entry in part.get("chapters", [])]
    return [ROOT / f"{name}.md" for name in files if is_notebook(ROOT / f"{name}.md")]


def is_notebook(path: Path) -> bool:
    text = path.read_text()
    if not text.startswith("---"):
        return False
    front_matter = yaml.safe_load(text.split("---", 2)[1]) or {}
    return "kernelspec" in front_matter


def cell_seconds(cell) -> float:
    """A cell's execution time from nbclient's timestamps (0 if it did not run)."""
    timing = cell.get("metadata", {}).get("execution", {})
    start, end = timing.get("iopub.execute_input"), timing.get("shell.execute_reply")
    if not (start and end):
        return 0.0
    parse = datetime.fromisoformat
    return (parse(end.rstrip("Z")) - parse(start.rstrip("Z"))).total_seconds()


def execute(path: Path) -> tuple[float, list[tuple[float, str]]]:
    """Seconds to execute one chapter in a fresh kernel, and (seconds, first line)
    of each code cell."""
    notebook = jupytext.read(path)
    client = nbclient.NotebookClient(
        notebook,
        timeout=1800,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    start = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - start
    cells = [
        (cell_seconds(cell), cell.source.strip().splitlines()[0][:60])
        for cell in notebook.cells
        if cell.cell_type == "code" and cell.source.strip()
    ]
    return seconds, cells


def naive_keras_seconds() -> float:
    """One 200-epoch run of the study's code ported naively to Keras 3, after an
    untimed 2-epoch warm-up (TensorFlow's one-off start-up is not the yardstick)."""
    from keras_fit import run_naive_keras

    from lrtools import data

    split = data.make_blobs_split()
    run_naive_keras(split, 2, seed=0)
    start = time.perf_counter()
    run_naive_keras(split, 200, seed=1)
    return time.perf_counter() - start


def main(argv=None) -> None:
    args = parse_args(argv)
    os.environ["TQDM_DISABLE"] = "1"  # inherited by the kernels, as in the build
    os.environ.setdefault("PYTHONHASHSEED", "0")
    from lrtools import _replicas_kernel

    print(f"CPU: {_replicas_kernel.describe_cpu()}; cores: {os.cpu_count()}")
    chapters = toc_chapters()
    if args.chapters:
        chapters = [c for c in chapters if c.stem in args.chapters]
    total = 0.0
    for path in chapters:
        seconds, cells = execute(path)
        total += seconds
        print(f"{path.stem}: {seconds:.0f} s")
        for cell_time, first_line in sorted(cells, reverse=True)[: args.top]:
            print(f"    {cell_time:6.1f} s  {first_line}")
    naive = naive_keras_seconds()
    ratio = total / naive
    verdict = "within" if ratio < BUDGET_RATIO else "ABOVE"
    left = BUDGET_RATIO * naive - total
    print(
        f"{verdict} the budget of {BUDGET_RATIO} naive runs for the complete book "
        f"({left:.0f} s left for the chapters still planned)"
    )
    print(f"book: {total:.0f} s, naive keras run: {naive:.1f} s, ratio: {ratio:.1f}")


if __name__ == "__main__":
    main()
