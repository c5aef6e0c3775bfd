"""tools/slides.py: one offline deck per syllabus week, made from the chapters, no answers."""

import html
import importlib.util
import re
from pathlib import Path

import check_built_docs
import pytest
import slides
import student_edition

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def decks(tmp_path_factory):
    out = tmp_path_factory.mktemp("slides")
    return out, slides.write_decks(out, log=lambda _: None)


def test_one_deck_per_syllabus_week_covering_its_chapters(decks):
    out, counts = decks
    weeks, md = slides.syllabus_weeks(), slides._markdown()
    assert len(weeks) == 10 and sorted(counts) == [f"week{n:02d}.html" for n, _, _ in weeks]
    covered = [name for _, _, chapters in weeks for name in chapters]
    assert sorted(covered) == sorted(p.stem for p in (REPO_ROOT / "tutorials").glob("ch*.py"))
    for number, title, chapters in weeks:
        page = (out / f"week{number:02d}.html").read_text(encoding="utf-8")
        assert page.count("<section") == counts[f"week{number:02d}.html"] >= 8
        assert f"Week {number}: {html.escape(title)}" in page
        for chapter in chapters:  # every section heading of the chapter has its slide
            source = (REPO_ROOT / "tutorials" / f"{chapter}.py").read_text(encoding="utf-8")
            for heading in re.findall(r"^# ## (.+)$", source, flags=re.M):
                assert f"<h2>{md.renderInline(heading)}</h2>" in page, (chapter, heading)
    index = (out / "index.html").read_text(encoding="utf-8")
    assert all(f'href="{name}"' in index for name in counts)


def test_decks_work_offline_and_navigate_by_keys(decks):
    out, counts = decks
    for name in counts:
        page = (out / name).read_text(encoding="utf-8")
        assert check_built_docs.check_page(page, name) == []  # nothing from the network
        assert 'src="mathjax/tex-chtml.js"' in page and "ArrowRight" in page
    if importlib.util.find_spec("sphinx-mathjax-offline") is not None:
        assert (out / "mathjax" / "tex-chtml.js").exists()


def test_no_answer_reaches_a_slide(decks):
    out, counts = decks
    text = " ".join((out / name).read_text(encoding="utf-8") for name in counts)
    shown = {line.strip() for line in html.unescape(re.sub(r"<[^>]+>", "", text)).splitlines()}
    chapters = sorted((REPO_ROOT / "tutorials").glob("ch*.py"))
    kept = set()  # what a student edition shows anywhere (another chapter may share a line)
    for chapter in chapters:
        edition = student_edition.student_edition(chapter.read_text(encoding="utf-8"), chapter)
        kept |= {line.strip().lstrip("#").strip() for line in edition[0].splitlines()}
    for chapter in chapters:
        hidden = student_edition.solution_lines(chapter.read_text(encoding="utf-8"), chapter)
        leaked = (hidden & shown) - kept
        assert not leaked, (chapter.name, sorted(leaked)[:3])
        assert hidden - kept  # there is something to hide
    assert 'class="blank">raise NotImplementedError(&quot;chapter 07, block 1: define' in text


def test_math_is_left_for_mathjax_with_its_delimiters():
    md = slides._markdown()
    rendered = md.render("Attention $\\mathrm{softmax}(QK^\\top/\\sqrt{d_k})V$ and\n\n$$a_b < c$$")
    assert "\\(\\mathrm{softmax}(QK^\\top/\\sqrt{d_k})V\\)" in rendered
    assert "\\[a_b &lt; c\\]" in rendered
