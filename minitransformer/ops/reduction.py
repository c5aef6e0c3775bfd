"""Reductions over axes: sum, mean, max, min, var, std, logsumexp.

Every one takes NumPy's ``axis`` (int, tuple, negative, or None for all) and ``keepdims``.
The backward of a reduction spreads the gradient back over the reduced axes: it reshapes g to the
``keepdims`` shape and lets it broadcast against the input.

``sum``, ``max`` and ``min`` are NumPy's names; they shadow the builtins in this module only.
"""

from minitransformer.autograd import Function
from minitransformer.backend import array_module
from minitransformer.errors import ShapeError
from minitransformer.ops.axes import kept_shape, normalize_axes, reduced_size
from minitransformer.ops.elementwise import div, mul, sub
from minitransformer.ops.unary import sqrt

__all__ = [
    "LogSumExp",
    "Max",
    "Min",
    "Sum",
    "logsumexp",
    "max",
    "mean",
    "min",
    "std",
    "sum",
    "var",
]


def _squeeze_unless(y, axes, keepdims):
    """Drop the reduced axes of a keepdims result, unless keepdims."""
    return y if keepdims else y.reshape([n for i, n in enumerate(y.shape) if i not in axes])


class Sum(Function):
    """y = Σ x over ``axes``

    dL/dx = g, copied to every element that was summed
    """

    @staticmethod
    def forward(ctx, x, axes, keepdims):
        ctx.input_shape, ctx.axes = x.shape, axes
        return x.sum(axis=axes, keepdims=keepdims)

    @staticmethod
    def backward(ctx, grad_out):
        xp = array_module(grad_out)
        grad = grad_out.reshape(kept_shape(ctx.input_shape, ctx.axes))
        return (xp.broadcast_to(grad, ctx.input_shape),)


def sum(x, axis=None, keepdims=False):  # noqa: A001
    """The sum over ``axis`` (None: all axes)."""
    return Sum.apply(x, axes=normalize_axes("sum", axis, x.ndim), keepdims=keepdims)


def mean(x, axis=None, keepdims=False):
    """The mean over ``axis``: sum / number of elements summed."""
    axes = normalize_axes("mean", axis, x.ndim)
    return div(sum(x, axes, keepdims), reduced_size(x.shape, axes))


def _extremum_backward(ctx, grad_out):
    """g goes to the elements equal to the extremum; k tied elements get g / k each."""
    x, y = ctx.saved  # y kept its reduced axes (keepdims)
    winners = x == y
    count = winners.sum(axis=ctx.axes, keepdims=True, dtype=grad_out.dtype)
    grad = grad_out.reshape(y.shape) / count
    return (grad * winners,)


class Max(Function):
    """y = max of x over ``axes``

    dL/dx = g at the maximum, 0 elsewhere; k tied maxima share it: g / k each (as PyTorch's amax).
    """

    @staticmethod
    def forward(ctx, x, axes, keepdims):
        y = x.max(axis=axes, keepdims=True)
        ctx.save_for_backward(x, y)
        ctx.axes = axes
        return _squeeze_unless(y, axes, keepdims)

    backward = staticmethod(_extremum_backward)


class Min(Function):
    """y = min of x over ``axes``

    dL/dx = g at the minimum, 0 elsewhere; k tied minima share it: g / k each.
    """

    @staticmethod
    def forward(ctx, x, axes, keepdims):
        y = x.min(axis=axes, keepdims=True)
        ctx.save_for_backward(x, y)
        ctx.axes = axes
        return _squeeze_unless(y, axes, keepdims)

    backward = staticmethod(_extremum_backward)


def _check_not_empty(function, x, axes):
    if reduced_size(x.shape, axes) == 0:
        raise ShapeError(f"{function}: cannot reduce over an empty axis (shape {x.shape})")


def max(x, axis=None, keepdims=False):  # noqa: A001
    """The maximum over ``axis``."""
    axes = normalize_axes("max", axis, x.ndim)
    _check_not_empty("max", x, axes)
    return Max.apply(x, axes=axes, keepdims=keepdims)


def min(x, axis=None, keepdims=False):  # noqa: A001
    """The minimum over ``axis``."""
    axes = normalize_axes("min", axis, x.ndim)
    _check_not_empty("min", x, axes)
    return Min.apply(x, axes=axes, keepdims=keepdims)


def var(x, axis=None, correction=0, keepdims=False):
    """The variance over ``axis``: Σ (x - mean)² / (n - correction).

    ``correction=0`` (the default, NumPy's ``ddof=0``) is the population variance; 1 is the
    unbiased sample variance.
    """
    axes = normalize_axes("var", axis, x.ndim)
    n = reduced_size(x.shape, axes)
    if n - correction <= 0:
        raise ValueError(f"var: correction={correction} needs more than {correction} elements per "
                         f"reduction; axis {axis} of shape {x.shape} has {n}")
    centered = sub(x, mean(x, axes, keepdims=True))
    return div(sum(mul(centered, centered), axes, keepdims), n - correction)


def std(x, axis=None, correction=0, keepdims=False):
    """The standard deviation over ``axis``: √var (its gradient is infinite where var = 0)."""
    return sqrt(var(x, axis, correction, keepdims))


class LogSumExp(Function):
    """y = log Σ e^x over ``axes``, computed as m + log Σ e^(x - m) with m = max x (no overflow)

    dL/dx = g * softmax(x) = g * e^(x - y)
    """

    @staticmethod
    def forward(ctx, x, axes, keepdims):
        xp = array_module(x)
        m = x.max(axis=axes, keepdims=True)
        m = xp.where(xp.isfinite(m), m, 0)  # an all -inf slice: keep e^(x - m) at 0, not NaN
        e = xp.exp(x - m)
        total = e.sum(axis=axes, keepdims=True)
        ctx.save_for_backward(e / xp.where(total == 0, 1, total))  # softmax(x)
        ctx.axes = axes
        y = m + xp.log(total)
        return _squeeze_unless(y, axes, keepdims)

    @staticmethod
    def backward(ctx, grad_out):
        (probabilities,) = ctx.saved
        grad = grad_out.reshape(kept_shape(probabilities.shape, ctx.axes))
        return (grad * probabilities,)


def logsumexp(x, axis=None, keepdims=False):
    """log Σ exp(x) over ``axis``, stable for large x."""
    axes = normalize_axes("logsumexp", axis, x.ndim)
    _check_not_empty("logsumexp", x, axes)
    return LogSumExp.apply(x, axes=axes, keepdims=keepdims)
