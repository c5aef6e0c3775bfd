"""The Transformer and the pretraining models: shapes, masks, options, errors."""

import numpy as np
import pytest

import minitransformer as mt
import minitransformer.functional as F
from minitransformer import nn


def tiny(**options):
    settings = dict(d_model=8, n_heads=2, n_encoder_layers=2, n_decoder_layers=2, d_ff=16,
                    dropout=0.0, max_len=16)
    settings.update(options)
    return nn.Transformer(11, 13, **settings).eval()


def test_forward_gives_logits_for_every_target_position():
    src, tgt = mt.tensor([[1, 2, 3, 0]]), mt.tensor([[1, 4, 5]])
    logits = tiny()(src, tgt, src_mask=F.padding_mask(src, 0))
    assert logits.shape == (1, 3, 13)


def test_tgt_mask_none_means_causal():
    model = tiny()
    src, tgt = mt.tensor([[1, 2, 3]]), mt.tensor([[1, 4, 5, 6]])
    implicit = model(src, tgt).numpy()
    explicit = model(src, tgt, tgt_mask=F.causal_mask(4)).numpy()
    np.testing.assert_array_equal(implicit, explicit)


def test_memory_mask_defaults_to_the_source_mask():
    model = tiny()
    src, tgt = mt.tensor([[1, 2, 0]]), mt.tensor([[1, 4]])
    mask = F.padding_mask(src, 0)
    np.testing.assert_array_equal(model(src, tgt, src_mask=mask).numpy(),
                                  model(src, tgt, src_mask=mask, memory_mask=mask).numpy())


def test_norm_order_and_final_norms():
    assert tiny().encoder.norm is None
    pre = tiny(norm_first=True)
    assert pre.encoder.norm is not None and pre.decoder.norm is not None
    assert pre.encoder.layers[0].norm_first


def test_shared_and_tied_embeddings():
    model = nn.Transformer(9, 9, d_model=8, n_heads=2, n_encoder_layers=1, n_decoder_layers=1,
                           d_ff=16, share_embeddings=True, tie_output=True)
    assert model.output is None and model.tgt_embed is model.src_embed
    assert model(mt.tensor([[1, 2]]), mt.tensor([[3]])).shape == (1, 1, 9)
    with pytest.raises(ValueError, match="share_embeddings needs one vocabulary"):
        nn.Transformer(9, 10, share_embeddings=True)


def test_embeddings_are_scaled_to_unit_variance():
    model = nn.Transformer(1000, 1000, d_model=64, n_heads=4, n_encoder_layers=1,
                           n_decoder_layers=1, d_ff=32)
    scaled = model.src_embed.weight.numpy() * np.sqrt(64)
    assert scaled.std() == pytest.approx(1.0, rel=0.05)


def test_unknown_positional_kind():
    with pytest.raises(ValueError, match="expected 'sinusoidal' or 'learned', got 'rotary'"):
        tiny(positional="rotary")


def test_masks_may_be_backend_arrays():
    layer = nn.EncoderLayer(8, 2, 16, dropout=0.0).eval()
    x = mt.randn(2, 3, 8)
    mask = F.padding_mask(mt.tensor([[1, 2, 0], [3, 0, 0]]), 0)
    np.testing.assert_array_equal(layer(x, mask).numpy(), layer(x, mask.data).numpy())


def test_text_encoder_masks_padding_and_classifier_pools():
    encoder = nn.TextEncoder(20, d_model=8, n_heads=2, n_layers=1, d_ff=16, dropout=0.0)
    ids = mt.tensor([[2, 5, 7, 0, 0], [3, 4, 0, 0, 0]])
    assert encoder(ids).shape == (2, 5, 8)
    for pooling in ("cls", "mean"):
        model = nn.SequenceClassifier(encoder, 3, pooling=pooling).eval()
        assert model(ids).shape == (2, 3)
    with pytest.raises(ValueError, match="pooling 'max' is not one of"):
        nn.SequenceClassifier(encoder, 3, pooling="max")


def test_mean_pooling_ignores_padding():
    encoder = nn.TextEncoder(20, d_model=8, n_heads=2, n_layers=1, d_ff=16, dropout=0.0)
    model = nn.SequenceClassifier(encoder, 2, pooling="mean").eval()
    short = model(mt.tensor([[2, 5, 7]])).numpy()
    padded = model(mt.tensor([[2, 5, 7, 0, 0, 0]])).numpy()
    np.testing.assert_allclose(short, padded, rtol=1e-5, atol=1e-6)


def test_language_models_give_vocabulary_logits():
    encoder = nn.TextEncoder(20, d_model=8, n_heads=2, n_layers=1, d_ff=16)
    assert nn.MaskedLanguageModel(encoder)(mt.tensor([[1, 2, 3]])).shape == (1, 3, 20)
    lm = nn.CausalLanguageModel(20, d_model=8, n_heads=2, n_layers=1, d_ff=16)
    assert lm(mt.tensor([[1, 2, 3, 4]])).shape == (1, 4, 20)
    names = [name for name, _ in nn.MaskedLanguageModel(encoder).named_parameters()]
    assert "output.bias" in names and not any(n.startswith("output.embedding") for n in names)


def test_parameter_count_of_the_paper_base_model():
    """The base model of the paper (shared 37k vocabulary, tied output) has about 63M parameters
    (often quoted as 65M)."""
    model = nn.Transformer(37000, 37000, share_embeddings=True, tie_output=True)
    assert 60e6 < model.num_parameters() < 66e6


def test_masked_lm_can_project_only_the_chosen_positions():
    encoder = nn.TextEncoder(20, d_model=8, n_heads=2, n_layers=1, d_ff=16, dropout=0.0)
    model = nn.MaskedLanguageModel(encoder).eval()
    ids = mt.tensor([[4, 7, 9, 0], [5, 6, 0, 0]])
    chosen = mt.tensor([[False, True, True, False], [True, False, False, False]])
    full = model(ids).numpy()
    picked = model(ids, positions=chosen).numpy()
    np.testing.assert_allclose(picked, full[chosen.numpy()], rtol=1e-5, atol=1e-6)
