"""nn/settings.py: one dataclass of model sizes, and build_model, which every task builds with."""

from dataclasses import asdict

import pytest

from minitransformer import nn
from minitransformer.tasks.finetune import FinetuneConfig
from minitransformer.tasks.pretrain import PretrainConfig
from minitransformer.tasks.seq2seq import Seq2SeqConfig

SMALL = nn.ModelSettings(d_model=16, n_heads=2, n_layers=3, d_ff=24, max_len=20)


@pytest.mark.parametrize("kind, cls", [("text_encoder", nn.TextEncoder),
                                       ("masked_lm", nn.MaskedLanguageModel),
                                       ("causal_lm", nn.CausalLanguageModel),
                                       ("encoder_decoder", nn.Transformer)])
def test_every_kind_is_built_at_the_settings_size(kind, cls):
    model = nn.build_model(kind, 30, SMALL)
    assert type(model) is cls
    layers = [name for name, _ in model.named_parameters() if name.endswith("ff.linear1.weight")]
    assert len(layers) == (6 if kind == "encoder_decoder" else 3)  # n_layers each side
    shapes = {tuple(p.shape) for p in model.parameters()}
    assert (16, 24) in shapes and (30, 16) in shapes  # d_model -> d_ff, the (V, D) table


def test_options_replace_a_setting_or_reach_the_constructor_and_dicts_work_too():
    generator = nn.build_model("text_encoder", 30, SMALL, n_layers=1, pad_id=0)
    assert len(generator.encoder.layers) == 1 and generator.pad_id == 0
    from_dict = nn.build_model("text_encoder", 30, asdict(SMALL))
    assert len(from_dict.encoder.layers) == 3
    with pytest.raises(ValueError, match="build_model: kind must be one of .* got 'rnn'"):
        nn.build_model("rnn", 30, SMALL)


def test_every_task_config_has_the_one_set_of_model_defaults():
    defaults = asdict(nn.ModelSettings())
    # the one deliberate difference: translation uses the paper's sinusoidal position codes
    overrides = {PretrainConfig: {}, FinetuneConfig: {},
                 Seq2SeqConfig: {"positional": "sinusoidal"}}
    for config_class, changed in overrides.items():
        config = config_class()
        assert {name: getattr(config, name) for name in defaults} == {**defaults, **changed}, \
            config_class.__name__


@pytest.mark.parametrize("cls", [nn.TextEncoder, nn.CausalLanguageModel])
def test_the_models_built_alone_have_the_same_size_defaults(cls):
    import inspect

    defaults = {name: parameter.default
                for name, parameter in inspect.signature(cls).parameters.items()}
    settings = asdict(nn.ModelSettings())
    assert {name: defaults[name] for name in settings} == settings
