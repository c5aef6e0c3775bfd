"""The exceptions a user of minitransformer can meet.

Each one subclasses the built-in exception a Python programmer would expect (ValueError for a wrong
shape, TypeError for a wrong dtype, ...), so ``except ValueError`` keeps working. Messages name the
function, the shapes or values involved, and the rule that was broken.
"""

__all__ = [
    "BackendUnavailableError",
    "DeviceMismatchError",
    "DTypeError",
    "GradcheckError",
    "GraphFreedError",
    "ShapeError",
]


class ShapeError(ValueError):
    """Shapes that cannot work together (matmul, broadcasting, reshape, concat, ...)."""


class DTypeError(TypeError):
    """A dtype an operation cannot take (e.g. an integer tensor asked to require grad)."""


class DeviceMismatchError(ValueError):
    """Arrays from two devices (NumPy on the CPU and CuPy on a GPU) meet in one operation."""


class BackendUnavailableError(RuntimeError):
    """A backend was asked for that cannot run here (CuPy missing, or no GPU)."""


class GraphFreedError(RuntimeError):
    """backward() reached a part of the graph whose saved arrays a previous backward freed."""


class GradcheckError(AssertionError):
    """Analytic and numerical gradients disagree (raised by ``gradcheck``)."""
