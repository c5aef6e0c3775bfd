"""The graded exercises: ``tutorials/exercises/chNN.py``, one file per chapter.

A chapter's ``{exercise}`` directives say what to do; its exercise file says how an answer is
graded. The file is a script of ``# %%`` cells of four kinds, told apart by their first line:

``# %% setup``
    Imports and helpers; the first cell, run before any exercise.
``# %% exercise ch07-variance-two (2 points)``
    The answer cell: comment lines saying what to define (names, shapes, meaning), then the
    reference answer between ``# BEGIN SOLUTION`` and ``# END SOLUTION``. The label is the
    ``{exercise}``'s ``:label:`` in the chapter.
``# %% check ch07-variance-two``
    The check: ``assert``s whose messages name what is wrong.
``# %% wrong ch07-variance-two``
    A plausible wrong answer (run after the reference one, replacing part of it) that the
    check must reject; the tests prove every check rejects its wrong answers.

Each exercise stands on its own (the setup cell is all it may assume), so that it can be checked
in isolation and appended to a chapter: the setup cell repeats what it needs from the chapter,
and a wrong answer repeats its reference answer but for the mistake, on purpose. The student
edition (``tools/student_edition.py``) puts each exercise's answer cell, blanked, and its check
cell right after the exercise's statement; ``minitransformer grade`` gives the exercise its
points when its check passes. ``wrong`` cells never leave the instructor's files.
"""

import re
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
EXERCISES_DIR = REPO_ROOT / "tutorials" / "exercises"

HEADER = re.compile(r"^# %% (?P<kind>setup|exercise|check|wrong)\b\s*(?P<rest>.*)$")
EXERCISE_HEADER = re.compile(r"^(?P<label>[\w-]+) \((?P<points>\d+) points?\)$")
LABEL = re.compile(r"^# :label: (?P<label>[\w-]+)\s*$")


class ExerciseFileError(ValueError):
    """An exercise file is malformed; the message names the file, the line and the rule."""


@dataclass
class Cell:
    """One cell's code (its header line included) and the line of the file it starts at."""

    code: str
    line: int

    def run(self, path, namespace):
        """Execute the cell in ``namespace``; tracebacks name the file's own line numbers."""
        exec(compile("\n" * (self.line - 1) + self.code, str(path), "exec"), namespace)


@dataclass
class Exercise:
    """One graded exercise: its answer cell, its check cell and its wrong answers."""

    label: str
    points: int
    answer: Cell
    check: Cell = None
    wrong: list = field(default_factory=list)


@dataclass
class ExerciseFile:
    """A chapter's exercise file, parsed: the setup code and the exercises in order."""

    path: Path
    setup: Cell
    exercises: list

    def __getitem__(self, label):
        for exercise in self.exercises:
            if exercise.label == label:
                return exercise
        raise KeyError(f"{self.path.name}: no exercise labelled {label!r}")


def _cells(text, path):
    """[(kind, rest of the header, first line number, code)] for the file's cells."""
    cells, current = [], None
    for number, line in enumerate(text.splitlines(keepends=True), 1):
        if line.startswith("# %%"):
            match = HEADER.match(line.rstrip("\n"))
            if not match:
                raise ExerciseFileError(
                    f"{path}:{number}: a cell header must be '# %% setup', '# %% exercise LABEL "
                    "(N points)', '# %% check LABEL' or '# %% wrong LABEL', not "
                    f"{line.strip()!r}")
            current = [match.group("kind"), match.group("rest").strip(), number, line]
            cells.append(current)
        elif current is None:
            if line.strip():
                raise ExerciseFileError(f"{path}:{number}: code before the first '# %%' cell")
        else:
            current[3] += line
    return [tuple(cell) for cell in cells]


def parse_exercise_file(path):
    """An ExerciseFile; raises ExerciseFileError for a file that breaks the rules above."""
    path = Path(path)
    cells = _cells(path.read_text(encoding="utf-8"), path)
    if not cells or cells[0][0] != "setup":
        raise ExerciseFileError(f"{path}:1: the first cell must be '# %% setup'")
    exercises = {}
    for kind, rest, number, code in cells[1:]:
        if kind == "setup":
            raise ExerciseFileError(f"{path}:{number}: only the first cell may be '# %% setup'")
        if kind == "exercise":
            match = EXERCISE_HEADER.match(rest)
            if not match:
                raise ExerciseFileError(f"{path}:{number}: write '# %% exercise LABEL (N points)', "
                                        f"not '# %% exercise {rest}'")
            label, points = match.group("label"), int(match.group("points"))
            if label in exercises:
                raise ExerciseFileError(f"{path}:{number}: exercise {label!r} appears twice")
            if points < 1:
                raise ExerciseFileError(f"{path}:{number}: {label} must be worth 1 point or more")
            if code.count("# BEGIN SOLUTION") != 1 or code.count("# END SOLUTION") != 1:
                raise ExerciseFileError(f"{path}:{number}: the answer cell of {label} must hold "
                                        "one '# BEGIN SOLUTION' ... '# END SOLUTION' block")
            exercises[label] = Exercise(label, points, Cell(code, number))
            continue
        if rest not in exercises:
            raise ExerciseFileError(f"{path}:{number}: '# %% {kind} {rest}' comes before (or "
                                    f"without) the '# %% exercise {rest} (N points)' cell")
        if kind == "check":
            if exercises[rest].check:
                raise ExerciseFileError(f"{path}:{number}: {rest} has a second check cell")
            exercises[rest].check = Cell(code, number)
        else:
            exercises[rest].wrong.append(Cell(code, number))
    for exercise in exercises.values():
        if not exercise.check:
            raise ExerciseFileError(f"{path}:{exercise.answer.line}: {exercise.label} has no "
                                    "check cell")
        if not exercise.wrong:
            raise ExerciseFileError(f"{path}:{exercise.answer.line}: {exercise.label} has no wrong "
                                    "answer to prove its check rejects one")
    return ExerciseFile(path, Cell(cells[0][3], 1), list(exercises.values()))


def chapter_labels(chapter_text):
    """The ``:label:``s of a chapter's ``{exercise}`` directives, in order."""
    labels, inside = [], False
    for line in chapter_text.splitlines():
        stripped = line.strip()
        if re.match(r"^# ?(`{3,}|:{3,})\s*\{exercise\}", stripped):
            inside = True
        elif inside and LABEL.match(stripped):
            labels.append(LABEL.match(stripped).group("label"))
            inside = False
    return labels


def exercise_file_for(chapter_path):
    """The exercise file of a chapter (tutorials/chNN_*.py -> tutorials/exercises/chNN.py)."""
    chapter_path = Path(chapter_path)
    return chapter_path.parent / "exercises" / (chapter_path.name.split("_")[0] + ".py")


def run_exercise(exercise_file, exercise, wrong=None, namespace=None):
    """Run the setup, the exercise's reference answer, then (if given) one of its wrong answers
    (a Cell),
    then its check, in ``namespace`` (a fresh one by default). Raises what the check raises."""
    namespace = {"__name__": "__exercise__"} if namespace is None else namespace
    for cell in [exercise_file.setup, exercise.answer] + ([wrong] if wrong else []) + \
            [exercise.check]:
        cell.run(exercise_file.path, namespace)
    return namespace
