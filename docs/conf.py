"""Sphinx settings for the minitransformer docs site.

Build it (offline, warnings are errors) from the repository root with ``make docs``, i.e.
``python -m sphinx -W --keep-going -b html docs docs/_build/html``.

The tutorial chapters (``tutorials/chNN_*.py``, jupytext percent format) are copied into
``docs/chapters/`` at the start of each build and rendered by MyST-NB as pages. They are executed
in fast mode so the pages show real outputs; set ``MINITRANSFORMER_DOCS_EXECUTE=0`` to render them
without running them (a quick check of the text). ``MINITRANSFORMER_CHAPTERS_DIR`` names another
folder of chapters to render (the student edition's docs: ``tools/student_edition.py --docs``).
"""

import os
import shutil
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))  # autodoc imports the package from this checkout

import minitransformer  # noqa: E402


def _copy_chapters():
    """Mirror tutorials/ch*.py into docs/chapters/, touching only files that changed."""
    target = DOCS / "chapters"
    target.mkdir(exist_ok=True)
    folder = Path(os.environ.get("MINITRANSFORMER_CHAPTERS_DIR") or ROOT / "tutorials")
    sources = {path.name: path for path in sorted(folder.glob("ch*.py"))}
    for stale in target.glob("ch*.py"):
        if stale.name not in sources:
            stale.unlink()
    for name, source in sources.items():
        copy = target / name
        if not copy.exists() or copy.read_bytes() != source.read_bytes():
            shutil.copyfile(source, copy)


_copy_chapters()

project = "minitransformer"
copyright = "minitransformer contributors"  # noqa: A001 (the name Sphinx reads)
version = release = minitransformer.__version__

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.mathjax",
    "sphinx-mathjax-offline",  # MathJax 3 copied into _static: formulas render without internet
    "sphinx.ext.viewcode",
    "sphinx_exercise",
]
exclude_patterns = ["_build", "conf.py", "Thumbs.db", ".DS_Store"]

# MyST: $math$, ::: fences, and heading anchors for links like [text](page.md#section).
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3

# Chapters are jupytext percent-format scripts; MyST-NB reads them as notebooks.
nb_custom_formats = {".py": ["jupytext.reads", {"fmt": "py:percent"}]}
# Executed outputs are cached (docs/_build/.jupyter_cache): a rebuild re-executes only the
# chapters that changed. MINITRANSFORMER_DOCS_EXECUTE=0 skips execution, =force runs them all.
nb_execution_mode = {"0": "off", "force": "force"}.get(
    os.environ.get("MINITRANSFORMER_DOCS_EXECUTE", ""), "cache")
nb_execution_timeout = 300
nb_execution_raise_on_error = True
nb_execution_in_temp = True  # files a chapter writes land in a temporary folder
nb_merge_streams = True
os.environ["MINITRANSFORMER_FAST"] = "1"  # the kernels inherit it: chapters run in fast mode
os.environ["MPLBACKEND"] = "Agg"
os.environ["TQDM_DISABLE"] = "1"

autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_typehints = "none"
autodoc_preserve_defaults = True  # signatures show `pattern=WORD_PATTERN`, not the regex

html_theme = "sphinx_book_theme"
html_title = f"minitransformer {release}"
html_theme_options = {
    "show_toc_level": 2,
    "use_download_button": False,
}
html_static_path = []
