"""tools/student_edition.py takes the answers out of the chapters, and nothing else."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import exercises
import pytest
import student_edition

REPO_ROOT = Path(__file__).resolve().parents[2]
CHAPTERS = sorted((REPO_ROOT / "tutorials").glob("ch*.py"))

CHAPTER = textwrap.dedent('''\
    # %% [markdown]
    # # Chapter 99 — Squares
    #
    # ```{exercise} Cubes
    # :label: ch99-cubes
    #
    # Write `cube`.
    # ```
    #
    # ````{solution} ch99-cubes
    # :class: dropdown
    #
    # ```python
    # def cube(x):
    #     return x ** 3
    # ```
    # ````
    #
    # After the solution.

    # %%
    def square(x):
        # BEGIN SOLUTION
        y = x * x
        return y
        # END SOLUTION


    # BEGIN SOLUTION
    total = square(3) + square(4)
    # END SOLUTION
    assert total == 25
    ''')


def test_code_blocks_become_raise_at_their_indentation():
    text, n_blocks, n_solutions = student_edition.student_edition(CHAPTER, "ch99_squares.py")
    assert (n_blocks, n_solutions) == (2, 1)
    assert "    raise NotImplementedError(\"chapter 99, block 1: " in text
    assert "\nraise NotImplementedError(\"chapter 99, block 2: " in text
    assert "x * x" not in text and "SOLUTION" not in text and "total = " not in text
    compile(text, "ch99_squares.py", "exec")  # still valid Python


def test_solution_directives_go_and_exercises_stay():
    text, _, _ = student_edition.student_edition(CHAPTER, "ch99_squares.py")
    assert "{exercise} Cubes" in text and "Write `cube`." in text
    assert "{solution}" not in text and "x ** 3" not in text
    assert "# After the solution." in text
    assert "#\n#\n" not in text  # no doubled blank line left where the solution was


def test_student_chapter_fails_until_the_blocks_are_written_back(tmp_path):
    text, _, _ = student_edition.student_edition(CHAPTER, "ch99_squares.py")
    path = tmp_path / "ch99_squares.py"
    path.write_text(text)
    result = subprocess.run([sys.executable, str(path)], capture_output=True, text=True)
    assert result.returncode != 0 and "NotImplementedError: chapter 99, block" in result.stderr
    path.write_text(CHAPTER)  # the reference edition passes its own checks
    assert subprocess.run([sys.executable, str(path)], capture_output=True).returncode == 0


@pytest.mark.parametrize("source, message", [
    ("# BEGIN SOLUTION\nx = 1\n", "is never closed"),
    ("x = 1\n# END SOLUTION\n", "without a '# BEGIN SOLUTION'"),
    ("# BEGIN SOLUTION\n# BEGIN SOLUTION\nx = 1\n# END SOLUTION\n", "cannot nest"),
    ("if True:\n    # BEGIN SOLUTION\n    x = 1\n# END SOLUTION\n", "must match"),
    ("# BEGIN SOLUTION\n# only a comment\n# END SOLUTION\n", "has no code"),
    ("# ```{solution} a\n# ```python\n# x = 1\n# ```\n# ```\n", "would close it"),
    ("# ```{solution} a\n# text\n\nx = 1\n", "is not closed"),
])
def test_malformed_markers_are_refused_with_file_and_line(source, message):
    with pytest.raises(student_edition.MarkupError, match=message) as error:
        student_edition.student_edition(source, "ch99_bad.py")
    assert str(error.value).startswith("ch99_bad.py:")


def test_never_writes_over_the_tutorials_or_into_a_full_folder(tmp_path):
    source = tmp_path / "tutorials"
    source.mkdir()
    (source / "ch99_squares.py").write_text(CHAPTER)
    with pytest.raises(ValueError, match="must go elsewhere"):
        student_edition.write_student_edition(source, source)
    out = tmp_path / "student"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="already holds files"):
        student_edition.write_student_edition(source, out)
    counts = student_edition.write_student_edition(source, out, force=True, log=lambda _: None)
    assert counts == {"ch99_squares.py": (2, 1)}
    assert (out / "notes.txt").read_text() == "mine"
    assert (source / "ch99_squares.py").read_text() == CHAPTER


def test_every_chapter_has_answers_to_take_out():
    assert CHAPTERS
    for chapter in CHAPTERS:
        text, n_blocks, n_solutions = student_edition.student_edition(
            student_edition.instructor_edition(chapter), chapter)
        assert n_blocks >= 1, f"{chapter.name} marks no code for the student to write"
        assert n_solutions >= 1, f"{chapter.name} has no exercise with a solution"
        assert "SOLUTION" not in text and "{solution}" not in text, chapter.name
        compile(text, str(chapter), "exec")


def test_command_line_writes_the_edition_and_says_how_to_grade(tmp_path):
    out = tmp_path / "student"
    result = subprocess.run([sys.executable, str(REPO_ROOT / "tools" / "student_edition.py"),
                             str(out)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.glob("ch*.py")) == [p.name for p in CHAPTERS]
    assert "MINITRANSFORMER_TUTORIALS_DIR=" in result.stdout
    again = subprocess.run([sys.executable, str(REPO_ROOT / "tools" / "student_edition.py"),
                            str(out)], capture_output=True, text=True)
    assert again.returncode == 1 and "already holds files" in again.stderr


@pytest.mark.slow
def test_the_chapter_tests_grade_the_student_edition(tmp_path):
    """Every student chapter fails its test (a missing answer cannot pass)."""
    out = tmp_path / "student"
    student_edition.write_student_edition(REPO_ROOT / "tutorials", out, log=lambda _: None)
    env = dict(os.environ, MINITRANSFORMER_TUTORIALS_DIR=str(out))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         str(REPO_ROOT / "tests" / "tutorials" / "test_chapters.py"), "-k", "test_chapter_runs"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=1200)
    summary = result.stdout.strip().splitlines()[-1]
    assert f"{len(CHAPTERS)} failed" in summary and "passed" not in summary, result.stdout[-3000:]
    assert result.stdout.count("NotImplementedError") >= len(CHAPTERS)


def test_no_solution_text_reaches_the_student_edition(tmp_path):
    """Every line of every removed block and worked solution (that the chapter does not also
    hold elsewhere) is absent from every file written: scripts, notebooks and the README."""
    out = tmp_path / "student"
    student_edition.write_student_edition(REPO_ROOT / "tutorials", out, log=lambda _: None)
    written = {path.name: path.read_text(encoding="utf-8") for path in out.iterdir()}
    assert sorted(n for n in written if n.endswith(".ipynb")) == \
        sorted(p.with_suffix(".ipynb").name for p in CHAPTERS)
    assert "minitransformer grade" in written["README.md"]
    secrets = 0
    for chapter in CHAPTERS:
        hidden = student_edition.solution_lines(student_edition.instructor_edition(chapter),
                                                chapter)
        secrets += len(hidden)
        for name in (chapter.name, chapter.with_suffix(".ipynb").name):
            text = written[name]
            if name.endswith(".ipynb"):  # the notebook's JSON escapes quotes and backslashes
                import json
                cells = json.loads(text)["cells"]
                text = "\n".join("".join(cell["source"]) for cell in cells)
            lines = {line.strip().lstrip("#").strip() for line in text.splitlines()}
            leaked = sorted(hidden & lines)
            assert not leaked, f"{name} holds solution text: {leaked[:3]}"
    assert secrets > 100  # the check looks at real text, not at nothing


def test_every_graded_exercise_follows_its_statement_in_both_editions(tmp_path):
    student_edition.write_student_edition(REPO_ROOT / "tutorials", tmp_path / "s",
                                          log=lambda _: None)
    counts = student_edition.write_student_edition(REPO_ROOT / "tutorials", tmp_path / "i",
                                                   solutions=True, log=lambda _: None)
    assert set(counts.values()) == {(0, 0)}
    for chapter in CHAPTERS:
        graded = exercises.parse_exercise_file(exercises.exercise_file_for(chapter))
        student = (tmp_path / "s" / chapter.name).read_text(encoding="utf-8")
        instructor = (tmp_path / "i" / chapter.name).read_text(encoding="utf-8")
        assert instructor == student_edition.instructor_edition(chapter)
        assert instructor.count("# BEGIN SOLUTION") == \
            chapter.read_text(encoding="utf-8").count("# BEGIN SOLUTION") + len(graded.exercises)
        for text in (student, instructor):
            assert "# %% wrong" not in text and text.count("# %% setup") == 1, chapter.name
            for exercise in graded.exercises:
                statement = text.index(f":label: {exercise.label}\n")
                answer = text.index(f"# %% exercise {exercise.label} (")
                check = text.index(f"# %% check {exercise.label}\n")
                assert statement < answer < check, (chapter.name, exercise.label)
        compile(student, chapter.name, "exec")


def test_an_exercise_file_that_grades_a_missing_label_is_refused(tmp_path):
    path = tmp_path / "ch99.py"
    path.write_text("# %% setup\n# %% exercise ch99-gone (1 point)\n# BEGIN SOLUTION\nx = 1\n"
                    "# END SOLUTION\n# %% check ch99-gone\nassert x, 'x'\n"
                    "# %% wrong ch99-gone\nx = 0\n")
    with pytest.raises(student_edition.MarkupError, match="ch99.py grades ch99-gone, but the "
                                                          "chapter has no {exercise} with"):
        student_edition.with_exercises(CHAPTER, exercises.parse_exercise_file(path), "ch99.py")


def test_solution_lines_finds_the_hidden_lines_and_skips_shared_ones():
    hidden = student_edition.solution_lines(CHAPTER, "ch99_squares.py")
    assert "total = square(3) + square(4)" in hidden and "return x ** 3" in hidden
    assert "assert total == 25" not in hidden  # a check the student edition keeps


@pytest.mark.slow
def test_the_student_docs_site_holds_no_solution(tmp_path):
    import html
    import json
    import re

    pytest.importorskip("sphinx", reason="the docs site needs the [docs] extra")
    pytest.importorskip("myst_nb", reason="the docs site needs the [docs] extra")

    out = tmp_path / "student"
    student_edition.write_student_edition(REPO_ROOT / "tutorials", out, log=lambda _: None)
    site = student_edition.build_student_docs(out, log=lambda _: None)
    assert sorted(path.name for path in out.iterdir() if path.is_dir()) == ["docs"]
    pages = list(site.rglob("*.html"))
    assert len(pages) >= 30 and (site / "chapters" / "ch07_attention_step_by_step.html").exists()
    text = "\n".join(page.read_text(encoding="utf-8") for page in pages)
    assert 'class="solution' not in text and "{exercise}" not in text
    assert text.count('class="exercise') >= 70  # the exercises are there
    chapter_pages = "\n".join(p.read_text(encoding="utf-8") for p in site.glob("chapters/*.html"))
    shown = {line.strip() for line in
             html.unescape(re.sub(r"<[^>]+>", "", chapter_pages)).splitlines()}
    kept = set()
    for chapter in CHAPTERS:
        edition = student_edition.student_edition(student_edition.instructor_edition(chapter),
                                                  chapter)
        kept |= {line.strip().lstrip("#").strip() for line in edition[0].splitlines()}
    notebooks = "\n".join("".join(cell["source"]) for path in site.glob("notebooks/*.ipynb")
                          for cell in json.loads(path.read_text(encoding="utf-8"))["cells"])
    assert notebooks.count("BEGIN YOUR CODE") >= 100  # the student chapters, blanks and all
    shown |= {line.strip().lstrip("#").strip() for line in notebooks.splitlines()}
    for chapter in CHAPTERS:
        hidden = student_edition.solution_lines(student_edition.instructor_edition(chapter),
                                                chapter)
        assert not (hidden & shown) - kept, chapter.name
    assert not (REPO_ROOT / "docs" / "chapters" / "ch07_attention_step_by_step.py").exists() or \
        "BEGIN YOUR CODE" not in (REPO_ROOT / "docs" / "chapters" /
                                  "ch07_attention_step_by_step.py").read_text()


def test_an_exercise_blank_names_only_what_its_comments_ask_for():
    comments = ("# divisor(d_k): what to divide by\n"
                "# f(q, k) -> (out (T, d), w (T, S)): attention\n"
                "# w1, w2, b: the three Values; see a, b and c below\n"
                "# Train the neuron (lr 0.1): start from zero\n")
    assert student_edition.asked_names(comments) == ["divisor", "f", "w1", "w2", "b"]
    body = ["rng = make()\n", "def divisor(d_k):\n", "    return d_k\n", "w1 = rng\n"]
    assert student_edition._what_to_write(body, comments) == "define divisor, w1"
    assert student_edition._what_to_write(body) == "define rng, divisor, w1"
