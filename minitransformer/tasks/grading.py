"""``minitransformer grade DIR``: grade a student's chapters block by block and exercise by
exercise, with partial credit.

A student edition (``tools/student_edition.py``) replaces each solution block of a chapter by a
blank between two marker lines::

    # BEGIN YOUR CODE (chapter 07, block 1)
    raise NotImplementedError("chapter 07, block 1: define scaled, weights, output")
    # END YOUR CODE

and the chapter's own checks (its ``assert`` statements) follow each block. The grader runs a
chapter cell by cell (the ``# %%`` cells), in one namespace, and goes on after a cell fails, so
that one wrong block does not hide the others. Block k is answered for by the cells from the one
that holds it up to the one before block k + 1 (the cells before block 1 count for block 1): it
earns its point when none of them fails. A failing block gets the first failure in its cells as
its message:

- a blank: "blank: define scaled, weights, output" (what the block must define), whether or not
  the chapter reached it (a blank inside a method counts even if the method is never called),
  and a blank reached from a later cell is charged to its own block;
- a failed check: the chapter's message ("scores differ from QKᵀ/√d_k: is the division by
  √d_k there?"), or the check itself with its line when the assert has no message;
- any other error: its type, message and line; a NameError adds that an earlier block that
  failed may be the one to define the name.

A block in an exercise's answer cell (a cell headed ``# %% exercise ch07-variance-two (2
points)``, as the student edition writes them after each exercise) is worth that many points and
is named by the exercise's label; every other block is worth 1 point. The check cell after an
answer is among the answer's cells, so the exercise earns its points when its check passes.

The instructor's chapters (with ``# BEGIN SOLUTION`` blocks) grade the same way, at full marks.
Each chapter runs in a fresh interpreter, in fast mode (MINITRANSFORMER_FAST=1), in a temporary
folder. The results go to ``DIR/grade.json``.
"""

import json
import os
import re
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = ["BlockGrade", "find_blocks", "format_grades", "grade_chapter", "grade_folder"]

BLOCK_MARKER = re.compile(r"^\s*# BEGIN (YOUR CODE|SOLUTION)\b")
CELL_MARKER = "# %%"
BLANK = re.compile(r"^chapter \S+, block (?P<block>\d+): (?P<what>.+)$")
EXERCISE_CELL = re.compile(r"^# %% exercise (?P<label>[\w-]+) \((?P<points>\d+) points?\)\s*$")
BLANK_LINE = re.compile(
    r'^\s*raise NotImplementedError\("(?P<message>chapter \S+, block \d+: .+)"\)\s*$')

# Runs in the child interpreter: every cell of the chapter, in order, in one namespace; one JSON
# line per cell, written as it finishes (a chapter that hangs still reports its first cells).
RUNNER = r'''
import json, os, sys, traceback
path, out = sys.argv[1], sys.argv[2]
lines = open(path, encoding="utf-8").read().splitlines(keepends=True)
starts = [i for i, line in enumerate(lines) if line.startswith("# %%")]
starts = starts if starts and starts[0] == 0 else [0] + starts
sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
namespace = {"__name__": "__main__", "__file__": path}
with open(out, "w", encoding="utf-8") as report:
    for first, last in zip(starts, starts[1:] + [len(lines)]):
        row = {"first": first + 1, "last": last, "error": None}
        try:
            code = "\n" * first + "".join(lines[first:last])
            exec(compile(code, path, "exec"), namespace)
        except (Exception, SystemExit) as error:
            frames = [f for f in traceback.extract_tb(error.__traceback__) if f.filename == path]
            row["error"] = {"type": type(error).__name__, "message": str(error),
                            "line": frames[-1].lineno if frames else None}
        report.write(json.dumps(row) + "\n")
        report.flush()
'''


@dataclass
class BlockGrade:
    """One block's grade: ``points`` of ``max_points``, and what was wrong ("" when right);
    ``exercise`` is the label of the exercise it answers ("" for a block of the chapter)."""

    chapter: str
    block: int
    points: int
    max_points: int
    message: str
    exercise: str = ""


def find_blocks(lines):
    """The 1-based line numbers of the blocks' opening markers (# BEGIN YOUR CODE or # BEGIN
    SOLUTION), in order."""
    return [number for number, line in enumerate(lines, 1) if BLOCK_MARKER.match(line)]


def block_exercise(lines, first):
    """(label, points) of the block whose marker is on line ``first``: the exercise whose answer
    cell holds it, or ("", 1) for a block of the chapter itself."""
    for line in reversed(lines[: first - 1]):
        if line.startswith(CELL_MARKER):
            match = EXERCISE_CELL.match(line)
            return (match.group("label"), int(match.group("points"))) if match else ("", 1)
    return "", 1


def _blanks(lines, blocks):
    """{block index: "blank: ..."} for the blocks still holding only the student edition's
    ``raise NotImplementedError(...)``: blank whether or not the chapter ever runs that line
    (a blank inside a method is only reached when the method is called)."""
    blanks = {}
    for index, first in enumerate(blocks):
        body = []
        for line in lines[first:]:
            if line.strip().startswith("# END YOUR CODE") or BLOCK_MARKER.match(line):
                break
            if line.strip() and not line.strip().startswith("#"):
                body.append(line)
        match = BLANK_LINE.match(body[0]) if len(body) == 1 else None
        if match:
            blanks[index] = f"blank: {BLANK.match(match.group('message')).group('what')}"
    return blanks


def _run_cells(path, timeout):
    """(cell rows, what stopped the run early or None): the RUNNER's report on ``path``."""
    env = dict(os.environ, MINITRANSFORMER_FAST="1", MPLBACKEND="Agg", TQDM_DISABLE="1")
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "cells.jsonl"
        try:
            result = subprocess.run([sys.executable, "-c", RUNNER, str(path), str(report)],
                                    cwd=folder, env=env, capture_output=True, text=True,
                                    timeout=timeout)
            stopped = None if result.returncode == 0 else \
                f"the chapter's process ended with exit code {result.returncode}: " + \
                (result.stderr.strip().splitlines() or [""])[-1][:200]
        except subprocess.TimeoutExpired:
            stopped = f"the chapter did not finish within {timeout} s"
        rows = [json.loads(line) for line in report.read_text(encoding="utf-8").splitlines()
                if line.strip()] if report.exists() else []
    return rows, stopped


def _message(error, lines):
    """One line on what went wrong in a cell."""
    kind, text, line = error["type"], error["message"].strip(), error["line"]
    source = lines[line - 1].strip() if line and line <= len(lines) else ""
    where = f"line {line}: {source}" if line else "no line"
    blank = BLANK.match(text)
    if kind == "NotImplementedError" and blank:
        return f"blank: {blank.group('what')}"
    if kind == "AssertionError":
        return text if text else f"check failed at {where}"
    if kind == "NameError":
        return f"NameError: {text} ({where}); an earlier block that failed may define it"
    return f"{kind}: {text} ({where})"


def grade_chapter(path, timeout=600):
    """The BlockGrades of one chapter file (a student's or the instructor's)."""
    path = Path(path).resolve()
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks = find_blocks(lines)
    chapter = path.stem
    if not blocks:
        return []
    rows, stopped = _run_cells(path, timeout)
    failures = _blanks(lines, blocks)  # block index -> what is wrong with it
    for row in rows:
        if not row["error"]:
            continue
        owner = max([0] + [k for k, first in enumerate(blocks) if first <= row["last"]])
        blank = BLANK.match(row["error"]["message"].strip())
        if row["error"]["type"] == "NotImplementedError" and blank and \
                int(blank.group("block")) <= len(blocks):
            owner = int(blank.group("block")) - 1  # a blank reached later: its own block's
        if owner not in failures:
            failures[owner] = _message(row["error"], lines)
    reached = max((row["last"] for row in rows), default=0)
    grades = []
    for index, first in enumerate(blocks):
        message = failures.get(index, "")
        if not message and stopped and first > reached:
            message = stopped
        exercise, worth = block_exercise(lines, first)
        grades.append(BlockGrade(chapter, index + 1, 0 if message else worth, worth,
                                 message[:300], exercise))
    if stopped and grades and all(g.points for g in grades) and reached < len(lines):
        last = grades[-1]
        grades[-1] = BlockGrade(chapter, last.block, 0, last.max_points, stopped, last.exercise)
    return grades


def grade_folder(folder, chapter=None, timeout=600, progress=None):
    """Grade every ``ch*.py`` of ``folder`` (only those whose number or name contains
    ``chapter`` when given); writes ``folder/grade.json`` and returns its content."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"grade: no folder {folder}")
    chapters = sorted(folder.glob("ch*.py"))
    if chapter is not None:
        chapters = [p for p in chapters if str(chapter) in p.stem]
    if not chapters:
        raise FileNotFoundError(f"grade: no chapters (ch*.py) in {folder}" +
                                (f" matching {chapter!r}" if chapter is not None else ""))
    start, graded = time.perf_counter(), {}
    for path in chapters:
        if progress:
            progress(f"grading {path.name} ...")
        grades = grade_chapter(path, timeout)
        graded[path.stem] = {"points": sum(g.points for g in grades),
                             "max_points": sum(g.max_points for g in grades),
                             "blocks": [asdict(g) for g in grades]}
    result = {"folder": str(folder), "chapters": graded,
              "points": sum(c["points"] for c in graded.values()),
              "max_points": sum(c["max_points"] for c in graded.values()),
              "seconds": round(time.perf_counter() - start, 1)}
    temporary = folder / ".grade.json.tmp"
    temporary.write_text(json.dumps(result, indent=1, ensure_ascii=False), encoding="utf-8")
    os.replace(temporary, folder / "grade.json")
    return result


def format_grades(result, width=100):
    """The table ``minitransformer grade`` prints: chapter, block or exercise, points, message."""
    parts = {(name, block["block"]): block.get("exercise") or f"block {block['block']}"
             for name, chapter in result["chapters"].items() for block in chapter["blocks"]}
    name_width = max([7] + [len(name) for name in result["chapters"]])
    part_width = max([8] + [len(part) for part in parts.values()])
    indent = name_width + part_width + 10
    room = max(30, width - indent)
    lines = [f"{'chapter':<{name_width}} {'part':<{part_width}} {'points':>6}  message",
             "-" * width]
    for name, chapter in result["chapters"].items():
        for block in chapter["blocks"]:
            points = f"{block['points']}/{block['max_points']}"
            message = textwrap.wrap(block["message"] or "right", room) or [""]
            part = parts[name, block["block"]]
            lines.append(f"{name:<{name_width}} {part:<{part_width}} {points:>6}  {message[0]}")
            lines += [f"{'':<{indent}}{more}" for more in message[1:]]
        total = f"{chapter['points']}/{chapter['max_points']}"
        lines.append(f"{'':<{name_width}} {'total':<{part_width}} {total:>6}")
    lines.append("-" * width)
    lines.append(f"{result['points']} of {result['max_points']} points in "
                 f"{len(result['chapters'])} chapter(s), {result['seconds']:.0f} s; details: "
                 f"{Path(result['folder']) / 'grade.json'}")
    return "\n".join(lines)
