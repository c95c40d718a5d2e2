"""The course kit: every assignment builds, its solution passes, its blanks and its
plausible mistakes fail with a message that says where to look, and grading a folder of
submissions gives one table with the expected scores.

One session build (``otter assign`` into a tmp dir) and one graded folder per assignment
(solution zipped as ``grader.export()`` does, the student notebook as handed out, the
solution with one plausible mistake) serve every test: about 15 ``otter run`` calls.
"""

from __future__ import annotations

import json
import re
import sys
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "assignments"))
import build  # noqa: E402  (assignments/ holds scripts, not a package)
import grade  # noqa: E402


@dataclass(frozen=True)
class Mistake:
    """A plausible wrong answer: ``old`` replaced by ``new`` in one solution cell."""

    old: str
    new: str
    lost: dict[str, float]  # points each question must lose, exactly
    hint: str  # what the failing test's message must tell the student


MISTAKES = {
    # Curvatures read off the diagonal instead of the eigenvalues.
    "gd_stability": Mistake(
        old="eta_max = 2 / curvatures.max()",
        new="eta_max = 2 / H.diagonal().max()",
        lost={"q1": 1.0},
        hint="its curvatures are its eigenvalues",
    ),
    # Keras's momentum written in PyTorch's form (the rate outside the velocity).
    "momentum_forms": Mistake(
        old="        v = m * v - lr * gradient(w)\n        w = w + v\n",
        new="        v = m * v + gradient(w)\n        w = w - lr * v\n",
        lost={"q1": 1.0, "q2": 1.0, "q3": 1.0},
        hint="where the learning rate enters your update",
    ),
    # An off-by-one epoch: the schedule called with 1-based epochs in Keras.
    "warmup_cosine": Mistake(
        old="lambda epoch, lr: float(warmup_cosine(epoch))",
        new="lambda epoch, lr: float(warmup_cosine(epoch + 1))",
        lost={"q2": 3.0, "q3": 1.5},
        hint="with the epoch counted from 0",
    ),
    # The test set used for tuning.
    "plateau_moons": Mistake(
        old="tuning_split = data.carve_validation(moons, n_validation=100)",
        new="tuning_split = moons",
        lost={"q1": 2.0, "q2": 1.5, "q3": 1.5},
        hint="tune on a validation set carved from the training points",
    ),
    # A single seed: the claim's own run.
    "retest_claim": Mistake(
        old="retest_seeds = range(200)",
        new="retest_seeds = [0]",
        lost={"q2": 4.0, "q3": 2.0},
        hint="One seed (the post's) is one draw of the luck",
    ),
}
NAMES = build.names()
RIGHT, WRONG, EMPTY = "right.zip", "wrong.ipynb", "empty.ipynb"


def test_every_assignment_has_a_mistake():
    assert len(NAMES) >= 5
    assert sorted(MISTAKES) == NAMES


@pytest.fixture(scope="session")
def built(tmp_path_factory) -> Path:
    """Every assignment assigned into a tmp dir (the solutions are graded below)."""
    out = tmp_path_factory.mktemp("assignments")
    build.build(NAMES, out, jobs=2, run_tests=False)
    return out


def with_mistake(solution: Path, mistake: Mistake) -> nbformat.NotebookNode:
    """The solution notebook with ``mistake`` made in exactly one cell."""
    nb = nbformat.read(solution, as_version=4)
    cells = [c for c in nb.cells if c.cell_type == "code" and mistake.old in c.source]
    assert len(cells) == 1, (
        f"{mistake.old!r} should be in exactly one cell of {solution}"
    )
    cells[0].source = cells[0].source.replace(mistake.old, mistake.new)
    return nb


def make_submissions(built: Path, name: str, folder: Path) -> None:
    """Right (zipped, as grader.export() hands it in), wrong and empty submissions."""
    folder.mkdir()
    solution = built / name / "autograder" / f"{name}.ipynb"
    with zipfile.ZipFile(folder / RIGHT, "w") as bundle:
        bundle.write(solution, f"{name}.ipynb")
    nbformat.write(with_mistake(solution, MISTAKES[name]), folder / WRONG)
    (folder / EMPTY).write_bytes(
        (built / name / "student" / f"{name}.ipynb").read_bytes()
    )


@pytest.fixture(scope="session")
def graded(built, tmp_path_factory) -> dict:
    """Per assignment: the folder of three submissions and its table of scores."""

    def grade_one(name):
        folder = tmp_path_factory.mktemp(f"submissions-{name}") / "inbox"
        make_submissions(built, name, folder)
        return folder, grade.grade_folder(
            folder, build.autograder_zip(built, name), jobs=1
        )

    # Two folders at a time, one submission each: both cores busy to the end.
    with ThreadPoolExecutor(2) as pool:
        return dict(zip(NAMES, pool.map(grade_one, NAMES), strict=True))


def question_points(built: Path, name: str) -> dict[str, float]:
    return grade._possible(build.autograder_zip(built, name))


def output_of(folder: Path, submission: str, question: str) -> str:
    results = json.loads((folder / "results" / f"{submission}.json").read_text())
    (test,) = [t for t in results["tests"] if t["name"] == question]
    return test["output"]


@pytest.mark.parametrize("name", NAMES)
def test_build_writes_handout_solution_and_autograder(built, name):
    assert (built / name / "student" / f"{name}.ipynb").is_file()
    assert (built / name / "autograder" / f"{name}.ipynb").is_file()
    with zipfile.ZipFile(build.autograder_zip(built, name)) as bundle:
        tests = [n for n in bundle.namelist() if n.startswith("tests/")]
    assert len(tests) >= 3, "every assignment has at least three graded questions"


def case_visibility(built: Path, name: str) -> dict[str, bool]:
    """Test function name -> hidden, from the autograder zip's test files."""
    found = {}
    with zipfile.ZipFile(build.autograder_zip(built, name)) as bundle:
        for path in bundle.namelist():
            if path.startswith("tests/"):
                text = bundle.read(path).decode()
                pattern = r"@test_case\([^)]*hidden=(True|False)[^)]*\)\s*def (\w+)"
                for hidden, function in re.findall(pattern, text):
                    found[function] = hidden == "True"
    return found


@pytest.mark.parametrize("name", NAMES)
def test_hidden_tests_stay_out_of_the_handout(built, name):
    cases = case_visibility(built, name)
    hidden = [f for f, h in cases.items() if h]
    public = [f for f, h in cases.items() if not h]
    assert hidden and public, "each assignment has public and hidden tests"
    handout = (built / name / "student" / f"{name}.ipynb").read_text()

    def shipped(function):
        return re.search(rf"\b{function}\b", handout) is not None

    assert all(shipped(f) for f in public), "the public tests ship with the handout"
    leaked = [f for f in hidden if shipped(f)]
    assert not leaked, f"hidden tests in the student notebook: {leaked}"
    assert not (built / name / "student" / "tests").exists()


@pytest.mark.parametrize("name", NAMES)
def test_solution_passes_every_test(built, graded, name):
    folder, table = graded[name]
    points = question_points(built, name)
    row = table.loc[RIGHT]
    assert {q: row[q] for q in points} == points, output_of(folder, RIGHT, "q1")
    assert row["total"] == row["possible"] == sum(points.values())


@pytest.mark.parametrize("name", NAMES)
def test_blank_handout_scores_nothing(built, graded, name):
    _, table = graded[name]
    points = question_points(built, name)
    assert all(table.loc[EMPTY, q] == 0 for q in points)
    assert table.loc[EMPTY, "total"] == 0


@pytest.mark.parametrize("name", NAMES)
def test_plausible_mistake_loses_its_points_with_a_hint(built, graded, name):
    folder, table = graded[name]
    mistake = MISTAKES[name]
    points = question_points(built, name)
    lost = {q: points[q] - table.loc[WRONG, q] for q in points}
    assert lost == {q: mistake.lost.get(q, 0.0) for q in points}
    messages = "\n".join(output_of(folder, WRONG, q) for q in mistake.lost)
    assert mistake.hint in messages, messages


@pytest.mark.parametrize("name", NAMES)
def test_one_table_for_a_folder(built, graded, name):
    folder, table = graded[name]
    total = sum(question_points(built, name).values())
    expected = {
        RIGHT: total,
        WRONG: total - sum(MISTAKES[name].lost.values()),
        EMPTY: 0,
    }
    assert table["total"].to_dict() == expected
    on_disk = (folder / "grades.csv").read_text().splitlines()
    assert len(on_disk) == 4 and on_disk[0].startswith("file,q1,")


def test_bad_arguments_name_the_allowed_values(tmp_path):
    with pytest.raises(ValueError, match="name must be one of"):
        build.build_one("no_such_assignment", tmp_path)
    with pytest.raises(ValueError, match="jobs must be an integer >= 1"):
        build.build(NAMES[:1], tmp_path, jobs=0)
    with pytest.raises(ValueError, match="folder must be a directory"):
        grade.grade_folder(tmp_path / "missing", tmp_path / "a.zip")


def test_student_checks_and_exports_a_gradable_zip(built, tmp_path):
    """The student's side: every cell run in order, grader.check after each question,
    grader.export at the end; the zip it writes is what grade.py grades (NumPy-only
    assignment, the solution filled in as a student who got everything right)."""
    from nbclient import NotebookClient

    name = "gd_stability"
    notebook = tmp_path / f"{name}.ipynb"
    notebook.write_bytes((built / name / "autograder" / f"{name}.ipynb").read_bytes())
    nb = nbformat.read(notebook, as_version=4)
    NotebookClient(
        nb, timeout=300, resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    checks = [
        "".join(str(o.get("data", {}).get("text/plain", "")) for o in c.outputs)
        for c in nb.cells
        if c.cell_type == "code" and c.source.startswith("grader.check(")
    ]
    assert len(checks) == 4
    assert all("All test cases passed" in text for text in checks), checks
    (exported,) = tmp_path.glob(f"{name}_*.zip")
    results = grade.run_otter(exported, build.autograder_zip(built, name))
    assert grade.scores(results) == question_points(built, name)


def test_another_assignments_notebook_scores_nothing_and_says_why(built, tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    solution = built / "gd_stability" / "autograder" / "gd_stability.ipynb"
    (inbox / "lost.ipynb").write_bytes(solution.read_bytes())
    table = grade.grade_folder(inbox, build.autograder_zip(built, "momentum_forms"))
    assert table.loc["lost.ipynb", "total"] == 0
    assert "gd_stability" in table.loc["lost.ipynb", "error"]
