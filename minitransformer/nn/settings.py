"""The size of a model as one dataclass, and the one function that builds every model from it.

Every task (pretraining, fine-tuning, translation) reads its model's size from the same fields,
with the same defaults, and builds its model through ``build_model``:

    settings = ModelSettings(d_model=128, n_layers=4)
    model = build_model("causal_lm", vocab_size=5000, settings=settings)

The kinds, and what each builds:

    "text_encoder"     TextEncoder: embeddings, positions, a stack of encoder layers (B, T, D)
    "masked_lm"        MaskedLanguageModel around a TextEncoder
    "causal_lm"        CausalLanguageModel (a causal TextEncoder, logits tied to its embeddings)
    "encoder_decoder"  Transformer with n_layers encoder and n_layers decoder layers, one
                       embedding table shared by source, target and output (one vocabulary)
"""

from dataclasses import asdict, dataclass

from minitransformer.nn.models import CausalLanguageModel, MaskedLanguageModel, TextEncoder
from minitransformer.nn.transformer import Transformer

__all__ = ["MODEL_KINDS", "ModelSettings", "build_model"]


@dataclass
class ModelSettings:
    """The size of the Transformer (the paper's base model: 512, 8, 6, 2048), and whether its
    layers recompute their activations in backward instead of keeping them (``nn.recompute``:
    less memory, one more forward per layer)."""

    d_model: int = 64
    n_heads: int = 4
    n_layers: int = 2
    d_ff: int = 256
    dropout: float = 0.1
    max_len: int = 128
    positional: str = "learned"
    norm_first: bool = True
    activation: str = "gelu"
    recompute: bool = False


def _encoder_decoder(vocab_size, n_layers, **sizes):
    return Transformer(vocab_size, vocab_size, n_encoder_layers=n_layers,
                       n_decoder_layers=n_layers, share_embeddings=True, tie_output=True, **sizes)


MODEL_KINDS = {
    "text_encoder": TextEncoder,
    "masked_lm": lambda vocab_size, **sizes: MaskedLanguageModel(TextEncoder(vocab_size, **sizes)),
    "causal_lm": CausalLanguageModel,
    "encoder_decoder": _encoder_decoder,
}


def build_model(kind, vocab_size, settings, **options):
    """The model of ``kind`` (see the module docstring) for ``vocab_size`` tokens, sized by
    ``settings``: a ModelSettings, any object with its fields (a task's config), or a dict of
    them. A field it lacks takes ModelSettings' default (a checkpoint written before the field
    existed, such as ``recompute``).

    ``options`` go to the model's constructor as they are (``pad_id=0``) or replace a setting
    (``n_layers=1`` for a smaller generator).
    """
    if kind not in MODEL_KINDS:
        raise ValueError(f"build_model: kind must be one of {sorted(MODEL_KINDS)}, got {kind!r}")
    names = asdict(ModelSettings())
    sizes = {name: settings.get(name, default) if isinstance(settings, dict)
             else getattr(settings, name, default) for name, default in names.items()}
    return MODEL_KINDS[kind](vocab_size, **{**sizes, **options})
