"""Gradient-check cases for every Module: layers, attention, Transformer blocks and models.

Each case builds its module under a fixed seed in float64, in training mode, so dropout is on:
the checker re-seeds the generator before every forward, and the masks repeat. Small tensors are
checked element by element; for the larger models, tensors above ``max_elements`` are checked
along random directions, which keeps every case to a fraction of a second.
"""

from minitransformer import backend
from minitransformer.functional import causal_mask, padding_mask
from minitransformer.gradcheck_cases import register, sample
from minitransformer.nn import models, module
from minitransformer.nn.attention import MultiHeadAttention
from minitransformer.nn.layers import (
    GELU,
    Dropout,
    Embedding,
    FeedForward,
    LayerNorm,
    Linear,
    ReLU,
)
from minitransformer.nn.positional import LearnedPositionalEmbedding, SinusoidalPositionalEncoding
from minitransformer.nn.recompute import Recompute
from minitransformer.nn.transformer import (
    Decoder,
    DecoderLayer,
    Encoder,
    EncoderLayer,
    Transformer,
)
from minitransformer.tensor import Tensor

D, H, FF = 8, 2, 16  # d_model, heads, d_ff of the small modules below
LARGE = {"max_elements": 16, "directions": 4}  # the models: random directions above 16 elements


def _seeded(make):
    """Build under seed 0 and in float64, so the case is the same on every run."""
    backend.manual_seed(0)
    return make().double()


def _ids(*rows):
    return Tensor(list(rows))


SRC = ([1, 2, 3, 0], [4, 1, 0, 0])  # token ids, 0 = padding
TGT = ([1, 5, 2], [1, 3, 3])

# ----------------------------------------------------------------------------- layers

register("Linear (2, 3, 4) -> 5", [Linear])(
    lambda: (_seeded(lambda: Linear(4, 5)), [sample(2, 3, 4)]))
register("Linear without bias", [Linear])(
    lambda: (_seeded(lambda: Linear(3, 2, bias=False)), [sample(4, 3)]))
register("Embedding with a padding row", [Embedding])(
    lambda: (_seeded(lambda: Embedding(6, 3)), [_ids([1, 4, 1], [5, 0, 2])]))
register("LayerNorm over the last axis", [LayerNorm])(
    lambda: (_seeded(lambda: LayerNorm(5)), [sample(2, 3, 5)]))
register("Dropout p=0.3 in training mode", [Dropout])(
    lambda: (_seeded(lambda: Dropout(0.3)), [sample(4, 5)]))
register("FeedForward, relu, dropout", [FeedForward])(
    lambda: (_seeded(lambda: FeedForward(4, 6, "relu", dropout=0.2)), [sample(2, 3, 4)]))
register("FeedForward, gelu", [FeedForward])(
    lambda: (_seeded(lambda: FeedForward(4, 6, "gelu")), [sample(2, 3, 4)]))
register("Sequential of Linear and LayerNorm", [module.Sequential, module.ModuleList])(
    lambda: (_seeded(lambda: module.Sequential(Linear(3, 4), LayerNorm(4))), [sample(2, 3)]))
register("Sequential MLP with ReLU and GELU modules", [ReLU, GELU])(
    lambda: (_seeded(lambda: module.Sequential(Linear(3, 5), GELU(), Linear(5, 4), ReLU())),
             [sample(4, 3)]))
register("SinusoidalPositionalEncoding", [SinusoidalPositionalEncoding])(
    lambda: (_seeded(lambda: SinusoidalPositionalEncoding(4, 10)), [sample(2, 3, 4)]))
register("LearnedPositionalEmbedding", [LearnedPositionalEmbedding])(
    lambda: (_seeded(lambda: LearnedPositionalEmbedding(6, 4)), [sample(2, 3, 4)]))

# ----------------------------------------------------------------------------- attention

register("MultiHeadAttention, self, padding mask, dropout", [MultiHeadAttention])(
    lambda: (_seeded(lambda: MultiHeadAttention(D, H, dropout=0.2)),
             [sample(2, 4, D), sample(2, 4, D, seed=1), sample(2, 4, D, seed=2),
              padding_mask(_ids(*SRC), 0)]))
register("MultiHeadAttention, cross (T=3, S=4), causal-offset mask, no bias",
         [MultiHeadAttention])(
    lambda: (_seeded(lambda: MultiHeadAttention(D, H, bias=False)),
             [sample(2, 3, D), sample(2, 4, D, seed=1), sample(2, 4, D, seed=1),
              causal_mask(3, 4)]))
register("MultiHeadAttention, a query row with every key masked", [MultiHeadAttention])(
    lambda: (_seeded(lambda: MultiHeadAttention(D, H)),
             [sample(2, 3, D), sample(2, 3, D, seed=1), sample(2, 3, D, seed=2),
              padding_mask(_ids([1, 2, 3], [0, 0, 0]), 0)]))

# ----------------------------------------------------------------------------- blocks

for norm_first in (False, True):
    order = "pre-LN" if norm_first else "post-LN"
    register(f"EncoderLayer, {order}, padding mask, dropout", [EncoderLayer])(
        lambda norm_first=norm_first: (
            _seeded(lambda: EncoderLayer(D, H, FF, dropout=0.1, norm_first=norm_first)),
            [sample(2, 4, D), padding_mask(_ids(*SRC), 0)]))
    register(f"DecoderLayer, {order}, causal and memory masks, dropout", [DecoderLayer])(
        lambda norm_first=norm_first: (
            _seeded(lambda: DecoderLayer(D, H, FF, dropout=0.1, norm_first=norm_first)),
            [sample(2, 3, D), sample(2, 4, D, seed=1), causal_mask(3),
             padding_mask(_ids(*SRC), 0)]))

register("Encoder, 2 layers, final norm", [Encoder, module.ModuleList], **LARGE)(
    lambda: (_seeded(lambda: Encoder(2, D, H, FF, 0.1, "gelu", True, final_norm=True)),
             [sample(2, 4, D), padding_mask(_ids(*SRC), 0)]))
register("Decoder, 2 layers", [Decoder], **LARGE)(
    lambda: (_seeded(lambda: Decoder(2, D, H, FF, 0.1)),
             [sample(2, 3, D), sample(2, 4, D, seed=1), causal_mask(3)]))
register("Encoder, 2 layers, recompute, dropout", [Encoder, Recompute], **LARGE)(
    lambda: (_seeded(lambda: Encoder(2, D, H, FF, 0.1, "gelu", True, final_norm=True,
                                     recompute=True)),
             [sample(2, 4, D), padding_mask(_ids(*SRC), 0)]))
register("Decoder, 2 layers, recompute, dropout", [Decoder, Recompute], **LARGE)(
    lambda: (_seeded(lambda: Decoder(2, D, H, FF, 0.1, recompute=True)),
             [sample(2, 3, D), sample(2, 4, D, seed=1), causal_mask(3)]))

# ----------------------------------------------------------------------------- models

register("Transformer, post-LN, sinusoidal, source padding", [Transformer], **LARGE)(
    lambda: (_seeded(lambda: Transformer(7, 6, D, H, 1, 1, FF, dropout=0.1, max_len=8)),
             [_ids(*SRC), _ids(*TGT), padding_mask(_ids(*SRC), 0)]))
register("Transformer, pre-LN, learned positions, shared and tied embeddings", [Transformer],
         **LARGE)(
    lambda: (_seeded(lambda: Transformer(7, 7, D, H, 1, 1, FF, dropout=0.0, max_len=8,
                                         positional="learned", norm_first=True,
                                         share_embeddings=True, tie_output=True)),
             [_ids(*SRC), _ids(*TGT)]))


def _encoder():
    return models.TextEncoder(7, D, H, 1, FF, dropout=0.1, max_len=8, pad_id=0)


def _at_real_tokens(model):
    """The outputs at real tokens only. The padding row of the embedding gets no gradient by
    design (as PyTorch's padding_idx), yet outputs at padded positions read it: leave those out.
    """
    real = Tensor(_ids(*SRC).numpy() != 0)[:, :, None]  # (B, T, 1)

    def forward(ids):
        return model(ids) * real

    return model, [_ids(*SRC)], forward


register("TextEncoder, padding", [models.TextEncoder], **LARGE)(
    lambda: _at_real_tokens(_seeded(_encoder)))
register("TextEncoder, sinusoidal codes, embeddings scaled by √d_model", [models.TextEncoder],
         **LARGE)(
    lambda: _at_real_tokens(_seeded(lambda: models.TextEncoder(
        7, D, H, 1, FF, dropout=0.1, max_len=8, positional="sinusoidal", pad_id=0))))
register("MaskedLanguageModel, tied output", [models.MaskedLanguageModel, models._TiedOutput],
         **LARGE)(
    lambda: _at_real_tokens(_seeded(lambda: models.MaskedLanguageModel(_encoder()))))
for pooling in models.POOLINGS:
    register(f"SequenceClassifier, {pooling} pooling", [models.SequenceClassifier], **LARGE)(
        lambda pooling=pooling: (
            _seeded(lambda: models.SequenceClassifier(_encoder(), 3, pooling)), [_ids(*SRC)]))
for pooling in ("mean", "last"):
    register(f"SequenceClassifier, causal, {pooling} pooling", [models.SequenceClassifier],
             **LARGE)(
        lambda pooling=pooling: (
            _seeded(lambda: models.SequenceClassifier(_encoder(), 2, pooling, causal=True)),
            [_ids(*SRC)]))


def _replaced_token_detection():
    """The three losses; the generator's samples repeat, as the checker re-seeds before every
    forward. Vocabulary 12: the 7 special ids, then 7..11; ids hold <mask> (6) where labels
    hold the original id."""

    def text_encoder(n_layers):
        return models.TextEncoder(12, D, H, n_layers, FF, dropout=0.1, max_len=8, pad_id=0)

    model = _seeded(lambda: models.ReplacedTokenDetection(text_encoder(1), text_encoder(1),
                                                          weight=2.0))

    def forward(ids, labels):
        return model(ids, labels)[:3]  # loss, generator_loss, detector_loss

    return model, [_ids([7, 6, 9, 6, 0], [6, 11, 6, 8, 10]),
                   _ids([-100, 8, -100, 10, -100], [9, -100, 7, -100, -100])], forward


register("ReplacedTokenDetection: generator, sampling, detector",
         [models.ReplacedTokenDetection], **LARGE)(_replaced_token_detection)
register("CausalLanguageModel, untied output", [models.CausalLanguageModel], **LARGE)(
    lambda: (_seeded(lambda: models.CausalLanguageModel(7, D, H, 1, FF, max_len=8,
                                                        tie_weights=False)), [_ids(*SRC)]))
