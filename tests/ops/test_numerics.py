"""Numerics: large logits stay finite, masked and ignored entries never produce NaN."""

import numpy as np
import pytest

import minitransformer as mt
import minitransformer.functional as F


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_softmax_family_is_finite_for_logits_of_plus_minus_1e4(dtype):
    logits = mt.tensor([[1e4, -1e4, 0.0], [-1e4, -1e4, 1e4]], dtype=dtype, requires_grad=True)
    for out in (F.softmax(logits), F.log_softmax(logits), logits.logsumexp(axis=-1),
                F.cross_entropy(logits, mt.tensor([1, 2]))):
        assert np.isfinite(out.numpy()).all()
        logits.grad = None
        out.sum().backward()
        assert np.isfinite(logits.grad).all()
    np.testing.assert_allclose(F.softmax(logits).numpy()[0], [1.0, 0.0, 0.0])
    # class 1 of row 0 sits 2e4 below the max: its loss is about 2e4, still finite
    assert F.cross_entropy(logits, mt.tensor([1, 2])).item() == pytest.approx(1e4, rel=1e-3)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_fully_masked_row_gives_zero_weights_not_nan(dtype):
    scores = mt.randn(2, 4, dtype=dtype, requires_grad=True)
    mask = mt.tensor([[True, True, False, False], [True, True, True, True]])
    weights = F.softmax(scores.masked_fill(mask, float("-inf")))
    assert not np.isnan(weights.numpy()).any()
    np.testing.assert_array_equal(weights.numpy()[1], 0.0)
    np.testing.assert_allclose(weights.numpy()[0].sum(), 1.0, rtol=1e-6)
    (weights * mt.randn(2, 4, dtype=dtype)).sum().backward()
    assert np.isfinite(scores.grad).all()
    np.testing.assert_array_equal(scores.grad[1], 0.0)


def test_masked_entries_get_no_gradient():
    scores = mt.randn(3, 5, requires_grad=True)
    mask = mt.tensor([False, True, False, True, False])
    F.softmax(scores.masked_fill(mask, -1e9)).sum(axis=0).max().backward()
    assert (scores.grad[:, [1, 3]] == 0).all()


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_ignored_targets_contribute_nothing_and_never_nan(reduction):
    logits = mt.randn(2, 3, 4, requires_grad=True)
    targets = mt.tensor([[1, 0, 0], [0, 0, 0]])
    loss = F.cross_entropy(logits, targets, ignore_index=0, reduction=reduction)
    assert np.isfinite(loss.numpy()).all()
    loss.sum().backward()
    assert np.isfinite(logits.grad).all()
    grad_rows = logits.grad.reshape(-1, 4)
    assert (grad_rows[1:] == 0).all() and (grad_rows[0] != 0).any()


def test_mean_cross_entropy_over_only_ignored_targets_is_zero():
    logits = mt.randn(3, 4, requires_grad=True)
    loss = F.cross_entropy(logits, mt.tensor([0, 0, 0]), ignore_index=0)
    assert loss.item() == 0.0
    loss.backward()
    assert (logits.grad == 0).all()


def test_mean_cross_entropy_divides_by_the_kept_targets():
    logits = mt.randn(4, 3)
    targets = mt.tensor([2, 1, 0, 0])
    per_row = F.cross_entropy(logits, targets, reduction="none").numpy()
    mean = F.cross_entropy(logits, targets, ignore_index=0).item()
    assert mean == pytest.approx(per_row[:2].mean(), rel=1e-6)


def test_sigmoid_does_not_overflow():
    x = mt.tensor([-1e4, 0.0, 1e4])
    np.testing.assert_allclose(mt.sigmoid(x).numpy(), [0.0, 0.5, 1.0])


def test_cross_entropy_gradient_is_softmax_minus_target_distribution():
    logits = mt.randn(3, 5, dtype="float64", requires_grad=True)
    targets = mt.tensor([4, 0, 2])
    F.cross_entropy(logits, targets, reduction="sum", label_smoothing=0.1).backward()
    q = np.full((3, 5), 0.1 / 5)
    q[np.arange(3), targets.numpy()] += 0.9
    np.testing.assert_allclose(logits.grad, F.softmax(logits).numpy() - q, atol=1e-12)


def test_cross_entropy_over_a_large_vocabulary_matches_the_textbook_formula():
    """70,000 classes, label smoothing: the fused forward (one reused (N, C) array) and the
    in-place backward give the loss and gradient of log-softmax written out in float64."""
    rng = np.random.default_rng(0)
    z = rng.standard_normal((5, 70_000)) * 3
    targets = np.array([0, 69_999, 123, 5, 40_000])
    logits = mt.tensor(z, requires_grad=True)
    loss = F.cross_entropy(logits, mt.tensor(targets), label_smoothing=0.1)
    shifted = z - z.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    want = -(0.9 * log_p[np.arange(5), targets] + 0.1 * log_p.mean(axis=1)).mean()
    assert loss.item() == pytest.approx(want, rel=1e-12)
    loss.backward()
    q = np.full(z.shape, 0.1 / z.shape[1])
    q[np.arange(5), targets] += 0.9
    np.testing.assert_allclose(logits.grad, (np.exp(log_p) - q) / 5, rtol=1e-9, atol=1e-15)
