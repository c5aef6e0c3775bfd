"""tools/otter_export.py: the graded exercises as otter-grader assignments, checked by running
otter itself where it is installed (``MINITRANSFORMER_OTTER`` names its executable, else
``otter`` on the PATH; .ci/run installs it in a virtual environment of its own)."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import exercises
import otter_export
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
CHAPTERS = sorted((REPO_ROOT / "tutorials").glob("ch*.py"))
CH07 = REPO_ROOT / "tutorials" / "ch07_attention_step_by_step.py"


def _source(cell):
    return "".join(cell["source"])


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda path: path.stem)
def test_every_exercise_is_an_otter_question_with_its_points_statement_and_check(chapter):
    notebook = otter_export.master_notebook(chapter)
    graded = exercises.parse_exercise_file(exercises.exercise_file_for(chapter))
    sources = [_source(cell) for cell in notebook["cells"]]
    assert sources[0].startswith("# ASSIGNMENT CONFIG\nname: " + chapter.name[:4])
    questions = [s for s in sources if s.startswith("# BEGIN QUESTION")]
    assert questions == [f"# BEGIN QUESTION\nname: {e.label}\npoints: {e.points}"
                         for e in graded.exercises]
    statements = otter_export.exercise_statements(chapter.read_text(encoding="utf-8"))
    for exercise in graded.exercises:
        at = sources.index(f"# BEGIN QUESTION\nname: {exercise.label}\npoints: {exercise.points}")
        title, statement = statements[exercise.label]
        assert title and statement and statement in sources[at + 1], exercise.label
        assert [sources[at + k] for k in (2, 4, 5, 7, 8)] == [
            "# BEGIN SOLUTION", "# END SOLUTION", "# BEGIN TESTS", "# END TESTS",
            "# END QUESTION"]
        assert sources[at + 3] in exercise.answer.code and "# BEGIN SOLUTION" in sources[at + 3]
        assert sources[at + 6] in exercise.check.code
    assert not any(cell.code.split("\n", 1)[1] in sources for e in graded.exercises
                   for cell in e.wrong)
    assert len({cell["id"] for cell in notebook["cells"]}) == len(notebook["cells"])


def test_export_writes_one_master_per_chapter_and_refuses_a_full_folder(tmp_path):
    written = otter_export.export(REPO_ROOT / "tutorials", tmp_path / "otter", log=lambda _: None)
    assert [path.name for path in written] == [c.name[:4] + "_exercises.ipynb" for c in CHAPTERS]
    assert json.loads(written[0].read_text(encoding="utf-8"))["nbformat"] == 4
    with pytest.raises(FileExistsError, match="already holds files"):
        otter_export.export(REPO_ROOT / "tutorials", tmp_path / "otter")


def _otter():
    found = os.environ.get("MINITRANSFORMER_OTTER") or shutil.which("otter")
    if not found:
        pytest.skip("otter-grader is not installed (set MINITRANSFORMER_OTTER to its executable)")
    return found


def _run(command, cwd):
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result


def _score(otter, autograder, notebook, out):
    out.mkdir()
    _run([otter, "run", "-a", str(autograder), "-o", str(out), str(notebook)], notebook.parent)
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    return {test["name"]: test.get("score") for test in results["tests"]}


@pytest.mark.slow
def test_otter_assigns_and_grades_a_blank_a_wrong_and_a_solved_notebook(tmp_path):
    otter = _otter()
    tutorials = tmp_path / "tutorials"
    (tutorials / "exercises").mkdir(parents=True)
    shutil.copy(CH07, tutorials)
    shutil.copy(exercises.exercise_file_for(CH07), tutorials / "exercises")
    master = otter_export.export(tutorials, tmp_path / "otter", log=lambda _: None)[0]
    _run([otter, "assign", str(master), "dist"], master.parent)
    dist = master.parent / "dist"
    autograder = next((dist / "autograder").glob("*.zip"))
    student = dist / "student" / master.name
    graded = exercises.parse_exercise_file(exercises.exercise_file_for(CH07))
    points = {e.label: e.points for e in graded.exercises}

    student_text = student.read_text(encoding="utf-8")
    answers = {line.strip() for e in graded.exercises for line in
               e.answer.code.split("# BEGIN SOLUTION")[1].split("# END SOLUTION")[0].splitlines()
               if len(line.strip()) >= 12}
    assert not [line for line in answers if json.dumps(line)[1:-1] in student_text]

    solved = _score(otter, autograder, dist / "autograder" / master.name, tmp_path / "solved")
    assert {k: solved[k] for k in points} == points
    blank = _score(otter, autograder, student, tmp_path / "blank")
    assert {k: blank[k] for k in points} == dict.fromkeys(points, 0)

    # the reference notebook with one exercise's wrong answer after its reference answer
    notebook = json.loads((dist / "autograder" / master.name).read_text(encoding="utf-8"))
    exercise = graded.exercises[-1]
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code" and "".join(cell["source"]) in exercise.answer.code:
            cell["source"] = "".join(cell["source"]) + "\n" + exercise.wrong[0].code
    wrong = tmp_path / "wrong" / master.name
    wrong.parent.mkdir()
    wrong.write_text(json.dumps(notebook), encoding="utf-8")
    scores = _score(otter, autograder, wrong, tmp_path / "wrong-results")
    assert {k: scores[k] for k in points} == {**points, exercise.label: 0}
