"""Elementwise functions of one tensor: exp, log, sqrt, tanh, sigmoid, relu, gelu.

Where the derivative is easiest in terms of the output (exp, sqrt, tanh, sigmoid), forward saves
the output instead of the input.
"""

import math

from minitransformer.autograd import Function
from minitransformer.backend import array_module

__all__ = [
    "GELU",
    "Exp",
    "Log",
    "ReLU",
    "Sigmoid",
    "Sqrt",
    "Tanh",
    "exp",
    "gelu",
    "log",
    "relu",
    "sigmoid",
    "sqrt",
    "tanh",
]


class Exp(Function):
    """y = e^x

    dL/dx = g * y
    """

    @staticmethod
    def forward(ctx, x):
        y = array_module(x).exp(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad_out):
        (y,) = ctx.saved
        return (grad_out * y,)


def exp(x):
    """e^x, elementwise."""
    return Exp.apply(x)


class Log(Function):
    """y = ln x

    dL/dx = g / x
    """

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return array_module(x).log(x)

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved
        return (grad_out / x,)


def log(x):
    """Natural logarithm, elementwise."""
    return Log.apply(x)


class Sqrt(Function):
    """y = √x

    dL/dx = g / (2y)
    """

    @staticmethod
    def forward(ctx, x):
        y = array_module(x).sqrt(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad_out):
        (y,) = ctx.saved
        return (grad_out / (2 * y),)


def sqrt(x):
    """Square root, elementwise."""
    return Sqrt.apply(x)


class Tanh(Function):
    """y = tanh x

    dL/dx = g * (1 - y²)
    """

    @staticmethod
    def forward(ctx, x):
        y = array_module(x).tanh(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad_out):
        (y,) = ctx.saved
        return (grad_out * (1 - y * y),)


def tanh(x):
    """Hyperbolic tangent, elementwise."""
    return Tanh.apply(x)


class Sigmoid(Function):
    """y = 1 / (1 + e^-x), computed as (1 + tanh(x/2)) / 2, which never overflows

    dL/dx = g * y * (1 - y)
    """

    @staticmethod
    def forward(ctx, x):
        y = 0.5 * (1 + array_module(x).tanh(0.5 * x))
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad_out):
        (y,) = ctx.saved
        return (grad_out * y * (1 - y),)


def sigmoid(x):
    """The logistic function, elementwise."""
    return Sigmoid.apply(x)


class ReLU(Function):
    """y = max(x, 0)

    dL/dx = g where x > 0, else 0   (0 at x = 0, as PyTorch)
    """

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return array_module(x).maximum(x, 0)

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved
        grad = ctx.writable(grad_out)
        grad *= x > 0
        return (grad,)


def relu(x):
    """The rectifier max(x, 0), elementwise."""
    return ReLU.apply(x)


_GELU_C = math.sqrt(2.0 / math.pi)
_GELU_A = 0.044715


class GELU(Function):
    """y = x Φ(x) in the tanh form of Hendrycks & Gimpel (used by GPT-2 and BERT):

        y = x/2 · (1 + tanh(u)),   u = √(2/π) · (x + 0.044715 x³)

    dL/dx = g · [ (1 + t)/2 + x/2 · (1 - t²) · √(2/π) · (1 + 3·0.044715 x²) ],   t = tanh(u)

    Deviation: PyTorch's default GELU uses the exact erf form; its ``approximate="tanh"`` is this
    one. The two differ by less than 1e-3 (NumPy has no erf, so we keep one form everywhere).
    """

    @staticmethod
    def forward(ctx, x):
        t = array_module(x).tanh(_GELU_C * (x + _GELU_A * x * x * x))
        ctx.save_for_backward(x, t)
        return 0.5 * x * (1 + t)

    @staticmethod
    def backward(ctx, grad_out):
        x, t = ctx.saved
        du_dx = _GELU_C * (1 + 3 * _GELU_A * x * x)
        return (grad_out * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * du_dx),)


def gelu(x):
    """The Gaussian error linear unit (tanh form), elementwise."""
    return GELU.apply(x)
