"""The ``gradcheck`` command: every case of the gradient-check registry, as a table."""

import time

from minitransformer.errors import GradcheckError
from minitransformer.gradcheck_cases import CASES

__all__ = ["run_gradchecks"]


def _shapes(report):
    shapes = sorted(set(report.shapes.values()), key=lambda s: (-len(s), s))
    text = ", ".join(str(s) for s in shapes[:3])
    return text + (", ..." if len(shapes) > 3 else "")


def run_gradchecks(pattern=None, out=print):
    """Run every registry case whose name contains ``pattern`` (all when None); print one row
    each (case, covered classes, shapes, largest error, pass/FAIL). Returns the number failed."""
    cases = [c for c in CASES if pattern is None or pattern.lower() in c.name.lower()]
    if not cases:
        raise ValueError(f"gradcheck: no case matches {pattern!r}")
    out(f"{'case':<58} {'covers':<26} {'shapes':<34} {'max error':>9}  result")
    failed, start = 0, time.perf_counter()
    for case in cases:
        covers = ", ".join(cls.__name__ for cls in case.covers)
        try:
            report = case.run()
            row = f"{_shapes(report):<34} {report.max_abs_error:9.1e}  pass"
        except GradcheckError as error:
            failed += 1
            row = f"{'':<34} {'':>9}  FAIL: {error}"
        out(f"{case.name[:58]:<58} {covers[:26]:<26} {row}")
    seconds = time.perf_counter() - start
    out(f"\n{len(cases) - failed} of {len(cases)} gradient checks passed in {seconds:.1f} s "
        "(float64 central differences against backpropagation)")
    return failed
