"""Gradient saliency: its gradients equal finite differences of the model's own forward, it is
exactly zero where the output cannot look (masked padding, the future), it leaves the model as
it found it, and bad input fails with a message naming the function and the shapes."""

import numpy as np
import pytest

import minitransformer as mt
import minitransformer.explain as explain
from minitransformer import nn

VOCAB = 20
PAD = 0


@pytest.fixture(autouse=True)
def float64():
    previous = mt.get_default_dtype()
    mt.set_default_dtype("float64")
    yield
    mt.set_default_dtype(previous)


def text_encoder(seed=0):
    mt.manual_seed(seed)
    return nn.TextEncoder(VOCAB, d_model=8, n_heads=2, n_layers=2, d_ff=16, dropout=0.1,
                          max_len=16, pad_id=PAD)


def classifier(pooling="cls", seed=0):
    return nn.SequenceClassifier(text_encoder(seed), 3, pooling=pooling)


def causal_lm(seed=0):
    mt.manual_seed(seed)
    # Untied: the finite differences below move a row of the input table only.
    return nn.CausalLanguageModel(VOCAB, d_model=8, n_heads=2, n_layers=2, d_ff=16, dropout=0.1,
                                  max_len=16, tie_weights=False)


def masked_lm(seed=0):
    return nn.MaskedLanguageModel(text_encoder(seed), tie_weights=False)


def transformer(seed=0):
    mt.manual_seed(seed)
    return nn.Transformer(VOCAB, VOCAB, d_model=8, n_heads=2, n_encoder_layers=1,
                          n_decoder_layers=2, d_ff=16, dropout=0.1, max_len=16)


IDS = [[5, 6, 7, 8, 9], [10, 11, 12, 13, 14]]  # no id repeats within a row
TGT = [[1, 15, 16, 17], [1, 18, 19, 3]]


def chosen_logit(model, ids, row, target, position, tgt=None):
    """The model's own forward (no saliency code): logit ``target`` of row ``row``."""
    with mt.no_grad():
        if tgt is None:
            logits = model(mt.tensor(ids)).numpy()
        else:
            src = mt.tensor(ids)
            logits = model(src, mt.tensor(tgt), src_mask=mt.functional.padding_mask(src, PAD))
            logits = logits.numpy()
    return logits[row, target] if position is None else logits[row, position, target]


def finite_difference(model, table, ids, row, token_position, target, position, tgt=None,
                      eps=1e-6):
    """∂y/∂e by central differences on the table row of one token (it occurs once in its row,
    and every other row is left as it is, so moving the table row moves only that e)."""
    token = (tgt if tgt is not None and table is model.tgt_embed.weight else ids)[row][
        token_position]
    gradient = np.zeros(table.shape[1])
    model.eval()
    for d in range(table.shape[1]):
        original = table.data[token, d]
        table.data[token, d] = original + eps
        up = chosen_logit(model, ids, row, target, position, tgt)
        table.data[token, d] = original - eps
        down = chosen_logit(model, ids, row, target, position, tgt)
        table.data[token, d] = original
        gradient[d] = (up - down) / (2 * eps)
    return gradient


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_classifier_gradient_matches_finite_differences(pooling):
    model = classifier(pooling)
    result = explain.saliency(model, IDS, target=[2, 1])
    for row, target in ((0, 2), (1, 1)):
        for token_position in (0, 3):
            numeric = finite_difference(model, model.encoder.embed.weight, IDS, row,
                                        token_position, target, None)
            np.testing.assert_allclose(result.gradient[row, token_position], numeric,
                                       rtol=1e-6, atol=1e-8)
    assert result.position is None
    np.testing.assert_allclose(result.logit, [chosen_logit(model, IDS, 0, 2, None),
                                              chosen_logit(model, IDS, 1, 1, None)], atol=1e-12)


@pytest.mark.parametrize("build", [causal_lm, masked_lm], ids=["causal_lm", "masked_lm"])
def test_language_model_gradient_matches_finite_differences(build):
    model = build()
    table = model.encoder.embed.weight  # one name for the text encoder in every model
    result = explain.saliency(model, IDS, target=4, position=3)
    assert result.position == 3
    for token_position in (1, 3):
        numeric = finite_difference(model, table, IDS, 1, token_position, 4, 3)
        np.testing.assert_allclose(result.gradient[1, token_position], numeric, rtol=1e-6,
                                   atol=1e-8)


@pytest.mark.parametrize("wrt", ["src", "tgt"])
def test_transformer_gradient_matches_finite_differences(wrt):
    model = transformer()
    result = explain.saliency(model, IDS, target=6, tgt=TGT, wrt=wrt, position=2)
    table = model.src_embed.weight if wrt == "src" else model.tgt_embed.weight
    assert result.gradient.shape == (2, 5 if wrt == "src" else 4, 8)
    for token_position in (0, 2):
        numeric = finite_difference(model, table, IDS, 0, token_position, 6, 2, tgt=TGT)
        np.testing.assert_allclose(result.gradient[0, token_position], numeric, rtol=1e-6,
                                   atol=1e-8)


def test_scores_are_the_norm_and_gradient_times_input_of_the_table_rows():
    model = classifier()
    result = explain.saliency(model, IDS, target=0)
    table = model.encoder.embed.weight.numpy()
    np.testing.assert_array_equal(result.embeddings, table[np.array(IDS)])
    np.testing.assert_allclose(result.norm, np.linalg.norm(result.gradient, axis=-1))
    np.testing.assert_allclose(result.grad_times_input,
                               np.einsum("btd,btd->bt", result.gradient, result.embeddings))
    np.testing.assert_array_equal(result.ids, IDS)
    np.testing.assert_array_equal(result.target, [0, 0])


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_classifier_saliency_is_zero_on_padding(pooling):
    ids = [[5, 6, 7, PAD, PAD], [8, 9, 10, 11, 12]]
    result = explain.saliency(classifier(pooling), ids, target=1)
    assert np.all(result.norm[0, 3:] == 0.0) and np.all(result.grad_times_input[0, 3:] == 0.0)
    assert np.all(result.norm[0, :3] > 0) and np.all(result.norm[1] > 0)


def test_causal_lm_saliency_is_zero_on_the_future():
    result = explain.saliency(causal_lm(), IDS, target=4, position=2)
    assert np.all(result.norm[:, 3:] == 0.0)
    assert np.all(result.norm[:, :3] > 0)


def test_transformer_saliency_is_zero_on_source_padding_and_future_targets():
    model = transformer()
    src = [[5, 6, 7, PAD, PAD], [8, 9, 10, 11, 12]]
    source = explain.saliency(model, src, target=6, tgt=TGT)
    assert np.all(source.norm[0, 3:] == 0.0) and np.all(source.norm[0, :3] > 0)
    target_side = explain.saliency(model, src, target=6, tgt=TGT, wrt="tgt", position=1)
    assert np.all(target_side.norm[:, 2:] == 0.0) and np.all(target_side.norm[:, :2] > 0)
    unmasked = explain.saliency(model, src, target=6, tgt=TGT, pad_id=None)
    assert np.all(unmasked.norm[0, 3:] > 0)  # without the mask the padding is read


def test_rows_are_independent():
    model = classifier("mean")
    both = explain.saliency(model, IDS, target=[1, 2])
    for row, target in ((0, 1), (1, 2)):
        alone = explain.saliency(model, IDS[row:row + 1], target=target)
        np.testing.assert_allclose(both.gradient[row], alone.gradient[0], atol=1e-12)


def test_the_model_is_left_as_it_was():
    model = classifier()
    model.train()
    model.classifier.weight.requires_grad = False  # a frozen parameter stays frozen
    marker = np.full(model.classifier.bias.shape, 7.0)
    model.classifier.bias.grad = marker.copy()
    explain.saliency(model, IDS, target=1)
    assert model.training and all(m.training for m in model.modules())
    assert not model.classifier.weight.requires_grad
    assert all(p.requires_grad for name, p in model.named_parameters()
               if name != "classifier.weight")
    np.testing.assert_array_equal(model.classifier.bias.grad, marker)
    assert all(p.grad is None for name, p in model.named_parameters()
               if name != "classifier.bias")


def test_float32_gradients_agree_with_float64():
    model = classifier()
    expected = explain.saliency(model, IDS, target=1).gradient
    mt.set_default_dtype("float32")
    result = explain.saliency(model.float(), IDS, target=1)
    assert result.gradient.dtype == np.float32
    np.testing.assert_allclose(result.gradient, expected, rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("call, words", [
    (lambda: explain.saliency(classifier(), [5, 6, 7], target=0), ["ids", "(B, T)", "(3,)"]),
    (lambda: explain.saliency(classifier(), [[0.5, 1.0]], target=0), ["ids", "float64"]),
    (lambda: explain.saliency(classifier(), IDS, target=3), ["target", "[0, 3)", "(2, 3)"]),
    (lambda: explain.saliency(classifier(), IDS, target=[0]), ["target", "2 ints"]),
    (lambda: explain.saliency(classifier(), IDS, target=0, position=1), ["position", "None"]),
    (lambda: explain.saliency(causal_lm(), IDS, target=0, position=5), ["position", "(2, 5, 20)"]),
    (lambda: explain.saliency(causal_lm(), [[5, 25]], target=0), ["ids", "[0, 20)"]),
    (lambda: explain.saliency(causal_lm(), IDS, target=0, tgt=TGT), ["Transformer", "(2, 5)"]),
    (lambda: explain.saliency(transformer(), IDS, target=0), ["tgt", "(2, 5)"]),
    (lambda: explain.saliency(transformer(), IDS, target=0, tgt=[[1, 5]]), ["(2, 5)", "(1, 2)"]),
    (lambda: explain.saliency(transformer(), IDS, target=0, tgt=TGT, wrt="memory"), ["wrt"]),
])
def test_bad_input_raises_a_value_error_naming_the_function(call, words):
    with pytest.raises(ValueError) as error:
        call()
    message = str(error.value)
    assert message.startswith("explain.saliency:")
    for word in words:
        assert word in message, (word, message)


def test_an_unsupported_model_raises_a_type_error():
    with pytest.raises(TypeError, match=r"explain.saliency: model must be one of .*TextEncoder"):
        explain.saliency(text_encoder(), IDS, target=0)


def test_the_lookup_is_put_back_even_after_an_error():
    model = classifier()
    names = [name for name, _ in model.named_parameters()]
    lookup = model.encoder.embed
    with pytest.raises(ValueError, match="explain.saliency: target"):
        explain.saliency(model, IDS, target=99)  # fails after the look-up was swapped
    assert model.encoder.embed is lookup
    explain.saliency(model, IDS, target=1)
    assert model.encoder.embed is lookup
    assert [name for name, _ in model.named_parameters()] == names  # the registry untouched


@pytest.mark.parametrize("build, kwargs", [
    (lambda: nn.CausalLanguageModel(VOCAB, d_model=8, n_heads=2, n_layers=1, d_ff=16,
                                    max_len=16, tie_weights=True), {}),
    (lambda: nn.Transformer(VOCAB, VOCAB, d_model=8, n_heads=2, n_encoder_layers=1,
                            n_decoder_layers=1, d_ff=16, max_len=16, share_embeddings=True,
                            tie_output=True), {"tgt": TGT, "wrt": "tgt"}),
])
def test_tied_output_layers_still_read_the_real_table(build, kwargs):
    mt.manual_seed(0)
    model = build()
    result = explain.saliency(model, IDS, target=4, **kwargs)
    model.eval()  # saliency runs in eval mode (no dropout)
    expected = [chosen_logit(model, IDS, row, 4, -1, kwargs.get("tgt")) for row in range(2)]
    np.testing.assert_allclose(result.logit, expected, rtol=1e-12)
