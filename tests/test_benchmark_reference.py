"""The benchmark's hand-written NumPy step (benchmarks/reference_numpy.py) does the framework's
work exactly: at the tiny config in float64, the same loss, every parameter's gradient and the
same parameters after Adam steps. Otherwise framework/reference ratios would compare unequal work.
Where PyTorch is installed, the benchmark's torch model (benchmarks/train_step.py) is checked the
same way.
"""

import ctypes
import glob
import sys
from pathlib import Path

import numpy as np
import pytest

import minitransformer as mt
import minitransformer.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from reference_numpy import ReferenceAdam, ReferenceLM, parameters_of  # noqa: E402

from configs import CONFIGS, build_model  # noqa: E402

# Both sides compute in float64 with the same formulas in a different order (fused softmax and
# cross-entropy, scaled q, sorted embedding sums), so they agree to rounding (~1e-15). ATOL is
# for values that are zero in exact arithmetic and rounding noise in both: the key projection's
# bias gets no gradient (adding q·b to a row of scores leaves its softmax unchanged).
RTOL, ATOL = 1e-9, 1e-12
ADAM = dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8)


def _batch(config, seed=0, distinct=False):
    """Token ids (B, T + 1), inputs and targets shifted by one position. ``distinct``: 2 rows of
    ids that never repeat (the reference's other embedding-gradient path)."""
    rng = np.random.default_rng(seed)
    shape = (config["batch"], config["seq_len"] + 1)
    if distinct:
        shape = (2, shape[1])
        ids = rng.permutation(config["vocab"])[: shape[0] * shape[1]].reshape(shape)
    else:
        ids = rng.integers(0, config["vocab"], shape)
    return ids[:, :-1], ids[:, 1:]


def _framework_step(model, optimizer, inputs, targets):
    loss = F.cross_entropy(model(mt.tensor(inputs)), mt.tensor(targets))
    optimizer.zero_grad()
    loss.backward()
    grads = {name: p.grad.copy() for name, p in model.named_parameters()}
    optimizer.step()
    return float(loss.item()), grads


def _numpy_openblas():
    """(get_num_threads, set_num_threads) of the OpenBLAS bundled with NumPy's wheels, or None."""
    pattern = str(Path(np.__file__).parent.parent / "numpy.libs" / "*openblas*")
    for path in glob.glob(pattern):
        library = ctypes.CDLL(path)
        for suffix in ("64_", ""):
            get = getattr(library, f"scipy_openblas_get_num_threads{suffix}", None)
            set_ = getattr(library, f"scipy_openblas_set_num_threads{suffix}", None)
            if get is not None and set_ is not None:
                return get, set_
    return None


@pytest.fixture(autouse=True)
def one_blas_thread():
    """BLAS threads on these tiny GEMMs only wait for each other: on a loaded 2-core machine they
    made this file take 1.5 to 13 s instead of 0.3 s. Restored after each test."""
    openblas = _numpy_openblas()
    if openblas is None:
        yield
        return
    get, set_ = openblas
    previous = get()
    set_(1)
    yield
    set_(previous)


@pytest.fixture
def tiny_float64():
    mt.set_default_dtype("float64")  # conftest restores float32 after the test
    config = CONFIGS["tiny"]
    model = build_model(config)
    assert model.output.linear.weight.dtype == np.float64
    return config, model


@pytest.mark.parametrize("distinct", [False, True], ids=["repeated ids", "distinct ids"])
def test_reference_loss_and_every_gradient_equal_the_framework(tiny_float64, distinct):
    config, model = tiny_float64
    inputs, targets = _batch(config, distinct=distinct)
    reference = ReferenceLM(config, parameters_of(model))
    loss, grads = reference.loss_and_grads(inputs, targets)
    expected_loss, expected = _framework_step(model, mt.optim.Adam(model.parameters(), **ADAM),
                                              inputs, targets)
    np.testing.assert_allclose(loss, expected_loss, rtol=RTOL)
    assert set(grads) == set(expected)
    for name, grad in grads.items():
        assert grad.dtype == np.float64, name
        np.testing.assert_allclose(grad, expected[name], rtol=RTOL, atol=ATOL, err_msg=name)


def test_reference_adam_steps_give_the_framework_parameters(tiny_float64):
    """Two steps (the second from new gradients at the updated weights, bias corrections at
    t = 2): the parameters stay equal, so the two sides keep doing the same work."""
    config, model = tiny_float64
    optimizer = mt.optim.Adam(model.parameters(), **ADAM)
    reference = ReferenceLM(config, parameters_of(model))
    reference_optimizer = ReferenceAdam(reference.params, **ADAM)
    initial = parameters_of(model)
    for seed in (0, 1):
        inputs, targets = _batch(config, seed)
        loss, grads = reference.loss_and_grads(inputs, targets)
        reference_optimizer.step(grads)
        expected_loss, _ = _framework_step(model, optimizer, inputs, targets)
        np.testing.assert_allclose(loss, expected_loss, rtol=RTOL)
    for name, p in model.named_parameters():
        np.testing.assert_allclose(reference.params[name], p.data, rtol=RTOL, atol=ATOL,
                                   err_msg=name)
        if not name.endswith("w_k.bias"):  # its gradient is rounding noise (see ATOL)
            assert np.abs(p.data - initial[name]).max() > 1e-5, f"{name} did not move"


def test_reference_stays_in_float32():
    """The benchmark runs float32: no gradient or Adam state is upcast to float64."""
    config = CONFIGS["tiny"]
    reference = ReferenceLM(config, parameters_of(build_model(config)))
    optimizer = ReferenceAdam(reference.params, **ADAM)
    loss, grads = reference.loss_and_grads(*_batch(config))
    optimizer.step(grads)
    assert np.isfinite(loss)
    for name in reference.params:
        assert grads[name].dtype == np.float32, name
        assert reference.params[name].dtype == np.float32, name
        assert optimizer.exp_avg_sq[name].dtype == np.float32, name


def test_benchmark_torch_model_computes_the_same_loss_and_gradients(tiny_float64):
    """The benchmark's PyTorch model (when torch is installed) is our model: same loss, and each
    torch gradient, mapped back to our layout, equals ours."""
    torch = pytest.importorskip("torch")
    from train_step import copy_into_torch, torch_links, torch_model

    config, model = tiny_float64
    inputs, targets = _batch(config)
    theirs = torch_model(torch, config).double()
    copy_into_torch(torch, theirs, parameters_of(model), config)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as one_blas_thread, for the same reason
    try:
        logits = theirs(torch.from_numpy(inputs))
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, config["vocab"]),
                                                 torch.from_numpy(targets).reshape(-1))
        loss.backward()
    finally:
        torch.set_num_threads(threads)
    expected_loss, expected = _framework_step(model, mt.optim.Adam(model.parameters(), **ADAM),
                                              inputs, targets)
    np.testing.assert_allclose(loss.item(), expected_loss, rtol=RTOL)
    torch_grads = {name: p.grad.numpy() for name, p in theirs.named_parameters()}
    checked = set()
    for name, ours, how in torch_links(config):
        grad = torch_grads[name]
        if how == "pack":  # rows [q; k; v] of in_proj, each (out, in) for a weight
            for block, our_name in zip(np.split(grad, 3), ours):
                actual = block.T if block.ndim == 2 else block
                np.testing.assert_allclose(actual, expected[our_name], rtol=RTOL, atol=ATOL,
                                           err_msg=our_name)
                checked.add(our_name)
            continue
        actual = grad.T if how == "transpose" else grad
        np.testing.assert_allclose(actual, expected[ours], rtol=RTOL, atol=ATOL, err_msg=ours)
        checked.add(ours)
    assert checked == set(expected)
