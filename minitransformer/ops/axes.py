"""Axis arguments, NumPy's way: an int, a tuple of ints, negative from the end, or None for all."""

import operator

from minitransformer.errors import ShapeError

__all__ = ["kept_shape", "normalize_axes", "normalize_axis", "reduced_size"]


def normalize_axis(function, axis, ndim):
    """One axis as a non-negative int; negative axes count from the end."""
    try:
        axis = operator.index(axis)
    except TypeError:
        raise TypeError(f"{function}: an axis is an int, got {axis!r}") from None
    if not -ndim <= axis < ndim:
        raise ShapeError(
            f"{function}: axis {axis} is out of range for a tensor with {ndim} dims "
            f"(valid: {-ndim} to {ndim - 1})"
        )
    return axis % ndim


def normalize_axes(function, axis, ndim):
    """A sorted tuple of distinct non-negative axes; None means every axis."""
    if axis is None:
        return tuple(range(ndim))
    if not isinstance(axis, (tuple, list)):
        axis = (axis,)
    axes = tuple(sorted(normalize_axis(function, a, ndim) for a in axis))
    if len(set(axes)) != len(axes):
        raise ShapeError(f"{function}: axis {tuple(axis)} repeats an axis")
    return axes


def kept_shape(shape, axes):
    """``shape`` with the reduced ``axes`` kept as size 1 (what keepdims=True gives)."""
    return tuple(1 if i in axes else size for i, size in enumerate(shape))


def reduced_size(shape, axes):
    """How many elements each reduction over ``axes`` combines."""
    count = 1
    for i in axes:
        count *= shape[i]
    return count
