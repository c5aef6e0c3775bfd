"""Multi-head attention (the paper, section 3.2.2):

    MultiHead(Q, K, V) = Concat(head_1, ..., head_h) W^O,
    head_i = Attention(Q W_i^Q, K W_i^K, V W_i^V)

The h projections W_i^Q (d_model × d_k) sit side by side in one d_model × d_model matrix ``w_q``:
one matmul projects for every head, and a reshape splits the result into heads.
"""

from minitransformer.errors import ShapeError
from minitransformer.functional import scaled_dot_product_attention
from minitransformer.nn.layers import Linear
from minitransformer.nn.module import Module
from minitransformer.ops.shape import concat, reshape, swapaxes

__all__ = ["KVCache", "MultiHeadAttention"]


class KVCache:
    """The projected keys and values (B, H, L, d_k) of one attention layer, kept across decoding
    steps so each step projects only its new token.

    ``static=True`` is for cross-attention: the encoder's output never changes, so it is
    projected at the first step and reused. Otherwise (self-attention) each step appends.
    """

    def __init__(self, static=False):
        self.static = static
        self.keys = self.values = None

    def __len__(self):
        return 0 if self.keys is None else self.keys.shape[2]

    def update(self, keys, values):
        """Store (static) or append (growing) this step's keys and values; return them all."""
        if self.keys is not None and not self.static:
            keys = concat([self.keys, keys], axis=2)  # (B, H, L + T, d_k)
            values = concat([self.values, values], axis=2)
        self.keys, self.values = keys, values
        return keys, values

    def reorder(self, rows):
        """Keep the batch rows ``rows`` (in that order): beam search follows surviving beams."""
        if self.keys is not None:
            self.keys, self.values = self.keys[rows], self.values[rows]


class MultiHeadAttention(Module):
    """h attention heads of size d_k = d_model / h, in parallel, then the output projection W^O.

    Shapes: query (B, T, d_model), key and value (B, S, d_model) -> (B, T, d_model).
    ``mask`` broadcasts to (B, H, T, S), True = may attend. Self-attention passes the same tensor
    three times; cross-attention passes the decoder state as query and the encoder output as key
    and value.

    After each call ``attention_weights`` holds the weights (B, H, T, S), outside the graph, for
    plots and step-through.
    """

    def __init__(self, d_model, n_heads, dropout=0.0, bias=True):
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"MultiHeadAttention: d_model={d_model} is not divisible by "
                             f"n_heads={n_heads}; each head gets d_model / n_heads dimensions")
        self.d_model, self.n_heads, self.d_k = d_model, n_heads, d_model // n_heads
        self.dropout = dropout
        self.w_q = Linear(d_model, d_model, bias)
        self.w_k = Linear(d_model, d_model, bias)
        self.w_v = Linear(d_model, d_model, bias)
        self.w_o = Linear(d_model, d_model, bias)
        self.attention_weights = None

    def split_heads(self, x):
        """(B, L, d_model) -> (B, H, L, d_k): head i takes features i·d_k to (i+1)·d_k - 1."""
        batch, length, _ = x.shape
        x = reshape(x, batch, length, self.n_heads, self.d_k)  # (B, L, H, d_k)
        return swapaxes(x, 1, 2)  # (B, H, L, d_k)

    def merge_heads(self, x):
        """(B, H, L, d_k) -> (B, L, d_model): the paper's Concat(head_1, ..., head_h)."""
        batch, _, length, _ = x.shape
        x = swapaxes(x, 1, 2)  # (B, L, H, d_k)
        return reshape(x, batch, length, self.d_model)  # (B, L, d_model)

    def _check(self, name, x):
        if x.ndim != 3 or x.shape[-1] != self.d_model:
            raise ShapeError(f"MultiHeadAttention: {name} must be (B, L, d_model={self.d_model}),"
                             f" got shape {x.shape}")

    def forward(self, query, key, value, mask=None, cache=None):
        """``cache`` (a KVCache) serves step-by-step decoding: a growing cache keeps the keys and
        values of earlier positions and appends the new ones; a static cache projects the
        encoder's output once and reuses it at every step."""
        self._check("query", query)
        q = self.split_heads(self.w_q(query))  # (B, H, T, d_k)
        if cache is not None and cache.static and cache.keys is not None:
            return self.attend(q, cache.keys, cache.values, mask)
        for name, x in (("key", key), ("value", value)):
            self._check(name, x)
        k = self.split_heads(self.w_k(key))  # (B, H, S, d_k)
        v = self.split_heads(self.w_v(value))  # (B, H, S, d_k)
        if cache is not None:
            k, v = cache.update(k, v)  # (B, H, S_cached + S, d_k)
        return self.attend(q, k, v, mask)

    def attend(self, q, k, v, mask=None):
        """Attention over already projected heads, then W^O: what ``forward`` does after the
        projections (a key/value cache calls it with cached k and v)."""
        heads, weights = scaled_dot_product_attention(q, k, v, mask, self.dropout, self.training)
        self.attention_weights = weights.detach()  # (B, H, T, S)
        return self.w_o(self.merge_heads(heads))  # (B, T, d_model)

    def extra_repr(self):
        return f"d_model={self.d_model}, n_heads={self.n_heads}, dropout={self.dropout}"
