"""Broadcasting and dtype promotion: the one place they enter the graph.

NumPy lets ``(2, 3) + (3,)`` work by repeating the smaller operand. The gradient of a repeated value
is the sum of the gradients of its copies, so every op that broadcasts would need an "unbroadcast"
in its backward. Instead, an elementwise op first passes its operands through
``elementwise_operands``, which makes every operand that requires grad exactly the output's shape
with the explicit ``BroadcastTo`` op. Its backward, ``sum_to``, is the only unbroadcast in the
library, and the elementwise Functions can assume their inputs already share one shape.

Operands that need no gradient (Python numbers, masks, constants) are left as they are: NumPy
broadcasts them inside forward, and no gradient ever flows to them.
"""

import math

from minitransformer.autograd import Function
from minitransformer.backend import array_module, get_default_dtype, is_floating
from minitransformer.errors import ShapeError
from minitransformer.ops.rows import column_sums
from minitransformer.tensor import Tensor

__all__ = [
    "BroadcastTo",
    "Cast",
    "broadcast_shapes",
    "broadcasts_onto",
    "broadcast_to",
    "cast",
    "elementwise_operands",
    "promote",
    "sum_to",
]


def broadcast_shapes(function, *shapes):
    """The shape NumPy broadcasting gives ``shapes``; a ShapeError naming ``function`` if none."""
    if all(shape == shapes[0] for shape in shapes):
        return tuple(shapes[0]) if shapes else ()
    ndim = max(len(shape) for shape in shapes)
    result = []
    for axis in range(-ndim, 0):
        sizes = {shape[axis] for shape in shapes if len(shape) >= -axis}
        if len(sizes - {1}) > 1:
            listed = " and ".join(str(tuple(shape)) for shape in shapes)
            raise ShapeError(
                f"{function}: shapes {listed} cannot broadcast: axis {axis} has sizes "
                f"{sorted(sizes)}; aligned from the right, each axis must be equal or 1"
            )
        result.append(max(sizes) if sizes - {1} else 1)
    return tuple(result)



def broadcasts_onto(shape, target):
    """True if an array of ``shape`` broadcasts to exactly ``target`` (a mask onto scores)."""
    try:
        return broadcast_shapes("", shape, target) == tuple(target)
    except ShapeError:
        return False

def sum_to(grad, shape):
    """Sum ``grad`` down to ``shape``: undo a broadcast from ``shape`` to ``grad.shape``.

    Sums over the leading axes broadcasting added and over the axes where ``shape`` has size 1.
    """
    shape = tuple(shape)
    if tuple(grad.shape) == shape:
        return grad
    lead = grad.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, size in enumerate(shape) if size == 1 and grad.shape[lead + i] != 1
    )
    if len(axes) == lead and grad.dtype.kind == "f" and grad.flags.c_contiguous:
        # only leading axes added (a bias, a position table): Σ over rows of a matrix
        return column_sums(grad.reshape(-1, math.prod(shape))).reshape(shape)
    return grad.sum(axis=axes).reshape(shape)


class BroadcastTo(Function):
    """y = x repeated along new leading axes and along axes where x has size 1 (NumPy's rule).

    dL/dx = sum_to(dL/dy, x.shape): each copy's gradient flows back to the one value it copied.
    """

    @staticmethod
    def forward(ctx, x, shape):
        ctx.input_shape = x.shape
        return array_module(x).broadcast_to(x, shape)  # a read-only view: nothing is copied

    @staticmethod
    def backward(ctx, grad_out):
        return (sum_to(grad_out, ctx.input_shape),)


def broadcast_to(x, shape):
    """``x`` broadcast to ``shape`` (a no-op when it already has it).

    Shapes: x (...) -> shape, where x's shape broadcasts to ``shape``.
    """
    shape = tuple(shape)
    if x.shape == shape:
        return x
    if broadcast_shapes("broadcast_to", x.shape, shape) != shape:
        raise ShapeError(f"broadcast_to: cannot broadcast {x.shape} to {shape}")
    return BroadcastTo.apply(x, shape=shape)


class Cast(Function):
    """y = x converted to another dtype.

    dL/dx = dL/dy converted back to x's dtype.
    """

    @staticmethod
    def forward(ctx, x, dtype):
        ctx.input_dtype = x.dtype
        return x.astype(dtype)

    @staticmethod
    def backward(ctx, grad_out):
        return (grad_out.astype(ctx.input_dtype),)


def cast(x, dtype):
    """``x`` as ``dtype`` (a no-op when it already is). Integer results carry no gradient."""
    if x.dtype == dtype:
        return x
    return Cast.apply(x, dtype=dtype)


_PYTHON_NUMBERS = (bool, int, float)


def _as_operand(value):
    """Tensors and Python numbers pass; NumPy numbers become Python numbers (a NumPy float64
    would otherwise turn float32 results into float64); arrays and lists become constant
    tensors."""
    if isinstance(value, Tensor) or type(value) in _PYTHON_NUMBERS:
        return value
    if isinstance(value, float):  # numpy.float64 subclasses float
        return float(value)
    return Tensor(value)


def elementwise_operands(function, *operands, floating=False):
    """Ready the operands of the elementwise op ``function`` for its Function.

    - arrays and lists become constant tensors; Python numbers stay numbers (NumPy keeps the
      tensor's dtype for them: float32 * 2.0 is float32);
    - floating tensors of different precision are cast to the widest (float32 + float64 ->
      float64); integer tensors join them, or take the default dtype when met with a Python
      float (or when ``floating``, for division); bool masks stay bool;
    - every tensor that requires grad is broadcast to the output's shape by ``broadcast_to``.

    Raises ShapeError naming ``function`` when the shapes cannot broadcast.
    """
    if not floating and _already_ready(operands):
        return operands
    operands = promote([_as_operand(value) for value in operands], floating)
    shape = broadcast_shapes(function, *(v.shape for v in operands if isinstance(v, Tensor)))
    return [
        broadcast_to(value, shape)
        if isinstance(value, Tensor) and value.requires_grad and value.shape != shape
        else value
        for value in operands
    ]


def _already_ready(operands):
    """The common cases, decided fast: two tensors of one shape and dtype, or a floating tensor
    and a Python number. (Ops run millions of times; this check saves most of the work above.)"""
    if len(operands) != 2:
        return False
    x, y = operands
    if isinstance(x, Tensor):
        if isinstance(y, Tensor):
            return x.data.shape == y.data.shape and x.data.dtype == y.data.dtype
        return type(y) in _PYTHON_NUMBERS and x.data.dtype.kind == "f"
    return type(x) in _PYTHON_NUMBERS and isinstance(y, Tensor) and y.data.dtype.kind == "f"


def promote(operands, floating=False):
    """Cast the tensors among ``operands`` to one floating dtype, the widest present.

    Integer tensors join it too; bool tensors (masks) and Python numbers are left alone. With no
    floating tensor, integer tensors take the default dtype if a Python float is among the
    operands or ``floating`` asks for a floating result (as PyTorch: int / int is float32);
    otherwise nothing changes.
    """
    floating_dtypes = [v.dtype for v in operands if isinstance(v, Tensor) and is_floating(v.dtype)]
    if floating_dtypes:
        dtype = max(floating_dtypes, key=lambda d: d.itemsize)
    elif floating or any(type(v) is float for v in operands):
        dtype = get_default_dtype()
    else:
        return list(operands)
    return [
        cast(v, dtype) if isinstance(v, Tensor) and v.dtype.kind != "b" else v for v in operands
    ]
