"""Attention rollout: the matrix product worked out by hand, the pooled row for each pooling, exact
zeros at padding, the model left as it was, and bad input refused with the function's name."""

import numpy as np
import pytest

import minitransformer as mt
import minitransformer.explain as explain
from minitransformer import nn

PAD = 0
VOCAB = 20


def text_encoder(n_layers=2, seed=0):
    mt.manual_seed(seed)
    return nn.TextEncoder(VOCAB, d_model=8, n_heads=2, n_layers=n_layers, d_ff=16, dropout=0.1,
                          max_len=16, pad_id=PAD)


def classifier(pooling="cls", n_layers=2, seed=0):
    return nn.SequenceClassifier(text_encoder(n_layers, seed), 2, pooling=pooling)


A1 = np.array([[0.5, 0.5, 0.0], [0.2, 0.8, 0.0], [1 / 3, 1 / 3, 1 / 3]])  # rows sum to 1
UNIFORM = np.full((3, 3), 1 / 3)


def as_layer(matrix):
    return matrix[None, None]  # (T, T) -> (B=1, H=1, T, T)


def test_one_layer_is_half_attention_plus_half_identity():
    rollout = explain.rollout_matrix([as_layer(A1)])[0]
    by_hand = np.array([[0.75, 0.25, 0.0], [0.1, 0.9, 0.0], [1 / 6, 1 / 6, 2 / 3]])
    np.testing.assert_allclose(rollout, by_hand, atol=1e-12)
    ids = np.array([[4, 9, 10]])
    np.testing.assert_allclose(explain.pooled_scores(rollout[None], ids, "cls")[0],
                               [0.75, 0.25, 0.0], atol=1e-12)


def test_two_layers_multiply_the_upper_after_the_lower():
    rollout = explain.rollout_matrix([as_layer(A1), as_layer(UNIFORM)])[0]
    # Ã2 row 0 = [2/3, 1/6, 1/6]; R[0] = 2/3·Ã1[0] + 1/6·Ã1[1] + 1/6·Ã1[2]
    by_hand = [2 / 3 * 0.75 + 1 / 6 * 0.1 + 1 / 6 * 1 / 6,
               2 / 3 * 0.25 + 1 / 6 * 0.9 + 1 / 6 * 1 / 6,
               1 / 6 * 2 / 3]
    np.testing.assert_allclose(rollout[0], by_hand, atol=1e-12)
    np.testing.assert_allclose(rollout.sum(axis=-1), 1.0, atol=1e-12)
    reversed_order = explain.rollout_matrix([as_layer(UNIFORM), as_layer(A1)])[0]
    assert np.abs(reversed_order - rollout).max() > 0.01  # the order of the layers matters


def test_identity_attention_rolls_out_to_a_one_hot_row():
    eye = np.eye(4)[None, None].repeat(2, axis=1)  # (1, H=2, 4, 4)
    rollout = explain.rollout_matrix([eye, eye, eye])
    np.testing.assert_allclose(rollout[0], np.eye(4), atol=1e-12)
    ids = np.array([[4, 9, 10, 11]])
    np.testing.assert_allclose(explain.pooled_scores(rollout, ids, "cls")[0], [1, 0, 0, 0])
    np.testing.assert_allclose(explain.pooled_scores(rollout, ids, "last")[0], [0, 0, 0, 1])


def test_heads_are_averaged_and_emptied_rows_become_identity_rows():
    heads = np.stack([A1, UNIFORM])[None]  # (1, 2, 3, 3)
    np.testing.assert_allclose(explain.rollout_matrix([heads]),
                               explain.rollout_matrix([as_layer((A1 + UNIFORM) / 2)]),
                               atol=1e-12)
    emptied = A1.copy()
    emptied[2] = 0.0  # a query whose keys were all masked: weights 0, never NaN
    rollout = explain.rollout_matrix([as_layer(emptied)])[0]
    np.testing.assert_allclose(rollout[2], [0, 0, 1], atol=1e-12)


def test_pooled_rows_for_mean_and_last_pooling_skip_padding():
    matrix = np.arange(16.0).reshape(1, 4, 4)
    ids = np.array([[4, 9, 10, PAD]])  # three real tokens, then padding
    mean = explain.pooled_scores(matrix, ids, "mean")[0]
    np.testing.assert_allclose(mean[:3], matrix[0, :3, :3].mean(axis=0))
    last = explain.pooled_scores(matrix, ids, "last")[0]
    np.testing.assert_allclose(last[:3], matrix[0, 2, :3])
    assert mean[3] == last[3] == 0.0


@pytest.mark.parametrize("pooling", ["cls", "mean", "last"])
def test_rollout_of_a_classifier_is_a_distribution_with_zero_padding(pooling):
    model = classifier(pooling)
    ids = [[4, 5, 6, 7, PAD, PAD], [4, 8, 9, 10, 11, 12]]
    scores = explain.attention_rollout(model, ids)
    assert scores.shape == (2, 6)
    np.testing.assert_allclose(scores.sum(axis=1), 1.0, atol=1e-6)
    assert np.all(scores[0, 4:] == 0.0) and np.all(scores[0, :4] > 0.0)
    attention = explain.last_layer_attention(model, ids)
    assert attention.shape == (2, 6) and np.all(attention[0, 4:] == 0.0)
    np.testing.assert_allclose(attention.sum(axis=1), 1.0, atol=1e-6)


def test_more_padding_changes_no_score():
    model = classifier("mean")
    short = explain.attention_rollout(model, [[4, 5, 6, 7]])
    padded = explain.attention_rollout(model, [[4, 5, 6, 7, PAD, PAD, PAD]])
    np.testing.assert_allclose(padded[:, :4], short, atol=1e-6)


def test_rollout_reads_the_layers_attention_weights():
    model = classifier("cls", n_layers=1)
    ids = mt.tensor([[4, 5, 6, 7, 8]])
    model.eval()
    with mt.no_grad():
        model(ids)
    weights = model.encoder.encoder.layers[0].self_attn.attention_weights.numpy()  # (1, H, T, T)
    by_hand = 0.5 * weights.mean(axis=1)[0] + 0.5 * np.eye(5)
    model.train()
    np.testing.assert_allclose(explain.attention_rollout(model, ids)[0], by_hand[0], atol=1e-6)
    np.testing.assert_allclose(explain.last_layer_attention(model, ids)[0],
                               weights.mean(axis=1)[0, 0], atol=1e-6)
    assert model.training  # put back in its mode


def test_a_bare_text_encoder_takes_the_pooling_asked_for():
    encoder = text_encoder()
    ids = [[4, 5, 6, PAD]]
    cls = explain.attention_rollout(encoder, ids)
    mean = explain.attention_rollout(encoder, ids, pooling="mean")
    layers = explain.layer_attentions(encoder, ids)
    assert len(layers) == 2 and layers[0].shape == (1, 2, 4, 4)
    rollout = explain.rollout_matrix(layers)
    np.testing.assert_allclose(cls[0], rollout[0, 0], atol=1e-6)
    np.testing.assert_allclose(mean[0, :3], rollout[0, :3, :3].mean(axis=0), atol=1e-6)


@pytest.mark.parametrize("call, error, message", [
    (lambda: explain.attention_rollout(nn.Linear(2, 2), [[1, 2]]), TypeError,
     "explain.attention_rollout: model must be an nn.SequenceClassifier or an nn.TextEncoder"),
    (lambda: explain.attention_rollout(classifier(), [1, 2, 3]), ValueError,
     "explain.attention_rollout: ids must be non-empty integer token ids of shape (B, T), got "
     "shape (3,)"),
    (lambda: explain.last_layer_attention(classifier(), [[1.0, 2.0]]), ValueError,
     "explain.last_layer_attention: ids must be non-empty integer"),
    (lambda: explain.attention_rollout(classifier(), [[4, 25]]), ValueError,
     "explain.attention_rollout: ids must lie in [0, 20)"),
    (lambda: explain.attention_rollout(classifier(), [[4, 5]], pooling="max"), ValueError,
     "explain.attention_rollout: pooling must be one of ('cls', 'mean', 'last'), got 'max'"),
    (lambda: explain.rollout_matrix([]), ValueError, "explain.rollout_matrix: attentions is empty"),
    (lambda: explain.rollout_matrix([np.ones((1, 1, 3, 3)), np.ones((1, 1, 4, 4))]), ValueError,
     "layer 0 is (1, 1, 3, 3), layer 1 is (1, 1, 4, 4)"),
    (lambda: explain.pooled_scores(np.ones((1, 3, 3)), np.ones((1, 4), dtype=int), "cls"),
     ValueError, "explain.pooled_scores: matrix must be (B, T, T) for ids (B, T)"),
])
def test_bad_input_names_the_function_and_the_rule(call, error, message):
    with pytest.raises(error) as caught:
        call()
    assert message in str(caught.value)
