"""``minitransformer grade``: a student's chapters graded block by block, with partial credit and
a message that says what is wrong."""

import json
import textwrap
from pathlib import Path

import exercises
import pytest
import student_edition

from minitransformer.cli import main
from minitransformer.tasks.grading import find_blocks, format_grades, grade_chapter, grade_folder

REPO_ROOT = Path(__file__).resolve().parents[2]

CHAPTER = textwrap.dedent('''\
    # %% [markdown]
    # # Chapter 99 — Powers

    # %%
    import math
    x = 3.0

    # %%
    # BEGIN SOLUTION
    def cube(value):
        return value ** 3
    # END SOLUTION
    assert cube(2.0) == 8.0, "cube(2) should be 8: is the power 3?"

    # %%
    print("a cell between the blocks")
    assert cube(x) == 27.0

    # %%
    def norm(v):
        # BEGIN SOLUTION
        total = sum(t * t for t in v)
        # END SOLUTION
        return math.sqrt(total)

    # %%
    assert norm([3.0, 4.0]) == 5.0, "norm([3, 4]) should be 5"
    print("done")
''')


def write(folder, text, name="ch99_powers.py"):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text, encoding="utf-8")
    return folder / name


def blank_edition():
    return student_edition.student_edition(CHAPTER, "ch99_powers.py")[0]


def test_blocks_are_found_by_their_markers():
    lines = CHAPTER.splitlines()
    assert find_blocks(lines) == [n for n, line in enumerate(lines, 1) if "BEGIN SOLUTION" in line]
    assert len(find_blocks(lines)) == 2
    lines = blank_edition().splitlines()
    assert find_blocks(lines) == [n for n, line in enumerate(lines, 1) if "BEGIN YOUR" in line]


def test_the_student_edition_names_what_each_blank_must_define():
    text = blank_edition()
    assert '# BEGIN YOUR CODE (chapter 99, block 1)\nraise NotImplementedError("chapter 99, ' \
           'block 1: define cube")\n# END YOUR CODE' in text
    assert 'raise NotImplementedError("chapter 99, block 2: define total")' in text
    assert student_edition.defined_names("for i in range(3):\n    s[i] = i\nq, (r, *z) = 1, "
                                         "(2, 3)\nclass A:\n    inner = 1\n") == \
        ["s", "q", "r", "z", "A"]


def test_blank_half_done_wrong_and_solved_editions(tmp_path):
    blank = grade_chapter(write(tmp_path / "blank", blank_edition()))
    assert [(g.points, g.message) for g in blank] == [(0, "blank: define cube"),
                                                      (0, "blank: define total")]
    half = blank_edition().replace('raise NotImplementedError("chapter 99, block 1: define '
                                   'cube")', "def cube(value):\n    return value ** 3")
    assert [g.points for g in grade_chapter(write(tmp_path / "half", half))] == [1, 0]
    wrong = half.replace("value ** 3", "value ** 2")
    grades = grade_chapter(write(tmp_path / "wrong", wrong))
    assert grades[0].message == "cube(2) should be 8: is the power 3?"
    unmarked = half.replace("value ** 3", "8.0 if value == 2 else 0.0")
    grades = grade_chapter(write(tmp_path / "unmarked", unmarked))
    assert grades[0].points == 0 and grades[0].message.startswith("check failed at line ")
    assert grades[0].message.endswith("assert cube(x) == 27.0")
    solved = grade_chapter(write(tmp_path / "solved", CHAPTER))  # the instructor's chapter
    assert [(g.points, g.message) for g in solved] == [(1, ""), (1, "")]


def test_an_error_names_its_type_and_line_and_a_missing_name_its_likely_cause(tmp_path):
    broken = blank_edition().replace(
        'raise NotImplementedError("chapter 99, block 2: define total")', "total = 1 / 0")
    grades = grade_chapter(write(tmp_path / "e", broken))
    assert grades[1].message.startswith("ZeroDivisionError: division by zero (line ")
    renamed = CHAPTER.replace("def cube(value):", "def kube(value):")
    grades = grade_chapter(write(tmp_path / "n", renamed))
    assert "NameError: name 'cube' is not defined" in grades[0].message
    assert "an earlier block that failed may define it" in grades[0].message


def test_a_chapter_that_runs_too_long_is_graded_as_far_as_it_got(tmp_path):
    slow = CHAPTER.replace('print("a cell between the blocks")', "import time\ntime.sleep(60)")
    grades = grade_chapter(write(tmp_path / "slow", slow), timeout=5)
    assert grades[0].points == 1
    assert grades[1].points == 0 and "did not finish within 5 s" in grades[1].message


def test_grade_command_prints_the_table_writes_grade_json_and_exits_0(tmp_path, capsys):
    folder = tmp_path / "student"
    write(folder, blank_edition())
    write(folder, CHAPTER, "ch98_solved.py")
    assert main(["grade", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "ch99_powers" in out and "blank: define cube" in out and "2 of 4 points" in out
    saved = json.loads((folder / "grade.json").read_text())
    assert saved["points"] == 2 and saved["max_points"] == 4
    assert saved["chapters"]["ch98_solved"]["points"] == 2
    assert saved["chapters"]["ch99_powers"]["blocks"][1] == {
        "chapter": "ch99_powers", "block": 2, "points": 0, "max_points": 1,
        "message": "blank: define total", "exercise": ""}
    assert main(["grade", str(folder), "--chapter", "98"]) == 0
    assert json.loads((folder / "grade.json").read_text())["max_points"] == 2
    assert main(["grade", str(tmp_path / "nothing")]) == 1
    assert "grade: error: no folder" in capsys.readouterr().err


def test_an_empty_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"grade: no chapters \(ch\*\.py\) in"):
        grade_folder(tmp_path)


EXERCISES = textwrap.dedent('''\
    # %% setup
    import math

    # %% exercise ch99-hypot (3 points)
    # hypot(a, b): the length of the vector (a, b)
    # BEGIN SOLUTION
    def hypot(a, b):
        return math.sqrt(a * a + b * b)
    # END SOLUTION

    # %% check ch99-hypot
    assert hypot(3, 4) == 5, f"hypot(3, 4) is {hypot(3, 4)}, not 5: is there a square root?"

    # %% wrong ch99-hypot
    def hypot(a, b):  # noqa: F811
        return a * a + b * b
''')
WITH_EXERCISE = CHAPTER + textwrap.dedent('''\

    # %% [markdown]
    # ```{exercise} Hypotenuse
    # :label: ch99-hypot
    #
    # Write `hypot`.
    # ```
    #
    # After the exercise.
''')


def test_an_exercise_earns_its_points_when_its_check_passes(tmp_path):
    path = tmp_path / "exercises" / "ch99.py"
    path.parent.mkdir()
    path.write_text(EXERCISES, encoding="utf-8")
    solved = student_edition.with_exercises(WITH_EXERCISE, exercises.parse_exercise_file(path))
    assert "# %% wrong" not in solved and solved.index("Write `hypot`.") < \
        solved.index("# %% exercise ch99-hypot") < solved.index("After the exercise.")
    blank = student_edition.student_edition(solved, "ch99_powers.py")[0]
    assert 'raise NotImplementedError("chapter 99, block 3: define hypot")' in blank
    grades = grade_chapter(write(tmp_path / "blank", blank))
    assert [(g.exercise, g.points, g.max_points, g.message) for g in grades][2] == \
        ("ch99-hypot", 0, 3, "blank: define hypot")
    squared = blank.replace('raise NotImplementedError("chapter 99, block 3: define hypot")',
                            "def hypot(a, b):\n    return a * a + b * b")
    grades = grade_chapter(write(tmp_path / "wrong", squared))
    assert (grades[2].points, grades[2].message) == \
        (0, "hypot(3, 4) is 25, not 5: is there a square root?")
    grades = grade_chapter(write(tmp_path / "solved", solved))
    assert [(g.points, g.max_points) for g in grades] == [(1, 1), (1, 1), (3, 3)]
    result = grade_folder(tmp_path / "wrong")
    table = format_grades(result)
    assert "ch99-hypot" in table and "block 1" in table and "0/3" in table
    assert "0 of 5 points" in table  # blocks 1 and 2 are still blank there


@pytest.mark.slow
def test_a_real_chapter_blank_and_solved(tmp_path):
    source = REPO_ROOT / "tutorials" / "ch07_attention_step_by_step.py"
    solved = student_edition.instructor_edition(source)
    edition = student_edition.student_edition(solved, source.name)[0]
    blank = grade_chapter(write(tmp_path / "s", edition, source.name))
    exercise_points = sum(e.points for e in exercises.parse_exercise_file(
        exercises.exercise_file_for(source)).exercises)
    assert [g.points for g in blank] == [0] * len(blank)
    assert sum(g.max_points for g in blank) == 2 + exercise_points
    assert blank[0].message == "blank: define scaled, weights, output"
    assert [g.exercise for g in blank][2:] == ["ch07-interpretable", "ch07-variance-two",
                                               "ch07-mask-after-softmax", "ch07-causal-rectangle"]
    full = grade_chapter(write(tmp_path / "i", solved, source.name))
    assert sum(g.points for g in full) == 2 + exercise_points, [g.message for g in full]
    assert [g.points for g in grade_chapter(source)] == [1, 1]  # the chapter alone


def test_a_blank_inside_a_function_never_called_still_scores_zero(tmp_path):
    chapter = textwrap.dedent('''\
        # %%
        def helper():
            # BEGIN SOLUTION
            return 1
            # END SOLUTION

        # %%
        # BEGIN SOLUTION
        value = 2
        # END SOLUTION
        assert value == 2, "value should be 2"
        assert helper() == 1, "helper() should return 1"
    ''')
    blank = student_edition.student_edition(chapter, "ch98_late.py")[0]
    half = blank.replace('raise NotImplementedError("chapter 98, block 2: define value")',
                         "value = 2")
    grades = grade_chapter(write(tmp_path / "h", half, "ch98_late.py"))
    # the blank of block 1 is reached only by block 2's cell: charged to block 1, not block 2
    assert [(g.points, g.message) for g in grades] == [
        (0, "blank: write the code that computes what is returned here"), (1, "")]
    never = blank.replace("assert helper() == 1", "pass  #").replace(
        'raise NotImplementedError("chapter 98, block 2: define value")', "value = 2")
    grades = grade_chapter(write(tmp_path / "n", never, "ch98_late.py"))
    assert grades[0].points == 0 and grades[0].message.startswith("blank: ")
