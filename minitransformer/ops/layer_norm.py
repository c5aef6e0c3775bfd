"""Layer normalization over the last axis (Ba, Kiros & Hinton 2016), fused into one Function.

    μ = mean(x),   σ² = mean((x - μ)²),   x̂ = (x - μ) / √(σ² + ε),   y = x̂ · weight + bias

Backward runs the forward in reverse, one gradient per intermediate:

    dL/dbias   = Σ_rows g
    dL/dweight = Σ_rows g · x̂
    dL/dx̂      = g · weight
    dL/dx      = (dL/dx̂ - mean(dL/dx̂) - x̂ · mean(dL/dx̂ · x̂)) / √(σ² + ε)

(the last line folds the paths through μ and σ² into the two means).

A float16 x is normalised in float32 (μ and σ² would lose most of float16's 11 bits, and (x - μ)²
overflows it once x - μ passes ±256); y and the gradients come back in the inputs' dtypes
(ops/widen.py).
"""

from minitransformer.autograd import Function
from minitransformer.backend import array_module
from minitransformer.errors import ShapeError
from minitransformer.ops.rows import column_dots, column_sums, row_dots, row_means
from minitransformer.ops.widen import narrow, widen

__all__ = ["LayerNorm", "layer_norm"]


class LayerNorm(Function):
    """y = x̂ · weight + bias, x̂ = (x - μ) / √(σ² + ε), over the last axis; weight and bias may
    be None.

    dL/dbias = Σ_rows g,   dL/dweight = Σ_rows g · x̂,   dL/dx̂ = g · weight,
    dL/dx = (dL/dx̂ - mean(dL/dx̂) - x̂ · mean(dL/dx̂ · x̂)) / √(σ² + ε).
    """

    @staticmethod
    def forward(ctx, x, weight, bias, eps):
        xp = array_module(x)
        wide = widen(x)  # x itself, or a float32 copy of a float16 x
        x_hat = wide - row_means(wide)  # centered; normalised in place below
        variance = row_dots(x_hat, x_hat) / x.shape[-1]  # (..., 1)
        inv_std = 1 / xp.sqrt(variance + eps)  # (..., 1)
        x_hat *= inv_std
        ctx.save_for_backward(x_hat, inv_std, weight)
        ctx.dtypes = (x.dtype, getattr(weight, "dtype", None), getattr(bias, "dtype", None))
        if weight is None:
            return narrow(x_hat if bias is None else x_hat + bias, x.dtype)
        y = x_hat * weight
        if bias is not None:
            y += bias
        return narrow(y, x.dtype)

    @staticmethod
    def backward(ctx, grad_out):
        x_hat, inv_std, weight = ctx.saved
        grad_out = widen(grad_out)  # float16: computed in float32, as the forward
        features = x_hat.shape[-1]
        rows_g, rows_x_hat = grad_out.reshape(-1, features), x_hat.reshape(-1, features)
        grad_bias = grad_weight = None
        if ctx.needs_input_grad[2]:
            grad_bias = column_sums(rows_g)
        if ctx.needs_input_grad[1]:
            grad_weight = column_dots(rows_g, rows_x_hat)
        grad_x = ctx.writable(grad_out)  # dL/dx̂ = g · weight, then dL/dx, in place
        if weight is not None:
            grad_x *= weight
        projection = row_dots(grad_x, x_hat) / features  # mean(dL/dx̂ · x̂), (..., 1)
        grad_x -= row_means(grad_x)
        x_hat_projected = ctx.writable_saved(x_hat)
        x_hat_projected *= projection
        grad_x -= x_hat_projected
        grad_x *= inv_std
        dtype_x, dtype_weight, dtype_bias = ctx.dtypes
        return narrow(grad_x, dtype_x), narrow(grad_weight, dtype_weight), \
            narrow(grad_bias, dtype_bias)


def layer_norm(x, weight=None, bias=None, eps=1e-5):
    """Normalize each vector along the last axis to mean 0 and variance 1, then scale and shift.

    Shapes: x (..., D); weight (D,) or None; bias (D,) or None -> (..., D).
    """
    features = x.shape[-1] if x.ndim else None
    for name, param in (("weight", weight), ("bias", bias)):
        if param is not None and param.shape != (features,):
            raise ShapeError(f"layer_norm: {name} has shape {param.shape}, but x {x.shape} needs "
                             f"({features},): one value per feature of the last axis")
    if eps <= 0:
        raise ValueError(f"layer_norm: eps must be positive, got {eps}")
    return LayerNorm.apply(x, weight, bias, eps=float(eps))
