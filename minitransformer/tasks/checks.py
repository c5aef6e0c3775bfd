"""The ``gradcheck`` command: every case of the gradient-check registry, as a table.

Rows come in the order of the chapters: primitive ops (Functions) first, then layers, then
models. Each row gives the case's full name (wrapped, never cut), the classes it covers, the
input shapes, the largest difference between backpropagation and central differences, the
tolerance it is held to (atol, rtol: an element passes when |analytic - numeric| <= atol +
rtol·|numeric|) and the result. ``--format markdown`` or ``csv`` prints the same table for a
handout.
"""

import csv
import inspect
import io
import textwrap
import time

from minitransformer.autograd import Function
from minitransformer.errors import GradcheckError
from minitransformer.gradcheck import gradcheck
from minitransformer.gradcheck_cases import CASES

__all__ = ["FORMATS", "KINDS", "gradcheck_rows", "kind_of", "render", "run_gradchecks"]

FORMATS = ("text", "markdown", "csv")
KINDS = ("op", "layer", "model")  # the chapters' order
MODEL_MODULES = ("minitransformer.nn.models",)
MODEL_NAMES = ("Transformer",)
COLUMNS = ("kind", "case", "covers", "shapes", "max error", "atol, rtol", "result")
DEFAULTS = {name: inspect.signature(gradcheck).parameters[name].default
            for name in ("atol", "rtol")}


def kind_of(case):
    """"op" (a case of Functions), "model" (a whole model) or "layer" (any other Module)."""
    if all(issubclass(cls, Function) for cls in case.covers):
        return "op"
    if any(cls.__module__ in MODEL_MODULES or cls.__name__ in MODEL_NAMES
           for cls in case.covers):
        return "model"
    return "layer"


def _shapes(report):
    shapes = sorted(set(report.shapes.values()), key=lambda s: (-len(s), s))
    text = ", ".join(str(s) for s in shapes[:3])
    return text + (", ..." if len(shapes) > 3 else "")


def _tolerance(case):
    """"atol, rtol" of the case: an element passes when |analytic - numeric| <= atol +
    rtol·|numeric|."""
    atol = case.options.get("atol", DEFAULTS["atol"])
    rtol = case.options.get("rtol", DEFAULTS["rtol"])
    return f"{atol:.0e}, {rtol:.0e}".replace("e-0", "e-")


def gradcheck_rows(pattern=None):
    """Run every registry case whose name contains ``pattern`` (all when None), ops first, then
    layers, then models; yields one dict per case (the COLUMNS), as each finishes."""
    cases = [c for c in CASES if pattern is None or pattern.lower() in c.name.lower()]
    if not cases:
        raise ValueError(f"gradcheck: no case matches {pattern!r}")
    order = {kind: rank for rank, kind in enumerate(KINDS)}
    for case in sorted(cases, key=lambda c: order[kind_of(c)]):  # stable: registry order kept
        row = {"kind": kind_of(case), "case": case.name,
               "covers": ", ".join(cls.__name__ for cls in case.covers),
               "atol, rtol": _tolerance(case)}
        try:
            report = case.run()
            row.update({"shapes": _shapes(report), "max error": f"{report.max_abs_error:.1e}",
                        "result": "pass"})
        except GradcheckError as error:
            row.update({"shapes": "", "max error": "", "result": f"FAIL: {error}"})
        yield row


TEXT_COLUMNS = COLUMNS[1:]  # the text table says the kind in a heading above its rows
WIDTHS = {"case": 29, "covers": 18, "shapes": 18, "max error": 9, "atol, rtol": 10, "result": 6}
HEADINGS = {"op": "primitive ops (Functions)", "layer": "layers (Modules)", "model": "models"}


def _pack(items, width):
    """Lines of at most ``width`` characters holding whole ``items`` (a longer item is wrapped
    on its own), joined by ", "."""
    lines = []
    for item in items:
        if lines and len(lines[-1]) + 2 + len(item) <= width:
            lines[-1] += ", " + item
        else:
            lines += textwrap.wrap(item, width, break_on_hyphens=False) or [""]
    return lines or [""]


def _cell_lines(column, text):
    if column == "shapes":
        items = [s if s.endswith(")") or s == "..." else s + ")" for s in text.split("), ")]
        return _pack(items, WIDTHS[column]) if text else [""]
    if column == "covers":
        return _pack(text.split(", "), WIDTHS[column])
    return textwrap.wrap(text, WIDTHS[column], break_on_hyphens=False) or [""]


def _text_lines(row):
    """One row as text lines: long cells wrap inside their column, never cut (a FAIL message
    goes on the lines below the row, whole)."""
    result = row["result"]
    cells = {column: _cell_lines(column, row[column]) for column in TEXT_COLUMNS[:-1]}
    cells["result"] = [result if result == "pass" else "FAIL"]
    height = max(len(lines) for lines in cells.values())
    lines = []
    for index in range(height):
        parts = []
        for column in TEXT_COLUMNS:
            text = cells[column][index] if index < len(cells[column]) else ""
            width = WIDTHS[column]
            parts.append(f"{text:>{width}}" if column == "max error" else f"{text:<{width}}")
        lines.append("  ".join(parts).rstrip())
    if result != "pass":
        lines += textwrap.wrap(result, 100, initial_indent="    ", subsequent_indent="    ")
    return lines


def render(rows, fmt="text"):
    """Yield the table's lines in ``fmt``: "text" (a heading per kind, aligned columns,
    wrapped cells, at most 100 characters wide), "markdown" (a GitHub table) or "csv"."""
    if fmt not in FORMATS:
        raise ValueError(f"gradcheck: format must be one of {FORMATS}, got {fmt!r}")
    if fmt == "text":
        kind = None
        for row in rows:
            if row["kind"] != kind:
                kind = row["kind"]
                yield f"\n{HEADINGS[kind]}"
                yield "  ".join(f"{c:>{WIDTHS[c]}}" if c == "max error" else
                                f"{c:<{WIDTHS[c]}}" for c in TEXT_COLUMNS).rstrip()
            yield from _text_lines(row)
    elif fmt == "markdown":
        yield "| " + " | ".join(COLUMNS) + " |"
        yield "|" + "|".join("---" for _ in COLUMNS) + "|"
        for row in rows:
            yield "| " + " | ".join(row[c].replace("|", "\\|") for c in COLUMNS) + " |"
    else:
        for row in [dict(zip(COLUMNS, COLUMNS)), *rows]:
            buffer = io.StringIO()
            csv.writer(buffer, lineterminator="").writerow([row[c] for c in COLUMNS])
            yield buffer.getvalue()


def run_gradchecks(pattern=None, out=print, fmt="text"):
    """Print the table of every case whose name contains ``pattern`` (all when None), row by row
    as the checks run, then a summary line (text format only). Returns the number failed."""
    start, failed, total = time.perf_counter(), 0, 0

    def counted(rows):
        nonlocal failed, total
        for row in rows:
            total += 1
            failed += row["result"] != "pass"
            yield row

    for line in render(counted(gradcheck_rows(pattern)), fmt):
        out(line)
    if fmt == "text":
        seconds = time.perf_counter() - start
        out("\n" + textwrap.fill(
            f"{total - failed} of {total} gradient checks passed in {seconds:.1f} s (float64 "
            "central differences against backpropagation; an element passes when |analytic - "
            "numeric| <= atol + rtol·|numeric|)", 100))
    return failed
