"""Slides for a course: one deck per syllabus week, made from the chapters, that run offline.

    python tools/slides.py slides/          # or: make slides
    open slides/index.html

``docs/syllabus.md`` says which chapters each week covers ("## Week N: title" and the chapter
links of its table). A week's deck has a title slide, then for each chapter a title slide with
its objectives and one slide per section ("## N. ..." heading): the section's text and its code,
with the blocks students write shown as blanks and the exercise solutions left out (the student
edition's rules, tools/student_edition.py), and the chapter's exercises on a last slide.

Each deck is one HTML file with its style and a few lines of script inline: arrow keys, space,
Page Up/Down, Home and End move; the address ends in #slide number. Formulas are typeset by
MathJax from ``mathjax/`` beside the decks, copied from the sphinx-mathjax-offline package (the
``[docs]`` extra); without it the decks still build and show the formulas as TeX.
"""

import argparse
import html
import importlib.util
import re
import shutil
import sys
from pathlib import Path

import student_edition  # tools/ is on the path: this script's folder

REPO_ROOT = Path(__file__).resolve().parents[1]
WEEK = re.compile(r"^## Week (?P<number>\d+): (?P<title>.+)$")
CHAPTER_LINK = re.compile(r"\(chapters/(?P<file>ch\d+_\w+)\.py\)")
SECTION = re.compile(r"^## (?P<title>.+)$")


STYLE = """
body { margin: 0; font: 24px/1.45 system-ui, sans-serif; background: #fafafa; color: #222; }
section { display: none; box-sizing: border-box; width: 100vw; height: 100vh; overflow: auto;
          padding: 4vh 6vw; }
section.current { display: block; }
section.title { display: none; text-align: center; padding-top: 25vh; }
section.title.current { display: block; }
h1 { font-size: 1.9em; margin: 0 0 .5em; } h2 { font-size: 1.4em; margin: 0 0 .6em; }
pre { background: #f0f0f0; padding: .6em .8em; font-size: .68em; line-height: 1.35;
      overflow-x: auto; border-left: 4px solid #4a7; }
code { font-size: .9em; } table { border-collapse: collapse; font-size: .8em; }
td, th { border: 1px solid #ccc; padding: .2em .5em; }
.exercise { border: 2px solid #c84; padding: .3em .8em; margin: .5em 0; }
.blank { color: #a33; }
#counter { position: fixed; right: 1em; bottom: .5em; font-size: .6em; color: #888; }
"""

SCRIPT = """
const slides = Array.from(document.querySelectorAll('section'));
let current = 0;
function show(n) {
  current = Math.max(0, Math.min(slides.length - 1, n));
  slides.forEach((s, i) => s.classList.toggle('current', i === current));
  document.getElementById('counter').textContent = (current + 1) + ' / ' + slides.length;
  history.replaceState(null, '', '#' + (current + 1));
}
document.addEventListener('keydown', e => {
  if (['ArrowRight', 'ArrowDown', ' ', 'PageDown'].includes(e.key)) show(current + 1);
  else if (['ArrowLeft', 'ArrowUp', 'PageUp'].includes(e.key)) show(current - 1);
  else if (e.key === 'Home') show(0);
  else if (e.key === 'End') show(slides.length - 1);
  else return;
  e.preventDefault();
});
show((parseInt(location.hash.slice(1)) || 1) - 1);
"""


def _markdown():
    from markdown_it import MarkdownIt
    from mdit_py_plugins.dollarmath import dollarmath_plugin

    md = MarkdownIt("commonmark").enable("table").use(dollarmath_plugin)
    md.add_render_rule("math_inline",
                       lambda self, tokens, i, options, env:
                       "\\(" + html.escape(tokens[i].content) + "\\)")
    md.add_render_rule("math_block",
                       lambda self, tokens, i, options, env:
                       "<p>\\[" + html.escape(tokens[i].content) + "\\]</p>\n")
    return md


def syllabus_weeks(path=REPO_ROOT / "docs" / "syllabus.md"):
    """[(number, title, [chapter file stems])] from the syllabus, in order."""
    weeks = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        match = WEEK.match(line)
        if match:
            weeks.append((int(match.group("number")), match.group("title"), []))
        elif weeks and line.startswith("|"):
            weeks[-1][2].extend(m.group("file") for m in CHAPTER_LINK.finditer(line)
                                if m.group("file") not in weeks[-1][2])
        elif line.startswith("## ") and weeks:
            break  # "## A shorter course": the weeks are over
    return weeks


def _cells(text):
    """(kind, lines) cells of a percent-format chapter: "markdown" (comment markers removed)
    or "code"."""
    cells = []
    for line in text.splitlines():
        if line.startswith("# %%"):
            cells.append(("markdown" if "[markdown]" in line else "code", []))
        elif cells:
            kind, lines = cells[-1]
            lines.append(re.sub(r"^# ?", "", line) if kind == "markdown" else line)
    return [(kind, "\n".join(lines).strip("\n")) for kind, lines in cells]


def _exercises(markdown_text):
    """The text without its {exercise} fences, and the exercises as (title, body) pairs."""
    exercises = []

    def take(match):
        exercises.append((match.group("title").strip(),
                          re.sub(r"^:\w+:.*$", "", match.group("body"), flags=re.M).strip()))
        return ""

    text = re.sub(r"^(?P<fence>`{3,}|:{3,})\{exercise\}(?P<title>[^\n]*)\n(?P<body>.*?)\n"
                  r"(?P=fence)\s*$", take, markdown_text, flags=re.M | re.S)
    return text, exercises


def _code(code):
    """A code cell as HTML: the blanks of the student edition marked out."""
    escaped = html.escape(code)
    return "<pre><code>" + re.sub(r"^(\s*raise NotImplementedError\(.*\))$",
                                  r'<span class="blank">\1</span>', escaped,
                                  flags=re.M) + "</code></pre>"


def chapter_slides(path, md):
    """The slides (HTML <section>s) of one chapter: title, a slide per section, exercises."""
    text, _, _ = student_edition.student_edition(Path(path).read_text(encoding="utf-8"), path)
    slides, current, exercises = [], None, []
    for kind, content in _cells(text):
        if kind == "markdown":
            content, found = _exercises(content)
            exercises += found
            heading = next((SECTION.match(line) for line in content.splitlines()
                            if SECTION.match(line)), None)
            if content.lstrip().startswith("# ") and current is None:
                title, _, rest = content.lstrip()[2:].partition("\n")
                current = [f'<section class="title"><h1>{md.renderInline(title)}</h1>'
                           f"{md.render(rest)}"]
                continue
            if heading is not None:
                if current:
                    slides.append("".join(current) + "</section>")
                body = content.replace(heading.group(0), "", 1)
                current = [f"<section><h2>{md.renderInline(heading.group('title'))}</h2>"
                           f"{md.render(body)}"]
                continue
            if current is not None and content.strip():
                current.append(md.render(content))
        elif current is not None and content.strip():
            current.append(_code(content))
    if current:
        slides.append("".join(current) + "</section>")
    if exercises:
        items = "".join(f'<div class="exercise"><b>{html.escape(title)}</b>{md.render(body)}'
                        "</div>" for title, body in exercises)
        slides.append(f"<section><h2>Exercises</h2>{items}</section>")
    return slides


def deck(number, title, chapters, md, tutorials=REPO_ROOT / "tutorials"):
    """The HTML of one week's deck and its slide count."""
    slides = [f'<section class="title"><h1>Week {number}: {html.escape(title)}</h1>'
              + "".join(f"<p>{html.escape(name)}</p>" for name in chapters) + "</section>"]
    for name in chapters:
        slides += chapter_slides(tutorials / f"{name}.py", md)
    page = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>Week {number}: {html.escape(title)}</title><style>{STYLE}</style>"
            '<script>window.MathJax = {tex: {inlineMath: [["\\\\(", "\\\\)"]]}};</script>'
            '<script defer src="mathjax/tex-chtml.js"></script></head><body>\n'
            + "\n".join(slides) + f'\n<div id="counter"></div><script>{SCRIPT}</script>'
            "</body></html>\n")
    return page, len(slides)


def _mathjax_source():
    spec = importlib.util.find_spec("sphinx-mathjax-offline")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(list(spec.submodule_search_locations)[0]) / "static" / "mathjax"
    return folder if (folder / "tex-chtml.js").exists() else None


def write_decks(out_dir, log=print):
    """Write every week's deck, an index and MathJax into ``out_dir``; {file: slide count}."""
    out_dir = Path(out_dir)
    md = _markdown()
    weeks = syllabus_weeks()
    if not weeks:
        raise ValueError("slides: docs/syllabus.md has no '## Week N: title' sections")
    out_dir.mkdir(parents=True, exist_ok=True)
    counts, links = {}, []
    for number, title, chapters in weeks:
        page, count = deck(number, title, chapters, md)
        name = f"week{number:02d}.html"
        (out_dir / name).write_text(page, encoding="utf-8")
        counts[name] = count
        links.append(f'<li><a href="{name}">Week {number}: {html.escape(title)}</a> '
                     f"({count} slides)</li>")
        log(f"{name}: {count} slides ({', '.join(chapters)})")
    (out_dir / "index.html").write_text(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Slides</title>"
        f"</head><body><h1>Slides, one deck per week</h1><ul>{''.join(links)}</ul>"
        "<p>Arrow keys, space, Page Up/Down, Home and End move through a deck.</p>"
        "</body></html>\n", encoding="utf-8")
    source = _mathjax_source()
    if source is None:
        log("(MathJax not found: pip install sphinx-mathjax-offline, or the [docs] extra; the "
            "formulas show as TeX)")
    else:
        shutil.copytree(source, out_dir / "mathjax", dirs_exist_ok=True)
    return counts


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", nargs="?", default="slides", help="default: slides/")
    args = parser.parse_args(argv)
    try:
        counts = write_decks(args.out_dir)
    except (ValueError, OSError, ImportError) as error:
        print(f"slides: error: {error}", file=sys.stderr)
        return 1
    index = Path(args.out_dir) / "index.html"
    print(f"{len(counts)} decks, {sum(counts.values())} slides: {index}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
