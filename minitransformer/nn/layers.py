"""The basic layers: Linear, Embedding, LayerNorm, Dropout, and the position-wise FeedForward."""

import math

from minitransformer.nn import init
from minitransformer.nn.module import Module, Parameter
from minitransformer.ops.dropout import dropout
from minitransformer.ops.embedding import embedding
from minitransformer.ops.layer_norm import layer_norm
from minitransformer.ops.linear import linear, linear_activation
from minitransformer.ops.unary import gelu, relu
from minitransformer.tensor import zeros

__all__ = ["GELU", "Dropout", "Embedding", "FeedForward", "LayerNorm", "Linear", "ReLU"]


class Linear(Module):
    """y = x W + b, the paper's XW^Q.

    Shapes: x (..., in_features) -> y (..., out_features); weight (in_features, out_features);
    bias (out_features,).

    Deviation: PyTorch stores a Linear weight as (out_features, in_features) and computes
    x Wᵀ + b; we store (in, out) so the code reads as the paper's equations. Transpose when
    copying weights between the two.

    Initialisation as PyTorch's default: W and b ~ U(-1/√in, 1/√in).
    """

    def __init__(self, in_features, out_features, bias=True):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        bound = 1 / math.sqrt(in_features)
        self.weight = Parameter(init.uniform(zeros(in_features, out_features), -bound, bound))
        self.bias = Parameter(init.uniform(zeros(out_features), -bound, bound)) if bias else None

    def forward(self, x):
        return linear(x, self.weight, self.bias)  # (..., out_features): one fused GEMM

    def extra_repr(self):
        return f"{self.in_features}, {self.out_features}, bias={self.bias is not None}"


class Embedding(Module):
    """A table of ``num_embeddings`` vectors of size ``dim``; ids select rows.

    Shapes: ids (...) integers -> (..., dim); weight (num_embeddings, dim), initialised N(0, 1)
    as PyTorch. The row ``padding_idx`` starts at zero and receives no gradient.
    """

    def __init__(self, num_embeddings, dim, padding_idx=None):
        super().__init__()
        self.num_embeddings, self.dim, self.padding_idx = num_embeddings, dim, padding_idx
        if padding_idx is not None and not 0 <= padding_idx < num_embeddings:
            raise ValueError(f"Embedding: padding_idx {padding_idx} is not a row of a table "
                             f"with {num_embeddings} rows")
        self.weight = Parameter(init.normal(zeros(num_embeddings, dim)))
        if padding_idx is not None:
            self.weight.data[padding_idx] = 0

    def forward(self, ids):
        return embedding(ids, self.weight, padding_idx=self.padding_idx)

    def extra_repr(self):
        padding = f", padding_idx={self.padding_idx}" if self.padding_idx is not None else ""
        return f"{self.num_embeddings}, {self.dim}{padding}"


class LayerNorm(Module):
    """Layer normalization over the last axis with a learned scale (ones) and shift (zeros).

    Shapes: x (..., dim) -> (..., dim).
    """

    def __init__(self, dim, eps=1e-5):
        super().__init__()
        self.dim, self.eps = dim, eps
        self.weight = Parameter(init.ones(zeros(dim)))
        self.bias = Parameter(zeros(dim))

    def forward(self, x):
        return layer_norm(x, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return f"{self.dim}, eps={self.eps}"


class Dropout(Module):
    """Zeroes each element with probability p while training; the identity in ``eval()``."""

    def __init__(self, p=0.1):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: p is a probability in [0, 1], got {p}")
        self.p = p

    def forward(self, x):
        return dropout(x, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}"


class ReLU(Module):
    """max(x, 0) elementwise, as a module (for Sequential)."""

    def forward(self, x):
        return relu(x)


class GELU(Module):
    """The Gaussian error linear unit (tanh form), as a module (for Sequential)."""

    def forward(self, x):
        return gelu(x)


ACTIVATIONS = {"relu": relu, "gelu": gelu}


class FeedForward(Module):
    """The position-wise feed-forward network: FFN(x) = act(x W1 + b1) W2 + b2.

    Shapes: x (..., d_model) -> (..., d_model); the hidden layer has d_ff units (the paper:
    d_model = 512, d_ff = 2048). Dropout acts on the hidden activations, as PyTorch's
    Transformer layers.
    """

    def __init__(self, d_model, d_ff, activation="relu", dropout=0.0):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"FeedForward: activation {activation!r} is not one of "
                             f"{sorted(ACTIVATIONS)}")
        self.activation = activation
        self.linear1 = Linear(d_model, d_ff)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(d_ff, d_model)

    def forward(self, x):
        # act(x W1 + b1): for relu one op that keeps no pre-activation array
        hidden = linear_activation(x, self.linear1.weight, self.linear1.bias, self.activation)
        return self.linear2(self.dropout(hidden))  # (..., d_model), hidden is (..., d_ff)

    def extra_repr(self):
        return f"activation={self.activation!r}"
