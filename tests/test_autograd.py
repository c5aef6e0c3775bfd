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


class _Fresh(Function):
    """y = 2 x, whose backward returns a new array and remembers it (to check the engine keeps
    it as the leaf's gradient without a copy)."""

    made = []

    @staticmethod
    def forward(ctx, x):
        return 2 * x

    @staticmethod
    def backward(ctx, grad_out):
        grad = 2 * grad_out
        _Fresh.made.append(grad)
        return (grad,)


class _PassThrough(Function):
    """y = x + z whose backward hands the same grad_out to both inputs (as Add does)."""

    @staticmethod
    def forward(ctx, x, z):
        return x + z

    @staticmethod
    def backward(ctx, grad_out):
        return grad_out, grad_out


class _ReturnsSaved(Function):
    """y = x · c for a constant array c; backward returns g · c, or c itself when g is all ones
    (correct then, and an array the op saved: the engine must not hand it to a leaf)."""

    @staticmethod
    def forward(ctx, x, c):
        ctx.save_for_backward(c)
        return x * c

    @staticmethod
    def backward(ctx, grad_out):
        (c,) = ctx.saved
        return (c if np.all(grad_out == 1) else grad_out * c), None


def test_a_fresh_leaf_gradient_is_stored_without_a_copy():
    _Fresh.made.clear()
    x = mt.randn(3, requires_grad=True)
    _Fresh.apply(x).sum().backward()
    assert x.grad is _Fresh.made[-1]


def test_one_gradient_array_handed_to_two_leaves_gives_each_its_own_copy():
    """The pass-through op returns _Fresh's new array twice: only one leaf may keep it."""
    a, b = mt.randn(3, requires_grad=True), mt.randn(3, requires_grad=True)
    _Fresh.apply(_PassThrough.apply(a, b)).sum().backward()
    assert not np.shares_memory(a.grad, b.grad)
    a.grad += 100  # what an optimizer or clip_grad_norm may do in place
    np.testing.assert_allclose(b.grad, np.full(3, 2.0))
    np.testing.assert_allclose(a.grad, np.full(3, 102.0))


def test_gradients_added_in_place_leave_the_pass_through_arrays_intact():
    """x feeds a pass-through op twice and a fresh one; the engine's in-place sums must not write
    into the grad_out that both pass-through inputs share."""
    x = mt.randn(4, requires_grad=True)
    h = _Fresh.apply(x)  # non-leaf, used three times below
    y = _PassThrough.apply(h, h) + _Fresh.apply(h)
    g = np.arange(4.0, dtype=np.float32)
    y.backward(g)
    np.testing.assert_allclose(g, np.arange(4.0))
    np.testing.assert_allclose(x.grad, 2 * (2 * g + 2 * g))


def test_an_explicit_grad_is_never_aliased_or_changed():
    x = mt.randn(3, requires_grad=True)
    g = np.ones(3, dtype=np.float32)
    (x + 0.0).backward(g)
    assert not np.shares_memory(x.grad, g)
    x.grad += 1
    np.testing.assert_allclose(g, np.ones(3))


def test_an_array_the_op_saved_is_copied_before_it_becomes_a_gradient():
    c = np.full(3, 3.0, dtype=np.float32)
    x = mt.randn(3, requires_grad=True)
    _ReturnsSaved.apply(x, c).backward(np.ones(3, dtype=np.float32))
    assert not np.shares_memory(x.grad, c)
    x.grad *= 0
    np.testing.assert_allclose(c, np.full(3, 3.0))


def test_saved_bytes_counts_each_buffer_once_and_leaves_out_the_leaves():
    x = mt.tensor(np.ones((3, 4)), requires_grad=True)  # float64: 96 bytes
    assert mt.autograd.saved_bytes(x * 2.0) == 0  # Mul keeps only x, a leaf
    y = x.exp()  # Exp keeps its output: 96 bytes
    z = y * y  # Mul keeps y twice: the same buffer
    assert mt.autograd.saved_bytes(z) == 96
    views = y.reshape(12) * y.reshape(4, 3).reshape(12)  # two views of y's buffer
    assert mt.autograd.saved_bytes(views) == 96
    assert mt.autograd.saved_bytes(z, by_function=True) == {"Exp": 96}
    z.sum().backward()
    assert mt.autograd.saved_bytes(z) == 0  # backward freed what the graph kept
