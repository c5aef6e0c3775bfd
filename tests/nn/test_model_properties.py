"""Properties of the Transformer, checked on random shapes and tokens (hypothesis), in float64
with dropout off."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minitransformer as mt
import minitransformer.functional as F
from minitransformer import nn

VOCAB, PAD, D = 12, 0, 8


@pytest.fixture(scope="module")
def models():
    previous = mt.get_default_dtype()
    mt.set_default_dtype("float64")
    mt.manual_seed(0)
    built = {
        "transformer": nn.Transformer(VOCAB, VOCAB, d_model=D, n_heads=2, n_encoder_layers=2,
                                      n_decoder_layers=2, d_ff=16, dropout=0.0, max_len=32),
        "lm": nn.CausalLanguageModel(VOCAB, d_model=D, n_heads=2, n_layers=2, d_ff=16,
                                     dropout=0.0, max_len=32),
        "encoder": nn.TextEncoder(VOCAB, d_model=D, n_heads=2, n_layers=2, d_ff=16, dropout=0.0,
                                  max_len=32, pad_id=PAD),
        "stack": nn.Encoder(2, D, 2, 16, dropout=0.0),
        "one_head": nn.MultiHeadAttention(D, 1),
    }
    mt.set_default_dtype(previous)
    return {name: model.eval() for name, model in built.items()}


def tokens(draw, rows, length, low=1):
    return np.array(draw(st.lists(st.lists(st.integers(low, VOCAB - 1), min_size=length,
                                           max_size=length), min_size=rows, max_size=rows)))


@st.composite
def decoder_inputs(draw):
    batch, src_len, tgt_len = draw(st.integers(1, 3)), draw(st.integers(1, 6)), \
        draw(st.integers(2, 6))
    cut = draw(st.integers(1, tgt_len - 1))
    return tokens(draw, batch, src_len), tokens(draw, batch, tgt_len), \
        tokens(draw, batch, tgt_len), cut


@given(decoder_inputs())
def test_changing_future_target_tokens_never_changes_earlier_outputs(models, inputs):
    src, tgt, other, cut = inputs
    changed = np.concatenate([tgt[:, :cut], other[:, cut:]], axis=1)
    model = models["transformer"]
    before = model(mt.tensor(src), mt.tensor(tgt)).numpy()[:, :cut]
    after = model(mt.tensor(src), mt.tensor(changed)).numpy()[:, :cut]
    np.testing.assert_allclose(before, after, rtol=1e-12, atol=1e-12)
    lm = models["lm"]
    np.testing.assert_allclose(lm(mt.tensor(tgt)).numpy()[:, :cut],
                               lm(mt.tensor(changed)).numpy()[:, :cut], rtol=1e-12, atol=1e-12)


@given(decoder_inputs(), st.integers(1, 4))
def test_appending_source_padding_leaves_the_outputs_unchanged(models, inputs, extra):
    src, tgt, _, _ = inputs
    padded = np.concatenate([src, np.full((len(src), extra), PAD)], axis=1)
    model = models["transformer"]

    def run(source):
        source = mt.tensor(source)
        return model(source, mt.tensor(tgt), src_mask=F.padding_mask(source, PAD)).numpy()

    np.testing.assert_allclose(run(src), run(padded), rtol=1e-10, atol=1e-12)


@given(st.data())
def test_appending_padding_leaves_encoder_outputs_at_real_tokens_unchanged(models, data):
    length, extra = data.draw(st.integers(1, 6)), data.draw(st.integers(1, 4))
    ids = tokens(data.draw, data.draw(st.integers(1, 3)), length)
    padded = np.concatenate([ids, np.full((len(ids), extra), PAD)], axis=1)
    encoder = models["encoder"]
    np.testing.assert_allclose(encoder(mt.tensor(ids)).numpy(),
                               encoder(mt.tensor(padded)).numpy()[:, :length],
                               rtol=1e-10, atol=1e-12)


@given(st.integers(1, 3), st.integers(2, 6), st.randoms(use_true_random=False))
def test_an_encoder_without_positions_is_permutation_equivariant(models, batch, length, rng):
    order = list(range(length))
    rng.shuffle(order)
    x = np.random.default_rng(rng.randint(0, 1000)).standard_normal((batch, length, D))
    stack = models["stack"]
    out = stack(mt.tensor(x)).numpy()
    permuted = stack(mt.tensor(x[:, order])).numpy()
    np.testing.assert_allclose(permuted, out[:, order], rtol=1e-10, atol=1e-12)


@given(st.integers(1, 3), st.integers(1, 5), st.integers(1, 5), st.integers(0, 1000))
def test_one_head_attention_is_sdpa_on_the_projections(models, batch, t, s, seed):
    rng = np.random.default_rng(seed)
    query = mt.tensor(rng.standard_normal((batch, t, D)))
    memory = mt.tensor(rng.standard_normal((batch, s, D)))
    mha = models["one_head"]
    expected, _ = F.scaled_dot_product_attention(mha.w_q(query), mha.w_k(memory),
                                                 mha.w_v(memory))
    np.testing.assert_allclose(mha(query, memory, memory).numpy(), mha.w_o(expected).numpy(),
                               rtol=1e-10, atol=1e-12)


@given(st.integers(1, 3), st.integers(1, 7), st.integers(1, 7))
def test_shape_contracts(models, batch, t, s):
    rng = np.random.default_rng(batch * 100 + t * 10 + s)
    src = mt.tensor(rng.integers(1, VOCAB, (batch, s)))
    tgt = mt.tensor(rng.integers(1, VOCAB, (batch, t)))
    model = models["transformer"]
    memory = model.encode(src)
    assert memory.shape == (batch, s, D)
    assert model.decode(tgt, memory).shape == (batch, t, D)
    assert model(src, tgt).shape == (batch, t, VOCAB)
    mha = model.decoder.layers[0].cross_attn
    assert mha.attention_weights.shape == (batch, 2, t, s)
    assert models["lm"](tgt).shape == (batch, t, VOCAB)
    assert models["encoder"](src).shape == (batch, s, D)
