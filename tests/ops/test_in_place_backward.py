"""Backward passes that work in place (on an engine-owned grad_out, or on the op's own saved
arrays at the last backward) give exactly the gradients of the paths that make new arrays."""

import numpy as np
import pytest

import minitransformer as mt
import minitransformer.functional as F
from minitransformer.autograd import Context, Function
from minitransformer.ops.layer_norm import layer_norm
from minitransformer.ops.linear import linear, linear_relu
from minitransformer.ops.softmax import scaled_masked_softmax

CAUSAL = mt.tensor(np.tril(np.ones((4, 4), bool)))

OPS = {
    "relu": (lambda x: mt.relu(x), (3, 4)),
    "softmax last axis": (lambda x: F.softmax(x, axis=-1), (2, 3, 4)),
    "softmax axis 0": (lambda x: F.softmax(x, axis=0), (3, 4)),
    "scaled masked softmax": (lambda x: scaled_masked_softmax(x, 0.5, CAUSAL), (2, 4, 4)),
    "layer_norm": (lambda x: layer_norm(x, mt.tensor(np.linspace(0.5, 1.5, 4)),
                                        mt.tensor(np.linspace(-1, 1, 4))), (2, 3, 4)),
    "layer_norm without weight and bias": (lambda x: layer_norm(x), (2, 3, 4)),
    "linear": (lambda x: linear(x, mt.tensor(np.ones((4, 2)) / 3), mt.tensor([0.5, -0.5])),
               (2, 3, 4)),
    "linear_relu": (lambda x: linear_relu(x, mt.tensor(np.linspace(-1, 1, 8).reshape(4, 2)),
                                          mt.tensor([0.1, -0.1])), (2, 3, 4)),
    "cross_entropy with smoothing": (
        lambda x: F.cross_entropy(x, mt.tensor([[0, 3, 1], [2, 2, 0]]), label_smoothing=0.1,
                                  reduction="none"), (2, 3, 4)),
}


def _input(shape, seed=0):
    data = np.random.default_rng(seed).standard_normal(shape)
    return mt.tensor(data, requires_grad=True)


@pytest.mark.parametrize("name", sorted(OPS))
def test_owned_and_borrowed_grad_out_give_the_same_gradient(name):
    op, shape = OPS[name]
    g = np.random.default_rng(1).standard_normal(op(_input(shape)).shape)
    # borrowed: the caller's array arrives as grad_out (the op must not write into it), and the
    # graph is retained (the op must not write into what it saved) ...
    x = _input(shape)
    out = op(x)
    out.backward(g, retain_graph=True)
    borrowed = x.grad.copy()
    np.testing.assert_array_equal(g, np.random.default_rng(1).standard_normal(g.shape))
    # ... so a second backward through the same graph gives the same again
    x.grad = None
    out.backward(g)
    np.testing.assert_allclose(x.grad, borrowed, rtol=1e-12, atol=1e-12)
    # owned: Mul's backward makes g · 1.0 as a new array, which the engine hands on as owned;
    # the graph is freed, so the op may also consume what it saved
    x = _input(shape)
    (op(x) * 1.0).backward(g)
    np.testing.assert_allclose(x.grad, borrowed, rtol=1e-12, atol=1e-12)


class _Spy(Function):
    """y = x; records whether ctx.writable gave grad_out itself and whether ctx.writable_saved
    gave the saved array itself (a scratch array forward made, and one it returned)."""

    flags = []

    @staticmethod
    def forward(ctx, x):
        out = x.copy()
        ctx.save_for_backward(x * 1, out)  # a scratch array of its own, and its output
        return out

    @staticmethod
    def backward(ctx, grad_out):
        scratch, out = ctx.saved
        _Spy.flags.append((ctx.writable(grad_out) is grad_out,
                           ctx.writable_saved(scratch) is scratch,
                           ctx.writable_saved(out) is out))
        return (grad_out,)


def test_writable_gives_the_array_itself_only_when_nothing_else_can_see_the_change():
    _Spy.flags.clear()
    x = mt.randn(3, requires_grad=True)
    y = _Spy.apply(x)
    y.backward(np.ones(3, dtype=np.float32), retain_graph=True)  # the caller's array; kept
    (_Spy.apply(x) * 2.0).backward(np.ones(3, dtype=np.float32))  # Mul made a new array
    # the output itself is never writable: the user may hold the tensor
    assert _Spy.flags == [(False, False, False), (True, True, False)]


def test_a_gradient_passed_through_unchanged_is_not_owned():
    _Spy.flags.clear()
    x = mt.randn(3, requires_grad=True)
    (_Spy.apply(x) + 1.0).backward(np.ones(3, dtype=np.float32))  # Add passes grad_out on
    assert _Spy.flags == [(False, True, False)]


def test_called_by_hand_writable_always_copies():
    ctx = Context(_Spy, (), ())
    array = np.ones(3)
    assert ctx.writable(array) is not array and ctx.writable_saved(array) is not array
