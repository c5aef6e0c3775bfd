"""Every Function has a gradient check, and every check passes (float64), also on float32 dtypes."""

import pytest

import minitransformer as mt
from minitransformer.gradcheck_cases import CASES, function_classes


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_gradcheck_case(case):
    fn, inputs = case.build()
    assert mt.gradcheck(fn, *inputs, **case.options)


def test_every_function_has_a_gradcheck_case():
    covered = {cls for case in CASES for cls in case.covers}
    missing = sorted(cls.__name__ for cls in function_classes() if cls not in covered)
    assert not missing, f"Functions without a gradcheck case: {missing}"


def test_the_coverage_test_sees_the_known_functions():
    names = {cls.__name__ for cls in function_classes()}
    assert {"Add", "MatMul", "Softmax", "CrossEntropy", "LayerNorm", "Embedding"} <= names


def test_case_names_are_unique():
    assert len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case_backward_keeps_float32(case):
    """In float32 (training), every gradient keeps float32: the engine checks each one's dtype."""
    fn, inputs = case.build()
    inputs = [
        mt.tensor(t.numpy().astype("float32"), requires_grad=True) if t.dtype.kind == "f" else t
        for t in inputs
    ]
    outputs = fn(*inputs)
    for out in outputs if isinstance(outputs, tuple) else (outputs,):
        out.backward(mt.ones_like(out), retain_graph=True)
    for t in inputs:
        if t.requires_grad:
            assert t.grad is not None and t.grad.dtype == "float32"
