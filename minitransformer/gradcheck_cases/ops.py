"""Gradient-check cases for every primitive op (Function) in ``minitransformer.ops``.

Inputs keep away from the points where a derivative does not exist (relu at 0, abs at 0, ties in
max), because central differences straddling a kink measure neither side.
"""

from minitransformer import backend
from minitransformer.gradcheck_cases import register, sample
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
from minitransformer.tensor import Tensor


def _away_from_zero(*shape, seed=0):
    """Normals pushed at least 0.2 away from 0 (for relu, abs: kinks at 0)."""
    x = sample(*shape, seed=seed)
    return Tensor(x.data + 0.2 * backend.array_module(x.data).sign(x.data))


# ----------------------------------------------------------------------------- elementwise

ew = elementwise

register("add, broadcast (2, 3) + (3,)", [ew.Add, broadcast.BroadcastTo])(
    lambda: (ew.add, [sample(2, 3), sample(3, seed=1)]))
register("sub, broadcast (2, 1, 3) - (4, 1)", [ew.Sub, broadcast.BroadcastTo])(
    lambda: (ew.sub, [sample(2, 1, 3), sample(4, 1, seed=1)]))
register("mul, broadcast (3, 1) * (1, 4)", [ew.Mul])(
    lambda: (ew.mul, [sample(3, 1), sample(1, 4, seed=1)]))
register("mul by a Python number", [ew.Mul])(lambda: (lambda x: x * 2.5, [sample(2, 3)]))
register("div, denominator away from 0", [ew.Div])(
    lambda: (ew.div, [sample(2, 3), sample(2, 3, low=0.5, high=2.0, seed=1)]))
register("div, number / tensor", [ew.Div])(
    lambda: (lambda x: 1.5 / x, [sample(4, low=0.5, high=2.0)]))
register("neg", [ew.Neg])(lambda: (ew.neg, [sample(2, 3)]))
register("pow, tensor ** number", [ew.Pow])(
    lambda: (lambda x: x**3, [sample(2, 3)]))
register("pow, number ** tensor", [ew.Pow])(
    lambda: (lambda x: 2.0**x, [sample(2, 3)]))
register("pow, tensor ** tensor, broadcast", [ew.Pow])(
    lambda: (ew.pow, [sample(2, 3, low=0.5, high=2.0), sample(3, seed=1)]))
register("abs, away from 0", [ew.Abs])(lambda: (ew.abs, [_away_from_zero(2, 3)]))
register("maximum, broadcast, no ties", [ew.Maximum])(
    lambda: (ew.maximum, [sample(2, 3), sample(3, seed=1)]))
register("minimum, with a number", [ew.Minimum])(
    lambda: (lambda x: ew.minimum(x, 0.3), [sample(2, 4)]))
register("clip, values away from the bounds", [ew.Clip])(
    lambda: (lambda x: ew.clip(x, -0.5, 0.5), [Tensor([[-1.0, -0.2, 0.1], [0.3, 0.9, -0.7]],
                                                       dtype="float64")]))
register("where, broadcast condition", [ew.Where])(
    lambda: (lambda a, b: ew.where(Tensor([[True], [False]]), a, b),
             [sample(2, 3), sample(3, seed=1)]))
register("masked_fill with -inf-like value, mask broadcast", [ew.MaskedFill])(
    lambda: (lambda x: ew.masked_fill(x, Tensor([True, False, True]), -1e9), [sample(2, 3)]))
register("cast float64 -> float32 -> float64 (float32 rounding: wider eps)", [broadcast.Cast],
         eps=1e-2, atol=1e-3, rtol=1e-3)(
    lambda: (lambda x: broadcast.cast(broadcast.cast(x, "float32") * 3.0, "float64"),
             [sample(2, 3)]))

# ----------------------------------------------------------------------------- unary

register("exp", [unary.Exp])(lambda: (unary.exp, [sample(2, 3)]))
register("log of positives", [unary.Log])(lambda: (unary.log, [sample(2, 3, low=0.5, high=3)]))
register("sqrt of positives", [unary.Sqrt])(lambda: (unary.sqrt, [sample(2, 3, low=0.5, high=3)]))
register("tanh", [unary.Tanh])(lambda: (unary.tanh, [sample(2, 3)]))
register("sigmoid", [unary.Sigmoid])(lambda: (unary.sigmoid, [sample(2, 3) * 3.0]))
register("relu, away from 0", [unary.ReLU])(lambda: (unary.relu, [_away_from_zero(3, 4)]))
register("gelu", [unary.GELU])(lambda: (unary.gelu, [sample(3, 4) * 2.0]))

# ----------------------------------------------------------------------------- reductions

register("sum over axes (0, 2), keepdims", [reduction.Sum])(
    lambda: (lambda x: reduction.sum(x, (0, 2), keepdims=True), [sample(2, 3, 4)]))
register("sum over everything", [reduction.Sum])(lambda: (reduction.sum, [sample(2, 3)]))
register("mean over axis -1", [reduction.Sum, ew.Div])(
    lambda: (lambda x: reduction.mean(x, -1), [sample(2, 3, 4)]))
register("max over axis 1", [reduction.Max])(
    lambda: (lambda x: reduction.max(x, 1), [sample(3, 5)]))
register("min over everything", [reduction.Min])(lambda: (reduction.min, [sample(3, 4)]))
register("var with correction 1 over axis 0", [reduction.Sum])(
    lambda: (lambda x: reduction.var(x, 0, correction=1), [sample(4, 3)]))
register("std over axis -1, keepdims", [unary.Sqrt])(
    lambda: (lambda x: reduction.std(x, -1, keepdims=True), [sample(3, 5)]))
register("logsumexp over axis -1", [reduction.LogSumExp])(
    lambda: (lambda x: reduction.logsumexp(x, -1), [sample(3, 5) * 3.0]))

# ----------------------------------------------------------------------------- shape

register("reshape (2, 3, 4) -> (6, -1)", [shape.Reshape])(
    lambda: (lambda x: shape.reshape(x, 6, -1), [sample(2, 3, 4)]))
register("squeeze and unsqueeze", [shape.Reshape])(
    lambda: (lambda x: shape.unsqueeze(shape.squeeze(x, 1), 0), [sample(2, 1, 3)]))
register("permute (2, 0, 1)", [shape.Permute])(
    lambda: (lambda x: shape.permute(x, 2, 0, 1), [sample(2, 3, 4)]))
register("swapaxes -1, -2", [shape.Permute])(
    lambda: (lambda x: shape.swapaxes(x, -1, -2), [sample(2, 3, 4)]))
register("getitem: int, slice, None, Ellipsis", [shape.GetItem])(
    lambda: (lambda x: x[1, None, ..., ::2], [sample(3, 4, 5)]))
register("getitem: repeated integer indices", [shape.GetItem])(
    lambda: (lambda x: x[[0, 2, 0, 0], 1:], [sample(3, 4)]))
register("getitem: bool mask", [shape.GetItem])(
    lambda: (lambda x: x[x.data > 0], [sample(3, 4)]))
register("concat along axis 1", [shape.Concat])(
    lambda: (lambda a, b: shape.concat([a, b, a], axis=1), [sample(2, 3), sample(2, 2, seed=1)]))
register("stack along a new axis -1", [shape.Stack])(
    lambda: (lambda a, b: shape.stack([a, b], axis=-1), [sample(2, 3), sample(2, 3, seed=1)]))
register("split into parts", [shape.GetItem])(
    lambda: (lambda x: tuple(shape.split(x, [1, 3], axis=1)), [sample(2, 5)]))
register("pad with a constant", [shape.Pad])(
    lambda: (lambda x: shape.pad(x, ((1, 0), (2, 1)), value=3.0), [sample(2, 3)]))

# ----------------------------------------------------------------------------- matmul

register("matmul (3, 4) @ (4, 2)", [matmul.MatMul])(
    lambda: (matmul.matmul, [sample(3, 4), sample(4, 2, seed=1)]))
register("matmul (2, 3, 4) @ (4, 5): a shared weight", [matmul.MatMul])(
    lambda: (matmul.matmul, [sample(2, 3, 4), sample(4, 5, seed=1)]))
register("matmul (2, 1, 3, 4) @ (3, 4, 2): batch broadcast", [matmul.MatMul])(
    lambda: (matmul.matmul, [sample(2, 1, 3, 4), sample(3, 4, 2, seed=1)]))
register("matmul 1-D rules: (4,) @ (2, 4, 3) and (3, 4) @ (4,)", [matmul.MatMul])(
    lambda: (lambda v, m, w: (matmul.matmul(v, m), matmul.matmul(w, v)),
             [sample(4), sample(2, 4, 3, seed=1), sample(3, 4, seed=2)]))

# ----------------------------------------------------------------------------- fused

register("linear (2, 3, 4) @ (4, 5) + (5,)", [linear.Linear])(
    lambda: (linear.linear, [sample(2, 3, 4), sample(4, 5, seed=1), sample(5, seed=2)]))
register("linear without bias", [linear.Linear])(
    lambda: (linear.linear, [sample(3, 4), sample(4, 2, seed=1)]))
register("linear_relu (2, 3, 4) @ (4, 5) + (5,): some units off", [linear.LinearReLU])(
    lambda: (linear.linear_relu, [sample(2, 3, 4), sample(4, 5, seed=1), sample(5, seed=2)]))
register("linear_relu without bias", [linear.LinearReLU])(
    lambda: (linear.linear_relu, [sample(3, 4), sample(4, 2, seed=1)]))

register("softmax over axis -1", [softmax.Softmax])(
    lambda: (lambda x: softmax.softmax(x, -1), [sample(2, 3, 5) * 2.0]))
register("softmax over axis 0", [softmax.Softmax])(
    lambda: (lambda x: softmax.softmax(x, 0), [sample(4, 3)]))
register("log_softmax over axis -1", [softmax.LogSoftmax])(
    lambda: (lambda x: softmax.log_softmax(x, -1), [sample(3, 5) * 2.0]))
register("scaled_masked_softmax, a causal (T, S) mask", [softmax.ScaledMaskedSoftmax])(
    lambda: (lambda x: softmax.scaled_masked_softmax(
        x, 0.5, Tensor([[True, False, False, False], [True, True, False, False],
                        [True, True, True, False]])), [sample(2, 3, 4) * 2.0]))
register("scaled_masked_softmax, a (B, 1, 1, S) mask hiding every key of one row",
         [softmax.ScaledMaskedSoftmax])(
    lambda: (lambda x: softmax.scaled_masked_softmax(
        x, 0.7, Tensor([[[[True, True, False]]], [[[False, False, False]]]])),
        [sample(2, 2, 3, 3)]))
register("scaled_masked_softmax without a mask", [softmax.ScaledMaskedSoftmax])(
    lambda: (lambda x: softmax.scaled_masked_softmax(x, 2.0), [sample(3, 4)]))
register("scaled_masked_softmax in place on an intermediate", [softmax.ScaledMaskedSoftmax])(
    lambda: (lambda x: softmax.scaled_masked_softmax(
        x * 1.0, 0.5, Tensor([[True, False, False], [True, True, True]]), in_place=True),
        [sample(2, 2, 3)]))


register("cross_entropy (N, C), mean", [cross_entropy.CrossEntropy])(
    lambda: (lambda z: cross_entropy.cross_entropy(z, Tensor([0, 3, 1, 3])), [sample(4, 5)]))
register("cross_entropy (B, T, C), ignore_index, label smoothing", [cross_entropy.CrossEntropy])(
    lambda: (lambda z: cross_entropy.cross_entropy(
        z, Tensor([[1, 0, 2], [0, 0, 3]]), ignore_index=0, label_smoothing=0.1),
        [sample(2, 3, 4)]))
register("cross_entropy, reduction none", [cross_entropy.CrossEntropy])(
    lambda: (lambda z: cross_entropy.cross_entropy(z, Tensor([2, 0, 1]), reduction="none"),
             [sample(3, 4)]))
register("cross_entropy, reduction sum with smoothing", [cross_entropy.CrossEntropy])(
    lambda: (lambda z: cross_entropy.cross_entropy(z, Tensor([2, 0, 1]), reduction="sum",
                                                   label_smoothing=0.2), [sample(3, 4)]))
register("cross_entropy reusing the logits of a (B, T, D) @ (D, C) matmul",
         [cross_entropy.CrossEntropy, matmul.MatMul])(
    lambda: (lambda h, w: cross_entropy.cross_entropy(
        matmul.matmul(h, w), Tensor([[1, 0, 2], [0, 0, 3]]), ignore_index=0,
        label_smoothing=0.1, reuse_logits=True), [sample(2, 3, 4), sample(4, 5, seed=1)]))
register("layer_norm with weight and bias", [layer_norm.LayerNorm])(
    lambda: (layer_norm.layer_norm, [sample(2, 3, 5), sample(5, seed=1), sample(5, seed=2)]))
register("layer_norm without affine", [layer_norm.LayerNorm])(
    lambda: (layer_norm.layer_norm, [sample(4, 6) * 3.0]))
register("embedding with repeated ids", [embedding.Embedding])(
    lambda: (embedding.embedding,
             [Tensor([[1, 3, 1], [0, 2, 1]]), sample(4, 3)]))
register("dropout p=0.5 (mask repeats: the generator is re-seeded)", [dropout.Dropout])(
    lambda: (lambda x: dropout.dropout(x, 0.5, training=True), [sample(4, 5)]))
