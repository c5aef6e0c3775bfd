"""Stateless functions for building networks (``import minitransformer.functional as F``).

The fused ops live in ``minitransformer.ops``; this module gathers the ones a model calls, under the
names PyTorch users know, and adds the heart of the Transformer: masks and scaled dot-product
attention.

Masks are boolean and broadcast to the scores (B, H, T, S): **True = may attend**.

Deviation: PyTorch's boolean ``attn_mask`` and ``key_padding_mask`` mean the opposite (True =
masked out). Ours follows the paper's picture: a mask says what each query can see.
"""

import math

from minitransformer import backend
from minitransformer.errors import DTypeError, ShapeError
from minitransformer.ops.broadcast import broadcasts_onto
from minitransformer.ops.cross_entropy import cross_entropy
from minitransformer.ops.dropout import dropout
from minitransformer.ops.embedding import embedding
from minitransformer.ops.layer_norm import layer_norm
from minitransformer.ops.matmul import matmul
from minitransformer.ops.shape import swapaxes
from minitransformer.ops.softmax import ScaledMaskedSoftmax, log_softmax, softmax
from minitransformer.ops.unary import gelu, relu, sigmoid, tanh
from minitransformer.tensor import Tensor

__all__ = [
    "as_mask",
    "causal_mask",
    "cross_entropy",
    "dropout",
    "embedding",
    "gelu",
    "layer_norm",
    "log_softmax",
    "padding_mask",
    "relu",
    "scaled_dot_product_attention",
    "sigmoid",
    "softmax",
    "tanh",
]


def causal_mask(size, key_size=None):
    """The decoder's mask: query i may attend to keys 0..i, never to the future.

    Shapes: -> (T, S) bool, T = ``size``, S = ``key_size`` (default T). With S > T the queries
    are the last T of S positions (decoding with a key/value cache): query i sees keys up to
    i + S - T.

    >>> causal_mask(3).numpy().astype(int)
    array([[1, 0, 0],
           [1, 1, 0],
           [1, 1, 1]])
    """
    key_size = size if key_size is None else key_size
    if size > key_size:
        raise ShapeError(f"causal_mask: {size} queries cannot be the last of {key_size} keys")
    xp = backend.current_module()
    return Tensor._from_array(xp.tril(xp.ones((size, key_size), dtype=bool), k=key_size - size))


def padding_mask(ids, pad_id):
    """Keys that are real tokens, not padding: True where ``ids != pad_id``.

    Shapes: ids (B, S) -> (B, 1, 1, S) bool, ready to broadcast over heads and queries.
    Combine with a causal mask by ``&``: ``causal_mask(T) & padding_mask(tgt, pad_id)``.
    """
    ids = ids.data if isinstance(ids, Tensor) else backend.asarray(ids)
    if ids.ndim != 2:
        raise ShapeError(f"padding_mask: ids must be (B, S), got shape {tuple(ids.shape)}")
    return Tensor._from_array((ids != pad_id)[:, None, None, :])


def as_mask(mask, function="as_mask"):
    """A mask given as a bool Tensor or a bool backend array, as a bool Tensor."""
    if not isinstance(mask, Tensor):
        mask = Tensor._from_array(backend.asarray(mask, copy=False))
    if mask.dtype.kind != "b":
        raise DTypeError(f"{function}: a mask must be bool (True = may attend), got {mask.dtype}")
    return mask


def scaled_dot_product_attention(q, k, v, mask=None, dropout_p=0.0, training=False):
    """Attention(Q, K, V) = softmax(Q Kᵀ / √d_k) V, one step at a time.

    Shapes: q (..., T, d_k), k (..., S, d_k), v (..., S, d_v) -> output (..., T, d_v) and
    weights (..., T, S); usually ... = (B, H). ``mask`` broadcasts to (..., T, S), True = may
    attend. A query whose keys are all masked gets zero weights and a zero output, never NaN.
    The weights are returned before dropout (the distribution the model computed).
    """
    if q.shape[-1] != k.shape[-1] or k.shape[-2] != v.shape[-2]:
        raise ShapeError(f"scaled_dot_product_attention: q {q.shape}, k {k.shape} and v "
                         f"{v.shape} do not fit: q and k need the same d_k, k and v the same S")
    d_k = q.shape[-1]
    scores = matmul(q, swapaxes(k, -1, -2))  # (..., T, S): every query against every key
    if mask is not None:
        mask = as_mask(mask, "scaled_dot_product_attention")
        if not broadcasts_onto(mask.shape, scores.shape):
            raise ShapeError(f"scaled_dot_product_attention: mask {mask.shape} does not "
                             f"broadcast to the scores {scores.shape} (..., T, S)")
    # softmax(scores / √d_k), a masked key set to -inf first (e^-inf = 0 weight), in one op:
    # the 1/√d_k keeps the logits' variance near 1. The scores are this function's own
    # intermediate, so the weights overwrite them (no second (..., T, S) array). The mask is
    # checked above, so the Function is applied directly.
    weights = ScaledMaskedSoftmax.apply(scores, mask, scale=1.0 / math.sqrt(d_k), in_place=True)
    output = matmul(dropout(weights, dropout_p, training), v)  # (..., T, d_v)
    return output, weights
