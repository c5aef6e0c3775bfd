"""Softmax and log-softmax along one axis, fused: one Function each, stable for large inputs.

Composing softmax from exp, sum and div would work, but e^x overflows float32 once x > 88. Both
Functions subtract the maximum first, which changes nothing mathematically:

    softmax(x)_i = e^(x_i - m) / Σ_j e^(x_j - m),   m = max_j x_j

and their backward is written out by hand, cheaper than the composed graph.

A slice that is entirely -inf (every position masked) gives zeros from softmax, not NaN.
"""

from minitransformer.autograd import Function
from minitransformer.backend import array_module
from minitransformer.ops.axes import normalize_axis

__all__ = ["LogSoftmax", "Softmax", "log_softmax", "softmax"]


def _shifted(x, axis):
    """x - max(x) along ``axis``; an all -inf slice is shifted by 0 so it stays -inf, not NaN."""
    xp = array_module(x)
    m = x.max(axis=axis, keepdims=True)
    return x - xp.where(xp.isfinite(m), m, 0)


class Softmax(Function):
    """y_i = e^(x_i - m) / Σ_j e^(x_j - m) along ``axis``

    dL/dx = y * (g - Σ_j g_j y_j)      (the Jacobian diag(y) - y yᵀ applied to g)
    """

    @staticmethod
    def forward(ctx, x, axis):
        xp = array_module(x)
        e = xp.exp(_shifted(x, axis))
        total = e.sum(axis=axis, keepdims=True)
        y = e / xp.where(total == 0, 1, total)  # an all -inf slice: 0 / 1, not 0 / 0
        ctx.save_for_backward(y)
        ctx.axis = axis
        return y

    @staticmethod
    def backward(ctx, grad_out):
        (y,) = ctx.saved
        dot = (grad_out * y).sum(axis=ctx.axis, keepdims=True)
        return (y * (grad_out - dot),)


def softmax(x, axis=-1):
    """Softmax along ``axis``: non-negative, summing to 1 along it."""
    return Softmax.apply(x, axis=normalize_axis("softmax", axis, x.ndim))


class LogSoftmax(Function):
    """y_i = x_i - m - log Σ_j e^(x_j - m) along ``axis``

    dL/dx = g - softmax(x) * Σ_j g_j      (softmax(x) = e^y)
    """

    @staticmethod
    def forward(ctx, x, axis):
        xp = array_module(x)
        shifted = _shifted(x, axis)
        total = xp.exp(shifted).sum(axis=axis, keepdims=True)
        y = shifted - xp.log(xp.where(total == 0, 1, total))
        ctx.save_for_backward(y)
        ctx.axis = axis
        return y

    @staticmethod
    def backward(ctx, grad_out):
        (y,) = ctx.saved
        xp = array_module(y)
        return (grad_out - xp.exp(y) * grad_out.sum(axis=ctx.axis, keepdims=True),)


def log_softmax(x, axis=-1):
    """log(softmax(x)) along ``axis``, computed without forming softmax (no log of 0)."""
    return LogSoftmax.apply(x, axis=normalize_axis("log_softmax", axis, x.ndim))
