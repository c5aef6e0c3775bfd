"""The deletion curve: on a classifier built by hand, whose decision rests on one known token,
the true explanation scores a lower AUC than random deletion and a reversed one a higher; the
probabilities equal the ones worked out by hand; <cls> and padding are never deleted; the AUC is
the trapezoid area; bad input is refused with the function's name."""

import math

import numpy as np
import pytest

import minitransformer as mt
import minitransformer.explain as explain
from minitransformer import nn
from minitransformer.data import CLS_ID, PAD_ID

GOOD = 7  # the one token the hand-built classifier reads
NEUTRAL = list(range(8, 16))
BIAS = -0.5
GAIN = 5.0


def hand_built_classifier(pooling="mean"):
    """Mean pooling over the real tokens of LayerNorm(embedding); every encoder layer is the
    identity (all its weights 0, so only the residual is left) and there are no position codes.
    The positive logit is GAIN · (h_0 - h_1) + BIAS, and only GOOD has h_0 - h_1 ≠ 0."""
    mt.manual_seed(0)
    encoder = nn.TextEncoder(16, d_model=4, n_heads=2, n_layers=2, d_ff=8, dropout=0.0,
                             max_len=16, pad_id=PAD_ID)
    model = nn.SequenceClassifier(encoder, 2, pooling=pooling, dropout=0.0)
    for name, parameter in model.named_parameters():
        if name.startswith("encoder.encoder.layers.") or name.startswith("encoder.positional."):
            parameter.data[...] = 0.0
    table = encoder.embed.weight.data
    table[...] = [0.0, 0.0, 1.0, -1.0]  # every token neutral ...
    table[GOOD] = [1.0, -1.0, 0.0, 0.0]  # ... but GOOD
    table[PAD_ID] = 0.0
    model.classifier.weight.data[...] = 0.0
    model.classifier.weight.data[:, 1] = [GAIN, -GAIN, 0.0, 0.0]  # (in, out)
    model.classifier.bias.data[...] = [0.0, BIAS]
    return model


def expected_positive(n_tokens, n_good, eps):
    """p(positive) for n_tokens real positions (<cls> included) of which n_good are GOOD."""
    difference = 2.0 / math.sqrt(0.5 + eps)  # h_0 - h_1 of LayerNorm([1, -1, 0, 0])
    logit = GAIN * difference * n_good / n_tokens + BIAS
    return 1.0 / (1.0 + math.exp(-logit))


def reviews(n_rows=12, length=8, seed=0):
    """<cls> + ``length`` tokens, one of them GOOD at a random place; rows padded to 1 more."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n_rows):
        words = list(rng.choice(NEUTRAL, size=length))
        words[int(rng.integers(length))] = GOOD
        rows.append([CLS_ID, *words, PAD_ID])
    return np.array(rows)


def test_probabilities_match_the_hand_computation():
    model = hand_built_classifier()
    ids = reviews(n_rows=3)
    truth = (ids == GOOD).astype(float)
    curve = explain.deletion_curve(model, ids, truth, fractions=[0.0, 0.1, 1.0])
    eps = model.encoder.encoder.norm.eps
    assert curve.target.tolist() == [1, 1, 1]  # GOOD among 9 real positions: positive
    np.testing.assert_allclose(curve.probabilities[:, 0], expected_positive(9, 1, eps),
                               rtol=1e-5)
    # 0.1 of 8 deletable tokens: k = ⌊0.8 + ½⌋ = 1, GOOD itself: p(positive) = σ(BIAS)
    np.testing.assert_allclose(curve.probabilities[:, 1], expected_positive(8, 0, eps),
                               rtol=1e-5)
    assert curve.deleted.tolist() == [[0, 1, 8]] * 3


def test_the_true_explanation_beats_random_and_the_reversed_one_loses():
    model = hand_built_classifier()
    ids = reviews()
    truth = (ids == GOOD).astype(float)
    good = explain.deletion_curve(model, ids, truth)
    backwards = explain.deletion_curve(model, ids, -truth)
    random = explain.random_deletion_curve(model, ids, draws=5, seed=0)
    assert good.auc < random.auc - 0.05
    assert backwards.auc > random.auc + 0.05
    assert np.all(good.aucs <= backwards.aucs)
    assert good.curve[1] < random.curve[1] < backwards.curve[1]  # after the first deletion


def test_cls_and_padding_are_never_deleted():
    model = hand_built_classifier()
    ids = reviews(n_rows=4)
    truth = (ids == GOOD).astype(float)
    loud = truth.copy()
    loud[:, 0] = 1e9  # <cls> scored highest, padding too: both are ignored
    loud[:, -1] = np.inf
    np.testing.assert_array_equal(explain.deletion_curve(model, ids, loud).probabilities,
                                  explain.deletion_curve(model, ids, truth).probabilities)
    everything = explain.deletion_curve(model, ids, truth, fractions=[0.0, 1.0])
    assert everything.deleted[:, -1].tolist() == [8] * 4  # the 8 words, not <cls> or <pad>


def test_random_deletion_repeats_with_its_seed_and_leaves_the_shared_generator_alone():
    model = hand_built_classifier()
    ids = reviews(n_rows=6)
    mt.manual_seed(3)
    first = explain.random_deletion_curve(model, ids, draws=2, seed=1)
    after = mt.rand(3).numpy()
    mt.manual_seed(3)
    again = explain.random_deletion_curve(model, ids, draws=2, seed=1)
    np.testing.assert_array_equal(first.probabilities, again.probabilities)
    np.testing.assert_array_equal(after, mt.rand(3).numpy())
    other = explain.random_deletion_curve(model, ids, draws=2, seed=2)
    assert np.abs(other.probabilities - first.probabilities).max() > 0


def test_auc_is_the_normalised_trapezoid_area():
    curve = explain.DeletionCurve(np.array([0.0, 0.5, 1.0]),
                                  np.array([[1.0, 0.5, 0.0], [1.0, 1.0, 1.0]]),
                                  np.array([1, 1]), np.zeros((2, 3), dtype=int))
    np.testing.assert_allclose(curve.aucs, [0.5, 1.0])
    assert curve.auc == pytest.approx(0.75)
    assert curve.sem == pytest.approx(0.25)  # std 0.3536 / √2
    half = explain.DeletionCurve(np.array([0.0, 0.5]), np.array([[1.0, 0.0]]), np.array([1]),
                                 np.zeros((1, 2), dtype=int))
    assert half.auc == pytest.approx(0.5)  # divided by the width of the range of f


def test_compare_explanations_keeps_the_order_of_the_examples():
    model = hand_built_classifier()
    ids = reviews(n_rows=10, seed=1)
    examples = [list(row[1:-1]) for row in ids]  # the words, without <cls> and padding
    examples[3] = examples[3][:5]  # lengths differ, so the batches are reordered
    if GOOD not in examples[3]:
        examples[3][0] = GOOD

    def truth(model, ids):
        return (ids == GOOD).astype(float)

    def backwards(model, ids):
        return -(ids == GOOD).astype(float)

    table = explain.compare_explanations(model, examples, {"truth": truth,
                                                           "backwards": backwards},
                                         draws=3, seed=0, batch_size=4)
    assert list(table.curves) == ["truth", "backwards", "random"]
    eps = model.encoder.encoder.norm.eps
    first = table.curves["truth"].probabilities[:, 0]
    expected = [expected_positive(len(example) + 1, example.count(GOOD), eps)
                for example in examples]
    np.testing.assert_allclose(first, expected, rtol=1e-5)
    rows = {row["method"]: row for row in table.rows()}
    assert rows["truth"]["auc"] < rows["random"]["auc"] < rows["backwards"]["auc"]
    assert rows["truth"]["below_random"] == 1.0 and rows["random"]["below_random"] is None
    text = table.format()
    assert "| truth |" in text and "deletion AUC" in text and "10 inputs" in text


def test_compare_explanations_runs_every_built_in_method():
    mt.manual_seed(0)
    encoder = nn.TextEncoder(30, d_model=8, n_heads=2, n_layers=2, d_ff=16, max_len=16)
    model = nn.SequenceClassifier(encoder, 2, pooling="cls")
    examples = [[8, 9, 10], [11, 12, 13, 14, 15], [20, 21]]
    table = explain.compare_explanations(model, examples, fractions=[0, 0.5, 1], draws=2)
    assert list(table.curves) == ["rollout", "attention", "gradient×input", "random"]
    for curve in table.curves.values():
        assert curve.probabilities.shape == (3, 3) and 0 <= curve.auc <= 1
    assert model.training


@pytest.mark.parametrize("call, error, message", [
    (lambda m, ids: explain.deletion_curve(nn.Linear(2, 2), ids, ids), TypeError,
     "explain.deletion_curve: model must be an nn.SequenceClassifier, got Linear"),
    (lambda m, ids: explain.deletion_curve(hand_built_classifier("last"), ids, ids), ValueError,
     "explain.deletion_curve: the classifier pools the last token"),
    (lambda m, ids: explain.deletion_curve(m, ids, ids[:, :3]), ValueError,
     "explain.deletion_curve: scores must have the shape of ids (2, 10), got (2, 3)"),
    (lambda m, ids: explain.deletion_curve(m, ids, np.where(ids == GOOD, np.nan, 0.0)),
     ValueError, "explain.deletion_curve: scores must be finite at every deletable position"),
    (lambda m, ids: explain.deletion_curve(m, ids, ids, fractions=[0.5, 0.2]), ValueError,
     "explain.deletion_curve: fractions must be at least two increasing numbers in [0, 1], got "
     "(0.5, 0.2)"),
    (lambda m, ids: explain.deletion_curve(m, ids, ids, target=[1, 2]), ValueError,
     "explain.deletion_curve: target must be a class in [0, 2) or 2 of them"),
    (lambda m, ids: explain.random_deletion_curve(m, ids, draws=0), ValueError,
     "explain.random_deletion_curve: draws must be an int >= 1, got 0"),
    (lambda m, ids: explain.compare_explanations(m, [[8], []]), ValueError,
     "explain.compare_explanations: examples must be a non-empty list of non-empty"),
    (lambda m, ids: explain.compare_explanations(m, [[8]], {"random": None}), ValueError,
     "'random' names the baseline row"),
])
def test_bad_input_names_the_function_and_the_rule(call, error, message):
    with pytest.raises(error) as caught:
        call(hand_built_classifier(), reviews(n_rows=2))
    assert message in str(caught.value)
