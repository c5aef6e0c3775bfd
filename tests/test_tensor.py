"""Tensor creation, attributes, conversion and operators."""

import numpy as np
import pytest

import minitransformer as mt
from minitransformer.errors import DTypeError


def test_tensor_keeps_float_array_dtype_and_copies():
    source = np.arange(6, dtype=np.float64).reshape(2, 3)
    t = mt.tensor(source)
    source[0, 0] = 99.0
    assert t.dtype == np.float64 and t.shape == (2, 3) and t.data[0, 0] == 0.0


def test_python_floats_take_the_default_dtype_and_ints_stay_integer():
    assert mt.tensor(1.5).dtype == np.float32
    assert mt.tensor([[1.0, 2.0]]).dtype == np.float32
    assert mt.tensor([1, 2, 3]).dtype.kind == "i"
    assert mt.tensor([True, False]).dtype == np.bool_
    mt.set_default_dtype("float64")
    assert mt.tensor([1.0]).dtype == np.float64


def test_explicit_dtype_wins():
    assert mt.tensor([1, 2], dtype="float64").dtype == np.float64


def test_integer_tensors_cannot_require_grad():
    with pytest.raises(DTypeError, match="only floating-point tensors can require grad, got dtype"):
        mt.tensor([1, 2], requires_grad=True)
    t = mt.tensor([1, 2])
    with pytest.raises(DTypeError, match="int64"):
        t.requires_grad = True
    with pytest.raises(DTypeError, match="int64"):
        mt.arange(3, requires_grad=True)


def test_attributes():
    t = mt.zeros(2, 3, 4)
    assert (t.shape, t.ndim, t.size, t.device) == ((2, 3, 4), 3, 24, "cpu")
    assert t.grad is None and t.is_leaf
    assert len(t) == 2


def test_numpy_returns_a_copy():
    t = mt.ones(3)
    copy = t.numpy()
    copy[0] = 5.0
    assert t.data[0] == 1.0 and isinstance(copy, np.ndarray)


def test_item_and_its_error():
    assert mt.tensor([[2.5]]).item() == 2.5
    with pytest.raises(ValueError, match=r"3 elements \(shape \(3,\)\)"):
        mt.ones(3).item()


def test_creation_helpers():
    assert mt.zeros((2, 3)).shape == (2, 3)
    np.testing.assert_array_equal(mt.ones(2, dtype="float64").data, [1.0, 1.0])
    np.testing.assert_array_equal(mt.full((2,), 7.0).data, [7.0, 7.0])
    assert mt.arange(5).dtype.kind == "i" and mt.arange(0.0, 1.0, 0.25).dtype == np.float32
    np.testing.assert_array_equal(mt.arange(2, 8, 2).data, [2, 4, 6])
    assert mt.zeros_like(mt.ones(2, 2, dtype="float64")).dtype == np.float64
    with pytest.raises(ValueError, match="non-negative ints"):
        mt.zeros(2, -1)


def test_random_tensors_follow_the_seed():
    mt.manual_seed(123)
    a = mt.randn(3, 4).numpy()
    b = mt.rand(5).numpy()
    mt.manual_seed(123)
    np.testing.assert_array_equal(a, mt.randn(3, 4).numpy())
    np.testing.assert_array_equal(b, mt.rand(5).numpy())
    assert a.dtype == np.float32 and 0 <= b.min() and b.max() < 1
    assert mt.randn(2, dtype="float64").dtype == np.float64


def test_operators_match_numpy():
    a_np = np.array([[1.0, -2.0, 3.0]], dtype=np.float32)
    b_np = np.array([[0.5], [2.0]], dtype=np.float32)
    a, b = mt.tensor(a_np), mt.tensor(b_np)
    for got, want in [
        (a + b, a_np + b_np), (a - b, a_np - b_np), (a * b, a_np * b_np), (a / b, a_np / b_np),
        (2.0 - a, 2.0 - a_np), (1.0 / b, 1.0 / b_np), (a**2, a_np**2), (2.0**a, 2.0**a_np),
        (-a, -a_np), (abs(a), np.abs(a_np)), (a @ a.T, a_np @ a_np.T),
    ]:
        np.testing.assert_allclose(got.data, want, rtol=1e-6)
        assert got.dtype == np.float32


def test_numpy_array_on_the_left_defers_to_the_tensor():
    result = np.ones(3, dtype=np.float32) + mt.ones(3)
    assert isinstance(result, mt.Tensor)


def test_comparisons_give_bool_tensors_without_grad():
    a = mt.tensor([1.0, 2.0, 3.0], requires_grad=True)
    for result, want in [(a > 1.5, [False, True, True]), (a <= 2.0, [True, True, False]),
                         (a == 2.0, [False, True, False]), (a != 2.0, [True, False, True])]:
        assert result.dtype == np.bool_ and not result.requires_grad
        np.testing.assert_array_equal(result.data, want)


def test_mixing_float32_and_float64_promotes_and_backpropagates_in_each_dtype():
    a = mt.ones(2, requires_grad=True)
    b = mt.ones(2, dtype="float64", requires_grad=True)
    out = a * b
    assert out.dtype == np.float64
    out.sum().backward()
    assert a.grad.dtype == np.float32 and b.grad.dtype == np.float64


def test_repr_shows_values_and_grad_state():
    assert "requires_grad=True" in repr(mt.ones(2, requires_grad=True))
    assert "creator=Mul" in repr(mt.ones(2, requires_grad=True) * 2.0)


def test_iteration_yields_rows():
    rows = list(mt.arange(6).reshape(2, 3))
    assert len(rows) == 2 and rows[1].tolist() == [3, 4, 5]


def test_methods_exist_for_every_op():
    x = mt.randn(2, 3)
    for name in ["exp", "log", "sqrt", "tanh", "sigmoid", "relu", "gelu", "abs", "neg", "sum",
                 "mean", "max", "min", "var", "std", "logsumexp", "softmax", "log_softmax",
                 "reshape", "transpose", "permute", "swapaxes", "squeeze", "unsqueeze", "split",
                 "pad", "broadcast_to", "maximum", "minimum", "clip", "masked_fill", "where",
                 "matmul", "add", "sub", "mul", "div", "pow", "flatten", "astype"]:
        assert callable(getattr(x, name)), name
    assert x.T.shape == (3, 2)


def test_to_copies_onto_a_backend_as_a_new_leaf():
    x = mt.ones(2, 3, requires_grad=True)
    moved = x.to("cpu")
    assert moved is not x and moved.is_leaf and moved.requires_grad and moved.device == "cpu"
    moved.data[0, 0] = 5.0
    assert x.data[0, 0] == 1.0
    with pytest.raises(ValueError, match="to: unknown target 'tpu'"):
        x.to("tpu")


@pytest.mark.skipif("cupy" in mt.available_backends(), reason="CuPy works here")
def test_to_cupy_without_cupy_says_how_to_install():
    with pytest.raises(mt.BackendUnavailableError, match="minitransformer\\[gpu\\]"):
        mt.ones(2).to("cupy")


def test_numpy_interop():
    t = mt.tensor([[1.0, 2.0]])
    np.testing.assert_array_equal(np.asarray(t), [[1.0, 2.0]])
    assert np.asarray(t, dtype=np.float64).dtype == np.float64


def test_numpy_numbers_behave_like_python_numbers_in_arithmetic():
    x = mt.ones(2, requires_grad=True)
    y = x * np.float64(2.0) / np.sqrt(np.float64(4.0))
    assert y.dtype == np.float32
    y.sum().backward()
    np.testing.assert_allclose(x.grad, [1.0, 1.0])
    assert mt.tensor(np.float64(2.5)).dtype == np.float64


def test_integer_tensors_meeting_floats_take_the_default_dtype():
    ints = mt.tensor([1, 2])
    assert (ints * 0.5).dtype == np.float32
    assert (ints / 2).dtype == np.float32
    assert (ints / ints).dtype == np.float32
    assert (ints * 2).dtype.kind == "i" and (ints + ints).dtype.kind == "i"
    mt.set_default_dtype("float64")
    assert (ints * 0.5).dtype == np.float64


def test_logical_operators_combine_masks():
    a = mt.tensor([True, True, False])
    b = mt.tensor([True, False, False])
    assert (a & b).tolist() == [True, False, False]
    assert (a | b).tolist() == [True, True, False]
    assert (~a).tolist() == [False, False, True]
    with pytest.raises(DTypeError, match="logical not needs a bool tensor"):
        ~mt.ones(2)


@pytest.mark.parametrize("data, kind", [(["a", "b"], "strings"), ([b"a"], "bytes"),
                                        ([object()], "Python objects"),
                                        ([1 + 2j], "complex numbers")])
def test_data_that_is_not_numbers_is_refused_with_its_dtype(data, kind):
    with pytest.raises(TypeError, match=rf"tensor: data of dtype .* \({kind}\) cannot be a "
                                        "tensor; a tensor holds numbers"):
        mt.tensor(data)
