"""minitransformer/functional.py: scaled dot-product attention and the masks (the other names of
``F`` are the ops' own functions, tested in tests/ops/ by property across all op files)."""

import math

import numpy as np
import pytest

import minitransformer as mt
import minitransformer.functional as F


def numpy_attention(q, k, v, mask=None):
    scores = q @ np.swapaxes(k, -1, -2) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = np.where(mask, scores, -np.inf)
    e = np.exp(scores - scores.max(-1, keepdims=True))
    weights = e / e.sum(-1, keepdims=True)
    return weights @ v, weights


def test_attention_matches_the_formula():
    q, k, v = (np.random.default_rng(i).standard_normal((2, 3, s, 4)) for i, s in
               enumerate((5, 6, 6)))
    mask = np.random.default_rng(9).random((2, 1, 5, 6)) > 0.3
    mask[..., 0] = True
    out, weights = F.scaled_dot_product_attention(mt.tensor(q), mt.tensor(k), mt.tensor(v),
                                                  mt.tensor(mask))
    want_out, want_weights = numpy_attention(q, k, v, mask)
    np.testing.assert_allclose(out.numpy(), want_out, rtol=1e-10)
    np.testing.assert_allclose(weights.numpy(), want_weights, rtol=1e-10, atol=1e-15)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_fully_masked_query_gets_zero_weights_and_zero_output(dtype):
    q = mt.randn(1, 2, 3, 4, dtype=dtype, requires_grad=True)
    k = mt.randn(1, 2, 3, 4, dtype=dtype, requires_grad=True)
    v = mt.randn(1, 2, 3, 4, dtype=dtype, requires_grad=True)
    mask = mt.tensor([[True, True, True], [False, False, False], [True, False, False]])
    out, weights = F.scaled_dot_product_attention(q, k, v, mask)
    assert np.isfinite(out.numpy()).all() and np.isfinite(weights.numpy()).all()
    assert (weights.numpy()[..., 1, :] == 0).all() and (out.numpy()[..., 1, :] == 0).all()
    out.sum().backward()
    for t in (q, k, v):
        assert np.isfinite(t.grad).all()


def test_causal_mask_and_padding_mask():
    np.testing.assert_array_equal(F.causal_mask(3).numpy(), np.tril(np.ones((3, 3), bool)))
    mask = F.padding_mask(mt.tensor([[5, 6, 0], [7, 0, 0]]), pad_id=0)
    assert mask.shape == (2, 1, 1, 3)
    np.testing.assert_array_equal(mask.numpy()[:, 0, 0], [[1, 1, 0], [1, 0, 0]])
    combined = F.causal_mask(3) & mask
    assert combined.shape == (2, 1, 3, 3) and not combined.numpy()[0, 0, 2, 2]
    with pytest.raises(mt.ShapeError, match="padding_mask: ids must be \\(B, S\\)"):
        F.padding_mask(mt.tensor([1, 2]), 0)


def test_attention_refuses_masks_that_do_not_fit():
    q = mt.randn(2, 3, 4)
    with pytest.raises(mt.ShapeError, match="mask \\(3, 5\\) does not broadcast to the scores"):
        F.scaled_dot_product_attention(q, q, q, mt.ones(3, 5, dtype="bool"))
    with pytest.raises(mt.DTypeError, match="a mask must be bool"):
        F.scaled_dot_product_attention(q, q, q, mt.ones(3, 3))
    with pytest.raises(mt.ShapeError, match="do not fit"):
        F.scaled_dot_product_attention(q, mt.randn(2, 3, 5), q)


def test_as_mask_turns_a_bool_array_into_a_bool_tensor_and_refuses_other_dtypes():
    mask = F.as_mask(np.array([[1, 0], [1, 1]], dtype=bool))
    assert isinstance(mask, mt.Tensor) and mask.dtype == np.bool_
    assert F.as_mask(mask) is mask
    with pytest.raises(mt.DTypeError, match="attend: a mask must be bool .* got float32"):
        F.as_mask(mt.ones(2, 2), "attend")


def test_the_other_functional_names_are_the_ops_own_functions():
    from minitransformer.ops import cross_entropy, dropout, embedding, layer_norm, softmax, unary

    for name, module in [("cross_entropy", cross_entropy), ("dropout", dropout),
                         ("embedding", embedding), ("layer_norm", layer_norm),
                         ("softmax", softmax), ("log_softmax", softmax), ("gelu", unary),
                         ("relu", unary), ("sigmoid", unary), ("tanh", unary)]:
        assert getattr(F, name) is getattr(module, name), name
