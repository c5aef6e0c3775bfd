"""Make the student edition of the tutorials: the same chapters with the answers taken out.

Two kinds of answer are marked in a chapter (``tutorials/chNN_*.py``):

* code that a student should write, between comment lines at the same indentation::

      # BEGIN SOLUTION
      scores = q @ k.swapaxes(-1, -2) / math.sqrt(d_k)
      # END SOLUTION

  The student edition puts in their place, at the same indentation, a blank to fill between
  two marker lines that the grader (``minitransformer grade``) finds the block by::

      # BEGIN YOUR CODE (chapter 07, block 1)
      raise NotImplementedError("chapter 07, block 1: define scores")
      # END YOUR CODE

  The message names what the block defined (variables, functions, classes), so a student knows
  what to write.

* worked solutions to the exercises, written as MyST ``{solution}`` directives in markdown cells
  (hidden behind a dropdown on the docs site). The student edition drops them and keeps the
  ``{exercise}`` directives.

Each exercise is also graded: ``tutorials/exercises/chNN.py`` (see ``tools/exercises.py``) holds,
per exercise, an answer cell (what to define, and the reference answer between the same
``# BEGIN SOLUTION`` markers) and a check cell. Both editions put them right after the
exercise's statement; the student edition blanks the answer like any other block, so
``minitransformer grade`` gives the exercise its points when its check passes.

Everything else is copied unchanged, so the chapter's own ``assert``s become the autograder: a
chapter passes again only when every removed block has been written back correctly. Each chapter
is written twice, as the script (``chNN_*.py``) and as a notebook (``chNN_*.ipynb``, through
jupytext), with a README.md that tells students how to check their work. Grade block by block,
with partial credit::

    python tools/student_edition.py student/
    minitransformer grade student/               # student/grade.json

``--docs`` also builds the docs site from the student chapters into ``student/docs/`` (chapters
rendered without running them, since their blanks would stop them): the course's site without
any solution, for students to read offline.

``--solutions`` writes the instructor's edition instead: the same files, exercise cells
included, with every answer in place (it grades at full marks; hand it out after the deadline).
The tool never overwrites the tutorials it reads, and never writes into a folder that already
holds files unless ``--force`` is given.
"""

import argparse
import ast
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import exercises

REPO_ROOT = Path(__file__).resolve().parents[1]

BEGIN = "# BEGIN SOLUTION"
END = "# END SOLUTION"
# A directive fence inside a markdown comment line: "# ```{solution} label", "# ::::{solution}".
_FENCE = re.compile(r"^# ?(?P<fence>`{3,}|:{3,})\s*(?P<info>\S.*)?$")


class MarkupError(ValueError):
    """A chapter's solution markers are malformed; the message names the file and the line."""


def _chapter_number(path):
    match = re.match(r"ch(\d+)", Path(path).name)
    return match.group(1) if match else Path(path).stem


def defined_names(code):
    """The names a block of code defines, in order: variables it assigns, functions and classes
    it defines (not loop variables, imports, names inside the functions it defines, or names
    starting with "_"). A block indented inside a function is read as that function's body."""
    try:
        tree = ast.parse("def _block():\n" + textwrap.indent(textwrap.dedent(code), "    "))
    except SyntaxError:
        return []
    names = []

    def add(name):
        if name not in names and not name.startswith("_"):
            names.append(name)

    def assigned(target):  # x, (x, y), *x, x[i] and x.a name x (not i)
        if isinstance(target, ast.Name):
            add(target.id)
        elif isinstance(target, (ast.Tuple, ast.List)):
            for element in target.elts:
                assigned(element)
        elif isinstance(target, (ast.Starred, ast.Subscript, ast.Attribute)):
            assigned(target.value)

    def visit(statements):
        for node in statements:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                add(node.name)
                continue
            if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
                for target in getattr(node, "targets", None) or [node.target]:
                    assigned(target)
            for field in ("body", "orelse", "finalbody", "handlers"):
                visit(getattr(node, field, []) or [])

    visit(tree.body[0].body)
    return names


_ITEM = re.compile(r"^(?P<name>[A-Za-z_]\w*)(\(.*\))?$")


def _top_level_items(text):
    """``text`` split at the commas outside parentheses."""
    items, depth, start = [], 0, 0
    for i, char in enumerate(text):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            items.append(text[start:i].strip())
            start = i + 1
    return items + [text[start:].strip()]


def asked_names(comment_lines):
    """The names an exercise's answer cell asks for: those its comment lines open with, before
    a colon ("# divisor(d_k): ...", "# f(x) -> (y, z): ...", "# w1, w2, b: the three ...")."""
    names = []
    for line in comment_lines.splitlines():
        head = line.lstrip("#").strip().split(": ")[0].rstrip(":").split(" -> ")[0]
        matches = [_ITEM.match(item) for item in _top_level_items(head)]
        if head and all(matches):
            names += [match.group("name") for match in matches]
    return names


def _what_to_write(body_lines, asked=None):
    """The blank's message: the names the block defines (only those that ``asked``, the comment
    lines of an exercise's answer cell, ask for, when they ask for any of them)."""
    code = "".join(body_lines)
    names = defined_names(code)
    wanted = asked_names(asked or "")
    if any(name in wanted for name in names):
        names = [name for name in names if name in wanted]
    if names:
        return "define " + ", ".join(names)
    if any(line.strip().startswith("return") for line in body_lines):
        return "write the code that computes what is returned here"
    return "write the code that was here"


BEGIN_YOURS = "# BEGIN YOUR CODE"
END_YOURS = "# END YOUR CODE"


def strip_code_solutions(lines, path="<chapter>"):
    """Replace each ``# BEGIN SOLUTION`` ... ``# END SOLUTION`` block by a ``raise`` between
    ``# BEGIN YOUR CODE (chapter NN, block K)`` and ``# END YOUR CODE``.

    Returns ``(new_lines, n_blocks)``. Raises MarkupError for a block that is nested, unclosed,
    closed at another indentation, or empty, and for an END without a BEGIN.
    """
    out, n_blocks, start, asked = [], 0, None, None
    number = _chapter_number(path)
    for lineno, line in enumerate(lines, start=1):
        stripped, indent = line.strip(), line[: len(line) - len(line.lstrip())]
        if line.startswith("# %%"):  # an exercise's answer cell says what to define
            asked = "" if exercises.HEADER.match(line.rstrip("\n")) else None
        elif asked is not None and stripped.startswith("#") and start is None:
            asked += line
        if stripped == BEGIN:
            if start is not None:
                raise MarkupError(f"{path}:{lineno}: '{BEGIN}' inside the block opened at line "
                                  f"{start[0]}; blocks cannot nest")
            start = (lineno, indent, [])
        elif stripped == END:
            if start is None:
                raise MarkupError(f"{path}:{lineno}: '{END}' without a '{BEGIN}' before it")
            if indent != start[1]:
                raise MarkupError(f"{path}:{lineno}: '{END}' is indented {len(indent)} spaces "
                                  f"but its '{BEGIN}' (line {start[0]}) {len(start[1])}; "
                                  "they must match")
            if not any(body.strip() and not body.strip().startswith("#") for body in start[2]):
                raise MarkupError(f"{path}:{start[0]}: the solution block has no code")
            n_blocks += 1
            where = f"chapter {number}, block {n_blocks}"
            out += [f"{indent}{BEGIN_YOURS} ({where})\n",
                    f'{indent}raise NotImplementedError("{where}: '
                    f'{_what_to_write(start[2], asked)}")\n',
                    f"{indent}{END_YOURS}\n"]
            start = None
        elif start is not None:
            if stripped and not line.startswith(start[1]):
                raise MarkupError(f"{path}:{lineno}: code inside the solution block opened at line "
                                  f"{start[0]} is indented less than its '{BEGIN}'")
            start[2].append(line)
        else:
            out.append(line)
    if start is not None:
        raise MarkupError(f"{path}:{start[0]}: '{BEGIN}' is never closed by '{END}'")
    return out, n_blocks


def _closes(fence, text):
    """True if ``text`` (a markdown line without its '# ') closes a fence opened with ``fence``."""
    stripped = text.strip()
    return (len(stripped) >= len(fence) and set(stripped) == {fence[0]})


def strip_markdown_solutions(lines, path="<chapter>"):
    """Drop every ``{solution}`` directive from the markdown comment lines.

    Returns ``(new_lines, n_solutions)``. A code fence inside a solution must be shorter than the
    directive's own fence (``````{solution}`` around a ```` ```python ```` block), as in MyST;
    otherwise the inner fence would end the solution early and leak the rest of it, so that is a
    MarkupError.
    """
    out, n_solutions, i = [], 0, 0
    while i < len(lines):
        match = _FENCE.match(lines[i].rstrip("\n"))
        if not (match and match.group("info") and match.group("info").startswith("{solution}")):
            out.append(lines[i])
            i += 1
            continue
        fence, opened_at, inner = match.group("fence"), i + 1, None
        i += 1
        while True:
            if i >= len(lines) or not lines[i].startswith("#"):
                raise MarkupError(f"{path}:{opened_at}: the solution opened here is not closed by "
                                  f"'{fence}' within its markdown cell")
            text = lines[i].rstrip("\n")[1:].removeprefix(" ")
            inner_match = _FENCE.match("# " + text)
            if inner is None and _closes(fence, text):
                break
            if inner_match and inner_match.group("fence")[0] == fence[0]:
                inner_fence = inner_match.group("fence")
                if inner is None and inner_match.group("info"):
                    if len(inner_fence) >= len(fence):
                        raise MarkupError(
                            f"{path}:{i + 1}: the fence {inner_fence!r} inside the solution opened "
                            f"at line {opened_at} would close it; open the solution with a longer "
                            f"fence ({fence[0] * (len(inner_fence) + 1)}{{solution}})")
                    inner = inner_fence
                elif inner is not None and _closes(inner, text):
                    inner = None
            i += 1
        i += 1  # past the closing fence
        n_solutions += 1
        # Drop one blank comment line that separated the solution from what follows.
        if out and out[-1].strip() == "#" and i < len(lines) and lines[i].strip() == "#":
            i += 1
    return out, n_solutions


def solution_lines(text, path="<chapter>"):
    """The lines a student edition must not contain: every line of a code block or of a
    ``{solution}`` directive that appears nowhere else in the chapter (stripped, 12 characters
    or more, comment markers removed)."""
    def meaningful(lines):
        return {line.strip().lstrip("#").strip() for line in lines} - {""}

    lines = text.splitlines(keepends=True)
    kept_code, _ = strip_code_solutions(lines, path)
    kept_all, _ = strip_markdown_solutions(kept_code, path)
    elsewhere = meaningful(kept_all)
    return {line for line in meaningful(lines) - elsewhere if len(line) >= 12}


def with_exercises(text, exercise_file, path="<chapter>"):
    """The chapter's source with its graded exercises (a parsed ExerciseFile, or None) inserted:
    after each ``{exercise}`` directive, the exercise's answer cell and check cell (its wrong
    answers stay out), the exercise file's setup cell before the first of them."""
    if exercise_file is None:
        return text
    lines, out = text.splitlines(keepends=True), []
    pending = {exercise.label: exercise for exercise in exercise_file.exercises}
    setup, fence, label = exercise_file.setup.code, None, None
    for line in lines:
        out.append(line)
        match = _FENCE.match(line.rstrip("\n"))
        if fence is None:
            if match and (match.group("info") or "").startswith("{exercise}"):
                fence, label = match.group("fence"), None
            continue
        text_line = line.rstrip("\n")[1:].removeprefix(" ")
        if text_line.startswith(":label:"):
            label = text_line.split(":label:", 1)[1].strip()
        if not _closes(fence, text_line):
            continue
        fence = None
        if label not in pending:
            continue  # an exercise that is not graded (the tests ask that every one is)
        exercise = pending.pop(label)
        cells = ([setup] if setup else []) + [exercise.answer.code, exercise.check.code]
        out += ["\n"] + [cell.rstrip("\n") + "\n\n\n" for cell in cells] + ["# %% [markdown]\n"]
        setup = ""
    if pending:
        raise MarkupError(f"{path}: {exercise_file.path.name} grades "
                          f"{', '.join(sorted(pending))}, but the chapter has no {{exercise}} "
                          "with that label")
    return "".join(out)


def instructor_edition(chapter_path):
    """A chapter file's source with its graded exercises, answers in place."""
    chapter_path = Path(chapter_path)
    exercise_path = exercises.exercise_file_for(chapter_path)
    parsed = exercises.parse_exercise_file(exercise_path) if exercise_path.exists() else None
    return with_exercises(chapter_path.read_text(encoding="utf-8"), parsed, chapter_path)


def student_edition(text, path="<chapter>"):
    """The student edition of one chapter's source: ``(text, n_code_blocks, n_solutions)``."""
    lines = text.splitlines(keepends=True)
    lines, n_blocks = strip_code_solutions(lines, path)
    lines, n_solutions = strip_markdown_solutions(lines, path)
    return "".join(lines), n_blocks, n_solutions


STUDENT_README = """\
# The chapters, for you to complete

Each chapter is here twice: `chNN_*.py` (run it with `python chNN_*.py`, or open it in an editor
that reads `# %%` cells) and `chNN_*.ipynb` (open it in Jupyter). Some code cells hold a blank:

    # BEGIN YOUR CODE (chapter 07, block 1)
    raise NotImplementedError("chapter 07, block 1: define scaled, weights, output")
    # END YOUR CODE

Replace the `raise` line with your code; the message says what to define. The checks after it
tell you whether it is right. Each exercise has such a blank too, right after its statement, in
a cell headed `# %% exercise LABEL (N points)`: the comment lines above the blank say what to
define, and the `# %% check LABEL` cell after it checks your answer. To see your score, block by
block and exercise by exercise, for the `.py` files:

    minitransformer grade .                      # or: minitransformer grade . --chapter 07

(it writes grade.json). Work in the `.py` files if you want them graded, or export your
notebook back to a script (`jupytext --to py:percent chNN_*.ipynb`).
"""


def _notebook(text):
    """The chapter as a notebook (jupytext reads the ``# %%`` cells)."""
    try:
        import jupytext
    except ImportError as error:
        raise ImportError("write_student_edition: the notebooks need jupytext "
                          "(pip install jupytext, or the project's [dev] extra)") from error
    return jupytext.writes(jupytext.reads(text, fmt="py:percent"), fmt="ipynb")


def write_student_edition(source_dir, out_dir, force=False, log=print, solutions=False):
    """Write the student edition of every ``chNN_*.py`` in ``source_dir`` into ``out_dir``: each
    chapter, with its graded exercises, as a script and as a notebook, and a README.md for
    students. ``solutions=True`` writes the instructor's edition (answers kept) instead.

    Returns ``{chapter file name: (n_code_blocks, n_solutions)}`` (what was removed: zeros for
    the instructor's edition). Refuses to write into ``source_dir`` itself, and into a folder
    that already holds files unless ``force``.
    """
    source_dir, out_dir = Path(source_dir).resolve(), Path(out_dir).resolve()
    chapters = sorted(source_dir.glob("ch*.py"))
    if not chapters:
        raise FileNotFoundError(f"write_student_edition: no chNN_*.py chapters in {source_dir}")
    if out_dir == source_dir:
        raise ValueError(f"write_student_edition: out_dir is the tutorials folder {source_dir}; "
                         "the student edition must go elsewhere")
    if out_dir.exists() and any(out_dir.iterdir()) and not force:
        raise FileExistsError(f"write_student_edition: {out_dir} already holds files; "
                              "choose an empty folder or pass force=True (--force)")
    try:  # parse everything before writing anything
        sources = {path.name: instructor_edition(path) for path in chapters}
    except exercises.ExerciseFileError as error:
        raise MarkupError(str(error)) from error
    editions = {name: (text, 0, 0) if solutions else student_edition(text, source_dir / name)
                for name, text in sources.items()}
    notebooks = {name: _notebook(text) for name, (text, _, _) in editions.items()}
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "README.md").write_text(STUDENT_README, encoding="utf-8")
    counts = {}
    for name, (text, n_blocks, n_solutions) in editions.items():
        (out_dir / name).write_text(text, encoding="utf-8")
        (out_dir / name).with_suffix(".ipynb").write_text(notebooks[name], encoding="utf-8")
        counts[name] = (n_blocks, n_solutions)
        log(f"{name}: {n_blocks} code block(s) and {n_solutions} solution(s) removed")
    return counts


def build_student_docs(out_dir, log=print):
    """Build the docs site from the chapters in ``out_dir`` into ``out_dir/docs`` (not
    executed). The docs sources are copied to a temporary folder first, so the instructor's
    build (docs/chapters, its cache) is never touched."""
    out_dir = Path(out_dir).resolve()
    with tempfile.TemporaryDirectory() as folder:
        docs = Path(folder) / "docs"
        shutil.copytree(REPO_ROOT / "docs", docs,
                        ignore=shutil.ignore_patterns("_build", "chapters", "__pycache__"))
        env = dict(os.environ, MINITRANSFORMER_CHAPTERS_DIR=str(out_dir),
                   MINITRANSFORMER_DOCS_EXECUTE="0")
        site = Path(folder) / "build" / "html"  # sphinx's side files stay in the temporary folder
        result = subprocess.run([sys.executable, "-m", "sphinx", "-q", "-b", "html", str(docs),
                                 str(site)], env=env, capture_output=True, text=True)
        if result.returncode != 0:
            raise OSError(f"build_student_docs: sphinx failed: {result.stderr.strip()[-500:]}")
        shutil.rmtree(out_dir / "docs", ignore_errors=True)
        shutil.copytree(site, out_dir / "docs")
    log(f"docs without solutions: {out_dir / 'docs' / 'index.html'}")
    return out_dir / "docs"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", help="folder for the student edition (new or empty)")
    parser.add_argument("--tutorials", default=str(Path(__file__).resolve().parents[1]
                                                   / "tutorials"),
                        help="folder of the chapters to read (default: the repository's)")
    parser.add_argument("--force", action="store_true",
                        help="write even if out_dir already holds files (chapters are replaced)")
    parser.add_argument("--solutions", action="store_true",
                        help="write the instructor's edition: the same files with every answer "
                             "in place (grades at full marks)")
    parser.add_argument("--docs", action="store_true",
                        help="also build the docs site from the student chapters (out_dir/docs; "
                             "needs the [docs] extra)")
    args = parser.parse_args(argv)
    try:
        counts = write_student_edition(args.tutorials, args.out_dir, force=args.force,
                                       solutions=args.solutions)
        if args.docs:
            build_student_docs(args.out_dir)
    except (MarkupError, ValueError, OSError, ImportError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if args.solutions:
        print(f"{len(counts)} chapters (.py and .ipynb), with their graded exercises and every "
              f"answer in place, written to {args.out_dir}. Check that they grade at full marks:"
              f"\n  minitransformer grade {args.out_dir}")
        return 0
    blocks = sum(n for n, _ in counts.values())
    solutions = sum(n for _, n in counts.values())
    print(f"{len(counts)} chapters (.py and .ipynb) written to {args.out_dir}: {blocks} code "
          f"blocks and {solutions} exercise solutions removed. Grade with:\n"
          f"  minitransformer grade {args.out_dir}\n"
          f"  MINITRANSFORMER_TUTORIALS_DIR={args.out_dir} pytest tests/tutorials/test_chapters.py")
    return 0


if __name__ == "__main__":
    sys.exit(main())
