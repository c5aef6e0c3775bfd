"""Every chapter exercise is graded: its reference answer passes its check, and each of its wrong
answers fails it with a message (tutorials/exercises/chNN.py, see tools/exercises.py)."""

import textwrap

import exercises as ex
import pytest

CHAPTERS = sorted((ex.REPO_ROOT / "tutorials").glob("ch*.py"))
FILES = {path.name: ex.exercise_file_for(path) for path in CHAPTERS}
PARSED = {name: ex.parse_exercise_file(path) for name, path in FILES.items() if path.exists()}


def _cases(wrong):
    cases = []
    for name, parsed in PARSED.items():
        for exercise in parsed.exercises:
            for k, cell in enumerate(exercise.wrong if wrong else [None]):
                marks = getattr(pytest.mark, name.split("_")[0])
                label = exercise.label + (f"-wrong{k + 1}" if wrong else "")
                cases.append(pytest.param(parsed, exercise, cell, marks=marks, id=label))
    return cases


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda path: path.stem)
def test_every_exercise_of_every_chapter_is_graded(chapter):
    path = ex.exercise_file_for(chapter)
    assert path.exists(), f"{chapter.name} has exercises but no {path.relative_to(ex.REPO_ROOT)}"
    labels = ex.chapter_labels(chapter.read_text(encoding="utf-8"))
    graded = [exercise.label for exercise in PARSED[chapter.name].exercises]
    assert graded == labels, (f"{path.name} grades {graded}, but {chapter.name} asks "
                              f"{labels} (same labels, same order)")


@pytest.mark.parametrize("parsed, exercise, wrong", _cases(wrong=False))
def test_reference_answer_passes_its_check(parsed, exercise, wrong, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # anything an answer writes lands in a temporary folder
    ex.run_exercise(parsed, exercise)


@pytest.mark.parametrize("parsed, exercise, wrong", _cases(wrong=True))
def test_wrong_answer_fails_its_check_with_a_message(parsed, exercise, wrong, tmp_path,
                                                     monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(AssertionError) as failure:
        ex.run_exercise(parsed, exercise, wrong)
    assert str(failure.value).strip(), (
        f"{exercise.label}: the wrong answer at line {wrong.line} failed an assert without a "
        "message; every check's assert says what is wrong")


def test_parser_names_the_file_line_and_rule(tmp_path):
    def parse(text):
        path = tmp_path / "ch99.py"
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        with pytest.raises(ex.ExerciseFileError) as error:
            ex.parse_exercise_file(path)
        return str(error.value)

    assert "first cell must be '# %% setup'" in parse("# %% exercise a (1 point)\nx = 1\n")
    assert "ch99.py:2: write '# %% exercise LABEL (N points)'" in parse(
        "# %% setup\n# %% exercise a\n")
    assert "one '# BEGIN SOLUTION'" in parse("# %% setup\n# %% exercise a (1 point)\nx = 1\n")
    answer = "# %% setup\n# %% exercise a (2 points)\n# BEGIN SOLUTION\nx = 1\n# END SOLUTION\n"
    assert "a has no check cell" in parse(answer)
    assert "a has no wrong answer" in parse(answer + "# %% check a\nassert x == 1, 'x'\n")
    assert "before (or without)" in parse("# %% setup\n# %% check b\n")
    assert "not '# %% solution a'" in parse("# %% setup\n# %% solution a\n")
