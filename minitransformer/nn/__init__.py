"""Layers and models: Module, the Transformer's parts, and models for pretraining.

Read in this order: module (Module, Parameter), init, layers (Linear, Embedding, LayerNorm,
Dropout, FeedForward), positional, attention (MultiHeadAttention), transformer (the encoder-
decoder), models (encoder-only and decoder-only models for pretraining and fine-tuning),
settings (ModelSettings, the size of a model, and build_model, which every task builds with);
recompute (activation recomputation: keep a layer's input, run it again in backward).
"""

from minitransformer.nn import init
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
from minitransformer.nn.models import (
    CausalLanguageModel,
    MaskedLanguageModel,
    ReplacedTokenDetection,
    SequenceClassifier,
    TextEncoder,
)
from minitransformer.nn.module import Module, ModuleList, Parameter, Sequential, StateDictError
from minitransformer.nn.positional import LearnedPositionalEmbedding, SinusoidalPositionalEncoding
from minitransformer.nn.recompute import Recompute, recompute
from minitransformer.nn.settings import ModelSettings, build_model
from minitransformer.nn.transformer import Decoder, DecoderLayer, Encoder, EncoderLayer, Transformer

__all__ = [
    "CausalLanguageModel",
    "Decoder",
    "DecoderLayer",
    "Dropout",
    "Embedding",
    "Encoder",
    "EncoderLayer",
    "FeedForward",
    "GELU",
    "LayerNorm",
    "LearnedPositionalEmbedding",
    "Linear",
    "MaskedLanguageModel",
    "ModelSettings",
    "Module",
    "ModuleList",
    "MultiHeadAttention",
    "Parameter",
    "ReLU",
    "Recompute",
    "ReplacedTokenDetection",
    "SequenceClassifier",
    "Sequential",
    "SinusoidalPositionalEncoding",
    "StateDictError",
    "TextEncoder",
    "Transformer",
    "build_model",
    "init",
    "recompute",
]
