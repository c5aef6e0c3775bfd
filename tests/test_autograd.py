"""The engine: topological order, accumulation, freeing, and the checks it makes on every op."""

import numpy as np
import pytest

import minitransformer as mt
from minitransformer.autograd import Function
from minitransformer.errors import DTypeError, GraphFreedError, ShapeError


def test_a_chain_of_ten_thousand_ops_backpropagates_without_recursion_error():
    x = mt.tensor(1.0, requires_grad=True)
    y = x
    for _ in range(10_000):
        y = y * 1.0001
    y.backward()
    assert x.grad == pytest.approx(1.0001**10_000, rel=1e-3)


def test_gradients_of_a_tensor_used_twice_add_up():
    x = mt.tensor([2.0, 3.0], requires_grad=True)
    (x * x + x).sum().backward()  # d/dx (x² + x) = 2x + 1
    np.testing.assert_allclose(x.grad, [5.0, 7.0])


def test_diamond_graph_visits_the_shared_node_once():
    x = mt.tensor(3.0, requires_grad=True)
    shared = x * 2.0
    (shared * shared + shared).backward()  # d/dx (4x² + 2x) = 8x + 2
    assert x.grad == pytest.approx(26.0)


def test_leaf_gradients_accumulate_across_backward_calls():
    x = mt.tensor([1.0, 2.0], requires_grad=True)
    (x * 3.0).sum().backward()
    (x * 3.0).sum().backward()
    np.testing.assert_allclose(x.grad, [6.0, 6.0])
    x.zero_grad()
    assert x.grad is None


def test_intermediate_gradients_are_freed_unless_retained():
    x = mt.tensor([1.0, 2.0], requires_grad=True)
    hidden = x * 2.0
    kept = (x * 5.0).retain_grad()
    (hidden.sum() + kept.sum()).backward()
    assert hidden.grad is None
    np.testing.assert_allclose(kept.grad, [1.0, 1.0])


def test_second_backward_through_a_freed_graph_raises():
    x = mt.tensor([1.0, 2.0], requires_grad=True)
    loss = (x.exp() * 2.0).sum()
    loss.backward()
    with pytest.raises(GraphFreedError, match="retain_graph=True"):
        loss.backward()


def test_retain_graph_allows_a_second_backward():
    x = mt.tensor([1.0, 2.0], requires_grad=True)
    loss = (x * x).sum()
    loss.backward(retain_graph=True)
    loss.backward()
    np.testing.assert_allclose(x.grad, [4.0, 8.0])


def test_backward_on_a_non_scalar_without_grad_raises():
    x = mt.ones(2, 3, requires_grad=True)
    with pytest.raises(ShapeError, match=r"shape \(2, 3\).*one-element"):
        (x * 2.0).backward()


def test_backward_with_an_explicit_grad_of_the_right_shape():
    x = mt.ones(2, 3, requires_grad=True)
    (x * 2.0).backward(mt.full((2, 3), 0.5))
    np.testing.assert_allclose(x.grad, np.ones((2, 3)))


def test_backward_with_a_grad_of_the_wrong_shape_raises():
    x = mt.ones(2, 3, requires_grad=True)
    with pytest.raises(ShapeError, match=r"grad has shape \(3,\)"):
        (x * 2.0).backward(mt.ones(3))


def test_backward_on_a_tensor_without_grad_raises():
    with pytest.raises(RuntimeError, match="does not require grad"):
        mt.ones(2).sum().backward()


class _WrongShape(Function):
    @staticmethod
    def forward(ctx, x):
        return x * 2

    @staticmethod
    def backward(ctx, grad_out):
        return (grad_out.sum(axis=0),)


class _WrongDtype(Function):
    @staticmethod
    def forward(ctx, x):
        return x * 2

    @staticmethod
    def backward(ctx, grad_out):
        return (grad_out.astype("float64"),)


def test_engine_names_the_op_whose_gradient_has_the_wrong_shape():
    x = mt.ones(2, 3, requires_grad=True)
    with pytest.raises(ShapeError, match=r"_WrongShape.backward returned .* shape \(3,\)"):
        _WrongShape.apply(x).sum().backward()


def test_engine_names_the_op_whose_gradient_has_the_wrong_dtype():
    x = mt.ones(2, 3, requires_grad=True)
    with pytest.raises(DTypeError, match=r"_WrongDtype.backward .* dtype float64"):
        _WrongDtype.apply(x).sum().backward()


def test_no_grad_records_nothing_and_restores_the_flag():
    x = mt.ones(3, requires_grad=True)
    with mt.no_grad():
        y = x * 2.0
        with mt.no_grad():
            pass
        z = x * 3.0
    assert not y.requires_grad and y.creator is None and not z.requires_grad
    assert (x * 2.0).requires_grad


def test_no_grad_works_as_a_decorator():
    @mt.no_grad()
    def evaluate(t):
        return t * 2.0

    assert not evaluate(mt.ones(2, requires_grad=True)).requires_grad


def test_ops_on_tensors_without_grad_record_no_graph():
    y = mt.ones(3) * 2.0
    assert y.creator is None and not y.requires_grad


def test_detach_cuts_the_graph():
    x = mt.ones(3, requires_grad=True)
    y = (x * 2.0).detach()
    assert not y.requires_grad and y.is_leaf


def test_integer_outputs_do_not_require_grad():
    x = mt.tensor([1.5, 2.5], requires_grad=True)
    assert not x.astype("int64").requires_grad
