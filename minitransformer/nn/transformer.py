"""The encoder-decoder Transformer (the paper, section 3.1): layers, stacks and the whole model.

Each sub-layer (attention or feed-forward) is wrapped in a residual connection and layer norm.
Post-LN, the paper's order:   x = LayerNorm(x + Dropout(Sublayer(x)))
Pre-LN (``norm_first=True``): x = x + Dropout(Sublayer(LayerNorm(x)))
Pre-LN trains more stably in deep stacks and without learning-rate warm-up (Xiong et al. 2020);
it needs a final LayerNorm after the last layer, which ``final_norm`` adds.
"""

import math

from minitransformer.functional import as_mask, causal_mask
from minitransformer.nn import init
from minitransformer.nn.attention import KVCache, MultiHeadAttention
from minitransformer.nn.layers import Dropout, Embedding, FeedForward, LayerNorm, Linear
from minitransformer.nn.module import Module, ModuleList, Parameter
from minitransformer.nn.positional import LearnedPositionalEmbedding, SinusoidalPositionalEncoding
from minitransformer.nn.recompute import recompute
from minitransformer.ops.matmul import matmul
from minitransformer.ops.shape import swapaxes
from minitransformer.tensor import zeros

__all__ = [
    "Decoder",
    "DecoderLayer",
    "DecodingCache",
    "Encoder",
    "EncoderLayer",
    "Transformer",
    "positional_module",
]


def _mask(mask):
    return None if mask is None else as_mask(mask)


class EncoderLayer(Module):
    """Self-attention, then the feed-forward network, each with residual and LayerNorm.

    Shapes: x (B, S, d_model) -> (B, S, d_model); mask broadcasts to (B, H, S, S).
    """

    def __init__(self, d_model, n_heads, d_ff, dropout=0.1, activation="relu", norm_first=False):
        super().__init__()
        self.norm_first = norm_first
        self.self_attn = MultiHeadAttention(d_model, n_heads, dropout)
        self.ff = FeedForward(d_model, d_ff, activation, dropout)
        self.norm1 = LayerNorm(d_model)
        self.norm2 = LayerNorm(d_model)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)

    def forward(self, x, mask=None, cache=None):
        """``cache``: a dict {"self": KVCache} when generating step by step (decoder-only)."""
        mask = _mask(mask)
        self_cache = cache["self"] if cache is not None else None
        if self.norm_first:
            h = self.norm1(x)
            x = x + self.dropout1(self.self_attn(h, h, h, mask, self_cache))
            return x + self.dropout2(self.ff(self.norm2(x)))
        x = self.norm1(x + self.dropout1(self.self_attn(x, x, x, mask, self_cache)))
        return self.norm2(x + self.dropout2(self.ff(x)))

    def extra_repr(self):
        return f"norm_first={self.norm_first}"


class DecoderLayer(Module):
    """Masked self-attention, cross-attention over the encoder's output (``memory``), then the
    feed-forward network. ``norm1`` follows self-attention, ``norm2`` cross-attention, ``norm3``
    the feed-forward (PyTorch's order).

    Shapes: x (B, T, d_model), memory (B, S, d_model) -> (B, T, d_model); tgt_mask broadcasts to
    (B, H, T, T), memory_mask to (B, H, T, S).
    """

    def __init__(self, d_model, n_heads, d_ff, dropout=0.1, activation="relu", norm_first=False):
        super().__init__()
        self.norm_first = norm_first
        self.self_attn = MultiHeadAttention(d_model, n_heads, dropout)
        self.cross_attn = MultiHeadAttention(d_model, n_heads, dropout)
        self.ff = FeedForward(d_model, d_ff, activation, dropout)
        self.norm1 = LayerNorm(d_model)
        self.norm2 = LayerNorm(d_model)
        self.norm3 = LayerNorm(d_model)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        self.dropout3 = Dropout(dropout)

    def forward(self, x, memory, tgt_mask=None, memory_mask=None, cache=None):
        """``cache``: a dict {"self": KVCache, "cross": KVCache(static=True)} when decoding
        step by step; x then holds only the new positions."""
        tgt_mask, memory_mask = _mask(tgt_mask), _mask(memory_mask)
        self_cache, cross_cache = (cache["self"], cache["cross"]) if cache else (None, None)
        if self.norm_first:
            h = self.norm1(x)
            x = x + self.dropout1(self.self_attn(h, h, h, tgt_mask, self_cache))
            x = x + self.dropout2(self.cross_attn(self.norm2(x), memory, memory, memory_mask,
                                                  cross_cache))
            return x + self.dropout3(self.ff(self.norm3(x)))
        x = self.norm1(x + self.dropout1(self.self_attn(x, x, x, tgt_mask, self_cache)))
        x = self.norm2(x + self.dropout2(self.cross_attn(x, memory, memory, memory_mask,
                                                         cross_cache)))
        return self.norm3(x + self.dropout3(self.ff(x)))

    def extra_repr(self):
        return f"norm_first={self.norm_first}"


class Encoder(Module):
    """A stack of ``n_layers`` EncoderLayers, with an optional final LayerNorm (``norm``).

    ``recompute=True`` keeps only each layer's input for backward and runs the layer again
    there (``nn.recompute``): less memory, one more forward per layer. Generation with a
    ``cache`` records no graph, so it runs the layers plainly.
    """

    def __init__(self, n_layers, d_model, n_heads, d_ff, dropout=0.1, activation="relu",
                 norm_first=False, final_norm=False, recompute=False):
        super().__init__()
        self.layers = ModuleList(
            EncoderLayer(d_model, n_heads, d_ff, dropout, activation, norm_first)
            for _ in range(n_layers)
        )
        self.norm = LayerNorm(d_model) if final_norm else None
        self.recompute = recompute

    def forward(self, x, mask=None, cache=None):
        mask = _mask(mask)
        for i, layer in enumerate(self.layers):
            if cache is not None:
                x = layer(x, mask, cache.layers[i])
            elif self.recompute:
                x = recompute(layer, x, mask=mask)
            else:
                x = layer(x, mask)
        return self.norm(x) if self.norm is not None else x

    def extra_repr(self):
        return "recompute=True" if self.recompute else ""


class Decoder(Module):
    """A stack of ``n_layers`` DecoderLayers, with an optional final LayerNorm (``norm``).

    ``recompute=True``: as for ``Encoder``; each layer keeps its input and ``memory``.
    """

    def __init__(self, n_layers, d_model, n_heads, d_ff, dropout=0.1, activation="relu",
                 norm_first=False, final_norm=False, recompute=False):
        super().__init__()
        self.layers = ModuleList(
            DecoderLayer(d_model, n_heads, d_ff, dropout, activation, norm_first)
            for _ in range(n_layers)
        )
        self.norm = LayerNorm(d_model) if final_norm else None
        self.recompute = recompute

    def forward(self, x, memory, tgt_mask=None, memory_mask=None, cache=None):
        tgt_mask, memory_mask = _mask(tgt_mask), _mask(memory_mask)
        for i, layer in enumerate(self.layers):
            if cache is not None:
                x = layer(x, memory, tgt_mask, memory_mask, cache.layers[i])
            elif self.recompute:
                x = recompute(layer, x, memory, tgt_mask=tgt_mask, memory_mask=memory_mask)
            else:
                x = layer(x, memory, tgt_mask, memory_mask)
        return self.norm(x) if self.norm is not None else x

    def extra_repr(self):
        return "recompute=True" if self.recompute else ""


class DecodingCache:
    """The key/value caches of every layer of a stack, for generation one token at a time.

    Without it, generating token t recomputes the keys and values of tokens 0..t-1 at every
    layer: O(T²) projections for T tokens. With it, each step projects only its new token.
    """

    def __init__(self, n_layers, cross_attention=True):
        self.layers = [
            {"self": KVCache(), "cross": KVCache(static=True)} if cross_attention
            else {"self": KVCache()}
            for _ in range(n_layers)
        ]

    @property
    def length(self):
        """How many positions the caches hold (the offset of the next token)."""
        return len(self.layers[0]["self"])

    def reorder(self, rows):
        """Keep the batch rows ``rows`` of every cache (beam search)."""
        for layer in self.layers:
            for cache in layer.values():
                cache.reorder(rows)


def positional_module(kind, d_model, max_len):
    """"sinusoidal" (the paper's fixed codes) or "learned" (one trained vector per position)."""
    if kind == "sinusoidal":
        return SinusoidalPositionalEncoding(d_model, max_len)
    if kind == "learned":
        return LearnedPositionalEmbedding(max_len, d_model)
    raise ValueError(f"positional: expected 'sinusoidal' or 'learned', got {kind!r}")


class Transformer(Module):
    """The encoder-decoder model of "Attention Is All You Need", from token ids to logits.

    Shapes: src (B, S) and tgt (B, T) token ids -> logits (B, T, tgt_vocab).
    Masks broadcast to (B, H, T_q, T_k), True = may attend: ``src_mask`` is usually
    ``padding_mask(src, pad_id)``; ``tgt_mask=None`` means causal; ``memory_mask=None`` reuses
    ``src_mask`` (cross-attention must skip the same padded source positions).

    Embeddings are multiplied by √d_model (section 3.4) and initialised N(0, 1/d_model), so the
    scaled embeddings have unit variance like the positional codes; every other matrix is
    initialised Xavier-uniform. ``share_embeddings`` uses one table for source and target (same
    vocabulary); ``tie_output`` computes logits with the target embedding table (section 3.4).

    ``recompute=True`` runs both stacks with activation recomputation (see ``Encoder``).

    Deviation: ``final_norm`` (default: on exactly when ``norm_first``) adds a LayerNorm after
    each stack. PyTorch's ``nn.Transformer`` always has both; the paper's post-LN model has none.
    """

    def __init__(self, src_vocab, tgt_vocab, d_model=512, n_heads=8, n_encoder_layers=6,
                 n_decoder_layers=6, d_ff=2048, dropout=0.1, max_len=512, positional="sinusoidal",
                 norm_first=False, share_embeddings=False, tie_output=False, activation="relu",
                 final_norm=None, recompute=False):
        super().__init__()
        if share_embeddings and src_vocab != tgt_vocab:
            raise ValueError(f"Transformer: share_embeddings needs one vocabulary, got "
                             f"src_vocab={src_vocab} and tgt_vocab={tgt_vocab}")
        final_norm = norm_first if final_norm is None else final_norm
        self.d_model = d_model
        self.src_embed = Embedding(src_vocab, d_model)
        self.tgt_embed = self.src_embed if share_embeddings else Embedding(tgt_vocab, d_model)
        self.src_positional = positional_module(positional, d_model, max_len)
        self.tgt_positional = positional_module(positional, d_model, max_len)
        self.embed_dropout = Dropout(dropout)
        self.encoder = Encoder(n_encoder_layers, d_model, n_heads, d_ff, dropout, activation,
                               norm_first, final_norm, recompute)
        self.decoder = Decoder(n_decoder_layers, d_model, n_heads, d_ff, dropout, activation,
                               norm_first, final_norm, recompute)
        self.tie_output = tie_output
        self.output = None if tie_output else Linear(d_model, tgt_vocab)
        self.output_bias = Parameter(zeros(tgt_vocab)) if tie_output else None
        self._init_weights()

    def _init_weights(self):
        embeddings = {id(self.src_embed.weight), id(self.tgt_embed.weight)}
        for name, parameter in self.named_parameters():
            if id(parameter) in embeddings:
                init.normal(parameter, std=self.d_model**-0.5)
            elif parameter.ndim == 2 and "positional" not in name:  # learned positions keep
                init.xavier_uniform(parameter)  # their N(0, 0.02²)

    def embed(self, ids, embedding, positional, offset=0):
        """Token vectors · √d_model + position codes, then dropout. (B, L) -> (B, L, d_model)."""
        x = embedding(ids) * math.sqrt(self.d_model)
        return self.embed_dropout(positional(x, offset))

    def encode(self, src, src_mask=None):
        """The encoder: src (B, S) -> memory (B, S, d_model)."""
        return self.encoder(self.embed(src, self.src_embed, self.src_positional), src_mask)

    def decode(self, tgt, memory, tgt_mask=None, memory_mask=None, cache=None):
        """The decoder: tgt (B, T) and memory (B, S, d_model) -> hidden states (B, T, d_model).
        ``tgt_mask=None`` means causal. With a ``cache`` (``new_cache()``), tgt holds only the
        new tokens, which follow the ``cache.length`` tokens already decoded."""
        offset = cache.length if cache is not None else 0
        if tgt_mask is None:
            tgt_mask = causal_mask(tgt.shape[1], offset + tgt.shape[1])
        x = self.embed(tgt, self.tgt_embed, self.tgt_positional, offset)
        return self.decoder(x, memory, tgt_mask, memory_mask, cache)

    def new_cache(self):
        """An empty DecodingCache for ``decode`` (one per generation)."""
        return DecodingCache(len(self.decoder.layers))

    def project(self, hidden):
        """Hidden states (B, T, d_model) -> logits (B, T, tgt_vocab)."""
        if self.tie_output:
            return matmul(hidden, swapaxes(self.tgt_embed.weight, 0, 1)) + self.output_bias
        return self.output(hidden)

    def forward(self, src, tgt, src_mask=None, tgt_mask=None, memory_mask=None):
        memory = self.encode(src, src_mask)
        if memory_mask is None:
            memory_mask = src_mask
        return self.project(self.decode(tgt, memory, tgt_mask, memory_mask))
