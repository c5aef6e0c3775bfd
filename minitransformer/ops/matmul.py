"""Matrix multiplication with NumPy's rules: batch axes broadcast, 1-D operands are vectors."""

from minitransformer.autograd import Function
from minitransformer.backend import array_module
from minitransformer.errors import ShapeError
from minitransformer.ops.broadcast import broadcast_shapes, broadcast_to, promote
from minitransformer.ops.shape import reshape
from minitransformer.tensor import Tensor

__all__ = ["MatMul", "matmul"]


class MatMul(Function):
    """z = x @ y, for x (..., n, k) and y either (..., k, m) with the same leading axes, or (k, m)

        dL/dx = g @ yᵀ                      (..., n, k)
        dL/dy = xᵀ @ g                      (..., k, m)

    When y is a (k, m) matrix shared by every batch entry (a Linear layer's weight), its gradient
    adds up over the batch: the rows of x and g are flattened to (N, k) and (N, m) and
    dL/dy = xᵀ @ g is one (k, N) @ (N, m) product, one BLAS call.

    Each batched gradient is written in the memory order of its input (``empty_like``): attention's
    q, k and v are transposed views of (B, T, H, d_k) arrays, so their gradients come back in that
    order and the backward of the head split needs no transposing copy.
    """

    @staticmethod
    def forward(ctx, x, y):
        ctx.save_for_backward(x, y)
        return array_module(x, y).matmul(x, y)

    @staticmethod
    def backward(ctx, grad_out):
        x, y = ctx.saved
        xp = array_module(grad_out)
        grad_x = grad_y = None
        if ctx.needs_input_grad[0]:
            grad_x = xp.matmul(grad_out, xp.swapaxes(y, -1, -2), out=_like(xp, x))
        if ctx.needs_input_grad[1]:
            if y.ndim == 2 and x.ndim > 2:
                rows_x = x.reshape(-1, x.shape[-1])  # (N, k)
                rows_g = grad_out.reshape(-1, grad_out.shape[-1])  # (N, m)
                grad_y = rows_x.T @ rows_g  # (k, m)
            else:
                grad_y = xp.matmul(xp.swapaxes(x, -1, -2), grad_out, out=_like(xp, y))
        return grad_x, grad_y


def _like(xp, array):
    """A new array of ``array``'s shape and memory order; None (a fresh C-order result) for a
    broadcast view, whose zero strides would otherwise be spread into a full copy's order."""
    if array.ndim < 3 or 0 in array.strides:
        return None
    return xp.empty_like(array)


def matmul(x, y):
    """x @ y with NumPy's rules.

    Shapes:
        (n, k) @ (k, m) -> (n, m);   (..., n, k) @ (k, m) -> (..., n, m)
        (..., n, k) @ (..., k, m) -> (..., n, m), the leading (batch) axes broadcast
        a 1-D x is a row vector (k,), a 1-D y a column vector (k,); their axis is dropped after.
    """
    x = x if isinstance(x, Tensor) else Tensor(x)
    y = y if isinstance(y, Tensor) else Tensor(y)
    if x.dtype != y.dtype:
        x, y = promote([x, y])
    if x.ndim == 0 or y.ndim == 0:
        raise ShapeError(f"matmul: cannot multiply {x.shape} @ {y.shape}: scalars are not "
                         "matrices; use *")
    if x.shape[-1] != y.shape[-2 if y.ndim > 1 else 0]:
        raise ShapeError(
            f"matmul: cannot multiply {x.shape} @ {y.shape}: the last axis of the first "
            f"({x.shape[-1]}) must "
            f"equal the {'second-to-last' if y.ndim > 1 else 'only'} axis of the second "
            f"({y.shape[-2 if y.ndim > 1 else 0]})"
        )
    vector_x, vector_y = x.ndim == 1, y.ndim == 1
    if vector_x:
        x = reshape(x, (1,) + x.shape)  # (1, k)
    if vector_y:
        y = reshape(y, y.shape + (1,))  # (k, 1)
    if y.ndim > 2:  # a batch of matrices: broadcast the batch axes of both (the one place)
        batch = x.shape[:-2]
        if batch != y.shape[:-2]:
            batch = broadcast_shapes(f"matmul ({x.shape} @ {y.shape}, batch axes)",
                                     x.shape[:-2], y.shape[:-2])
        x = broadcast_to(x, batch + x.shape[-2:])
        y = broadcast_to(y, batch + y.shape[-2:])
    out = MatMul.apply(x, y)
    if vector_x or vector_y:
        out = reshape(out, out.shape[: -2] + out.shape[-2:][int(vector_x): 2 - int(vector_y)])
    return out
