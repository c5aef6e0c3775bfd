"""Stateless functions for building networks (``import minitransformer.functional as F``).

The fused ops live in ``minitransformer.ops``; this module gathers the ones a model calls, under the
names PyTorch users know.
"""

from minitransformer.ops.cross_entropy import cross_entropy
from minitransformer.ops.dropout import dropout
from minitransformer.ops.embedding import embedding
from minitransformer.ops.layer_norm import layer_norm
from minitransformer.ops.softmax import log_softmax, softmax
from minitransformer.ops.unary import gelu, relu, sigmoid, tanh

__all__ = [
    "cross_entropy",
    "dropout",
    "embedding",
    "gelu",
    "layer_norm",
    "log_softmax",
    "relu",
    "sigmoid",
    "softmax",
    "tanh",
]
