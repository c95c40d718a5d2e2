"""Grade a folder of submissions locally, without Docker: one table of scores.

``otter grade`` runs every submission in a Docker container; ``otter run`` grades one
submission in the current environment (this venv, with lrtools installed). This script
runs ``otter run`` on every submission of a folder (the zips that ``grader.export()``
writes, or bare ``.ipynb`` notebooks), a few at a time, and collects the scores::

    .venv/bin/python assignments/grade.py NAME FOLDER [--out grades.csv] [--jobs N]

It prints one row per submission (a column per question, then ``total`` and
``possible``) and writes the same table as CSV (default ``FOLDER/grades.csv``), with
each submission's full results (every test's message) in
``FOLDER/results/<file>.json``. A submission that cannot be graded at all (not a
notebook of this assignment) gets an empty row and its error in ``error``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import build  # noqa: E402  (a sibling script, not a package)

# otter's results.json lists the public tests once more under this name, unscored.
PUBLIC_SUMMARY = "Public Tests"


def run_otter(submission: Path, autograder: Path) -> dict:
    """``otter run`` on one submission; its results.json (otter's Gradescope format)."""
    with tempfile.TemporaryDirectory() as out:
        done = subprocess.run(
            [
                str(build.BIN / "otter"),
                "run",
                "--no-logo",
                "-a",
                str(autograder),
                "-o",
                out,
                str(submission),
            ],
            capture_output=True,
            text=True,
        )
        results = Path(out) / "results.json"
        if not results.exists():
            return {"error": (done.stdout + done.stderr)[-2000:]}
        return json.loads(results.read_text())


def scores(results: dict) -> dict[str, float]:
    """Points per question from otter's results (public and hidden tests together)."""
    return {
        test["name"]: float(test["score"])
        for test in results.get("tests", [])
        if test["name"] != PUBLIC_SUMMARY and "score" in test
    }


def submissions(folder: Path) -> list[Path]:
    """The gradable files of ``folder``: zips and notebooks, sorted by name."""
    return sorted(p for p in folder.iterdir() if p.suffix in (".zip", ".ipynb"))


def grade_folder(
    folder: Path, autograder: Path, *, jobs: int = 2, out: Path | None = None
) -> pd.DataFrame:
    """Grade every submission in ``folder``; one row per file, indexed by its name.

    Writes the table to ``out`` (default ``folder/grades.csv``) and each submission's
    results to ``folder/results/<file>.json``.
    """
    folder, autograder = Path(folder), Path(autograder)
    if not folder.is_dir():
        raise ValueError(f"folder must be a directory of submissions, got {folder}")
    if not autograder.is_file():
        raise ValueError(f"autograder must be an autograder zip, got {autograder}")
    if jobs < 1:
        raise ValueError(f"jobs must be an integer >= 1, got {jobs}")
    files = submissions(folder)
    with ThreadPoolExecutor(jobs) as pool:
        all_results = list(pool.map(lambda f: run_otter(f, autograder), files))
    (folder / "results").mkdir(exist_ok=True)
    rows = []
    for file, results in zip(files, all_results, strict=True):
        (folder / "results" / f"{file.name}.json").write_text(
            json.dumps(results, indent=1)
        )
        row = {"file": file.name, **scores(results)}
        if "error" in results:
            # The last line of otter's traceback: "...OtterRuntimeError: <why>".
            row["error"] = results["error"].strip().splitlines()[-1].split(": ", 1)[-1]
        rows.append(row)
    possible = _possible(autograder)
    questions = sorted(possible)
    table = (
        pd.DataFrame(rows)
        .set_index("file")
        .reindex(
            columns=[*questions, "error"]
            if "error" in pd.DataFrame(rows)
            else questions
        )
    )
    # A submission otter could not grade (another assignment's notebook) scores nothing.
    table[questions] = table[questions].fillna(0.0)
    table.insert(len(questions), "total", table[questions].sum(axis=1))
    table.insert(len(questions) + 1, "possible", sum(possible.values()))
    table.to_csv(out if out is not None else folder / "grades.csv")
    return table


def _possible(autograder: Path) -> dict[str, float]:
    """Points of each question, read from the test files in the autograder zip."""
    import zipfile

    points = {}
    with zipfile.ZipFile(autograder) as bundle:
        for name in bundle.namelist():
            if name.startswith("tests/") and name.endswith(".py"):
                text = bundle.read(name).decode()
                line = next(x for x in text.splitlines() if x.startswith("points = "))
                points[Path(name).stem] = float(line.split("=", 1)[1])
    return points


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", help=f"the assignment, one of {build.names()}")
    parser.add_argument("folder", type=Path, help="a folder of submissions")
    parser.add_argument("--autograder", type=Path, help="default: the built one")
    parser.add_argument("--build-dir", type=Path, default=build.DEFAULT_OUT)
    parser.add_argument("--out", type=Path, help="CSV path (default FOLDER/grades.csv)")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args(argv)
    autograder = args.autograder or build.autograder_zip(args.build_dir, args.name)
    table = grade_folder(args.folder, autograder, jobs=args.jobs, out=args.out)
    with pd.option_context("display.width", 200, "display.max_columns", None):
        print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
