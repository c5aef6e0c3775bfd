"""Softmax and log-softmax along one axis, fused: one Function each, stable for large inputs.

Composing softmax from exp, sum and div would work, but e^x overflows float32 once x > 88. Both
Functions subtract the maximum first, which changes nothing mathematically:

    softmax(x)_i = e^(x_i - m) / Σ_j e^(x_j - m),   m = max_j x_j

and their backward is written out by hand, cheaper than the composed graph.

A slice that is entirely -inf (every position masked) gives zeros from softmax, not NaN.

Attention adds two steps before its softmax: scaling the scores by 1/√d_k and hiding masked keys.
``ScaledMaskedSoftmax`` does both inside the one Function, so the (B, H, T, S) scores are not
copied twice more (and kept twice more for backward) on the way.

A float16 input is computed in float32 and the result returned in float16, in forward and in
backward (ops/widen.py): its sums of exponentials would lose most of float16's 11 bits.
"""

from minitransformer.autograd import Function
from minitransformer.backend import array_module
from minitransformer.errors import DTypeError, ShapeError
from minitransformer.ops.axes import normalize_axis
from minitransformer.ops.broadcast import broadcasts_onto
from minitransformer.ops.rows import row_dots, row_max, row_sums
from minitransformer.ops.widen import narrow, widen
from minitransformer.tensor import Tensor

__all__ = [
    "LogSoftmax",
    "ScaledMaskedSoftmax",
    "Softmax",
    "log_softmax",
    "scaled_masked_softmax",
    "softmax",
]


def _finite_max(x, axis):
    """max(x) along ``axis``, but 0 for an all -inf slice: shifting by it keeps -inf, not NaN."""
    xp = array_module(x)
    m = row_max(x) if axis in (-1, x.ndim - 1) else x.max(axis=axis, keepdims=True)
    return xp.where(xp.isfinite(m), m, 0)


def _sums(x, axis):
    return row_sums(x) if axis in (-1, x.ndim - 1) else x.sum(axis=axis, keepdims=True)


def _shifted(x, axis):
    """x - max(x) along ``axis`` (a new array)."""
    return x - _finite_max(x, axis)


def _exp_normalize_in_place(z, axis):
    """Overwrite shifted scores z (a new array the caller owns) with e^z / Σ e^z along ``axis``."""
    xp = array_module(z)
    xp.exp(z, out=z)
    total = _sums(z, axis)
    z /= xp.where(total == 0, 1, total)  # an all -inf slice: 0 / 1, not 0 / 0
    return z


def _softmax_backward(ctx, y, grad_out, axis):
    """dL/dx = y * (g - Σ_j g_j y_j), in ``grad_out`` itself when the engine owns it."""
    last = axis in (-1, y.ndim - 1)
    dot = row_dots(grad_out, y) if last else (grad_out * y).sum(axis=axis, keepdims=True)
    grad = ctx.writable(grad_out)
    grad -= dot
    grad *= y
    return grad


class Softmax(Function):
    """y_i = e^(x_i - m) / Σ_j e^(x_j - m) along ``axis``

    dL/dx = y * (g - Σ_j g_j y_j)      (the Jacobian diag(y) - y yᵀ applied to g)
    """

    @staticmethod
    def forward(ctx, x, axis):
        y = _exp_normalize_in_place(_shifted(widen(x), axis), axis)  # one new array
        y = narrow(y, x.dtype)  # float16 x: the float32 result, back in float16
        ctx.save_for_backward(y)
        ctx.axis = axis
        return y

    @staticmethod
    def backward(ctx, grad_out):
        (y,) = ctx.saved
        grad = _softmax_backward(ctx, widen(y), widen(grad_out), ctx.axis)
        return (narrow(grad, y.dtype),)


def softmax(x, axis=-1):
    """Softmax along ``axis``: non-negative, summing to 1 along it."""
    return Softmax.apply(x, axis=normalize_axis("softmax", axis, x.ndim))


class ScaledMaskedSoftmax(Function):
    """y = softmax(scale · x, with -inf where the mask is False) along the last axis

    dL/dx = scale · y * (g - Σ_j g_j y_j)      (a hidden key has y = 0: no gradient)

    The mask (bool, True = may attend) broadcasts to x and gets no gradient. With ``in_place``
    the result is written into x's own array (backward never reads x).
    """

    @staticmethod
    def forward(ctx, x, mask, scale, in_place):
        xp = array_module(x)
        z = widen(x)  # x itself, or a float32 copy of float16 scores (ours to overwrite)
        if in_place or z is not x:
            z *= scale
        else:
            z = x * scale  # the one new array: scaled, masked and normalised in place
        if mask is not None:
            xp.copyto(z, float("-inf"), where=~mask)  # a hidden key gets e^-inf = 0
        z -= _finite_max(z, -1)
        y = narrow(_exp_normalize_in_place(z, -1), x.dtype)
        ctx.save_for_backward(y)
        ctx.scale = scale
        return y

    @staticmethod
    def backward(ctx, grad_out):
        (y,) = ctx.saved
        grad = _softmax_backward(ctx, widen(y), widen(grad_out), -1)
        if ctx.scale != 1:
            grad *= ctx.scale
        return narrow(grad, y.dtype), None


def scaled_masked_softmax(x, scale=1.0, mask=None, in_place=False):
    """softmax(scale · x) over the last axis, keys where ``mask`` is False left out (weight 0).

    Shapes: x (..., T, S); mask bool, broadcasting to x (e.g. (T, S) or (B, 1, 1, S)), or None
    -> (..., T, S). A row whose keys are all hidden gets zero weights, not NaN.

    ``in_place=True`` overwrites x's data with the result instead of making a new array: only for
    an intermediate that nothing else reads afterwards (attention's scores), never for a tensor
    a caller holds.
    """
    if mask is not None:
        mask = mask if isinstance(mask, Tensor) else Tensor(mask)
        if mask.dtype.kind != "b":
            raise DTypeError(f"scaled_masked_softmax: the mask must be bool (True = may attend),"
                             f" got {mask.dtype}")
        if not broadcasts_onto(mask.shape, x.shape):
            raise ShapeError(f"scaled_masked_softmax: mask {mask.shape} does not broadcast to x "
                             f"{x.shape}")
    return ScaledMaskedSoftmax.apply(x, mask, scale=float(scale), in_place=bool(in_place))


class LogSoftmax(Function):
    """y_i = x_i - m - log Σ_j e^(x_j - m) along ``axis``

    dL/dx = g - softmax(x) * Σ_j g_j      (softmax(x) = e^y)
    """

    @staticmethod
    def forward(ctx, x, axis):
        xp = array_module(x)
        shifted = _shifted(widen(x), axis)
        total = xp.exp(shifted).sum(axis=axis, keepdims=True)
        y = narrow(shifted - xp.log(xp.where(total == 0, 1, total)), x.dtype)
        ctx.save_for_backward(y)
        ctx.axis = axis
        return y

    @staticmethod
    def backward(ctx, grad_out):
        (y,) = ctx.saved
        xp = array_module(y)
        g, log_p = widen(grad_out), widen(y)
        return (narrow(g - xp.exp(log_p) * g.sum(axis=ctx.axis, keepdims=True), y.dtype),)


def log_softmax(x, axis=-1):
    """log(softmax(x)) along ``axis``, computed without forming softmax (no log of 0)."""
    return LogSoftmax.apply(x, axis=normalize_axis("log_softmax", axis, x.ndim))
