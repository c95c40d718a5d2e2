"""Build every assignment: the student notebook, the solution, the autograder zip.

Each ``assignments/<name>/<name>.md`` is a MyST Markdown notebook in otter's assign
format (``otter`` fenced blocks mark the assignment config, questions, solutions and
tests). jupytext converts it to ``.ipynb``, then ``otter assign`` writes::

    _build/assignments/<name>/student/<name>.ipynb       the handout
    _build/assignments/<name>/autograder/<name>.ipynb    the solution
    _build/assignments/<name>/autograder/<name>-autograder.zip    for grade.py

``otter assign`` runs every test, public and hidden, on the solution and fails if one
fails: a build that finishes is a build whose solutions pass. Usage::

    .venv/bin/python assignments/build.py [NAME ...] [--out DIR] [--jobs N]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jupytext

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE.parent / "_build" / "assignments"
# Scripts of the interpreter running this one, so that the venv's otter is the one used.
BIN = Path(sys.executable).parent


def names() -> list[str]:
    """Every assignment: a folder of ``assignments/`` holding ``<folder>.md``."""
    return sorted(p.parent.name for p in HERE.glob("*/*.md") if p.stem == p.parent.name)


def autograder_zip(out: Path, name: str) -> Path:
    """The autograder bundle of a built assignment."""
    return out / name / "autograder" / f"{name}-autograder.zip"


def build_one(name: str, out: Path = DEFAULT_OUT, *, run_tests: bool = True) -> Path:
    """Convert and assign one assignment into ``out/<name>``; return that folder.

    Raises ``RuntimeError`` with otter's output if ``otter assign`` fails (a solution
    that fails a test, a malformed block).
    """
    if name not in names():
        raise ValueError(f"name must be one of {names()}, got {name!r}")
    target = out / name
    shutil.rmtree(target, ignore_errors=True)
    source_dir = out / ".sources" / name
    shutil.rmtree(source_dir, ignore_errors=True)
    source_dir.mkdir(parents=True)
    # otter names the student and solution notebooks after the master notebook.
    master = source_dir / f"{name}.ipynb"
    jupytext.write(jupytext.read(HERE / name / f"{name}.md"), master)
    command = [str(BIN / "otter"), "assign", master.name, str(target.resolve())]
    if not run_tests:
        command.append("--no-run-tests")
    done = subprocess.run(command, cwd=source_dir, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(
            f"otter assign failed for {name}:\n{done.stdout}\n{done.stderr}"
        )
    # otter stamps the zip with the build time; a fixed name keeps the commands simple.
    (stamped,) = (target / "autograder").glob(f"{name}-autograder_*.zip")
    stamped.rename(autograder_zip(out, name))
    return target


def build(
    selected: list[str] | None = None,
    out: Path = DEFAULT_OUT,
    *,
    jobs: int = 2,
    run_tests: bool = True,
) -> list[Path]:
    """Build the ``selected`` assignments (default: all) with ``jobs`` in parallel."""
    selected = names() if not selected else selected
    if jobs < 1:
        raise ValueError(f"jobs must be an integer >= 1, got {jobs}")
    with ThreadPoolExecutor(jobs) as pool:
        return list(
            pool.map(lambda n: build_one(n, out, run_tests=run_tests), selected)
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"default: all of {names()}")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args(argv)
    for folder in build(args.names, args.out, jobs=args.jobs):
        name = folder.name
        print(f"{name}: {folder / 'student' / (name + '.ipynb')}")
        print(f"{' ' * len(name)}  {autograder_zip(args.out, name)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
