"""The core on CuPy: every gradient-check case on the GPU in float64, and NumPy ⇄ CuPy parity of
forward and backward in float32. Skipped without CuPy and a CUDA GPU."""

import numpy as np
import pytest

import minitransformer as mt
from minitransformer import backend
from minitransformer.gradcheck_cases import CASES

pytestmark = pytest.mark.gpu


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_gradcheck_case_on_the_gpu(case):
    with mt.use_backend("cupy"):
        fn, inputs = case.build()
        assert all(t.device.startswith("cuda") for t in inputs if isinstance(t, mt.Tensor))
        mt.gradcheck(fn, *inputs, **case.options)


def _run(case, backend_name):
    """Forward and backward of a case in float32 on one backend; results as NumPy arrays."""
    with mt.use_backend(backend_name):
        fn, inputs = case.build()
        inputs = [mt.tensor(t.numpy().astype("float32"), requires_grad=True)
                  if t.dtype.kind == "f" else t for t in inputs]
        mt.manual_seed(0)
        outputs = fn(*inputs)
        outputs = outputs if isinstance(outputs, tuple) else (outputs,)
        for out in outputs:
            out.backward(mt.ones_like(out), retain_graph=True)
        return ([out.numpy() for out in outputs],
                [backend.to_numpy(t.grad) for t in inputs if t.requires_grad])


@pytest.mark.parametrize("case", [c for c in CASES if "dropout" not in c.name],
                         ids=[c.name for c in CASES if "dropout" not in c.name])
def test_numpy_and_cupy_agree_in_float32(case):
    cpu_out, cpu_grads = _run(case, "numpy")
    gpu_out, gpu_grads = _run(case, "cupy")
    for a, b in zip(cpu_out + cpu_grads, gpu_out + gpu_grads):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_scatter_add_on_the_gpu_adds_repeats():
    with mt.use_backend("cupy"):
        x = mt.zeros(4, requires_grad=True)
        x[mt.tensor([1, 1, 3, 1])].sum().backward()
        np.testing.assert_array_equal(backend.to_numpy(x.grad), [0, 3, 0, 1])


def test_mixing_a_gpu_and_a_cpu_tensor_names_both_devices():
    cpu = mt.ones(2)
    with mt.use_backend("cupy"):
        gpu = mt.ones(2)
    with pytest.raises(mt.DeviceMismatchError, match="cpu .* and cuda:0"):
        cpu + gpu


def test_a_checkpoint_saved_on_the_gpu_loads_on_the_cpu_and_back(tmp_path):
    from minitransformer import checkpoint, nn

    with mt.use_backend("cupy"):
        mt.manual_seed(0)
        gpu_model = nn.Linear(3, 2)
        checkpoint.save(tmp_path / "gpu.npz", gpu_model, step=1)
    cpu_model = nn.Linear(3, 2)
    checkpoint.load(tmp_path / "gpu.npz", cpu_model)
    np.testing.assert_array_equal(cpu_model.weight.numpy(), gpu_model.weight.numpy())
    checkpoint.save(tmp_path / "cpu.npz", cpu_model)
    with mt.use_backend("cupy"):
        back = nn.Linear(3, 2)
        checkpoint.load(tmp_path / "cpu.npz", back)
        assert back.weight.device.startswith("cuda")
    np.testing.assert_array_equal(back.weight.numpy(), cpu_model.weight.numpy())
