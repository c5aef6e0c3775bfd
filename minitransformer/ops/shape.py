"""Ops that move values around without changing them: reshape, permute, getitem, concat, stack,
pad, and the compositions built on them (transpose, swapaxes, squeeze, unsqueeze, split).

The gradient of moving values is moving the gradient back: reshape it back, permute it back, or
scatter it into zeros at the positions that were read.
"""

import operator

from minitransformer.autograd import Function
from minitransformer.backend import array_module, scatter_add
from minitransformer.errors import ShapeError
from minitransformer.ops.axes import normalize_axis
from minitransformer.ops.broadcast import promote
from minitransformer.tensor import Tensor

__all__ = [
    "Concat",
    "GetItem",
    "Pad",
    "Permute",
    "Reshape",
    "Stack",
    "concat",
    "getitem",
    "pad",
    "permute",
    "reshape",
    "split",
    "squeeze",
    "stack",
    "swapaxes",
    "transpose",
    "unsqueeze",
]


class Reshape(Function):
    """y = x with a new shape (same elements, row-major order)

    dL/dx = g reshaped back to x's shape
    """

    @staticmethod
    def forward(ctx, x, shape):
        ctx.input_shape = x.shape
        return x.reshape(shape)

    @staticmethod
    def backward(ctx, grad_out):
        return (grad_out.reshape(ctx.input_shape),)


def _shape_argument(shape):
    """Accept ``reshape(2, 3)`` and ``reshape((2, 3))`` alike."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = shape[0]
    return tuple(operator.index(n) for n in shape)


def reshape(x, *shape):
    """``x`` with shape ``shape`` (one entry may be -1: inferred). Same number of elements."""
    shape = _shape_argument(shape)
    known = 1
    for n in shape:
        known *= n if n != -1 else 1
    unknown = shape.count(-1)
    fits = unknown == 0 and known == x.size or unknown == 1 and known > 0 and x.size % known == 0
    if unknown > 1 or any(n < -1 for n in shape) or not fits:
        raise ShapeError(
            f"reshape: cannot reshape a tensor of shape {x.shape} ({x.size} elements) into "
            f"{shape}; the sizes must multiply to the same count (one -1 may stand for the rest)"
        )
    if shape == x.shape:
        return x
    return Reshape.apply(x, shape=shape)


class Permute(Function):
    """y = x with its axes reordered: y's axis i is x's axis ``axes[i]``

    dL/dx = g permuted by the inverse permutation
    """

    @staticmethod
    def forward(ctx, x, axes):
        ctx.inverse = tuple(sorted(range(len(axes)), key=axes.__getitem__))
        return array_module(x).transpose(x, axes)

    @staticmethod
    def backward(ctx, grad_out):
        return (array_module(grad_out).transpose(grad_out, ctx.inverse),)


def permute(x, *axes):
    """Reorder the axes: ``permute(x, 0, 2, 1)`` swaps the last two of three."""
    if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
        axes = tuple(axes[0])
    normalized = tuple(normalize_axis("permute", a, x.ndim) for a in axes)
    if sorted(normalized) != list(range(x.ndim)):
        raise ShapeError(
            f"permute: axes {axes} are not a permutation of the {x.ndim} axes of shape {x.shape}"
        )
    if normalized == tuple(range(x.ndim)):
        return x
    return Permute.apply(x, axes=normalized)


def transpose(x, *axes):
    """NumPy's transpose: no axes reverses them all; otherwise the same as ``permute``."""
    if not axes or axes == (None,):
        axes = tuple(reversed(range(x.ndim)))
    return permute(x, *axes)


def swapaxes(x, axis1, axis2):
    """Exchange two axes, e.g. ``swapaxes(k, -1, -2)`` for Kᵀ in attention."""
    axes = list(range(x.ndim))
    a = normalize_axis("swapaxes", axis1, x.ndim)
    b = normalize_axis("swapaxes", axis2, x.ndim)
    axes[a], axes[b] = axes[b], axes[a]
    return permute(x, *axes)


def squeeze(x, axis=None):
    """Drop axes of size 1: all of them, or the given ones (which must have size 1)."""
    if axis is None:
        axes = [i for i, n in enumerate(x.shape) if n == 1]
    else:
        axes = [normalize_axis("squeeze", a, x.ndim)
                for a in (axis if isinstance(axis, (tuple, list)) else (axis,))]
        wrong = [a for a in axes if x.shape[a] != 1]
        if wrong:
            raise ShapeError(f"squeeze: axis {wrong[0]} of shape {x.shape} has size "
                             f"{x.shape[wrong[0]]}; only size-1 axes can be squeezed")
    return reshape(x, tuple(n for i, n in enumerate(x.shape) if i not in axes))


def unsqueeze(x, axis):
    """Insert an axis of size 1 at position ``axis`` (-1: at the end)."""
    axis = normalize_axis("unsqueeze", axis, x.ndim + 1)
    return reshape(x, x.shape[:axis] + (1,) + x.shape[axis:])


class GetItem(Function):
    """y = x[index]   (ints, slices, None, Ellipsis, integer arrays, bool masks)

    dL/dx = zeros with g added at the positions read. An integer-array index may read one
    position several times; each read adds its gradient (scatter-add), never overwrites.
    """

    @staticmethod
    def forward(ctx, x, index, gathers):
        ctx.input_shape, ctx.index, ctx.gathers = x.shape, index, gathers
        return x[index]

    @staticmethod
    def backward(ctx, grad_out):
        grad = array_module(grad_out).zeros(ctx.input_shape, dtype=grad_out.dtype)
        if ctx.gathers:
            scatter_add(grad, ctx.index, grad_out)
        else:
            grad[ctx.index] = grad_out  # basic indexing reads each position at most once
        return (grad,)


def _index_parts(x, index):
    """Tensors and lists inside ``index`` become arrays on x's device. Also returns whether an
    integer array is among them (so a position may be read twice)."""
    xp = array_module(x.data)
    parts = index if isinstance(index, tuple) else (index,)
    converted, gathers = [], False
    for part in parts:
        if isinstance(part, Tensor):
            part = part.data
        elif isinstance(part, list):
            part = xp.asarray(part)
        if getattr(part, "ndim", 0) > 0:
            if part.dtype.kind in "iu":
                gathers = True
            elif part.dtype.kind != "b":
                raise IndexError(f"getitem: index arrays must be integer or bool, got {part.dtype}")
        converted.append(part)
    return (tuple(converted) if isinstance(index, tuple) else converted[0]), gathers


def getitem(x, index):
    """``x[index]`` with NumPy's indexing rules."""
    index, gathers = _index_parts(x, index)
    try:
        return GetItem.apply(x, index=index, gathers=gathers)
    except IndexError as error:
        raise IndexError(f"getitem: {error} (tensor of shape {x.shape})") from None


def _check_same_shapes(function, tensors, skip_axis=None):
    """All shapes equal (except along ``skip_axis``); a ShapeError listing them otherwise."""
    if not tensors:
        raise ValueError(f"{function}: needs at least one tensor")
    first = tensors[0].shape
    for t in tensors[1:]:
        same = len(t.shape) == len(first) and all(
            a == b for i, (a, b) in enumerate(zip(t.shape, first)) if i != skip_axis
        )
        if not same:
            shapes = ", ".join(str(u.shape) for u in tensors)
            rule = "equal shapes" if skip_axis is None else f"equal shapes except axis {skip_axis}"
            raise ShapeError(f"{function}: shapes {shapes} do not fit; it needs {rule}")


class Concat(Function):
    """y = [x_1, x_2, ...] joined along ``axis``

    dL/dx_i = the slice of g that x_i filled
    """

    @staticmethod
    def forward(ctx, *arrays, axis):
        ctx.axis = axis
        ctx.sizes = [a.shape[axis] for a in arrays]
        return array_module(*arrays).concatenate(arrays, axis=axis)

    @staticmethod
    def backward(ctx, grad_out):
        grads, start = [], 0
        for size in ctx.sizes:
            index = (slice(None),) * ctx.axis + (slice(start, start + size),)
            grads.append(grad_out[index])
            start += size
        return tuple(grads)


def concat(tensors, axis=0):
    """Join tensors along an existing ``axis``; their other axes must match."""
    tensors = promote([t if isinstance(t, Tensor) else Tensor(t) for t in tensors])
    if not tensors:
        raise ValueError("concat: needs at least one tensor")
    axis = normalize_axis("concat", axis, tensors[0].ndim)
    _check_same_shapes("concat", tensors, skip_axis=axis)
    return Concat.apply(*tensors, axis=axis)


class Stack(Function):
    """y = x_1, x_2, ... stacked along a new ``axis``

    dL/dx_i = g's slice i along that axis
    """

    @staticmethod
    def forward(ctx, *arrays, axis):
        ctx.axis = axis
        return array_module(*arrays).stack(arrays, axis=axis)

    @staticmethod
    def backward(ctx, grad_out):
        count = grad_out.shape[ctx.axis]
        return tuple(grad_out[(slice(None),) * ctx.axis + (i,)] for i in range(count))


def stack(tensors, axis=0):
    """Stack equally shaped tensors along a new ``axis``."""
    tensors = promote([t if isinstance(t, Tensor) else Tensor(t) for t in tensors])
    _check_same_shapes("stack", tensors)
    axis = normalize_axis("stack", axis, tensors[0].ndim + 1)
    return Stack.apply(*tensors, axis=axis)


def split(x, indices_or_sections, axis=0):
    """Cut ``x`` along ``axis``, as NumPy's split: an int N gives N equal parts (it must divide
    the axis); a list of indices gives the cut points. Returns a list of tensors."""
    axis = normalize_axis("split", axis, x.ndim)
    length = x.shape[axis]
    if isinstance(indices_or_sections, int):
        parts = indices_or_sections
        if parts <= 0 or length % parts:
            raise ShapeError(f"split: axis {axis} of shape {x.shape} (size {length}) cannot be "
                             f"split into {parts} equal parts")
        cuts = [length // parts * i for i in range(1, parts)]
    else:
        cuts = list(indices_or_sections)
    bounds = [0, *cuts, length]
    return [
        getitem(x, (slice(None),) * axis + (slice(start, stop),))
        for start, stop in zip(bounds[:-1], bounds[1:])
    ]


class Pad(Function):
    """y = x surrounded by ``value``: ``widths[i] = (before, after)`` entries on axis i

    dL/dx = the slice of g where x sits
    """

    @staticmethod
    def forward(ctx, x, widths, value):
        ctx.inner = tuple(slice(before, before + n) for (before, _), n in zip(widths, x.shape))
        return array_module(x).pad(x, widths, mode="constant", constant_values=value)

    @staticmethod
    def backward(ctx, grad_out):
        return (grad_out[ctx.inner],)


def pad(x, pad_width, value=0.0):
    """Pad with a constant, as NumPy's ``pad``: ``pad_width`` is an int, one (before, after) pair
    for every axis, or a pair per axis."""
    if isinstance(pad_width, int):
        widths = ((pad_width, pad_width),) * x.ndim
    elif len(pad_width) == 2 and all(isinstance(w, int) for w in pad_width):
        widths = (tuple(pad_width),) * x.ndim
    else:
        widths = tuple(tuple(pair) for pair in pad_width)
    if len(widths) != x.ndim or any(len(p) != 2 or min(p) < 0 for p in widths):
        raise ShapeError(f"pad: pad_width {pad_width} does not give a non-negative (before, "
                         f"after) pair for each of the {x.ndim} axes of shape {x.shape}")
    return Pad.apply(x, widths=widths, value=value)
