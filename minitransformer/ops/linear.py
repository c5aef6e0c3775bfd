"""The affine map of a Linear layer, fused: y = x W + b as one 2-D matrix product.

Composing it as ``matmul(x, W) + b`` works, but costs a broadcast node for the bias, a batch of
small products when x is (B, T, D), and a fresh array for the sum. Here the rows of x are
flattened to (N, D) = (B·T, D), so forward and backward are each one BLAS call:

    Y = X W + b             (N, out) = (N, in) @ (in, out), b added in place
    dL/dX = G Wᵀ            (N, in)
    dL/dW = Xᵀ G            (in, out)
    dL/db = Σ_rows G        (out,)
"""

from minitransformer.autograd import Function
from minitransformer.errors import ShapeError

__all__ = ["Linear", "linear"]


class Linear(Function):
    """y = x W + b over the last axis of x (any leading axes); b may be None."""

    @staticmethod
    def forward(ctx, x, weight, bias):
        rows = x.reshape(-1, x.shape[-1])  # (N, in)
        y = rows @ weight  # (N, out): one GEMM
        if bias is not None:
            y += bias
        ctx.save_for_backward(rows, weight)
        ctx.input_shape = x.shape
        return y.reshape(x.shape[:-1] + (weight.shape[1],))  # (..., out)

    @staticmethod
    def backward(ctx, grad_out):
        rows, weight = ctx.saved
        grad_rows = grad_out.reshape(-1, weight.shape[1])  # (N, out)
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = (grad_rows @ weight.T).reshape(ctx.input_shape)
        if ctx.needs_input_grad[1]:
            grad_w = rows.T @ grad_rows
        if ctx.needs_input_grad[2]:
            grad_b = grad_rows.sum(axis=0)
        return grad_x, grad_w, grad_b


def linear(x, weight, bias=None):
    """x @ weight + bias over the last axis.

    Shapes: x (..., in); weight (in, out); bias (out,) or None -> (..., out).
    """
    if weight.ndim != 2 or x.ndim < 1 or x.shape[-1] != weight.shape[0]:
        raise ShapeError(f"linear: x {x.shape} and weight {weight.shape} do not fit: the last "
                         f"axis of x must equal the first of the (in, out) weight")
    if bias is not None and bias.shape != (weight.shape[1],):
        raise ShapeError(f"linear: bias {bias.shape} must be ({weight.shape[1]},), one per "
                         "output feature")
    if x.dtype != weight.dtype:
        from minitransformer.ops.broadcast import promote

        x, weight, bias = promote([x, weight, bias])
    return Linear.apply(x, weight, bias)
