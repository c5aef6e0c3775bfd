"""Export the graded exercises as otter-grader assignments, one per chapter.

Why otter-grader (and not nbgrader): its master notebooks use the same ``# BEGIN SOLUTION`` /
``# END SOLUTION`` markers as the chapters, its tests are plain code cells of ``assert``s, as the
exercise checks are, and it grades on a laptop (``otter run``) or on Gradescope from one zip file,
without the course database and JupyterHub setup that nbgrader needs.

For each chapter with a graded exercise file (``tutorials/exercises/chNN.py``, see
``tools/exercises.py``) this writes ``OUT/chNN/chNN_exercises.ipynb``, an otter master notebook:

- an ``# ASSIGNMENT CONFIG`` cell (the assignment's name, an autograder zip that installs
  minitransformer, no PDFs);
- the exercise file's setup cell;
- per exercise, an otter question named by the exercise's label and worth its points: the
  exercise's statement from the chapter, its answer cell as the solution, its check cell as the
  test (the ``wrong`` cells stay out).

Then, with otter-grader installed (``pip install otter-grader``)::

    python tools/otter_export.py otter/
    otter assign otter/ch07/ch07_exercises.ipynb otter/ch07/dist
    # hand out otter/ch07/dist/student/ch07_exercises.ipynb; grade a submission with
    otter run -a otter/ch07/dist/autograder/ch07-autograder_*.zip submission.ipynb

The chapters' own code blocks are graded by ``minitransformer grade`` (the student edition).
"""

import argparse
import json
import re
import sys
from pathlib import Path

import exercises

if sys.version_info >= (3, 11):
    import tomllib
else:  # the package's own dependency on Python 3.10
    import tomli as tomllib

REPO_ROOT = Path(__file__).resolve().parents[1]
HOMEPAGE = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))[
    "project"]["urls"]["Homepage"]  # the autograder installs minitransformer from there
_DIRECTIVE = re.compile(r"^# ?(?P<fence>`{3,}|:{3,})\s*\{exercise\}\s*(?P<title>.*)$")


def exercise_statements(chapter_text):
    """{label: (title, statement markdown)} for a chapter's ``{exercise}`` directives."""
    statements, lines, i = {}, chapter_text.splitlines(), 0
    while i < len(lines):
        match = _DIRECTIVE.match(lines[i].strip())
        i += 1
        if not match:
            continue
        fence, label, body = match.group("fence"), None, []
        while i < len(lines) and lines[i].strip().lstrip("#").strip() != fence:
            text = lines[i][1:].removeprefix(" ") if lines[i].startswith("#") else lines[i]
            if text.startswith(":label:"):
                label = text.split(":label:", 1)[1].strip()
            elif not text.startswith(":"):
                body.append(text)
            i += 1
        statements[label] = (match.group("title").strip(), "\n".join(body).strip())
    return statements


def _cell(kind, source):
    cell = {"cell_type": kind, "metadata": {}, "source": source.strip("\n")}
    if kind == "code":
        cell.update(execution_count=None, outputs=[])
    return cell


def _code(cell, comments=True):
    """A cell of the exercise file without its ``# %% ...`` header line (and without its
    opening comment lines, unless ``comments``)."""
    lines = cell.code.splitlines(keepends=True)[1:]
    while not comments and lines and lines[0].startswith("#"):
        lines.pop(0)
    return "".join(lines)


def master_notebook(chapter_path):
    """The otter master notebook (a dict in nbformat 4) of a chapter's graded exercises."""
    chapter_path = Path(chapter_path)
    graded = exercises.parse_exercise_file(exercises.exercise_file_for(chapter_path))
    statements = exercise_statements(chapter_path.read_text(encoding="utf-8"))
    number = chapter_path.name.split("_")[0]
    config = (f"# ASSIGNMENT CONFIG\nname: {number}\nexport_cell: false\ncheck_all_cell: true\n"
              f"generate:\n  pdf: false\nrequirements:\n  - minitransformer @ git+{HOMEPAGE}\n")
    cells = [_cell("raw", config),
             _cell("markdown", f"# Chapter {int(number[2:])}: exercises\n\nWrite each answer "
                               "in place of the `...`; the check after it says what is wrong. "
                               "The chapter explains what each exercise is about."),
             _cell("code", _code(graded.setup, comments=False))]
    for exercise in graded.exercises:
        if exercise.label not in statements:
            raise ValueError(f"master_notebook: {chapter_path.name} has no {{exercise}} "
                             f"labelled {exercise.label}")
        title, statement = statements[exercise.label]
        cells += [
            _cell("raw", f"# BEGIN QUESTION\nname: {exercise.label}\npoints: {exercise.points}"),
            _cell("markdown", f"**{title}** ({exercise.points} point"
                              f"{'s' if exercise.points > 1 else ''})\n\n{statement}"),
            _cell("raw", "# BEGIN SOLUTION"), _cell("code", _code(exercise.answer)),
            _cell("raw", "# END SOLUTION"),
            _cell("raw", "# BEGIN TESTS"), _cell("code", _code(exercise.check)),
            _cell("raw", "# END TESTS"),
            _cell("raw", "# END QUESTION")]
    for number, cell in enumerate(cells):  # nbformat 4.5: an id per cell, sources as lines
        cell["id"] = f"cell-{number:03d}"
        cell["source"] = cell["source"].splitlines(keepends=True)
    return {"cells": cells, "nbformat": 4, "nbformat_minor": 5,
            "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python",
                                        "name": "python3"},
                         "language_info": {"name": "python"}}}


def export(tutorials, out_dir, log=print):
    """Write ``out_dir/chNN/chNN_exercises.ipynb`` for every chapter with graded exercises;
    returns the paths written. Refuses a folder that already holds files."""
    tutorials, out_dir = Path(tutorials), Path(out_dir)
    chapters = [path for path in sorted(tutorials.glob("ch*.py"))
                if exercises.exercise_file_for(path).exists()]
    if not chapters:
        raise FileNotFoundError(f"otter_export: no chapters with graded exercises in {tutorials}")
    if out_dir.exists() and any(out_dir.iterdir()):
        raise FileExistsError(f"otter_export: {out_dir} already holds files; choose an empty "
                              "folder")
    notebooks = {path.name.split("_")[0]: master_notebook(path) for path in chapters}
    written = []
    for number, notebook in notebooks.items():
        path = out_dir / number / f"{number}_exercises.ipynb"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n",
                        encoding="utf-8")
        written.append(path)
        questions = sum(cell["source"][:1] == ["# BEGIN QUESTION\n"] for cell in
                        notebook["cells"])
        log(f"{path}: {questions} questions")
    return written


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", help="folder for the master notebooks (new or empty)")
    parser.add_argument("--tutorials", default=str(REPO_ROOT / "tutorials"),
                        help="folder of the chapters (default: the repository's)")
    args = parser.parse_args(argv)
    try:
        written = export(args.tutorials, args.out_dir)
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    first = written[0]
    print(f"{len(written)} otter master notebooks written. Make the student notebook and the "
          f"autograder of one:\n  otter assign {first} {first.parent / 'dist'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
