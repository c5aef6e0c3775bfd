"""Every Function and every Module has a gradient check, every check passes in float64, and every
backward keeps float32 in float32."""

import pytest

import minitransformer as mt
from minitransformer.gradcheck_cases import CASES, function_classes, module_classes
from minitransformer.nn import Module

IDS = [case.name for case in CASES]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_gradcheck_case(case):
    case.run()  # raises GradcheckError, naming the element, when a gradient is wrong


def test_every_function_has_a_gradcheck_case():
    covered = {cls for case in CASES for cls in case.covers}
    missing = sorted(cls.__name__ for cls in function_classes() if cls not in covered)
    assert not missing, f"Functions without a gradcheck case: {missing}"


def test_every_function_states_its_derivative():
    silent = sorted(cls.__name__ for cls in function_classes() if "dL/d" not in (cls.__doc__ or ""))
    assert not silent, f"Functions whose docstring does not state dL/d(input): {silent}"


def test_every_module_has_a_gradcheck_case():
    covered = {cls for case in CASES for cls in case.covers}
    missing = sorted(cls.__name__ for cls in module_classes() if cls not in covered)
    assert not missing, f"Modules without a gradcheck case: {missing}"


def test_the_coverage_tests_see_the_known_classes():
    functions = {cls.__name__ for cls in function_classes()}
    modules = {cls.__name__ for cls in module_classes()}
    assert {"Add", "MatMul", "Softmax", "CrossEntropy", "LayerNorm", "Embedding"} <= functions
    assert {"Linear", "MultiHeadAttention", "EncoderLayer", "Transformer"} <= modules


def test_case_names_are_unique():
    assert len(set(IDS)) == len(CASES)


def _as_float32(value):
    if isinstance(value, mt.Tensor) and value.dtype.kind == "f":
        return mt.tensor(value.numpy().astype("float32"), requires_grad=True)
    return value


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_case_backward_keeps_float32(case):
    """In float32 (training), every gradient keeps float32: the engine checks each one's dtype."""
    target, inputs, *forward = case.build()
    if isinstance(target, Module):
        target.float()
    inputs = [_as_float32(value) for value in inputs]
    outputs = (forward[0] if forward else target)(*inputs)
    for out in outputs if isinstance(outputs, tuple) else (outputs,):
        assert out.dtype == "float32" or "cast" in case.name
        out.backward(mt.ones_like(out), retain_graph=True)
    parameters = list(target.parameters()) if isinstance(target, Module) else []
    for t in [v for v in inputs if isinstance(v, mt.Tensor)] + parameters:
        if t.requires_grad:
            assert t.grad is not None and t.grad.dtype == "float32"
