"""The affine map of a Linear layer, fused: y = x W + b as one 2-D matrix product.

Composing it as ``matmul(x, W) + b`` works, but costs a broadcast node for the bias, a batch of
small products when x is (B, T, D), and a fresh array for the sum. Here the rows of x are
flattened to (N, D) = (B·T, D), so forward and backward are each one BLAS call:

    Y = X W + b             (N, out) = (N, in) @ (in, out), b added in place
    dL/dX = G Wᵀ            (N, in)
    dL/dW = Xᵀ G            (in, out)
    dL/db = Σ_rows G        (out,)    as 1ᵀ G, one matrix-vector product

``LinearReLU`` is the feed-forward network's first layer and its ReLU, max(X W + b, 0), as one op:
the rectifier runs in place on the product, and backward needs only that output (its positive
entries say where the gradient passes), so the pre-activation (N, d_ff) array is never kept.
"""

from minitransformer.autograd import Function
from minitransformer.backend import array_module
from minitransformer.errors import ShapeError
from minitransformer.ops.broadcast import promote
from minitransformer.ops.rows import column_sums
from minitransformer.ops.unary import gelu

__all__ = ["Linear", "LinearReLU", "linear", "linear_activation", "linear_relu"]


class Linear(Function):
    """y = x W + b over the last axis of x (any leading axes); b may be None.

    With X the rows of x, (N, in), and G the rows of g = dL/dy, (N, out):
    dL/dX = G Wᵀ,   dL/dW = Xᵀ G,   dL/db = Σ_rows G.
    """

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
        return _linear_backward(ctx, rows, weight, grad_out.reshape(-1, weight.shape[1]))


def _linear_backward(ctx, rows, weight, grad_rows):
    """dL/dX, dL/dW, dL/db from the (N, out) gradient of Y, for the inputs that need one."""
    xp = array_module(rows)
    grad_x = grad_w = grad_b = None
    if ctx.needs_input_grad[0]:  # written through a 2-D view of a new (..., in) array, which
        grad_x = xp.empty(ctx.input_shape, dtype=grad_rows.dtype)  # the engine may then own
        xp.matmul(grad_rows, weight.T, out=grad_x.reshape(rows.shape))
    if ctx.needs_input_grad[1]:
        grad_w = rows.T @ grad_rows
    if ctx.needs_input_grad[2]:
        grad_b = column_sums(grad_rows)
    return grad_x, grad_w, grad_b


class LinearReLU(Function):
    """y = max(x W + b, 0) over the last axis of x; b may be None.

    dL/d(x W + b) = g where y > 0, else 0   (0 at 0, as ReLU), then Linear's three gradients.
    """

    @staticmethod
    def forward(ctx, x, weight, bias):
        xp = array_module(x, weight)
        rows = x.reshape(-1, x.shape[-1])  # (N, in)
        y = rows @ weight  # (N, out)
        if bias is not None:
            y += bias
        xp.maximum(y, 0, out=y)  # the ReLU, in place
        ctx.save_for_backward(rows, weight, y)
        ctx.input_shape = x.shape
        return y.reshape(x.shape[:-1] + (weight.shape[1],))  # (..., out)

    @staticmethod
    def backward(ctx, grad_out):
        rows, weight, y = ctx.saved
        grad_rows = ctx.writable(grad_out).reshape(-1, weight.shape[1])  # (N, out)
        grad_rows *= y > 0
        return _linear_backward(ctx, rows, weight, grad_rows)


def _checked(x, weight, bias):
    """The operands of linear / linear_relu after the shape checks (and dtype promotion)."""
    if weight.ndim != 2 or x.ndim < 1 or x.shape[-1] != weight.shape[0]:
        raise ShapeError(f"linear: x {x.shape} and weight {weight.shape} do not fit: the last "
                         f"axis of x must equal the first of the (in, out) weight")
    if bias is not None and bias.shape != (weight.shape[1],):
        raise ShapeError(f"linear: bias {bias.shape} must be ({weight.shape[1]},), one per "
                         "output feature")
    if x.dtype != weight.dtype:
        x, weight, bias = promote([x, weight, bias])
    return x, weight, bias


def linear(x, weight, bias=None):
    """x @ weight + bias over the last axis.

    Shapes: x (..., in); weight (in, out); bias (out,) or None -> (..., out).
    """
    return Linear.apply(*_checked(x, weight, bias))


def linear_relu(x, weight, bias=None):
    """relu(x @ weight + bias) over the last axis, as one op (see ``LinearReLU``).

    Shapes: x (..., in); weight (in, out); bias (out,) or None -> (..., out).
    """
    return LinearReLU.apply(*_checked(x, weight, bias))


def linear_activation(x, weight, bias=None, activation="relu"):
    """activation(x @ weight + bias) over the last axis: the first layer of a feed-forward block.

    Shapes: x (..., in); weight (in, out); bias (out,) or None -> (..., out). ``activation`` is
    "relu" (one op, ``LinearReLU``, that keeps no pre-activation array) or "gelu" (the Linear op,
    then GELU).
    """
    if activation == "relu":
        return linear_relu(x, weight, bias)
    if activation == "gelu":
        return gelu(linear(x, weight, bias))
    raise ValueError(f"linear_activation: activation {activation!r} is not 'relu' or 'gelu'")
