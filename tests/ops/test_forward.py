"""Every op's forward against plain NumPy (float64), one or more examples per Function."""

import math

import numpy as np
import pytest

import minitransformer as mt
import minitransformer.functional as F
from minitransformer.gradcheck_cases import function_classes
from minitransformer.nn.recompute import Recompute
from minitransformer.ops import (
    broadcast,
    cross_entropy,
    dropout,
    elementwise,
    embedding,
    layer_norm,
    linear,
    matmul,
    reduction,
    shape,
    softmax,
    unary,
)

rng = np.random.default_rng(0)
A = rng.standard_normal((2, 3))
B = rng.standard_normal(3)
P = rng.uniform(0.5, 2.0, (2, 3))
X3 = rng.standard_normal((2, 3, 4))


def np_softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def np_scaled_masked_softmax(x, scale, mask):
    return np_softmax(np.where(mask, x * scale, -np.inf))


CAUSAL = np.tril(np.ones((3, 4), bool), k=1)


def np_gelu_tanh(x):
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))


def np_layer_norm(x, w, b, eps=1e-5):
    return (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + eps) * w + b


def np_cross_entropy(z, t, ignore=None, eps=0.0):
    log_p = np.log(np_softmax(z))
    q = np.full_like(z, eps / z.shape[-1])
    q[np.arange(len(t)), t] += 1 - eps
    losses = -(q * log_p).sum(-1)
    keep = np.ones(len(t), bool) if ignore is None else t != ignore
    return losses[keep].mean()


# Function -> [(minitransformer function, NumPy function, inputs)]
FORWARD = {
    elementwise.Add: [(mt.add, np.add, [A, B])],
    elementwise.Sub: [(mt.sub, np.subtract, [A, B])],
    elementwise.Mul: [(mt.mul, np.multiply, [A, B])],
    elementwise.Div: [(mt.div, np.divide, [A, P])],
    elementwise.Neg: [(mt.neg, np.negative, [A])],
    elementwise.Pow: [(mt.pow, np.power, [P, A]), (lambda x: x**3, lambda x: x**3, [A]),
                      (lambda x: 2.0**x, lambda x: 2.0**x, [A])],
    elementwise.Abs: [(mt.abs, np.abs, [A])],
    elementwise.Maximum: [(mt.maximum, np.maximum, [A, B])],
    elementwise.Minimum: [(mt.minimum, np.minimum, [A, B])],
    elementwise.Clip: [(lambda x: mt.clip(x, -0.5, 0.4), lambda x: np.clip(x, -0.5, 0.4), [A])],
    elementwise.Where: [(lambda a, b: mt.where(mt.tensor(A > 0), a, b),
                         lambda a, b: np.where(A > 0, a, b), [A, B])],
    elementwise.MaskedFill: [(lambda x: x.masked_fill(mt.tensor(B > 0), -7.0),
                              lambda x: np.where(B > 0, -7.0, x), [A])],
    broadcast.BroadcastTo: [(lambda x: mt.broadcast_to(x, (4, 2, 3)),
                             lambda x: np.broadcast_to(x, (4, 2, 3)), [A])],
    broadcast.Cast: [(lambda x: x.astype("float32"), lambda x: x.astype(np.float32), [A])],
    unary.Exp: [(mt.exp, np.exp, [A])],
    unary.Log: [(mt.log, np.log, [P])],
    unary.Sqrt: [(mt.sqrt, np.sqrt, [P])],
    unary.Tanh: [(mt.tanh, np.tanh, [A])],
    unary.Sigmoid: [(mt.sigmoid, lambda x: 1 / (1 + np.exp(-x)), [A * 5])],
    unary.ReLU: [(mt.relu, lambda x: np.maximum(x, 0), [A])],
    unary.GELU: [(mt.gelu, np_gelu_tanh, [A * 3])],
    reduction.Sum: [(lambda x: x.sum(axis=(0, 2), keepdims=True),
                     lambda x: x.sum(axis=(0, 2), keepdims=True), [X3]),
                    (lambda x: x.mean(-1), lambda x: x.mean(-1), [X3]),
                    (lambda x: x.var(axis=1, correction=1), lambda x: x.var(axis=1, ddof=1), [X3]),
                    (lambda x: x.std(), lambda x: x.std(), [X3])],
    reduction.Max: [(lambda x: x.max(axis=-1), lambda x: x.max(axis=-1), [X3])],
    reduction.Min: [(lambda x: x.min(axis=(0, 1)), lambda x: x.min(axis=(0, 1)), [X3])],
    reduction.LogSumExp: [(lambda x: x.logsumexp(axis=1),
                           lambda x: np.log(np.exp(x).sum(axis=1)), [X3])],
    shape.Reshape: [(lambda x: x.reshape(4, -1), lambda x: x.reshape(4, -1), [X3]),
                    (lambda x: x.unsqueeze(1).squeeze(), lambda x: x, [X3])],
    shape.Permute: [(lambda x: x.permute(2, 0, 1), lambda x: x.transpose(2, 0, 1), [X3]),
                    (lambda x: x.T, lambda x: x.T, [X3]),
                    (lambda x: x.swapaxes(0, -1), lambda x: x.swapaxes(0, -1), [X3])],
    shape.GetItem: [(lambda x: x[1, None, ..., ::2], lambda x: x[1, None, ..., ::2], [X3]),
                    (lambda x: x[[0, 1, 0]], lambda x: x[[0, 1, 0]], [X3]),
                    (lambda x: x[X3 > 0], lambda x: x[X3 > 0], [X3]),
                    (lambda x: x.split([1, 3], axis=2)[1], lambda x: x[:, :, 1:3], [X3])],
    shape.Concat: [(lambda a, b: mt.concat([a, b], axis=0),
                    lambda a, b: np.concatenate([a, b], axis=0), [A, A * 2])],
    shape.Stack: [(lambda a, b: mt.stack([a, b], axis=1),
                   lambda a, b: np.stack([a, b], axis=1), [A, A * 2])],
    shape.Pad: [(lambda x: x.pad(((0, 1), (2, 0)), 5.0),
                 lambda x: np.pad(x, ((0, 1), (2, 0)), constant_values=5.0), [A])],
    matmul.MatMul: [(mt.matmul, np.matmul, [X3, rng.standard_normal((4, 5))]),
                    (mt.matmul, np.matmul, [rng.standard_normal((2, 1, 3, 4)),
                                            rng.standard_normal((5, 4, 2))]),
                    (mt.matmul, np.matmul, [B, rng.standard_normal((3, 2))]),
                    (mt.matmul, np.matmul, [A, B])],
    softmax.Softmax: [(lambda x: F.softmax(x, 1), lambda x: np_softmax(x, 1), [X3])],
    softmax.LogSoftmax: [(F.log_softmax, lambda x: np.log(np_softmax(x)), [X3])],
    softmax.ScaledMaskedSoftmax: [
        (lambda x: softmax.scaled_masked_softmax(x, 0.5, CAUSAL),
         lambda x: np_scaled_masked_softmax(x, 0.5, CAUSAL), [X3 * 3]),
        (lambda x: softmax.scaled_masked_softmax(x, 2.0),
         lambda x: np_scaled_masked_softmax(x, 2.0, True), [X3]),
        (lambda x: softmax.scaled_masked_softmax(x * 1.0, 0.5, CAUSAL, in_place=True),
         lambda x: np_scaled_masked_softmax(x, 0.5, CAUSAL), [X3]),
    ],
    cross_entropy.CrossEntropy: [
        (lambda z: F.cross_entropy(z, mt.tensor([1, 0, 3])),
         lambda z: np_cross_entropy(z, np.array([1, 0, 3])), [rng.standard_normal((3, 4))]),
        (lambda z: F.cross_entropy(z, mt.tensor([1, 0, 3]), ignore_index=0, label_smoothing=0.1),
         lambda z: np_cross_entropy(z, np.array([1, 0, 3]), 0, 0.1),
         [rng.standard_normal((3, 4))]),
    ],
    linear.Linear: [(linear.linear, lambda x, w, b: x @ w + b,
                     [X3, rng.standard_normal((4, 3)), B])],
    linear.LinearReLU: [(linear.linear_relu, lambda x, w, b: np.maximum(x @ w + b, 0),
                         [X3, rng.standard_normal((4, 3)), B])],
    layer_norm.LayerNorm: [(F.layer_norm, np_layer_norm, [X3, B.repeat(2)[:4], P.ravel()[:4]])],
    embedding.Embedding: [(lambda w: F.embedding(mt.tensor([[2, 0], [2, 1]]), w),
                           lambda w: w[np.array([[2, 0], [2, 1]])], [A.T])],
}


def cases():
    for cls, examples in FORWARD.items():
        for i, example in enumerate(examples):
            yield pytest.param(*example, id=f"{cls.__name__}-{i}")


@pytest.mark.parametrize("ours, reference, inputs", list(cases()))
def test_forward_matches_numpy(ours, reference, inputs):
    got = ours(*[mt.tensor(x) for x in inputs])
    want = reference(*inputs)
    assert got.shape == np.shape(want)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-6, atol=1e-12)


def test_every_function_has_a_forward_check():
    covered = set(FORWARD) | {dropout.Dropout}  # dropout is random: checked in test_dropout below
    covered.add(Recompute)  # a layer's own forward: tests/nn/test_recompute.py
    missing = sorted(c.__name__ for c in function_classes() if c not in covered)
    assert not missing, f"Functions without a forward check against NumPy: {missing}"


def test_dropout_zeroes_about_p_and_scales_the_rest():
    x = mt.ones(200, 100)
    y = F.dropout(x, p=0.3).numpy()
    assert set(np.unique(y)) <= {0.0, np.float32(1 / 0.7)}
    assert abs((y == 0).mean() - 0.3) < 0.02
    assert abs(y.mean() - 1.0) < 0.03


def test_dropout_is_the_identity_at_evaluation_and_p_one_zeroes_everything():
    x = mt.randn(4, 5)
    assert F.dropout(x, 0.5, training=False) is x
    assert F.dropout(x, 0.0) is x
    assert not F.dropout(x, 1.0).numpy().any()


def test_dropout_follows_the_seed():
    x = mt.ones(10, 10)
    mt.manual_seed(3)
    first = F.dropout(x, 0.5).numpy()
    mt.manual_seed(3)
    np.testing.assert_array_equal(first, F.dropout(x, 0.5).numpy())


def test_embedding_padding_row_gets_no_gradient():
    weight = mt.randn(4, 3, requires_grad=True)
    F.embedding(mt.tensor([[0, 1, 0]]), weight, padding_idx=0).sum().backward()
    np.testing.assert_array_equal(weight.grad[0], 0.0)
    np.testing.assert_array_equal(weight.grad[1], 1.0)


def test_max_ties_share_the_gradient_equally():
    x = mt.tensor([[1.0, 3.0, 3.0], [2.0, 0.0, 2.0]], requires_grad=True)
    x.max(axis=1).sum().backward()
    np.testing.assert_allclose(x.grad, [[0, 0.5, 0.5], [0.5, 0, 0.5]])


def test_maximum_ties_split_the_gradient():
    a = mt.tensor([1.0, 2.0], requires_grad=True)
    b = mt.tensor([1.0, 3.0], requires_grad=True)
    mt.maximum(a, b).sum().backward()
    np.testing.assert_allclose(a.grad, [0.5, 0.0])
    np.testing.assert_allclose(b.grad, [0.5, 1.0])


def test_getitem_repeated_indices_accumulate_in_backward():
    x = mt.zeros(4, requires_grad=True)
    x[mt.tensor([1, 1, 3, 1])].sum().backward()
    np.testing.assert_array_equal(x.grad, [0, 3, 0, 1])


def test_linear_activation_is_linear_relu_or_gelu_of_linear_and_names_a_wrong_activation():
    x, w, b = (mt.tensor(rng.standard_normal(shape)) for shape in ((2, 3, 4), (4, 5), (5,)))
    np.testing.assert_array_equal(linear.linear_activation(x, w, b, "relu").numpy(),
                                  linear.linear_relu(x, w, b).numpy())
    np.testing.assert_allclose(linear.linear_activation(x, w, b, "gelu").numpy(),
                               F.gelu(linear.linear(x, w, b)).numpy(), rtol=1e-12)
    with pytest.raises(ValueError, match="linear_activation: activation 'tanh' is not"):
        linear.linear_activation(x, w, b, "tanh")
