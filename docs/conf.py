"""Sphinx settings for the minitransformer docs site.

Build it (offline, warnings are errors) from the repository root with ``make docs``, i.e.
``python -m sphinx -W --keep-going -b html docs docs/_build/html``.

The tutorial chapters (``tutorials/chNN_*.py``, jupytext percent format) are copied into
``docs/chapters/`` at the start of each build and rendered by MyST-NB as pages. They are executed
in fast mode so the pages show real outputs; set ``MINITRANSFORMER_DOCS_EXECUTE=0`` to render them
without running them (a quick check of the text). ``MINITRANSFORMER_CHAPTERS_DIR`` names another
folder of chapters to render (the student edition's docs: ``tools/student_edition.py --docs``).

Each chapter is also published as a notebook with its outputs (``notebooks/chNN_*.ipynb`` in the
built site, linked under the chapter's title), opening with a cell that installs minitransformer
when it is missing, as on a hosted notebook service.
"""

import importlib.metadata
import os
import re
import shutil
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # the package's own dependency on Python 3.10
    import tomli as tomllib

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


def _homepage():
    """The project's Homepage URL: from pyproject.toml, or from the installed package's
    metadata when the docs are built from a copy (the student edition's site)."""
    if (ROOT / "pyproject.toml").exists():
        project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
        return project["project"]["urls"]["Homepage"]
    urls = importlib.metadata.metadata("minitransformer").get_all("Project-URL")
    return dict(url.split(", ", 1) for url in urls)["Homepage"]


HOMEPAGE = _homepage()
INSTALL_CELL = (
    "# On a hosted notebook service (Colab, Binder, ...) this installs minitransformer first;\n"
    "# where it is installed already, it does nothing.\n"
    "import importlib.util\n\n"
    'if importlib.util.find_spec("minitransformer") is None:\n'
    f'    %pip install --quiet "minitransformer[plot] @ git+{HOMEPAGE}"')


def _link_notebook(app, docname, source):
    """Under a chapter's title, a link to the chapter as a notebook with its outputs."""
    if not docname.startswith("chapters/ch"):
        return
    name = docname.split("/")[1]
    link = (f'# <p><a href="../notebooks/{name}.ipynb" download>This chapter as a notebook, '
            "with its outputs</a> (its first cell installs minitransformer where it is "
            "missing)</p>\n")
    source[0] = re.sub(r"^(# # .*\n)", lambda title: title.group(1) + "#\n" + link, source[0],
                       count=1, flags=re.MULTILINE)


def _publish_notebooks(app, exception):
    """Write each chapter into the site as a notebook (``notebooks/``): its outputs from the
    execution cache (none when the chapters are not executed), the install cell first."""
    if exception is not None or app.builder.name != "html":
        return
    import jupytext
    import nbformat
    from jupyter_cache import get_cache

    cache = None if nb_execution_mode == "off" else \
        get_cache(app.env.mystnb_config.execution_cache_path)
    target = Path(app.outdir) / "notebooks"
    target.mkdir(exist_ok=True)
    for path in sorted((Path(app.srcdir) / "chapters").glob("ch*.py")):
        notebook = jupytext.read(path, fmt="py:percent")
        if cache is not None:
            try:
                _, notebook = cache.merge_match_into_notebook(notebook)
            except KeyError:  # not executed (yet): the notebook goes out without outputs
                pass
        install = {"cell_type": "code", "id": "install", "metadata": {},
                   "execution_count": None, "outputs": [], "source": INSTALL_CELL}
        notebook.cells.insert(0, nbformat.from_dict(install))
        nbformat.write(notebook, target / f"{path.stem}.ipynb")


def setup(app):
    app.connect("source-read", _link_notebook)
    app.connect("build-finished", _publish_notebooks)
