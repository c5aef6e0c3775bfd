"""nn.MultiHeadAttention (the attention function and the masks: tests/test_functional.py)."""


import numpy as np
import pytest

import minitransformer as mt
from minitransformer import nn


def test_multi_head_attention_splits_heads_and_keeps_weights():
    mha = nn.MultiHeadAttention(8, 2)
    x, memory = mt.randn(2, 3, 8), mt.randn(2, 5, 8)
    out = mha(x, memory, memory)
    assert out.shape == (2, 3, 8) and mha.attention_weights.shape == (2, 2, 3, 5)
    np.testing.assert_allclose(mha.attention_weights.numpy().sum(-1), 1.0, rtol=1e-5)
    assert not mha.attention_weights.requires_grad


def test_multi_head_attention_errors():
    with pytest.raises(ValueError, match="d_model=10 is not divisible by n_heads=3"):
        nn.MultiHeadAttention(10, 3)
    with pytest.raises(mt.ShapeError, match="query must be \\(B, L, d_model=8\\)"):
        nn.MultiHeadAttention(8, 2)(mt.randn(2, 3, 6), mt.randn(2, 3, 8), mt.randn(2, 3, 8))


def test_dropout_on_attention_only_in_training():
    mha = nn.MultiHeadAttention(8, 2, dropout=0.5)
    x = mt.randn(2, 4, 8)
    mha.eval()
    np.testing.assert_array_equal(mha(x, x, x).numpy(), mha(x, x, x).numpy())
    mha.train()
    assert not np.allclose(mha(x, x, x).numpy(), mha(x, x, x).numpy())
