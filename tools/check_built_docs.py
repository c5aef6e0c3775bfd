"""Check a built docs site: it works offline and its executed outputs carry no noise.

    python tools/check_built_docs.py docs/_build/html

Fails (exit 1, one line per finding) when a page
- loads a script, stylesheet, font or image from the network (``src=``/``href=`` of a
  ``<script>``, ``<link>``, ``<img>`` or ``<iframe>`` that starts with http:// or https://):
  offline, that page would break (MathJax is served from ``_static/mathjax``);
- shows warning or traceback text in an executed cell's output (a ``cell_output`` block):
  ``...Warning:``, ``Traceback (most recent call last)``, or a path of the machine that built
  it (``site-packages``). Error messages a chapter prints on purpose (``ShapeError: ...`` after
  an ``except``) are its lesson, not noise.

Links a reader clicks (``<a href="https://...">``) are fine: they are not needed to read the page.
"""

import re
import sys
from html.parser import HTMLParser
from pathlib import Path

__all__ = ["check_page", "check_site", "main"]

LOADING_TAGS = {"script": "src", "link": "href", "img": "src", "iframe": "src",
                "source": "src", "video": "src", "audio": "src"}
NOISE = re.compile(r"\w+Warning:|Traceback \(most recent call last\)|site-packages")


class _Page(HTMLParser):
    """Collects external resources and the text of executed output cells."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.external, self.outputs = [], []
        self._depth = 0  # > 0 while inside a cell_output div (counted to find its end)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        url = attrs.get(LOADING_TAGS.get(tag, ""), "") or ""
        if url.startswith(("http://", "https://", "//")):
            self.external.append(f"<{tag}> {url}")
        if tag == "div":
            if self._depth:
                self._depth += 1
            elif "cell_output" in (attrs.get("class") or "").split():
                self._depth = 1
                self.outputs.append("")

    def handle_endtag(self, tag):
        if tag == "div" and self._depth:
            self._depth -= 1

    def handle_data(self, data):
        if self._depth:
            self.outputs[-1] += data


def check_page(html, name="page"):
    """The findings (strings) for one page's HTML."""
    page = _Page()
    page.feed(html)
    findings = [f"{name}: loads {what} from the network" for what in page.external]
    for number, text in enumerate(page.outputs, 1):
        match = NOISE.search(text)
        if match:
            line = text[text.rfind("\n", 0, match.start()) + 1:].split("\n", 1)[0].strip()
            findings.append(f"{name}: output {number} shows {line[:120]!r}")
    return findings


def check_site(folder):
    """The findings for every .html page under ``folder`` (``_static`` and sources skipped)."""
    folder = Path(folder)
    pages = [p for p in sorted(folder.rglob("*.html"))
             if not {"_static", "_sources", "_modules"} & set(p.relative_to(folder).parts)]
    if not pages:
        raise FileNotFoundError(f"check_built_docs: no .html pages under {folder}; build the "
                                "docs first (make docs)")
    findings = []
    for page in pages:
        findings += check_page(page.read_text(encoding="utf-8"), str(page.relative_to(folder)))
    return findings, len(pages)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    folder = argv[0] if argv else "docs/_build/html"
    findings, count = check_site(folder)
    for finding in findings:
        print(finding)
    print(f"check_built_docs: {count} pages, {len(findings)} finding(s)")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
