"""Gradient × input of a classifier's decision: equal to the finite-difference derivative of the
class margin along each embedding row, exactly zero at padding, for the predicted class unless
told otherwise."""

import numpy as np
import pytest

import minitransformer as mt
import minitransformer.explain as explain
from minitransformer import nn

PAD = 0


@pytest.fixture(autouse=True)
def float64():
    mt.set_default_dtype("float64")
    yield
    mt.set_default_dtype("float32")


def classifier(n_classes=3, pooling="mean"):
    mt.manual_seed(1)
    encoder = nn.TextEncoder(20, d_model=8, n_heads=2, n_layers=2, d_ff=16, dropout=0.1,
                             max_len=16, pad_id=PAD)
    return nn.SequenceClassifier(encoder, n_classes, pooling=pooling)


def margin(model, ids, row, target):
    """y_target - mean_k y_k from the model's own forward."""
    with mt.no_grad():
        logits = model(mt.tensor(ids)).numpy()[row]
    return logits[target] - logits.mean()


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_scores_are_the_derivative_of_the_margin_along_each_embedding(pooling):
    model = classifier(pooling=pooling)
    ids = [[4, 5, 6, 7, PAD], [4, 8, 9, 10, 11]]  # no id repeats within a row
    scores = explain.gradient_times_input(model, ids, target=[2, 0])
    assert scores.shape == (2, 5)
    table = model.encoder.embed.weight.data
    model.eval()
    eps = 1e-6
    for row, target in ((0, 2), (1, 0)):
        for position in (1, 3):
            token = ids[row][position]
            original = table[token].copy()
            table[token] = original * (1 + eps)  # e_t + ε·e_t: the derivative along e_t ...
            up = margin(model, ids, row, target)
            table[token] = original * (1 - eps)
            down = margin(model, ids, row, target)
            table[token] = original
            numeric = (up - down) / (2 * eps)  # ... is Σ_d (∂m/∂e_t)_d (e_t)_d
            assert scores[row, position] == pytest.approx(numeric, rel=1e-5, abs=1e-9)
    assert scores[0, 4] == 0.0  # padding


def test_the_default_target_is_the_predicted_class():
    model = classifier()
    ids = [[4, 5, 6, 7], [4, 9, 12, 15]]
    model.eval()
    with mt.no_grad():
        predicted = model(mt.tensor(ids)).numpy().argmax(axis=-1)
    model.train()
    np.testing.assert_allclose(explain.gradient_times_input(model, ids),
                               explain.gradient_times_input(model, ids, target=predicted),
                               atol=0)
    assert model.training and all(p.grad is None for p in model.parameters())


def test_two_classes_give_opposite_scores():
    model = classifier(n_classes=2)
    ids = [[4, 5, 6, 7]]
    np.testing.assert_allclose(explain.gradient_times_input(model, ids, target=0),
                               -explain.gradient_times_input(model, ids, target=1), atol=1e-12)


@pytest.mark.parametrize("model, ids, target, error, message", [
    (nn.Linear(2, 2), [[1]], None, TypeError,
     "explain.gradient_times_input: model must be an nn.SequenceClassifier, got Linear"),
    (None, [1, 2], None, ValueError,
     "explain.gradient_times_input: ids must be non-empty integer token ids of shape (B, T)"),
    (None, [[4, 5]], 3, ValueError,
     "explain.gradient_times_input: target must be a class in [0, 3) or 1 of them"),
    (None, [[4, 5]], [0, 1], ValueError, "or 1 of them (one per row), got [0, 1]"),
])
def test_bad_input_names_the_function(model, ids, target, error, message):
    with pytest.raises(error) as caught:
        explain.gradient_times_input(model if model is not None else classifier(), ids, target)
    assert message in str(caught.value)
