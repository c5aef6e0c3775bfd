"""Elementwise arithmetic: + - * / ** neg abs maximum minimum clip where masked_fill.

Each Function is followed by its functional wrapper. The wrappers send their operands through
``elementwise_operands`` (see broadcast.py), so every input that requires grad arrives here with
the output's shape: no backward below needs to undo a broadcast. Operands that need no gradient
(Python numbers, masks) may be smaller; NumPy broadcasts them and no gradient flows to them.

``abs`` and ``pow`` are NumPy's and Python's names; they shadow the builtins in this module only.
"""

import math

from minitransformer.autograd import Function
from minitransformer.backend import array_module
from minitransformer.errors import DTypeError
from minitransformer.ops.broadcast import elementwise_operands
from minitransformer.tensor import Tensor

__all__ = [
    "Abs",
    "Add",
    "Clip",
    "Div",
    "MaskedFill",
    "Maximum",
    "Minimum",
    "Mul",
    "Neg",
    "Pow",
    "Sub",
    "Where",
    "abs",
    "add",
    "clip",
    "div",
    "masked_fill",
    "maximum",
    "minimum",
    "mul",
    "neg",
    "pow",
    "sub",
    "where",
]


class Add(Function):
    """z = x + y   (inputs already broadcast to one shape)

    dL/dx = g,   dL/dy = g
    """

    @staticmethod
    def forward(ctx, x, y):
        return x + y

    @staticmethod
    def backward(ctx, grad_out):
        return grad_out, grad_out


def add(x, y):
    """x + y, with NumPy broadcasting."""
    return Add.apply(*elementwise_operands("add", x, y))


class Sub(Function):
    """z = x - y

    dL/dx = g,   dL/dy = -g
    """

    @staticmethod
    def forward(ctx, x, y):
        return x - y

    @staticmethod
    def backward(ctx, grad_out):
        return grad_out, -grad_out


def sub(x, y):
    """x - y, with NumPy broadcasting."""
    return Sub.apply(*elementwise_operands("sub", x, y))


class Mul(Function):
    """z = x * y

    dL/dx = g * y,   dL/dy = g * x
    """

    @staticmethod
    def forward(ctx, x, y):
        ctx.save_for_backward(x, y)
        return x * y

    @staticmethod
    def backward(ctx, grad_out):
        x, y = ctx.saved
        grad_x = grad_out * y if ctx.needs_input_grad[0] else None
        grad_y = grad_out * x if ctx.needs_input_grad[1] else None
        return grad_x, grad_y


def mul(x, y):
    """x * y, with NumPy broadcasting."""
    return Mul.apply(*elementwise_operands("mul", x, y))


class Div(Function):
    """z = x / y

    dL/dx = g / y,   dL/dy = -g * x / y²
    """

    @staticmethod
    def forward(ctx, x, y):
        ctx.save_for_backward(x, y)
        return x / y

    @staticmethod
    def backward(ctx, grad_out):
        x, y = ctx.saved
        grad_x = grad_out / y if ctx.needs_input_grad[0] else None
        grad_y = -grad_out * x / (y * y) if ctx.needs_input_grad[1] else None
        return grad_x, grad_y


def div(x, y):
    """x / y, with NumPy broadcasting."""
    return Div.apply(*elementwise_operands("div", x, y, floating=True))


class Neg(Function):
    """z = -x

    dL/dx = -g
    """

    @staticmethod
    def forward(ctx, x):
        return -x

    @staticmethod
    def backward(ctx, grad_out):
        return (-grad_out,)


def neg(x):
    """-x."""
    return Neg.apply(x)


class Pow(Function):
    """z = x ** y, for tensor ** number, number ** tensor and tensor ** tensor.

    dL/dx = g * y * x^(y-1),   dL/dy = g * z * ln(x)   (taken as 0 where x <= 0, whose log is
    undefined; a negative base with a tensor exponent has no real gradient)
    """

    @staticmethod
    def forward(ctx, x, y):
        z = x**y
        ctx.save_for_backward(x, y, z)
        return z

    @staticmethod
    def backward(ctx, grad_out):
        x, y, z = ctx.saved
        grad_x = grad_y = None
        if ctx.needs_input_grad[0]:
            grad_x = grad_out * y * x ** (y - 1)
        if ctx.needs_input_grad[1]:
            if isinstance(x, (int, float)):  # a Python base: math.log keeps g's dtype
                log_x = math.log(x) if x > 0 else 0.0
            else:
                xp = array_module(x)
                positive = x > 0
                log_x = xp.where(positive, xp.log(xp.where(positive, x, 1)), 0)
            grad_y = grad_out * z * log_x
        return grad_x, grad_y


def pow(x, y):  # noqa: A001 - NumPy's and Python's name
    """x ** y, with NumPy broadcasting."""
    return Pow.apply(*elementwise_operands("pow", x, y))


class Abs(Function):
    """z = |x|

    dL/dx = g * sign(x)   (0 at x = 0, as NumPy's sign and PyTorch)
    """

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return array_module(x).abs(x)

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved
        return (grad_out * array_module(x).sign(x),)


def abs(x):  # noqa: A001 - NumPy's and Python's name
    """|x|, elementwise."""
    return Abs.apply(x)


def _winner_backward(ctx, grad_out, x_wins, y_wins, tie):
    """g goes to the operand that won; a tie gives each half (maximum and minimum share this)."""
    half_tie = (grad_out * 0.5) * tie
    grad_x = grad_out * x_wins + half_tie if ctx.needs_input_grad[0] else None
    grad_y = grad_out * y_wins + half_tie if ctx.needs_input_grad[1] else None
    return grad_x, grad_y


class Maximum(Function):
    """z = max(x, y) elementwise

    dL/dx = g where x > y,   dL/dy = g where y > x;   a tie gives each g / 2 (as PyTorch).
    """

    @staticmethod
    def forward(ctx, x, y):
        ctx.save_for_backward(x, y)
        return array_module(x, y).maximum(x, y)

    @staticmethod
    def backward(ctx, grad_out):
        x, y = ctx.saved
        return _winner_backward(ctx, grad_out, x > y, y > x, x == y)


def maximum(x, y):
    """Elementwise maximum, with NumPy broadcasting."""
    return Maximum.apply(*elementwise_operands("maximum", x, y))


class Minimum(Function):
    """z = min(x, y) elementwise

    dL/dx = g where x < y,   dL/dy = g where y < x;   a tie gives each g / 2.
    """

    @staticmethod
    def forward(ctx, x, y):
        ctx.save_for_backward(x, y)
        return array_module(x, y).minimum(x, y)

    @staticmethod
    def backward(ctx, grad_out):
        x, y = ctx.saved
        return _winner_backward(ctx, grad_out, x < y, y < x, x == y)


def minimum(x, y):
    """Elementwise minimum, with NumPy broadcasting."""
    return Minimum.apply(*elementwise_operands("minimum", x, y))


class Clip(Function):
    """z = min(max(x, low), high)

    dL/dx = g where low <= x <= high, else 0   (the bounds included, as PyTorch's clamp)
    """

    @staticmethod
    def forward(ctx, x, low, high):
        ctx.save_for_backward(x)
        ctx.low, ctx.high = low, high
        return array_module(x).clip(x, low, high)

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved
        inside = True
        if ctx.low is not None:
            inside = x >= ctx.low
        if ctx.high is not None:
            inside = inside & (x <= ctx.high)
        return grad_out * inside, None, None


def clip(x, min=None, max=None):  # noqa: A002 - NumPy's and PyTorch's names
    """x limited to [min, max]; either bound may be None."""
    if min is None and max is None:
        return x
    if min is not None and max is not None and min > max:
        raise ValueError(f"clip: min ({min}) must not exceed max ({max})")
    return Clip.apply(x, min, max)


def _check_bool(function, name, mask):
    dtype = mask.dtype if hasattr(mask, "dtype") else type(mask)
    if getattr(dtype, "kind", None) != "b":
        raise DTypeError(f"{function}: {name} must be a bool tensor or array, got dtype {dtype}")


class Where(Function):
    """z = x where condition holds, else y

    dL/dx = g where condition, else 0;   dL/dy = g where not condition, else 0
    """

    @staticmethod
    def forward(ctx, condition, x, y):
        ctx.save_for_backward(condition)
        return array_module(condition, x, y).where(condition, x, y)

    @staticmethod
    def backward(ctx, grad_out):
        (condition,) = ctx.saved
        xp = array_module(grad_out)
        grad_x = xp.where(condition, grad_out, 0) if ctx.needs_input_grad[1] else None
        grad_y = xp.where(condition, 0, grad_out) if ctx.needs_input_grad[2] else None
        return None, grad_x, grad_y


def where(condition, x, y):
    """x where ``condition`` (bool) is True, y elsewhere; all three broadcast together."""
    condition, x, y = elementwise_operands("where", condition, x, y)
    _check_bool("where", "condition", condition)
    return Where.apply(condition, x, y)


class MaskedFill(Function):
    """z = value where mask, else x

    dL/dx = g where not mask, else 0   (a filled entry no longer depends on x)
    """

    @staticmethod
    def forward(ctx, x, mask, value):
        ctx.save_for_backward(mask)
        return array_module(x, mask).where(mask, value, x)

    @staticmethod
    def backward(ctx, grad_out):
        (mask,) = ctx.saved
        return array_module(grad_out).where(mask, 0, grad_out), None, None


def masked_fill(x, mask, value):
    """A copy of ``x`` with ``value`` wherever the bool ``mask`` is True (mask broadcasts)."""
    x, mask = elementwise_operands("masked_fill", x, mask)
    _check_bool("masked_fill", "mask", mask)
    if not isinstance(x, Tensor):
        x = Tensor(x)
    return MaskedFill.apply(x, mask, float(value))
