"""The built docs work offline and show no warning noise (tools/check_built_docs.py).

The checker is tested on small pages here; the last test checks the real site when it has been
built (CI builds it before running the tests: .ci/run; locally: make docs)."""

from pathlib import Path

import check_built_docs
import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SITE = REPO_ROOT / "docs" / "_build" / "html"

CLEAN = """<html><head><script src="_static/mathjax/tex-chtml.js"></script>
<link rel="stylesheet" href="_static/theme.css"></head><body>
<a href="https://arxiv.org/abs/1706.03762">the paper</a>
<div class="cell_output docutils container"><div class="output stream highlight-myst-ansi">
<pre>ShapeError: add: shapes (2, 3) and (2,) cannot broadcast</pre></div></div>
</body></html>"""


def test_a_clean_page_has_no_findings():
    assert check_built_docs.check_page(CLEAN) == []


@pytest.mark.parametrize("html, finding", [
    ('<script defer src="https://cdn.jsdelivr.net/npm/mathjax@4/tex-mml-chtml.js"></script>',
     "loads <script> https://cdn.jsdelivr.net"),
    ('<link rel="stylesheet" href="//fonts.example.org/a.css">', "loads <link> //fonts"),
    ('<div class="cell_output"><div><pre>/home/u/site-packages/tqdm/auto.py:21: TqdmWarning: '
     'IProgress not found</pre></div></div>', "output 1 shows"),
    ('<div class="cell_output"><pre>Traceback (most recent call last):\n  File "x"</pre></div>',
     "Traceback"),
])
def test_network_resources_and_noisy_outputs_are_found(html, finding):
    findings = check_built_docs.check_page(html, "p.html")
    assert len(findings) == 1 and finding in findings[0] and findings[0].startswith("p.html: ")


def test_text_outside_output_cells_is_not_noise():
    html = '<p>A UserWarning: is how Python prints a warning.</p><div class="cell_output">ok</div>'
    assert check_built_docs.check_page(html) == []


def test_an_unbuilt_site_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no .html pages under .*build the docs first"):
        check_built_docs.check_site(tmp_path)


@pytest.mark.skipif(not (SITE / "index.html").exists(),
                    reason="the docs are not built here (make docs); CI builds them first")
def test_the_built_site_works_offline_and_its_outputs_are_clean():
    findings, pages = check_built_docs.check_site(SITE)
    assert pages >= 30 and findings == []
    assert (SITE / "_static" / "mathjax" / "tex-chtml.js").exists()


@pytest.mark.skipif(not (SITE / "index.html").exists(),
                    reason="the docs are not built here (make docs); CI builds them first")
def test_each_chapter_page_links_its_notebook_with_outputs_and_an_install_cell():
    import json
    import re

    chapters = sorted((REPO_ROOT / "tutorials").glob("ch*.py"))
    for chapter in chapters:
        page = (SITE / "chapters" / f"{chapter.stem}.html").read_text(encoding="utf-8")
        assert f'href="../notebooks/{chapter.stem}.ipynb"' in page, chapter.stem
        notebook = json.loads((SITE / "notebooks" / f"{chapter.stem}.ipynb").read_text(
            encoding="utf-8"))
        install = "".join(notebook["cells"][0]["source"])
        homepage = re.search(r'Homepage = "([^"]+)"',
                             (REPO_ROOT / "pyproject.toml").read_text()).group(1)
        assert f'%pip install --quiet "minitransformer[plot] @ git+{homepage}"' in install
        assert sum(len(cell.get("outputs", [])) for cell in notebook["cells"]) >= 3, chapter.stem
        assert not [cell for cell in notebook["cells"] if any(
            output.get("output_type") == "error" for output in cell.get("outputs", []))]


@pytest.mark.skipif(not (SITE / "index.html").exists(),
                    reason="the docs are not built here (make docs); CI builds them first")
def test_the_install_cell_runs_in_a_kernel_and_skips_what_is_installed():
    nbclient = pytest.importorskip("nbclient", reason="needs the [docs] extra")
    nbformat = pytest.importorskip("nbformat", reason="needs the [docs] extra")
    first = nbformat.reads((SITE / "notebooks" / "ch01_scalar_autograd.ipynb").read_text(
        encoding="utf-8"), as_version=4)
    first.cells = first.cells[:1]
    first.cells[0].source += "\nimport minitransformer\nprint(minitransformer.__name__)"
    nbclient.NotebookClient(first, timeout=120, kernel_name="python3").execute()
    assert [output["text"] for output in first.cells[0].outputs] == ["minitransformer\n"]
