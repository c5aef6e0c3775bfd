"""float16 inputs: the fused ops (softmax, log-softmax, attention's softmax, layer norm,
cross-entropy) compute their statistics in float32, return float16 (the loss float32) and give
float16 gradients; float32 and float64 inputs take the path they always took."""

import numpy as np
import pytest

import minitransformer as mt
import minitransformer.functional as F
from minitransformer.ops.softmax import scaled_masked_softmax
from minitransformer.ops.widen import narrow, widen


def pair(shape, scale=1.0, seed=0):
    """The same values as a float16 and a float32 leaf (float16-representable, so both ops see
    identical inputs)."""
    values = (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float16)
    return (mt.tensor(values, requires_grad=True),
            mt.tensor(values.astype(np.float32), requires_grad=True))


def run(op, x, upstream):
    out = op(x)
    (out.astype("float32") * mt.tensor(upstream)).sum().backward()
    return out


OPS = {
    "softmax": lambda x: F.softmax(x, axis=-1),
    "softmax_axis0": lambda x: F.softmax(x, axis=0),
    "log_softmax": lambda x: F.log_softmax(x, axis=-1),
    "scaled_masked_softmax": lambda x: scaled_masked_softmax(
        x, 0.5, mask=mt.tensor(np.arange(x.shape[-1]) % 3 != 1)),
    "layer_norm": lambda x: F.layer_norm(x),
}


@pytest.mark.parametrize("name", sorted(OPS))
def test_a_float16_input_gives_float16_results_close_to_float32(name):
    half, single = pair((6, 9))
    upstream = np.random.default_rng(1).standard_normal((6, 9)).astype(np.float32)
    out16, out32 = run(OPS[name], half, upstream), run(OPS[name], single, upstream)
    assert out16.dtype == np.float16 and half.grad.dtype == np.float16
    np.testing.assert_allclose(out16.numpy(), out32.numpy(), rtol=2e-3, atol=2e-3)
    np.testing.assert_allclose(half.grad, single.grad, rtol=1e-2, atol=5e-3)


def test_layer_norm_weights_get_float16_gradients():
    half, single = pair((5, 8), scale=3.0)
    weights = {}
    for x, dtype in ((half, np.float16), (single, np.float32)):
        weight = mt.tensor(np.linspace(0.5, 2.0, 8).astype(dtype), requires_grad=True)
        bias = mt.tensor(np.linspace(-1.0, 1.0, 8).astype(dtype), requires_grad=True)
        F.layer_norm(x, weight, bias).astype("float32").sum().backward()
        weights[dtype] = (weight.grad, bias.grad)
    for g16, g32 in zip(weights[np.float16], weights[np.float32]):
        assert g16.dtype == np.float16
        np.testing.assert_allclose(g16, g32, rtol=2e-3, atol=2e-3)


def test_layer_norm_of_values_far_apart_does_not_overflow_float16():
    half, single = pair((4, 64), scale=1000.0)  # (x - μ)² reaches 10^7, past float16's 65504
    with np.errstate(over="ignore"):
        naive = ((half.data - half.data.mean(axis=-1, keepdims=True)) ** 2).mean(axis=-1)
    assert np.isinf(naive).any()  # what float16 statistics would give
    out16, out32 = F.layer_norm(half), F.layer_norm(single)
    assert np.isfinite(out16.numpy()).all()
    np.testing.assert_allclose(out16.numpy(), out32.numpy(), rtol=2e-3, atol=2e-3)


def test_softmax_over_many_keys_sums_to_one_in_float16():
    scores = mt.tensor(np.zeros((2, 4096), np.float16))  # each weight 1/4096
    weights = F.softmax(scores).numpy().astype(np.float64)
    np.testing.assert_allclose(weights.sum(axis=-1), 1.0, rtol=1e-3)


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_cross_entropy_of_float16_logits_is_a_float32_loss(smoothing):
    half, single = pair((32, 5000), scale=4.0)  # a vocabulary of 5000: a sum float16 loses
    targets = mt.tensor(np.random.default_rng(2).integers(0, 5000, 32))
    loss16 = F.cross_entropy(half, targets, label_smoothing=smoothing, reuse_logits=True)
    loss32 = F.cross_entropy(single, targets, label_smoothing=smoothing)
    assert loss16.dtype == np.float32
    assert loss16.item() == pytest.approx(loss32.item(), rel=1e-6)  # the same inputs, in float32
    (loss16 * 1024.0).backward()
    (loss32 * 1024.0).backward()
    assert half.grad.dtype == np.float16
    np.testing.assert_allclose(half.grad, single.grad, rtol=2e-3, atol=1e-4)


def test_dropout_draws_for_float16_activations():
    x = mt.tensor(np.ones((64, 64), np.float16), requires_grad=True)
    y = F.dropout(x, 0.25)
    assert y.dtype == np.float16 and set(np.unique(y.numpy())) == {0.0, np.float16(1 / 0.75)}
    y.sum().backward()
    assert x.grad.dtype == np.float16


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float32_and_float64_arrays_pass_through_untouched(dtype):
    array = np.ones(3, dtype)
    assert widen(array) is array and narrow(array, dtype) is array
    assert widen(None) is None and narrow(None, dtype) is None
    assert widen(np.ones(3, np.float16)).dtype == np.float32
