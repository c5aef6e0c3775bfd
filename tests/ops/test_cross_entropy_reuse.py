"""cross_entropy(reuse_logits=True) gives the same loss and gradients, and overwrites the logits
only where nothing in the graph needs them."""

import numpy as np
import pytest

import minitransformer as mt
import minitransformer.functional as F
from minitransformer.ops.cross_entropy import _may_overwrite

TARGETS = [[1, 0, 2, 4], [0, 3, 3, 1]]


def _run(make_logits, reuse, smoothing=0.1):
    mt.manual_seed(0)
    h = mt.randn(2, 4, 6, dtype="float64", requires_grad=True)
    w = mt.randn(6, 5, dtype="float64", requires_grad=True)
    logits = make_logits(h, w)
    before = logits.numpy().copy()
    loss = F.cross_entropy(logits, mt.tensor(TARGETS), ignore_index=0,
                           label_smoothing=smoothing, reuse_logits=reuse)
    loss.backward()
    return loss.item(), h.grad.copy(), w.grad.copy(), before, logits.numpy()


@pytest.mark.parametrize("make_logits", [
    lambda h, w: h @ w,                                   # MatMul keeps h and w, not its output
    lambda h, w: (h @ w).reshape(8, 5).reshape(2, 4, 5),  # views of the matmul's output
    lambda h, w: (h @ w).exp(),                           # Exp keeps its output for backward
    lambda h, w: ((h @ w) * 2.0).tanh(),
])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_same_loss_and_gradients_as_without_reuse(make_logits, smoothing):
    plain = _run(make_logits, reuse=False, smoothing=smoothing)
    reused = _run(make_logits, reuse=True, smoothing=smoothing)
    assert reused[0] == pytest.approx(plain[0], rel=1e-12)
    np.testing.assert_allclose(reused[1], plain[1], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(reused[2], plain[2], rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(plain[4], plain[3])  # by default the logits are untouched


def test_the_logits_memory_is_reused_when_safe_and_kept_when_not():
    *_, before, after = _run(lambda h, w: h @ w, reuse=True)
    assert not np.array_equal(after, before)  # the matmul's output was the scratch array
    *_, before, after = _run(lambda h, w: (h @ w).exp(), reuse=True)
    np.testing.assert_array_equal(after, before)  # exp's backward needs it: not touched


def test_a_leaf_or_a_view_of_a_saved_array_is_never_overwritten():
    leaf = mt.randn(4, 5, dtype="float64", requires_grad=True)
    kept = leaf.numpy().copy()
    F.cross_entropy(leaf, mt.tensor([1, 2, 3, 4]), reuse_logits=True).backward()
    np.testing.assert_array_equal(leaf.numpy(), kept)
    assert not _may_overwrite(leaf)
    e = (mt.randn(2, 3, dtype="float64", requires_grad=True)).exp()  # Exp saved e's array
    assert not _may_overwrite(e.reshape(6)) and not _may_overwrite(e[0])
    with mt.no_grad():
        assert not _may_overwrite(mt.randn(2, 3) @ mt.randn(3, 4))  # no graph: not ours
    assert _may_overwrite(mt.randn(2, 3, requires_grad=True) @ mt.randn(3, 4))
