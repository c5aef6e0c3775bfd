# %% setup
# Chapter 17's exercises, graded: write each answer in its cell; the check cell after it says
# what is wrong, if anything. `minitransformer grade` gives each exercise its points.
# They run on the NumPy backend: code written with xp = array_module(x) runs unchanged on CuPy.
import contextlib

import numpy as np

import minitransformer as mt
import minitransformer.functional as F
from minitransformer import backend, nn
from minitransformer.autograd import Context, Function
from minitransformer.backend import array_module


# %% exercise ch17-mish (2 points)
# Mish: a Function subclass for y = x · tanh(softplus(x)), softplus(x) = log(1 + eˣ), with
# @staticmethod forward(ctx, x) and backward(ctx, grad_out) -> a 1-tuple, written once with
# xp = array_module(x) (imported in the setup), never with np directly. Compute softplus stably
# (xp.logaddexp(0, x)); the derivative is tanh(s) + x·σ(x)·(1 − tanh²(s)), s = softplus(x).
# BEGIN SOLUTION
class Mish(Function):
    """y = x * tanh(softplus(x))

    dL/dx = g * (tanh(s) + x * sigmoid(x) * (1 - tanh(s)^2)),  s = softplus(x)
    """

    @staticmethod
    def forward(ctx, x):
        xp = array_module(x)
        t = xp.tanh(xp.logaddexp(0, x))
        ctx.save_for_backward(x, t)
        return x * t

    @staticmethod
    def backward(ctx, grad_out):
        x, t = ctx.saved
        xp = array_module(x)
        sigmoid = 0.5 * (1 + xp.tanh(0.5 * x))
        return (grad_out * (t + x * sigmoid * (1 - t * t)),)
# END SOLUTION

# %% check ch17-mish
points = np.linspace(-30.0, 30.0, 13)
x = mt.tensor(points, requires_grad=True)  # float64
y = Mish.apply(x)
y.sum().backward()
want_y = points * np.tanh(np.logaddexp(0, points))
sigmoid = 1 / (1 + np.exp(-points))
want_grad = np.tanh(np.logaddexp(0, points)) + \
    points * sigmoid * (1 - np.tanh(np.logaddexp(0, points)) ** 2)
assert np.allclose(y.numpy(), want_y, atol=1e-9), (
    f"Mish forward gives {np.round(y.numpy()[5:8], 4)} at x = {points[5:8]}, expected "
    f"x · tanh(softplus(x)); largest error {np.abs(y.numpy() - want_y).max():.2e}")
assert np.allclose(backend.to_numpy(x.grad), want_grad, atol=1e-9), (
    f"Mish's gradient differs from tanh(s) + x·σ(x)·(1 − tanh²(s)) by up to "
    f"{np.abs(backend.to_numpy(x.grad) - want_grad).max():.2e}: softplus' derivative is σ(x)")
try:
    mt.manual_seed(0)
    mt.gradcheck(lambda x: Mish.apply(x), mt.randn(3, 4).double())
except mt.GradcheckError as error:
    raise AssertionError(f"mt.gradcheck rejects Mish: {str(error)[:200]}") from None
# Was the array module asked for? Count the calls while forward and backward run.
calls = []


def counting_array_module(*arrays):
    calls.append(len(arrays))
    return real_array_module(*arrays)


real_array_module, real_backend_array_module = array_module, backend.array_module
array_module = backend.array_module = counting_array_module
try:
    ctx = Context(Mish, (x,), (True,))
    Mish.forward(ctx, points)
    Mish.backward(ctx, np.ones(13))
finally:
    array_module, backend.array_module = real_array_module, real_backend_array_module
assert calls, ("Mish's forward and backward never call array_module: ask xp = array_module(x) "
               "for the module and use xp.logaddexp / xp.tanh, so that the same lines run on "
               "CuPy arrays (np.tanh would fail on a GPU array)")

# %% wrong ch17-mish
class Mish(Function):  # noqa: F811  (NumPy named directly: breaks on the GPU)
    @staticmethod
    def forward(ctx, x):
        t = np.tanh(np.logaddexp(0, x))
        ctx.save_for_backward(x, t)
        return x * t

    @staticmethod
    def backward(ctx, grad_out):
        x, t = ctx.saved
        return (grad_out * (t + x * 0.5 * (1 + np.tanh(0.5 * x)) * (1 - t * t)),)

# %% wrong ch17-mish
class Mish(Function):  # noqa: F811  (softplus' derivative σ(x) forgotten in the chain rule)
    @staticmethod
    def forward(ctx, x):
        xp = array_module(x)
        t = xp.tanh(xp.logaddexp(0, x))
        ctx.save_for_backward(x, t)
        return x * t

    @staticmethod
    def backward(ctx, grad_out):
        x, t = ctx.saved
        return (grad_out * (t + x * (1 - t * t)),)

# %% exercise ch17-sync-points (2 points)
# sync_points_per_step: int, how many synchronisation points (host reads of the loss) one step
# of the exercise's loop has.
# train_with_few_syncs(model, loss_fn, optimizer, loader, every=100) -> list of floats: train
# on each batch of loader (loss = loss_fn(model, batch); zero_grad, backward, step), keep the
# running sum of the losses ON THE DEVICE, and read it to the host exactly once every `every`
# steps (one .item() or .numpy() per read, none in between), appending the mean loss of those
# steps to the list. Raise RuntimeError when a mean read is NaN. Steps after the last full
# block of `every` are not read.
# BEGIN SOLUTION
sync_points_per_step = 3  # loss.item() twice in the NaN test, once for the history


def train_with_few_syncs(model, loss_fn, optimizer, loader, every=100):
    history = []
    running = mt.zeros(())
    for step, batch in enumerate(loader, start=1):
        loss = loss_fn(model, batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        running = running + loss.detach()
        if step % every == 0:
            mean = running.item() / every  # the one sync point
            if mean != mean:
                raise RuntimeError(f"NaN loss before step {step}")
            history.append(mean)
            running = mt.zeros(())
    return history
# END SOLUTION

# %% check ch17-sync-points
assert sync_points_per_step == 3, (
    f"sync_points_per_step is {sync_points_per_step!r}; count every expression in one pass of "
    "the loop that needs the loss's value on the host (each call is one wait for the GPU)")


@contextlib.contextmanager
def counted_host_reads():
    """Count the Tensor methods that copy values to the host (the outermost call only)."""
    reads, depth = [], [0]
    names = ("item", "numpy", "tolist", "__array__", "__bool__", "__repr__")
    originals = {name: getattr(mt.Tensor, name) for name in names}

    def counting(name, method):
        def wrapper(self, *args, **kwargs):
            if depth[0] == 0:
                reads.append(name)
            depth[0] += 1
            try:
                return method(self, *args, **kwargs)
            finally:
                depth[0] -= 1
        return wrapper

    for name, method in originals.items():
        setattr(mt.Tensor, name, counting(name, method))
    try:
        yield reads
    finally:
        for name, method in originals.items():
            setattr(mt.Tensor, name, method)


def small_run(nan_at=None):
    mt.manual_seed(0)
    model = nn.Linear(4, 3)
    rng = np.random.default_rng(0)
    loader = []
    for step in range(30):
        x = rng.standard_normal((8, 4)).astype(np.float32)
        if step == nan_at:
            x[0, 0] = np.nan
        loader.append((mt.tensor(x), mt.tensor(rng.integers(0, 3, 8))))
    return model, mt.optim.SGD(model.parameters(), lr=0.1), loader


def loss_fn(model, batch):
    return F.cross_entropy(model(batch[0]), batch[1])


model, optimizer, loader = small_run()
step_losses = []
for batch in loader:  # the same training, read every step, for reference
    loss = loss_fn(model, batch)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    step_losses.append(loss.item())
want = [float(np.mean(step_losses[i:i + 10])) for i in (0, 10, 20)]
model, optimizer, loader = small_run()
with counted_host_reads() as reads:
    history = train_with_few_syncs(model, loss_fn, optimizer, loader, every=10)
assert len(history) == 3 and np.allclose(history, want, rtol=1e-5), (
    f"30 steps read every 10 should give the 3 mean losses {np.round(want, 4)}, not "
    f"{np.round(history, 4) if len(history) < 10 else f'{len(history)} values'}: "
    "append the running sum divided by `every`, then start the sum again")
assert len(reads) == 3, (
    f"30 steps with every=10 read values to the host {len(reads)} times ({reads[:6]}...), not "
    "3: keep the sum on the device (running = running + loss.detach()) and read it only when "
    "step % every == 0")
model, optimizer, loader = small_run(nan_at=4)
try:
    train_with_few_syncs(model, loss_fn, optimizer, loader, every=10)
    raised = None
except RuntimeError as error:
    raised = error
assert raised is not None, (
    "a NaN loss at step 5 went unnoticed: a NaN makes the running sum NaN, so test the mean you "
    "read (mean != mean) and raise RuntimeError")

# %% wrong ch17-sync-points
def train_with_few_syncs(model, loss_fn, optimizer, loader, every=100):  # noqa: F811
    history, losses = [], []  # reads the loss every step, averages every `every` steps
    for step, batch in enumerate(loader, start=1):
        loss = loss_fn(model, batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if step % every == 0:
            mean = sum(losses) / every
            if mean != mean:
                raise RuntimeError(f"NaN loss before step {step}")
            history.append(mean)
            losses = []
    return history

# %% wrong ch17-sync-points
def train_with_few_syncs(model, loss_fn, optimizer, loader, every=100):  # noqa: F811
    history, running = [], mt.zeros(())  # no NaN test left
    for step, batch in enumerate(loader, start=1):
        loss = loss_fn(model, batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        running = running + loss.detach()
        if step % every == 0:
            history.append(running.item() / every)
            running = mt.zeros(())
    return history

# %% exercise ch17-tolerance (2 points)
# The model of section 5: mt.manual_seed(0), then nn.Transformer(20, 20, d_model=32, n_heads=4,
# n_encoder_layers=2, n_decoder_layers=2, d_ff=64, dropout=0.0), and its batch:
# rng = np.random.default_rng(0); src = rng.integers(0, 20, (4, 9));
# tgt = rng.integers(0, 20, (4, 8)); logits = model(src, tgt[:, :-1]);
# loss = F.cross_entropy(logits, tgt[:, 1:]) (ids as mt.tensor).
# cpu32, cpu64: dicts of NumPy arrays, "logits", "loss" and each parameter's gradient under its
# name from model.named_parameters(), after one forward and backward in float32 (the model as
# built) and in float64 (after model.to("float64")).
# strict_fraction: the fraction of all numbers in cpu32 (every element of every array) for which
# |a − b| > rtol · |b| with rtol = 1e-7 and atol = 0, b the float64 value.
# float32_fraction: the same fraction for |a − b| > atol + rtol · |b| at rtol = 1e-4, atol = 1e-5.
# gpu_comparison: how to compare a GPU's float32 results with a CPU's: "bit for bit",
# "float64 tolerance" or "float32 tolerance".
# BEGIN SOLUTION
def forward_backward(model):
    rng = np.random.default_rng(0)
    src, tgt = rng.integers(0, 20, (4, 9)), rng.integers(0, 20, (4, 8))
    model.zero_grad()
    logits = model(mt.tensor(src), mt.tensor(tgt[:, :-1]))
    loss = F.cross_entropy(logits, mt.tensor(tgt[:, 1:]))
    loss.backward()
    results = {"logits": logits.numpy(), "loss": loss.numpy()}
    results.update({name: backend.to_numpy(p.grad) for name, p in model.named_parameters()})
    return results


def fraction_outside(results, reference, rtol, atol):
    outside = sum(int((np.abs(results[key] - b) > atol + rtol * np.abs(b)).sum())
                  for key, b in reference.items())
    return outside / sum(b.size for b in reference.values())


mt.manual_seed(0)
model = nn.Transformer(20, 20, d_model=32, n_heads=4, n_encoder_layers=2, n_decoder_layers=2,
                       d_ff=64, dropout=0.0)
cpu32 = forward_backward(model)
cpu64 = forward_backward(model.to("float64"))
strict_fraction = fraction_outside(cpu32, cpu64, rtol=1e-7, atol=0.0)
float32_fraction = fraction_outside(cpu32, cpu64, rtol=1e-4, atol=1e-5)
gpu_comparison = "float32 tolerance"
# END SOLUTION

# %% check ch17-tolerance
mt.manual_seed(0)
probe = nn.Transformer(20, 20, d_model=32, n_heads=4, n_encoder_layers=2, n_decoder_layers=2,
                       d_ff=64, dropout=0.0)
names = ["logits", "loss"] + [name for name, _ in probe.named_parameters()]
for label, results in (("cpu32", cpu32), ("cpu64", cpu64)):
    missing = [name for name in names if name not in results]
    assert not missing, f"{label} lacks {missing[:4]}: hold logits, loss and every gradient"
dtypes = {label: {str(np.asarray(v).dtype) for v in results.values()}
          for label, results in (("cpu32", cpu32), ("cpu64", cpu64))}
assert dtypes == {"cpu32": {"float32"}, "cpu64": {"float64"}}, (
    f"the arrays' dtypes are {dtypes}: cpu32 should be float32 throughout and cpu64 float64 "
    "(run the second pass after model.to('float64'))")
rng = np.random.default_rng(0)
src, tgt = rng.integers(0, 20, (4, 9)), rng.integers(0, 20, (4, 8))
probe_loss = F.cross_entropy(probe(mt.tensor(src), mt.tensor(tgt[:, :-1])),
                             mt.tensor(tgt[:, 1:])).item()
assert abs(float(cpu32["loss"]) - probe_loss) < 1e-5, (
    f"cpu32's loss is {float(cpu32['loss']):.6f}, but the model and batch of the answer cell "
    f"give {probe_loss:.6f}: build them exactly as described (seed 0, rng seed 0)")
total = sum(np.asarray(b).size for b in cpu64.values())
outside = sum(int((np.abs(np.asarray(cpu32[k]) - np.asarray(b)) > 1e-7 * np.abs(b)).sum())
              for k, b in cpu64.items())
assert abs(strict_fraction - outside / total) < 0.01, (
    f"strict_fraction is {strict_fraction:.3f}, not the fraction of the {total} numbers in your "
    "cpu32 and cpu64 that differ by more than 1e-7 relative: with atol = 0 the test is "
    "|a − b| > 1e-7 · |b| (np.isclose's default atol = 1e-8 would hide most of them)")
assert strict_fraction > 0.5, (
    f"strict_fraction is {strict_fraction:.3f}: float32 keeps about 7 digits, so most numbers "
    "should fail a relative 1e-7 test")
outside = sum(int((np.abs(np.asarray(cpu32[k]) - np.asarray(b))
                   > 1e-5 + 1e-4 * np.abs(b)).sum()) for k, b in cpu64.items())
assert abs(float32_fraction - outside / total) < 1e-9, (
    f"float32_fraction is {float32_fraction:.3g}, not the fraction of your numbers with "
    "|a − b| > atol + rtol · |b| at rtol = 1e-4, atol = 1e-5")
assert gpu_comparison == "float32 tolerance", (
    f"gpu_comparison is {gpu_comparison!r}: a GPU's float32 results differ from the CPU's as "
    f"float32 differs from float64 ({strict_fraction:.0%} of the numbers fail at rtol = 1e-7), so "
    "which test can both pass?")

# %% wrong ch17-tolerance
strict_fraction = float(np.mean(np.concatenate([  # np.isclose's default atol = 1e-8 kept
    ~np.isclose(cpu32[k], b, rtol=1e-7).ravel() for k, b in cpu64.items()])))

# %% wrong ch17-tolerance
cpu64 = forward_backward(model.to("float32"))  # the "float64" pass run on the float32 model

# %% wrong ch17-tolerance
gpu_comparison = "float64 tolerance"
