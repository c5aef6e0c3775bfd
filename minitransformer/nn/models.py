"""Models for pretraining and fine-tuning, built from the Transformer's parts.

- ``TextEncoder``: token ids -> one vector per token (embeddings, positions, an encoder stack).
  The backbone masked-LM pretraining trains and a classifier fine-tunes.
- ``MaskedLanguageModel``: a TextEncoder with a head predicting the hidden tokens (BERT).
- ``SequenceClassifier``: a TextEncoder, a pooling (the first token, or the mean over real
  tokens) and a linear classifier (sentiment, topics).
- ``CausalLanguageModel``: decoder-only, each position predicting the next token (GPT); the
  layers are self-attention blocks under a causal mask.

Defaults follow the pretraining literature rather than the 2017 paper: pre-LN layers, GELU,
learned positions, N(0, 0.02²) embeddings, output logits tied to the input embeddings.
"""

from minitransformer import backend
from minitransformer.functional import as_mask, causal_mask, padding_mask
from minitransformer.nn import init
from minitransformer.nn.layers import Dropout, Embedding, LayerNorm, Linear
from minitransformer.nn.module import Module, Parameter
from minitransformer.nn.transformer import DecodingCache, Encoder, positional_module
from minitransformer.ops.matmul import matmul
from minitransformer.ops.reduction import sum as reduce_sum
from minitransformer.ops.shape import swapaxes
from minitransformer.ops.unary import gelu
from minitransformer.tensor import Tensor, zeros

__all__ = ["CausalLanguageModel", "MaskedLanguageModel", "SequenceClassifier", "TextEncoder"]

POOLINGS = ("cls", "mean")


class TextEncoder(Module):
    """Token ids -> contextual vectors.

    Shapes: ids (B, T) -> (B, T, d_model). Positions holding ``pad_id`` are masked out as keys
    (and their embedding row stays zero); ``causal=True`` also hides later positions.
    """

    def __init__(self, vocab_size, d_model=128, n_heads=4, n_layers=2, d_ff=512, dropout=0.1,
                 max_len=512, positional="learned", norm_first=True, activation="gelu",
                 pad_id=0):
        super().__init__()
        self.vocab_size, self.d_model, self.pad_id = vocab_size, d_model, pad_id
        self.embed = Embedding(vocab_size, d_model, padding_idx=pad_id)
        init.normal(self.embed.weight, std=0.02)
        if pad_id is not None:
            self.embed.weight.data[pad_id] = 0
        self.positional = positional_module(positional, d_model, max_len)
        self.embed_dropout = Dropout(dropout)
        self.encoder = Encoder(n_layers, d_model, n_heads, d_ff, dropout, activation, norm_first,
                               final_norm=norm_first)
        for parameter in self.encoder.parameters():
            if parameter.ndim == 2:
                init.xavier_uniform(parameter)

    def attention_mask(self, ids, causal=False):
        """True where a query may attend a key: real tokens, and (causal) not the future.
        (B, T) ids -> mask broadcasting to (B, H, T, T), or None when nothing is hidden."""
        mask = padding_mask(ids, self.pad_id) if self.pad_id is not None else None
        if causal:
            future = causal_mask(ids.shape[1])
            mask = future if mask is None else mask & future
        return mask

    def forward(self, ids, mask=None, causal=False, cache=None):
        """``cache`` (from ``new_cache()``, causal generation): ids hold only the new tokens,
        following the ``cache.length`` tokens already seen; padding is not masked then."""
        offset = cache.length if cache is not None else 0
        if mask is None and cache is not None:
            mask = causal_mask(ids.shape[1], offset + ids.shape[1])
        elif mask is None:
            mask = self.attention_mask(ids, causal)
        else:
            mask = as_mask(mask)
        x = self.embed_dropout(self.positional(self.embed(ids), offset))  # (B, T, d_model)
        return self.encoder(x, mask, cache)

    def new_cache(self):
        """An empty DecodingCache for step-by-step causal generation."""
        return DecodingCache(len(self.encoder.layers), cross_attention=False)


class _TiedOutput(Module):
    """Logits from hidden states with the embedding table as the output matrix:
    logits = h Eᵀ + b (the paper's weight tying, section 3.4), or a Linear when not tied."""

    def __init__(self, embedding, tie_weights):
        super().__init__()
        vocab_size, d_model = embedding.weight.shape
        # Not registered as a sub-module: the table belongs to (and is saved with) the encoder.
        object.__setattr__(self, "_embedding", embedding if tie_weights else None)
        self.linear = None if tie_weights else Linear(d_model, vocab_size)
        self.bias = Parameter(zeros(vocab_size)) if tie_weights else None

    def forward(self, hidden):
        if self.linear is not None:
            return self.linear(hidden)
        return matmul(hidden, swapaxes(self._embedding.weight, 0, 1)) + self.bias  # (B, T, V)

    def extra_repr(self):
        return "tied to the input embeddings" if self.linear is None else ""


class MaskedLanguageModel(Module):
    """A TextEncoder and the masked-LM head of BERT: Linear, GELU, LayerNorm, then logits over
    the vocabulary for every position (the loss reads the masked ones).

    Shapes: ids (B, T) -> logits (B, T, vocab_size).
    """

    def __init__(self, encoder, tie_weights=True):
        super().__init__()
        self.encoder = encoder
        self.dense = Linear(encoder.d_model, encoder.d_model)
        self.norm = LayerNorm(encoder.d_model)
        self.output = _TiedOutput(encoder.embed, tie_weights)

    def forward(self, ids, mask=None, positions=None):
        """Logits (B, T, V); with ``positions`` (bool (B, T), e.g. the masked tokens) only the
        logits at those positions, (N, V): the vocabulary projection is the costly part, and
        the loss reads only the masked positions anyway (as BERT)."""
        hidden = self.encoder(ids, mask)  # (B, T, d_model)
        if positions is not None:
            positions = positions.data if isinstance(positions, Tensor) else positions
            hidden = hidden[positions]  # (N, d_model)
        return self.output(self.norm(gelu(self.dense(hidden))))  # (B, T, V) or (N, V)


class SequenceClassifier(Module):
    """A TextEncoder, a pooling into one vector per sequence, dropout and a linear layer.

    ``pooling="cls"`` takes the first position's vector (put a <cls> token there); ``"mean"``
    averages the vectors of the real (non-padding) tokens.

    Shapes: ids (B, T) -> logits (B, n_classes).
    """

    def __init__(self, encoder, n_classes, pooling="cls", dropout=0.1):
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"SequenceClassifier: pooling {pooling!r} is not one of {POOLINGS}")
        self.pooling = pooling
        self.encoder = encoder
        self.dropout = Dropout(dropout)
        self.classifier = Linear(encoder.d_model, n_classes)

    def pool(self, hidden, ids):
        """(B, T, d_model) -> (B, d_model)."""
        if self.pooling == "cls":
            return hidden[:, 0]
        pad_id = self.encoder.pad_id
        ids = ids.data if isinstance(ids, Tensor) else backend.asarray(ids)
        xp = backend.array_module(ids)
        real = xp.ones(ids.shape, dtype=hidden.dtype) if pad_id is None else \
            (ids != pad_id).astype(hidden.dtype)  # (B, T): 1 at real tokens
        count = real.sum(axis=1, keepdims=True).clip(1, None)  # (B, 1), never 0
        summed = reduce_sum(hidden * Tensor._from_array(real[:, :, None]), axis=1)  # (B, D)
        return summed / Tensor._from_array(count)  # (B, d_model)

    def forward(self, ids, mask=None):
        hidden = self.encoder(ids, mask)  # (B, T, d_model)
        return self.classifier(self.dropout(self.pool(hidden, ids)))  # (B, n_classes)

    def extra_repr(self):
        return f"pooling={self.pooling!r}"


class CausalLanguageModel(Module):
    """Decoder-only language model: a causal TextEncoder and logits tied to its embeddings.

    Shapes: ids (B, T) -> logits (B, T, vocab_size); position t sees tokens 0..t only.
    """

    def __init__(self, vocab_size, d_model=128, n_heads=4, n_layers=2, d_ff=512, dropout=0.1,
                 max_len=512, positional="learned", norm_first=True, activation="gelu",
                 pad_id=None, tie_weights=True):
        super().__init__()
        self.backbone = TextEncoder(vocab_size, d_model, n_heads, n_layers, d_ff, dropout,
                                    max_len, positional, norm_first, activation, pad_id)
        self.output = _TiedOutput(self.backbone.embed, tie_weights)

    def forward(self, ids, cache=None):
        return self.output(self.backbone(ids, causal=True, cache=cache))  # (B, T, V)

    def new_cache(self):
        """An empty DecodingCache: pass it to every step of a generation."""
        return self.backbone.new_cache()
