"""`make notebooks` turns every chapter into a notebook whose cells follow the chapter's."""

import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
CHAPTERS = sorted((REPO_ROOT / "tutorials").glob("ch*.py"))


def test_every_chapter_converts_to_a_notebook(tmp_path):
    jupytext = pytest.importorskip("jupytext")
    for chapter in CHAPTERS:
        notebook = jupytext.read(chapter)
        kinds = {cell.cell_type for cell in notebook.cells}
        assert kinds == {"markdown", "code"}, chapter.name
        assert notebook.cells[0].cell_type == "markdown", f"{chapter.name} opens with its title"
    result = subprocess.run([sys.executable, "-m", "jupytext", "--to", "notebook", "--output",
                             str(tmp_path / "ch01.ipynb"), str(CHAPTERS[0])],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "ch01.ipynb").read_text().startswith("{")
