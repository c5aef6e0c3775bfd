"""The gradient checker itself: it must pass right backwards and catch wrong ones."""

import numpy as np
import pytest

import minitransformer as mt
from minitransformer.autograd import Function
from minitransformer.errors import DTypeError, GradcheckError
from minitransformer.gradcheck_cases import sample


class _CubeRight(Function):
    """y = x³, dy/dx = 3x²."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x**3

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved
        return (grad_out * 3 * x**2,)


class _CubeWrong(_CubeRight):
    """A classic slip: the derivative written as 3x instead of 3x²."""

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved
        return (grad_out * 3 * x,)


class _TransposedWrong(Function):
    """A subtler slip: the gradient of a permutation sent back to the wrong positions."""

    @staticmethod
    def forward(ctx, x):
        return x[::-1].copy()

    @staticmethod
    def backward(ctx, grad_out):
        return (grad_out,)  # should be grad_out[::-1]


def test_a_right_backward_passes():
    assert mt.gradcheck(_CubeRight.apply, sample(3, 4)) is True  # True on a pass (not a report)


def test_a_wrong_backward_fails_with_a_report():
    with pytest.raises(GradcheckError) as info:
        mt.gradcheck(_CubeWrong.apply, sample(2, 3))
    message = str(info.value)
    assert "input 0 (shape (2, 3))" in message
    assert "at index (" in message and "analytic" in message and "numeric" in message
    assert "abs error" in message and "rel error" in message and "tolerance" in message
    assert "of 6 checked elements fail" in message


def test_a_misplaced_gradient_is_caught_thanks_to_the_random_upstream():
    # With upstream = ones (a plain .sum()) this wrong backward would pass.
    x = sample(5)
    with pytest.raises(GradcheckError):
        mt.gradcheck(_TransposedWrong.apply, x)


def test_worst_element_is_reported_with_its_values():
    x = mt.tensor([[0.1, 2.0], [0.2, 0.3]], dtype="float64")
    with pytest.raises(GradcheckError, match=r"at index \(0, 1\)"):
        mt.gradcheck(_CubeWrong.apply, x)


def test_large_inputs_are_checked_along_random_directions():
    x = sample(30, 20)
    mt.gradcheck(_CubeRight.apply, x, max_elements=100, directions=5)
    with pytest.raises(GradcheckError, match="along random direction .* of 5 checked directions"):
        mt.gradcheck(_CubeWrong.apply, x, max_elements=100, directions=5)


def test_inputs_are_left_unchanged():
    x = sample(3, 3)
    before = x.numpy()
    mt.gradcheck(lambda t: t.exp(), x)
    np.testing.assert_array_equal(x.numpy(), before)
    assert x.grad is None


def test_nondiff_inputs_and_integer_inputs_are_skipped():
    weights = sample(4, 3)
    ids = mt.tensor([1, 0, 3])
    # the float scale is declared non-differentiable: a wrong "gradient" for it goes unchecked
    mt.gradcheck(lambda w, i, s: (w[i] * s).sum(axis=0), weights, ids, sample(3, 3),
                        nondiff=[2])


def test_float32_inputs_are_checked_in_float64():
    mt.gradcheck(lambda t: t.tanh(), mt.randn(2, 3))


def test_a_float32_constant_inside_the_function_is_reported():
    constant = mt.ones(3)
    with pytest.raises(DTypeError, match="float64 throughout"):
        mt.gradcheck(lambda t: (t.astype("float32") * constant), sample(3))


def test_dropout_repeats_its_mask_because_the_generator_is_reseeded():
    mt.gradcheck(lambda t: mt.functional.dropout(t, 0.5).exp(), sample(6, 5))


def test_the_shared_generator_is_restored_after_a_check():
    mt.manual_seed(5)
    expected = mt.randn(3).numpy()
    mt.manual_seed(5)
    mt.gradcheck(lambda t: mt.functional.dropout(t, 0.5), sample(4))
    np.testing.assert_array_equal(mt.randn(3).numpy(), expected)


class _Scale:
    """The smallest object gradcheck_module accepts: named_parameters() and a call."""

    def __init__(self, weight, wrong=False):
        self.weight = weight
        self.wrong = wrong

    def named_parameters(self):
        yield "weight", self.weight

    def __call__(self, x):
        if self.wrong:
            return _CubeWrong.apply(self.weight) * x
        return _CubeRight.apply(self.weight) * x


def test_gradcheck_module_checks_parameters_by_name_and_restores_them():
    weight = mt.tensor(sample(3).data, requires_grad=True)
    weight.grad = np.full(3, 7.0)
    before = weight.numpy()
    mt.gradcheck_module(_Scale(weight), sample(2, 3))
    np.testing.assert_array_equal(weight.numpy(), before)
    np.testing.assert_array_equal(weight.grad, np.full(3, 7.0))
    with pytest.raises(GradcheckError, match="parameter 'weight' \\(shape \\(3,\\)\\)"):
        mt.gradcheck_module(_Scale(weight, wrong=True), sample(2, 3))


def test_gradcheck_module_needs_float64_parameters():
    with pytest.raises(DTypeError, match="parameter 'weight' has dtype float32"):
        mt.gradcheck_module(_Scale(mt.ones(3, requires_grad=True)), sample(2, 3))
