"""Models for pretraining and fine-tuning, built from the Transformer's parts.

- ``TextEncoder``: token ids -> one vector per token (embeddings, positions, an encoder stack).
  The backbone masked-LM pretraining trains and a classifier fine-tunes.
- ``MaskedLanguageModel``: a TextEncoder with a head predicting the hidden tokens (BERT).
- ``SequenceClassifier``: a TextEncoder, a pooling (the first token, or the mean over real
  tokens) and a linear classifier (sentiment, topics).
- ``CausalLanguageModel``: decoder-only, each position predicting the next token (GPT); the
  layers are self-attention blocks under a causal mask.
- ``ReplacedTokenDetection``: ELECTRA's pair: a small masked-LM generator fills the masked
  positions with its samples, and a TextEncoder (the discriminator) tells for every token
  whether it is the original or a replacement.

Defaults follow the pretraining literature rather than the 2017 paper: pre-LN layers, GELU,
learned positions, N(0, 0.02²) embeddings, output logits tied to the input embeddings.
"""

import math
from typing import NamedTuple

from minitransformer import backend
from minitransformer.data.batches import IGNORE_INDEX
from minitransformer.data.tokenizer import N_SPECIAL
from minitransformer.errors import ShapeError
from minitransformer.functional import as_mask, causal_mask, padding_mask
from minitransformer.nn import init
from minitransformer.nn.layers import Dropout, Embedding, LayerNorm, Linear
from minitransformer.nn.module import Module, Parameter
from minitransformer.nn.transformer import DecodingCache, Encoder, positional_module
from minitransformer.ops.cross_entropy import cross_entropy
from minitransformer.ops.matmul import matmul
from minitransformer.ops.reduction import sum as reduce_sum
from minitransformer.ops.shape import swapaxes
from minitransformer.ops.unary import gelu
from minitransformer.tensor import Tensor, zeros

__all__ = [
    "CausalLanguageModel",
    "MaskedLanguageModel",
    "ReplacedTokenDetection",
    "RTDOutput",
    "SequenceClassifier",
    "TextEncoder",
]

POOLINGS = ("cls", "mean", "last")


class TextEncoder(Module):
    """Token ids -> contextual vectors.

    Shapes: ids (B, T) -> (B, T, d_model). Positions holding ``pad_id`` are masked out as keys
    (and their embedding row stays zero); ``causal=True`` also hides later positions.

    The token vector and the position code are added, so their sizes must match, or one drowns
    the other. Learned positions (BERT, GPT): both tables start N(0, 0.02²). Sinusoidal codes
    have unit amplitude, so with them the embeddings start N(0, 1/d_model) and are multiplied by
    √d_model (the paper, section 3.4): unit variance, like the codes. (Unscaled 0.02-vectors
    under unit codes are 2% of their size, 0.08% of the input variance: the layer norms then see
    mostly position, and a masked LM cannot learn which words surround a gap.)

    ``recompute=True``: the encoder layers keep only their inputs for backward and run again
    there (``nn.recompute``), trading one more forward per layer for their activations' memory.
    """

    def __init__(self, vocab_size, d_model=64, n_heads=4, n_layers=2, d_ff=256, dropout=0.1,
                 max_len=128, positional="learned", norm_first=True, activation="gelu",
                 recompute=False, pad_id=0):  # defaults: nn.ModelSettings' (a test keeps them)
        super().__init__()
        self.vocab_size, self.d_model, self.pad_id = vocab_size, d_model, pad_id
        self.embed = Embedding(vocab_size, d_model, padding_idx=pad_id)
        self.embed_scale = math.sqrt(d_model) if positional == "sinusoidal" else 1.0
        init.normal(self.embed.weight, std=0.02 if self.embed_scale == 1.0 else d_model**-0.5)
        if pad_id is not None:
            self.embed.weight.data[pad_id] = 0
        self.positional = positional_module(positional, d_model, max_len)
        self.embed_dropout = Dropout(dropout)
        self.encoder = Encoder(n_layers, d_model, n_heads, d_ff, dropout, activation, norm_first,
                               final_norm=norm_first, recompute=recompute)
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
            if causal:  # a padding mask given, and the future hidden as well
                mask = mask & causal_mask(ids.shape[1])
        x = self.embed(ids)  # (B, T, d_model)
        if self.embed_scale != 1.0:
            x = x * self.embed_scale
        x = self.embed_dropout(self.positional(x, offset))
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
    averages the vectors of the real (non-padding) tokens; ``"last"`` takes the last real
    token's vector (the one that has read the whole text when the encoder is ``causal``: a
    classifier fine-tuned from a causal language model, as GPT and ULMFiT do).

    Shapes: ids (B, T) -> logits (B, n_classes).
    """

    def __init__(self, encoder, n_classes, pooling="cls", dropout=0.1, causal=False):
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"SequenceClassifier: pooling {pooling!r} is not one of {POOLINGS}")
        if causal and pooling == "cls":
            raise ValueError("SequenceClassifier: a causal encoder's first token sees only "
                             "itself; use pooling 'mean' or 'last'")
        self.pooling, self.causal = pooling, bool(causal)
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
        if self.pooling == "last":
            last = count[:, 0].astype("int64") - 1  # (B,): padding comes after the text
            return hidden[xp.arange(ids.shape[0]), last]  # (B, d_model)
        summed = reduce_sum(hidden * Tensor._from_array(real[:, :, None]), axis=1)  # (B, D)
        return summed / Tensor._from_array(count)  # (B, d_model)

    def forward(self, ids, mask=None):
        hidden = self.encoder(ids, mask, causal=self.causal)  # (B, T, d_model)
        return self.classifier(self.dropout(self.pool(hidden, ids)))  # (B, n_classes)

    def extra_repr(self):
        return f"pooling={self.pooling!r}" + (", causal=True" if self.causal else "")


class CausalLanguageModel(Module):
    """Decoder-only language model: a causal TextEncoder and logits tied to its embeddings.

    Shapes: ids (B, T) -> logits (B, T, vocab_size); position t sees tokens 0..t only.
    ``recompute=True``: activation recomputation in the encoder layers (see TextEncoder).
    """

    def __init__(self, vocab_size, d_model=64, n_heads=4, n_layers=2, d_ff=256, dropout=0.1,
                 max_len=128, positional="learned", norm_first=True, activation="gelu",
                 recompute=False, pad_id=None, tie_weights=True):  # defaults: nn.ModelSettings
        super().__init__()
        self.encoder = TextEncoder(vocab_size, d_model, n_heads, n_layers, d_ff, dropout,
                                   max_len, positional, norm_first, activation, recompute,
                                   pad_id=pad_id)
        self.output = _TiedOutput(self.encoder.embed, tie_weights)

    def forward(self, ids, cache=None):
        return self.output(self.encoder(ids, causal=True, cache=cache))  # (B, T, V)

    def new_cache(self):
        """An empty DecodingCache: pass it to every step of a generation."""
        return self.encoder.new_cache()

    @staticmethod
    def upgrade_state(state):
        """``state`` with the names of checkpoints written when the text encoder of this model
        was called ``backbone``: their ``backbone.*`` entries become ``encoder.*``."""
        return {("encoder." + key[len("backbone."):] if key.startswith("backbone.") else key):
                value for key, value in state.items()}

    def load_state_dict(self, state, strict=True):
        """``Module.load_state_dict``, reading older checkpoints too (``upgrade_state``)."""
        return super().load_state_dict(self.upgrade_state(state), strict)


class RTDOutput(NamedTuple):
    """What ``ReplacedTokenDetection`` returns: ``loss`` = generator_loss + weight ×
    detector_loss (scalars), the corrupted ids (B, T) the detector read, ``replaced`` (B, T) bool,
    the detector's logits (B, T, 2) and ``real`` (B, T) bool: the tokens that count (not padding).
    """

    loss: Tensor
    generator_loss: Tensor
    detector_loss: Tensor
    corrupted: object
    replaced: object
    detector_logits: Tensor
    real: object


class ReplacedTokenDetection(Module):
    """Replaced-token detection (ELECTRA, Clark et al. 2020): pretraining that learns from every
    token, not only the 15% that are masked.

    1. A small masked-LM *generator* sees the text with some tokens replaced by <mask> and
       predicts them: the masked-LM loss L_gen (cross-entropy at the masked positions).
    2. Each masked position is filled with a token *sampled* from the generator's softmax
       (Gumbel-max: argmax(logits + g), g = -log(-log u), u ~ U(0, 1)); a sample equal to the
       original counts as original.
    3. The *discriminator* (``encoder``, the TextEncoder that fine-tuning keeps) reads the
       corrupted text and classifies every real token as original (0) or replaced (1):
       L_det = mean over real tokens of -log p(label). The sampling is not differentiated: no
       gradient flows from L_det into the generator.

        loss = L_gen + weight · L_det                      (ELECTRA: weight = 50)

    The generator shares the discriminator's token embeddings and position codes, and is
    smaller (fewer layers): a generator as strong as the discriminator makes the task too hard.

    Shapes: ids (B, T) with <mask> at the chosen positions; labels (B, T): the original id there,
    IGNORE_INDEX elsewhere; mask broadcasts to (B, 1, 1, T). Returns an RTDOutput.

    Deviation: the detector head gives two logits (original, replaced) under softmax
    cross-entropy, where ELECTRA gives one under a sigmoid: the same model, as only the
    difference of the two logits matters (softmax of (0, z) is (1 - σ(z), σ(z))).
    """

    def __init__(self, encoder, generator_encoder, weight=50.0):
        super().__init__()
        if generator_encoder.d_model != encoder.d_model or \
                generator_encoder.vocab_size != encoder.vocab_size:
            raise ShapeError(
                f"ReplacedTokenDetection: the generator (d_model={generator_encoder.d_model}, "
                f"vocab_size={generator_encoder.vocab_size}) must match the discriminator "
                f"(d_model={encoder.d_model}, vocab_size={encoder.vocab_size}): they share "
                "their embeddings")
        if weight <= 0:
            raise ValueError(f"ReplacedTokenDetection: weight must be > 0, got {weight}")
        self.weight = float(weight)
        self.encoder = encoder
        generator_encoder.embed = encoder.embed  # shared: one table, saved under encoder.
        generator_encoder.positional = encoder.positional
        self.generator = MaskedLanguageModel(generator_encoder)
        self.dense = Linear(encoder.d_model, encoder.d_model)
        self.detector = Linear(encoder.d_model, 2)

    def sample(self, logits):
        """Gumbel-max samples of (N, V) logits -> (N,) ids, never a special token; drawn from the
        shared generator, so a seed repeats them."""
        xp = backend.array_module(logits.data)
        scores = logits.data.astype("float64")  # a copy: the logits stay as they are
        scores[:, :N_SPECIAL] = -xp.inf
        uniform = backend.generator(xp).random(scores.shape)
        gumbel = -xp.log(-xp.log(xp.clip(uniform, 1e-12, 1.0 - 1e-12)))
        return xp.argmax(scores + gumbel, axis=-1)  # (N,)

    def forward(self, ids, labels, mask=None):
        ids_data = ids.data if isinstance(ids, Tensor) else backend.asarray(ids)
        labels_data = labels.data if isinstance(labels, Tensor) else backend.asarray(labels)
        if labels_data.shape != ids_data.shape:
            raise ShapeError(f"ReplacedTokenDetection: labels {labels_data.shape} must have the "
                             f"shape of ids {ids_data.shape}")
        xp = backend.array_module(ids_data)
        chosen = labels_data != IGNORE_INDEX  # (B, T): the masked positions
        targets = labels_data[chosen]  # (N,)
        generator_logits = self.generator(ids, mask, positions=chosen)  # (N, V)
        generator_loss = cross_entropy(generator_logits, Tensor._from_array(targets))
        corrupted = ids_data.copy()
        corrupted[chosen] = self.sample(generator_logits).astype(ids_data.dtype)
        original = xp.where(chosen, labels_data, ids_data)  # (B, T)
        replaced = corrupted != original  # (B, T)
        real = corrupted != self.encoder.pad_id if self.encoder.pad_id is not None else \
            xp.ones(corrupted.shape, dtype=bool)
        hidden = self.encoder(Tensor._from_array(corrupted), mask)  # (B, T, d_model)
        logits = self.detector(gelu(self.dense(hidden)))  # (B, T, 2)
        detector_loss = cross_entropy(logits[real], Tensor._from_array(
            replaced[real].astype(ids_data.dtype)))
        loss = generator_loss + detector_loss * self.weight
        return RTDOutput(loss, generator_loss, detector_loss, corrupted, replaced, logits, real)

    def extra_repr(self):
        return f"weight={self.weight}"
