"""Layers and positional codes: shapes, formulas, errors."""

import math

import numpy as np
import pytest

import minitransformer as mt
from minitransformer import nn


def test_linear_computes_x_w_plus_b_with_an_in_out_weight():
    layer = nn.Linear(3, 2)
    assert layer.weight.shape == (3, 2) and layer.bias.shape == (2,)
    x = mt.randn(4, 5, 3)
    expected = x.numpy() @ layer.weight.numpy() + layer.bias.numpy()
    np.testing.assert_allclose(layer(x).numpy(), expected, rtol=1e-6)
    bound = 1 / math.sqrt(3)
    assert np.abs(layer.weight.numpy()).max() <= bound


def test_linear_without_bias():
    layer = nn.Linear(3, 2, bias=False)
    assert layer.bias is None and [n for n, _ in layer.named_parameters()] == ["weight"]


def test_embedding_padding_row_starts_at_zero_and_stays_there():
    layer = nn.Embedding(5, 3, padding_idx=0)
    assert (layer.weight.numpy()[0] == 0).all()
    layer(mt.tensor([[0, 2, 0]])).sum().backward()
    assert (layer.weight.grad[0] == 0).all() and (layer.weight.grad[2] == 1).all()
    with pytest.raises(ValueError, match="padding_idx 7 is not a row of a table with 5 rows"):
        nn.Embedding(5, 3, padding_idx=7)


def test_layer_norm_normalizes_then_scales_and_shifts():
    layer = nn.LayerNorm(6)
    y = layer(mt.randn(4, 6) * 5.0 + 3.0).numpy()
    np.testing.assert_allclose(y.mean(axis=-1), 0.0, atol=1e-5)
    np.testing.assert_allclose(y.std(axis=-1), 1.0, atol=1e-3)


def test_feed_forward_shapes_and_activation_check():
    ff = nn.FeedForward(8, 32, activation="gelu", dropout=0.1)
    assert ff(mt.randn(2, 3, 8)).shape == (2, 3, 8)
    assert ff.linear1.weight.shape == (8, 32) and ff.linear2.weight.shape == (32, 8)
    with pytest.raises(ValueError, match="activation 'tanh' is not one of"):
        nn.FeedForward(8, 32, activation="tanh")


def test_sinusoidal_encoding_follows_the_paper():
    d_model = 6
    pe = nn.SinusoidalPositionalEncoding(d_model, max_len=50)
    codes = pe(mt.zeros(1, 50, d_model)).numpy()[0]
    for pos in (0, 7, 49):
        for i in range(d_model // 2):
            angle = pos / 10000 ** (2 * i / d_model)
            assert codes[pos, 2 * i] == pytest.approx(math.sin(angle), abs=1e-6)
            assert codes[pos, 2 * i + 1] == pytest.approx(math.cos(angle), abs=1e-6)
    assert not list(pe.parameters())


def test_sinusoidal_encoding_handles_an_odd_d_model_and_offsets():
    pe = nn.SinusoidalPositionalEncoding(5, max_len=10)
    full = pe(mt.zeros(1, 10, 5)).numpy()
    np.testing.assert_allclose(pe(mt.zeros(1, 2, 5), offset=4).numpy(), full[:, 4:6])


@pytest.mark.parametrize("make", [lambda: nn.SinusoidalPositionalEncoding(4, 8),
                                  lambda: nn.LearnedPositionalEmbedding(8, 4)])
def test_a_sequence_longer_than_max_len_is_refused(make):
    with pytest.raises(mt.ShapeError, match="sequence of length 9.*max_len is 8"):
        make()(mt.zeros(2, 9, 4))


def test_learned_positions_add_one_vector_per_position():
    pe = nn.LearnedPositionalEmbedding(10, 4)
    out = pe(mt.zeros(2, 3, 4), offset=2).numpy()
    np.testing.assert_allclose(out[0], pe.weight.numpy()[2:5])


def test_positional_modules_name_a_wrong_d_model():
    for module in (nn.SinusoidalPositionalEncoding(6, 10), nn.LearnedPositionalEmbedding(10, 6)):
        with pytest.raises(mt.ShapeError, match=r"expected x of shape \(B, T, d_model=6\)"):
            module(mt.zeros(1, 3, 5))


def test_activation_modules_in_a_sequential():
    mlp = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 2), nn.GELU())
    assert mlp(mt.randn(4, 3)).shape == (4, 2)
    assert (nn.ReLU()(mt.tensor([-1.0, 2.0])).numpy() == [0.0, 2.0]).all()
