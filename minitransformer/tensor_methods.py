"""The Tensor's operators and op methods, attached in one table.

``x + y``, ``x.exp()`` and ``mt.exp(x)`` run the same function: every entry below maps a
method name to the functional op of ``ops/`` that it calls, so ``Tensor.exp is mt.exp`` and
``x.sum(axis=0)`` is ``mt.sum(x, axis=0)``.

Why a table here and not methods in ``tensor.py``: the ops import ``Tensor`` (to wrap their
results) and ``autograd`` (for ``Function``), and autograd imports ``Tensor`` too. If
``tensor.py`` imported the ops back, the three modules would import each other. Instead the
imports run one way, ``tensor`` <- ``autograd`` <- ``ops`` <- this module, and this module, the
last of them, gives the Tensor its methods; ``minitransformer/__init__.py`` imports it first
thing, so every Tensor has them.
"""

from minitransformer import autograd
from minitransformer.backend import array_module, asarray, resolve_dtype
from minitransformer.errors import DTypeError
from minitransformer.ops import broadcast, elementwise, matmul, reduction, shape, softmax, unary
from minitransformer.tensor import Tensor


def _reflected(op):
    """``other <op> self``: Python calls ``y.__radd__(x)`` for ``x + y`` when x is a number."""

    def method(self, other):
        return op(other, self)

    method.__name__ = f"reflected_{op.__name__}"
    method.__doc__ = f"``{op.__name__}(other, self)``: the reflected operator."
    return method


def _comparison(name):
    """``x <op> y`` as NumPy's ``name`` (``equal``, ``less``, ``logical_and``...), with NumPy
    broadcasting: a bool tensor outside the graph (comparisons have no gradient)."""

    def method(x, y):
        x_data = x.data if isinstance(x, Tensor) else x
        y_data = y.data if isinstance(y, Tensor) else y
        if not isinstance(y_data, (bool, int, float)) and not hasattr(y_data, "shape"):
            y_data = asarray(y_data)
        broadcast.broadcast_shapes(name, getattr(x_data, "shape", ()), getattr(y_data, "shape", ()))
        xp = array_module(x_data, y_data)
        return Tensor._from_array(getattr(xp, name)(x_data, y_data))

    method.__name__ = name
    method.__doc__ = f"NumPy's ``{name}``, elementwise: a bool tensor with no gradient."
    return method


def logical_not(self):
    """``~mask``: logical not of a bool tensor (no gradient)."""
    if self.dtype.kind != "b":
        raise DTypeError(f"~: logical not needs a bool tensor, got dtype {self.dtype}")
    return Tensor._from_array(array_module(self.data).logical_not(self.data))


def astype(self, dtype):
    """This tensor in another dtype (differentiable between floating dtypes)."""
    return broadcast.cast(self, resolve_dtype(dtype))


def as_float32(self):
    """``astype("float32")``."""
    return astype(self, "float32")


def as_float64(self):
    """``astype("float64")``, the dtype of gradient checks."""
    return astype(self, "float64")


def flatten(self):
    """``reshape(-1)``."""
    return shape.reshape(self, -1)


def where(self, condition, other):
    """``where(condition, self, other)``: self where condition holds, other elsewhere."""
    return elementwise.where(condition, self, other)


def T(self):  # noqa: N802 - NumPy's name
    """All axes reversed, as NumPy's ``.T``."""
    return shape.transpose(self)


METHODS = {
    # autograd
    "backward": autograd.backward,
    # operators
    "__add__": elementwise.add,
    "__radd__": _reflected(elementwise.add),
    "__sub__": elementwise.sub,
    "__rsub__": _reflected(elementwise.sub),
    "__mul__": elementwise.mul,
    "__rmul__": _reflected(elementwise.mul),
    "__truediv__": elementwise.div,
    "__rtruediv__": _reflected(elementwise.div),
    "__pow__": elementwise.pow,
    "__rpow__": _reflected(elementwise.pow),
    "__matmul__": matmul.matmul,
    "__rmatmul__": _reflected(matmul.matmul),
    "__neg__": elementwise.neg,
    "__abs__": elementwise.abs,
    "__getitem__": shape.getitem,
    # comparisons and logic on masks: bool tensors, no gradient
    "__eq__": _comparison("equal"),
    "__ne__": _comparison("not_equal"),
    "__lt__": _comparison("less"),
    "__le__": _comparison("less_equal"),
    "__gt__": _comparison("greater"),
    "__ge__": _comparison("greater_equal"),
    "__and__": _comparison("logical_and"),
    "__rand__": _reflected(_comparison("logical_and")),
    "__or__": _comparison("logical_or"),
    "__ror__": _reflected(_comparison("logical_or")),
    "__invert__": logical_not,
    # dtype
    "astype": astype,
    "float": as_float32,
    "double": as_float64,
    # arithmetic
    "add": elementwise.add,
    "sub": elementwise.sub,
    "mul": elementwise.mul,
    "div": elementwise.div,
    "pow": elementwise.pow,
    "neg": elementwise.neg,
    "abs": elementwise.abs,
    "maximum": elementwise.maximum,
    "minimum": elementwise.minimum,
    "clip": elementwise.clip,
    "where": where,
    "masked_fill": elementwise.masked_fill,
    # functions of one tensor
    "exp": unary.exp,
    "log": unary.log,
    "sqrt": unary.sqrt,
    "tanh": unary.tanh,
    "sigmoid": unary.sigmoid,
    "relu": unary.relu,
    "gelu": unary.gelu,
    # reductions
    "sum": reduction.sum,
    "mean": reduction.mean,
    "max": reduction.max,
    "min": reduction.min,
    "var": reduction.var,
    "std": reduction.std,
    "logsumexp": reduction.logsumexp,
    "softmax": softmax.softmax,
    "log_softmax": softmax.log_softmax,
    # linear algebra and shape
    "matmul": matmul.matmul,
    "reshape": shape.reshape,
    "flatten": flatten,
    "transpose": shape.transpose,
    "permute": shape.permute,
    "swapaxes": shape.swapaxes,
    "T": property(T),
    "broadcast_to": broadcast.broadcast_to,
    "squeeze": shape.squeeze,
    "unsqueeze": shape.unsqueeze,
    "split": shape.split,
    "pad": shape.pad,
}

for _name, _method in METHODS.items():
    setattr(Tensor, _name, _method)
