"""Every tutorial chapter runs from start to end, in its fast mode, in a fresh interpreter.

Each chapter is a jupytext percent-format script whose ``assert``s check what it teaches, so a
chapter that runs to the end has taught correctly. Run one with ``pytest -m ch01``.

The same tests grade a student edition (``tools/student_edition.py``): point them at it with
``MINITRANSFORMER_TUTORIALS_DIR=student pytest tests/tutorials/test_chapters.py``.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
TUTORIALS = Path(os.environ.get("MINITRANSFORMER_TUTORIALS_DIR") or REPO_ROOT / "tutorials")
CHAPTERS = sorted(TUTORIALS.resolve().glob("ch*.py"))
TIMEOUT_S = 600  # ch14 and ch15 take about 4 minutes in fast mode on 2 busy cores


def _chapter_param(path):
    """One pytest param per chapter: id = file stem, marker = its number (ch01, ch02, ...)."""
    marker = getattr(pytest.mark, path.stem.split("_")[0])
    return pytest.param(path, marks=marker, id=path.stem)


def _environment():
    env = dict(os.environ)
    env["MINITRANSFORMER_FAST"] = "1"
    env["MPLBACKEND"] = "Agg"  # should a chapter ever plot, never open a window
    paths = [str(REPO_ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


def test_chapters_are_found():
    assert CHAPTERS, f"no ch*.py chapters in {TUTORIALS}"


@pytest.mark.parametrize("path", [_chapter_param(path) for path in CHAPTERS])
def test_chapter_runs(path, tmp_path):
    result = subprocess.run(
        [sys.executable, str(path)],
        cwd=tmp_path,  # anything a chapter writes lands in a temp dir
        env=_environment(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert result.returncode == 0, (
        f"{path.name} exited with code {result.returncode}\n"
        f"--- stderr ---\n{result.stderr}\n--- stdout (last 2000 chars) ---\n"
        f"{result.stdout[-2000:]}"
    )
