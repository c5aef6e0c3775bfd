"""minitransformer: a Transformer framework built from scratch on NumPy (CPU) and CuPy (GPU).

    import minitransformer as mt

    x = mt.randn(3, 4, requires_grad=True)
    loss = (x @ x.T).softmax(axis=-1).sum()
    loss.backward()                          # x.grad now holds dloss/dx
    mt.gradcheck(lambda t: (t @ t.T).softmax(axis=-1), x.double())   # True: backward is right
"""

# Imports run one way, tensor <- autograd <- ops <- tensor_methods; the last gives every Tensor
# its operators and op methods (x + y, x.exp(), x.backward()) from one table.
from minitransformer import tensor_methods  # noqa: F401

# isort: split
from minitransformer import (
    bugs,
    checkpoint,
    data,
    decoding,
    explain,
    functional,
    metrics,
    nn,
    optim,
    train,
    viz,
)
from minitransformer.autograd import Function, no_grad
from minitransformer.backend import (
    available_backends,
    get_backend,
    get_default_dtype,
    manual_seed,
    set_backend,
    set_default_dtype,
    use_backend,
)
from minitransformer.errors import (
    BackendUnavailableError,
    DeviceMismatchError,
    DTypeError,
    GradcheckError,
    GraphFreedError,
    ShapeError,
)
from minitransformer.gradcheck import gradcheck, gradcheck_module
from minitransformer.ops.broadcast import broadcast_to
from minitransformer.ops.elementwise import (
    abs,
    add,
    clip,
    div,
    masked_fill,
    maximum,
    minimum,
    mul,
    neg,
    pow,
    sub,
    where,
)
from minitransformer.ops.matmul import matmul
from minitransformer.ops.reduction import logsumexp, max, mean, min, std, sum, var
from minitransformer.ops.shape import (
    concat,
    getitem,
    pad,
    permute,
    reshape,
    split,
    squeeze,
    stack,
    swapaxes,
    transpose,
    unsqueeze,
)
from minitransformer.ops.softmax import log_softmax, softmax
from minitransformer.ops.unary import exp, gelu, log, relu, sigmoid, sqrt, tanh
from minitransformer.tensor import (
    Tensor,
    arange,
    full,
    ones,
    ones_like,
    rand,
    randn,
    tensor,
    zeros,
    zeros_like,
)

__version__ = "0.1.0"

__all__ = [
    "abs", "add", "arange", "available_backends", "BackendUnavailableError", "broadcast_to", "bugs",
    "checkpoint", "clip", "concat", "data", "decoding", "DeviceMismatchError", "div", "DTypeError",
    "exp", "explain", "full", "Function", "functional", "gelu", "get_backend", "get_default_dtype",
    "getitem", "gradcheck", "gradcheck_module", "GradcheckError", "GraphFreedError", "log",
    "log_softmax", "logsumexp", "manual_seed", "masked_fill", "matmul", "max", "maximum", "mean",
    "metrics", "min", "minimum", "mul", "neg", "nn", "no_grad", "ones", "ones_like", "optim",
    "pad", "permute", "pow", "rand", "randn", "relu", "reshape", "set_backend",
    "set_default_dtype", "ShapeError", "sigmoid", "softmax", "split", "sqrt", "squeeze", "stack",
    "std", "sub", "sum", "swapaxes", "tanh", "Tensor", "tensor", "train", "transpose", "unsqueeze",
    "use_backend", "var", "viz", "where", "zeros", "zeros_like",
]
