# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Chapter 17 — Running on a GPU with CuPy
#
# CuPy is NumPy for NVIDIA GPUs: `cupy.exp`, `cupy.matmul`, `cupy.ndarray` behave like their
# NumPy namesakes, but the array lives in GPU memory and each operation launches a GPU kernel.
# Because every op in this package asks its input arrays which module owns them
# (`xp = array_module(x)`, chapter 2), the whole framework, from `Tensor` to `Transformer`, runs
# on a GPU with one switch. This chapter is about that switch, and about what changes when the
# arrays are no longer in the computer's main memory: copies between host (CPU) and device
# (GPU), moments when Python must wait for the GPU, float precision, and how to time GPU code
# honestly.
#
# The chapter runs on any machine. With CuPy and a CUDA GPU it runs each experiment on the GPU
# and asserts that the results match NumPy's to float32 tolerance. Without them it runs
# everything on NumPy, asserts the CPU results, and prints what the GPU run would do.
#
# **Learning objectives.** After this chapter you can
#
# 1. list the backends a machine offers and choose one: `available_backends`, `set_backend`,
#    `use_backend`, and `--device gpu` on the command line;
# 2. write an op once, with `xp = array_module(x)`, that runs and differentiates on both;
# 3. move models and tensors between host and device, and know the error for mixing them;
# 4. find the synchronisation points of a training loop and say why `.item()` every step costs;
# 5. compare GPU with CPU results at the right tolerance, and choose float32 or float64;
# 6. time GPU code correctly: warm up, synchronise, take the median;
# 7. train in float16 with float32 master weights and dynamic loss scaling, and show which
#    gradients underflow without the scaling.

# %%
import contextlib
import importlib.util
import os
import tempfile
import time
from pathlib import Path

import numpy as np

import minitransformer as mt
import minitransformer.functional as F
from minitransformer import backend, checkpoint, nn
from minitransformer.autograd import Function
from minitransformer.backend import array_module
from minitransformer.cli import build_parser
from minitransformer.precision import Float16Weights, LossScaler
from minitransformer.tasks.common import select_device
from minitransformer.train import TrainConfig, Trainer

FAST = os.environ.get("MINITRANSFORMER_FAST") == "1"  # fewer timed steps when set
TIMED_STEPS = 5 if FAST else 20

# %% [markdown]
# ## 1. Which backends does this machine have?
#
# `mt.available_backends()` always lists `"numpy"`, and adds `"cupy"` when CuPy is installed
# *and* it finds a CUDA GPU. (Installed without a working GPU is a common case on laptops and CI
# machines, which is why the package checks both.) CuPy is an optional dependency:
# `pip install "minitransformer[gpu]"` installs the build for CUDA 12.

# %%
cupy_installed = importlib.util.find_spec("cupy") is not None
HAVE_GPU = "cupy" in mt.available_backends()
DEVICE = "cupy" if HAVE_GPU else "numpy"  # where this chapter's "device" runs
print(f"CuPy installed: {cupy_installed};  backends: {mt.available_backends()};  "
      f"device backend for this run: {DEVICE}")
assert mt.available_backends()[0] == "numpy" and (cupy_installed or not HAVE_GPU)

# %% [markdown]
# Asking for a backend that is not there raises `BackendUnavailableError` with the reason, never
# an `ImportError` from deep inside.

# %%
if HAVE_GPU:
    print("a GPU is here: set_backend('cupy') will work")
else:
    try:
        mt.set_backend("cupy")
        raise AssertionError("set_backend('cupy') should have failed without a GPU")
    except mt.BackendUnavailableError as error:
        print("without a GPU:", error)
    assert mt.get_backend() == "numpy"  # a failed switch changes nothing

# %% [markdown]
# ## 2. Choosing the backend
#
# The *current backend* decides where **new** tensors are created: `mt.zeros`, `mt.randn`,
# `mt.tensor(list)` and every parameter a module creates. `set_backend(name)` switches for
# good; `use_backend(name)` is a context manager that switches for one block and then restores
# the previous backend. A tensor's `.device` says where its data lives: `"cpu"` or `"cuda:N"`.
#
# On the command line every training command takes `--device cpu` (the default) or
# `--device gpu`, which calls `select_device` before anything is built:
#
#     python -m minitransformer demo --device gpu
#     python -m minitransformer pretrain --config configs/pretrain.toml --device gpu

# %%
with mt.use_backend(DEVICE):
    on_device = mt.randn(2, 3)
    print("inside use_backend:", mt.get_backend(), on_device.device)
print("after it:", mt.get_backend(), mt.randn(2, 3).device)
assert mt.get_backend() == "numpy"
assert on_device.device == ("cuda:0" if HAVE_GPU else "cpu")

arguments = build_parser().parse_args(["demo", "--device", "gpu"])
print("`demo --device gpu` parses to device =", repr(arguments.device))
try:
    select_device(arguments.device)  # what the command does first
    print("select_device('gpu') switched to", mt.get_backend())
except mt.BackendUnavailableError as error:
    print("select_device('gpu') refused:", str(error).split(";")[0])
finally:
    mt.set_backend("numpy")
assert arguments.device == "gpu" and mt.get_backend() == "numpy"

# %% [markdown]
# ## 3. Writing an op once
#
# An op never imports NumPy or CuPy. It asks `xp = array_module(x)` for the module that owns its
# input and calls `xp.<function>`; the same lines then run on either. Here is a new op in the
# package's style, softplus:
#
# $$\operatorname{softplus}(x) = \log(1 + e^{x}), \qquad
#   \frac{d}{dx}\operatorname{softplus}(x) = \frac{1}{1 + e^{-x}} = \sigma(x).$$
#
# Written naively, $e^x$ overflows for large $x$; `xp.logaddexp(0, x)` $= \log(e^0 + e^x)$
# computes the same value stably, and $\sigma(x) = \tfrac12(1 + \tanh(x/2))$ never overflows.

# %%
class Softplus(Function):
    """y = log(1 + e^x), computed as logaddexp(0, x)

    dL/dx = g * sigmoid(x),   sigmoid(x) = (1 + tanh(x / 2)) / 2
    """

    @staticmethod
    def forward(ctx, x):
        # BEGIN SOLUTION
        xp = array_module(x)
        ctx.save_for_backward(x)
        return xp.logaddexp(0, x)
        # END SOLUTION

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved
        # BEGIN SOLUTION
        xp = array_module(x)
        return (grad_out * 0.5 * (1 + xp.tanh(0.5 * x)),)
        # END SOLUTION


def softplus(x):
    return Softplus.apply(x)


def softplus_results(backend_name):
    """Softplus forward and gradient on one backend, and its gradient check (float64)."""
    with mt.use_backend(backend_name):
        x = mt.tensor(np.linspace(-30.0, 30.0, 13).astype("float32"), requires_grad=True)
        y = softplus(x)
        y.sum().backward()
        composed = (1 + (-x.detach().abs()).exp()).log() + x.detach().relu()  # same, composed
        assert mt.gradcheck(softplus, mt.randn(3, 4).double())
        return y.numpy(), backend.to_numpy(x.grad), composed.numpy(), y.device


cpu_y, cpu_grad, cpu_composed, cpu_device = softplus_results("numpy")
print("softplus on", cpu_device, np.array2string(cpu_y[:4], precision=4))
assert np.isfinite(cpu_y).all() and np.allclose(cpu_y, cpu_composed, rtol=1e-6, atol=1e-6), (
    "softplus(x) should be log(1 + eˣ): forward should return xp.logaddexp(0, x), with "
    f"xp = array_module(x); largest difference {np.abs(cpu_y - cpu_composed).max():.2e}"
)
assert np.allclose(cpu_grad, 1 / (1 + np.exp(-np.linspace(-30.0, 30.0, 13))), atol=1e-6), (
    "the gradient should be σ(x) = 1 / (1 + e⁻ˣ): forward should save x "
    "(ctx.save_for_backward(x)) and backward return (grad_out · (1 + tanh(x / 2)) / 2,); "
    "largest difference "
    f"{np.abs(cpu_grad - 1 / (1 + np.exp(-np.linspace(-30.0, 30.0, 13)))).max():.2e}"
)
if HAVE_GPU:
    gpu_y, gpu_grad, _, gpu_device = softplus_results("cupy")
    print("softplus on", gpu_device, np.array2string(gpu_y[:4], precision=4))
    assert gpu_device.startswith("cuda")
    np.testing.assert_allclose(gpu_y, cpu_y, rtol=1e-5, atol=1e-6, err_msg=(
        "softplus on the GPU differs from the CPU: compute it with xp = array_module(x) "
        "(xp.logaddexp), never with numpy directly"))
    np.testing.assert_allclose(gpu_grad, cpu_grad, rtol=1e-5, atol=1e-6, err_msg=(
        "softplus's gradient on the GPU differs from the CPU: compute it with "
        "xp = array_module(x) (xp.tanh), never with numpy directly"))
else:
    print("no GPU: softplus_results('cupy') would run the same lines on cupy arrays")

# %% [markdown]
# ## 4. Moving models and tensors
#
# - `tensor.to("cupy")` (or `"cuda"`) returns a copy on the GPU, `tensor.to("numpy")` (or
#   `"cpu"`) one in main memory: each is one **host↔device copy** over the PCIe bus. The copy is
#   a new leaf: move inputs and parameters *before* computing with them.
# - `model.to("cupy")` moves every parameter and buffer **in place** and returns the model, so
#   an optimizer made afterwards sees the GPU arrays. Make the optimizer after moving the model.
# - `tensor.numpy()` and `backend.to_numpy(array)` always give NumPy (copied off the GPU).
# - An op whose inputs live on two devices raises `DeviceMismatchError`, naming both devices:
#   the package never copies behind your back.
# - Checkpoints hold NumPy arrays, so a model saved on a GPU loads on a CPU and back.

# %%
mt.manual_seed(0)
model = nn.Transformer(20, 20, d_model=32, n_heads=4, n_encoder_layers=2, n_decoder_layers=2,
                       d_ff=64, dropout=0.0)
first = model.encoder.layers[0].self_attn.w_q.weight
model.to(DEVICE)
print("parameters now on", first.device, "(the same Parameter object, new data)")
assert model.encoder.layers[0].self_attn.w_q.weight is first
assert all(p.device == first.device for p in model.parameters())

ids = mt.tensor([[7, 8, 9, 10]])
if HAVE_GPU:
    try:
        model(ids, ids)  # ids on the CPU, parameters on the GPU
        raise AssertionError("mixing devices should have failed")
    except mt.DeviceMismatchError as error:
        print("mixing devices:", str(error)[:120], "...")
    ids = ids.to("cupy")
print("ids on", ids.device)
assert ids.device == first.device

with tempfile.TemporaryDirectory() as folder:
    path = checkpoint.save(Path(folder) / "model.npz", model, step=1)
    cpu_copy = nn.Transformer(20, 20, d_model=32, n_heads=4, n_encoder_layers=2,
                              n_decoder_layers=2, d_ff=64, dropout=0.0)  # built on the CPU
    checkpoint.load(path, cpu_copy)
np.testing.assert_array_equal(cpu_copy.encoder.layers[0].self_attn.w_q.weight.numpy(),
                              first.numpy())
model.to("numpy")
assert first.device == "cpu"

# %% [markdown]
# ## 5. The same forward and backward on both backends
#
# The real test of a GPU backend: one model, one batch, forward and backward on NumPy, then
# the very same parameters moved to the device and run again. The results cannot be *equal*:
# cuBLAS and the CPU's BLAS add the terms of a matrix product in different orders, and float32
# keeps only about 7 significant digits, so each order rounds differently. How different is
# acceptable? The yardstick is float32 itself: run the model once more in float64 on the CPU
# and measure how far float32 is from it. We compare with `np.testing.assert_allclose`'s rule,
# $|a - b| \le \text{atol} + \text{rtol} \cdot |b|$ for every element, at a float32 tolerance
# (rtol = 1e-4, atol = 1e-5, as the package's GPU tests use). `mismatch` below is the worst
# ratio of the two sides, so a value of at most 1 passes. A correct GPU passes the same test
# that float32 passes against float64.

# %%
def forward_backward(model, backend_name):
    """Logits, loss and every parameter gradient, as NumPy arrays, computed on one backend."""
    rng = np.random.default_rng(0)
    src, tgt = rng.integers(0, 20, (4, 9)), rng.integers(0, 20, (4, 8))
    with mt.use_backend(backend_name):
        src, tgt_in, tgt_out = mt.tensor(src), mt.tensor(tgt[:, :-1]), mt.tensor(tgt[:, 1:])
        model.zero_grad()
        logits = model(src, tgt_in)  # (4, 7, 20)
        loss = F.cross_entropy(logits, tgt_out)
        loss.backward()
    results = {"logits": logits.numpy(), "loss": loss.numpy()}
    results.update({name: backend.to_numpy(p.grad) for name, p in model.named_parameters()})
    return results


def mismatch(results, reference, rtol=1e-4, atol=1e-5):
    """The worst |a - b| / (atol + rtol |b|) over every element of every array: <= 1 means all
    agree at that tolerance (equal elements count 0, even where the bound is 0)."""
    worst = 0.0
    for key, b in reference.items():
        difference = np.abs(results[key] - b)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(difference == 0, 0.0, difference / (atol + rtol * np.abs(b)))
        worst = max(worst, float(ratio.max()))
    return worst


cpu32 = forward_backward(model, "numpy")
cpu64 = forward_backward(model.to("float64"), "numpy")
model.to("float32")
largest_difference = max(float(np.abs(cpu32[key] - cpu64[key]).max()) for key in cpu32)
float32_mismatch = mismatch(cpu32, cpu64)
print(f"loss: float32 {cpu32['loss']:.7f}, float64 {cpu64['loss']:.7f}")
print(f"float32 vs float64 over {len(cpu32)} arrays: largest difference "
      f"{largest_difference:.1e}, mismatch {float32_mismatch:.3f} (<= 1 passes)")
assert largest_difference > 0 and float32_mismatch <= 1.0

if HAVE_GPU:
    gpu32 = forward_backward(model.to("cupy"), "cupy")
    model.to("numpy")
    gpu_mismatch = mismatch(gpu32, cpu32)
    print(f"GPU float32 vs CPU float32: mismatch {gpu_mismatch:.3f} (<= 1 passes)")
    assert gpu_mismatch <= 1.0, gpu_mismatch  # float32 tolerance: GPU and CPU agree
else:
    print("no GPU: forward_backward(model.to('cupy'), 'cupy') would run here, and its mismatch "
          "against the CPU float32 results would have to stay <= 1 as well")

# %% [markdown]
# ## 6. Host↔device copies and synchronisation points
#
# A CuPy call *queues* a kernel on the GPU and returns at once; Python runs ahead while the GPU
# works through the queue. That overlap is where the speed comes from. Anything that needs a
# value **on the host** breaks it: Python must wait until the GPU has finished everything queued
# so far (a *synchronisation*), and then copy the value across. These are sync points:
#
# - `loss.item()`, `t.numpy()`, `t.tolist()`, `backend.to_numpy(a)`, `print(t)`;
# - Python decisions on a value: `if loss < best:`, `bool(t)`, `while not done.all():`;
# - host→device copies of new data, such as `mt.tensor(batch_ids)` on the GPU backend.
#
# One `.item()` a step looks harmless, but it means the GPU idles while Python prepares the next
# step, every step. The remedy is to keep running sums **on the device** and read them every N
# steps. (The package's `Trainer` reads the loss once a step, to stop on a NaN at once; for the
# model sizes of this book that is a small price.) Below the same training runs twice, reading
# the loss every step and every 10 steps: the numbers are identical, the reads are not.

# %%
def train_and_log(read_every, steps=20):
    """Train a fresh copy task model; read the mean loss to the host every ``read_every`` steps.
    Returns (losses read, number of host reads, a final parameter)."""
    mt.manual_seed(0)
    small = nn.Transformer(20, 20, d_model=16, n_heads=2, n_encoder_layers=1, n_decoder_layers=1,
                           d_ff=32, dropout=0.0).to(DEVICE)
    optimizer = mt.optim.Adam(small.parameters(), lr=1e-2)
    pairs = mt.data.copy_task(steps * 8, vocab_size=20, min_len=4, max_len=6, seed=0)
    read, reads = [], 0
    with mt.use_backend(DEVICE):
        running = mt.zeros(())  # on the device: adding to it costs no sync
        for step in range(1, steps + 1):
            batch = mt.data.collate_seq2seq(pairs[(step - 1) * 8:step * 8])  # host->device copy
            logits = small(batch.src, batch.tgt_in, batch.src_mask, batch.tgt_mask)
            loss = F.cross_entropy(logits, batch.tgt_out, ignore_index=mt.data.IGNORE_INDEX)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            running = running + loss.detach()
            if step % read_every == 0:
                read.append(running.item() / read_every)  # the sync point
                reads += 1
                running = mt.zeros(())
    return read, reads, small.output.weight.numpy()


every_step, reads_1, weight_1 = train_and_log(read_every=1)
every_10, reads_10, weight_10 = train_and_log(read_every=10)
print(f"read every step: {reads_1} syncs; every 10 steps: {reads_10} syncs")
print("mean loss of steps 1-10 and 11-20:", [round(v, 4) for v in every_10],
      "=", [round(float(np.mean(every_step[i:i + 10])), 4) for i in (0, 10)])
assert reads_1 == 20 and reads_10 == 2
np.testing.assert_allclose(every_10, [np.mean(every_step[:10]), np.mean(every_step[10:])],
                           rtol=1e-5)
np.testing.assert_array_equal(weight_1, weight_10)  # the same training, whatever we read
assert every_10[1] < every_10[0]  # and it trains

# %% [markdown]
# ## 7. float32 or float64?
#
# The package trains in float32 (`mt.get_default_dtype()`), and its gradient checks run in
# float64, where a finite-difference step of $10^{-6}$ is not lost to rounding. On a GPU the
# choice matters more than on a CPU: GPUs are built for float32 arithmetic, and many GPUs,
# consumer cards especially, run float64 far more slowly; look up your card's float64 rate
# before running anything big in it. float32 also halves memory and memory traffic, often the
# real limit. So: train in float32, check gradients in float64 (they run on the GPU too), and
# compare GPU with CPU at a float32 tolerance, as in section 5.
#
# One more GPU detail: newer NVIDIA GPUs can run float32 matrix products on tensor cores in
# TF32, which keeps only about 3 significant digits of each input. CuPy leaves this off unless
# the environment variable `CUPY_TF32=1` is set; with it on, expect GPU-vs-CPU errors nearer
# $10^{-3}$ and loosen the comparison accordingly.

# %%
print("float32 epsilon", np.finfo(np.float32).eps, " float64 epsilon", np.finfo(np.float64).eps)
assert mt.get_default_dtype() == np.float32
assert largest_difference > 1e3 * np.finfo(np.float64).eps  # section 5: float32 rounding shows
assert mismatch(cpu32, cpu64, rtol=1e-7, atol=0.0) > 1.0  # a float64-grade test would fail it

# %% [markdown]
# ## 8. What to measure, and how
#
# Timing GPU code with a stopwatch around a Python call measures how long it took to *queue*
# the work, not to do it. Honest timing:
#
# 1. **warm up**: the first calls compile kernels and fill CuPy's memory pool; leave them out;
# 2. **synchronise** before starting and before stopping the clock
#    (`cupy.cuda.Device().synchronize()`), so the interval holds all the work;
# 3. time **many steps** and report the **median** (robust to a stray slow step);
# 4. report **tokens per second** (batch × sequence length / seconds per step), comparable
#    across batch sizes, and compare against a baseline on the same machine.
#
# `benchmarks/gpu.py` does exactly this for a whole training step, on CuPy and, where
# installed, on PyTorch's CUDA backend; `benchmarks/gpu_check.sh` also runs the test suite on
# the CuPy backend. A small model like the one below is too small to keep a GPU busy (kernel
# launch overheads dominate), so on a GPU it says little about real training speed; its
# point is the method. No GPU numbers are quoted in this book: measure your own.

# %%
def synchronize(backend_name):
    if backend_name == "cupy":
        import cupy

        cupy.cuda.Device().synchronize()


def median_step_seconds(backend_name, steps=TIMED_STEPS, warmup=2):
    mt.manual_seed(0)
    timed = nn.Transformer(20, 20, d_model=32, n_heads=4, n_encoder_layers=2,
                           n_decoder_layers=2, d_ff=64, dropout=0.0).to(backend_name)
    optimizer = mt.optim.Adam(timed.parameters(), lr=1e-3)
    rng = np.random.default_rng(0)
    with mt.use_backend(backend_name):
        src = mt.tensor(rng.integers(0, 20, (16, 12)))
        tgt = mt.tensor(rng.integers(0, 20, (16, 13)))
        times = []
        for step in range(warmup + steps):
            synchronize(backend_name)
            start = time.perf_counter()
            loss = F.cross_entropy(timed(src, tgt[:, :-1]), tgt[:, 1:])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            synchronize(backend_name)
            if step >= warmup:
                times.append(time.perf_counter() - start)
    return float(np.median(times)), 16 * 12


for name in mt.available_backends():
    seconds, tokens = median_step_seconds(name)
    print(f"{name}: median {seconds * 1e3:.1f} ms per training step, "
          f"{tokens / seconds:,.0f} tokens/s (this machine, this tiny model)")

# %% [markdown]
# ## 9. Half precision: float16, master weights and loss scaling
#
# A GPU goes faster still in **float16** (IEEE half precision): its tensor cores multiply
# float16 matrices several times faster than float32 (look up your card's figures), and float16
# activations take half the memory. float16 keeps 5 exponent bits and 10 mantissa bits:
#
# | | float16 | float32 |
# |---|---|---|
# | largest number | 65504 | $3.4 \cdot 10^{38}$ |
# | smallest normal number | $2^{-14} \approx 6.1 \cdot 10^{-5}$ | $1.2 \cdot 10^{-38}$ |
# | smallest subnormal number | $2^{-24} \approx 6.0 \cdot 10^{-8}$ | $1.4 \cdot 10^{-45}$ |
# | spacing next to 1 | $2^{-10} \approx 9.8 \cdot 10^{-4}$ | $1.2 \cdot 10^{-7}$ |
#
# Between the smallest subnormal and the smallest normal number float16 has **subnormal**
# numbers, with fewer significant bits the closer they are to 0; below half the smallest
# subnormal a number becomes 0: it **underflows**. Training in float16 alone fails twice over:
#
# 1. *Small updates vanish.* A weight 1.0 and an update of $10^{-4}$: in float16
#    $1 + 10^{-4}$ rounds back to 1, since the next float16 number after 1 is $1 + 2^{-10}$.
# 2. *Small gradients underflow.* The loss is a mean over thousands of tokens, so the
#    gradient of each logit is divided by that count, and once a model is confident most of
#    them lie far below $6 \cdot 10^{-8}$.
#
# Mixed precision (Micikevicius et al. 2018) fixes both. The weights stay float32 (the
# **master weights**) and the optimizer updates them there; forward and backward run on float16
# copies (`Float16Weights`). Before backward the loss is multiplied by a scale $S$: by the
# chain rule every gradient is then $S$ times larger, clear of the underflow, and it is divided
# by $S$, in float32, before the update (`LossScaler`). Softmax, layer norm and cross-entropy
# compute their sums in float32 inside the float16 forward, and the loss is float32.

# %%
HAS_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None
SMALLEST_NORMAL, SMALLEST_SUBNORMAL = 2.0**-14, 2.0**-24
print(f"float16: largest {np.finfo(np.float16).max}, smallest normal "
      f"{np.finfo(np.float16).tiny:.2e}, smallest subnormal {np.float16(SMALLEST_SUBNORMAL):.2e}")
print("1 + 1e-4 in float16:", np.float16(1) + np.float16(1e-4), "  in float32:",
      np.float32(1) + np.float32(1e-4))
assert np.finfo(np.float16).tiny == SMALLEST_NORMAL and np.finfo(np.float16).max == 65504
assert np.float16(SMALLEST_SUBNORMAL) > 0 and np.float16(SMALLEST_SUBNORMAL / 4) == 0
assert np.float16(1) + np.float16(1e-4) == 1 and np.float32(1) + np.float32(1e-4) > 1

# %% [markdown]
# ### Which gradients underflow?
#
# A small causal language model (vocabulary 512) learns for 30 steps a sequence whose every
# token is the previous one plus 1 or 2: it soon gives the other 510 tokens probabilities near
# 0. Then, on a batch of 1024 tokens, the gradient of the loss with respect to the logits,
# $(p - q) / 1024$ for each of the 1024 × 512 logits, three times: in float32 (the reference),
# in a float16 backward, and in a float16 backward of $S \cdot \text{loss}$ with $S = 2^{16}$,
# divided by $S$ afterwards. A gradient *underflows* when float32 has it non-zero and float16
# gives 0. These logit gradients are the first arrays of the backward; every other gradient
# of the model is computed from them.

# %%
LM_VOCAB, SCALE = 512, 2.0**16


def walk_batch(seed, batch, length=32, vocab=LM_VOCAB):
    """ids (batch, length + 1): each token the previous one + 1 or + 2 (mod vocab)."""
    rng = np.random.default_rng(seed)
    start = rng.integers(0, vocab, (batch, 1))
    steps = rng.integers(1, 3, (batch, length))
    return mt.tensor(np.concatenate([start, start + np.cumsum(steps, axis=1)], 1) % vocab)


def small_lm(vocab=LM_VOCAB):
    mt.manual_seed(0)
    return nn.CausalLanguageModel(vocab, d_model=32, n_heads=2, n_layers=1, d_ff=64,
                                  dropout=0.0, max_len=32)


lm = small_lm()
adam = mt.optim.Adam(lm.parameters(), lr=3e-2)
for step in range(30):
    ids = walk_batch(step, 16)
    adam.zero_grad()
    F.cross_entropy(lm(ids[:, :-1]), ids[:, 1:]).backward()
    adam.step()


def logit_gradients(ids, scale=None):
    """dL/dlogits as float32 NumPy: a float32 backward (scale None), or a float16 backward of
    scale · loss, divided by scale in float32."""
    lm.zero_grad()
    scaler = LossScaler(init_scale=scale or 1.0)
    with Float16Weights(lm).compute() if scale else contextlib.nullcontext():
        logits = lm(ids[:, :-1])  # (32, 32, 512), float16 inside compute()
        logits.retain_grad()
        loss = F.cross_entropy(logits, ids[:, 1:])  # float32 either way
        scaler.scale_loss(loss).backward()
    return backend.to_numpy(logits.grad).astype(np.float32).ravel() / scaler.scale


ids = walk_batch(10**6, 32)  # 32 x 32 = 1024 predicted tokens
exact = logit_gradients(ids)
float16_plain, float16_scaled = logit_gradients(ids, 1.0), logit_gradients(ids, SCALE)
magnitude = np.abs(exact[exact != 0])
shares = {
    "below the smallest normal, unscaled": np.mean(magnitude < SMALLEST_NORMAL),
    "below the smallest subnormal, unscaled": np.mean(magnitude < SMALLEST_SUBNORMAL),
    "below the smallest subnormal, times S": np.mean(SCALE * magnitude < SMALLEST_SUBNORMAL),
    "0 in the float16 backward, unscaled": np.mean(float16_plain[exact != 0] == 0),
    "0 in the float16 backward, times S": np.mean(float16_scaled[exact != 0] == 0),
}
for what, share in shares.items():
    print(f"{share:7.2%} of the {magnitude.size:,} logit gradients: {what}")
largest = float(SCALE * magnitude.max())
print(f"largest |S g| = {largest:.1f}: far below float16's 65504, so S could grow "
      f"{2 ** int(np.log2(65504 / largest)):,} times more before anything overflows")
assert shares["0 in the float16 backward, unscaled"] > 0.3  # most of the signal is lost
assert shares["0 in the float16 backward, times S"] < 0.1  # scaled: nearly all kept
assert shares["below the smallest subnormal, times S"] < 0.1 and largest < 65504

# %%
if HAS_MATPLOTLIB:
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 3.2), layout="constrained")
    bins = np.logspace(-14, 5, 77)
    axis.hist(magnitude, bins=bins, alpha=0.6, label="|g|: unscaled")
    axis.hist(SCALE * magnitude, bins=bins, alpha=0.6, label="|S g|, S = 2^16")
    for value, name in [(SMALLEST_SUBNORMAL, "smallest subnormal 6e-8"),
                        (SMALLEST_NORMAL, "smallest normal 6.1e-5"), (65504, "largest 65504")]:
        axis.axvline(value, color="black", linestyle=":")
        axis.text(value, axis.get_ylim()[1] * 0.95, " " + name, fontsize=7, va="top",
                  rotation=90)
    axis.set(xscale="log", xlabel="gradient magnitude (float32 reference)",
             ylabel="logits", title="dL/dlogits of a small LM against float16's range")
    axis.legend(loc="upper left", fontsize=8)
    figure.savefig("ch17_float16_gradients.png", dpi=110)
    plt.close(figure)
    print("wrote ch17_float16_gradients.png")
else:
    print("matplotlib is not installed: no plot (pip install 'minitransformer[plot]')")

# %% [markdown]
# Left of the first dotted line a gradient is 0 in float16; between the first two it keeps
# only a few bits. Multiplying by $S$ slides the whole histogram right by $\log_{10} 2^{16}
# \approx 4.8$ decades, into float16's normal range, with room to spare below 65504.
#
# ### Dynamic loss scaling, and float16 against float32
#
# Which $S$? Too small and gradients underflow; too large and the largest overflow to inf (or
# NaN), which spoils the update. `LossScaler` adapts it as training goes, as PyTorch's
# `GradScaler` does: start at $2^{16}$; after a backward, unscale the gradients into float32
# and look for inf or NaN; if there is one, **skip** the update and halve $S$; after
# `growth_interval` (2000) clean steps in a row, double it. Clipping, when used, sees the
# unscaled gradients.
#
# The `Trainer` does all of it with `TrainConfig(precision="float16")`, and every training
# command with `--set precision=float16`. Its log rows gain `loss_scale` and `skipped_steps`.
# Checkpoints hold the float32 master weights and the scaler's state, so `--resume` goes on
# with the same $S$. Below, the same model trains in both precisions from the same weights on
# the same batches. On the CPU the float16 run is the slower one: NumPy has no float16 BLAS
# and multiplies float16 matrices in a plain loop. The speed is for a GPU; the point here is
# that float16 with loss scaling learns what float32 learns.

# %%
COMPARISON_STEPS = 30 if FAST else 150


def train_in(precision):
    model = small_lm(vocab=64)
    optimizer = mt.optim.Adam(model.parameters(), lr=1e-2)

    def loss_fn(model, ids):
        return F.cross_entropy(model(ids[:, :-1]), ids[:, 1:])

    trainer = Trainer(model, optimizer, loss_fn,
                      lambda epoch: [walk_batch(100 * epoch + i, 16, 16, 64) for i in range(10)],
                      TrainConfig(steps=COMPARISON_STEPS, log_every=1, precision=precision,
                                  progress=False))
    start = time.perf_counter()
    history = trainer.fit()
    return history, time.perf_counter() - start, model


runs = {precision: train_in(precision) for precision in ("float32", "float16")}
final = {p: float(np.mean([row["loss"] for row in history[-5:]]))
         for p, (history, _, _) in runs.items()}
for precision, (history, seconds, _) in runs.items():
    extra = ""
    if precision == "float16":
        last = history[-1]
        extra = f", loss scale {last['loss_scale']:g}, {last['skipped_steps']} skipped steps"
    print(f"{precision}: loss {history[0]['loss']:.4f} -> {final[precision]:.4f} "
          f"(mean of the last 5 steps) in {seconds:.1f} s{extra}")
print(f"float16 ends {abs(final['float16'] - final['float32']) / final['float32']:.2%} "
      "away from float32")
assert abs(final["float16"] - final["float32"]) <= 0.05 * final["float32"]
assert final["float32"] < 0.6 * runs["float32"][0][0]["loss"]  # both learned
assert {p.dtype for p in runs["float16"][2].parameters()} == {np.dtype(np.float32)}  # masters

# %% [markdown]
# ## Summary
#
# - `available_backends()` lists what the machine can run; `set_backend` / `use_backend` choose
#   where new tensors live; `--device gpu` does the same for a command.
# - Ops are written once with `xp = array_module(x)`; a new `Function` written that way runs,
#   and passes `gradcheck`, on both backends.
# - `model.to("cupy")` moves parameters in place (make the optimizer afterwards);
#   `tensor.to(...)` copies; mixing devices is an error, never a silent copy.
# - `.item()`, `.numpy()`, `print` and `if` on a value are sync points: keep running sums on the
#   device and read them every N steps.
# - GPU and CPU agree to float32 rounding, not bit for bit; train in float32, check gradients in
#   float64.
# - Time GPU code after warm-up, between synchronisations, as a median of many steps.
# - float16 (`precision = "float16"`) runs forward and backward on float16 copies of float32
#   master weights; the loss, multiplied by a scale S, lifts the gradients out of float16's
#   underflow, and S halves on an overflow (the step is skipped) and doubles after 2000 clean
#   steps. On the CPU float16 is slow (no float16 BLAS); it is for GPUs.
#
# ## Exercises
#
# ```{exercise} Another op, written once
# :label: ch17-mish
#
# Write `Mish`, $y = x \tanh(\operatorname{softplus}(x))$, as a `Function` with
# `xp = array_module(x)`, and check it with `mt.gradcheck`. Its derivative is
# $\tanh(s) + x\,\sigma(x)\,(1 - \tanh^2(s))$ with $s = \operatorname{softplus}(x)$.
# ```
#
# ````{solution} ch17-mish
# :class: dropdown
#
# ```python
# class Mish(Function):
#     """y = x * tanh(softplus(x))
#
#     dL/dx = g * (tanh(s) + x * sigmoid(x) * (1 - tanh(s)^2)),  s = softplus(x)
#     """
#
#     @staticmethod
#     def forward(ctx, x):
#         xp = array_module(x)
#         t = xp.tanh(xp.logaddexp(0, x))
#         ctx.save_for_backward(x, t)
#         return x * t
#
#     @staticmethod
#     def backward(ctx, grad_out):
#         x, t = ctx.saved
#         xp = array_module(x)
#         sigmoid = 0.5 * (1 + xp.tanh(0.5 * x))
#         return (grad_out * (t + x * sigmoid * (1 - t * t)),)
#
#
# assert mt.gradcheck(lambda x: Mish.apply(x), mt.randn(3, 4).double())
# ```
#
# The derivative follows from the product rule and $s'(x) = \sigma(x)$. Nothing in the class
# names NumPy, so on a GPU the same check runs inside `with mt.use_backend("cupy"):`.
# ````
#
# ````{exercise} Where are the sync points?
# :label: ch17-sync-points
#
# List the synchronisation points in this loop and rewrite it with one per 100 steps:
#
# ```python
# for step, batch in enumerate(loader):
#     loss = loss_fn(model, batch)
#     if loss.item() != loss.item():      # NaN check
#         raise RuntimeError("NaN")
#     optimizer.zero_grad(); loss.backward(); optimizer.step()
#     history.append(loss.item())
# ```
# ````
#
# ````{solution} ch17-sync-points
# :class: dropdown
#
# Three a step: the three `loss.item()` calls, each waiting for the GPU and copying
# one number. (Building the batch is a host-to-device copy as well, but it does not wait for the
# GPU to finish.) Keep the sum on the device; a NaN anywhere makes the sum NaN, so the check can
# wait for the read:
#
# ```python
# running = mt.zeros(())
# for step, batch in enumerate(loader, start=1):
#     loss = loss_fn(model, batch)
#     optimizer.zero_grad(); loss.backward(); optimizer.step()
#     running = running + loss.detach()
#     if step % 100 == 0:
#         mean = running.item() / 100          # the one sync point
#         if mean != mean:
#             raise RuntimeError(f"NaN loss before step {step}")
#         history.append(mean)
#         running = mt.zeros(())
# ```
#
# The price: a NaN is found up to 99 steps late, after updates that may have spoiled the
# parameters, so keep a checkpoint to go back to.
# ````
#
# ```{exercise} Tolerances
# :label: ch17-tolerance
#
# In section 5, compare the CPU's float32 results with its float64 results at rtol = 1e-7 and
# atol = 0 (`mismatch(cpu32, cpu64, rtol=1e-7, atol=0.0)`, or `np.testing.assert_allclose`
# with its default atol = 0). What happens, and what does it say about comparing a GPU with a
# CPU?
# ```
#
# ```{solution} ch17-tolerance
# :class: dropdown
#
# It fails, badly. Measured here: 37,824 of the 45,253 numbers (logits, loss and gradients;
# the count moves by a few hundred with the BLAS library) differ from float64 by more than a
# relative 1e-7, and 9 gradient elements that are exactly 0
# in float64 (the gradient of a key bias, which softmax cannot see, is 0 in exact arithmetic)
# come out as tiny non-zeros in float32, so `mismatch` returns infinity. Yet at the float32
# tolerance of section 5 the same comparison passes with a mismatch of 0.055. float32 keeps
# about 7 significant digits (epsilon 1.2e-7), and a few layers of sums spend some of them. GPU
# and CPU float32 runs differ for the same reason (different summation orders), so they are
# compared at a float32 tolerance such as rtol = 1e-4, never for equality, and never at float64
# tolerances.
# ```
